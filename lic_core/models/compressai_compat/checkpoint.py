"""Reading a user's CompressAI checkpoint safely, and naming what it holds.

CompressAI's ``examples/train.py`` saves ``{"epoch", "state_dict", "loss", "optimizer",
"aux_optimizer", "lr_scheduler"}`` without calling ``update()``; ``compressai.utils.update_model``
saves the bare state dict after ``update(force=True)``; DataParallel adds ``module.`` prefixes.
All of these are tensors in plain containers, which ``torch.load(weights_only=True)`` reads
without executing any code.  A file that needs anything else unpickled is refused: a checkpoint
is user data and loading must never run it.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ...errors import CheckpointError
from .base import CompatModel, clean_state_dict


@dataclass
class Checkpoint:
    """A checkpoint's state dict and how it was saved."""

    path: Path
    state_dict: dict
    #: "examples/train.py checkpoint (epoch 12)" or "bare state dict"
    kind: str
    file_sha256: str


def read_checkpoint(path: os.PathLike | str) -> Checkpoint:
    """The cleaned state dict of ``path`` (see the module docstring); every failure is one
    :class:`CheckpointError` line naming the file, what was expected and what was found."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}" if not p.exists()
                              else f"{p} is not a file (expected a CompressAI checkpoint)")
    data = p.read_bytes()
    if not data:
        raise CheckpointError(f"{p.name}: empty file (expected a CompressAI checkpoint)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        what = str(exc).splitlines()
        detail = next((ln.strip() for ln in what if "GLOBAL" in ln or "Unsupported" in ln), "")
        raise CheckpointError(
            f"{p.name}: refused — it holds pickled Python objects that loading would execute "
            f"(only tensors and plain containers are read){': ' + detail if detail else ''}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        size = len(data)
        raise CheckpointError(f"{p.name}: not a readable PyTorch checkpoint ({size} bytes; "
                              f"truncated or another format: {first[:120]})") from None
    sd, kind = _state_dict_of(obj, p.name)
    return Checkpoint(p, clean_state_dict(sd), kind, hashlib.sha256(data).hexdigest())


def _state_dict_of(obj, name: str) -> tuple[dict, str]:
    """The state dict inside a loaded object: ``state_dict``/``network`` entries (the keys
    CompressAI's tools read) or the object itself."""
    if isinstance(obj, dict):
        for key in ("state_dict", "network", "model"):
            inner = obj.get(key)
            if isinstance(inner, dict) and _tensor_dict(inner):
                epoch = obj.get("epoch")
                kind = (f"examples/train.py checkpoint (epoch {epoch})" if epoch is not None
                        else f"checkpoint with a '{key}' entry")
                return inner, kind
        if _tensor_dict(obj):
            return obj, "bare state dict"
        keys = ", ".join(sorted(str(k) for k in obj)[:6]) or "none"
        raise CheckpointError(f"{name}: not a CompressAI checkpoint (expected a state dict of "
                              f"tensors or {{'state_dict': ...}}, found a dict with keys {keys})")
    raise CheckpointError(f"{name}: not a CompressAI checkpoint (expected a dict of tensors, "
                          f"found {type(obj).__name__})")


def _tensor_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) for k in d) and \
        sum(isinstance(v, torch.Tensor) for v in d.values()) >= max(1, len(d) // 2)


def model_hash(model: CompatModel) -> str:
    """16 hex digits naming the weights (float32 tensors, sorted keys): the two ways CompressAI
    saves one model give the same value, and a changed model another."""
    h = hashlib.sha256(f"compressai:{model.arch}".encode())
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        t = t.float() if t.is_floating_point() else t.long()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_zoo_file(prefix: str, folder: Optional[Path] = None) -> Optional[Path]:
    """The cached zoo file whose name starts with ``prefix`` (e.g.
    ``mbt2018-mean-3-``), if present; never downloads."""
    d = folder or torch_hub_checkpoints()
    if not d.is_dir():
        return None
    hits = sorted(d.glob(f"{prefix}*.pth.tar"))
    return hits[0] if hits else None


def zoo_file_names() -> dict:
    """arch → metric → quality → the zoo's file name (CompressAI 1.2.8's URL table)."""
    import json

    return json.loads((Path(__file__).with_name("zoo_files.json")).read_text())
