"""The quantizer interface (docs/ARCHITECTURE.md, "The quantizer interface"; docs/methods.md
§4.2–4.4).

The latent codec codes y per (channel group, checkerboard pass). For each such step it hands the
quantizer two tensors of shape ``B×C×N`` (C = channels of the group, N = positions of the pass in
raster order of the squeezed pass):

* ``residual = ȳ − μ`` (the mean-removed latent, in units of the quantization step Δ = 1: the gain
  units already scale the latent, docs/methods.md §5), and
* ``index``: the int64 scale-table index of every element (``scale_index(σ)``, §6.3–6.4), the
  one number the entropy model hands on; quantizers never see a raw network σ.

A quantizer turns the residual into integer indices, reconstructs ``ŷ − μ`` from indices alone
(the decoder has nothing else), describes under which pmf each index is coded (a *symbol plan*,
:mod:`lic_core.entropy_model.symbols`; the entropy coder does the coding), and reports the ideal
code length of every index under that pmf.  No quantizer imports an entropy-coding library.

Contract that every implementation keeps (tests/core/test_quantizer_*.py, test_tcq_*.py):

* decoding the plan of ``quantize(r, i)`` gives indices whose ``dequantize`` equals
  ``dequantize(quantize(r, i))`` bit-exactly;
* a plan never hands the coder a symbol outside its model's support: it clamps and returns how
  many symbols it had to clamp. Scalar quantizers clamp to ±4096 and ``dequantize`` applies the
  same clamp, so reconstructions still agree. TCQ's ``quantize`` never emits an index outside
  its table support; its plan clamps foreign indices keeping their parity (so the state path,
  and every other element, is unchanged);
* ``bits`` uses the table scale of ``index``, so rate estimates and encoder decisions match what
  the range coder spends.
"""
from __future__ import annotations

import abc
from typing import Any, Optional

import torch

from ..entropy_model.symbols import SymbolPlan


class Quantizer(abc.ABC):
    """Abstract quantizer of mean-removed latents (see module docstring for the contract)."""

    #: registry name, stored in the .lic header: "round" | "deadzone" | "rdoq" | "tcq"
    name: str = ""
    #: True when every element is quantized, reconstructed and coded on its own (one pmf per
    #: element, one chunk in C order): a block may then be run in consecutive channel slices with
    #: the same indices, reconstruction and coded bits (the latent codecs bound their memory that
    #: way on big images, issue 28).  TCQ's trellis runs along the channels: False.
    elementwise: bool = False

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-able parameters; ``build_quantizer(self.name, **self.params())`` rebuilds it."""

    @abc.abstractmethod
    def quantize(self, residual: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Indices (int64, B×C×N) for ``residual = ȳ − μ`` at scale-table indices ``index``."""

    @abc.abstractmethod
    def dequantize(self, indices: torch.Tensor,
                   index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Reconstructed residual ``ŷ − μ`` (float32, B×C×N) from the indices (and, for a
        quantizer whose reconstruction depends on the coding order, the scale indices that
        set it — both sides know them before the block is coded)."""

    @abc.abstractmethod
    def symbol_plan(self, index: torch.Tensor,
                    indices: Optional[torch.Tensor] = None) -> SymbolPlan:
        """How the indices of a block are coded (:mod:`lic_core.entropy_model.symbols`).

        With ``indices`` the plan encodes them; without, it decodes a block of ``index``'s shape.
        It returns ``(indices as the decoder will see them, number of clamped symbols)``.
        """

    @abc.abstractmethod
    def bits(self, indices: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """−log2 p of every index under the pmf actually coded (float64, B×C×N)."""

    # ---- conveniences shared by all quantizers -------------------------------------------------
    def quantize_dequantize(self, residual: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``dequantize(quantize(residual, index))`` — what the decoder will reconstruct.

        This is the single quantization path (docs/methods.md §4.5, §10): compress() and
        quantized-latent fine-tuning must both call it (or the two halves) so their ŷ are the same
        tensors.
        """
        return self.dequantize(self.quantize(residual, index), index)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def check_shapes(residual: torch.Tensor | None, index: torch.Tensor) -> None:
    """Residual (or indices) and scale index must both be B×C×N and agree (programming error)."""
    if index.dim() != 3:
        raise ValueError(f"scale index must be B×C×N, got shape {tuple(index.shape)}")
    if index.dtype != torch.int64:
        raise ValueError(f"scale index must be int64 (scale_index(σ)), got {index.dtype}")
    if residual is not None and residual.shape != index.shape:
        raise ValueError(f"{tuple(residual.shape)} and scale index {tuple(index.shape)} differ")
