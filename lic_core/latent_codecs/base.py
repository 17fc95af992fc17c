"""What the y latent codecs call once per (group, pass) step, and what a latent codec returns.

A y codec walks its steps in bitstream order and hands every step's gathered residual
``ȳ − μ`` (None when decoding) and int64 scale-table index to a :class:`StepRunner`:

* :class:`EncodeSteps` quantizes (and, with an encoder, codes and measures) — the one
  quantization path that ``compress()`` and decoder fine-tuning share (docs/methods.md §4.5, §10);
* :class:`DecodeSteps` reads the indices back from the y stream.

Both return the reconstructed residual ``ŷ − μ`` from the indices alone, so the encoder's ŷ is
the decoder's ŷ bit for bit.  The encoder records a CRC32 of every step's coded indices
(``crcs``); the decoder compares each decoded step with the file's value at once and stops with a
:class:`~lic_core.errors.LicMismatchError` on a difference (docs/bitstream.md, "check values").
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from ..bitstream.checks import symbol_crc, symbols_mismatch
from ..entropy_coder.symbols import SymbolDecoder, SymbolEncoder
from ..errors import LicFormatError
from ..quantizer.base import Quantizer

#: ``on_step(done, total, label)`` after every (group, pass) step (progress reporting)
StepHook = Callable[[int, int, str], None]


class StepRunner(abc.ABC):
    """One (group, pass) step: indices for the residual, back to a reconstructed residual."""

    def __init__(self, quantizer: Quantizer) -> None:
        self.quantizer = quantizer
        #: symbols clamped to their model's support (they still decode; ŷ changes there)
        self.clamped = 0
        #: CRC32 of every step's indices, in coding order (docs/bitstream.md)
        self.crcs: list[int] = []

    @abc.abstractmethod
    def __call__(self, label: str, residual: Optional[torch.Tensor],
                 index: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(ŷ − μ, bits per element or None)`` for a ``B×C×N`` block."""


class EncodeSteps(StepRunner):
    """Quantize every step; with an ``encoder`` also code it and record its ideal bits."""

    def __init__(self, quantizer: Quantizer, encoder: Optional[SymbolEncoder] = None) -> None:
        super().__init__(quantizer)
        self.encoder = encoder

    def __call__(self, label, residual, index):
        q = self.quantizer
        idx = q.quantize(residual, index)
        bits = None
        if self.encoder is not None:
            coded, clamped = self.encoder.encode(q.symbol_plan(index, idx))
            self.clamped += clamped
            self.crcs.append(symbol_crc(coded))
            bits = q.bits(idx, index)
        return q.dequantize(idx, index), bits


class DecodeSteps(StepRunner):
    """Read every step's indices from the y stream and check them against ``expected_crcs``.

    The file's container CRC has already been verified, so a step whose symbols differ from the
    encoder's — or that the range decoder cannot decode at all — means this machine computed
    other entropy parameters: :func:`~lic_core.bitstream.checks.symbols_mismatch`.
    """

    def __init__(self, quantizer: Quantizer, decoder: SymbolDecoder,
                 expected_crcs: Optional[list[int]] = None) -> None:
        super().__init__(quantizer)
        self.decoder = decoder
        self.expected = expected_crcs

    def __call__(self, label, residual, index):
        step = len(self.crcs)
        try:
            idx = self.decoder.decode(self.quantizer.symbol_plan(index))
        except LicFormatError as exc:
            if self.expected is None:
                raise
            raise symbols_mismatch(f"y step {label}", f"the range decoder failed ({exc})") from None
        crc = symbol_crc(idx)
        self.crcs.append(crc)
        if self.expected is not None:
            if step >= len(self.expected) or self.expected[step] != crc:
                raise symbols_mismatch(f"y step {label}")
        return self.quantizer.dequantize(idx, index), None


@dataclass
class YPasses:
    """What a y codec returns: full-size gained ŷ, μ, σ (B×M×h×w) and, when coded, the bits."""

    y_hat_gained: torch.Tensor
    means: torch.Tensor
    scales: torch.Tensor
    #: float64 B×M×h×w ideal bits per element (None unless coded)
    bits: Optional[torch.Tensor] = None
    #: ideal bits per step label, in coding order (e.g. ``"g0/anchor"``)
    step_bits: dict[str, float] = field(default_factory=dict)


@dataclass
class LatentCoding:
    """The result of :meth:`HyperpriorLatentCodec.compress` / ``decompress``.

    ``sections`` are the ``[z, y]`` stream bytes (None for quantize-only runs); ``z_symbols`` the
    integer hyper-latent (B×N×hz×wz); ``bits_z`` (numpy, like z_symbols[0]) only when coded.
    """

    y: YPasses
    z_symbols: torch.Tensor
    z_hat: torch.Tensor
    sections: Optional[list[bytes]] = None
    bits_z: Optional[np.ndarray] = None
    clamped: int = 0
    #: CRC32 of the symbols of z and of every y step, in coding order (None for quantize-only)
    symbol_crcs: Optional[list[int]] = None

    @property
    def y_hat_gained(self) -> torch.Tensor:
        return self.y.y_hat_gained

    @property
    def estimated_bits(self) -> float:
        """Σ −log2 p of y and z (what the range coder spends, within its flush overhead)."""
        total = float(self.y.bits.sum()) if self.y.bits is not None else float("nan")
        return total + (float(self.bits_z.sum()) if self.bits_z is not None else float("nan"))
