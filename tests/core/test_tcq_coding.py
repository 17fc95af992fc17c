"""TCQ entropy coding: step-wise Categorical calls, state replay, clamping, canaries
(docs/methods.md §4.4 "Coding given the state", §6.3, §11 items 8, 16, 17, 20)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lic_core.entropy_coder.symbols import SymbolDecoder, SymbolEncoder
from lic_core.entropy_model.gaussian import scale_index
from lic_core.entropy_model.symbols import CategoricalModel
from lic_core.errors import LicFormatError
from lic_core.quantizer import build_quantizer
from lic_core.quantizer.tcq import _T_NP, TcqQuantizer, from_streams, to_streams


def _block(B, C, N, seed, lo=0.3, hi=8.0):
    g = torch.Generator().manual_seed(seed)
    sigma = torch.exp(torch.empty(B, C, N).uniform_(math.log(lo), math.log(hi), generator=g))
    return torch.randn(B, C, N, generator=g) * sigma, scale_index(sigma)


def _encode(q, pairs):
    enc = SymbolEncoder()
    clamped = [enc.encode(q.symbol_plan(s, k))[1] for k, s in pairs]
    return enc, clamped


def _decoder(enc):
    return SymbolDecoder(enc.to_bytes())


def test_round_trip_several_blocks_and_batch():
    q = TcqQuantizer()
    blocks = [_block(2, c, n, seed=c) for c, n in ((4, 50), (8, 33), (16, 20), (1, 7))]
    ks = [q.quantize(r, s) for r, s in blocks]
    enc, clamped = _encode(q, [(k, s) for k, (_, s) in zip(ks, blocks)])
    assert clamped == [0, 0, 0, 0]
    dec = _decoder(enc)
    for k, (_, s) in zip(ks, blocks):
        k2 = dec.decode(q.symbol_plan(s))
        assert torch.equal(k2, k)
        # decoder replay: same states and bit-exact reconstruction
        assert torch.equal(q.states(k2), q.states(k))
        assert torch.equal(q.dequantize(k2), q.dequantize(k))


def test_mixed_with_scalar_blocks_in_one_stream():
    tcq, rnd = TcqQuantizer(), build_quantizer("round")
    (r1, s1), (r2, s2) = _block(1, 8, 64, 1), _block(1, 8, 64, 2)
    k1, k2 = tcq.quantize(r1, s1), rnd.quantize(r2, s2)
    enc = SymbolEncoder()
    enc.encode(tcq.symbol_plan(s1, k1))
    enc.encode(rnd.symbol_plan(s2, k2))
    dec = _decoder(enc)
    assert torch.equal(dec.decode(tcq.symbol_plan(s1)), k1)
    assert torch.equal(dec.decode(rnd.symbol_plan(s2)), k2)
    dec.finish()


def test_measured_bits_match_estimate():
    q = TcqQuantizer()
    r, s = _block(1, 24, 600, seed=3, lo=0.11, hi=20.0)  # 14 400 symbols
    k = q.quantize(r, s)
    enc, _ = _encode(q, [(k, s)])
    est = float(q.bits(k, s).sum())
    assert abs(enc.num_bits() - est) / est < 0.005


class _SwappedOrder(TcqQuantizer):
    """Decoding plan that reads the Q1 subset before the Q0 subset (violates the format)."""

    def symbol_plan(self, index, indices=None):
        sidx = to_streams(index).numpy()
        S, L = sidx.shape
        k = np.empty((S, L), dtype=np.int64)
        s = np.zeros(S, dtype=np.int64)
        for t in range(L):
            j = s >> 1
            kt = np.zeros(S, dtype=np.int64)
            for jj in (1, 0):
                sel = j == jj
                if sel.any():
                    rows, kc = self._rows(sidx[sel, t], jj)
                    kt[sel] = yield CategoricalModel(rows, kc), None
            k[:, t] = kt
            s = _T_NP[s, kt & 1]
        return from_streams(torch.from_numpy(k), index.shape), 0


def test_swapping_subset_order_breaks_decoding():
    q = TcqQuantizer()
    # sanity of the swapped decoder: with one channel every stream is in state 0 (Q0 only), so
    # the order cannot matter and it must decode correctly
    r1, s1 = _block(2, 1, 300, seed=40)
    k1 = q.quantize(r1, s1)
    enc1, _ = _encode(q, [(k1, s1)])
    assert torch.equal(_decoder(enc1).decode(_SwappedOrder().symbol_plan(s1)), k1)
    r, s = _block(1, 12, 400, seed=4)
    k = q.quantize(r, s)
    assert (q.states(k) >> 1 == 1).any()  # both subsets are really used
    enc, _ = _encode(q, [(k, s)])
    try:
        k_bad = _decoder(enc).decode(_SwappedOrder().symbol_plan(s))
    except LicFormatError:
        return
    assert not torch.equal(k_bad, k)


def test_decoding_with_other_scale_breaks_canary():
    q = TcqQuantizer()
    r, s = _block(1, 8, 500, seed=5)
    k = q.quantize(r, s)
    enc, _ = _encode(q, [(k, s)])
    try:
        k_bad = _decoder(enc).decode(q.symbol_plan((s + 3).clamp_max(63)))
    except LicFormatError:
        return
    assert not torch.equal(k_bad, k)


def test_decoding_with_other_delta_u_breaks():
    r, s = _block(1, 8, 500, seed=6)
    q = TcqQuantizer(delta_u=0.561)
    k = q.quantize(r, s)
    enc, _ = _encode(q, [(k, s)])
    try:
        k_bad = _decoder(enc).decode(TcqQuantizer(delta_u=0.7).symbol_plan(s))
    except LicFormatError:
        return
    assert not torch.equal(k_bad, k)


def test_out_of_support_indices_are_clamped_with_parity_and_counted():
    q = TcqQuantizer()
    r, s = _block(1, 6, 40, seed=7, lo=0.11, hi=0.5)
    k = q.quantize(r, s)
    K = torch.from_numpy(q.tables.support)[s]
    bad = k.clone()
    bad[0, 2, :5] = torch.tensor([100, -101, 1000, -7, 64]) + 0  # far outside these tiny supports
    n_out = int((bad.abs() > K).sum())
    assert n_out >= 4
    enc, clamped = _encode(q, [(bad, s)])
    assert clamped == [n_out]
    k2 = _decoder(enc).decode(q.symbol_plan(s))
    assert (k2.abs() <= K).all()
    assert torch.equal(k2 & 1, bad & 1)  # parity kept → the state path is unchanged
    assert torch.equal(q.states(k2), q.states(bad))
    assert torch.equal(torch.sign(k2), torch.sign(bad))
    same = bad.abs() <= K
    assert torch.equal(k2[same], bad[same])


@pytest.mark.parametrize("shape", [(1, 5, 0), (0, 4, 3)])
def test_empty_blocks(shape):
    q = TcqQuantizer()
    s = torch.ones(shape, dtype=torch.int64)
    enc = SymbolEncoder()
    assert enc.encode(q.symbol_plan(s, torch.zeros(shape, dtype=torch.int64)))[1] == 0
    assert q.quantize(torch.zeros(shape), s).shape == shape
    assert SymbolDecoder(b"").decode(q.symbol_plan(s)).shape == shape


def test_quantize_is_deterministic_and_device_dtype_preserving():
    q = build_quantizer("tcq", delta_u=0.561, c=0.1155)
    r, s = _block(2, 8, 30, seed=8)
    k1, k2 = q.quantize(r, s), q.quantize(r.clone(), s.clone())
    assert torch.equal(k1, k2) and k1.dtype == torch.int64 and k1.shape == r.shape
    y = q.quantize_dequantize(r, s)
    assert y.dtype == torch.float32 and torch.equal(y, q.dequantize(k1))
