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

from ..entropy_model.checkerboard import anchor_mask, gather
from ..memory import release_free_memory
from .base import GainedLatent, StepHook, StepRunner, YPasses, channel_slices
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
            y_bar=None, on_step: Optional[StepHook] = None, maps: bool = True) -> YPasses:
        """Quantize/code (``y_bar`` = gained latent y⊙G given, as a tensor or a
        :class:`~lic_core.latent_codecs.base.GainedLatent`) or decode (``y_bar`` None).

        ``maps=False`` keeps only ŷ⊙G (no full-size μ, σ and bits: a command-line run of a big
        photo, issue 28).  ŷ⊙G is one buffer filled group by group; earlier groups are views of
        it, never copies."""
        eng = self.engine
        phi = eng.hyper(z_hat_gained, gains)
        B, _, h, w = phi.shape
        dev, dt = phi.device, eng.value_dtype
        amask = anchor_mask(h, w, dev)
        masks = (amask, ~amask)
        shape = (B, sum(eng.groups), h, w)
        y_hat = torch.zeros(shape, dtype=dt, device=dev)  # zeros where nothing is decoded yet
        means = torch.zeros(shape, dtype=dt, device=dev) if maps else None
        scales = torch.zeros(shape, dtype=dt, device=dev) if maps else None
        bits_full = torch.zeros(shape, dtype=torch.float64) if maps else None
        step_bits: dict[str, float] = {}
        done = 0
        if isinstance(y_bar, GainedLatent):  # each group's y goes once the group is coded
            y_bar.split(eng.groups)
        for g in range(len(eng.groups)):
            sl = eng.group_slice(g)
            ctx = eng.group_context(g, phi, gains, y_hat[:, :sl.start] if g else None)
            yq = y_hat[:, sl]
            for p in (0, 1):
                prm = (eng.anchor(g, ctx, gains, scales=maps) if p == 0 else
                       eng.nonanchor(g, ctx, gains, yq, scales=maps))
                pick = (lambda t: t) if prm.gathered else (lambda t, m=masks[p]: gather(t, m))
                if prm.gathered:
                    mean_of = prm.means  # μ·G of a channel slice (made when needed)
                else:
                    mean_full = pick(prm.mean)
                    mean_of = (lambda cs, mg=mean_full: mg[:, cs])
                    del mean_full
                index = pick(prm.index)
                res = None
                if y_bar is not None:  # ȳ − μ of a channel slice of the pass, when asked
                    def res(cs, sl=sl, m=masks[p], mean_of=mean_of):
                        return _gathered(y_bar, _sub(sl, cs), m) - mean_of(cs)
                label = f"g{g}/{PASS_NAMES[p]}"
                rec, bits = runner(label, res, index)
                # `+=` on the gathered positions: 0 + value, as the sum of the zero-filled tensor
                # and the scattered pass always was (−0 becomes +0, the same bits as before);
                # in channel slices, so the temporaries stay small
                for cs in channel_slices(index.shape):
                    mg = mean_of(cs)
                    yq[:, cs][:, :, masks[p]] += (mg + rec[:, cs].to(mg.dtype)).to(dt)
                    del mg
                del rec
                if maps:
                    means[:, sl][:, :, masks[p]] += mean_of(slice(None)).to(dt)
                    scales[:, sl][:, :, masks[p]] += pick(prm.scale).to(dt)
                if bits is not None:
                    step_bits[label] = float(bits.sum())
                    if maps:
                        bits_full[:, sl][:, :, masks[p].cpu()] += bits.to(torch.float64).cpu()
                del prm, mean_of, index, bits, res  # (res holds μ: the pass's arrays go now)
                # the step's tile temporaries: back to the system (a big latent only)
                release_free_memory(y_hat.numel() * y_hat.element_size())
                done += 1
                if on_step is not None:
                    on_step(done, self.num_steps, label)
            del ctx
            if isinstance(y_bar, GainedLatent):
                y_bar.release(sl)
        return YPasses(y_hat_gained=y_hat, means=means, scales=scales,
                       bits=bits_full if step_bits and maps else None, step_bits=step_bits)


def _sub(sl: slice, cs: slice) -> slice:
    """Channels ``cs`` (relative) of the group's channels ``sl``."""
    start = sl.start + (cs.start or 0)
    stop = sl.stop if cs.stop is None else sl.start + cs.stop
    return slice(start, min(stop, sl.stop))


def _gathered(y_bar, sl: slice, mask: torch.Tensor) -> torch.Tensor:
    """ȳ of channels ``sl`` at the pass positions ``mask`` (B×C×N).  From a GainedLatent the
    float32 y is gathered first and gained after: the same products, on the pass only."""
    if isinstance(y_bar, GainedLatent):
        y = gather(y_bar.y_channels(sl), mask)
        return y.to(y_bar.gain.dtype) * y_bar.gain[:, sl, :, 0]
    return gather(y_bar[:, sl], mask)
