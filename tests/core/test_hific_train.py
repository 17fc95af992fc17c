"""HiFiC training: overfit smoke on fixed crops, `lic train --stage hific-1|hific-2` plumbing,
resumable checkpoints, export → codec (docs/methods.md §8.3–8.4, §11.6)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from lic_core.models.hific import build_hific
from lic_core.train.hific import HificTrainer


def _smooth_crops(n: int = 4, s: int = 64, seed: int = 0) -> torch.Tensor:
    """Fixed synthetic photos-like crops: low-frequency colour waves plus a flat patch."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
    out = []
    for _ in range(n):
        img = torch.zeros(3, s, s)
        for c in range(3):
            f = torch.rand(3, generator=g) * 1.5
            ph = torch.rand(3, generator=g) * 6.28
            img[c] = (0.5 + 0.2 * torch.sin(f[0] * 6.28 * xx + ph[0]) * torch.cos(f[1] * 6.28 * yy + ph[1])
                      + 0.15 * torch.sin(f[2] * 6.28 * (xx + yy) + ph[2]))
        r = torch.randint(0, s // 2, (2,), generator=g)
        img[:, r[0]:r[0] + s // 3, r[1]:r[1] + s // 3] += (torch.rand(3, 1, 1, generator=g) - 0.5) * 0.5
        out.append(img.clamp(0, 1))
    return torch.stack(out)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(float(((a.clamp(0, 1) - b) ** 2).mean()))


@pytest.mark.slow
def test_stage1_overfits_four_fixed_crops():
    """160 stage-1 steps on 4 fixed 64×64 crops (seed 0: ≈ 26 dB; the flat-colour predictor of
    the same crops gives ≈ 17 dB).  The tiny model needs ~80 steps before G starts to use ŷ
    (its 8-channel ChannelNorm before the output conv), then PSNR climbs quickly."""
    torch.manual_seed(0)
    x = _smooth_crops()
    model = build_hific("hific-tiny")
    trainer = HificTrainer(model, "hific-1", perceptual=None, lr=1e-3)

    def eval_psnr() -> float:
        model.eval()
        with torch.no_grad():
            return _psnr(model(x, 1.0)["x_hat"], x)  # eval mode: real rounding, no noise

    mean_colour = _psnr(x.mean(dim=(2, 3), keepdim=True).expand_as(x), x)
    before = eval_psnr()
    for _ in range(160):
        logs = trainer.train_step(x, u=1.0, target=0.45)
    after = eval_psnr()
    assert trainer.step == 160 and math.isfinite(logs["loss"])
    assert after > before + 5.0, (before, after)
    assert after > mean_colour + 3.0, (mean_colour, after)  # learned structure, not just colour


def _photos(folder, n=2, size=96):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        yy, xx = np.mgrid[0:size, 0:size]
        arr = np.stack([128 + 80 * np.sin(xx / (5.0 + i)), 128 + 80 * np.cos(yy / 6.0),
                        128 + 40 * np.sin((xx - yy) / 9.0)], -1) + rng.normal(0, 8, (size, size, 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def _lic_train(argv) -> int:
    from lic_core.cli import main

    return main(["train", *argv])


def test_lic_train_dispatches_both_stages_resumes_and_exports(tmp_path, monkeypatch):
    data = _photos(tmp_path / "photos")
    run1 = tmp_path / "run1"
    common = ["--data", str(data), "--hific-config", "hific-tiny", "--crop", "64", "--batch", "2",
              "--workers", "0", "--perceptual", "none", "--device", "cpu", "--log-every", "1",
              "--ckpt-every", "2"]
    assert _lic_train(["--stage", "hific-1", "--out", str(run1), "--steps", "2", "--val-every",
                       "2", "--val-dir", str(data), "--val-limit", "1", *common]) == 0
    import json

    vals = [json.loads(line) for line in (run1 / "log.jsonl").read_text().splitlines()
            if '"val"' in line]
    assert vals and set(vals[0]["val"]) == {"u=0", "u=0.5", "u=1"}
    assert all(v["bpp"] > 0 and v["psnr"] > 0 for v in vals[0]["val"].values())
    from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

    ck = load_checkpoint(latest_checkpoint(run1))
    assert ck["step"] == 2 and ck["stage"] == "hific-1" and ck["disc"] is None
    # the same command with more steps continues from the checkpoint (optimizer state kept)
    assert _lic_train(["--stage", "hific-1", "--out", str(run1), "--steps", "3", *common]) == 0
    ck = load_checkpoint(latest_checkpoint(run1))
    assert ck["step"] == 3 and len(ck["optimizer"]["state"]) > 0
    stage1 = run1 / "hific-tiny-hific-1.safetensors"
    assert stage1.is_file()
    # stage 2 starts from the stage-1 weights alone (fresh optimizers, step 0) and trains D
    run2 = tmp_path / "run2"
    export = tmp_path / "weights" / "hific-small.safetensors"
    assert _lic_train(["--stage", "hific-2", "--out", str(run2), "--steps", "2",
                       "--init", str(stage1), "--export", str(export), *common]) == 0
    ck2 = load_checkpoint(latest_checkpoint(run2))
    assert ck2["step"] == 2 and ck2["stage"] == "hific-2" and ck2["disc"] is not None
    # the export is a working hific-small weights file for the codec
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(export.parent))
    from lic_core.codecs.base import EncodeParams
    from lic_core.codecs.hific import HificCodec

    codec = HificCodec()
    assert codec.available()[0]
    img = np.asarray(Image.open(data / "p0.png"))
    res = codec.encode(img, EncodeParams(rate=0.5, decoder="gan"))
    assert np.array_equal(HificCodec().decode(res.data).reconstruction, res.reconstruction)


def test_resume_from_another_stage_is_refused(tmp_path):
    from lic_core.train.hific import HificTrainError

    model = build_hific("hific-tiny")
    state = HificTrainer(model, "hific-1").state_dict()
    with pytest.raises(HificTrainError):
        HificTrainer(build_hific("hific-tiny"), "hific-2").load_state_dict(state)


def test_warmup_ramps_the_lr_and_clip_bounds_the_gradient():
    """The short-horizon recipe's knobs (--warmup, --clip, --d-lr): the lr of G and D ramps
    linearly over the first steps (absolute steps: a resumed run does not ramp again), the ×0.1
    drop still applies, and E/G's gradient norm after a clipped step is at most the clip."""
    torch.manual_seed(0)
    model = build_hific("hific-tiny")
    tr = HificTrainer(model, "hific-2", perceptual=None, lr=4e-4, d_lr=1e-4, warmup=4,
                      clip=1e-3, lr_drop=6)
    x = _smooth_crops(2, 64)
    seen = []
    for _ in range(8):
        logs = tr.train_step(x, u=0.0, target=0.14)
        seen.append((tr.opt.param_groups[0]["lr"], tr.opt_d.param_groups[0]["lr"]))
        grads = [p.grad for p in model.main_parameters() if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g)
                                                           for g in grads])))
        assert logs["grad_norm"] > 1e-3 and norm <= 1e-3 * (1 + 1e-4)
    assert [round(g / 4e-4, 6) for g, _ in seen] == [0.25, 0.5, 0.75, 1, 1, 1, 0.1, 0.1]
    assert [round(d / 1e-4, 6) for _, d in seen] == [0.25, 0.5, 0.75, 1, 1, 1, 0.1, 0.1]
    plain = HificTrainer(build_hific("hific-tiny"), "hific-1", lr=1e-4)
    plain.step = 3
    assert plain.lr_factor() == 1.0  # the paper's schedule: no warm-up by default


