"""Fine-tuning the decoder on latents from the real inference quantizer (Borzechowski et al.,
ICIP 2024, arXiv 2506.08662; docs/methods.md §4.5).

Stage-1 training sees noise/STE proxies; at inference the synthesis transform gets latents
quantized by rounding, RDOQ or trellis-coded quantization (TCQ reconstructions lie on a finer
grid, Δ_u ≈ 0.56, that g_s never saw).  Here the encoder, hyperprior, context model and forward
gains are frozen; every step quantizes a batch with :func:`lic_core.codecs.learned.quantized_latents`
— the latent codec's steps that ``compress()`` runs, minus the range coder (tests prove both give the same
ŷ) — and trains g_s and the inverse gains G' on the result with the rate-weighted distortion
Σ λ_s·255²·MSE (the rate is constant w.r.t. the decoder, §4.5 step 3).

The result is a small file holding only the decoder weights,
``lic_core/assets/weights/<model>-ft-<quantizer>.safetensors``; the codec uses it for that quantizer on both sides
and mixes its hash into the ``.lic`` header's weights hash, so files coded with and without the
fine-tuned decoder can never be confused.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ..codecs.learned import quantized_latents
from ..errors import LicError
from ..models import load_model
from ..paths import finetuned_path
from ..quantizer import build_quantizer
from .runner import Runner, RunSettings

__all__ = ["FT_KEYS", "base_hash_of", "decoder_state", "draw_batch", "finetune",
           "finetuned_path", "load_init_decoder", "save_finetuned"]

FT_KEYS = ("g_s.", "gains.inv_gain.")


def decoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters fine-tuning changes (g_s and the inverse gains)."""
    return {k: v for k, v in model.state_dict().items() if k.startswith(FT_KEYS)}


def match_decoder_depth(model, extra: int) -> None:
    """Give ``model``'s g_s the trunk of ``extra`` blocks a decoder file or checkpoint was trained
    with (:func:`lic_core.transform.deepen.deepen_synthesis`); refuses a g_s deepened to another
    depth rather than load tensors into the wrong places."""
    from ..transform.deepen import deepen_synthesis, extra_blocks

    have = extra_blocks(model.g_s)
    if int(extra) != have:
        if have:
            raise LicError(f"the decoder has {extra} trunk blocks, this g_s {have}")
        deepen_synthesis(model.g_s, int(extra))


def init_decoder_depth(path: str | Path) -> int:
    """The trunk blocks a decoder file records (0: g_s's own depth), tensors unread."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return int((f.metadata() or {}).get("g_s_extra_blocks") or 0)


def load_decoder_state(model, state: dict, what: str) -> None:
    """Load the g_s and G' tensors of ``state`` into ``model`` (shaped alike first), refusing a
    state that lacks one of the model's decoder tensors or holds one the model has not."""
    keys = set(decoder_state(model))
    given = {k for k in state if k.startswith(FT_KEYS)}
    if keys != given:
        odd = sorted(keys - given) or sorted(given - keys)
        raise LicError(f"{what} does not fit {model.config.name}'s decoder ({odd[0]})")
    try:
        model.load_state_dict({k: state[k] for k in keys}, strict=False)
    except RuntimeError as exc:
        raise LicError(f"{what} does not fit {model.config.name}: "
                       f"{str(exc).splitlines()[-1].strip()}") from None


