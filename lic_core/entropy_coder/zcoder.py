"""z coding with the factorized prior (docs/methods.md §2.2, §6.1, §6.3 "z").

For each channel c, one concrete ``constriction.stream.model.Categorical(pmf_c, perfect=False)``
codes that channel's ``h·w`` symbols (raster order), all channels in order on a single
``constriction.stream.queue.RangeEncoder`` (queue semantics: decode in encode order, §6.2).

Table convention (CompressAI's): the integer value ``v`` (already ``round(z − median_c)``) is
table index ``v − offsets[c]``, so channel c supports ``offsets[c] … offsets[c] + lengths[c] − 1``.
Values outside are **clamped** to the support and counted (a clamp changes ẑ, it never makes the
stream undecodable).  The pmf rows are float64 and must be bit-identical on both sides (§6.4):
they come from the model file, never recomputed at decode time.
"""
from __future__ import annotations

from typing import Optional, Sequence

import constriction
import numpy as np

from ..errors import LicFormatError
from .words import bytes_to_words, words_to_bytes

_Categorical = constriction.stream.model.Categorical
_RangeEncoder = constriction.stream.queue.RangeEncoder
_RangeDecoder = constriction.stream.queue.RangeDecoder


def _tables(pmfs: np.ndarray, offsets: Sequence[int], lengths: Optional[Sequence[int]]):
    pmfs = np.asarray(pmfs, dtype=np.float64)
    if pmfs.ndim != 2 or pmfs.shape[1] < 1:
        raise ValueError(f"pmfs must be C×L, got shape {pmfs.shape}")
    C, L = pmfs.shape
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    lengths = (np.full(C, L, dtype=np.int64) if lengths is None
               else np.asarray(lengths, dtype=np.int64).reshape(-1))
    if offsets.shape[0] != C or lengths.shape[0] != C:
        raise ValueError("offsets and lengths need one entry per pmf row")
    if (lengths < 1).any() or (lengths > L).any():
        raise ValueError("every pmf length must be in [1, L]")
    models = []
    for c in range(C):
        row = pmfs[c, : lengths[c]]
        if not np.isfinite(row).all() or (row < 0).any() or row.sum() <= 0:
            raise ValueError(f"pmf row {c} is not a valid distribution")
        # Only the first lengths[c] entries are the support: padded zeros would be coded
        # (leakily) at ~24 bits instead of being clamped.
        models.append(_Categorical(row, perfect=False))
    return C, offsets, lengths, models


def encode_z(symbols: np.ndarray, pmfs: np.ndarray, offsets: Sequence[int],
             lengths: Optional[Sequence[int]] = None) -> tuple[bytes, int]:
    """Code integer symbols ``C×h×w`` (or ``1×C×h×w``) with one Categorical per channel.

    Returns ``(data, n_clamped)``: the little-endian uint32 words as bytes and how many symbols
    fell outside their channel's support and were clamped to it.
    """
    sym = np.asarray(symbols)
    if sym.ndim == 4 and sym.shape[0] == 1:
        sym = sym[0]
    if sym.ndim != 3:
        raise ValueError(f"symbols must be C×h×w, got shape {sym.shape}")
    if not np.issubdtype(sym.dtype, np.integer):
        raise ValueError("symbols must be integers (round before coding)")
    C, offsets, lengths, models = _tables(pmfs, offsets, lengths)
    if sym.shape[0] != C:
        raise ValueError(f"{sym.shape[0]} channels of symbols but {C} pmf rows")
    enc = _RangeEncoder()
    clamped = 0
    for c in range(C):
        idx = sym[c].reshape(-1).astype(np.int64) - offsets[c]
        clamped += int(((idx < 0) | (idx >= lengths[c])).sum())
        idx = np.clip(idx, 0, lengths[c] - 1).astype(np.int32)
        if idx.size:
            enc.encode(idx, models[c])
    return words_to_bytes(enc.get_compressed()), clamped


def decode_z(data: bytes, pmfs: np.ndarray, offsets: Sequence[int], shape: Sequence[int],
             lengths: Optional[Sequence[int]] = None) -> np.ndarray:
    """Inverse of :func:`encode_z`: the ``C×h×w`` int64 symbols (values, offsets added back).

    A stream that is truncated, has trailing data or is garbage raises LicFormatError (most
    corruptions are caught earlier by the container CRC; this is the second line of defence).
    """
    C, h, w = (int(s) for s in shape)
    C_t, offsets, lengths, models = _tables(pmfs, offsets, lengths)
    if C != C_t:
        raise ValueError(f"shape has {C} channels but {C_t} pmf rows")
    words = bytes_to_words(data, what="z stream")
    n = h * w
    if n * C > 0 and words.size == 0:
        raise LicFormatError("corrupted .lic file (z stream is empty)")
    out = np.empty((C, h, w), dtype=np.int64)
    try:
        dec = _RangeDecoder(words)
        for c in range(C):
            if n:
                out[c] = dec.decode(models[c], n).reshape(h, w).astype(np.int64) + offsets[c]
            else:
                out[c] = offsets[c]
        exhausted = dec.maybe_exhausted()
    except (AssertionError, ValueError, KeyError, RuntimeError) as exc:
        raise LicFormatError(f"corrupted .lic file (z stream cannot be decoded: {exc})") from None
    if not exhausted:
        raise LicFormatError("corrupted .lic file (z stream does not end where the model says)")
    return out


def z_bits(symbols: np.ndarray, pmfs: np.ndarray, offsets: Sequence[int],
           lengths: Optional[Sequence[int]] = None) -> np.ndarray:
    """Ideal cost −log2 p (bits) of each z symbol under its normalized row, shape like symbols.

    Symbols are clamped like :func:`encode_z` does.  (Analysis views and tests; the coder's real
    cost is within a fraction of a percent of the sum.)
    """
    sym = np.asarray(symbols)
    squeeze = sym.ndim == 4
    if squeeze:
        sym = sym[0]
    pmfs = np.asarray(pmfs, dtype=np.float64)
    C, offsets, lengths, _ = _tables(pmfs, offsets, lengths)
    bits = np.empty(sym.shape, dtype=np.float64)
    for c in range(C):
        row = pmfs[c, : lengths[c]]
        p = row / row.sum()
        idx = np.clip(sym[c].astype(np.int64) - offsets[c], 0, lengths[c] - 1)
        bits[c] = -np.log2(np.maximum(p[idx], 2.0 ** -24))
    return bits[None] if squeeze else bits
