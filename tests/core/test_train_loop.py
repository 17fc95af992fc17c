"""Tests of the codec training loop (lic_core.train.loop) on CPU with a tiny stand-in model.

The stand-in has the LicModel forward contract (``forward(x, u) -> {"x_hat", "likelihoods":
{"y", "z"}, "y_hat"}``, ``config.lambdas``, ``aux_loss``/``aux_parameters``) so these tests do not
depend on the product architecture; one test also runs the real ``lic-lgem-tiny``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lic_core.entropy_model.factorized import FactorizedPrior
from lic_core.entropy_model.gaussian import gaussian_likelihood
from lic_core.train import loop, stages
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from lic_core.train.schedules import lr_factor

STANDIN = "test_train_loop:build_standin"


@dataclass
class StandInConfig:
    name: str = "standin"
    M: int = 8
    lambdas: tuple = (0.0035, 0.013, 0.0483)
    preview: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class StandIn(nn.Module):
    """Mean-scale hyperprior with gain vectors: the LicModel contract in ~10 k parameters."""

    def __init__(self, cfg: StandInConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or StandInConfig()
        M, n = self.config.M, len(self.config.lambdas)
        act = nn.GELU
        self.g_a = nn.Sequential(nn.Conv2d(3, 12, 5, 2, 2), act(), nn.Conv2d(12, 12, 5, 2, 2),
                                 act(), nn.Conv2d(12, 12, 3, 2, 1), act(),
                                 nn.Conv2d(12, M, 3, 2, 1))
        self.g_s = nn.Sequential(nn.ConvTranspose2d(M, 12, 3, 2, 1, 1), act(),
                                 nn.ConvTranspose2d(12, 12, 3, 2, 1, 1), act(),
                                 nn.ConvTranspose2d(12, 12, 5, 2, 2, 1), act(),
                                 nn.ConvTranspose2d(12, 3, 5, 2, 2, 1))
        self.h_a = nn.Sequential(nn.Conv2d(M, 8, 3, 2, 1), act(), nn.Conv2d(8, 4, 3, 2, 1))
        self.h_s = nn.Sequential(nn.ConvTranspose2d(4, 8, 3, 2, 1, 1), act(),
                                 nn.ConvTranspose2d(8, 2 * M, 3, 2, 1, 1))
        self.gain = nn.Parameter(torch.ones(n, M))
        self.inv_gain = nn.Parameter(torch.ones(n, M))
        self.prior = FactorizedPrior(4)

    def _interp(self, g: torch.Tensor, u: float) -> torch.Tensor:
        s = float(u) * (g.shape[0] - 1)
        lo = min(int(math.floor(s)), g.shape[0] - 2)
        l = s - lo
        return (g[lo].abs() ** (1 - l) * g[lo + 1].abs() ** l)[None, :, None, None]

    def forward(self, x: torch.Tensor, u) -> dict:
        G, Gi = self._interp(self.gain, u), self._interp(self.inv_gain, u)
        y = self.g_a(x) * G
        z_hat, z_lik = self.prior(self.h_a(y), training=self.training)
        mean, scale = self.h_s(z_hat).chunk(2, dim=1)
        scale = nn.functional.softplus(scale)
        if self.training:
            v = y + torch.empty_like(y).uniform_(-0.5, 0.5) - mean
        else:
            v = torch.round(y - mean)
        y_lik = gaussian_likelihood(v, scale)
        y_hat = mean + _ste(y - mean)
        return {"x_hat": self.g_s(y_hat * Gi), "likelihoods": {"y": y_lik, "z": z_lik},
                "y_hat": y_hat / G}

    def aux_parameters(self) -> list:
        return [self.prior.quantiles]

    def aux_loss(self) -> torch.Tensor:
        return self.prior.loss()


def build_standin(**overrides) -> StandIn:
    torch.manual_seed(1234)  # identical initial weights in every process (DDP test)
    return StandIn(StandInConfig(**{k: v for k, v in overrides.items()
                                    if k in {"M", "lambdas", "preview", "name"}}))


def make_images(root: Path, n: int = 4, size: tuple = (96, 128)) -> Path:
    """Smooth synthetic photos (gradients + blobs): compressible, so the RD loss can drop."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size[0], 0:size[1]] / max(size)
    for i in range(n):
        img = np.zeros((*size, 3))
        for c in range(3):
            a, b, f = rng.uniform(-1, 1, 3)
            img[..., c] = 0.5 + 0.3 * np.sin(2 * math.pi * (a * xx + b * yy) * (1 + 2 * abs(f)))
        Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(root / f"im{i}.png")
    return root


