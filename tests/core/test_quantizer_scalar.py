"""Scalar quantizers: rounding, dead-zone, RDOQ (docs/methods.md §4.2, §6.3–6.4,
§11 items 11, 15–17, 20)."""
from __future__ import annotations

import math

import pytest
import torch

from lic_core.entropy_coder.symbols import SymbolDecoder, SymbolEncoder
from lic_core.entropy_model.gaussian import scale_index, scale_table
from lic_core.errors import LicFormatError
from lic_core.quantizer import build_quantizer
from lic_core.quantizer.scalar import (
    SYMBOL_BOUND,
    DeadZoneQuantizer,
    RdoqQuantizer,
    RoundQuantizer,
    gaussian_bits,
    table_std,
)

SCALAR = ("round", "deadzone", "rdoq")


def _source(shape=(2, 8, 700), seed=0, lo=0.05, hi=30.0):
    g = torch.Generator().manual_seed(seed)
    sigma = torch.exp(torch.empty(shape).uniform_(math.log(lo), math.log(hi), generator=g))
    r = torch.randn(shape, generator=g) * sigma
    return r, scale_index(sigma)  # quantizers see the scale-table index, never σ


def _round_trip(q, indices, index):
    enc = SymbolEncoder()
    _, clamped = enc.encode(q.symbol_plan(index, indices))
    return SymbolDecoder(enc.to_bytes()).decode(q.symbol_plan(index)), clamped, enc


def test_rounding_error_at_most_half():
    r, s = _source()
    q = RoundQuantizer()
    y_hat = q.quantize_dequantize(r, s)
    assert (y_hat - r).abs().max() <= 0.5
    assert torch.equal(y_hat, torch.round(r))


def test_deadzone_half_equals_rounding_and_widens_zero_bin():
    r, s = _source(seed=1)
    assert torch.equal(DeadZoneQuantizer(0.5).quantize(r, s), RoundQuantizer().quantize(r, s))
    k = DeadZoneQuantizer(1 / 3).quantize(r, s)
    assert (k[r.abs() < 2 / 3 - 1e-6] == 0).all()
    assert (k.abs() <= torch.round(r).abs()).all()  # never moves away from zero
    with pytest.raises(ValueError):
        DeadZoneQuantizer(0.7)


def test_rdoq_c0_equals_rounding():
    r, s = _source(seed=2)
    assert torch.equal(RdoqQuantizer(c=0.0).quantize(r, s), RoundQuantizer().quantize(r, s))


@pytest.mark.parametrize("c", [0.05, 0.1155, 0.3, 2.0])
def test_rdoq_never_increases_cost_vs_rounding(c):
    r, s = _source(seed=3)
    rd, rn = RdoqQuantizer(c=c), RoundQuantizer()
    k_rd, k_rn = rd.quantize(r, s), rn.quantize(r, s)
    cost = lambda k, q: (r.double() - q.dequantize(k).double()) ** 2 + c * q.bits(k, s)  # noqa: E731
    j_rd, j_rn = cost(k_rd, rd), cost(k_rn, rn)
    assert (j_rd <= j_rn + 1e-12).all()
    assert (j_rd < j_rn - 1e-9).any()  # and it does change something
    # RDOQ only ever picks round(r), round(r) − sign(round(r)) or 0
    allowed = (k_rd == k_rn) | (k_rd == k_rn - torch.sign(k_rn)) | (k_rd == 0)
    assert allowed.all()


@pytest.mark.parametrize("name", SCALAR)
def test_round_trip_with_clamped_outliers(name):
    q = build_quantizer(name)
    r, s = _source(shape=(2, 6, 500), seed=4)
    r[0, 0, :5] = torch.tensor([1e5, -1e5, SYMBOL_BOUND + 0.2, -SYMBOL_BOUND - 3.0, 5000.0])
    k = q.quantize(r, s)
    n_out = int((k.abs() > SYMBOL_BOUND).sum())
    assert n_out == 4
    k2, clamped, _ = _round_trip(q, k, s)
    assert clamped == n_out
    assert torch.equal(k2, k.clamp(-SYMBOL_BOUND, SYMBOL_BOUND))
    # the decoder reconstructs exactly what the encoder reconstructed
    assert torch.equal(q.dequantize(k2), q.dequantize(k))
    assert float(q.dequantize(k).abs().max()) == SYMBOL_BOUND


