"""Entropy-parameter engines: the one replaceable source of μ and the scale index of y.

The y latent codecs never call a network themselves: they ask an *engine* for the parameters of
each (group, pass) step and get a :class:`PassParams` — the gained mean ``μ·G`` (float, what the
quantizer's residual is taken around) and the int64 scale-table **index** (what the quantizer and
the entropy coder use; METHODS §6.3–6.4).  The float σ·G rides along for the inspection views
only and is never coded.

The float engines below compute the index as ``scale_index(σ·G)`` from the network's float
outputs, exactly as the codec always has.  An engine with a reproducible integer path (the same
index on any thread count, CPU or GPU) replaces them without touching the latent codecs, the
quantizers or the coder: it implements the same methods.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..entropy_model.checkerboard import anchor_mask
from ..entropy_model.gaussian import scale_index


@dataclass
class PassParams:
    """Entropy parameters of one step, full size ``B×C×h×w`` (valid at that step's positions)."""

    mean: torch.Tensor  #: gained mean μ·G (float32)
    index: torch.Tensor  #: scale-table index (int64) — the coded quantity
    scale: torch.Tensor  #: gained σ·G (float32; inspection only)

    @classmethod
    def from_float(cls, mean_gained: torch.Tensor, scale_gained: torch.Tensor) -> "PassParams":
        """The float path: index = ``scale_index(σ·G)`` (smallest table entry ≥ σ·G)."""
        return cls(mean=mean_gained, index=scale_index(scale_gained), scale=scale_gained)


class GroupedEntropyParameters(abc.ABC):
    """Parameters of y coded in channel groups, each in two checkerboard passes (METHODS §2.4).

    ``gains`` is the dict of the rate's gain vectors (``"G"``, ``"H_inv"``, …, METHODS §5).
    Reconstructions passed in are *gained* (ŷ⊙G); an engine un-gains them itself.
    """

    #: channels per group, in coding order
    groups: tuple[int, ...]

    def group_slice(self, g: int) -> slice:
        start = sum(self.groups[:g])
        return slice(start, start + self.groups[g])

    @abc.abstractmethod
    def hyper(self, z_hat_gained: torch.Tensor, gains: dict) -> torch.Tensor:
        """Hyper features Φ_h from the dequantized, still gained, hyper-latent ẑ⊙H."""

    @abc.abstractmethod
    def group_context(self, g: int, phi: torch.Tensor, gains: dict,
                      y_prev_gained: Optional[torch.Tensor]) -> Any:
        """Whatever both passes of group g share, from Φ_h and ŷ⊙G of groups < g (None for 0)."""

    @abc.abstractmethod
    def anchor(self, g: int, ctx: Any, gains: dict) -> PassParams:
        """Parameters of the anchors of group g (pass 0)."""

    @abc.abstractmethod
    def nonanchor(self, g: int, ctx: Any, gains: dict, y_anchor_gained: torch.Tensor) -> PassParams:
        """Parameters of the non-anchors of group g, given its decoded anchors (zeros elsewhere)."""


class LgemFloatParameters(GroupedEntropyParameters):
    """The LGEM context model's float outputs (``LicModel.h_s`` and ``LicModel.context``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.groups = tuple(model.config.groups)

    def hyper(self, z_hat_gained, gains):
        return self.model.h_s(z_hat_gained * gains["H_inv"])

    def group_context(self, g, phi, gains, y_prev_gained):
        y_prev = None
        if y_prev_gained is not None:
            y_prev = y_prev_gained / gains["G"][:, : y_prev_gained.shape[1]]
        return self.model.context.shared_context(g, phi, y_prev)

    def _gained(self, g: int, gains: dict, scale: torch.Tensor, mean: torch.Tensor) -> PassParams:
        Gg = gains["G"][:, self.group_slice(g)]
        return PassParams.from_float(mean * Gg, scale * Gg)

    def anchor(self, g, ctx, gains):
        s, m = self.model.context.anchor_params(g, ctx)
        return self._gained(g, gains, s, m)

    def nonanchor(self, g, ctx, gains, y_anchor_gained):
        Gg = gains["G"][:, self.group_slice(g)]
        h, w = y_anchor_gained.shape[-2:]
        y_anchor = (y_anchor_gained / Gg) * anchor_mask(h, w, y_anchor_gained.device)
        s, m = self.model.context.nonanchor_params(g, ctx, y_anchor)
        return self._gained(g, gains, s, m)


class HyperpriorEntropyParameters(abc.ABC):
    """Parameters of y coded in one step from the hyper-latent alone (mean-scale hyperprior)."""

    @abc.abstractmethod
    def params(self, z_hat_gained: torch.Tensor, gains: dict) -> PassParams:
        """Full-size gained μ and scale index of every element of ȳ."""


class ScaleHyperpriorFloatParameters(HyperpriorEntropyParameters):
    """A model's ``entropy_parameters(ẑ⊙H, H')`` → (μ, σ) in the gained domain (HiFiC, §4.1)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def params(self, z_hat_gained, gains):
        means, scales = self.model.entropy_parameters(z_hat_gained, gains["H_inv"])
        return PassParams.from_float(means, scales)
