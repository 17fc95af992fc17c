"""Training the blur-dissipated diffusion decoder on a frozen codec (docs/methods.md §7.2, §7.3,
§7.5).

The codec is frozen (eval mode, no gradients). Per batch a rate slider value u ~ U[0, 1] is drawn
per crop, so one decoder serves the whole rate range. Latents are what the deployed decoders
receive: :meth:`lic_core.models.lgem.LicModel.decoder_latents`, exact rounding around the
predicted means in the gained domain (``ŷ_G = μG + round(yG − μG)``, the same two-pass
checkerboard means as the coder: the deployed "round" quantizer) times the learned inverse gain,
``ŷ_G ⊙ G'`` — the input of g_s in the codec (`decode_latent`, the exact path). The texture
latents are ``codec.g_s.forward_features(ŷ)``, whose picture is then the codec's own MSE
reconstruction. (Until 2026-11-30 this used ``forward(x, u)["y_hat"] = ŷ_G / G``; G' is learned
and differs from 1/G, so the decoder learned on a g_s picture ≈ 4 dB worse than the one it is given
when decoding a file, and at high rates it damaged the better picture it got.)

Loss: by ``config.param``: x̂0 prediction (default) ``w(t)‖x0 − x̂0‖²`` with ``w = 1`` or
``min(SNR, γ)``, or ε-prediction L2/L1 with optional min-SNR-γ weighting (docs/methods.md §7.2);
plus an optional LPIPS term on x̂0 (the network output, or for ε the one-step estimate with clamped
1/α) for crops with t < ``lpips_t_max`` only (docs/methods.md §7.5).
AdamW, linear warm-up, gradient clipping, EMA; the product file holds the EMA weights.

Files in ``out``: ``diffusion-train.safetensors`` (raw weights + step; resume from it with a fresh
optimizer), ``<config name>.safetensors`` (EMA weights, :meth:`DiffusionDecoder.load`-able) and
``log.jsonl``. CLI: ``lic train diffusion`` (see :func:`add_arguments`, :func:`run`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..decoder.diffusion.blurring import diffuse, eps_loss, x0_estimate, x0_loss
from ..decoder.diffusion.decoder import DiffusionDecoder, config_for_codec, resolve_device
from ..decoder.diffusion.unet import ARCH_FIELDS, DiffusionConfig
from ..errors import LicError
from .runner import Runner, RunSettings

__all__ = ["train_diffusion", "codec_latents", "add_arguments", "run", "DiffusionTrainError",
           "TRAIN_FILE", "DEFAULTS"]

TRAIN_FILE = "diffusion-train.safetensors"
DEFAULTS: dict[str, Any] = dict(
    model="lic-lgem", steps=300_000, batch=8, crop=256, lr=1e-4, ema=0.999, seed=0,
    log_every=100, ckpt_every=2000, warmup=1000, clip=1.0, workers=4, downscale=(0.5, 1.0), keep=2,
    diffusion_config="cpu", lpips_weight=0.0, lpips_t_max=0.5, sigma_b_max=20.0,
    diffusion_loss="l2", min_snr=None, diffusion_param="x", lpips_relative=False)


def _arch(cfg: DiffusionConfig) -> dict:
    return {k: v for k, v in cfg.to_dict().items() if k in ARCH_FIELDS}


#: ``--diffusion-config``: the architecture fields each preset sets (the contexts come from the
#: codec); "cpu" is the shipped CPU-sized decoder, "full" the first full-resolution U-Net
PRESETS: dict[str, Callable[[], dict]] = {
    "cpu": lambda: _arch(DiffusionConfig()),
    "full": lambda: _arch(DiffusionConfig.full()),
    "tiny": lambda: _arch(DiffusionConfig.tiny()),
    "tiny-cpu": lambda: _arch(DiffusionConfig.tiny_lite()),
}


class DiffusionTrainError(LicError):
    """A diffusion training run cannot start (bad arguments, missing data or weights)."""


@torch.no_grad()
def codec_latents(codec_model: nn.Module, x: Tensor, u: Tensor) -> tuple[Tensor, Any]:
    """(ŷ, g_s.forward_features(ŷ)) of the frozen codec, with ŷ exactly what the deployed
    decoders receive (``decoder_latents``: ŷ_G ⊙ G'), so that the MSE picture among the
    contexts is the codec's own MSE reconstruction; see the module docstring."""
    if hasattr(codec_model, "decoder_latents"):
        y_hat = codec_model.decoder_latents(x, u)
    elif hasattr(codec_model, "quantized_latents"):
        y_hat = codec_model.quantized_latents(x, u)
    else:
        y_hat = codec_model(x, u)["y_hat"]
    return y_hat, codec_model.g_s.forward_features(y_hat)


def _as_batches(data: Union[str, Path, Tensor], crop: int, batch: int, seed: int,
                workers: int, downscale: Sequence[float]):
    """An endless iterator of B×3×crop×crop batches in [0, 1] (a tensor or an image folder)."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(data, Tensor):
        n = data.shape[0]
        while True:
            idx = torch.randperm(n, generator=g)
            for i in range(0, n - batch + 1 if n >= batch else 1, batch):
                yield data[idx[i:i + batch]]
    from .data import ImageFolderCrops

    ds = ImageFolderCrops(data, crop=crop, downscale=tuple(downscale), seed=seed,
                          cache=workers == 0)  # workers hide the decode (and would each copy)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True,
                                     drop_last=len(ds) >= batch, num_workers=workers,
                                     persistent_workers=workers > 0, generator=g)
    epoch = 0
    while True:
        ds.set_epoch(epoch)
        yield from dl
        epoch += 1


def _load_raw(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    return {k: v.float() for k, v in load_file(str(path)).items()}, meta


def train_diffusion(codec_model: nn.Module, data_dir: Union[str, Path, Tensor],
                    out: Union[str, Path], steps: int = 300_000, batch: int = 8, crop: int = 256,
                    lr: float = 1e-4, lpips_weight: float = 0.0,
                    resume: Optional[Union[str, Path]] = None,
                    device: Optional[Union[str, torch.device]] = None, *,
                    config: Optional[DiffusionConfig] = None, ema_decay: float = 0.999,
                    ckpt_every: int = 2000, log_every: int = 100, seed: int = 0,
                    warmup: int = 1000, clip: float = 1.0, lpips_t_max: float = 0.5,
                    lpips_module: Optional[nn.Module] = None, amp: bool = False,
                    workers: int = 0, downscale: Sequence[float] = (0.5, 1.0),
                    time_budget_min: Optional[float] = None,
                    threads: Optional[int] = None, ckpt_minutes: Optional[float] = None,
                    cpu_budget_min: Optional[float] = None, keep: int = 2,
                    lpips_relative: bool = False,
                    log: Callable[[str], None] = print) -> dict:
    """Train a :class:`DiffusionDecoder` for ``codec_model`` (frozen); returns a summary dict
    ``{"step", "reason", "losses" (one per step of this run), "ema_path", "train_path",
    "checkpoint", "cpu_s"}``.

    ``steps`` is absolute (a resumed run stops at the same total). ``data_dir`` may also be an
    N×3×H×W tensor of crops in [0, 1] (tests). Re-running in the same ``out`` continues from its
    newest full checkpoint (``ckpt-*.pt``: weights, optimizer, EMA, step, booked CPU seconds);
    ``resume`` names a weights file or run folder to start from with a fresh optimizer.

    The run goes through :class:`.runner.Runner`: ``threads`` 0 = adapt to the machine's load, a
    positive count = fixed; ``ckpt_minutes`` checkpoints on a wall-clock timer;
    ``cpu_budget_min`` stops at that many cumulative training CPU-minutes, ``time_budget_min``
    before that many wall minutes; SIGTERM/SIGINT finish the step, checkpoint, stop.

    ``lpips_relative`` weighs each crop's LPIPS term by ``mean(r)/r_i``, with ``r_i`` the LPIPS
    of the MSE decoder's picture of the same crop (no gradient): the term then asks every crop to
    beat g_s by the same *factor*, which is what "LPIPS below the MSE decoder's at every slider
    point" needs. Plain LPIPS is dominated by the low-rate crops, whose LPIPS is 2–3× larger, and
    leaves the high rates behind. The log's ``lpips_rel`` is the mean ratio ``d_i/r_i`` (< 1:
    better than g_s on those training crops). Needs a per-crop (``reduction="none"``) LPIPS.
    """
    from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
    from .ema import EMA

    dev = resolve_device(device)
    runner = Runner(RunSettings(steps, Path(out), log_every, ckpt_every, ckpt_minutes, keep,
                                cpu_budget_min, time_budget_min, threads), dev.type, log=log)
    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    codec_model = codec_model.to(dev).eval()
    for p in codec_model.parameters():
        p.requires_grad_(False)
    cfg = config or config_for_codec(codec_model)
    dec = DiffusionDecoder(cfg).to(dev)
    start, cpu_prev, full = 0, 0.0, None
    if resume is None:
        ck_path = latest_checkpoint(out)
        if ck_path is not None:
            full = load_checkpoint(ck_path, map_location=dev)
        elif (out / TRAIN_FILE).is_file():
            resume = out  # raw weights of an older run: continue them with a fresh optimizer
    if full is not None:
        if full.get("kind") != "diffusion" or full.get("config") != cfg.to_dict():
            raise DiffusionTrainError(f"{Path(full['_path']).name} in {out} is not a checkpoint "
                                      "of this diffusion decoder config; use another --out")
        dec.load_state_dict(full["model"], strict=True)
        start, cpu_prev = int(full["step"]), float(full.get("cpu_s", 0.0))
        log(f"resumed {Path(full['_path']).name} at step {start} "
            f"({cpu_prev / 3600.0:.2f} CPU-h booked)")
    elif resume is not None:
        rp = Path(resume)
        rp = rp / TRAIN_FILE if rp.is_dir() else rp
        if not rp.is_file():
            raise DiffusionTrainError(f"no diffusion weights to resume from at {rp}")
        state, meta = _load_raw(rp)
        try:
            dec.load_state_dict(state, strict=True)
        except RuntimeError:
            raise DiffusionTrainError(f"{rp.name} does not match the diffusion config") from None
        start = int(meta.get("step", 0))
        cpu_prev = float(meta.get("cpu_s", 0.0))
        log(f"resumed diffusion weights from {rp} at step {start} (fresh optimizer)")
    ema = EMA(dec, ema_decay) if ema_decay > 0 else None
    ema_file = out / f"{cfg.name}.safetensors"
    if full is not None and ema is not None and full.get("ema"):
        ema.load_state_dict(full["ema"])
    elif resume is not None and ema is not None and ema_file.is_file():
        ema_state, _ = _load_raw(ema_file)
        if ema_state.keys() == ema.shadow.keys():
            for k, v in ema_state.items():
                ema.shadow[k].copy_(v)

    lpips = lpips_module
    if lpips_weight > 0 and lpips is None:
        from ..metrics.lpips_metric import LpipsLoss

        lpips = LpipsLoss(reduction="none")
    if lpips is not None:
        lpips = lpips.to(dev)
    decay, no_decay = [], []
    for name, p in dec.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.99))
    if full is not None and full.get("optimizer") is not None:
        opt.load_state_dict(full["optimizer"])
    sched = cfg.schedule
    gen = torch.Generator().manual_seed(seed + 1000003 * start)
    batches = _as_batches(data_dir, crop, batch, seed + start, workers, downscale)
    log(f"diffusion decoder {cfg.name} ({cfg.arch}): {dec.num_parameters() / 1e6:.2f} M params, "
        f"σ_B,max {cfg.sigma_b_max}, loss {cfg.loss}"
        + (f", {'relative ' if lpips_relative else ''}LPIPS ×{lpips_weight} for "
           f"t<{lpips_t_max}" if lpips is not None else "")
        + f", batch {batch}, crop {crop}, {dev}")
    runner.resume(start, cpu_prev)
    codec_hash = getattr(codec_model, "weights_meta", {}).get("weights_hash", "")

    def save(step: int) -> Path:
        cpu_s = runner.clock()
        meta = {"step": step, "cpu_s": cpu_s}
        card = _card(cfg, step, codec_model, lpips_weight)
        card["cpu_hours"] = round(cpu_s / 3600.0, 4)
        card["lpips_relative"] = bool(lpips_relative)
        dec.save(out / TRAIN_FILE, card={"kind": "raw training weights"}, extra_meta=meta)
        if ema is not None:
            raw = {k: v.detach().clone() for k, v in dec.state_dict().items()}
            ema.copy_to(dec)
            dec.save(ema_file, card=card, extra_meta=meta)
            dec.load_state_dict(raw)
        else:
            dec.save(ema_file, card=card, extra_meta=meta)
        return save_checkpoint(
            {"kind": "diffusion", "model": dec.state_dict(), "optimizer": opt.state_dict(),
             "ema": ema.state_dict() if ema is not None else None, "step": step,
             "cpu_s": cpu_s, "config": cfg.to_dict(), "model_name": cfg.name,
             "codec": cfg.codec, "codec_weights_hash": codec_hash,
             "train": {"batch": batch, "crop": crop, "lr": lr, "lpips_weight": lpips_weight,
                       "lpips_relative": bool(lpips_relative),
                       "ema": ema_decay, "seed": seed}}, out, keep=keep)

    losses: list[float] = []

    def step(i: int) -> dict:
        x = next(batches).to(dev, torch.float32)
        b = x.shape[0]
        u = torch.rand(b, generator=gen).to(dev)
        y_hat, feats = codec_latents(codec_model, x, u)
        ctx = [c.detach() for c in dec.contexts(y_hat, feats)]
        x0 = x * 2.0 - 1.0
        t = torch.rand(b, generator=gen, dtype=torch.float64).to(dev)
        eps = torch.randn(x0.shape, generator=gen).to(dev)
        x_t, _ = diffuse(x0, t, sched, noise=eps)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp and dev.type == "cuda"):
            pred = dec.unet(x_t, t.float(), ctx)
        pred = pred.float()
        if cfg.param == "x":
            loss = x0_loss(pred, x0, t, sched, kind=cfg.loss, min_snr=cfg.min_snr)
        else:
            loss = eps_loss(pred, eps, t, sched, kind=cfg.loss, min_snr=cfg.min_snr)
        logs = {"type": "train", "step": i + 1, f"{cfg.param}_loss": float(loss.detach())}
        if lpips is not None and lpips_weight > 0:
            sel = t < lpips_t_max
            if bool(sel.any()):
                x0_hat = (pred[sel] if cfg.param == "x" else
                          x0_estimate(x_t[sel], pred[sel], t[sel], sched, cfg.inv_alpha_max))
                d = lpips(((x0_hat + 1.0) * 0.5).clamp(0.0, 1.0), x[sel])
                if lpips_relative:
                    lp, logs["lpips_rel"] = _relative_lpips(lpips, d, feats, x, sel)
                else:
                    lp = d.mean()
                loss = loss + lpips_weight * lp * sel.float().mean()
                logs["lpips"] = float(d.detach().mean())
        if not torch.isfinite(loss):
            raise DiffusionTrainError(f"non-finite loss at step {i + 1}")
        for grp in opt.param_groups:
            grp["lr"] = lr * min(1.0, (i + 1) / max(1, warmup))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(dec.parameters(), clip))
        opt.step()
        if ema is not None:
            ema.update(dec)
        logs["loss"] = float(loss.detach())
        losses.append(logs["loss"])
        return logs

    def report(i: int, window: list, timing: dict) -> tuple[dict, str]:
        logs = {**window[-1], "cpu_s": round(timing["cpu_s"], 2), "it_s": timing["it_s"],
                "threads": timing["threads"], "lr": opt.param_groups[0]["lr"]}
        return logs, " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in logs.items())

    dec.train()
    reason = runner.run(step, save, report)
    dec.eval()
    return {"step": runner.step, "reason": reason, "losses": losses, "ema_path": str(ema_file),
            "train_path": str(out / TRAIN_FILE), "checkpoint": str(runner.last_checkpoint),
            "cpu_s": runner.clock()}


def _relative_lpips(lpips: nn.Module, d: Tensor, feats: Any, x: Tensor,
                    sel: Tensor) -> tuple[Tensor, float]:
    """(the LPIPS term weighted by the MSE decoder's LPIPS of each crop, mean ratio d_i/r_i);
    see ``lpips_relative`` of :func:`train_diffusion`."""
    from ..decoder.diffusion.decoder import _split_features

    if d.ndim != 1:
        raise DiffusionTrainError("lpips_relative needs a per-crop LPIPS (reduction='none')")
    x_mse, _ = _split_features(feats)
    if x_mse is None:
        raise DiffusionTrainError("lpips_relative needs the MSE picture among the contexts")
    with torch.no_grad():
        ref = lpips(x_mse[sel].clamp(0.0, 1.0), x[sel]).clamp_min(1e-3)
    w = ref.mean() / ref
    return (d * w).mean(), float((d.detach() / ref).mean())


def _card(cfg: DiffusionConfig, step: int, codec_model: nn.Module, lpips_weight: float) -> dict:
    return {"model": cfg.name, "codec": cfg.codec, "steps_trained": step,
            "family": "blurring diffusion decoder (Hoogeboom & Salimans 2023; LGEM decoder, "
                      "docs/methods.md §7)", "sigma_b_max": cfg.sigma_b_max, "loss": cfg.loss,
            "lpips_weight": lpips_weight,
            "codec_weights_hash": getattr(codec_model, "weights_meta", {}).get("weights_hash", "")}


# ---- CLI hook (lic train diffusion) ----------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the diffusion stage. Flags shared with ``lic train`` default to None here; the
    stage applies :data:`DEFAULTS` in :func:`run`."""
    p = parser
    p.add_argument("--model", default=None, help="codec to condition on (lic-lgem)")
    p.add_argument("--codec-weights", default=None, help="codec .safetensors (default lic_core/assets/weights/)")
    p.add_argument("--random-codec", action="store_true", default=None,
                   help="untrained codec (smoke tests only)")
    p.add_argument("--data", default=None, help="folder of training photos")
    p.add_argument("--out", default=None, help="run folder")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--crop", type=int, default=None, help="multiple of 64")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--ema", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", default=None, help="diffusion weights file or run folder")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; 0 = adapt to the machine's load")
    p.add_argument("--amp", action="store_true", default=None, help="bf16 autocast (GPU)")
    p.add_argument("--log-every", type=int, default=None)
    p.add_argument("--ckpt-every", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--clip", type=float, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--downscale", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--time-budget-min", type=float, default=None)
    p.add_argument("--ckpt-minutes", type=float, default=None,
                   help="also checkpoint whenever this many wall minutes passed")
    p.add_argument("--cpu-budget-min", type=float, default=None,
                   help="stop once training has used this many CPU-minutes (cumulative)")
    p.add_argument("--keep", type=int, default=None, help="checkpoints kept (2)")
    p.add_argument("--diffusion-config", choices=tuple(PRESETS), default=None,
                   help="cpu: the CPU-sized decoder (default); full: the full-resolution "
                        "U-Net; tiny / tiny-cpu: smoke tests")
    p.add_argument("--sigma-b-max", type=float, default=None, help="blur strength σ_B,max (20)")
    p.add_argument("--diffusion-loss", choices=("l2", "l1"), default=None)
    p.add_argument("--diffusion-param", choices=("x", "eps"), default=None,
                   help="U-Net predicts x̂0 (x, default) or ε (eps, docs/methods.md §7.2)")
    p.add_argument("--min-snr", type=float, default=None, help="min-SNR-γ weighting (off)")
    p.add_argument("--lpips-weight", type=float, default=None, help="LPIPS term weight (0)")
    p.add_argument("--lpips-t-max", type=float, default=None, help="LPIPS only for t below (0.5)")
    p.add_argument("--lpips-relative", action="store_true", default=None,
                   help="weigh each crop's LPIPS by the MSE decoder's LPIPS of it (every rate "
                        "counts alike)")
    p.add_argument("--export", default=None, help="copy the final EMA weights here")


def _opt(args: argparse.Namespace, name: str) -> Any:
    v = getattr(args, name, None)
    return DEFAULTS.get(name) if v is None else v


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> int:
    """Entry point of ``lic train diffusion``."""
    from ..models import build_model, load_model

    if not getattr(args, "data", None):
        raise DiffusionTrainError("--data is required (a folder of training photos)")
    name = _opt(args, "model")
    if getattr(args, "random_codec", None):
        codec = build_model(name)
        log(f"warning: untrained codec {name} (--random-codec, smoke tests only)")
    else:
        codec = load_model(name, getattr(args, "codec_weights", None))
    overrides: dict[str, Any] = {"sigma_b_max": float(_opt(args, "sigma_b_max")),
                                 "loss": _opt(args, "diffusion_loss"),
                                 "min_snr": _opt(args, "min_snr"),
                                 "param": _opt(args, "diffusion_param")}
    overrides.update(PRESETS[_opt(args, "diffusion_config")]())
    cfg = config_for_codec(codec, **overrides)
    crop = int(_opt(args, "crop"))
    if crop % 64:
        raise DiffusionTrainError(f"--crop must be a multiple of 64, got {crop}")
    out = Path(getattr(args, "out", None) or f"runs/{cfg.name}")
    summary = train_diffusion(
        codec, args.data, out, steps=int(_opt(args, "steps")), batch=int(_opt(args, "batch")),
        crop=crop, lr=float(_opt(args, "lr")), lpips_weight=float(_opt(args, "lpips_weight")),
        resume=getattr(args, "resume", None), device=getattr(args, "device", None), config=cfg,
        ema_decay=float(_opt(args, "ema")), ckpt_every=int(_opt(args, "ckpt_every")),
        log_every=int(_opt(args, "log_every")), seed=int(_opt(args, "seed")),
        warmup=int(_opt(args, "warmup")), clip=float(_opt(args, "clip")),
        lpips_t_max=float(_opt(args, "lpips_t_max")), amp=bool(getattr(args, "amp", False)),
        workers=int(_opt(args, "workers")), downscale=tuple(_opt(args, "downscale")),
        time_budget_min=getattr(args, "time_budget_min", None),
        threads=getattr(args, "threads", None), ckpt_minutes=getattr(args, "ckpt_minutes", None),
        cpu_budget_min=getattr(args, "cpu_budget_min", None), keep=int(_opt(args, "keep")),
        lpips_relative=bool(_opt(args, "lpips_relative")), log=log)
    target = summary["ema_path"]
    if getattr(args, "export", None):
        import shutil

        Path(args.export).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(summary["ema_path"], args.export)
        target = args.export
    log(f"{summary['reason']} at step {summary['step']}; decoder weights {target}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lic_core.train.diffusion",
                                description="Train the blur-dissipated diffusion decoder.")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except LicError as exc:
        print(f"lic train: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
