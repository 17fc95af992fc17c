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
        """``(ŷ − μ, bits per element or None)`` for a ``B×C×N`` block (``index``: any integer
        dtype; the quantizer gets it as int64)."""


#: elements per slice of a step that an elementwise quantizer runs in channel slices: its
#: temporaries (indices, table stds, bits, reconstruction: ~50 bytes an element) stay near
#: 100 MB however big the image (issue 28)
STEP_SLICE_ELEMENTS = 1 << 21


def channel_slices(shape: torch.Size, elementwise: bool = True, limit: int = 0) -> list[slice]:
    """Consecutive channel slices of a ``B×C×N`` step: one slice unless the work is
    elementwise (a quantizer's :attr:`~lic_core.quantizer.base.Quantizer.elementwise`), B = 1
    (the slices are then consecutive runs of the C-order block, so coding them in turn codes the
    same symbols under the same pmfs in the same order) and the step is big."""
    B, C, N = shape
    limit = limit or STEP_SLICE_ELEMENTS
    if not elementwise or B != 1 or C * N <= limit:
        return [slice(0, C)]
    per = max(1, limit // max(N, 1))
    return [slice(c, min(C, c + per)) for c in range(0, C, per)]


class EncodeSteps(StepRunner):
    """Quantize every step; with an ``encoder`` also code it and, with ``bits``, record the ideal
    bits of every element (the inspection's rate maps: a command-line encode skips them)."""

    def __init__(self, quantizer: Quantizer, encoder: Optional[SymbolEncoder] = None,
                 bits: bool = True) -> None:
        super().__init__(quantizer)
        self.encoder = encoder
        self.want_bits = bits

    def __call__(self, label, residual, index):
        """``residual`` is the B×C×N tensor or a function of a channel slice returning that part
        (so a big step never holds all its float64 residuals at once)."""
        q = self.quantizer
        slices = channel_slices(index.shape, q.elementwise)
        part = residual if callable(residual) else (lambda sl: residual[:, sl])
        if len(slices) == 1:
            rec, bits, crc = self._slice(part(slices[0]), index, 0)
        else:
            rec = torch.empty(index.shape, dtype=torch.float32, device=index.device)
            bits = crc = None
            for sl in slices:
                r, b, crc = self._slice(part(sl), index[:, sl], crc or 0)
                rec[:, sl] = r
                if b is not None:
                    if bits is None:
                        bits = torch.empty(index.shape, dtype=b.dtype, device=b.device)
                    bits[:, sl] = b
        if crc is not None:
            self.crcs.append(crc)
        return rec, bits

    def _slice(self, residual, index, crc: int):
        """(reconstruction, bits or None, running CRC or None) of one channel slice."""
        q = self.quantizer
        index = index.to(torch.int64)  # engines may hold it narrower (the table has 64 entries)
        idx = q.quantize(residual, index)
        bits = None
        if self.encoder is not None:
            coded, clamped = self.encoder.encode(q.symbol_plan(index, idx))
            self.clamped += clamped
            crc = symbol_crc(coded, crc)
            if self.want_bits:
                bits = q.bits(idx, index)
        else:
            crc = None
        return q.dequantize(idx, index), bits, crc


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
        slices = channel_slices(index.shape, self.quantizer.elementwise)
        rec = None if len(slices) == 1 else torch.empty(index.shape, dtype=torch.float32,
                                                        device=index.device)
        crc = 0
        for sl in slices:
            part = (index if len(slices) == 1 else index[:, sl]).to(torch.int64)
            try:
                idx = self.decoder.decode(self.quantizer.symbol_plan(part))
            except LicFormatError as exc:
                if self.expected is None:
                    raise
                raise symbols_mismatch(f"y step {label}",
                                       f"the range decoder failed ({exc})") from None
            crc = symbol_crc(idx, crc)
            r = self.quantizer.dequantize(idx, part)
            if rec is None:
                rec = r
            else:
                rec[:, sl] = r
        self.crcs.append(crc)
        if self.expected is not None:
            if step >= len(self.expected) or self.expected[step] != crc:
                raise symbols_mismatch(f"y step {label}")
        return rec, None


class GainedLatent:
    """ȳ = y ⊙ G, computed per channel slice when a step needs it.

    Why: y is float32 but the gains are float64 on the exact path, so the whole product costs
    8 bytes per latent element (10 bytes per pixel for M = 320) only to be gathered one step at a
    time.  Each element of a slice is the same single multiplication as in the full product, so
    the residuals are the same numbers (issue 28).  A y codec may :meth:`split` y into its
    channel groups and :meth:`release` each group once it is coded (the object is then used up)."""

    def __init__(self, y: torch.Tensor, gain: torch.Tensor) -> None:
        self.gain = gain
        self._shape = y.shape
        self._parts: list[tuple[int, torch.Tensor]] = [(0, y)]  # (first channel, channels)

    @property
    def shape(self) -> torch.Size:
        return self._shape

    @property
    def y(self) -> torch.Tensor:
        """The float32 y (whole: joined again if it was split)."""
        if len(self._parts) == 1 and self._parts[0][0] == 0:
            return self._parts[0][1]
        return torch.cat([t for _, t in self._parts], dim=1)

    def y_channels(self, sl: slice) -> torch.Tensor:
        """Channels ``sl`` of y (within one part)."""
        for c0, t in self._parts:
            if c0 <= sl.start and sl.stop <= c0 + t.shape[1]:
                return t[:, sl.start - c0:sl.stop - c0]
        raise KeyError(f"channels {sl.start}:{sl.stop} of y are released or span two groups")

    def split(self, sizes) -> None:
        """Hold y as one tensor per channel group (``sizes`` channels each), copied one group at
        a time so that each can be released on its own."""
        if len(self._parts) != 1:
            return
        whole = self._parts.pop()[1]
        c0 = 0
        for n in sizes:
            self._parts.append((c0, whole[:, c0:c0 + n].clone()))
            c0 += n
        del whole

    def release(self, sl: slice) -> None:
        """Forget the parts inside channels ``sl`` (a coded group)."""
        self._parts = [(c0, t) for c0, t in self._parts
                       if not (sl.start <= c0 and c0 + t.shape[1] <= sl.stop)]

    def channels(self, sl: slice) -> torch.Tensor:
        """ȳ of channels ``sl`` (B×C_sl×h×w, the gain's dtype)."""
        sl = slice(*sl.indices(self._shape[1])[:2])
        return self.y_channels(sl).to(self.gain.dtype) * self.gain[:, sl]

    def full(self) -> torch.Tensor:
        return self.y.to(self.gain.dtype) * self.gain

    def to(self, device) -> "GainedLatent":
        """The same latent on ``device`` (the products are IEEE operations: the same values)."""
        return GainedLatent(self.y.to(device), self.gain.to(device))


def gained_channels(y_bar, sl: slice) -> torch.Tensor:
    """Channels ``sl`` of ȳ given as a tensor or as a :class:`GainedLatent`."""
    return y_bar.channels(sl) if isinstance(y_bar, GainedLatent) else y_bar[:, sl]


@dataclass
class YPasses:
    """What a y codec returns: full-size gained ŷ (B×M×h×w) and, unless the caller asked for
    no maps (a command-line run), μ, σ and, when coded, the bits of every element."""

    y_hat_gained: torch.Tensor
    means: Optional[torch.Tensor]
    scales: Optional[torch.Tensor]
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
