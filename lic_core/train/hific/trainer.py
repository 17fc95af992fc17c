"""HiFiC training: ``lic train hific --stage hific-1`` (rate + MSE + LPIPS) and ``--stage hific-2``
(+ GAN).

docs/methods.md §8.2–8.4:

* stage 1 trains E, G, the hyperprior and the gain units with
  ``C/λ'·r + C·C_D·MSE₂₅₅ + w_P·LPIPS`` (the official "mselpips" model);
* stage 2 starts from stage-1 weights (``--init``) and adds ``−C_P·log D(x̂, ŷ)`` with **one D step
  per G step** (training G/D from scratch is unstable, §8.3);
* Adam, lr 1e-4 (×0.1 after ``--lr-drop`` steps, official 500k); the auxiliary quantile loss of
  the factorized prior has its own Adam (lr 1e-3);
* one gain level per batch (§8.4), its rate target r_t = ``config.targets[level]``;
* data: random 256 crops after a random downscale in [0.75, 0.95] (``ImageFolderCrops``).

The D step reuses the G step's reconstruction (detached) on the same batch; the official code
feeds D a separate sub-batch.  Same expected gradient, one forward pass cheaper.

Checkpoints (``<out>/ckpt-<step>.pt``, :mod:`lic_core.train.checkpoint`) hold the model, D, the
three optimizers and the step: ``--resume`` continues exactly; ``--init`` loads weights alone (a
checkpoint's ``model`` or a ``.safetensors``) with fresh optimizers and step 0 (stage 1 → 2).
At the end the model is exported (fp16 safetensors + model card) to ``--export`` or
``<out>/<config name>-<stage>.safetensors``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from ...errors import LicError
from ...models.hific import HificModel, count_parameters, get_config
from ..losses.perceptual import PerceptualFn, TinyPerceptual, default_perceptual
from ..runner import Runner, RunSettings
from .discriminator import HificDiscriminator, build_discriminator
from .losses import DEFAULT_LOSS, HificLossConfig, discriminator_loss, generator_loss

#: HiFiC's two training phases (docs/methods.md §8.3): ``lic train hific --stage hific-1|hific-2``
PHASES = ("hific-1", "hific-2")
DEFAULTS = dict(steps=200_000, batch=8, crop=256, lr=1e-4, aux_lr=1e-3, seed=0, workers=4,
                downscale=(0.75, 0.95), log_every=100, ckpt_every=5000, keep=2, lr_drop=500_000,
                warmup=0, clip=0.0,
                hific_config="hific-small", perceptual="lpips")


class HificTrainError(LicError):
    """A HiFiC training run cannot start (bad stage, missing data or weights)."""


class HificTrainer:
    """One model (+ D in stage 2), its optimizers and the step counter.

    ``train_step(x)`` does one G step (and, in stage 2, one D step) and returns a log dict.
    ``perceptual`` is any ``f(x_hat, x) -> scalar`` (LPIPS in the product, a tiny random net in
    tests, None to drop the term).
    """

    def __init__(self, model: HificModel, stage: str, perceptual: Optional[PerceptualFn] = None,
                 discriminator: Optional[HificDiscriminator] = None, lr: float = 1e-4,
                 aux_lr: float = 1e-3, loss_cfg: HificLossConfig = DEFAULT_LOSS,
                 lr_drop: int = 500_000, seed: int = 0, amp: bool = False,
                 gan_start: Optional[int] = None, warmup: int = 0, clip: float = 0.0,
                 d_lr: Optional[float] = None, channels_last: bool = False) -> None:
        """``gan_start`` (stage hific-1 only): at that step the run moves on to stage 2 by
        itself — D and its optimizer are created and the GAN term joins the loss (the campaign
        trains both stages in one run folder, §8.3).

        ``warmup``, ``clip``, ``d_lr``: the codec campaign's short-horizon recipe (docs/
        training.md, recipe study: a 4× higher lr with a linear warm-up over the first
        ``warmup`` steps and E/G gradient-norm clipping at ``clip``); the paper trains at 1e-4
        without either, for 2 × 10⁵⁺ steps. D keeps its own lr (``d_lr``, default ``lr``).

        ``channels_last``: E, G, D, the perceptual net and every batch in channels_last — the
        same arithmetic in oneDNN's preferred layout, 15 % cheaper steps on this CPU (fp32,
        docs/hific.md "Training in the campaign")."""
        if stage not in PHASES:
            raise HificTrainError(f"unknown HiFiC stage {stage!r} (choose {', '.join(PHASES)})")
        if gan_start is not None and stage != "hific-1":
            raise HificTrainError("gan_start moves stage hific-1 on to hific-2; "
                                  f"it makes no sense in {stage}")
        self.gan_start = gan_start
        self.channels_last = bool(channels_last)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
            if isinstance(perceptual, nn.Module):
                perceptual.to(memory_format=torch.channels_last)
        self.model = model
        self.stage = stage
        self.perceptual = perceptual
        self.loss_cfg = loss_cfg
        self.lr, self.lr_drop = lr, lr_drop
        self.d_lr = lr if d_lr is None else d_lr
        self.warmup, self.clip = int(warmup), float(clip)
        self.amp = amp
        self.opt = torch.optim.Adam(model.main_parameters(), lr=lr)
        self.aux_opt = torch.optim.Adam(model.aux_parameters(), lr=aux_lr)
        self.disc: Optional[HificDiscriminator] = None
        self.opt_d = None
        self._given_disc = discriminator
        if stage == "hific-2":
            self._enter_gan()
        self.step = 0
        self.rng = torch.Generator().manual_seed(seed)
        #: what these weights were built on before this run's booked CPU time (``--init``:
        #: the init file's lineage, :func:`init_lineage_of`); carried by every checkpoint
        self.init_lineage: Optional[dict] = None

    def _enter_gan(self) -> None:
        """Stage 2: the conditional discriminator, its Adam, the GAN term (§8.2)."""
        if self.disc is None:
            self.disc = self._given_disc or build_discriminator(self.model.config)
            self.disc.to(next(self.model.parameters()).device)
            if self.channels_last:
                self.disc.to(memory_format=torch.channels_last)
            self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=self.d_lr)
        self.stage = "hific-2"

    # -- schedule -------------------------------------------------------------------------
    def lr_factor(self) -> float:
        """×0.1 after ``lr_drop``; a linear ramp over the first ``warmup`` steps (absolute steps:
        a resumed run does not warm up again)."""
        f = 0.1 if self.step >= self.lr_drop else 1.0
        return f * min(1.0, (self.step + 1) / self.warmup) if self.warmup > 0 else f

    def _set_lr(self) -> None:
        f = self.lr_factor()
        for opt, lr in ((self.opt, self.lr), (self.opt_d, self.d_lr)):
            if opt is not None:
                for g in opt.param_groups:
                    g["lr"] = lr * f

    def sample_level(self) -> tuple[float, float]:
        """(u, r_t) of a uniformly drawn gain level (one level per batch, §8.4)."""
        n = self.model.config.levels
        s = int(torch.randint(n, (1,), generator=self.rng))
        return (s / (n - 1) if n > 1 else 0.0), float(self.model.config.targets[s])

    # -- steps ----------------------------------------------------------------------------
    def _autocast(self, x: torch.Tensor):
        return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16,
                              enabled=self.amp and x.device.type == "cuda")

    def g_step(self, x: torch.Tensor, u: float, target: float) -> tuple[dict, dict]:
        """One update of E, G, hyperprior and gains (D frozen); returns (model out, logs)."""
        self.model.train()
        with self._autocast(x):
            out = self.model(x, u)
            loss, logs = generator_loss(out, x, target, self.step, self.perceptual,
                                        self.disc, self.loss_cfg)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip > 0:  # one bad batch must not undo a CPU-hour (a higher lr needs this)
            logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
                self.model.main_parameters(), self.clip))
        self.opt.step()
        aux = self.model.aux_loss()
        self.aux_opt.zero_grad(set_to_none=True)
        aux.backward()
        self.aux_opt.step()
        logs["aux"] = float(aux.detach())
        return out, logs

    def d_step(self, x: torch.Tensor, out: dict) -> dict:
        """One D update on (x, x̂) conditioned on ŷ, both detached (no gradient to E/G)."""
        assert self.disc is not None and self.opt_d is not None
        self.disc.train()
        with self._autocast(x):
            loss, logs = discriminator_loss(self.disc, x, out["x_hat"], out["y_hat"])
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return logs

    def train_step(self, x: torch.Tensor, u: Optional[float] = None,
                   target: Optional[float] = None) -> dict:
        if self.gan_start is not None and self.step >= self.gan_start and self.disc is None:
            self._enter_gan()
        self._set_lr()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if u is None or target is None:
            u, target = self.sample_level()
        out, logs = self.g_step(x, u, target)
        if self.disc is not None:
            logs.update(self.d_step(x, out))
        self.step += 1
        logs.update(step=self.step, u=u, target=target)
        return logs

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "aux_optimizer": self.aux_opt.state_dict(),
                "disc": self.disc.state_dict() if self.disc is not None else None,
                "disc_optimizer": self.opt_d.state_dict() if self.opt_d is not None else None,
                "step": self.step, "stage": self.stage, "model_name": self.model.config.name,
                "config": self.model.config.to_dict(), "rng": self.rng.get_state(),
                "gan_start": self.gan_start, "init_lineage": self.init_lineage}

    def load_seed(self, path: Union[str, Path]) -> float:
        """Continue a committed campaign seed (``campaign/seeds.py`` in the repository): the weights of
        E/G/hyperprior (and D once stage 2 began) and the step, with fresh optimizers; returns
        the booked training CPU seconds."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        tensors = load_file(str(path))
        model_sd = {k[len("model."):]: (v.float() if v.is_floating_point() else v)
                    for k, v in tensors.items() if k.startswith("model.")}
        missing, unexpected = self.model.load_state_dict(model_sd, strict=False)
        if unexpected or [k for k in missing if "pmf" not in k]:
            raise HificTrainError(f"{Path(path).name} does not match the model "
                                  f"(missing {len(missing)}, unexpected {len(unexpected)})")
        self.step = int(meta.get("step", 0))
        self.init_lineage = resumed_lineage(path)
        disc_sd = {k[len("disc."):]: v.float() for k, v in tensors.items()
                   if k.startswith("disc.")}
        if self.stage == "hific-2" or (self.gan_start is not None and self.step >= self.gan_start):
            self._enter_gan()
            if disc_sd:
                self.disc.load_state_dict(disc_sd)
        return float(meta.get("cpu_s", 0.0))

    def load_state_dict(self, state: dict) -> None:
        """Full resume (same stage): weights, optimizers, step, level RNG."""
        if state.get("stage") == "hific-2" and self.stage == "hific-1" and \
                self.gan_start is not None:
            self._enter_gan()  # a run that already moved on to stage 2
        if state.get("stage") != self.stage:
            raise HificTrainError(f"checkpoint is from stage {state.get('stage')!r}, not "
                                  f"{self.stage!r} (use --init to start a stage from weights)")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.aux_opt.load_state_dict(state["aux_optimizer"])
        if self.disc is not None and state.get("disc") is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["disc_optimizer"])
        self.step = int(state["step"])
        if state.get("rng") is not None:
            self.rng.set_state(state["rng"])
        self.init_lineage = state.get("init_lineage")
        from ..loop import follow_parameter_layout  # moments of a run in the other layout

        follow_parameter_layout(self.model, (self.opt, self.aux_opt, self.opt_d), None)


