"""Export a training checkpoint as shipped weights (docs/methods.md §10, "Training pipeline").

``export_checkpoint(ckpt, name, out_dir)`` writes

* ``<out>/<name>.safetensors`` — fp16 weights through :func:`lic_core.weights.save_weights`
  (config + card JSON in the metadata; float64 coding tables kept exact);
* ``<out>/<name>.json`` — the card as JSON (what the GUI's model list and ``lic models`` read);
* ``<out>/<name>.md`` — the human-readable model card.

Order matters for bit-exact coding (docs/methods.md §6.4): the float weights are rounded to fp16
*first*, then the factorized prior's tables are rebuilt from those rounded weights, then the model
is evaluated and hashed — so the card's numbers and the ``.lic`` weights hash describe exactly what
a user's decoder loads.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import LicError
from ..fileio import write_atomic
from ..paths import weights_dir
from .checkpoint import load_checkpoint
from .loop import resolve_model
from .validate import CARD_U_VALUES, evaluate, refresh_tables


class ExportError(LicError):
    """The export cannot be written (existing file without --force, bad name...)."""


def _round_to_fp16_(model: nn.Module) -> None:
    """Round float32 parameters and buffers through fp16 in place (what the file will hold)."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.dtype == torch.float32:
                t.copy_(t.half().float())


def rebuild_model(ck: dict) -> nn.Module:
    """A fresh model of the checkpoint's architecture (registry name + stored config)."""
    name = ck.get("model_name") or "lic-lgem"
    cfg = ck.get("config")
    if ":" not in name and isinstance(cfg, dict):
        overrides = {k: v for k, v in cfg.items() if k != "name"}
        try:
            return resolve_model(name, **overrides)
        except TypeError:
            pass
    return resolve_model(name)


