"""The GAN decoder of a learned codec (issue 26): ``<model>-gan.safetensors``.

What it is: the codec's synthesis transform g_s and inverse gains G', warm-started from the base
weights and retrained with HiFiC's generator objective (Mentzer et al., "High-Fidelity Generative
Image Compression", NeurIPS 2020, §3–4: MSE + LPIPS + a conditional GAN, with HiFiC's loss
weights) on the frozen latents of the shipped codec (:mod:`lic_core.train.gan_decoder`). It has
g_s's architecture, so it decodes through :class:`lic_core.models.lgem_exact.ExactSynthesis` like
the MSE decoder: the same picture on every machine and thread count, checked against the CRC32 the
encoder stored for the "gan" picture.

Why a file names it: only the decoder differs from an MSE file of the same latents, so a ``.lic``
file made for it names ``SHA-256(base hash ‖ GAN decoder hash)[:8]`` in its header (as a decoder
fine-tuned on a quantizer's latents does, :mod:`lic_core.decoder.finetuned`): a GAN file can only
be decoded with the decoder that made its picture, on the base weights it was trained on. The
decoder file records that base hash; beside other codec weights the codec does not offer it
(like a stale fine-tuned decoder), because its g_s learned on other latents.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import torch

from ..models.lgem_exact import ExactSynthesis
from .finetuned import finetuned_base_hash, load_finetuned_synthesis

__all__ = ["gan_base_hash", "gan_header_hash", "load_gan_synthesis"]


def gan_base_hash(path: Path) -> Optional[str]:
    """Hex hash of the codec weights the GAN decoder was trained on (None: not recorded)."""
    return finetuned_base_hash(path)


def gan_header_hash(path: Path, base_hash: bytes) -> bytes:
    """The 8-byte header hash of files made with the GAN decoder at ``path`` on the base weights
    ``base_hash``, from the file's metadata alone (no tensors read)."""
    from ..weights import read_weights_hash

    own = read_weights_hash(path)
    if own is None:  # written without a hash: the one load_weights would compute
        from ..weights import load_weights

        own = load_weights(path)[1]["weights_hash_bytes"].hex()
    return hashlib.sha256(bytes(base_hash) + bytes.fromhex(own)).digest()[:8]


def load_gan_synthesis(model: torch.nn.Module, path: Path,
                       base_hash: bytes) -> tuple[ExactSynthesis, bytes]:
    """(exact synthesis with the GAN decoder's g_s and G', 8-byte header hash)."""
    return load_finetuned_synthesis(model, path, base_hash)