@torch.no_grad()
def validate(model: HificModel, images, us: Sequence[float] = (0.0, 0.5, 1.0)) -> dict:
    """Mean quantized bpp and PSNR (dB) per slider value on full images (eval mode: rounding).

    ``images`` yields ``(x_padded 1×3×H'×W', (H, W))``; bpp counts the padded pixels' bits over
    the original size, as the codec does.  For monitoring only (the codec adds header bytes).
    """
    was_training = model.training
    model.eval()
    out = {}
    for u in us:
        bpp, psnr = [], []
        for x, (h, w) in images:
            res = model(x, float(u))
            bpp.append(float(res["bpp_quantized"][0]) * x.shape[-2] * x.shape[-1] / (h * w))
            mse = float(((res["x_hat"][..., :h, :w].clamp(0, 1) - x[..., :h, :w]) ** 2).mean())
            psnr.append(10 * math.log10(1.0 / max(mse, 1e-12)))
        out[f"u={u:g}"] = {"bpp": sum(bpp) / len(bpp), "psnr": sum(psnr) / len(psnr)}
    model.train(was_training)
    return out


# ------------------------------------------------------------------------------ CLI plumbing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``lic train hific``."""
    p = parser
    p.add_argument("--stage", choices=PHASES, default=None,
                   help="hific-1 (rate + MSE + LPIPS, the default) or hific-2 (+ GAN)")
    p.add_argument("--data", default=None, help="folder of training photos")
    p.add_argument("--out", default=None, help="run folder (checkpoints, log.jsonl)")
    p.add_argument("--steps", type=int, default=None, help="total G steps (absolute)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--crop", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--aux-lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", default=None, help="full checkpoint (file or run folder)")
    p.add_argument("--init", default=None, help="weights only (.safetensors or checkpoint)")
    p.add_argument("--downscale", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; 0 = adapt to the machine's load")
    p.add_argument("--amp", action="store_true", default=None)
    p.add_argument("--channels-last", action="store_true", default=None,
                   help="train in channels_last memory layout (same arithmetic, faster on CPU)")
    p.add_argument("--log-every", type=int, default=None)
    p.add_argument("--ckpt-every", type=int, default=None)
    p.add_argument("--keep", type=int, default=None)
    p.add_argument("--time-budget-min", type=float, default=None)
    p.add_argument("--val-every", type=int, default=None, help="validate every N steps (0: off)")
    p.add_argument("--val-dir", default=None, help="validation folder (e.g. Kodak)")
    p.add_argument("--val-limit", type=int, default=None, help="first N validation images")
    p.add_argument("--val-u", type=float, nargs="+", default=None, help="slider values")
    p.add_argument("--hific-config", choices=("hific-small", "hific-tiny"), default=None,
                   help="HiFiC size (hific-small: product; hific-tiny: smoke tests)")
    p.add_argument("--perceptual", choices=("lpips", "tiny", "none"), default=None,
                   help="perceptual term: LPIPS-Alex (the shipped lpips_alex trunk), a tiny "
                        "random net (smoke runs), or none")
    p.add_argument("--lr-drop", type=int, default=None, help="step of the ×0.1 lr drop (500k)")
    p.add_argument("--warmup", type=int, default=None,
                   help="linear lr warm-up over the first N steps (absolute; 0: none, the paper)")
    p.add_argument("--clip", type=float, default=None,
                   help="E/G gradient-norm clip (0: none, the paper)")
    p.add_argument("--d-lr", type=float, default=None, help="D's lr (default --lr)")
    p.add_argument("--gan-start", type=int, default=None,
                   help="stage hific-1 only: move on to stage 2 (D + GAN term) at this step, "
                        "in the same run (the campaign)")
    p.add_argument("--ckpt-minutes", type=float, default=None,
                   help="also checkpoint whenever this many wall minutes passed")
    p.add_argument("--cpu-budget-min", type=float, default=None,
                   help="stop once training has used this many CPU-minutes (cumulative)")
    p.add_argument("--export", default=None, help="where to write the final .safetensors")


def _opt(args: argparse.Namespace, name: str):
    v = getattr(args, name, None)
    return DEFAULTS.get(name) if v is None else v


def _device(args) -> torch.device:
    d = getattr(args, "device", None) or "auto"
    if d == "auto":
        d = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(d)


def _perceptual(kind: str, device: torch.device) -> Optional[nn.Module]:
    if kind == "none":
        return None
    mod = TinyPerceptual() if kind == "tiny" else default_perceptual()
    return mod.to(device)


def load_init_weights(model: HificModel, path: str) -> None:
    """Weights only: a ``.safetensors`` export or a training checkpoint's ``model``."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from ...weights import load_weights

        sd, _ = load_weights(p)
    else:
        from ..checkpoint import load_checkpoint

        sd = load_checkpoint(p)["model"]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or [k for k in missing if "pmf" not in k]:
        raise HificTrainError(f"--init {p.name} does not match the model "
                              f"(missing {len(missing)}, unexpected {len(unexpected)})")


def init_lineage_of(path: Union[str, Path]) -> dict:
    """What weights started from ``path`` (``--init``, weights only, a fresh CPU clock) were
    built on: the file's name and its training CPU-hours and steps *with* its own warm starts —
    a ``.safetensors`` export's card (``lineage_cpu_hours`` or ``cpu_hours``; ``total_steps``),
    or a training checkpoint's booked ``cpu_s`` and ``step`` plus the lineage it recorded. A
    budget comparison of hific-small (issue 26: the diffusion decoder's budget) must count it."""
    from ...weights import lineage_cpu_hours, read_weights_card

    p = Path(path)
    if p.suffix == ".safetensors":
        card = read_weights_card(p)
        hours = lineage_cpu_hours(card)
        steps = card.get("lineage_steps") or card.get("total_steps") or card.get("steps") or 0
        return {"file": p.name, "cpu_hours": round(float(hours or 0.0), 4),
                "steps": int(steps), "known": hours is not None}
    from ..checkpoint import load_checkpoint

    ck = load_checkpoint(p)
    prior = ck.get("init_lineage") or {}
    return {"file": p.name,
            "cpu_hours": round(float(ck.get("cpu_s", 0.0)) / 3600.0
                               + float(prior.get("cpu_hours", 0.0)), 4),
            "steps": int(ck.get("step", 0)) + int(prior.get("steps", 0)),
            "known": bool(prior.get("known", True)), "from": prior or None}


def resumed_lineage(path: Union[str, Path]) -> Optional[dict]:
    """The ``init_lineage`` a run resumed from ``path`` (``--resume``) carries on: a checkpoint's
    own; a campaign seed's (it continues the seed's booked ``cpu_s``); an export without booked
    CPU seconds starts a fresh clock, so the whole file is its lineage (:func:`init_lineage_of`)."""
    p = Path(path)
    if p.suffix != ".safetensors":
        from ..checkpoint import load_checkpoint

        return load_checkpoint(p).get("init_lineage")
    from safetensors import safe_open

    with safe_open(str(p), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if "cpu_s" in meta:
        raw = meta.get("init_lineage")
        return json.loads(raw) if raw else None
    return init_lineage_of(p)


def export(model: HificModel, path: Path, stage: str, steps: int, extra: dict) -> bytes:
    """fp16 safetensors with config + model card (z coding tables refreshed first)."""
    from ...weights import save_weights

    model.entropy_bottleneck.update_tables()
    card = {"model": model.config.name, "family": "HiFiC (Mentzer et al. 2020), small variant",
            "stage": stage, "steps": steps, "parameters": count_parameters(model),
            "rate_targets_bpp": list(model.config.targets),
            "note": "E/G widths reduced to fit 8 M parameters (docs/methods.md §8.4); gain units "
                    "for the rate slider (§5.1)", **extra}
    return save_weights(model, path, card)


def _loader(args, crop: int, batch: int, seed: int):
    from ..data import ImageFolderCrops

    data = getattr(args, "data", None)
    if not data:
        raise HificTrainError("--data is required (a folder of training photos)")
    workers = int(_opt(args, "workers"))
    # without workers (the campaign) every crop decoded its photo again, ~15 ms a JPEG of the
    # training folders (387 photos ≈ 1 MP, 1.4 GiB decoded): about 4 % of a CPU step; with
    # workers each would hold its own copy, and they hide the decode anyway
    ds = ImageFolderCrops(data, crop=crop, downscale=tuple(_opt(args, "downscale")), seed=seed,
                          cache=workers == 0)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=len(ds) >= batch,
                                     num_workers=workers, persistent_workers=workers > 0,
                                     generator=torch.Generator().manual_seed(seed))
    return ds, dl


def _val_images(args, device: torch.device) -> list:
    folder = getattr(args, "val_dir", None)
    if not folder or not int(getattr(args, "val_every", None) or 0):
        return []
    from ..data import KodakEval

    ds = KodakEval(folder, limit=getattr(args, "val_limit", None) or 4)
    return [(item["x"][None].to(device), tuple(item["size"])) for item in ds]


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> int:
    """Entry point of ``lic train hific [--stage hific-1|hific-2]``.

    The run goes through :class:`lic_core.train.runner.Runner`: ``--threads 0`` adapts to
    the machine's load; checkpoints carry the cumulative training CPU seconds (``cpu_s``,
    validation excluded); ``--ckpt-minutes`` checkpoints on a wall-clock timer;
    ``--cpu-budget-min`` stops at a CPU budget; SIGTERM/SIGINT finish the step, checkpoint and
    export; ``--gan-start N`` moves stage 1 on to stage 2 at step N in the same run.
    """
    from ..checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    stage = getattr(args, "stage", None) or "hific-1"
    if stage not in PHASES:
        raise HificTrainError(f"--stage must be one of {', '.join(PHASES)}")
    device = _device(args)
    seed = int(_opt(args, "seed"))
    cfg_name = getattr(args, "hific_config", None)
    if cfg_name is None and getattr(args, "model", None) in ("hific-small", "hific-tiny"):
        cfg_name = args.model  # `lic train hific --model hific-small` works too
    cfg_name = cfg_name or DEFAULTS["hific_config"]
    out = Path(getattr(args, "out", None) or f"runs/{cfg_name}-{stage}")
    steps = int(_opt(args, "steps"))
    runner = Runner(RunSettings(steps, out, int(_opt(args, "log_every")),
                                int(_opt(args, "ckpt_every")), getattr(args, "ckpt_minutes", None),
                                int(_opt(args, "keep")), getattr(args, "cpu_budget_min", None),
                                getattr(args, "time_budget_min", None),
                                getattr(args, "threads", None)), device.type, log=log)
    torch.manual_seed(seed)
    model = HificModel(get_config(cfg_name)).to(device)
    trainer = HificTrainer(model, stage, perceptual=_perceptual(_opt(args, "perceptual"), device),
                           lr=float(_opt(args, "lr")), aux_lr=float(_opt(args, "aux_lr")),
                           lr_drop=int(_opt(args, "lr_drop")), seed=seed,
                           amp=bool(getattr(args, "amp", False)),
                           gan_start=getattr(args, "gan_start", None),
                           warmup=int(_opt(args, "warmup")), clip=float(_opt(args, "clip")),
                           d_lr=getattr(args, "d_lr", None),
                           channels_last=bool(getattr(args, "channels_last", False)))
    resume = getattr(args, "resume", None)
    if resume is None and latest_checkpoint(out) is not None:
        resume = str(out)  # a re-run of the same command continues where it stopped
    cpu_prev = 0.0
    if resume and str(resume).endswith(".safetensors"):
        cpu_prev = trainer.load_seed(resume)
        log(f"resumed the seed {resume} at step {trainer.step} ({cpu_prev / 3600:.2f} CPU-h "
            "booked; fresh optimizers)")
    elif resume:
        state = load_checkpoint(resume, map_location=device)
        trainer.load_state_dict(state)
        cpu_prev = float(state.get("cpu_s", 0.0))
        log(f"resumed {trainer.stage} at step {trainer.step} ({cpu_prev / 3600:.2f} CPU-h booked)")
    elif getattr(args, "init", None):
        load_init_weights(model, args.init)
        trainer.init_lineage = init_lineage_of(args.init)
        log(f"initialised from weights {args.init} (fresh optimizers; built on "
            f"{trainer.init_lineage['cpu_hours']:.2f} CPU-h, {trainer.init_lineage['steps']} "
            "steps)")
    elif stage == "hific-2":
        log("warning: stage hific-2 without --init trains G/D from scratch "
            "(unstable, docs/methods.md §8.3)")
    runner.resume(trainer.step, cpu_prev)
    crop, batch = int(_opt(args, "crop")), int(_opt(args, "batch"))
    ds, dl = _loader(args, crop, batch, seed)
    log(f"{cfg_name} {trainer.stage}: {count_parameters(model) / 1e6:.2f} M params"
        + (f", D {count_parameters(trainer.disc) / 1e6:.2f} M" if trainer.disc else "")
        + (f", GAN from step {trainer.gan_start}" if trainer.gan_start is not None else "")
        + f", {len(ds)} images, batch {batch}, crop {crop}, {device}")
    val_images = _val_images(args, device)
    val_every = int(getattr(args, "val_every", None) or 0)
    val_us = getattr(args, "val_u", None) or (0.0, 0.5, 1.0)
    out.mkdir(parents=True, exist_ok=True)

    def batches():
        epoch = trainer.step // max(1, len(dl))
        while True:
            ds.set_epoch(epoch)
            yield from dl
            epoch += 1

    stream = batches()

    def step(_i: int) -> dict:
        return trainer.train_step(next(stream).to(device, non_blocking=True))

    def save(_i: int) -> Path:
        state = trainer.state_dict()
        state["cpu_s"] = runner.clock()
        return save_checkpoint(state, out, keep=runner.s.keep)

    def report(i: int, window: list, timing: dict) -> tuple[dict, str]:
        logs = {**window[-1], "type": "train", "stage": trainer.stage,
                "cpu_s": round(timing["cpu_s"], 2), "it_s": timing["it_s"],
                "threads": timing["threads"]}
        return logs, " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in logs.items())

    def validate_due(i: int) -> bool:
        if not (val_images and val_every and i % val_every == 0):
            return False
        v = {"type": "val", "step": i, "cpu_s": round(runner.clock(), 2),
             "val": validate(model, val_images, val_us)}
        runner.record(v)
        log(f"val {json.dumps(v['val'])}")
        return True

    reason = runner.run(step, save, report, validate_due)
    target = Path(getattr(args, "export", None) or out / f"{cfg_name}-{stage}.safetensors")
    extra = {"data": str(args.data), "cpu_hours": round(runner.clock() / 3600.0, 4)}
    if trainer.init_lineage:  # the card books what the run was built on too (issue 26)
        lin = trainer.init_lineage
        extra.update(init_lineage=lin,
                     lineage_cpu_hours=round(extra["cpu_hours"] + float(lin["cpu_hours"]), 4),
                     lineage_steps=int(trainer.step) + int(lin.get("steps", 0)))
    digest = export(model.cpu(), target, trainer.stage, trainer.step, extra)
    log(f"{reason} at step {trainer.step}; exported {target} (model id {digest.hex()})")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lic_core.train.hific",
                                description="Train HiFiC (stage hific-1 or hific-2).")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except LicError as exc:
        print(f"lic train: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