def test_several_blocks_in_one_stream_decode_in_order():
    q = RoundQuantizer()
    blocks = [_source(shape=(1, c, 300), seed=10 + c) for c in (4, 8, 16)]
    enc = SymbolEncoder()
    ks = [q.quantize(r, s) for r, s in blocks]
    for k, (_, s) in zip(ks, blocks):
        enc.encode(q.symbol_plan(s, k))
    dec = SymbolDecoder(enc.to_bytes())
    for k, (_, s) in zip(ks, blocks):
        assert torch.equal(dec.decode(q.symbol_plan(s)), k)
    dec.finish()


@pytest.mark.parametrize("name", SCALAR)
def test_measured_bits_match_estimate(name):
    q = build_quantizer(name)
    r, s = _source(shape=(1, 16, 1500), seed=5, lo=0.11, hi=20.0)  # 24k symbols
    k = q.quantize(r, s)
    _, _, enc = _round_trip(q, k, s)
    est = float(q.bits(k, s).sum())
    assert abs(enc.num_bits() - est) / est < 0.005


def test_bits_use_table_scale_not_raw_sigma():
    r, idx = _source(seed=6, lo=0.2, hi=10.0)
    q = RoundQuantizer()
    k = q.quantize(r, idx)
    # any σ inside the same table cell maps to the same index (the only thing coded)
    table = torch.from_numpy(scale_table())
    lower = torch.where(idx > 0, table[(idx - 1).clamp_min(0)], torch.full_like(table[idx], 0.0))
    s_other = (lower + 0.999 * (table[idx] - lower)).clamp_min(0.11).float()
    assert torch.equal(scale_index(s_other), idx)
    assert torch.equal(table_std(idx), table[idx])
    # and bits are the unit-bin masses of N(0, table σ²)
    std = table[idx]
    p = 0.5 * (torch.erfc((k.double().abs() - 0.5) / (std * 2 ** 0.5))
               - torch.erfc((k.double().abs() + 0.5) / (std * 2 ** 0.5)))
    assert torch.allclose(q.bits(k, idx), -torch.log2(p.clamp_min(2.0 ** -24)), rtol=1e-12)
    assert torch.allclose(gaussian_bits(torch.tensor([0]), torch.tensor([1.0], dtype=torch.float64)),
                          torch.tensor([-math.log2(math.erf(0.5 / 2 ** 0.5))], dtype=torch.float64))


def test_decoding_with_other_scale_breaks_canary():
    """docs/methods.md §6.4 item 6: a table-index shift at the decoder must not pass unnoticed."""
    q = RoundQuantizer()
    r, s = _source(shape=(1, 8, 2000), seed=7, lo=0.3, hi=8.0)
    k = q.quantize(r, s)
    enc = SymbolEncoder()
    enc.encode(q.symbol_plan(s, k))
    s_bad = (s + 2).clamp_max(63)  # the decoder's index shifted by two table entries
    assert not torch.equal(s_bad, s)
    try:
        k_bad = SymbolDecoder(enc.to_bytes()).decode(q.symbol_plan(s_bad))
    except LicFormatError:  # the coder's "invalid compressed data", as a one-line error
        return
    assert not torch.equal(k_bad, k)


def test_registry_and_params_round_trip():
    from lic_core.errors import LicError
    from lic_core.quantizer import QUANTIZERS

    assert [i.name for i in QUANTIZERS] == ["round", "deadzone", "rdoq", "tcq"]
    for info in QUANTIZERS:
        q = build_quantizer(info.name, **info.defaults)
        assert q.name == info.name and info.label and info.tooltip
        assert q.params() == info.defaults or info.name == "round"
        q2 = build_quantizer(q.name, **q.params())
        assert q2.params() == q.params()
        assert set(info.ranges) == set(info.defaults)
        for key, (lo, hi, step) in info.ranges.items():
            assert lo <= info.defaults[key] <= hi and step > 0
            build_quantizer(info.name, **{key: lo})  # the whole range is accepted
            build_quantizer(info.name, **{key: hi})
    with pytest.raises(LicError):
        build_quantizer("nope")
    with pytest.raises(LicError):
        build_quantizer("deadzone", offset=0.9)
    with pytest.raises(LicError):
        build_quantizer("rdoq", bogus=1)


def test_empty_block_and_shape_checks():
    q = RoundQuantizer()
    s = torch.zeros(1, 4, 0, dtype=torch.int64)
    enc = SymbolEncoder()
    assert enc.encode(q.symbol_plan(s, torch.zeros(1, 4, 0, dtype=torch.int64)))[1] == 0
    assert SymbolDecoder(b"").decode(q.symbol_plan(s)).shape == (1, 4, 0)
    with pytest.raises(ValueError):
        q.quantize(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64"):  # a float σ is refused: only indices code
        q.quantize(torch.zeros(1, 2, 3), torch.ones(1, 2, 3))
