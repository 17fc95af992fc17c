"""Coding symbols under :class:`~lic_core.entropy_model.tables.PmfTables` on one range coder.

A model that codes with fixed tables (CompressAI's architectures) hands every block of symbols to
``coder.code(label, tables, index, symbols)``: ``index`` says which table each symbol uses.  The
same call sequence encodes (:class:`TableEncoder`: ``symbols`` given, returned as they are) and
decodes (:class:`TableDecoder`: ``symbols`` None, the decoded ones returned), so a model writes
its coding procedure once for both directions (the autoregressive ones interleave decoding and
network evaluation, position by position).

Within a block, symbols are coded table by table (ascending table id, C order inside a table);
each table's escapes follow its symbols as bypass codes (a 3-bit nibble count, then 4-bit
nibbles; :func:`~lic_core.entropy_model.tables.escape_values`).  Every label keeps a running
CRC32 of its symbols (the file's check values, docs/bitstream.md): a decoder whose symbols differ
from the encoder's stops with the mismatch message instead of showing a wrong picture.
"""
from __future__ import annotations

import zlib
from typing import Optional

import constriction
import numpy as np
import torch

from ..entropy_model.tables import (
    ESCAPE_NIBBLE_BITS,
    PmfTables,
    escape_nibbles,
    escape_values,
    unescape_values,
)
from ..errors import LicError, LicFormatError
from .words import bytes_to_words, words_to_bytes

_Categorical = constriction.stream.model.Categorical
_COUNT = constriction.stream.model.Uniform(8)
_NIBBLE = constriction.stream.model.Uniform(16)


def _model(tables: PmfTables, t: int):
    """The constriction model of table ``t`` (built once per tables object)."""
    m = tables.cache.get(t)
    if m is None:
        row = tables.row(t)
        if not np.isfinite(row).all() or (row < 0).any() or row.sum() <= 0:
            raise LicError(f"pmf table {t} is not a valid distribution")
        m = tables.cache[t] = _Categorical(row, perfect=False)
    return m


def _groups(index: np.ndarray):
    """(table id, flat positions) in coding order: ascending id, C order inside."""
    flat = index.reshape(-1)
    order = np.argsort(flat, kind="stable")
    ids, starts = np.unique(flat[order], return_index=True)
    bounds = list(starts[1:]) + [flat.size]
    return [(int(t), order[s:e]) for t, s, e in zip(ids, starts, bounds)]


class _Crcs:
    def __init__(self) -> None:
        self.crc: dict[str, int] = {}

    def update(self, label: str, symbols: np.ndarray) -> None:
        a = np.ascontiguousarray(symbols, dtype="<i4").tobytes()
        self.crc[label] = zlib.crc32(a, self.crc.get(label, 0)) & 0xFFFFFFFF

    def values(self) -> list[int]:
        return list(self.crc.values())


class TableEncoder:
    """Encodes blocks of symbols under fixed tables; ``to_bytes()`` gives the stream."""

    def __init__(self) -> None:
        self._enc = constriction.stream.queue.RangeEncoder()
        self._crcs = _Crcs()

    @property
    def labels(self) -> list[str]:
        return list(self._crcs.crc)

    @property
    def crcs(self) -> list[int]:
        """One CRC32 per label, in the order the labels were first coded."""
        return self._crcs.values()

    def code(self, label: str, tables: PmfTables, index: torch.Tensor,
             symbols: Optional[torch.Tensor] = None) -> torch.Tensor:
        if symbols is None:
            raise ValueError("an encoder needs the symbols")
        idx = index.detach().cpu().numpy().astype(np.int64)
        sym = symbols.detach().cpu().numpy().astype(np.int64)
        if idx.shape != sym.shape:
            raise ValueError(f"index {idx.shape} and symbols {sym.shape} differ in shape")
        if idx.size and (idx.min() < 0 or idx.max() >= len(tables)):
            raise ValueError("table index out of range")
        flat = sym.reshape(-1)
        for t, pos in _groups(idx):
            off, n = int(tables.offsets[t]), int(tables.lengths[t])
            k = flat[pos] - off
            esc = (k < 0) | (k >= n)
            self._enc.encode(np.where(esc, n, k).astype(np.int32), _model(tables, t))
            for e in escape_values(flat[pos][esc], off, n):
                nib = escape_nibbles(int(e))
                self._enc.encode(np.array([nib - 1], dtype=np.int32), _COUNT)
                digits = [(int(e) >> (ESCAPE_NIBBLE_BITS * i)) & 15 for i in range(nib)]
                self._enc.encode(np.array(digits, dtype=np.int32), _NIBBLE)
        self._crcs.update(label, sym)
        return symbols

    def num_bits(self) -> int:
        return int(self._enc.num_bits())

    def to_bytes(self) -> bytes:
        return words_to_bytes(self._enc.get_compressed())


class TableDecoder:
    """Decodes what :class:`TableEncoder` wrote, in the same call sequence.

    A block that cannot be decoded raises :class:`~lic_core.errors.LicFormatError` naming its
    label; the codec compares :attr:`crcs` with the file's check values (a file whose container
    CRC holds but whose symbols differ was decoded with other entropy parameters)."""

    def __init__(self, data: bytes, what: str = "stream") -> None:
        self.what = what
        self._crcs = _Crcs()
        try:
            self._dec = constriction.stream.queue.RangeDecoder(bytes_to_words(data, what=what))
        except LicError:
            raise
        except Exception as exc:  # noqa: BLE001 - constriction raises several types
            raise LicFormatError(f"corrupted .lic file ({what}: {exc})") from None

    def code(self, label: str, tables: PmfTables, index: torch.Tensor,
             symbols: Optional[torch.Tensor] = None) -> torch.Tensor:
        idx = index.detach().cpu().numpy().astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(tables)):
            raise LicFormatError(f"{self.what}, {label}: a table index out of range")
        out = np.empty(idx.size, dtype=np.int64)
        try:
            for t, pos in _groups(idx):
                off, n = int(tables.offsets[t]), int(tables.lengths[t])
                k = np.asarray(self._dec.decode(_model(tables, t), pos.size), dtype=np.int64)
                esc = np.nonzero(k == n)[0]
                if esc.size:
                    codes = np.empty(esc.size, dtype=np.int64)
                    for j in range(esc.size):
                        nib = int(self._dec.decode(_COUNT, 1)[0]) + 1
                        digits = np.asarray(self._dec.decode(_NIBBLE, nib), dtype=np.int64)
                        codes[j] = int((digits << (ESCAPE_NIBBLE_BITS * np.arange(nib))).sum())
                    k = k + off
                    k[esc] = unescape_values(codes, off, n)
                    out[pos] = k
                else:
                    out[pos] = k + off
        except LicError:
            raise
        except Exception as exc:  # noqa: BLE001 - garbage data surfaces as many error types
            raise LicFormatError(f"{self.what}, {label}: the range decoder failed ({exc})") \
                from None
        sym = out.reshape(idx.shape)
        self._crcs.update(label, sym)
        return torch.from_numpy(sym).to(index.device)

    @property
    def labels(self) -> list[str]:
        return list(self._crcs.crc)

    @property
    def crcs(self) -> list[int]:
        """One CRC32 per label, in the order the labels were first decoded."""
        return self._crcs.values()

    def finish(self) -> None:
        """Refuse a stream with data left over (it does not end where the model says)."""
        try:
            exhausted = self._dec.maybe_exhausted()
        except Exception:  # noqa: BLE001
            exhausted = False
        if not exhausted:
            raise LicFormatError(f"corrupted .lic file ({self.what} does not end where the "
                                 "model says)")
