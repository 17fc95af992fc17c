"""The GAN decoder (issue 26): g_s retrained with HiFiC's generator objective on frozen latents.

HiFiC (Mentzer et al., "High-Fidelity Generative Image Compression", NeurIPS 2020) makes a codec
generative by what its *decoder* is trained for: §3 gives the generator's objective ::

    L_EG = C·(1/λ')·r + C·C_D·MSE₂₅₅ + w_P·LPIPS − C_P·log D(x̂, ŷ)

with a conditional discriminator D that sees the quantized latent ŷ beside the picture (§3.1;
one logit per 16×16 patch, docs/methods.md §8.1), and the constants C = 0.1·2⁻⁵, C_D = 0.75,
w_P = 1, C_P = 0.15 (docs/methods.md §8.2; :data:`~lic_core.train.hific.losses.DEFAULT_LOSS`,
the official configs). Here the encoder, hyperprior and contexts of the **shipped** codec are
frozen, so the bits do not change and the rate term is constant: it is dropped, and only g_s and
the inverse gains G' learn ::

    L = C·C_D·MSE₂₅₅ + w_P·LPIPS − C_P·log D(x̂, ŷ)          (non-saturating, §3)

Why this way: "the same bits through three decoders" (MSE / GAN / diffusion) compares decoders,
not codecs; HiFiC's own objective and weights make the GAN decoder HiFiC's, and its budget is the
diffusion decoder's (both cards say so). The decoder has g_s's architecture, so it decodes on the
exact path (:mod:`lic_core.decoder.gan`).

* **Latents**: every step quantizes a batch with :func:`lic_core.codecs.learned.quantized_latents`
  — the real rounding of ``compress()`` on the exact engine, at a random slider level per batch
  (:func:`.finetune.draw_batch`, as the fine-tuning stages draw them).
* **Warm start**: g_s and G' start from the base weights' (not from a fine-tuned decoder): the
  card says so. D starts from scratch, as in HiFiC's stage 2.
* **D**: HiFiC's conditional PatchGAN (:class:`~lic_core.train.hific.discriminator.
  HificDiscriminator`) on ŷ = ŷ_G / G (the quantized latent, scale-free across slider levels),
  sized for our M (M → 12 conditioning channels) with hific-small's widths (32, 64, 128, 256:
  docs/methods.md §8.4 halves the official ones); one D step per G step on the same batch
  (§8.2), x̂ and ŷ detached; Adam lr 1e-4 for both (§8.2).
* **Warm-up** (``gan_start`` steps, default 500): the GAN term joins after a short MSE + LPIPS
  phase. HiFiC trains stage 2 (+GAN) from a stage-1 model trained with MSE + LPIPS, because G and
  D from scratch are unstable (docs/methods.md §8.3); the base g_s was trained for MSE alone, so the
  warm-up is the LPIPS part of HiFiC's stage 1. D already trains during the warm-up, so its first
  gradients to G are informed rather than those of a random network.

``lic train gan`` (``python -m lic_core.train.gan_decoder``) trains in a run folder through
:class:`.runner.Runner` (checkpoints on a wall-clock timer and on SIGTERM, resume, CPU seconds
booked, ``--cpu-budget-min``); the campaign's ``gan`` stage (``campaign/gan.py`` in the
repository) runs it and exports ``<model>-gan.safetensors``.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ..codecs.learned import quantized_latents
from ..errors import LicError
from ..models import load_model
from ..models.hific import HIFIC_SMALL
from ..paths import gan_weights_path
from ..transform.deepen import extra_blocks
from .finetune import (
    FT_KEYS,
    base_hash_of,
    decoder_state,
    draw_batch,
    inference_quantizer,
    load_decoder_state,
    load_init_decoder,
    match_decoder_depth,
)
from .hific.discriminator import HificDiscriminator
from .hific.losses import DEFAULT_LOSS, HificLossConfig, discriminator_loss, mse_255
from .losses.gan import frozen, generator_loss_ns
from .runner import Runner, RunSettings

__all__ = ["GAN_START", "GanDecoderTrainer", "build_discriminator", "train_gan_decoder"]

#: steps of MSE + LPIPS before the GAN term joins (see the module docstring)
GAN_START = 500
#: the latents the decoder learns on: what ``compress()`` codes by default
QUANTIZER = "round"
CKPT_KIND = "gan-decoder"


def build_discriminator(model: nn.Module, cond: int = HIFIC_SMALL.disc_cond,
                        widths: Sequence[int] = HIFIC_SMALL.disc_widths) -> HificDiscriminator:
    """HiFiC's conditional discriminator for a codec with ``model.config.M`` latent channels."""
    return HificDiscriminator(int(model.config.M), int(cond), tuple(int(w) for w in widths))