def test_channels_last_is_the_same_training_in_another_layout():
    """--channels-last changes the memory layout, not the arithmetic: the same weights give the
    same picture (up to float summation order; the training noise differs, as ``rand_like``
    fills memory in its own order), E/G/D really are channels_last after a stage-2 step, and a
    contiguous run's checkpoint resumes with Adam's moments in the parameters' layout."""
    import copy

    from lic_core.models.hific import HificModel

    x = _smooth_crops(2, 64)
    torch.manual_seed(0)
    plain = HificTrainer(build_hific("hific-tiny"), "hific-2", perceptual=None, lr=1e-4)
    cl = HificTrainer(copy.deepcopy(plain.model), "hific-2", perceptual=None, lr=1e-4,
                      channels_last=True)
    with torch.no_grad():
        a = plain.model.eval()(x, 0.5)["x_hat"]
        b = cl.model.eval()(x.contiguous(memory_format=torch.channels_last), 0.5)["x_hat"]
    assert torch.allclose(a, b, atol=1e-5) and not torch.equal(a, torch.zeros_like(a))
    for tr in (plain, cl):
        assert math.isfinite(tr.train_step(x, u=0.5, target=0.3)["loss"])
    convs = [m.weight for m in cl.model.modules() if isinstance(m, torch.nn.Conv2d)]
    d_convs = [m.weight for m in cl.disc.modules() if isinstance(m, torch.nn.Conv2d)]
    wide = [w for w in convs + d_convs if w.shape[1] > 1 and w.shape[-1] > 1]
    assert wide and all(w.is_contiguous(memory_format=torch.channels_last)
                        and not w.is_contiguous() for w in wide)
    resumed = HificTrainer(HificModel(plain.model.config), "hific-2", perceptual=None,
                           channels_last=True)
    resumed.load_state_dict(plain.state_dict())
    checked = 0
    for opt in (resumed.opt, resumed.opt_d):
        for group in opt.param_groups:
            for p in group["params"]:
                for v in opt.state[p].values():
                    if torch.is_tensor(v) and v.shape == p.shape:
                        assert v.stride() == p.stride()
                        checked += p.dim() == 4 and not p.is_contiguous()
    assert checked > 0
    assert math.isfinite(resumed.train_step(x, u=0.5, target=0.3)["loss"])
