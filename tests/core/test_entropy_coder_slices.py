"""The y coder calls constriction in slices of symbols (so a long step does not hold the GIL
for seconds: the studio's window keeps running, issue 28 item 3); the stream is the same bytes
as one call per chunk, and decodes back, for both symbol models."""
from __future__ import annotations

import numpy as np
import pytest

from lic_core.entropy_coder import symbols as coder
from lic_core.entropy_model.symbols import CategoricalModel, QuantizedGaussianModel


def _chunks(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 1000
    std = rng.uniform(0.3, 8.0, n)
    g = np.clip(np.round(rng.normal(0, std)), -40, 40).astype(np.int64)
    rows = rng.uniform(0.01, 1.0, (n, 9))
    rows /= rows.sum(1, keepdims=True)
    c = rng.integers(-4, 5, n)
    return [(QuantizedGaussianModel(std=std, bound=40), g), (CategoricalModel(rows, 4), c)]


def _stream(chunks) -> bytes:
    enc = coder.SymbolEncoder()
    for model, sym in chunks:
        enc.encode_chunk(model, sym)
    return enc.to_bytes()


@pytest.mark.parametrize("size", [1, 7, 256])
def test_sliced_calls_write_the_same_stream_and_read_it_back(monkeypatch, size):
    chunks = _chunks()
    whole = _stream(chunks)
    monkeypatch.setattr(coder, "SLICE", size)
    assert _stream(chunks) == whole
    dec = coder.SymbolDecoder(whole)
    for model, sym in chunks:
        n = len(model.std) if isinstance(model, QuantizedGaussianModel) else len(model.rows)
        assert np.array_equal(dec.decode_chunk(model, n), sym)
    dec.finish()
