"""y of the LGEM codec: channel groups, each in two checkerboard passes (docs/methods.md §3.3–3.4,
§6.3).

The 10 sequential steps (5 groups × anchors, non-anchors) are the bitstream order. Elements of a
pass are gathered in raster order into ``B×C×N`` (:func:`~lic_core.entropy_model.checkerboard.gather`,
part of the format).  Encoding, quantize-only runs (fine-tuning) and decoding walk this very loop
with different :class:`~lic_core.latent_codecs.base.StepRunner` s, so the decoder's ŷ — and hence
the image — equals the encoder's bit for bit.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..entropy_model.checkerboard import anchor_mask, gather, scatter
from .base import StepHook, StepRunner, YPasses
from .parameters import GroupedEntropyParameters

PASS_NAMES = ("anchor", "non-anchor")


class CheckerboardGroupedCodec:
    """Runs the (group, pass) steps of y with parameters from a grouped engine."""

    def __init__(self, engine: GroupedEntropyParameters) -> None:
        self.engine = engine

    @property
    def num_steps(self) -> int:
        return 2 * len(self.engine.groups)

    @torch.no_grad()
    def run(self, z_hat_gained: torch.Tensor, gains: dict, runner: StepRunner,
            y_bar: Optional[torch.Tensor] = None, on_step: Optional[StepHook] = None) -> YPasses:
        """Quantize/code (``y_bar`` = gained latent y⊙G given) or decode (``y_bar`` None)."""
        eng = self.engine
        phi = eng.hyper(z_hat_gained, gains)
        B, _, h, w = phi.shape
        amask = anchor_mask(h, w, phi.device)
        masks = (amask, ~amask)
        out_y, out_m, out_s, out_bits = [], [], [], []
        step_bits: dict[str, float] = {}
        done = 0
        for g in range(len(eng.groups)):
            sl = eng.group_slice(g)
            shape = (B, sl.stop - sl.start, h, w)
            ctx = eng.group_context(g, phi, gains, torch.cat(out_y, 1) if out_y else None)
            # float64 on the exact path (Φ_h holds grid integers), float32 on the float one
            yq = torch.zeros(shape, dtype=phi.dtype, device=phi.device)
            m_full = torch.zeros(shape, dtype=phi.dtype, device=phi.device)
            s_full = torch.zeros(shape, dtype=phi.dtype, device=phi.device)
            b_full = torch.zeros(shape, dtype=torch.float64)
            for p in (0, 1):
                prm = eng.anchor(g, ctx, gains) if p == 0 else eng.nonanchor(g, ctx, gains, yq)
                pick = (lambda t: t) if prm.gathered else (lambda t, m=masks[p]: gather(t, m))
                mg = pick(prm.mean)
                res = None if y_bar is None else gather(y_bar[:, sl], masks[p]) - mg
                label = f"g{g}/{PASS_NAMES[p]}"
                rec, bits = runner(label, res, pick(prm.index))
                yq = yq + scatter(mg + rec.to(mg.dtype), masks[p], shape=shape).to(yq.dtype)
                m_full = m_full + scatter(mg, masks[p], shape=shape).to(yq.dtype)
                s_full = s_full + scatter(pick(prm.scale), masks[p], shape=shape).to(yq.dtype)
                if bits is not None:
                    step_bits[label] = float(bits.sum())
                    b_full += scatter(bits.to(torch.float64).cpu(), masks[p].cpu(), shape=shape)
                done += 1
                if on_step is not None:
                    on_step(done, self.num_steps, label)
            out_y.append(yq)
            out_m.append(m_full)
            out_s.append(s_full)
            out_bits.append(b_full)
        return YPasses(y_hat_gained=torch.cat(out_y, 1), means=torch.cat(out_m, 1),
                       scales=torch.cat(out_s, 1),
                       bits=torch.cat(out_bits, 1) if step_bits else None, step_bits=step_bits)
