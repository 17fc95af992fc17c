"""Causality of the LGEM context model (docs/methods.md §3.4, §11 item 1).

For every (group, pass) the decoder computes μ, σ from what it has decoded so far.  Replacing
everything not yet decoded with random values must leave those predictions bit-identical.
"""
import pytest
import torch

from lic_core.entropy_model.checkerboard import (
    CheckerboardMaskedConv2d,
    anchor_mask,
    checkerboard_kernel_mask,
    gather,
    scatter,
)
from lic_core.models import build_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny")
    m.eval()
    # non-trivial Laplacian bias parameters
    for net in m.context.nets:
        for mod in net.modules():
            if hasattr(mod, "a") and isinstance(mod.a, torch.nn.Parameter):
                mod.a.data.fill_(1.7)
                mod.b.data.fill_(0.6)
    return m


def _predict(model, phi, y_full, g, p):
    """(σ, μ) of group g, pass p, computed from y_full as the decoder would see it."""
    ctx = model.context
    sl_prev = slice(0, ctx.offsets[g])
    y_prev = y_full[:, sl_prev] if g > 0 else None
    shared = ctx.shared_context(g, phi, y_prev)
    if p == 0:
        return ctx.anchor_params(g, shared)
    h, w = y_full.shape[-2:]
    amask = anchor_mask(h, w)
    y_anchor = y_full[:, ctx.group_slice(g)] * amask
    return ctx.nonanchor_params(g, shared, y_anchor)


@pytest.mark.parametrize("size", [(8, 12), (7, 9), (12, 8)])
def test_undecoded_values_do_not_move_predictions(model, size):
    torch.manual_seed(1)
    h, w = size
    cfg = model.config
    phi = torch.randn(1, cfg.hyper_out, h, w)
    y = torch.randn(1, cfg.M, h, w) * 3
    amask = anchor_mask(h, w)
    ctx = model.context
    with torch.no_grad():
        for g in range(len(ctx.groups)):
            for p in (0, 1):
                ref_s, ref_m = _predict(model, phi, y, g, p)
                y_bad = y.clone()
                sl = ctx.group_slice(g)
                # everything of later groups is undecoded
                y_bad[:, ctx.offsets[g + 1]:] = torch.randn_like(y_bad[:, ctx.offsets[g + 1]:]) * 50
                cur = y_bad[:, sl]
                noise = torch.randn_like(cur) * 50
                if p == 0:  # the whole current group is undecoded
                    y_bad[:, sl] = noise
                else:  # its non-anchors are undecoded
                    y_bad[:, sl] = torch.where(amask, cur, noise)
                s, m = _predict(model, phi, y_bad, g, p)
                sel = amask if p == 0 else ~amask
                assert torch.equal(gather(s, sel), gather(ref_s, sel)), (g, p)
                assert torch.equal(gather(m, sel), gather(ref_m, sel)), (g, p)
                # and the check has teeth: decoded values DO move them
                if p == 1:
                    y_dec = y.clone()
                    y_dec[:, sl] = torch.where(amask, y[:, sl] + 5.0, y[:, sl])
                    s2, _ = _predict(model, phi, y_dec, g, p)
                    assert not torch.equal(gather(s2, sel), gather(ref_s, sel))


def test_checkerboard_mask_has_no_same_parity_taps():
    for k in (3, 5):
        m = checkerboard_kernel_mask(k)
        c = k // 2
        assert m[c, c] == 0
        for i in range(k):
            for j in range(k):
                assert m[i, j] == ((abs(i - c + j - c) % 2) == 1)


def test_masked_conv_output_of_nonanchor_input_is_zero_at_nonanchors():
    torch.manual_seed(0)
    conv = CheckerboardMaskedConv2d(1, 4, 5, bias=False)
    h, w = 9, 10
    amask = anchor_mask(h, w)
    for (i, j) in [(0, 1), (3, 4), (4, 5)]:
        assert not amask[i, j]
        x = torch.zeros(1, 1, h, w)
        x[0, 0, i, j] = 1.0
        out = conv(x)
        assert torch.all(out[:, :, ~amask] == 0)


def test_gather_scatter_round_trip_and_partition():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 9)
    a = anchor_mask(7, 9)
    assert a[0, 0]  # ANCHOR_PARITY = 0: (0,0) is an anchor
    assert torch.equal(a | ~a, torch.ones_like(a)) and not torch.any(a & ~a)
    back = scatter(gather(x, a), a, shape=x.shape) + scatter(gather(x, ~a), ~a, shape=x.shape)
    assert torch.equal(back, x)


def test_laplacian_bias_shape_symmetry_and_gradients():
    from lic_core.entropy_model.attention import LaplacianBias

    lb = LaplacianBias(4)
    lb.a.data.fill_(1.3)
    lb.b.data.fill_(0.8)
    B = lb()
    assert B.shape == (16, 16)
    assert torch.allclose(B, B.T)
    assert torch.allclose(torch.diagonal(B), torch.full((16,), 1.3 ** 2))
    # strictly decreasing in L1 distance from the query
    d = lb.l1[0]
    for dist in range(int(d.max())):
        assert B[0][d == dist].min() > B[0][d == dist + 1].max()
    B.sum().backward()
    assert lb.a.grad is not None and lb.a.grad.abs() > 0
    assert lb.b.grad is not None and lb.b.grad.abs() > 0
