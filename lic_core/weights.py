"""Weights files: fp16 safetensors with the config and model card in the metadata.

Floating-point parameters are stored as float16 (the repo's 40 MiB weights budget); float64
buffers (the entropy coder's pmf tables) and integer buffers are stored as they are, so coding
tables survive export bit-exactly.  :func:`weights_hash` (8 bytes of SHA-256 over the stored
tensors and lic_core's format version) goes into every ``.lic`` header; a decoder with other
weights refuses the file (METHODS §6.4 item 3).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from . import FORMAT_VERSION


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata=meta)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; weights are ordinary readable files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest


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
