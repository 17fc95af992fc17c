"""The 2^53 argument of the exact path (lic_core.exact.fixed): asserted for the shipped preview
weights, and checked at its extreme — grid integers chosen to reach each layer's bound — against
exact integer arithmetic and against a different summation order; the explicit im2col/col2im
formulation used on CUDA gives the very same accumulators as ATen's CPU kernels."""
from __future__ import annotations

import pytest
import torch

from lic_core.exact import ExactConfig
from lic_core.exact.fixed import EXACT_LIMIT, ExactLinear, Grid
from lic_core.models import build_model, load_model, weights_path
from lic_core.models.lgem_exact import ExactEntropyParameters, ExactSynthesis


@pytest.mark.skipif(not weights_path("lic-lgem-preview").is_file(), reason="preview weights absent")
def test_preview_model_respects_the_bound_everywhere():
    m = load_model("lic-lgem-preview")
    eng = ExactEntropyParameters.from_model(m)
    syn = ExactSynthesis.from_model(m)
    lins = eng.linears() + syn.linears()
    assert len(lins) > 100
    for lin in lins:
        assert lin.acc_bound < EXACT_LIMIT, lin.name
        assert lin.weight_bits >= 12, lin.name  # enough precision for fp16 weights
    assert eng.bound_report()["max_acc_bound_log2"] < 53


def _adversarial_input(lin: ExactLinear, grid: Grid) -> tuple[torch.Tensor, int]:
    """Grid integers at ±2^(R+F) with the signs of the weights of the channel with the largest
    bound."""
    w = lin.weight
    lim = float(grid.max_int)
    if lin.kind == "linear":
        c = int((w.abs().sum(1)).argmax())
        return (torch.sign(w[c]) * lim)[None], c
    if lin.kind == "conv":
        c = int(w.abs().flatten(1).sum(1).argmax())
        x = torch.sign(w[c]) * lim  # Cin×k×k at the receptive field of the centre output
        if lin.groups != 1:
            x = (torch.sign(w[:, 0]) * lim)  # depthwise: every channel its own kernel
        return x[None], c
    raise NotImplementedError


@pytest.mark.parametrize("kind", ["conv3", "conv1", "linear"])
def test_accumulator_at_the_bound_is_exact_in_any_order(kind):
    torch.manual_seed(0)
    grid = Grid(16, 12)
    cin = 96
    if kind == "conv3":
        mod = torch.nn.Conv2d(cin, 8, 3, padding=1)
    elif kind == "conv1":
        mod = torch.nn.Conv2d(cin, 8, 1)
    else:
        mod = torch.nn.Linear(cin, 8)
    lin = ExactLinear(mod, grid, max_weight_bits=30)
    assert 2 ** 52 <= lin.acc_bound < EXACT_LIMIT  # the bound is tight: W chosen as large as allowed
    x, c = _adversarial_input(lin, grid)
    out = lin(x.to(torch.float64))
    if kind != "linear":
        kk = x.shape[-1] // 2
        got = out[0, c, kk, kk]
        wc = lin.weight[c].flatten()
        xc = x[0].flatten()
    else:
        got = out[0, c]
        wc, xc = lin.weight[c], x[0]
    # exact integer reference (Python ints): w = w_int·2^-s, x = grid integers, bias in
    # accumulator units b_int·2^-s
    s = 0
    while not bool((wc * 2.0 ** s == torch.round(wc * 2.0 ** s)).all()):
        s += 1
    ref = sum(int(a) * int(b) for a, b in zip((wc * 2.0 ** s).tolist(), xc.tolist()))
    ref += int(lin.bias[c] * 2.0 ** s)
    assert abs(ref) > 2 ** 51  # we really are near the limit
    assert int(got * 2.0 ** s) == ref
    # any other order: reversed cumulative sum of the products gives the same number
    prods = torch.flip(wc * xc, [0])
    alt = torch.cumsum(torch.cat([prods, lin.bias[c:c + 1]]), 0)[-1]
    assert float(alt) == float(got)


def test_bound_violation_is_refused():
    mod = torch.nn.Conv2d(4096, 1, 3)
    with torch.no_grad():
        mod.weight.fill_(1.0)
    with pytest.raises(ValueError, match="2\\^53"):
        ExactLinear(mod, Grid(16, 30), max_weight_bits=24, min_weight_bits=8)


def test_tiny_model_builds_with_default_config():
    m = build_model("lic-lgem-tiny").eval()
    eng = ExactEntropyParameters.from_model(m, ExactConfig())
    assert eng.bound_report()["max_acc_bound_log2"] < 53


@pytest.mark.parametrize("kind", ["conv", "grouped", "strided", "deconv"])
def test_cuda_formulation_gives_the_cpu_accumulators(kind, monkeypatch):
    """fixed.FORCE_IM2COL runs the unfold/matmul/fold code that CUDA uses (no cuDNN)."""
    from lic_core.exact import fixed

    torch.manual_seed(1)
    grid = Grid(16, 12)
    if kind == "conv":
        mod = torch.nn.Conv2d(6, 5, 3, padding=1)
    elif kind == "grouped":
        mod = torch.nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)
    elif kind == "strided":
        mod = torch.nn.Conv2d(6, 5, 5, stride=2, padding=2)
    else:
        mod = torch.nn.ConvTranspose2d(6, 5, 5, stride=2, padding=2, output_padding=1)
    lin = ExactLinear(mod, grid)
    x = torch.round(torch.randn(2, 6, 9, 11, dtype=torch.float64) * 2.0 ** 20)
    ref = lin(x)
    monkeypatch.setattr(fixed, "FORCE_IM2COL", True)
    assert torch.equal(lin(x), ref)
