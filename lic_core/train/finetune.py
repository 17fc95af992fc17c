"""Fine-tuning the decoder on latents from the real inference quantizer (Borzechowski et al.,
ICIP 2024, arXiv 2506.08662; METHODS §1.5).

Stage-1 training sees noise/STE proxies; at inference the synthesis transform gets latents
quantized by rounding, RDOQ or trellis-coded quantization (TCQ reconstructions lie on a finer
grid, Δ_u ≈ 0.56, that g_s never saw).  Here the encoder, hyperprior, context model and forward
gains are frozen; every step quantizes a batch with :func:`lic_core.codecs.learned.quantized_latents`
— the latent codec's steps that ``compress()`` runs, minus the range coder (tests prove both give the same
ŷ) — and trains g_s and the inverse gains G' on the result with the rate-weighted distortion
Σ λ_s·255²·MSE (the rate is constant w.r.t. the decoder, §1.5 step 3).

The result is a small file holding only the decoder weights,
``lic_core/assets/weights/<model>-ft-<quantizer>.safetensors``; the codec uses it for that quantizer on both sides
and mixes its hash into the ``.lic`` header's weights hash, so files coded with and without the
fine-tuned decoder can never be confused.
"""
from __future__ import annotations

import argparse
import json
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

__all__ = ["FT_KEYS", "decoder_state", "finetune", "finetuned_path", "save_finetuned"]

FT_KEYS = ("g_s.", "gains.inv_gain.")


def decoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters fine-tuning changes (g_s and the inverse gains)."""
    return {k: v for k, v in model.state_dict().items() if k.startswith(FT_KEYS)}


def finetune(model, data: str | Path, quantizer: str, steps: int, batch: int = 8, crop: int = 128,
             lr: float = 3e-5, seed: int = 0, time_budget_min: float = 0.0,
             quantizer_params: Optional[dict] = None,
             log: Callable[[str], None] = print) -> dict:
    """Fine-tune ``model.g_s`` (+ G') in place on real quantized latents; returns a summary."""
    from .data import ImageFolderCrops

    q = build_quantizer(quantizer, **(quantizer_params or {}))
    ds = ImageFolderCrops(data, crop=crop, seed=seed)
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for n, p in model.named_parameters() if n.startswith(FT_KEYS)]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    model.eval()  # no layer behaves differently in train mode; eval keeps z rounding exact
    model.prior.update_tables()
    gen = torch.Generator().manual_seed(seed)
    n_levels = model.config.levels
    lambdas = model.config.lambdas
    t0 = time.time()
    losses = []
    step = 0
    for step in range(1, steps + 1):
        idx = torch.randint(len(ds), (batch,), generator=gen)
        x = torch.stack([ds[int(i)] for i in idx])
        s = int(torch.randint(n_levels, (1,), generator=gen))
        u = s / max(n_levels - 1, 1)
        with torch.no_grad():
            lat = quantized_latents(model, x, u, q)
        u_t = torch.full((batch,), float(lat["u"]))  # the u16-dequantized slider compress() uses
        # the exact engine's ŷ (what files hold), into the float g_s being trained
        x_hat = model.g_s(lat["y_hat_gained"].float() * model.gains.inv_gain(u_t))
        mse = F.mse_loss(x_hat, x)
        loss = lambdas[s] * 255 ** 2 * mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(mse.detach()))
        if step % 10 == 0 or step == 1:
            psnr = -10 * torch.log10(torch.tensor(max(sum(losses[-10:]) / len(losses[-10:]), 1e-10)))
            log(f"finetune[{quantizer}] step {step}/{steps} mse {losses[-1]:.5f} "
                f"(~{float(psnr):.2f} dB, last 10) level {s}")
        if time_budget_min and time.time() - t0 > 60 * time_budget_min:
            log(f"time budget reached after {step} steps")
            break
    for p in model.parameters():
        p.requires_grad_(True)
    return {"steps": step, "quantizer": quantizer, "quantizer_params": q.params(),
            "final_mse": losses[-1] if losses else None, "seconds": time.time() - t0,
            "lr": lr, "batch": batch, "crop": crop}


def save_finetuned(model, path: Path, card: dict) -> bytes:
    """Write only the fine-tuned decoder tensors (fp16 safetensors + card); returns its hash."""
    from ..fileio import write_atomic
    from ..weights import _storable, weights_hash

    state = _storable(decoder_state(model))
    digest = weights_hash(state)
    meta = {"card": json.dumps(card, sort_keys=True), "weights_hash": digest.hex(),
            "base_model": model.config.name}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: f.write(_serialize(state, meta)), overwrite=True)
    md = path.with_suffix(".md")
    md.write_text("# " + path.stem + "\n\n" + "\n".join(f"- **{k}**: {v}" for k, v in card.items())
                  + f"\n- **weights hash**: {digest.hex()}\n", encoding="utf-8")
    return digest


def _serialize(state, meta) -> bytes:
    from safetensors.torch import save

    return save(state, metadata=meta)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="lic-lgem-cpu", help="registry name with shipped weights")
    p.add_argument("--weights", default=None, help="weights file (default <weights dir>/<model>.safetensors)")
    p.add_argument("--data", required=True, help="folder of training photos")
    p.add_argument("--quantizer", default="tcq", choices=["round", "deadzone", "rdoq", "tcq"])
    p.add_argument("--quantizer-param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--time-budget-min", type=float, default=0.0)
    p.add_argument("--out", default=None, help="output file (default <weights dir>/<model>-ft-<q>.safetensors)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.data).is_dir():
        raise LicError(f"training data folder not found: {args.data}")
    params = {}
    for kv in args.quantizer_param:
        if "=" not in kv:
            raise LicError(f"--quantizer-param expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        params[k] = float(v)
    out = Path(args.out) if args.out else finetuned_path(args.model, args.quantizer)
    if out.exists() and not args.force:
        raise LicError(f"{out} exists; pass --force to overwrite it")
    model = load_model(args.model, args.weights)
    summary = finetune(model, args.data, args.quantizer, args.steps, args.batch, args.crop,
                       args.lr, args.seed, args.time_budget_min, params)
    card = {"kind": "decoder fine-tuned on real quantized latents (METHODS §1.5)",
            "base_model": args.model, "data": str(args.data),
            "hardware": "cuda" if torch.cuda.is_available() else "CPU", **summary}
    digest = save_finetuned(model, out, card)
    print(f"wrote {out} (hash {digest.hex()}) after {summary['steps']} steps")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="lic finetune", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))
