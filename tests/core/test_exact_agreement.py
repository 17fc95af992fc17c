"""The exact path computes (almost) what the float model computes: same scale indices for the
vast majority of symbols, means within the grid error, pictures within a grey level — with the
shipped preview weights on the bundled sample photo."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lic_core.codecs.learned import quantized_latents
from lic_core.entropy_model.gaussian import scale_index as float_scale_index
from lic_core.exact import ExactEntropyParameters, ExactSynthesis
from lic_core.exact.guard import ExactOpGuard
from lic_core.image.io import load_image, sample_image_path
from lic_core.image.tensor import pad_to_multiple, to_tensor
from lic_core.models import build_model, load_model, weights_path
from lic_core.quantizer import build_quantizer


@pytest.fixture(scope="module")
def preview_case():
    if not weights_path("lic-lgem-preview").is_file():
        pytest.skip("preview weights absent")
    torch.set_num_threads(1)
    m = load_model("lic-lgem-preview")
    img = load_image(sample_image_path())[:192, :256]
    x, _ = pad_to_multiple(to_tensor(np.ascontiguousarray(img)), 64)
    steps = {}

    def hook(g, p, idx, scale):
        steps[(g, p)] = (idx.clone(), float_scale_index(scale))

    out = quantized_latents(m, x, 0.5, build_quantizer("round"), step_hook=hook)
    return m, out, steps


def test_exact_parameters_agree_with_float_path(preview_case):
    m, out, steps = preview_case
    eng = ExactEntropyParameters.from_model(m)
    gains = eng.gains(0.5)
    for k in ("G", "G_inv", "H", "H_inv"):  # gains: the float32 values up to an ulp or two
        torch.testing.assert_close(gains[k].float(), out["gains"][k], rtol=3e-7, atol=0)
    z_hat = out["z_symbols"].float() + m.prior.medians()[None, :, None, None]
    phi = eng.hyper(z_hat, gains)
    seen = {}

    def step(g, p, res, idx):  # replay the float path's symbols (decoder's view)
        seen[(g, p)] = idx
        return steps[(g, p)][0]

    ex = eng.latent_passes(phi, gains, step)
    same = sum(int((seen[k] == steps[k][1]).sum()) for k in steps)
    total = sum(steps[k][1].numel() for k in steps)
    assert same / total > 0.999
    assert float((ex["means"] - out["means"].double()).abs().max()) < 2e-3
    assert float((ex["y_hat_gained"] - out["y_hat_gained"].double()).abs().max()) < 2e-3

    syn = ExactSynthesis.from_model(m)
    pic = syn.picture(ex["y_hat_gained"], 0.5).int()
    ref = torch.round(m.synthesize(out["y_hat_gained"], out["gains"]).clamp(0, 1) * 255).int()
    diff = (pic - ref).abs()
    assert int(diff.max()) <= 2 and float((diff > 0).float().mean()) < 0.01


def test_exact_path_uses_no_forbidden_op():
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    with torch.no_grad():
        y = m.g_a(torch.rand(1, 3, 64, 64))
        z_hat = torch.round(m.h_a(y))
    with ExactOpGuard() as guard:
        eng = ExactEntropyParameters.from_model(m)
        syn = ExactSynthesis.from_model(m)
        gains = eng.gains(0.3)
        out = eng.latent_passes(eng.hyper(z_hat, gains), gains, lambda g, p, r, i: torch.round(r), y=y)
        syn.picture(out["y_hat_gained"], 0.3)
    assert guard.calls > 1000 and guard.violations == []
    # the guard does see the float path's problems (so the test above can fail)
    with ExactOpGuard() as guard:
        m.synthesize(out["y_hat_gained"].float(), m._gains(0.3, 1, "cpu"))
    assert any(v.startswith("conv2d") for v in guard.violations)
    assert "pow" in guard.violations
