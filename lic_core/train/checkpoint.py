"""Training checkpoints: atomic writes, keep the newest K, find the latest.

A checkpoint is a ``torch.save`` dict: ``model`` (state_dict), ``optimizer``, ``aux_optimizer``,
``scheduler``, ``ema`` (or None), ``step`` (optimizer steps done), ``model_name``, ``config``
(the model's ModelConfig as a dict when it is a dataclass), ``train`` (the TrainConfig as a dict),
``wall_s`` (training wall time summed over resumed runs) and ``device`` (where it trained).
Writes go to ``<file>.tmp`` then ``os.replace`` so a kill mid-write never leaves a torn file.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Union

import torch

from ..errors import LicError

CKPT_RE = re.compile(r"^ckpt-(\d{8})\.pt$")


class CheckpointError(LicError):
    """A checkpoint file is missing or not a LIC training checkpoint."""


def checkpoint_path(run_dir: Union[str, Path], step: int) -> Path:
    return Path(run_dir) / f"ckpt-{step:08d}.pt"


def save_checkpoint(state: dict, run_dir: Union[str, Path], keep: int = 2) -> Path:
    """Write ``state`` as ``run_dir/ckpt-<step>.pt`` atomically and delete all but the newest
    ``keep`` checkpoints of the folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(run_dir, int(state["step"]))
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    olds = sorted(p for p in run_dir.iterdir() if CKPT_RE.match(p.name))
    for p in olds[:-keep] if keep > 0 else []:
        p.unlink(missing_ok=True)
    return path


def latest_checkpoint(run_dir: Union[str, Path]) -> Optional[Path]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    cks = sorted(p for p in run_dir.iterdir() if CKPT_RE.match(p.name))
    return cks[-1] if cks else None


def resolve_checkpoint(path: Union[str, Path]) -> Path:
    """A checkpoint file, or a run folder (its newest checkpoint)."""
    p = Path(path)
    if p.is_dir():
        q = latest_checkpoint(p)
        if q is None:
            raise CheckpointError(f"no ckpt-*.pt in {p}")
        return q
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    return p


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> dict:
    p = resolve_checkpoint(path)
    try:
        # weights_only: checkpoints are plain dicts of tensors and primitives, so nothing a user
        # hands us is ever unpickled as arbitrary objects
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torn/foreign file: one-line user error
        raise CheckpointError(f"cannot read checkpoint {p}: {exc}") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{p} is not a LIC training checkpoint")
    state["_path"] = str(p)
    return state


def init_source(path: Union[str, Path]) -> dict:
    """What ``--init PATH`` says about the architecture to build: a training checkpoint (its
    ``model_name`` and ``config``), or ``{"config": …}`` from an exported weights file's metadata
    — exports and campaign seeds carry their config, which may differ from the registry's (more
    rate levels: :mod:`.levels`); ``{}`` when there is nothing to read."""
    import json

    p = Path(path)
    if p.suffix != ".safetensors":
        return load_checkpoint(p)
    if not p.is_file():
        return {}  # the loader's "--init weights not found" says it
    from safetensors import safe_open

    with safe_open(str(p), framework="pt") as f:
        raw = (f.metadata() or {}).get("config")
    cfg = json.loads(raw) if raw else None
    return {"config": cfg} if isinstance(cfg, dict) else {}
