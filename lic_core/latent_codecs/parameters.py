"""Entropy-parameter engines: the one replaceable source of μ and the scale index of y.

The y latent codecs never call a network themselves: they ask an *engine* for the parameters of
each (group, pass) step and get a :class:`PassParams` — the gained mean ``μ·G`` (float, what the
quantizer's residual is taken around) and the int64 scale-table **index** (what the quantizer and
the entropy coder use; docs/methods.md §6.3–6.4).  The float σ·G rides along for the inspection
views only and is never coded.

Two kinds of engine implement the same methods:

* the **exact** engines (:class:`LgemExactParameters`, :class:`ScaleHyperpriorExactParameters`) —
  what every codec codes with (format v2): the networks evaluated with exact integer sums and
  deterministic elementwise math (:mod:`lic_core.exact`; the networks' exact forward passes are
  :mod:`lic_core.models.lgem_exact` and :mod:`lic_core.models.hific_exact`), so the index and μ
  are the same bits on any thread count, CPU or GPU (docs/bitstream.md, "Reproducible decoding");
* the **float** engines (:class:`LgemFloatParameters`, :class:`ScaleHyperpriorFloatParameters`) —
  the network's float32 outputs, index = ``scale_index(σ·G)``; kept for training-time analysis
  and as the measured reference in benchmarks, never for files.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from ..entropy_model.checkerboard import anchor_mask
from ..entropy_model.gaussian import scale_index
from ..exact.cache import cached
from ..models.hific_exact import ExactMeanScaleHyperprior
from ..models.lgem_exact import ExactEntropyParameters, TiledEntropy


@dataclass
class PassParams:
    """Entropy parameters of one step: full size ``B×C×h×w`` (valid at that step's positions), or
    with ``gathered`` only the step's positions, ``B×C×N`` in raster order (``checkerboard.gather``)."""

    mean: Optional[torch.Tensor]  #: gained mean μ·G (float64 exact path, float32 float one)
    index: torch.Tensor  #: scale-table index (int64, int16 from the tiled exact engine) — coded
    scale: Optional[torch.Tensor]  #: gained σ·G (inspection only; None when not asked for)
    gathered: bool = False
    #: instead of ``mean``: μ as grid integers (int32) and the function of a channel slice of
    #: them that gives μ·G (the exact engine: half the memory of float64 means on a big photo)
    mean_grid: Optional[torch.Tensor] = None
    mean_fn: Optional[Callable[[torch.Tensor, slice], torch.Tensor]] = None

    def means(self, cs: slice = slice(None)) -> torch.Tensor:
        """μ·G of channels ``cs`` (as stored: gathered or full size)."""
        if self.mean is not None:
            return self.mean[:, cs]
        assert self.mean_grid is not None and self.mean_fn is not None
        return self.mean_fn(self.mean_grid[:, cs], cs)

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
    #: dtype of the means and of ŷ⊙G (float64 on the exact path: grid values times a gain)
    value_dtype: torch.dtype = torch.float32

    @abc.abstractmethod
    def gains_for_code(self, code: int) -> dict:
        """The gain vectors this engine works with at u16 slider ``code``."""

    def group_slice(self, g: int) -> slice:
        start = sum(self.groups[:g])
        return slice(start, start + self.groups[g])

    @abc.abstractmethod
    def hyper(self, z_hat_gained: torch.Tensor, gains: dict) -> torch.Tensor:
        """Hyper features Φ_h (B×C×h×w on y's grid) from the dequantized, still gained,
        hyper-latent ẑ⊙H."""

    @abc.abstractmethod
    def group_context(self, g: int, phi: torch.Tensor, gains: dict,
                      y_prev_gained: Optional[torch.Tensor]) -> Any:
        """Whatever both passes of group g share, from Φ_h and ŷ⊙G of groups < g (None for 0)."""

    @abc.abstractmethod
    def anchor(self, g: int, ctx: Any, gains: dict, scales: bool = True) -> PassParams:
        """Parameters of the anchors of group g (pass 0); ``scales=False``: σ·G may be None."""

    @abc.abstractmethod
    def nonanchor(self, g: int, ctx: Any, gains: dict, y_anchor_gained: torch.Tensor,
                  scales: bool = True) -> PassParams:
        """Parameters of the non-anchors of group g, given its decoded anchors (zeros elsewhere);
        ``scales=False``: σ·G may be None."""


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

    def anchor(self, g, ctx, gains, scales=True):
        s, m = self.model.context.anchor_params(g, ctx)
        return self._gained(g, gains, s, m)

    def nonanchor(self, g, ctx, gains, y_anchor_gained, scales=True):
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
    """The LGEM context model on the exact path
    (:class:`lic_core.models.lgem_exact.ExactEntropyParameters`).

    ``gains`` must be the exact gains of a slider code (:meth:`gains_for_code`: float64 tensors
    holding float32 values).  The quantized networks are built once per model weights.

    Every step runs in tiles of the latent grid (:class:`lic_core.models.lgem_exact.
    TiledEntropy`: bounded memory for any photo, the same bits for every tile size); ``tile``
    (latents per core side) overrides the size chosen from the memory budget ($LIC_TILE_MB).
    Φ_h and the group features are held as int32 grid integers between steps."""

    value_dtype = torch.float64

    def __init__(self, model: torch.nn.Module, device="cpu", tile: int = 0) -> None:
        self.model = model
        self.groups = tuple(model.config.groups)
        dev = torch.device(device)
        self.exact: ExactEntropyParameters = cached(
            model, f"entropy:{dev}", (model.h_s, model.context, model.gains),
            lambda: ExactEntropyParameters.from_model(model, device=dev))
        self.tiled = TiledEntropy(self.exact)
        self.tile = int(tile)

    def _tile(self) -> int:
        return self.tile if self.tile > 0 else self.tiled.tile_size()

    def gains_for_code(self, code: int) -> dict:
        return self.exact.gains_for_code(code)

    def hyper(self, z_hat_gained, gains):
        return self.tiled.hyper(z_hat_gained, gains, self._tile())

    def group_context(self, g, phi, gains, y_prev_gained):
        feats = None
        if y_prev_gained is not None and self.exact.nets[g].has_prev:
            feats = self.tiled.group_features(g, y_prev_gained, gains, self._tile())
        return phi, feats

    def _pass(self, g: int, gains: dict, idx, m, sg) -> PassParams:
        Gg = gains["G"][:, self.group_slice(g), :, 0]  # 1×C_g×1: gathered layout

        def gained(m_part: torch.Tensor, cs: slice) -> torch.Tensor:
            return self.exact.gained_mean(m_part, Gg[:, cs])

        return PassParams(mean=None, index=idx, scale=sg, gathered=True, mean_grid=m,
                          mean_fn=gained)

    def anchor(self, g, ctx, gains, scales=True):
        return self._pass(g, gains, *self.tiled.anchor(g, *ctx, gains, self._tile(), scales))

    def nonanchor(self, g, ctx, gains, y_anchor_gained, scales=True):
        return self._pass(g, gains, *self.tiled.nonanchor(g, *ctx, y_anchor_gained, gains,
                                                          self._tile(), scales))


class ScaleHyperpriorExactParameters(HyperpriorEntropyParameters):
    """A mean-scale hyperprior (``model.h_s_mean``, ``model.h_s_scale``, ``model.gains``) on the
    exact path (:class:`lic_core.models.hific_exact.ExactMeanScaleHyperprior`; HiFiC,
    docs/methods.md §8.1)."""

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
