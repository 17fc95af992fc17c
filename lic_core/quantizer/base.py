"""The quantizer interface (docs/ARCHITECTURE.md, "The quantizer interface"; METHODS §1.2–1.4).

The learned codec codes y per (channel group, checkerboard pass). For each such step it hands the
quantizer two tensors of shape ``B×C×N`` (C = channels of the group, N = positions of the pass in
raster order of the squeezed pass):

* ``residual = ȳ − μ`` (the mean-removed latent, in units of the quantization step Δ = 1: the gain
  units already scale the latent, METHODS §5), and
* ``scale = σ`` (the network's scale; quantizers only ever use its *table* value, §6.3–6.4).

A quantizer turns the residual into integer indices, reconstructs ``ŷ − μ`` from indices alone
(the decoder has nothing else), writes/reads the indices with a constriction range coder, and
reports the ideal code length of every index under the pmf it actually codes with.

Contract that every implementation keeps (tests/test_quantizer_*.py, tests/test_tcq_*.py):

* ``dequantize(decode(enc(quantize(r, σ)), σ)) == dequantize(quantize(r, σ))`` bit-exactly;
* ``encode`` never hands constriction a symbol outside its model's support: it clamps and
  returns how many symbols it had to clamp. Scalar quantizers clamp to ±4096 and ``dequantize``
  applies the same clamp, so reconstructions still agree. TCQ's ``quantize`` never emits an
  index outside its table support; ``encode`` clamps foreign indices keeping their parity (so the
  state path, and every other element, is unchanged);
* ``bits`` uses the table scale, never the raw σ, so rate estimates and encoder decisions match
  what the range coder spends.
"""
from __future__ import annotations

import abc
from typing import Any

import torch


class Quantizer(abc.ABC):
    """Abstract quantizer of mean-removed latents (see module docstring for the contract)."""

    #: registry name, stored in the .lic header: "round" | "deadzone" | "rdoq" | "tcq"
    name: str = ""

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-able parameters; ``build_quantizer(self.name, **self.params())`` rebuilds it."""

    @abc.abstractmethod
    def quantize(self, residual: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Indices (int64, B×C×N) for ``residual = ȳ − μ`` with entropy-model scale ``σ``."""

    @abc.abstractmethod
    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """Reconstructed residual ``ŷ − μ`` (float32, B×C×N) from the indices alone."""

    @abc.abstractmethod
    def encode(self, encoder: Any, indices: torch.Tensor, scale: torch.Tensor) -> int:
        """Append the indices to a ``constriction.stream.queue.RangeEncoder``; return #clamped."""

    @abc.abstractmethod
    def decode(self, decoder: Any, scale: torch.Tensor) -> torch.Tensor:
        """Read back what :meth:`encode` wrote (same ``scale``, same B×C×N shape)."""

    @abc.abstractmethod
    def bits(self, indices: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """−log2 p of every index under the pmf actually coded (float64, B×C×N)."""

    # ---- conveniences shared by all quantizers -------------------------------------------------
    def quantize_dequantize(self, residual: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """``dequantize(quantize(residual, scale))`` — what the decoder will reconstruct.

        This is the single quantization path (METHODS §1.5, §7): compress() and quantized-latent
        fine-tuning must both call it (or the two halves) so their ŷ are the same tensors.
        """
        return self.dequantize(self.quantize(residual, scale))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def check_shapes(residual: torch.Tensor | None, scale: torch.Tensor) -> None:
    """Residual and scale must both be B×C×N and agree (programming error otherwise)."""
    if scale.dim() != 3:
        raise ValueError(f"scale must be B×C×N, got shape {tuple(scale.shape)}")
    if residual is not None and residual.shape != scale.shape:
        raise ValueError(f"residual {tuple(residual.shape)} and scale {tuple(scale.shape)} differ")


# ---- registry ------------------------------------------------------------------------------------
class QuantizerInfo:
    """What the GUI shows for one quantizer: label, tooltip, default parameters and, per
    parameter, a ``(minimum, maximum, step)`` range for its spin box."""

    __slots__ = ("name", "label", "tooltip", "defaults", "ranges")

    def __init__(self, name: str, label: str, tooltip: str, defaults: dict[str, Any],
                 ranges: dict[str, tuple[float, float, float]] | None = None) -> None:
        self.name, self.label, self.tooltip, self.defaults = name, label, tooltip, dict(defaults)
        self.ranges = dict(ranges or {})

    def __repr__(self) -> str:
        return f"QuantizerInfo({self.name!r}, {self.label!r}, defaults={self.defaults!r})"


#: Quantizers in GUI order. Defaults are the METHODS §1.2–1.4 starting values.
QUANTIZERS: list[QuantizerInfo] = [
    QuantizerInfo("round", "Rounding",
                  "Round the mean-removed latent to the nearest integer (CompressAI compress).", {}),
    QuantizerInfo("deadzone", "Dead-zone",
                  "Rounding offset f < 1/2 widens the zero bin: a little more distortion for "
                  "less rate. f = 1/2 is plain rounding. Same decoder.", {"offset": 1.0 / 3.0},
                  {"offset": (0.0, 0.5, 0.01)}),
    QuantizerInfo("rdoq", "RDOQ",
                  "Per element pick round(r), round(r) - sign or 0 minimising "
                  "(r - q)^2 + c * bits(q). Same decoder as rounding.", {"c": 0.1155},
                  {"c": (0.0, 1.0, 0.005)}),
    QuantizerInfo("tcq", "Trellis-coded (DQ)",
                  "4-state dependent quantization as in VVC: a Viterbi search along the channels "
                  "picks indices minimising D + lambda R; finer reconstruction grid.",
                  {"delta_u": 0.561, "c": 0.1155},
                  {"delta_u": (0.3, 1.0, 0.001), "c": (0.0, 1.0, 0.005)}),
]


def _classes() -> dict[str, type]:
    # imported lazily: scalar.py and tcq.py import this module
    from lic_core.quantizer.scalar import DeadZoneQuantizer, RdoqQuantizer, RoundQuantizer
    from lic_core.quantizer.tcq import TcqQuantizer

    return {"round": RoundQuantizer, "deadzone": DeadZoneQuantizer, "rdoq": RdoqQuantizer,
            "tcq": TcqQuantizer}


def build_quantizer(name: str, **params: Any) -> Quantizer:
    """Build a quantizer from its registry name and (header) parameters.

    Unknown names or parameters raise :class:`lic_core.errors.LicError` subclasses, because they
    come from user input (CLI flags, GUI) or from a .lic header.
    """
    from lic_core.errors import LicError, LicFormatError

    classes = _classes()
    if name not in classes:
        raise LicError(f"unknown quantizer {name!r} (choose from {', '.join(classes)})")
    try:
        return classes[name](**params)
    except TypeError as exc:
        raise LicFormatError(f"bad parameters for quantizer {name!r}: {exc}") from None
    except ValueError as exc:
        raise LicError(f"bad parameters for quantizer {name!r}: {exc}") from None
