"""Deterministic math of the exact path (lic_core.exact.dmath, tables): accurate, and built so
that it cannot depend on the machine (docs/bitstream.md, "Reproducible decoding")."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lic_core.entropy_model.gaussian import scale_table
from lic_core.exact import dmath
from lic_core.exact.tables import SCALE_TABLE_64, scale_index, table_std


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs().clamp_min(1e-300)).max())


def test_exp_log_match_libm_to_a_few_ulp():
    x = torch.linspace(-700, 700, 100001, dtype=torch.float64)
    assert _rel(dmath.exp(x), torch.exp(x)) < 1e-15
    y = torch.logspace(-300, 300, 100001, dtype=torch.float64)
    assert _rel(dmath.log(y), torch.log(y)) < 1e-15
    near_one = torch.linspace(0.5, 2.0, 10001, dtype=torch.float64)
    assert float((dmath.log(near_one) - torch.log(near_one)).abs().max()) < 1e-15


def test_exp_is_exact_at_zero_and_powers_of_two_are_exact():
    assert float(dmath.exp(torch.zeros(1, dtype=torch.float64))) == 1.0
    k = torch.arange(-1022, 1024)
    expected = torch.tensor([math.ldexp(1.0, int(i)) for i in k], dtype=torch.float64)
    assert torch.equal(dmath.pow2(k), expected)
    with pytest.raises(ValueError):
        dmath.pow2(torch.tensor([1024]))


def test_erfc_gelu_sigmoid_softplus_accuracy():
    t = torch.linspace(0, 8, 20001, dtype=torch.float64)
    assert _rel(dmath.erfc_nonneg(t), torch.special.erfc(t)) < 3e-10  # a frozen degree-12 fit
    x = torch.linspace(-30, 30, 60001, dtype=torch.float64)
    assert float((dmath.gelu(x) - F.gelu(x)).abs().max()) < 1e-10
    assert float((dmath.normal_cdf(x) - 0.5 * torch.special.erfc(-x / math.sqrt(2))).abs().max()) < 1e-10
    assert float((dmath.sigmoid(x) - torch.sigmoid(x)).abs().max()) < 1e-15
    ref = torch.log1p(torch.exp(-x.abs())) + x.clamp_min(0)
    assert float((dmath.softplus(x) - ref).abs().max()) < 1e-14


def test_math_refuses_float32():
    with pytest.raises(TypeError):
        dmath.exp(torch.zeros(3))


def test_frozen_scale_table_is_todays_table_and_sorted():
    t = np.asarray(SCALE_TABLE_64)
    assert t.shape == (64,) and np.all(np.diff(t) > 0)
    np.testing.assert_allclose(t, scale_table(), rtol=1e-15, atol=0)
    assert t[0] == pytest.approx(0.11) and t[-1] == pytest.approx(256.0)


def test_scale_index_is_smallest_entry_not_below_sigma():
    table = torch.tensor(SCALE_TABLE_64, dtype=torch.float64)
    s = torch.cat([table, table * (1 + 1e-12), table * (1 - 1e-12),
                   torch.tensor([0.01, 1e6], dtype=torch.float64)])
    idx = scale_index(s)
    std = table_std(idx)
    inside = s <= table[-1]
    assert bool((std[inside] >= s[inside]).all())
    below = idx[inside] > 0
    assert bool((table[idx[inside][below] - 1] < s[inside][below]).all())
    assert int(idx[-1]) == 63 and int(idx[-2]) == 0


def test_scale_index_bucket_lookup_is_the_binary_search():
    """The bucket lookup gives searchsorted's index (clamped to 63) for every kind of float64:
    the entries and their neighbours, both sides of the range, zeros, negatives, infinities,
    NaNs, subnormals and random bit patterns."""
    table = torch.tensor(SCALE_TABLE_64, dtype=torch.float64)
    up, down = torch.full_like(table, math.inf), torch.zeros_like(table)
    g = torch.Generator().manual_seed(0)
    s = torch.cat([table, torch.nextafter(table, up), torch.nextafter(table, down),
                   torch.tensor([0.0, -0.0, -1.0, 5e-324, -5e-324, 1e-300, 1e308, -1e308, math.inf,
                                 -math.inf, math.nan, -math.nan], dtype=torch.float64),
                   torch.exp(torch.rand(200_000, generator=g, dtype=torch.float64) * 12 - 4),
                   torch.randint(-2 ** 62, 2 ** 62, (200_000,), generator=g).view(torch.float64)])
    want = torch.searchsorted(table, s, right=False).clamp_max(63)
    assert torch.equal(scale_index(s), want)
    strided = s[:400_000].reshape(400, -1)[:, ::3]  # not contiguous
    assert torch.equal(scale_index(strided), want[:400_000].reshape(400, -1)[:, ::3])


def test_exp_table_index_covers_the_whole_reduction_range():
    """exp's table index from the bits of k + 2^52 − K_MIN is k − K_MIN at both ends of the
    clamped argument range (exp(−700), exp(709)) and in between."""
    x = torch.tensor([dmath.EXP_MIN, -1e4, dmath.EXP_MAX, 1e4, 0.0, -0.0, 1.0, -1.0],
                     dtype=torch.float64)
    want = torch.tensor([math.exp(min(max(v, dmath.EXP_MIN), dmath.EXP_MAX)) for v in x.tolist()],
                        dtype=torch.float64)
    assert _rel(dmath.exp(x), want) < 1e-15


def test_sin_cos_tan_atan_expm1_match_libm():
    x = torch.linspace(-60, 60, 120001, dtype=torch.float64)
    assert float((dmath.sin(x) - torch.sin(x)).abs().max()) < 4e-16
    assert float((dmath.cos(x) - torch.cos(x)).abs().max()) < 4e-16
    t = torch.linspace(-1.5, 1.5, 30001, dtype=torch.float64)
    assert _rel(dmath.tan(t), torch.tan(t)) < 2e-15
    z = torch.cat([torch.linspace(-50, 50, 100001, dtype=torch.float64),
                   torch.logspace(-12, 12, 2001, dtype=torch.float64)])
    assert float((dmath.atan(z) - torch.atan(z)).abs().max()) < 5e-16
    e = torch.linspace(-5, 5, 100001, dtype=torch.float64)
    assert _rel(dmath.expm1(e), torch.expm1(e)) < 1e-15
    assert float(dmath.expm1(torch.tensor([1e-300], dtype=torch.float64))) == 1e-300