def export_checkpoint(ckpt: Union[str, Path], name: str,
                      out_dir: Union[str, Path, None] = None,
                      preview: bool = False, eval_dir: Optional[Union[str, Path]] = None,
                      eval_limit: Optional[int] = None,
                      u_values: Sequence[float] = CARD_U_VALUES, use_ema: bool = True,
                      force: bool = False, notes: str = "",
                      device: Union[str, torch.device, None] = None,
                      augment: Optional[Callable[[dict], dict]] = None) -> dict:
    """Write ``<out_dir>/<name>.{safetensors,json,md}`` from a checkpoint; returns the card.

    ``out_dir`` defaults to the codecs' weights folder (:func:`lic_core.paths.weights_dir`).
    ``augment(card) -> card`` may add fields after the evaluation and before anything is
    written (the campaign adds CPU-hours, BD-rates, the label and the learning curve).
    """
    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise ExportError(f"bad model name {name!r}")
    if len(u_values) < 6 and eval_dir:
        raise ExportError("the model card needs at least 6 slider points")
    out_dir = Path(out_dir) if out_dir is not None else weights_dir()
    st_path = out_dir / f"{name}.safetensors"
    if st_path.exists() and not force:
        raise ExportError(f"{st_path} exists (use --force to overwrite)")
    ck = load_checkpoint(ckpt)
    model = rebuild_model(ck)
    ema_used = bool(use_ema and ck.get("ema"))
    model.load_state_dict(ck["ema"]["shadow"] if ema_used else ck["model"])
    cfg = getattr(model, "config", None)
    if dataclasses.is_dataclass(cfg):
        fields = {f.name for f in dataclasses.fields(cfg)}
        upd = {k: v for k, v in (("name", name), ("preview", bool(preview))) if k in fields}
        model.config = dataclasses.replace(cfg, **upd)
    model.eval()
    _round_to_fp16_(model)
    n_tables = refresh_tables(model)

    from ..weights import save_weights, weights_hash
    digest = weights_hash(model.state_dict())

    train = ck.get("train", {})
    data = ck.get("data", {})
    card = {
        "name": name,
        "architecture": ck.get("model_name"),
        "preview": bool(preview),
        "status": "PREVIEW — briefly trained, not the product weights" if preview else "release",
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "data": {"folder": data.get("folder", train.get("data")), "images": data.get("images")},
        "steps": int(ck["step"]),
        "batch": train.get("batch"),
        "crop": train.get("crop"),
        "lr": train.get("lr"),
        "ema": train.get("ema") if ema_used else None,
        "device": ck.get("device", "unknown"),
        "wall_time_s": round(float(ck.get("wall_s", 0.0)), 1),
        "lambdas": train.get("lambdas") or list(getattr(cfg, "lambdas", []) or []),
        "tables_refreshed": n_tables,
        "weights_hash": digest.hex(),
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "torch": torch.__version__,
        "source_checkpoint": Path(ck["_path"]).name,
        "notes": notes,
    }
    if eval_dir:
        dev = torch.device(device) if device else (
            torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
        model.to(dev)
        res = evaluate(model, eval_dir, list(u_values), limit=eval_limit, device=dev)
        model.to("cpu")
        card["eval"] = {"folder": str(Path(eval_dir).resolve()), **res}
    if augment is not None:
        card = augment(card)
    if cfg is not None and dataclasses.is_dataclass(model.config) and \
            bool(card.get("preview")) != bool(getattr(model.config, "preview", False)):
        model.config = dataclasses.replace(model.config, preview=bool(card.get("preview")))
    out_dir.mkdir(parents=True, exist_ok=True)
    got = save_weights(model, st_path, card)
    if got != digest:  # pragma: no cover - would mean save_weights stores something else
        raise ExportError("weights hash changed while saving")
    file_sha = hashlib.sha256(st_path.read_bytes()).hexdigest()
    meta = {**card, "file": st_path.name, "file_sha256": file_sha,
            "file_bytes": st_path.stat().st_size}
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (out_dir / f"{name}.md").write_text(render_card(meta))
    return meta


def refresh_card(st_path: Union[str, Path], updates: dict) -> dict:
    """Add ``updates`` to an export's card in all three places it lives — the weights file's
    metadata (:func:`~lic_core.weights.rewrite_card`, tensors untouched), ``<name>.json``
    (with the file's new SHA-256 and size) and ``<name>.md`` — and return the new ``.json``."""
    from ..weights import read_weights_card, rewrite_card

    st_path = Path(st_path)
    card = {**read_weights_card(st_path), **updates}
    rewrite_card(st_path, card)
    js = st_path.with_suffix(".json")
    old = json.loads(js.read_text()) if js.is_file() else {}
    meta = {**old, **updates, "file": st_path.name,
            "file_sha256": hashlib.sha256(st_path.read_bytes()).hexdigest(),
            "file_bytes": st_path.stat().st_size}
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    write_atomic(js, lambda fh: fh.write(text.encode()), overwrite=True)
    md = render_card(meta)
    write_atomic(st_path.with_suffix(".md"), lambda fh: fh.write(md.encode()), overwrite=True)
    return meta


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s"


def render_card(meta: dict) -> str:
    """The Markdown model card."""
    lines = [f"# {meta['name']} — LIC Studio learned-codec weights", ""]
    from ..weights import provenance_line

    lines += [f"**{provenance_line(meta)}**", ""]
    if meta.get("preview"):
        lines += ["> **PREVIEW.** These weights were trained on CPU only "
                  f"({meta.get('total_steps', meta['steps'])} steps on {meta['device']}); they "
                  "do not yet beat WebP on Kodak and are far from the published LIC models. The "
                  "file's metadata says `preview: true` too.", ""]
    lam = ", ".join(f"{v:g}" for v in meta.get("lambdas") or [])
    rows = [("architecture", meta.get("architecture")),
            ("parameters", f"{meta['parameters']:,}"),
            ("training data", f"{meta['data'].get('folder')} ({meta['data'].get('images')} images)"),
            ("steps × batch × crop", f"{meta['steps']} × {meta.get('batch')} × {meta.get('crop')}"),
            ("device / wall time", f"{meta['device']} / {_fmt_time(meta['wall_time_s'])}"),
            *([("training CPU-hours (cumulative)", f"{meta['cpu_hours']:.2f}"),
               ("GPU-hours", f"{meta.get('gpu_hours', 0.0):.2f}"),
               ("total steps", meta.get("total_steps"))] if "cpu_hours" in meta else []),
            *([("recipe (`lic train` flags)", f"`{meta['recipe']}`")] if meta.get("recipe")
              else []),
            ("λ per rate level (λ·255²·MSE + bpp)", lam),
            ("EMA weights", meta.get("ema") or "no"),
            ("weights hash (.lic header)", f"`{meta['weights_hash']}`"),
            ("file", f"`{meta['file']}` ({meta['file_bytes']:,} bytes, fp16, "
                     f"sha256 `{meta['file_sha256'][:16]}…`)"),
            ("created", meta.get("created"))]
    lines += ["| field | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]
    ev = meta.get("eval")
    if ev:
        how = ("real entropy coding" if ev["mode"] == "coded"
               else "**estimated** from likelihoods (no bitstreams written)")
        lines += [f"## Evaluation: {ev['images']} images of `{ev['folder']}`, {how}", "",
                  "| slider u | bpp | PSNR (dB) | MS-SSIM |", "|---|---|---|---|"]
        for p in ev["points"]:
            ms = f"{p['ms_ssim']:.4f}" if "ms_ssim" in p else "—"
            lines.append(f"| {p['u']:.2f} | {p['bpp']:.4f} | {p['psnr']:.2f} | {ms} |")
        lines += ["", ev.get("note", ""), ""]
        for key, axis in (("bd_rate", "PSNR"), ("bd_rate_msssim", "MS-SSIM in dB")):
            bd = meta.get(key) or {}
            if bd:
                lines += [f"BD-rate ({axis}, same Kodak images; negative = fewer bits): "
                          + ", ".join(f"vs {k.upper() if k != 'webp' else 'WebP'} "
                                      + (f"{v:+.1f} %" if v is not None else "n/a (no overlap)")
                                      for k, v in bd.items()), ""]
        if meta.get("learning_curve"):
            lines += [f"Learning curve: `{meta['learning_curve']}`", "",
                      f"![learning curve]({meta['learning_curve']})", ""]
    else:
        lines += ["No evaluation was run at export (`lic export --eval-dir`).", ""]
    if meta.get("notes"):
        lines += ["## Notes", "", meta["notes"], ""]
    lines += ["Produced by `lic export` (lic_core/train/export.py); training recipe: "
              "docs/training.md.", ""]
    return "\n".join(lines)
