"""The exact path computes (almost) what the float model computes — same scale indices for the
vast majority of symbols, means within the grid error, pictures within a grey level or two — and
uses no operation whose result could depend on the machine (ExactOpGuard)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lic_core.codecs.learned import exact_synthesis, latent_codec
from lic_core.exact.guard import ExactOpGuard
from lic_core.image.io import load_image, sample_image_path
from lic_core.image.tensor import pad_to_multiple, to_tensor
from lic_core.latent_codecs import EncodeSteps, LgemExactParameters, LgemFloatParameters, StepRunner
from lic_core.models import build_model, load_model, weights_path
from lic_core.quantizer import build_quantizer


class _Record(EncodeSteps):
    """The float path's steps: residuals rounded, reconstructions and indices kept per label."""

    def __init__(self):
        super().__init__(build_quantizer("round"))
        self.steps = {}

    def __call__(self, label, residual, index):
        rec, bits = super().__call__(label, residual, index)
        self.steps[label] = (rec, index)
        return rec, bits


class _Replay(StepRunner):
    """The decoder's view on another engine: the recorded symbols, the engine's own indices."""

    def __init__(self, steps):
        super().__init__(build_quantizer("round"))
        self.steps, self.seen = steps, {}

    def __call__(self, label, residual, index):
        self.seen[label] = index
        return self.steps[label][0], None


@pytest.fixture(scope="module")
def preview_case():
    if not weights_path("lic-lgem-preview").is_file():
        pytest.skip("preview weights absent")
    torch.set_num_threads(1)
    m = load_model("lic-lgem-preview")
    img = load_image(sample_image_path())[:192, :256]
    x, _ = pad_to_multiple(to_tensor(np.ascontiguousarray(img)), 64)
    code = 32768
    fl = LgemFloatParameters(m)
    gains = fl.gains_for_code(code)
    with torch.no_grad():
        y = m.g_a(x)
        codec = latent_codec(m, fl)
        rec = _Record()
        sym, _ = codec.z.symbols(m.h_a(y) * gains["H"])
        z_hat = codec.z.dequantize(sym)
        out = codec.y.run(z_hat, gains, rec, y_bar=y * gains["G"])
    return m, code, gains, z_hat, rec.steps, out


def test_exact_parameters_agree_with_float_path(preview_case):
    m, code, gains, z_hat, steps, out = preview_case
    ex = LgemExactParameters(m)
    eg = ex.gains_for_code(code)
    for k in ("G", "G_inv", "H", "H_inv"):  # gains: the float32 values up to an ulp or two
        torch.testing.assert_close(eg[k].float(), gains[k], rtol=3e-7, atol=0)
    replay = _Replay(steps)
    with torch.no_grad():
        res = latent_codec(m, ex).y.run(z_hat, eg, replay)
    same = sum(int((replay.seen[k] == steps[k][1]).sum()) for k in steps)
    total = sum(steps[k][1].numel() for k in steps)
    assert same / total > 0.999
    assert float((res.means - out.means.double()).abs().max()) < 2e-3
    assert float((res.y_hat_gained - out.y_hat_gained.double()).abs().max()) < 2e-3
    pic = exact_synthesis(m).picture(res.y_hat_gained, code).int()
    ref = torch.round(m.synthesize(out.y_hat_gained, gains).clamp(0, 1) * 255).int()
    diff = (pic - ref).abs()
    assert int(diff.max()) <= 2 and float((diff > 0).float().mean()) < 0.01


def test_exact_path_uses_no_forbidden_op():
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    with torch.no_grad():
        x = torch.rand(1, 3, 64, 64)
        y = m.g_a(x)
        z = m.h_a(y)
    q = build_quantizer("round")
    eng = LgemExactParameters(m)
    g = eng.gains_for_code(20000)
    codec = latent_codec(m, eng)
    sym, _ = codec.z.symbols(z.double() * g["H"])  # encoder side: the file carries its result
    y_bar = y.double() * g["G"]
    with ExactOpGuard() as guard:  # everything a decoder reproduces
        res = codec.y.run(codec.z.dequantize(sym), g, EncodeSteps(q), y_bar=y_bar)
        exact_synthesis(m).picture(res.y_hat_gained, 20000)
    assert guard.calls > 1000 and guard.violations == []
    # the guard does see the float path's problems (so the test above can fail)
    with ExactOpGuard() as guard:
        m.synthesize(res.y_hat_gained.float(), m._gains(0.3, 1, "cpu"))
    assert any(v.startswith("conv2d on") for v in guard.violations)
    assert "pow" in guard.violations


def test_hific_and_diffusion_exact_paths_use_no_forbidden_op():
    from lic_core.decoder.diffusion import DiffusionDecoder
    from lic_core.decoder.diffusion.exact import ExactDiffusion
    from lic_core.latent_codecs import ScaleHyperpriorExactParameters
    from lic_core.models.hific import build_hific
    from lic_core.models.hific_exact import ExactHificGenerator
    from lic_core.models.lgem_exact import ExactSynthesis

    torch.manual_seed(0)
    h = build_hific("hific-tiny").eval()
    m = build_model("lic-lgem-tiny").eval()
    dec = DiffusionDecoder.for_codec(m, mults=(1, 2))
    with torch.no_grad():
        dec.unet.out.weight.normal_(0.0, 0.2)
    z = torch.round(torch.randn(1, h.config.N, 1, 1) * 3)
    y_hat = torch.round(torch.randn(1, m.config.M, 4, 4) * 2).double()
    with ExactOpGuard() as guard:
        eng = ScaleHyperpriorExactParameters(h)
        g = eng.gains_for_code(40000)
        prm = eng.params(z, g)
        ExactHificGenerator(h.generator).picture(prm.mean + torch.round(prm.mean), g["G_inv"])
        ExactDiffusion(dec).decode(ExactSynthesis.from_model(m), y_hat, 40000, 2, 5)
    assert guard.calls > 1000 and guard.violations == []