def load_init_decoder(model, path: str | Path) -> dict:
    """Start ``model``'s g_s and G' from a decoder file (the ``g_s.*`` / ``gains.inv_gain.*``
    tensors of a fine-tuned or GAN decoder, or a release's warm start: ``campaign/warmstart.py``)
    instead of the base weights' own; returns what the checkpoint and card record of it.

    A g_s deepened beyond the file (a deeper GAN generator started from a decoder of g_s's own
    depth, or of a shorter trunk) keeps its identity blocks for the ones the file lacks; a file
    deeper than the g_s is refused (the trainer sizes g_s first: :func:`init_decoder_depth`)."""
    from ..transform.deepen import deep_key, extra_blocks, trunk_block
    from ..weights import load_weights

    state, meta = load_weights(path)
    has = int(meta.get("g_s_extra_blocks") or 0)
    if has > extra_blocks(model.g_s):
        raise LicError(f"{Path(path).name} has {has} trunk blocks, this g_s "
                       f"{extra_blocks(model.g_s)} (--extra-blocks {has})")
    if extra_blocks(model.g_s) and not has:  # a g_s-depth file: its stages move one place down
        state = {deep_key(k) if k.startswith("g_s.") else k: v for k, v in state.items()}
    own = decoder_state(model)
    # the trunk blocks beyond the file's start as the identity they were built as
    fill = {k: v for k, v in own.items() if extra_blocks(model.g_s) and k.startswith("g_s.")
            and trunk_block(k) is not None and trunk_block(k) >= has}
    missing = [k for k in own if k not in fill and k not in state]
    if missing:
        raise LicError(f"{Path(path).name} is not a decoder of {model.config.name} "
                       f"(no {missing[0]})")
    load_decoder_state(model, {**state, **fill}, Path(path).name)
    from ..weights import _num, lineage_cpu_hours

    # what the file was trained with so far: a transplant carries its source decoder's lineage in
    # its metadata, a decoder file on its card (None when neither says: a card then says unknown)
    lineage = _num(meta.get("lineage_cpu_hours"))
    if lineage is None and meta.get("card"):
        lineage = lineage_cpu_hours(meta)
    return {"file": Path(path).name, "weights_hash": meta["weights_hash_bytes"].hex(),
            "about": str(meta.get("about") or ""), "lineage_cpu_hours": lineage}


def inference_quantizer(model, name: str, params: Optional[dict] = None):
    """The quantizer ``compress()`` would use for these weights: for TCQ the designed rate
    tables shipped for them, when there are some (they change the trellis's decisions)."""
    if getattr(model, "weights_meta", None) and base_hash_of(model):
        from ..codecs.learned import LearnedCodec

        return LearnedCodec(model.config.name, model=model).encode_quantizer(name, params)
    return build_quantizer(name, **(params or {}))


def _without_tables(params: Optional[dict]) -> dict:
    """Quantizer parameters less the TCQ rate tables and stream order: shipping designed tables
    mid-run changes decisions, not the reconstruction grid the decoder is being tuned to."""
    return {k: v for k, v in (params or {}).items() if k not in ("tables", "order")}


def base_hash_of(model) -> Optional[str]:
    """Hex weights hash of the base weights ``model`` was loaded from (None when built fresh)."""
    meta = getattr(model, "weights_meta", None) or {}
    h = meta.get("weights_hash_bytes")
    return h.hex() if isinstance(h, (bytes, bytearray)) else meta.get("weights_hash")


def draw_batch(ds, gen: torch.Generator, batch: int, step: int,
               n_levels: int) -> tuple[torch.Tensor, int, float]:
    """(crops B×3×H×W, gain level s, slider u = s/(n−1)) of one step, drawn from the run's RNG:
    every step its own crops (epoch = step), so a resumed run continues the sample stream
    instead of revisiting one fixed crop per photo; one gain level per batch. The GAN decoder
    stage (:mod:`.gan_decoder`) draws its batches the same way."""
    idx = torch.randint(len(ds), (batch,), generator=gen)
    x = torch.stack([ds.get(int(i), step) for i in idx])
    s = int(torch.randint(n_levels, (1,), generator=gen))
    return x, s, s / max(n_levels - 1, 1)


