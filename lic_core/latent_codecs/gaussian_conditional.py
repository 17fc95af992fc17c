"""y of a mean-scale hyperprior codec (HiFiC, docs/methods.md §8.1, §6.3): one step for all of ŷ.

The whole ``B×C×h×w`` latent is one block ``B×C×(h·w)`` (channel-major, raster positions), coded
under the parameters the hyperprior predicts from ẑ alone.
"""
from __future__ import annotations

from typing import Optional

import torch

from .base import GainedLatent, StepHook, StepRunner, YPasses
from .parameters import HyperpriorEntropyParameters


class GaussianConditionalCodec:
    """Runs the single y step with parameters from a hyperprior engine."""

    num_steps = 1

    def __init__(self, engine: HyperpriorEntropyParameters, label: str = "y") -> None:
        self.engine = engine
        self.label = label

    @torch.no_grad()
    def run(self, z_hat_gained: torch.Tensor, gains: dict, runner: StepRunner,
            y_bar=None, on_step: Optional[StepHook] = None, maps: bool = True) -> YPasses:
        """The one step (``maps`` is accepted for the interface: μ and σ are computed whole
        anyway; a :class:`~lic_core.latent_codecs.base.GainedLatent` ``y_bar`` is expanded)."""
        if isinstance(y_bar, GainedLatent):
            y_bar = y_bar.full()
        prm = self.engine.params(z_hat_gained, gains)
        B, C = prm.mean.shape[:2]
        res = None if y_bar is None else (y_bar - prm.mean).reshape(B, C, -1)
        rec, bits = runner(self.label, res, prm.index.reshape(B, C, -1))
        y_hat = prm.mean + rec.reshape(prm.mean.shape).to(prm.mean.dtype)
        if on_step is not None:
            on_step(1, 1, self.label)
        step_bits = {} if bits is None else {self.label: float(bits.sum())}
        return YPasses(y_hat_gained=y_hat, means=prm.mean, scales=prm.scale,
                       bits=None if bits is None else bits.to(torch.float64).reshape(
                           prm.mean.shape), step_bits=step_bits)
