"""Entropy-parameter engines: the one replaceable source of μ and the scale index of y.

The y latent codecs never call a network themselves: they ask an *engine* for the parameters of
each (group, pass) step and get a :class:`PassParams` — the gained mean ``μ·G`` (float, what the
quantizer's residual is taken around) and the int64 scale-table **index** (what the quantizer and
the entropy coder use; docs/methods.md §6.3–6.4).  The float σ·G rides along for the inspection
views only and is never coded.

Two kinds of engine implement the same methods:

* the **exact** engines (:class:`LgemExactParameters`, :class:`ScaleHyperpriorExactParameters`) —
  what every codec codes with (format v2): the networks evaluated with exact integer sums and
  deterministic elementwise math (:mod:`lic_core.exact`), so the index and μ are the same bits on
  any thread count, CPU or GPU (docs/bitstream.md, "Reproducible decoding");
* the **float** engines (:class:`LgemFloatParameters`, :class:`ScaleHyperpriorFloatParameters`) —
  the network's float32 outputs, index = ``scale_index(σ·G)``; kept for training-time analysis
  and as the measured reference in benchmarks, never for files.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..entropy_model.checkerboard import anchor_mask
from ..entropy_model.gaussian import scale_index
from ..exact import ExactEntropyParameters, ExactMeanScaleHyperprior
from ..exact.cache import cached


@dataclass
class PassParams:
    """Entropy parameters of one step: full size ``B×C×h×w`` (valid at that step's positions), or
    with ``gathered`` only the step's positions, ``B×C×N`` in raster order (``checkerboard.gather``)."""

    mean: torch.Tensor  #: gained mean μ·G (float64 on the exact path, float32 on the float one)
    index: torch.Tensor  #: scale-table index (int64) — the coded quantity
    scale: torch.Tensor  #: gained σ·G (inspection only)
    gathered: bool = False

    @classmethod
    def from_float(cls, mean_gained: torch.Tensor, scale_gained: torch.Tensor) -> "PassParams":
        """The float path: index = ``scale_index(σ·G)`` (smallest table entry ≥ σ·G)."""
        return cls(mean=mean_gained, index=scale_index(scale_gained), scale=scale_gained)


class GroupedEntropyParameters(abc.ABC):
    """Parameters of y coded in channel groups, each in two checkerboard passes (docs/methods.md
    §3.4).

    ``gains`` is the dict of the rate's gain vectors (``"G"``, ``"H_inv"``, …, docs/methods.md §5).
    Reconstructions passed in are *gained* (ŷ⊙G); an engine un-gains them itself.
    """

    #: channels per group, in coding order
    groups: tuple[int, ...]

    @abc.abstractmethod
    def gains_for_code(self, code: int) -> dict:
        """The gain vectors this engine works with at u16 slider ``code``."""

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

    def gains_for_code(self, code: int) -> dict:
        dev = next(self.model.parameters()).device
        return self.model._gains(int(code) / 65535, 1, dev)

    def hyper(self, z_hat_gained, gains):
        return self.model.h_s(z_hat_gained.float() * gains["H_inv"])

    def group_context(self, g, phi, gains, y_prev_gained):
        y_prev = None
        if y_prev_gained is not None:
            y_prev = y_prev_gained.float() / gains["G"][:, : y_prev_gained.shape[1]]
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
        y_anchor = (y_anchor_gained.float() / Gg) * anchor_mask(h, w, y_anchor_gained.device)
        s, m = self.model.context.nonanchor_params(g, ctx, y_anchor)
        return self._gained(g, gains, s, m)


class HyperpriorEntropyParameters(abc.ABC):
    """Parameters of y coded in one step from the hyper-latent alone (mean-scale hyperprior)."""

    @abc.abstractmethod
    def gains_for_code(self, code: int) -> dict:
        """The gain vectors this engine works with at u16 slider ``code``."""

    @abc.abstractmethod
    def params(self, z_hat_gained: torch.Tensor, gains: dict) -> PassParams:
        """Full-size gained μ and scale index of every element of ȳ."""


class ScaleHyperpriorFloatParameters(HyperpriorEntropyParameters):
    """A model's ``entropy_parameters(ẑ⊙H, H')`` → (μ, σ) in the gained domain (HiFiC, §8.1)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def gains_for_code(self, code: int) -> dict:
        dev = next(self.model.parameters()).device
        return self.model.gain_vectors(torch.tensor([int(code) / 65535], device=dev))

    def params(self, z_hat_gained, gains):
        means, scales = self.model.entropy_parameters(z_hat_gained.float(), gains["H_inv"])
        return PassParams.from_float(means, scales)


class LgemExactParameters(GroupedEntropyParameters):
    """The LGEM context model on the exact path (:class:`lic_core.exact.ExactEntropyParameters`).

    ``gains`` must be the exact gains of a slider code (:meth:`gains_for_code`: float64 tensors
    holding float32 values).  The quantized networks are built once per model weights."""

    def __init__(self, model: torch.nn.Module, device="cpu") -> None:
        self.model = model
        self.groups = tuple(model.config.groups)
        dev = torch.device(device)
        self.exact: ExactEntropyParameters = cached(
            model, f"entropy:{dev}", (model.h_s, model.context, model.gains),
            lambda: ExactEntropyParameters.from_model(model, device=dev))

    def gains_for_code(self, code: int) -> dict:
        return self.exact.gains_for_code(code)

    def hyper(self, z_hat_gained, gains):
        return self.exact.hyper(z_hat_gained, gains)

    def group_context(self, g, phi, gains, y_prev_gained):
        y_prev = None
        if y_prev_gained is not None:
            y_prev = self.exact.context_input(y_prev_gained, gains["G"][:, : y_prev_gained.shape[1]])
        return self.exact.shared_context(g, phi, y_prev)

    def anchor(self, g, ctx, gains):
        idx, mean, sg = self.exact.anchor_params(g, gains, ctx, gathered=True)
        return PassParams(mean=mean, index=idx, scale=sg, gathered=True)

    def nonanchor(self, g, ctx, gains, y_anchor_gained):
        y_anchor = self.exact.context_input(y_anchor_gained, gains["G"][:, self.group_slice(g)])
        idx, mean, sg = self.exact.nonanchor_params(g, gains, ctx, y_anchor, gathered=True)
        return PassParams(mean=mean, index=idx, scale=sg, gathered=True)


class ScaleHyperpriorExactParameters(HyperpriorEntropyParameters):
    """A mean-scale hyperprior (``model.h_s_mean``, ``model.h_s_scale``, ``model.gains``) on the
    exact path (:class:`lic_core.exact.ExactMeanScaleHyperprior`; HiFiC, docs/methods.md §8.1)."""

    def __init__(self, model: torch.nn.Module, device="cpu") -> None:
        self.model = model
        dev = torch.device(device)
        self.exact: ExactMeanScaleHyperprior = cached(
            model, f"hyperprior:{dev}", (model.h_s_mean, model.h_s_scale, model.gains),
            lambda: ExactMeanScaleHyperprior(model.h_s_mean.net, model.h_s_scale.net, model.gains,
                                             device=dev))

    def gains_for_code(self, code: int) -> dict:
        return self.exact.gains_for_code(code)

    def params(self, z_hat_gained, gains):
        idx, mean, sg = self.exact.params(z_hat_gained, gains)
        return PassParams(mean=mean, index=idx, scale=sg)