def cfg_for(tmp_path: Path, name: str, **kw) -> loop.TrainConfig:
    base = dict(data=str(make_images(tmp_path / "data")), out=str(tmp_path / name),
                model=STANDIN, steps=6, batch=2, crop=64, lr=1e-3, warmup=2, log_every=2,
                ckpt_every=0, seed=7, cache_images=True)
    base.update(kw)
    return loop.TrainConfig(**base)


def quiet(_: str) -> None:
    pass


def test_lr_schedule_warmup_and_cosine_floor():
    f = [lr_factor(s, 100, warmup=10, final=0.1) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(f[:10], f[1:10]))           # linear ramp
    assert all(a >= b - 1e-12 for a, b in zip(f[10:], f[11:]))     # then non-increasing
    assert f[100] == pytest.approx(0.1) and f[55] == pytest.approx(0.55)


def test_lr_decay_window_is_constant_then_cosine_to_the_floor():
    """A decay branch (decay_from): the peak until the fork, then the whole cosine to --steps."""
    f = [lr_factor(s, 3000, warmup=200, final=0.1, decay_from=2000) for s in range(3001)]
    assert all(v == 1.0 for v in f[200:2001])
    assert all(a >= b - 1e-12 for a, b in zip(f[2000:], f[2001:]))
    assert f[2500] == pytest.approx(0.55) and f[3000] == pytest.approx(0.1)
    assert lr_factor(5000, 3000, 200, 0.1, "cosine", 2000) == pytest.approx(0.1)
    assert lr_factor(2500, 3000, 200, 0.1, "constant", 2000) == 1.0


def test_few_steps_decrease_loss_on_fixed_batch():
    torch.manual_seed(0)
    model = build_standin()
    cfg = loop.TrainConfig(data=".", out=".", lr=3e-3, weight_decay=1e-4)
    opt, aux_opt = loop.build_optimizers(model, cfg)
    # gains / biases / density-model parameters get no weight decay
    wd = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert wd[id(model.gain)] == 0.0 and wd[id(model.g_a[0].bias)] == 0.0
    assert wd[id(model.g_a[0].weight)] == 1e-4
    assert id(model.prior.quantiles) not in wd and aux_opt is not None
    x = torch.rand(2, 3, 64, 64).mul(0.2).add(0.4)
    losses = []
    for step in range(30):
        torch.manual_seed(step)
        t = loop.rd_terms(model(x, 0.5), x, 0.013)
        opt.zero_grad()
        t["loss"].backward()
        opt.step()
        losses.append(float(t["loss"].detach()))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_resume_reproduces_uninterrupted_run(tmp_path):
    full = loop.train(cfg_for(tmp_path, "full", ckpt_every=3, ema=0.9), log=quiet)
    assert full["step"] == 6 and full["reason"] == "done"
    ck3 = load_checkpoint(tmp_path / "full" / "ckpt-00000003.pt")
    assert ck3["step"] == 3 and ck3["ema"] is not None and ck3["optimizer"]["state"]
    resumed = loop.train(cfg_for(tmp_path, "resumed", resume=ck3["_path"], ema=0.9), log=quiet)
    assert resumed["step"] == 6
    a = load_checkpoint(tmp_path / "full")
    b = load_checkpoint(tmp_path / "resumed")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    # keep=2: only the two newest checkpoints stay
    assert sorted(p.name for p in (tmp_path / "full").glob("ckpt-*.pt")) == [
        "ckpt-00000003.pt", "ckpt-00000006.pt"]
    # and a different seed really changes the run (the test can fail)
    other = loop.train(cfg_for(tmp_path, "other", seed=8), log=quiet)
    c = load_checkpoint(other["checkpoint"])
    assert not all(torch.equal(a["model"][k], c["model"][k]) for k in a["model"])


def test_init_from_weights_uses_fresh_optimizer(tmp_path):
    first = loop.train(cfg_for(tmp_path, "first", steps=4), log=quiet)
    init = loop.train(cfg_for(tmp_path, "init", init=first["checkpoint"], steps=3), log=quiet)
    ck = load_checkpoint(init["checkpoint"])
    assert ck["step"] == 3                                    # step counter restarts
    assert all(int(s["step"]) == 3 for s in ck["optimizer"]["state"].values())
    start = json.loads((tmp_path / "init" / "log.jsonl").read_text().splitlines()[0])
    assert start["type"] == "start" and start["step"] == 0 and start["init"]["step"] == 4
    with pytest.raises(loop.TrainError):
        loop.train(cfg_for(tmp_path, "bad", init=str(tmp_path / "missing.safetensors")), log=quiet)
    # --continue-schedule: the step count (and lr schedule) continues from the weights' step
    cont = loop.train(cfg_for(tmp_path, "cont", init=first["checkpoint"], steps=6,
                              continue_schedule=True), log=quiet)
    ck = load_checkpoint(cont["checkpoint"])
    assert ck["step"] == 6 and ck["train"]["rewarm_from"] == 4
    assert all(int(s["step"]) == 2 for s in ck["optimizer"]["state"].values())