def finetune(model, data: str | Path, quantizer: str, steps: int, batch: int = 8, crop: int = 128,
             lr: float = 3e-5, seed: int = 0, time_budget_min: float = 0.0,
             quantizer_params: Optional[dict] = None,
             log: Callable[[str], None] = print, run_dir: Optional[Path] = None,
             ckpt_minutes: Optional[float] = None, keep: int = 2, threads: Optional[int] = None,
             log_every: int = 10, cpu_budget_min: Optional[float] = None,
             init_decoder: Optional[Path] = None) -> dict:
    """Fine-tune ``model.g_s`` (+ G') in place on real quantized latents; returns a summary.

    ``steps`` counts from the start of the run: with ``run_dir`` holding a checkpoint the loop
    resumes it (decoder tensors, Adam state, step, booked CPU seconds, sampling RNG) and trains
    on to ``steps`` (:class:`.runner.Runner`: checkpoints every ``ckpt_minutes`` of wall time, on
    SIGTERM/SIGINT and at the end; ``train`` records with the λ-weighted loss, MSE and cumulative
    ``cpu_s`` in ``run_dir/log.jsonl``) — the campaign's finetune stages run it so.
    A checkpoint of other base weights or another quantizer is refused: its decoder would not
    match the encoder side it was tuned for. A run without a checkpoint starts g_s and G' from
    ``init_decoder`` when given (:func:`load_init_decoder`; the checkpoints record it as ``init``).
    """
    from .checkpoint import save_checkpoint
    from .data import ImageFolderCrops

    q = inference_quantizer(model, quantizer, quantizer_params)
    ds = ImageFolderCrops(data, crop=crop, seed=seed, cache=True)  # no workers: decode once
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for n, p in model.named_parameters() if n.startswith(FT_KEYS)]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    model.eval()  # no layer behaves differently in train mode; eval keeps z rounding exact
    model.prior.update_tables()
    gen = torch.Generator().manual_seed(seed)
    base_hash = base_hash_of(model)
    runner = Runner(RunSettings(steps, run_dir, log_every, ckpt_minutes=ckpt_minutes, keep=keep,
                                cpu_budget_min=cpu_budget_min,
                                time_budget_min=time_budget_min or None, threads=threads),
                    log=log)
    changes: list[dict] = []  # quantizer parameters changed mid-run: {"step", "from", "to"}
    lr_changes: list[dict] = []  # learning rate changed on a resume: {"step", "from", "to"}
    ck = runner.latest("finetune", "fine-tuning")
    init = None
    if ck is None and init_decoder:
        init = load_init_decoder(model, init_decoder)
        log(f"g_s and G' start from {init['file']}: {init['about'] or 'a decoder file'}")
    if ck is not None:
        init = ck.get("init")
        ck_path = Path(ck["_path"])
        if ck.get("quantizer") != q.name or \
                _without_tables(ck.get("quantizer_params")) != _without_tables(q.params()):
            raise LicError(f"{ck_path} fine-tunes for {ck.get('quantizer')} "
                           f"{ck.get('quantizer_params')}, not {q.name} {q.params()}")
        if base_hash and ck.get("base_weights_hash") not in (None, base_hash):
            raise LicError(f"{ck_path} was fine-tuned on other {model.config.name} weights "
                           f"({ck.get('base_weights_hash')}, now {base_hash}); start afresh")
        missing = model.load_state_dict(ck["model"], strict=False).missing_keys
        if any(k.startswith(FT_KEYS) for k in missing):
            raise LicError(f"{ck_path} lacks decoder tensors")
        opt.load_state_dict(ck["optimizer"])
        lr_changes = list(ck.get("lr_changes") or [])
        was = float(opt.param_groups[0]["lr"])
        if was != float(lr):  # a resumed run takes the lr it is given (e.g. a final decay)
            for g in opt.param_groups:
                g["lr"] = float(lr)
            lr_changes.append({"step": int(ck["step"]), "from": was, "to": float(lr)})
            log(f"learning rate {was:g} → {lr:g} from step {int(ck['step'])}")
        gen.set_state(ck["generator"])
        runner.resume(int(ck["step"]), float(ck.get("cpu_s", 0.0)))
        log(f"resumed {ck_path.name} at step {runner.start}")
        changes = list(ck.get("quantizer_changes") or [])
        if (ck.get("quantizer_params") or {}) != q.params():
            changes.append({"step": runner.start, "from": ck.get("quantizer_params"),
                            "to": q.params()})
            log(f"the TCQ configuration changed since {ck_path.name}: the steps from "
                f"{runner.start} on see the latents of {q.params()} (what compress() codes now)")
    n_levels = model.config.levels
    lambdas = model.config.lambdas
    train_cfg = {"lr": lr, "batch": batch, "crop": crop, "seed": seed}

    def save(step: int) -> Path:
        return save_checkpoint({"kind": "finetune", "model": decoder_state(model),
                                "optimizer": opt.state_dict(), "generator": gen.get_state(),
                                "step": step, "cpu_s": runner.clock(), "quantizer": q.name,
                                "quantizer_params": q.params(), "quantizer_changes": changes,
                                "lr_changes": lr_changes, "base_model": model.config.name,
                                "base_weights_hash": base_hash, "train": train_cfg,
                                "init": init},
                               run_dir, keep)

    def step(i: int) -> dict:
        x, s, u = draw_batch(ds, gen, batch, i, n_levels)
        with torch.no_grad():
            lat = quantized_latents(model, x, u, q)
        u_t = torch.full((batch,), float(lat["u"]))  # the u16-dequantized slider compress() uses
        # the exact engine's ŷ (what files hold), into the float g_s being trained
        x_hat = model.g_s(lat["y_hat_gained"].float() * model.gains.inv_gain(u_t))
        mse = F.mse_loss(x_hat, x)
        loss = lambdas[s] * 255 ** 2 * mse
        if not torch.isfinite(loss):
            raise LicError(f"non-finite fine-tuning loss at step {i + 1}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(mse.detach()))
        return {"loss": float(loss.detach()), "mse": losses[-1], "level": s}

    def report(i: int, window: list, timing: dict) -> tuple[dict, str]:
        psnr = -10 * math.log10(max(sum(r["mse"] for r in window) / len(window), 1e-10))
        last = window[-1]
        rec = {"type": "train", "step": i, "loss": last["loss"], "mse": last["mse"],
               "psnr_recent": round(psnr, 3), "level": last["level"],
               "cpu_s": round(timing["cpu_s"], 2), "it_s": timing["it_s"],
               "threads": timing["threads"]}
        return rec, (f"finetune[{quantizer}] step {i}/{steps} mse {last['mse']:.5f} "
                     f"(~{psnr:.2f} dB, last {len(window)}) level {last['level']}")

    t0 = time.time()
    losses: list[float] = []
    try:
        reason = runner.run(step, save, report)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return {"steps": runner.step, "quantizer": quantizer, "quantizer_params": q.params(),
            "final_mse": losses[-1] if losses else None, "seconds": time.time() - t0,
            "cpu_s": runner.clock(), "lr": lr, "batch": batch, "crop": crop, "reason": reason,
            "base_weights_hash": base_hash, "init": init}


def save_finetuned(model, path: Path, card: dict,
                   markdown: Optional[Callable[[str, dict, str], str]] = None) -> bytes:
    """Write only the fine-tuned decoder tensors (fp16 safetensors + card, and the card as
    Markdown beside it: ``markdown(name, card, hash)``, default :func:`card_markdown`);
    returns its hash. The GAN decoder (:mod:`.gan_decoder`) is stored the same way."""
    from ..fileio import write_atomic
    from ..transform.deepen import extra_blocks
    from ..weights import _storable, weights_hash

    state = _storable(decoder_state(model))
    digest = weights_hash(state)
    meta = {"card": json.dumps(card, sort_keys=True), "weights_hash": digest.hex(),
            "base_model": model.config.name}
    extra = extra_blocks(model.g_s)
    if extra:  # a deeper generator (GAN decoder): the loader builds the same g_s
        meta["g_s_extra_blocks"] = str(extra)
    base = base_hash_of(model)
    if base:  # the base weights it was tuned on: the codec ignores it beside other weights
        meta["base_weights_hash"] = base
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: f.write(_serialize(state, meta)), overwrite=True)
    path.with_suffix(".md").write_text((markdown or card_markdown)(path.stem, card, digest.hex()),
                                       encoding="utf-8")
    return digest


