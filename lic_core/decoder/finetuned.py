"""Synthesis transforms fine-tuned on one quantizer's real latents (METHODS §1.5).

``lic finetune`` (lic_core.train.finetune) writes ``<model>-ft-<quantizer>.safetensors`` holding
only g_s and the inverse gains G'.  The codec swaps them in for that quantizer on both sides and
mixes their hash into the ``.lic`` header's weights hash, so files coded with and without the
fine-tuned decoder can never be confused (METHODS §1.5 pitfalls).
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Callable

import torch

from ..weights import load_weights

#: ``synth(ŷ⊙G, gains with "u") → x̂``
Synthesis = Callable[[torch.Tensor, dict], torch.Tensor]


def load_finetuned_synthesis(model: torch.nn.Module, path: Path,
                             base_hash: bytes) -> tuple[Synthesis, bytes]:
    """(synthesis with the fine-tuned g_s and G', 8-byte header hash) from a fine-tuned file."""
    state, meta = load_weights(path)
    g_s = copy.deepcopy(model.g_s)
    inv = copy.deepcopy(model.gains.inv_gain)
    g_s.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("g_s.")})
    inv.load_state_dict({k[len("gains.inv_gain."):]: v for k, v in state.items()
                         if k.startswith("gains.inv_gain.")})
    g_s.eval()
    digest = hashlib.sha256(base_hash + meta["weights_hash_bytes"]).digest()[:8]

    def synth(y_hat_gained: torch.Tensor, gains: dict) -> torch.Tensor:
        return g_s(y_hat_gained * inv(gains["u"]))

    return synth, digest