@pytest.mark.slow
def test_time_budget_stops_cleanly(tmp_path):
    t = time.monotonic()
    res = loop.train(cfg_for(tmp_path, "budget", steps=10 ** 6, time_budget_min=0.06,
                                   log_every=1), log=quiet)
    took = time.monotonic() - t
    assert res["reason"] == "time budget" and 0 < res["step"] < 10 ** 6
    assert took < 0.06 * 60 + 1.0
    ck = load_checkpoint(latest_checkpoint(tmp_path / "budget"))
    assert ck["step"] == res["step"]
    recs = [json.loads(l) for l in (tmp_path / "budget" / "log.jsonl").read_text().splitlines()]
    assert recs[-1]["type"] == "end" and recs[-1]["reason"] == "time budget"
    per_level = [r for r in recs if r["type"] == "train"]
    assert per_level and all("bpp" in v and "psnr" in v for v in per_level[0]["levels"].values())


def test_step_batches_partition_the_stream(tmp_path):
    from lic_core.train.data import ImageFolderCrops
    ds = ImageFolderCrops(make_images(tmp_path / "d", n=5), crop=64)
    one = loop.StepBatches(ds, 4, 0, 1, 3, 0, 10)
    r0 = loop.StepBatches(ds, 2, 0, 2, 3, 0, 10)
    r1 = loop.StepBatches(ds, 2, 1, 2, 3, 0, 10)
    for step in range(5):  # two ranks of batch 2 see exactly the samples of one batch of 4
        assert r0.indices(step) + r1.indices(step) == one.indices(step)
    epoch0 = [i for s in range(5) for e, i in one.indices(s) if e == 0]
    assert sorted(epoch0) == list(range(5))  # each epoch is a permutation
    # DataLoader workers interleave steps round-robin: same (step, batch) sequence as inline
    stream = loop.StepBatches(ds, 2, 0, 1, 3, 2, 7)
    inline = list(stream)
    dl = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    workers = list(dl)
    assert [s for s, _ in workers] == [s for s, _ in inline] == list(range(2, 7))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(inline, workers))


def test_cli_train_and_missing_stage(tmp_path, monkeypatch, capsys):
    from lic_core.cli import main
    data = make_images(tmp_path / "data")
    rc = main(["train", "codec", "--model", STANDIN, "--data", str(data), "--out",
               str(tmp_path / "cli"),
               "--steps", "2", "--batch", "1", "--crop", "64", "--log-every", "1"])
    assert rc == 0 and latest_checkpoint(tmp_path / "cli").name == "ckpt-00000002.pt"
    monkeypatch.setitem(stages.STAGES, "diffusion", ("lic_core.train._no_such_stage", "gone"))
    rc = main(["train", "--stage", "diffusion", "--data", str(data), "--out", str(tmp_path)])
    assert rc == 2 and "not available" in capsys.readouterr().err


# a fake stage module (this file) for the dispatch test: lic train hific → run(args)
STAGE_CALLS: list = []


