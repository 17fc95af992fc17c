"""docs/methods.md §11.5 training smoke: the ε-loss decreases on tiny crops, no NaNs, resumable."""
from __future__ import annotations

import argparse
import math
import statistics

import pytest
import torch

from lic_core.decoder.diffusion.decoder import DiffusionDecoder, config_for_codec
from lic_core.train.diffusion import TRAIN_FILE, add_arguments, codec_latents, train_diffusion


@pytest.fixture(scope="module")
def codec():
    from lic_core.models import build_model

    torch.manual_seed(0)
    return build_model("lic-lgem-tiny").eval()


def _crops(n: int = 8, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, 8, 8, generator=g)  # smooth random "photos"
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear",
                                           align_corners=False)


def test_codec_latents_are_what_the_deployed_decoders_receive() -> None:
    """Training conditions the diffusion decoder on what it is given when a file decodes: ŷ_G ⊙ G'
    (the rounding path's gained latent times the learned inverse gain) and g_s's features of it,
    whose picture is the codec's MSE reconstruction. In trained weights G' ≠ 1/G (at init they
    are equal, which hid the bug of conditioning on ŷ_G / G): the gains are made unequal here."""
    from lic_core.models import build_model

    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    with torch.no_grad():
        m.gains.inv_gain.weight.mul_(1.0 + 0.5 * torch.rand_like(m.gains.inv_gain.weight))
    x = _crops(2)
    u = torch.tensor([0.0, 1.0])
    y_hat, feats = codec_latents(m, x, u)
    with torch.no_grad():
        out = m(x, u)
        gains = m.gains(u)
        y_gained = out["y_hat"] * gains["G"]  # ŷ_G, what the entropy coder codes
    torch.testing.assert_close(y_hat, y_gained * gains["G_inv"])
    x_mse = feats[0] if isinstance(feats, tuple) else None
    assert x_mse is not None
    # the MSE picture among the contexts is the codec's MSE decoder (forward and synthesize)
    torch.testing.assert_close(x_mse, out["x_hat"])
    torch.testing.assert_close(x_mse, m.synthesize(y_gained, gains))
    assert not torch.allclose(out["y_hat"], y_hat)  # the old, wrong conditioning differs
    x_mse, fl = feats
    assert x_mse.shape == x.shape and len(fl) == 3
    assert not y_hat.requires_grad


@pytest.mark.slow
@pytest.mark.parametrize("param,steps,ratio", [("x", 120, 0.8), ("eps", 100, 0.6)])
def test_training_smoke_loss_decreases_and_resumes(tmp_path, codec, param, steps, ratio) -> None:
    # tiny U-Net with 2 levels: fast on 2 cores. The x-loss has a large irreducible part at high
    # t (x0 is not determined by x_t there), so it falls less than the ε-loss.
    cfg = config_for_codec(codec, mults=(1, 2), param=param)
    out = tmp_path / "run"
    s = train_diffusion(codec, _crops(), out, steps=steps, batch=2, crop=64, lr=2e-3,
                        device="cpu", config=cfg, warmup=10, ckpt_every=60, log_every=1000,
                        ema_decay=0.99, log=lambda m: None)
    losses = s["losses"]
    assert len(losses) == steps and all(math.isfinite(v) for v in losses)
    first, last = statistics.mean(losses[:20]), statistics.mean(losses[-20:])
    assert last < ratio * first, (first, last)
    # the product file is the EMA decoder and loads; codec parameters stayed frozen
    dec = DiffusionDecoder.load(s["ema_path"])
    assert dec.config == cfg and int(dec.meta["step"]) == steps
    assert all(not p.requires_grad for p in codec.parameters())
    # weights-only resume continues from the stored step with a fresh optimizer
    s2 = train_diffusion(codec, _crops(), out, steps=steps + 5, batch=2, crop=64, lr=2e-3,
                         device="cpu", config=cfg, warmup=1, log=lambda m: None)
    assert s2["step"] == steps + 5 and len(s2["losses"]) == 5
    assert (out / TRAIN_FILE).is_file()
    assert statistics.mean(s2["losses"]) < first


def test_cli_flags_parse() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args(["--data", "d", "--diffusion-config", "tiny", "--sigma-b-max", "32",
                      "--lpips-weight", "0.9", "--steps", "10"])
    assert a.diffusion_config == "tiny" and a.sigma_b_max == 32.0 and a.lpips_weight == 0.9
    assert a.batch is None  # shared flags default to None (lic train applies stage defaults)


