"""Synthesis transforms fine-tuned on one quantizer's real latents (docs/methods.md §4.5).

``lic finetune`` (lic_core.train.finetune) writes ``<model>-ft-<quantizer>.safetensors`` holding
only g_s and the inverse gains G'.  The codec swaps them in for that quantizer on both sides and
mixes their hash into the ``.lic`` header's weights hash, so files coded with and without the
fine-tuned decoder can never be confused (docs/methods.md §4.5 pitfalls).  Like the model's own g_s
they decode through :class:`lic_core.models.lgem_exact.ExactSynthesis` (the same picture on every
machine).
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Optional

import torch

from ..models.lgem_exact import ExactSynthesis
from ..transform.deepen import deepen_synthesis
from ..weights import load_weights


def load_finetuned_modules(model: torch.nn.Module, path: Path) -> tuple[torch.nn.Module,
                                                                         torch.nn.Module, dict]:
    """(fine-tuned g_s, fine-tuned G' table, file metadata) on top of ``model``'s architecture
    (with the extra blocks per stage of a deeper GAN generator when the file names them)."""
    state, meta = load_weights(path)
    g_s = copy.deepcopy(model.g_s)
    inv = copy.deepcopy(model.gains.inv_gain)
    extra = int(meta.get("g_s_extra_blocks") or 0)
    if extra:  # a deeper generator (lic_core.transform.deepen): build its g_s first
        deepen_synthesis(g_s, extra)
    g_s.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("g_s.")})
    inv.load_state_dict({k[len("gains.inv_gain."):]: v for k, v in state.items()
                         if k.startswith("gains.inv_gain.")})
    return g_s.eval(), inv, meta


def finetuned_base_hash(path: Path) -> Optional[str]:
    """Hex hash of the base weights a fine-tuned decoder file was tuned on (None: not recorded),
    read from its metadata without loading the tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("base_weights_hash")


def load_finetuned_synthesis(model: torch.nn.Module, path: Path,
                             base_hash: bytes) -> tuple[ExactSynthesis, bytes]:
    """(exact synthesis with the fine-tuned g_s and G', 8-byte header hash) from a fine-tuned file."""
    g_s, inv, meta = load_finetuned_modules(model, path)
    digest = hashlib.sha256(base_hash + meta["weights_hash_bytes"]).digest()[:8]
    return ExactSynthesis(g_s, inv), digest
