"""The y stream: symbol plans coded on one constriction range coder (docs/methods.md §6.2–6.3).

Quantizers describe *what* to code (:mod:`lic_core.entropy_model.symbols`); this module is the
only place that turns those descriptions into constriction calls.  One :class:`SymbolEncoder`
codes every (group, pass) block of an image in order, on one ``RangeEncoder`` (queue semantics:
decode in encode order); :class:`SymbolDecoder` reads them back and checks that the stream ends
exactly where the model says.  Every failure to decode is a one-line :class:`LicFormatError`.
"""
from __future__ import annotations

import constriction
import numpy as np
import torch

from ..entropy_model.symbols import (
    CategoricalModel,
    QuantizedGaussianModel,
    SymbolModel,
    SymbolPlan,
)
from ..errors import CancelledError, LicError, LicFormatError
from .words import bytes_to_words, words_to_bytes

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


def _gaussian(bound: int):
    return constriction.stream.model.QuantizedGaussian(-bound, bound)


#: symbols per constriction call.  A call holds the GIL from start to end (a 24 MP image's
#: largest step has millions of symbols: seconds in which no other Python thread — the
#: studio's window — runs); in slices, other threads run between calls.  The stream is the
#: same: a queue coder codes symbol after symbol whatever the calls (issue 28 item 3).
SLICE = 1 << 16


def _slices(n: int):
    """``slice`` objects covering ``range(n)`` in order, :data:`SLICE` symbols each."""
    return (slice(i, min(n, i + SLICE)) for i in range(0, n, SLICE))


class SymbolEncoder:
    """Codes symbol plans, in order, onto one range-coded stream."""

    def __init__(self) -> None:
        self._enc = constriction.stream.queue.RangeEncoder()

    def encode_chunk(self, model: SymbolModel, symbols: np.ndarray) -> None:
        """Append ``symbols`` (integer values) under ``model`` (see the model types)."""
        if symbols.size == 0:
            return
        if isinstance(model, QuantizedGaussianModel):
            std = np.ascontiguousarray(model.std, dtype=np.float64)
            sym, zero, g = symbols.astype(np.int32), np.zeros_like(std), _gaussian(model.bound)
            for sl in _slices(len(sym)):
                self._enc.encode(sym[sl], g, zero[sl], std[sl])
        elif isinstance(model, CategoricalModel):
            sym = (symbols + model.offset).astype(np.int32)
            for sl in _slices(len(sym)):
                self._enc.encode(sym[sl], _CATEGORICAL, model.rows[sl])
        else:  # pragma: no cover - a programming error
            raise TypeError(f"unknown symbol model {type(model).__name__}")

    def encode(self, plan: SymbolPlan) -> tuple[torch.Tensor, int]:
        """Run a quantizer's plan to the end; returns its ``(indices, n_clamped)``."""
        try:
            model, symbols = next(plan)
            while True:
                self.encode_chunk(model, symbols)
                model, symbols = plan.send(symbols)
        except StopIteration as stop:
            return stop.value

    def num_bits(self) -> int:
        """Bits written so far (whole 32-bit words once flushed)."""
        return int(self._enc.num_bits())

    def to_bytes(self) -> bytes:
        """The stream as little-endian uint32 words (the .lic section)."""
        return words_to_bytes(self._enc.get_compressed())


class SymbolDecoder:
    """Reads back what :class:`SymbolEncoder` wrote, plan by plan."""

    def __init__(self, data: bytes, what: str = "y stream") -> None:
        self.what = what
        try:
            self._dec = constriction.stream.queue.RangeDecoder(bytes_to_words(data, what=what))
        except LicError:
            raise
        except Exception as exc:  # noqa: BLE001 — constriction raises several types
            raise self._corrupt(exc) from None

    def _corrupt(self, exc: BaseException) -> LicFormatError:
        return LicFormatError(f"corrupted .lic file ({self.what}: {exc})")

    def decode_chunk(self, model: SymbolModel, count: int) -> np.ndarray:
        """``count`` symbol values (int64) under ``model``."""
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        if isinstance(model, QuantizedGaussianModel):
            std = np.ascontiguousarray(model.std, dtype=np.float64)
            zero, g = np.zeros_like(std), _gaussian(model.bound)
            return np.concatenate([np.asarray(self._dec.decode(g, zero[sl], std[sl]),
                                              dtype=np.int64) for sl in _slices(len(std))])
        if isinstance(model, CategoricalModel):
            rows = model.rows
            return np.concatenate([np.asarray(self._dec.decode(_CATEGORICAL, rows[sl]),
                                              dtype=np.int64) for sl in _slices(len(rows))]) \
                - model.offset
        raise TypeError(f"unknown symbol model {type(model).__name__}")  # pragma: no cover

    def decode(self, plan: SymbolPlan) -> torch.Tensor:
        """Run a quantizer's decoding plan (chunks without symbols); returns its indices."""
        try:
            model, _ = next(plan)
            while True:
                count = len(model.std) if isinstance(model, QuantizedGaussianModel) \
                    else len(model.rows)
                model, _ = plan.send(self.decode_chunk(model, count))
        except StopIteration as stop:
            return stop.value[0]
        except (LicError, CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 — garbage data surfaces as many error types
            raise self._corrupt(exc) from None

    def finish(self) -> None:
        """Refuse a stream with data left over (it does not end where the model says)."""
        try:
            exhausted = self._dec.maybe_exhausted()
        except Exception:  # noqa: BLE001
            exhausted = False
        if not exhausted:
            raise LicFormatError(f"corrupted .lic file ({self.what} does not end where the "
                                 "model says)")
