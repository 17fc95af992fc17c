"""Weights files: fp16 safetensors with the config and model card in the metadata.

Floating-point parameters are stored as float16 (the repo's 64 MiB weights budget); float64
buffers (the entropy coder's pmf tables) and integer buffers are stored as they are, so coding
tables survive export bit-exactly.  :func:`weights_hash` (8 bytes of SHA-256 over the stored
tensors and lic_core's format version) goes into every ``.lic`` header; a decoder with other
weights refuses the file (docs/methods.md §6.4 item 4).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from . import FORMAT_VERSION
from .fileio import write_atomic_via_path


def _storable(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if v.dtype == torch.float32:
            v = v.to(torch.float16)
        out[k] = v.contiguous()
    return out


def weights_hash(state: dict[str, torch.Tensor]) -> bytes:
    """8-byte identity of a set of weights as stored (fp16) + the format version."""
    h = hashlib.sha256(f"lic-format-{FORMAT_VERSION}".encode())
    for k in sorted(state):
        v = _storable({k: state[k]})[k]
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.numpy().tobytes() if v.dtype != torch.bfloat16 else v.view(torch.int16).numpy().tobytes())
    return h.digest()[:8]


def save_weights(model: torch.nn.Module, path: str | Path, card: dict[str, Any]) -> bytes:
    """Write ``path`` (.safetensors) atomically; returns the weights hash.

    ``card`` is stored as JSON in the metadata (with the config); the human-readable model card
    ``<name>.md`` is written by ``lic export`` (lic_core.train.export).
    """
    path = Path(path)
    state = _storable(model.state_dict())
    digest = weights_hash(state)
    cfg = getattr(model, "config", None)
    meta = {"card": json.dumps(card, sort_keys=True),
            "weights_hash": digest.hex(),
            "format_version": str(FORMAT_VERSION)}
    if cfg is not None and hasattr(cfg, "to_dict"):
        meta["config"] = json.dumps(cfg.to_dict(), sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic_via_path(path, lambda tmp: save_file(state, str(tmp), metadata=meta),
                          overwrite=True)
    return digest


def rewrite_card(path: str | Path, card: dict[str, Any]) -> None:
    """Replace the card in a weights file's metadata, keeping every tensor byte and so its
    ``weights_hash`` (checked), atomically: a card that learns a measured figure later (e.g. the
    MS-SSIM BD-rate) without a new export, and without changing what files it writes decode to."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    state = load_file(str(path))
    if meta.get("weights_hash") != weights_hash(state).hex():
        raise ValueError(f"{path.name}: its weights hash does not match its tensors")
    meta["card"] = json.dumps(card, sort_keys=True)
    write_atomic_via_path(path, lambda tmp: save_file(state, str(tmp), metadata=meta),
                          overwrite=True)


def read_weights_card(path: str | Path) -> dict[str, Any]:
    """The model card stored in a weights file's metadata, without reading the tensors
    (milliseconds: what a GUI needs to label a codec before anyone encodes with it)."""
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    try:
        card = json.loads(raw.get("card", "{}"))
    except ValueError:
        card = {}
    return card if isinstance(card, dict) else {}


def read_weights_hash(path: str | Path) -> Optional[str]:
    """The hex ``weights_hash`` in a weights file's metadata (None when absent), tensors unread."""
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("weights_hash")


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict with float16 → float32, metadata with parsed 'config' and 'card')."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    state = load_file(str(path))
    state = {k: (v.float() if v.dtype == torch.float16 else v) for k, v in state.items()}
    meta: dict[str, Any] = dict(raw)
    for key in ("config", "card"):
        if key in meta:
            meta[key] = json.loads(meta[key])
    meta["weights_hash_bytes"] = bytes.fromhex(raw["weights_hash"]) if "weights_hash" in raw \
        else weights_hash(state)
    return state, meta


# ---------------------------------------------------------------------------- provenance

