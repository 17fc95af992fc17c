"""Hashes of everything the exact path produces, for cross-thread / cross-process / cross-device
comparisons (tests/core/test_exact_threads.py, benchmarks/exact_path.py).

:func:`exact_fingerprint` runs the LGEM engine as the encoder does (rounding around the mean) and
then as the decoder does (replaying the symbols, checking that every (group, pass) sees the
encoder's scale indices) and returns SHA-256 digests of Φ_h, scale indices, means, ŷ_G, the
symbols and the uint8 picture.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from ...entropy_model.checkerboard import anchor_mask, gather, scatter
from .entropy import ExactEntropyParameters
from .synthesis import ExactSynthesis


def digest(t: torch.Tensor) -> str:
    a = np.ascontiguousarray(t.detach().cpu().numpy())
    return hashlib.sha256(a.tobytes() + str(a.dtype).encode() + str(a.shape).encode()).hexdigest()[:16]


def _passes(engine: ExactEntropyParameters, phi, gains, step, y=None) -> dict:
    """The 10 steps of the LGEM coder with the exact engine (``step(g, p, res, idx) → q``)."""
    B, _, h, w = phi.shape
    amask = anchor_mask(h, w, phi.device)
    masks = (amask, ~amask)
    G = gains["G"]
    y_prev = None
    out_y, out_m, out_i = [], [], []
    for g in range(len(engine.groups)):
        sl = engine.group_slice(g)
        Gg = G[:, sl]
        shape = (B, Gg.shape[1], h, w)
        shared = engine.shared_context(g, phi, y_prev)
        yq = torch.zeros(shape, dtype=torch.float64)
        m_full = torch.zeros(shape, dtype=torch.float64)
        i_full = torch.zeros(shape, dtype=torch.int64)
        for p in (0, 1):
            if p == 0:
                idx, mean, _ = engine.anchor_params(g, gains, shared)
            else:
                idx, mean, _ = engine.nonanchor_params(g, gains, shared,
                                                       engine.context_input(yq, Gg) * amask)
            mg, ig = gather(mean, masks[p]), gather(idx, masks[p])
            res = None if y is None else gather(y[:, sl].double() * Gg, masks[p]) - mg
            rec = step(g, p, res, ig).double()
            yq = yq + scatter(mg + rec, masks[p], shape=shape)
            m_full = m_full + scatter(mg, masks[p], shape=shape)
            i_full = i_full + scatter(ig, masks[p], shape=shape)
        out_y.append(yq)
        out_m.append(m_full)
        out_i.append(i_full)
        ctx = engine.context_input(yq, Gg)
        y_prev = ctx if y_prev is None else torch.cat([y_prev, ctx], dim=1)
    return {"y_hat_gained": torch.cat(out_y, 1), "means": torch.cat(out_m, 1),
            "scale_index": torch.cat(out_i, 1)}


@torch.no_grad()
def exact_fingerprint(engine: ExactEntropyParameters, synth: ExactSynthesis | None,
                      y: torch.Tensor, z_hat: torch.Tensor, code: int) -> dict[str, str]:
    """Digests of the exact path on one latent (``y`` from g_a, ``z_hat`` = symbols + medians)."""
    gains = engine.gains_for_code(code)
    phi = engine.hyper(z_hat, gains)
    symbols: dict[tuple[int, int], torch.Tensor] = {}
    enc_idx: dict[tuple[int, int], torch.Tensor] = {}

    def encode_step(g, p, res, idx):
        q = torch.round(res)
        symbols[(g, p)] = q
        enc_idx[(g, p)] = idx
        return q

    enc = _passes(engine, phi, gains, encode_step, y=y)
    mismatches = [0]

    def decode_step(g, p, res, idx):
        mismatches[0] += int((idx != enc_idx[(g, p)]).sum())
        return symbols[(g, p)]

    dec = _passes(engine, phi, gains, decode_step)
    out = {"phi": digest(phi), "scale_index": digest(enc["scale_index"]),
           "means": digest(enc["means"]), "y_hat_gained": digest(enc["y_hat_gained"]),
           "symbols": digest(torch.cat([symbols[k].reshape(-1) for k in sorted(symbols)])),
           "decoder_y_hat_equal": bool(torch.equal(dec["y_hat_gained"], enc["y_hat_gained"])),
           "decoder_index_mismatches": mismatches[0]}
    if synth is not None:
        out["picture"] = digest(synth.picture(dec["y_hat_gained"], code))
    return out