def card_markdown(name: str, card: dict, digest: str) -> str:
    """The model card of a fine-tuned decoder as Markdown: its facts, then the Kodak table."""
    lines = [f"# {name}", ""]
    lines += [f"- **{k}**: {v}" for k, v in card.items() if k != "eval"]
    lines.append(f"- **weights hash**: {digest}")
    ev = card.get("eval")
    if ev:
        bd = ev.get("bd_vs_round_percent", {})
        lines += ["", f"## Kodak ({len(ev.get('images', []))} images, real bitstreams)", "",
                  "| curve | " + " | ".join(f"u={u:g}" for u in ev["us"]) + " | BD-rate vs "
                  "rounding |", "|---|" + "---|" * (len(ev["us"]) + 1)]
        for key, c in ev["curves"].items():
            cells = " | ".join(f"{b:.3f} bpp / {p:.2f} dB" for b, p in zip(c["bpp"], c["psnr"]))
            v = bd.get(key)
            lines.append(f"| {key} | {cells} | " + ("n/a" if v is None else f"{v:+.2f} %") + " |")
        lines += ["", "before = the base decoder g_s, after = this fine-tuned decoder, on the "
                  "same bitstreams (same bpp)."]
    return "\n".join(lines) + "\n"


def _serialize(state, meta) -> bytes:
    from safetensors.torch import save

    return save(state, metadata=meta)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="lic-lgem-cpu", help="registry name with shipped weights")
    p.add_argument("--weights", default=None, help="weights file (default <weights dir>/<model>.safetensors)")
    p.add_argument("--data", required=True, help="training folders (several joined by ':')")
    p.add_argument("--quantizer", default="tcq", choices=["round", "deadzone", "rdoq", "tcq"])
    p.add_argument("--quantizer-param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=1000, help="total steps of the run (resumed "
                   "runs train on to this count)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = adapt to "
                   "the machine's load")
    p.add_argument("--time-budget-min", type=float, default=0.0,
                   help="stop and checkpoint before this many wall minutes have passed")
    p.add_argument("--cpu-budget-min", type=float, default=None,
                   help="stop and checkpoint once training has used this many CPU-minutes "
                        "(cumulative)")
    p.add_argument("--run-dir", default=None, help="checkpoint + log folder: resumes its newest "
                   "checkpoint (the campaign's finetune stages use it)")
    p.add_argument("--ckpt-minutes", type=float, default=None,
                   help="checkpoint every N wall minutes (with --run-dir)")
    p.add_argument("--keep", type=int, default=2, help="checkpoints to keep (with --run-dir)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--init-decoder", default=None, help="start g_s and G' from this decoder file "
                   "instead of the base weights' (a run without a checkpoint)")
    p.add_argument("--no-write", action="store_true",
                   help="only train and checkpoint (campaign stages export later)")
    p.add_argument("--out", default=None, help="output file (default <weights dir>/<model>-ft-<q>.safetensors)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def parse_quantizer_params(pairs: Sequence[str]) -> dict[str, float | int]:
    """``["c=0.05", "order=1"]`` → ``{"c": 0.05, "order": 1}``: integers stay integers (TCQ's
    ``tables`` and ``order``), other numbers are floats; one-line error on a malformed pair."""
    params: dict[str, float | int] = {}
    for kv in pairs:
        if "=" not in kv:
            raise LicError(f"--quantizer-param expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        try:
            params[k] = int(v)
        except ValueError:
            try:
                params[k] = float(v)
            except ValueError:
                raise LicError(f"--quantizer-param {k} needs a number, got {v!r}") from None
    return params


def run(args: argparse.Namespace) -> int:
    import os

    for part in str(args.data).split(os.pathsep):
        if not Path(part).is_dir():
            raise LicError(f"training data folder not found: {part}")
    params = parse_quantizer_params(args.quantizer_param)
    out = Path(args.out) if args.out else finetuned_path(args.model, args.quantizer)
    if not args.no_write and out.exists() and not args.force:
        raise LicError(f"{out} exists; pass --force to overwrite it")
    model = load_model(args.model, args.weights)
    summary = finetune(model, args.data, args.quantizer, args.steps, args.batch, args.crop,
                       args.lr, args.seed, args.time_budget_min, params,
                       run_dir=Path(args.run_dir) if args.run_dir else None,
                       ckpt_minutes=args.ckpt_minutes, keep=args.keep,
                       threads=args.threads, log_every=args.log_every,
                       cpu_budget_min=args.cpu_budget_min, init_decoder=args.init_decoder)
    if args.no_write:
        print(f"stopped after {summary['steps']} steps ({summary['reason']})")
        return 0
    card = {"kind": "decoder fine-tuned on real quantized latents (docs/methods.md §4.5)",
            "base_model": args.model, "data": str(args.data),
            "hardware": "cuda" if torch.cuda.is_available() else "CPU", **summary}
    digest = save_finetuned(model, out, card)
    print(f"wrote {out} (hash {digest.hex()}) after {summary['steps']} steps")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    import sys

    ap = argparse.ArgumentParser(prog="lic finetune", description=__doc__.splitlines()[0])
    add_arguments(ap)
    try:
        return run(ap.parse_args(argv))
    except LicError as exc:
        print(f"lic finetune: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