#: BD-rate references in the order they are listed (the weakest codec first)
_BD_REFERENCES = (("jpeg", "JPEG"), ("webp", "WebP"), ("avif", "AVIF"), ("jxl", "JPEG XL"),
                  ("bpg", "BPG"), ("vtm", "VTM"))


def _card_of(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    """The model card inside ``meta`` (:func:`load_weights` output) or ``meta`` itself (a card,
    or a codec's ``describe()`` which carries the card's keys flat)."""
    card = meta.get("card") if isinstance(meta, Mapping) else None
    return card if isinstance(card, Mapping) else (meta if isinstance(meta, Mapping) else {})


def lineage_cpu_hours(meta: Mapping[str, Any]) -> Optional[float]:
    """Training CPU-hours of a weights file *and* of every file it was warm-started from: the
    card's ``lineage_cpu_hours`` when it has one, else its own ``cpu_hours`` (a file trained from
    scratch, or one whose card predates the lineage). A decoder warm-started from another decoder
    (a release's transplant, a deeper GAN generator started from the installed one) books only
    its own run in ``cpu_hours``; a budget comparison must count what it was built on too."""
    card = _card_of(meta)
    for key in ("lineage_cpu_hours", "cpu_hours"):
        v = _num(card.get(key))
        if v is not None:
            return v
    return None


def _num(value: Any) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


def _pct(v: float) -> str:
    return f"{v:+.1f} %" if abs(v) < 10 else f"{v:+.0f} %"


def _hours(h: float) -> str:
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h"


def is_preview(meta: Mapping[str, Any]) -> bool:
    """True when the weights say they are a preview (``preview`` flag or the status words)."""
    card = _card_of(meta)
    if isinstance(card.get("preview"), bool):
        return bool(card["preview"])
    return "preview" in str(card.get("status", "")).lower()


def _bd_list(bd: Any) -> str:
    """``JPEG -41 %, WebP -2.4 %, AVIF +30 %`` of a card's BD-rate mapping ('' if none)."""
    shown = []
    if isinstance(bd, Mapping):
        for key, name in _BD_REFERENCES:
            v = _num(bd.get(key))
            if v is not None:
                shown.append(f"{name} {_pct(v)}")
    return ", ".join(shown)


def msssim_bd_line(meta: Mapping[str, Any]) -> str:
    """The card's Kodak BD-rates on MS-SSIM (in dB, ``bd_rate_msssim``) as one line, or ''
    when the card has none (cards exported before 2026-12-07)."""
    shown = _bd_list(_card_of(meta).get("bd_rate_msssim"))
    return f"Kodak BD-rate (MS-SSIM) vs {shown}" if shown else ""


def provenance_line(meta: Mapping[str, Any]) -> str:
    """One short human line saying what a set of weights is, from whatever the card records.

    ``meta`` is :func:`load_weights`' metadata (the card under ``"card"``), a card dict, or a
    learned codec's ``describe()``.  Keys used when present (all optional): ``preview``/``status``,
    ``label``, ``parameters``, ``total_steps`` (else ``steps``), ``gpu_hours``/``cpu_hours`` (else
    ``wall_time_s``), ``device``, ``bd_rate`` ``{"jpeg": %, "webp": %, "avif": %}`` (Kodak, PSNR;
    else the range of the ``eval`` points).  Example::

        PREVIEW · 2.9 M params · 3102 steps on CPU (1.4 h) · Kodak BD-rate vs WebP +243 %

    Nothing here is hard-coded about a particular model: every number comes from ``meta``.
    """
    card = _card_of(meta)
    parts: list[str] = []
    status = str(card.get("status", "")).strip()
    if is_preview(card):
        parts.append("PREVIEW")
    elif card.get("preview") is False or status.lower().startswith("trained"):
        parts.append("trained")
    label = str(card.get("label", "")).strip().splitlines()
    if label and label[0]:
        parts.append(label[0])
    params = _num(card.get("parameters"))
    if params:
        parts.append(f"{params / 1e6:.1f} M params")

    steps = _num(card.get("total_steps"))
    steps = steps if steps is not None else _num(card.get("steps"))
    gpu_h, cpu_h = _num(card.get("gpu_hours")), _num(card.get("cpu_hours"))
    device = str(card.get("device", "")).lower()
    if gpu_h:
        where, hours = "GPU", gpu_h
    elif cpu_h:
        where, hours = "CPU", cpu_h
    else:
        where = "GPU" if ("cuda" in device or "gpu" in device) else ("CPU" if "cpu" in device
                                                                      else "")
        wall = _num(card.get("wall_time_s"))
        hours = wall / 3600.0 if wall else None
    lineage = _num(card.get("lineage_cpu_hours"))
    if hours and where == "CPU" and lineage and lineage > hours + 0.05:  # a warm-started run
        hours_text = f"{_hours(hours)}, {_hours(lineage)} with its warm start"
    else:
        hours_text = _hours(hours) if hours else ""
    if steps:
        text = f"{steps:.0f} steps" + (f" on {where}" if where else "")
        parts.append(text + (f" ({hours_text})" if hours else ""))
    elif hours:
        parts.append(f"{_hours(hours)} of training" + (f" on {where}" if where else ""))

    shown = _bd_list(card.get("bd_rate"))
    if shown:
        parts.append("Kodak BD-rate vs " + shown)
    else:
        ev = card.get("eval") if isinstance(card.get("eval"), Mapping) else {}
        pts = ev.get("points")
        if not pts and isinstance(ev.get("rows"), Mapping):
            # a generative card: its own decoder's row, not the MSE reference beside it
            pts = next((v for k, v in ev["rows"].items() if "MSE" not in str(k)), None)
        bpp = [_num(p.get("bpp")) for p in pts or [] if isinstance(p, Mapping)]
        psnr = [_num(p.get("psnr")) for p in pts or [] if isinstance(p, Mapping)]
        bpp = [b for b in bpp if b is not None]
        psnr = [q for q in psnr if q is not None]
        if bpp and psnr:
            parts.append(f"Kodak {min(bpp):.2f}–{max(bpp):.2f} bpp at "
                         f"{min(psnr):.1f}–{max(psnr):.1f} dB")
    return " · ".join(parts) if parts else "provenance not recorded"


#: what each provenance status means, in one sentence: ``lic models`` and the studio's "About
#: this model" card say exactly this (``""``: nothing on the card says either way)
PROVENANCE_WORDS = {
    "trained": "TRAINED — weights come from a real training run; numbers are meaningful.",
    "preview": "PREVIEW — a small or briefly trained model; it shows how the codec works, "
               "its rate–distortion numbers are NOT representative.",
    "": "Provenance not stated by the codec.",
}


@dataclass(frozen=True)
class Provenance:
    """What a set of weights is, for people: the one description the CLI and the studio share.

    Attributes
    ----------
    status : str
        ``"preview"``, ``"trained"`` or ``""`` (nothing recorded says which).
    line : str
        :func:`provenance_line` (parameters, training steps and hardware, measured BD-rates).
    """

    status: str
    line: str

    @property
    def preview(self) -> bool:
        return self.status == "preview"

    @property
    def words(self) -> str:
        """The status in one sentence (:data:`PROVENANCE_WORDS`)."""
        return PROVENANCE_WORDS[self.status]


def weights_provenance(meta: Mapping[str, Any]) -> Provenance:
    """The :class:`Provenance` of ``meta``: :func:`load_weights`' metadata, a model card, or a
    codec's ``describe()`` (whose ``provenance`` words count too: a preview wins, since a
    preview card may also say it was "trained briefly")."""
    card = _card_of(meta)
    said = str(meta.get("provenance", "")).lower() if isinstance(meta, Mapping) else ""
    if is_preview(card) or "preview" in said:
        status = "preview"
    elif "trained" in said or card.get("preview") is False \
            or str(card.get("status", "")).strip().lower().startswith("trained"):
        status = "trained"
    else:
        status = ""
    return Provenance(status=status, line=provenance_line(meta))