def add_arguments(parser) -> None:
    parser.add_argument("--stage", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--lr", type=float, default=None)        # shared: left for the stage
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--fake-sigma", type=float, default=None)  # the stage's own flag


def run(args) -> int:
    STAGE_CALLS.append(args)
    return 0


def test_stage_dispatch_merges_stage_flags(monkeypatch):
    from lic_core.cli import main
    for name in ("diffusion", "hific"):
        monkeypatch.setitem(stages.STAGES, name, ("test_train_loop", "a fake stage"))
    STAGE_CALLS.clear()
    assert main(["train", "--stage", "hific-2", "--fake-sigma", "3", "--data", "d"]) == 0
    (args,) = STAGE_CALLS
    assert args.stage == "hific-2" and args.fake_sigma == 3.0 and args.data == "d"
    assert args.lr is None and args.batch is None   # shared flags left for the stage's defaults


@pytest.mark.slow
@pytest.mark.shared
def test_real_tiny_model_trains_and_validates_coded(tmp_path, kodak_dir):
    pytest.importorskip("lic_core.models")
    res = loop.train(cfg_for(tmp_path, "tiny", model="lic-lgem-tiny", steps=3, crop=64,
                             val_every=3, val_dir=str(kodak_dir), val_limit=1,
                             val_u=[0.0, 1.0]), log=quiet)
    ck = load_checkpoint(res["checkpoint"])
    assert ck["step"] == 3 and ck["config"]["name"] == "lic-lgem-tiny"
    assert len(ck["train"]["lambdas"]) == len(ck["config"]["lambdas"])
    recs = [json.loads(l) for l in (tmp_path / "tiny" / "log.jsonl").read_text().splitlines()]
    val = [r for r in recs if r["type"] == "val"]
    assert len(val) == 1 and val[0]["mode"] == "coded" and val[0]["step"] == 3, val
    assert [p["u"] for p in val[0]["points"]] == [0.0, 1.0]


def test_ema_averages_parameters_and_copies_changed_buffers():
    from lic_core.train.ema import EMA
    model = build_standin()
    ema = EMA(model, 0.9)
    w0 = model.g_a[0].weight.detach().clone()
    with torch.no_grad():
        model.g_a[0].weight.add_(1.0)
    model.prior.update_tables()          # the pmf buffer changes shape (C×1 → C×L)
    ema.update(model)
    assert torch.allclose(ema.shadow["g_a.0.weight"], w0 + 0.1, atol=1e-6)
    assert torch.equal(ema.shadow["prior.pmf"], model.prior.pmf)
    fresh = EMA(build_standin(), 0.9)
    fresh.load_state_dict(ema.state_dict())   # resume with tables of another shape
    other = build_standin()
    fresh.copy_to(other)
    assert torch.equal(other.prior.pmf, model.prior.pmf)


def test_follow_parameter_layout_gives_moments_and_ema_the_parameters_layout():
    from lic_core.train.ema import EMA

    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    opt = torch.optim.Adam(conv.parameters())
    conv(torch.rand(1, 3, 8, 8)).sum().backward()
    opt.step()
    ema = EMA(conv, 0.9)
    conv.to(memory_format=torch.channels_last)  # as a resumed channels_last run is built
    w = conv.weight
    assert w.stride() != opt.state[w]["exp_avg"].stride()  # the test can fail
    before = {k: v.clone() for k, v in opt.state[w].items()}
    shadow = ema.shadow["weight"].clone()
    loop.follow_parameter_layout(conv, (opt, None), ema)
    for k in ("exp_avg", "exp_avg_sq"):
        assert opt.state[w][k].stride() == w.stride() and torch.equal(opt.state[w][k], before[k])
    assert ema.shadow["weight"].stride() == w.stride()
    assert torch.equal(ema.shadow["weight"], shadow)


@pytest.mark.shared
def test_channels_last_run_validates_resumes_a_contiguous_run_and_exports(tmp_path, kodak_dir):
    """channels_last (the campaign's recipe, ~15–20 % cheaper CPU steps) changes the layout, not
    the model: a real tiny model trains and validates with real bitstreams, continues a
    contiguous run's checkpoint, and exports weights that load as any other."""
    pytest.importorskip("lic_core.models")
    from lic_core.models import load_model
    from lic_core.train.export import export_checkpoint

    tiny = dict(model="lic-lgem-tiny", crop=64, ema=0.9)
    plain = loop.train(cfg_for(tmp_path, "plain", steps=2, ckpt_every=2, **tiny), log=quiet)
    res = loop.train(cfg_for(tmp_path, "cl", steps=4, resume=plain["checkpoint"],
                             channels_last=True, val_every=4, val_dir=str(kodak_dir),
                             val_limit=1, val_u=[0.0], **tiny), log=quiet)
    assert res["step"] == 4 and res["reason"] == "done"
    recs = [json.loads(line) for line in (tmp_path / "cl" / "log.jsonl").read_text().splitlines()]
    val = [r for r in recs if r["type"] == "val"]
    assert len(val) == 1 and val[0]["mode"] == "coded" and val[0]["points"][0]["bpp"] > 0
    ck = load_checkpoint(res["checkpoint"])
    assert any(v.dim() == 4 and not v.is_contiguous()
               and v.is_contiguous(memory_format=torch.channels_last) for v in ck["model"].values())
    export_checkpoint(res["checkpoint"], "cl-demo", tmp_path / "w", use_ema=True)
    model = load_model("cl-demo", tmp_path / "w" / "cl-demo.safetensors")
    shadow = ck["ema"]["shadow"]
    for k, p in model.named_parameters():  # the exported weights: the EMA's, rounded to fp16
        assert torch.equal(p.detach(), shadow[k].half().float()), k