class GanDecoderTrainer:
    """g_s + G' of ``model`` (the rest frozen), D and their optimizers; :meth:`step` does one
    G step and one D step on a batch of real latents and returns a log dict."""

    def __init__(self, model: nn.Module, perceptual: Optional[nn.Module] = None,
                 disc: Optional[HificDiscriminator] = None, lr: float = 1e-4,
                 d_lr: float = 1e-4, gan_start: int = GAN_START, clip: float = 1.0,
                 loss_cfg: HificLossConfig = DEFAULT_LOSS) -> None:
        """``perceptual``: LPIPS-Alex by default (:class:`lic_core.metrics.lpips_metric.
        LpipsLoss`, frozen); ``clip``: the G gradient norm clip of the fine-tuning stages (0:
        none)."""
        if perceptual is None:
            from .losses.perceptual import default_perceptual

            perceptual = default_perceptual()
        self.model, self.perceptual, self.cfg = model, perceptual, loss_cfg
        self.disc = disc if disc is not None else build_discriminator(model)
        self.gan_start, self.clip = int(gan_start), float(clip)
        for p in model.parameters():
            p.requires_grad_(False)
        self.params = [p for n, p in model.named_parameters() if n.startswith(FT_KEYS)]
        for p in self.params:
            p.requires_grad_(True)
        model.eval()  # no layer behaves differently in train mode; eval keeps z rounding exact
        model.prior.update_tables()
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=d_lr)
        self.step_count = 0

    def release(self) -> None:
        """Give every codec parameter its gradient back (the model may be used elsewhere)."""
        for p in self.model.parameters():
            p.requires_grad_(True)

    def latents(self, x: torch.Tensor, u: float, quantizer) -> dict:
        """The exact engine's real quantization of ``x`` at slider ``u`` (no gradient)."""
        with torch.no_grad():
            return quantized_latents(self.model, x, u, quantizer)

    def step(self, x: torch.Tensor, lat: dict) -> dict:
        """One G step (L of the module docstring; GAN term from ``gan_start`` on) and one D step."""
        model, cfg = self.model, self.cfg
        b = x.shape[0]
        u_t = torch.full((b,), float(lat["u"]))  # the u16-dequantized slider compress() uses
        # the exact engine's ŷ⊙G (what files hold) times the learned G', into the float g_s
        x_hat = model.g_s(lat["y_hat_gained"].float() * model.gains.inv_gain(u_t))
        y_c = lat["y_hat"].float()  # D's condition: the quantized latent ŷ (HiFiC §3.1)
        mse = mse_255(x_hat, x)
        lp = self.perceptual(x_hat, x)
        loss = cfg.C * cfg.C_D * mse + cfg.w_P * lp
        gan = self.step_count >= self.gan_start
        logs: dict = {}
        if gan:
            with frozen(self.disc):
                g = generator_loss_ns(self.disc(x_hat, y_c))
            loss = loss + cfg.C_P * g
            logs["g_gan"] = float(g.detach())
        if not torch.isfinite(loss):
            raise LicError(f"non-finite GAN decoder loss at step {self.step_count + 1}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        self.disc.train()
        d_loss, d_logs = discriminator_loss(self.disc, x, x_hat, y_c)  # both detached inside
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.step_count += 1
        mse01 = float(mse.detach()) / 255.0 ** 2
        logs.update(d_logs, loss=float(loss.detach()), mse255=float(mse.detach()),
                    mse=mse01, lpips=float(lp.detach()), gan=gan)
        return logs

    def state(self) -> dict:
        return {"model": decoder_state(self.model), "disc": self.disc.state_dict(),
                "optimizer": self.opt.state_dict(), "disc_optimizer": self.opt_d.state_dict()}

    def load(self, ck: dict) -> None:
        load_decoder_state(self.model, ck["model"], str(ck.get("_path", "checkpoint")))
        self.disc.load_state_dict(ck["disc"])
        self.opt.load_state_dict(ck["optimizer"])
        self.opt_d.load_state_dict(ck["disc_optimizer"])
        self.step_count = int(ck["step"])


def _resume(tr: GanDecoderTrainer, runner: Runner, base_hash: Optional[str], model_name: str,
            train_cfg: dict, gen: torch.Generator, log: Callable[[str], None],
            init_decoder: Optional[Path] = None,
            ck: Optional[dict] = None) -> tuple[list, Optional[dict]]:
    """Continue ``ck``, the newest checkpoint of the run folder (step, booked CPU seconds,
    sampling RNG); returns (the training-setting changes so far, the warm start the run began
    from). Refuses a checkpoint of other base weights. Without a checkpoint, g_s and G' start
    from ``init_decoder`` when given (:func:`.finetune.load_init_decoder`)."""
    if ck is None:
        if not init_decoder:
            return [], None
        init = load_init_decoder(tr.model, init_decoder)
        log(f"g_s and G' start from {init['file']}: {init['about'] or 'a decoder file'}")
        return [], init
    name = Path(ck["_path"]).name
    if base_hash and ck.get("base_weights_hash") not in (None, base_hash):
        raise LicError(f"{ck['_path']} was trained on other {model_name} weights "
                       f"({ck.get('base_weights_hash')}, now {base_hash}); start afresh")
    tr.load(ck)  # at the checkpoint's depth (_run_depth)
    gen.set_state(ck["generator"])
    changes = list(ck.get("train_changes") or [])
    was = ck.get("train") or {}
    # settings older checkpoints did not record had their defaults (w_P: HiFiC's 1.0)
    was = {**UNRECORDED_DEFAULTS, **was}
    diff = {k: (was.get(k), v) for k, v in train_cfg.items() if was.get(k) != v}
    if diff:  # a resumed run takes the settings it is given; the card lists when they changed
        for opt, key in ((tr.opt, "lr"), (tr.opt_d, "d_lr")):
            for g in opt.param_groups:
                g["lr"] = float(train_cfg[key])
        changes.append({"step": int(ck["step"]), "from": {k: a for k, (a, _) in diff.items()},
                        "to": {k: b for k, (_, b) in diff.items()}})
        log(f"training settings changed from step {int(ck['step'])}: {changes[-1]['to']}")
    runner.resume(int(ck["step"]), float(ck.get("cpu_s", 0.0)))
    log(f"resumed {name} at step {int(ck['step'])}")
    return changes, ck.get("init")


def _run_depth(ck: Optional[dict], init_decoder: Optional[Path], extra: Optional[int]) -> int:
    """The generator's trunk depth of a run, decided before g_s's parameters are collected: a
    run resumed from ``ck`` keeps its depth (another ``extra`` is refused), a new one takes
    ``extra`` or, when None, its init decoder's; an init decoder deeper than ``extra`` is
    refused."""
    from .finetune import init_decoder_depth

    if ck is not None:
        depth = int(ck.get("g_s_extra_blocks") or 0)
        if extra is not None and int(extra) != depth:
            raise LicError(f"{ck['_path']} trained a g_s with {depth} trunk blocks, this run "
                           f"asks for {extra} (--extra-blocks {depth}, or start afresh)")
        return depth
    has = init_decoder_depth(init_decoder) if init_decoder else 0
    if extra is not None and int(extra) < has:
        raise LicError(f"{Path(init_decoder).name} has {has} trunk blocks: --extra-blocks "
                       f"{extra} cannot hold it")
    return has if extra is None else int(extra)


#: training settings checkpoints made before they were recorded ran with
UNRECORDED_DEFAULTS = {"w_P": 1.0}


def train_gan_decoder(model, data: str | Path, steps: int, batch: int = 8, crop: int = 128,
                      lr: float = 1e-4, d_lr: float = 1e-4, gan_start: int = GAN_START,
                      clip: float = 1.0, seed: int = 0, cpu_budget_min: Optional[float] = None,
                      run_dir: Optional[Path] = None, ckpt_minutes: Optional[float] = None,
                      keep: int = 2, threads: Optional[int] = None, log_every: int = 10,
                      perceptual: Optional[nn.Module] = None,
                      disc: Optional[HificDiscriminator] = None,
                      log: Callable[[str], None] = print,
                      init_decoder: Optional[Path] = None,
                      extra: Optional[int] = None, perceptual_weight: float = 1.0) -> dict:
    """Train ``model``'s g_s + G' in place as a GAN decoder; returns a summary.

    ``steps`` counts from the start of the run; with ``run_dir`` holding a checkpoint the run
    resumes it (decoder and D tensors, both Adam states, step, booked CPU seconds, sampling RNG)
    and trains on to ``steps`` or until ``cpu_budget_min`` CPU-minutes are booked in all
    (:class:`.runner.Runner`: checkpoints every ``ckpt_minutes`` of wall time, on SIGTERM/SIGINT
    and at the end; ``train`` records in ``run_dir/log.jsonl``). A new run starts g_s and G' from
    ``init_decoder`` when given, else from the base weights'. ``extra`` > 0 trains a deeper
    generator: g_s after a trunk of ``extra`` identity-initialised residual bottlenecks at the
    latent resolution (:mod:`lic_core.transform.deepen`; the picture starts as g_s's); None
    takes the checkpoint's depth, else the init decoder's, else 0 (:func:`_run_depth`).
    ``perceptual_weight``: w_P of the objective (HiFiC's 1.0 by default); another value is a
    departure from HiFiC's constants that the checkpoint's ``loss`` and ``train`` record, and the
    card says so."""
    from .checkpoint import save_checkpoint
    from .data import ImageFolderCrops

    q = inference_quantizer(model, QUANTIZER)
    ds = ImageFolderCrops(data, crop=crop, seed=seed, cache=True)  # no workers: decode once
    runner = Runner(RunSettings(steps, run_dir, log_every, ckpt_minutes=ckpt_minutes, keep=keep,
                                cpu_budget_min=cpu_budget_min, threads=threads), log=log)
    ck = runner.latest(CKPT_KIND, "GAN decoder")  # read once: its depth, then its tensors
    extra = _run_depth(ck, init_decoder, extra)
    match_decoder_depth(model, extra)  # before the trainer collects g_s's parameters
    if not (perceptual_weight > 0 and math.isfinite(perceptual_weight)):
        raise LicError(f"--perceptual-weight must be a positive number, got {perceptual_weight}")
    tr = GanDecoderTrainer(model, perceptual, disc, lr, d_lr, gan_start, clip,
                           replace(DEFAULT_LOSS, w_P=float(perceptual_weight)))
    gen = torch.Generator().manual_seed(seed)
    base_hash = base_hash_of(model)
    train_cfg = {"lr": lr, "d_lr": d_lr, "batch": batch, "crop": crop, "seed": seed,
                 "gan_start": int(gan_start), "clip": clip,
                 **({"extra_blocks": int(extra)} if extra else {}),  # older runs: none
                 "w_P": float(perceptual_weight)}  # a resume without the flag is a change
    disc_cfg = {"C_y": int(model.config.M), "cond": tr.disc.cond.out_channels,
                "widths": [m.out_channels for m in tr.disc.body if hasattr(m, "out_channels")]}
    changes, init = _resume(tr, runner, base_hash, model.config.name, train_cfg, gen, log,
                            init_decoder, ck)

    last: dict = {}

    def step(i: int) -> dict:
        x, s, u = draw_batch(ds, gen, batch, i, model.config.levels)
        last.clear()
        last.update(tr.step(x, tr.latents(x, u, q)), level=s)
        return dict(last)

    def save(i: int) -> Path:
        return save_checkpoint({"kind": CKPT_KIND, **tr.state(), "generator": gen.get_state(),
                                "step": i, "cpu_s": runner.clock(), "quantizer": q.name,
                                "base_model": model.config.name, "base_weights_hash": base_hash,
                                "train": train_cfg, "train_changes": changes,
                                "g_s_extra_blocks": extra_blocks(model.g_s),
                                "disc_config": disc_cfg, "loss": dict(vars(tr.cfg)),
                                "init": init},
                               run_dir, keep)

    def report(i: int, window: list, timing: dict) -> tuple[dict, str]:
        logs = window[-1]
        mean = {k: sum(r[k] for r in window) / len(window) for k in ("mse", "lpips")}
        rec = {"type": "train", "step": i, "loss": logs["loss"], "level": logs["level"],
               "mse255": logs["mse255"], "lpips": logs["lpips"],
               "lpips_recent": round(mean["lpips"], 5),
               "psnr_recent": round(-10 * math.log10(max(mean["mse"], 1e-10)), 3),
               "gan": logs["gan"], "g_gan": logs.get("g_gan"), "d_loss": logs["d_loss"],
               "d_real": logs["d_real"], "d_fake": logs["d_fake"],
               "cpu_s": round(timing["cpu_s"], 2), "it_s": timing["it_s"],
               "threads": timing["threads"]}
        line = (f"gan-decoder step {i}/{steps} loss {logs['loss']:.4f} LPIPS "
                f"{mean['lpips']:.4f} ~{rec['psnr_recent']:.2f} dB D(x) {logs['d_real']:.2f} "
                f"D(x̂) {logs['d_fake']:.2f}" + ("" if logs["gan"] else " (warm-up, no GAN term)"))
        return rec, line

    t0 = time.time()
    try:
        reason = runner.run(step, save, report)
    finally:
        tr.release()
    return {"steps": runner.step, "reason": reason, "seconds": time.time() - t0,
            "cpu_s": runner.clock(), "final_loss": last.get("loss"),
            "final_lpips": last.get("lpips"), "base_weights_hash": base_hash,
            "train": train_cfg, "disc_config": disc_cfg, "init": init}


def card_markdown(name: str, card: dict, digest: str) -> str:
    """The model card of a GAN decoder as Markdown: its facts, budgets, then the Kodak table."""
    from ..evaluation.generative import kodak_table_md

    lines = [f"# {name}", "", f"**{card.get('status', '')}**", ""]
    skip = {"eval", "status", "published", "budgets"}
    lines += [f"- **{k}**: {v}" for k, v in card.items() if k not in skip]
    lines.append(f"- **weights hash**: {digest}")
    if card.get("budgets"):
        lines.append(f"- **CPU budgets**: {card['budgets']['note']}")
    ev = card.get("eval")
    if ev:
        lines += ["", f"## Kodak ({len(ev.get('images', []))} images, real bitstreams)", "",
                  kodak_table_md(ev["rows"], (), card.get("published") or {}),
                  "MSE and GAN rows decode the same files (same bpp); the MSE decoder is the one "
                  "`compress()` uses for rounding."]
    return "\n".join(lines) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="lic-lgem-cpu", help="registry name with shipped weights")
    p.add_argument("--weights", default=None, help="weights file (default the shipped ones)")
    p.add_argument("--data", required=True, help="training folders (several joined by ':')")
    p.add_argument("--steps", type=int, default=1000,
                   help="total steps of the run (a resumed run trains on to this count)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-4, help="g_s + G' (HiFiC: 1e-4)")
    p.add_argument("--d-lr", type=float, default=1e-4, help="discriminator (HiFiC: 1e-4)")
    p.add_argument("--gan-start", type=int, default=GAN_START,
                   help="steps of MSE + LPIPS before the GAN term joins")
    p.add_argument("--clip", type=float, default=1.0, help="G gradient norm clip (0: none)")
    p.add_argument("--disc-widths", default=",".join(map(str, HIFIC_SMALL.disc_widths)),
                   help="D's four conv widths (hific-small's by default)")
    p.add_argument("--disc-cond", type=int, default=HIFIC_SMALL.disc_cond)
    p.add_argument("--perceptual-weight", type=float, default=1.0,
                   help="w_P, the LPIPS term's weight (HiFiC: 1.0; another value departs from "
                        "HiFiC's constants and the card says so)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = adapt to the load")
    p.add_argument("--cpu-budget-min", type=float, default=None,
                   help="stop once training has used this many CPU-minutes (cumulative)")
    p.add_argument("--run-dir", default=None, help="checkpoint + log folder (resumes it)")
    p.add_argument("--ckpt-minutes", type=float, default=None)
    p.add_argument("--keep", type=int, default=2)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--extra-blocks", type=int, default=None,
                   help="a deeper generator: a trunk of this many residual bottlenecks on the "
                        "latent channels before g_s, starting as the identity (0: g_s itself; "
                        "default: a resumed run's depth, else the --init-decoder's, else 0)")
    p.add_argument("--init-decoder", default=None, help="start g_s and G' from this decoder "
                   "file instead of the base weights' (a run without a checkpoint)")
    p.add_argument("--no-write", action="store_true",
                   help="only train and checkpoint (the campaign stage exports later)")
    p.add_argument("--out", default=None, help="output (default <weights dir>/<model>-gan)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def run(args: argparse.Namespace) -> int:
    import os

    from .finetune import save_finetuned

    for part in str(args.data).split(os.pathsep):
        if not Path(part).is_dir():
            raise LicError(f"training data folder not found: {part}")
    out = Path(args.out) if args.out else gan_weights_path(args.model)
    if not args.no_write and out.exists() and not args.force:
        raise LicError(f"{out} exists; pass --force to overwrite it")
    model = load_model(args.model, args.weights)
    widths = [int(w) for w in str(args.disc_widths).split(",") if w]
    summary = train_gan_decoder(
        model, args.data, args.steps, args.batch, args.crop, args.lr, args.d_lr,
        args.gan_start, args.clip, args.seed, args.cpu_budget_min,
        Path(args.run_dir) if args.run_dir else None, args.ckpt_minutes, args.keep,
        args.threads, args.log_every, disc=build_discriminator(model, args.disc_cond, widths),
        init_decoder=args.init_decoder, extra=args.extra_blocks,
        perceptual_weight=args.perceptual_weight)
    if args.no_write:
        print(f"stopped after {summary['steps']} steps ({summary['reason']})")
        return 0
    card = {"kind": "GAN decoder (HiFiC's generator objective on frozen latents)",
            "base_model": args.model, "data": str(args.data), **summary}
    digest = save_finetuned(model, out, card, card_markdown)
    print(f"wrote {out} (hash {digest.hex()}) after {summary['steps']} steps")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    import sys

    ap = argparse.ArgumentParser(prog="python -m lic_core.train.gan_decoder",
                                 description=__doc__.splitlines()[0])
    add_arguments(ap)
    try:
        return run(ap.parse_args(argv))
    except LicError as exc:
        print(f"gan decoder: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
