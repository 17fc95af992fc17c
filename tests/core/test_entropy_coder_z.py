"""z coding with per-channel Categorical tables (docs/methods.md §6.3, §11.4)."""
from __future__ import annotations

import numpy as np
import pytest

from lic_core.entropy_coder import bytes_to_words, decode_z, encode_z, words_to_bytes, z_bits
from lic_core.errors import LicFormatError


def _tables(rng, C=8, L=21):
    """Discretized Laplace-ish pmfs of varying width, zero-padded to L (like exported tables)."""
    lengths = rng.integers(5, L + 1, size=C)
    pmfs = np.zeros((C, L))
    offsets = np.empty(C, dtype=np.int64)
    for c in range(C):
        n = lengths[c]
        v = np.arange(n) - n // 2
        p = np.exp(-np.abs(v) / rng.uniform(0.5, 3.0))
        pmfs[c, :n] = p / p.sum()
        offsets[c] = -(n // 2)
    return pmfs, offsets, lengths


def _sample(rng, pmfs, offsets, lengths, shape):
    C = pmfs.shape[0]
    out = np.empty((C,) + shape, dtype=np.int64)
    for c in range(C):
        p = pmfs[c, : lengths[c]]
        out[c] = rng.choice(lengths[c], size=shape, p=p / p.sum()) + offsets[c]
    return out


def test_round_trip_with_clamped_outliers():
    rng = np.random.default_rng(0)
    pmfs, offsets, lengths = _tables(rng)
    sym = _sample(rng, pmfs, offsets, lengths, (6, 10))
    sym[0, 0, 0] = 1000          # far above the support
    sym[3, 5, 9] = -1000         # far below
    sym[5, 2, 2] = offsets[5] + lengths[5]  # one past the end (a padded zero in the table)
    data, clamped = encode_z(sym, pmfs, offsets, lengths)
    assert clamped == 3
    out = decode_z(data, pmfs, offsets, sym.shape, lengths)
    expected = sym.copy()
    for c in range(sym.shape[0]):
        expected[c] = np.clip(sym[c], offsets[c], offsets[c] + lengths[c] - 1)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int64


def test_batch_dimension_and_empty_grid():
    rng = np.random.default_rng(1)
    pmfs, offsets, lengths = _tables(rng, C=3)
    sym = _sample(rng, pmfs, offsets, lengths, (2, 3))[None]
    data, clamped = encode_z(sym, pmfs, offsets, lengths)
    assert clamped == 0
    np.testing.assert_array_equal(decode_z(data, pmfs, offsets, sym.shape[1:], lengths), sym[0])
    data, _ = encode_z(np.zeros((3, 0, 4), dtype=np.int64), pmfs, offsets, lengths)
    assert decode_z(data, pmfs, offsets, (3, 0, 4), lengths).shape == (3, 0, 4)


def test_measured_bits_close_to_ideal():
    rng = np.random.default_rng(2)
    pmfs, offsets, lengths = _tables(rng, C=16, L=41)
    sym = _sample(rng, pmfs, offsets, lengths, (32, 32))  # 16384 symbols
    data, _ = encode_z(sym, pmfs, offsets, lengths)
    ideal = z_bits(sym, pmfs, offsets, lengths).sum()
    measured = 8 * len(data)
    assert ideal > 1e4
    assert abs(measured - ideal) / ideal < 0.005, (measured, ideal)


def test_corrupted_streams_raise_licformaterror_only():
    rng = np.random.default_rng(3)
    pmfs, offsets, lengths = _tables(rng)
    sym = _sample(rng, pmfs, offsets, lengths, (16, 16))
    data, _ = encode_z(sym, pmfs, offsets, lengths)
    with pytest.raises(LicFormatError):
        decode_z(b"", pmfs, offsets, sym.shape, lengths)
    with pytest.raises(LicFormatError, match="multiple of 4"):
        decode_z(data[:-1], pmfs, offsets, sym.shape, lengths)
    with pytest.raises(LicFormatError):
        decode_z(data + data, pmfs, offsets, sym.shape, lengths)  # trailing data
    errors = 0
    trials = 200
    for t in range(trials):
        if t % 2:
            cut = 4 * int(rng.integers(0, len(data) // 4))
            bad = data[:cut]
        else:
            bad = rng.integers(0, 256, size=len(data), dtype=np.uint8).tobytes()
        try:
            out = decode_z(bad, pmfs, offsets, sym.shape, lengths)
        except LicFormatError:
            errors += 1
        else:  # undetected: still a well-formed array inside the support (the CRC guards files)
            assert out.shape == sym.shape
    assert errors > 0.8 * trials


def test_words_bytes_round_trip_is_little_endian():
    w = np.array([0, 1, 0xDEADBEEF, 0xFFFFFFFF], dtype=np.uint32)
    b = words_to_bytes(w)
    assert b[:8] == b"\x00\x00\x00\x00\x01\x00\x00\x00"
    assert b[8:12] == b"\xef\xbe\xad\xde"
    np.testing.assert_array_equal(bytes_to_words(b), w)
    assert bytes_to_words(b"").size == 0
    with pytest.raises(LicFormatError, match="multiple of 4"):
        bytes_to_words(b"abcde")