class _RecordingPerceptual(torch.nn.Module):
    """Stand-in for LpipsLoss: differentiable, records what it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, float, float]] = []

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((x_hat.shape[0], float(x_hat.detach().min()), float(x_hat.detach().max())))
        return (x_hat - x).abs().mean()


def test_lpips_term_only_for_small_t(tmp_path, codec) -> None:
    cfg = config_for_codec(codec, mults=(1, 2))
    rec = _RecordingPerceptual()
    s = train_diffusion(codec, _crops(), tmp_path / "lp", steps=6, batch=4, crop=64, lr=1e-3,
                        device="cpu", config=cfg, lpips_weight=1.0, lpips_module=rec,
                        lpips_t_max=0.5, warmup=1, log=lambda m: None)
    assert all(math.isfinite(v) for v in s["losses"])
    assert rec.calls, "the perceptual term never ran"
    # it sees only the crops with t < 0.5 (never the whole batch every time) and images in [0, 1]
    assert all(1 <= n <= 4 and lo >= 0.0 and hi <= 1.0 for n, lo, hi in rec.calls)
    assert sum(n for n, _, _ in rec.calls) < 6 * 4


def test_lic_train_stage_diffusion_cli(tmp_path) -> None:
    """``lic train --stage diffusion`` dispatches here and writes a loadable decoder."""
    import numpy as np
    from PIL import Image

    from lic_core.cli import main

    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "run"
    rc = main(["train", "--stage", "diffusion", "--model", "lic-lgem-tiny", "--random-codec",
               "--diffusion-config", "tiny", "--data", str(data), "--out", str(out),
               "--steps", "2", "--batch", "2", "--crop", "64", "--workers", "0",
               "--device", "cpu", "--downscale", "1", "1",
               "--export", str(tmp_path / "dec.safetensors")])
    assert rc == 0
    dec = DiffusionDecoder.load(tmp_path / "dec.safetensors")
    assert dec.config.name == "lic-diffusion-tiny" and int(dec.meta["step"]) == 2


def test_campaign_knobs_cpu_budget_and_full_resume(tmp_path, codec) -> None:
    """A CPU budget stops the run with a checkpoint that books its CPU seconds; a re-run in the
    same folder continues that checkpoint (optimizer and EMA included) and keeps booking."""
    from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

    cfg = config_for_codec(codec, arch="lite")
    out = tmp_path / "run"
    s = train_diffusion(codec, _crops(), out, steps=4, batch=2, crop=64, device="cpu",
                        config=cfg, warmup=1, ckpt_every=0, threads=1, log=lambda m: None)
    ck = load_checkpoint(latest_checkpoint(out))
    assert s["reason"] == "done" and ck["step"] == 4 and ck["cpu_s"] > 0
    assert ck["optimizer"]["state"] and ck["ema"] is not None and ck["kind"] == "diffusion"
    s2 = train_diffusion(codec, _crops(), out, steps=100, batch=2, crop=64, device="cpu",
                         config=cfg, warmup=1, ckpt_every=0, threads=1,
                         cpu_budget_min=ck["cpu_s"] / 60.0, log=lambda m: None)
    assert s2["reason"] == "cpu budget" and s2["step"] == 4  # already spent: no step more
    s3 = train_diffusion(codec, _crops(), out, steps=6, batch=2, crop=64, device="cpu",
                         config=cfg, warmup=1, ckpt_every=0, threads=1, log=lambda m: None)
    ck3 = load_checkpoint(latest_checkpoint(out))
    assert s3["step"] == 6 and len(s3["losses"]) == 2 and ck3["cpu_s"] > ck["cpu_s"]


class _PerCropPerceptual(torch.nn.Module):
    """A per-crop (reduction "none") stand-in for LpipsLoss: mean |x̂ − x| of each crop."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return (x_hat - x).abs().mean(dim=(1, 2, 3))


def test_relative_lpips_weighs_every_crop_by_the_mse_decoders_lpips() -> None:
    """The relative term asks each crop to beat g_s by the same factor: a crop whose MSE picture
    is already close (high rate) weighs more than one where g_s is far off (low rate)."""
    from lic_core.train.diffusion import _relative_lpips

    x = torch.full((2, 3, 8, 8), 0.5)
    x_mse = x.clone()
    x_mse[0] += 0.05  # "high rate": g_s is close
    x_mse[1] += 0.20  # "low rate": g_s is far
    d = torch.tensor([0.04, 0.10], requires_grad=True)
    sel = torch.tensor([True, True])
    term, ratio = _relative_lpips(_PerCropPerceptual(), d, (x_mse, []), x, sel)
    assert ratio == pytest.approx((0.04 / 0.05 + 0.10 / 0.20) / 2)
    term.backward()
    g = d.grad
    assert g[0] == pytest.approx(4 * g[1])  # weights mean(r)/r_i: 0.125/0.05 vs 0.125/0.2
    assert float(term.detach()) == pytest.approx(float((d.detach() * torch.tensor([2.5, 0.625]))
                                                       .mean()))
    from lic_core.train.diffusion import DiffusionTrainError

    with pytest.raises(DiffusionTrainError, match="per-crop"):
        _relative_lpips(_PerCropPerceptual(), d.mean(), (x_mse, []), x, sel)


def test_relative_lpips_trains_and_logs_the_ratio(tmp_path, codec) -> None:
    import json

    cfg = config_for_codec(codec, mults=(1, 2))
    per_crop = _PerCropPerceptual()
    s = train_diffusion(codec, _crops(), tmp_path / "rel", steps=6, batch=4, crop=64, lr=1e-3,
                        device="cpu", config=cfg, lpips_weight=1.0, lpips_module=per_crop,
                        lpips_t_max=0.9, warmup=1, log_every=1, lpips_relative=True,
                        log=lambda m: None)
    assert all(math.isfinite(v) for v in s["losses"]) and per_crop.calls > 0
    recs = [json.loads(ln) for ln in (tmp_path / "rel" / "log.jsonl").read_text().splitlines()]
    ratios = [r["lpips_rel"] for r in recs if "lpips_rel" in r]
    assert ratios and all(math.isfinite(v) and v > 0 for v in ratios)
