"""Hashes of everything the exact path produces, for cross-thread / cross-process / cross-device
comparisons (tests/core/test_exact_threads.py, benchmarks/exact_path.py).

:func:`exact_fingerprint` runs the encoder side (rounding around the mean) and then the decoder
side (replaying the symbols, checking that every (group, pass) sees the encoder's scale indices)
and returns SHA-256 digests of Φ_h, scale indices, means, ŷ_G, the symbols and the uint8 picture.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from .entropy import ExactEntropyParameters
from .synthesis import ExactSynthesis


def _digest(t: torch.Tensor) -> str:
    a = np.ascontiguousarray(t.detach().cpu().numpy())
    return hashlib.sha256(a.tobytes() + str(a.dtype).encode() + str(a.shape).encode()).hexdigest()[:16]


@torch.no_grad()
def exact_fingerprint(engine: ExactEntropyParameters, synth: ExactSynthesis | None,
                      y: torch.Tensor, z_hat: torch.Tensor, u: float) -> dict[str, str]:
    """Digests of the exact path on one latent (``y`` from g_a, ``z_hat`` = symbols + medians)."""
    gains = engine.gains(u)
    phi = engine.hyper(z_hat, gains)
    symbols: dict[tuple[int, int], torch.Tensor] = {}
    enc_idx: dict[tuple[int, int], torch.Tensor] = {}

    def encode_step(g, p, res, idx):
        q = torch.round(res)
        symbols[(g, p)] = q
        enc_idx[(g, p)] = idx
        return q

    enc = engine.latent_passes(phi, gains, encode_step, y=y)
    mismatches = [0]

    def decode_step(g, p, res, idx):
        mismatches[0] += int((idx != enc_idx[(g, p)]).sum())
        return symbols[(g, p)]

    dec = engine.latent_passes(phi, gains, decode_step)
    out = {"phi": _digest(phi), "scale_index": _digest(enc["scale_index"]),
           "means": _digest(enc["means"]), "y_hat_gained": _digest(enc["y_hat_gained"]),
           "symbols": _digest(torch.cat([symbols[k].reshape(-1) for k in sorted(symbols)])),
           "decoder_y_hat_equal": bool(torch.equal(dec["y_hat_gained"], enc["y_hat_gained"])),
           "decoder_index_mismatches": mismatches[0]}
    if synth is not None:
        out["picture"] = _digest(synth.picture(dec["y_hat_gained"], u))
    return out
