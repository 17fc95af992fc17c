"""Gain units and the continuous rate slider (docs/methods.md §5, §11 items 13–14)."""
import torch

from lic_core.rate.gain import GainTable, GainUnits, quantize_slider, slider_from_code


def test_interpolation_endpoints_are_exact():
    torch.manual_seed(0)
    t = GainTable(6, 10, torch.rand(6, 10) * 3 + 0.1)
    for s in range(6):
        u = torch.tensor([s / 5])
        assert torch.equal(t(u)[0, :, 0, 0], t.weight.abs()[s])


def test_interpolation_is_geometric_between_levels():
    t = GainTable(3, 2, torch.tensor([[1.0, 4.0], [4.0, 1.0], [2.0, 2.0]]))
    g = t(torch.tensor([0.25]))[0, :, 0, 0]  # halfway between level 0 and 1
    assert torch.allclose(g, torch.tensor([2.0, 2.0]))


def test_gains_grow_with_the_slider_at_init():
    gu = GainUnits(6, 8, 4)
    u = torch.linspace(0, 1, 21)
    g = gu(u)["G"][:, 0, 0, 0]
    assert torch.all(g[1:] > g[:-1])


def test_slider_is_quantized_to_u16_before_use():
    code, u = quantize_slider(0.123456789)
    assert 0 <= code <= 65535 and u == slider_from_code(code)
    assert quantize_slider(u) == (code, u)  # idempotent: encoder and decoder agree
    assert quantize_slider(0.0) == (0, 0.0) and quantize_slider(1.0) == (65535, 1.0)


def test_gradients_reach_the_gain_tables():
    gu = GainUnits(4, 3, 2)
    out = gu(torch.tensor([0.4, 0.9]))
    sum(v.sum() for v in out.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gu.parameters())
