"""TCQ stream order (the ``order`` parameter, :data:`lic_core.quantizer.tcq.STREAM_ORDERS`): a
stream visits its channels by ascending scale index. The decoder rebuilds the same order from
the scale indices alone, so indices, states and reconstructions round-trip exactly; the order
is a permutation of channel order, so where σ already ascends along the channels nothing
changes; and it is the trellis itself that runs in the new order (its states follow it)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lic_core.bitstream.format import unpack
from lic_core.codecs.base import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.entropy_coder.symbols import SymbolDecoder, SymbolEncoder
from lic_core.entropy_model.gaussian import scale_index
from lic_core.errors import LicError
from lic_core.models import build_model
from lic_core.quantizer import build_quantizer
from lic_core.quantizer.tcq import (
    _T_NP,
    TcqQuantizer,
    _viterbi,
    stream_permutation,
    to_streams,
)


def _block(B, C, N, seed, lo=0.2, hi=6.0):
    g = torch.Generator().manual_seed(seed)
    sigma = torch.exp(torch.empty(B, C, N).uniform_(math.log(lo), math.log(hi), generator=g))
    return torch.randn(B, C, N, generator=g) * sigma, scale_index(sigma)


def test_ordered_streams_round_trip_through_the_coder():
    q = TcqQuantizer(order=1)
    blocks = [_block(2, c, n, seed=c) for c, n in ((4, 50), (16, 20), (1, 7))]
    ks = [q.quantize(r, s) for r, s in blocks]
    enc = SymbolEncoder()
    for k, (_, s) in zip(ks, blocks):
        assert enc.encode(q.symbol_plan(s, k))[1] == 0
    dec = SymbolDecoder(enc.to_bytes())
    for k, (_, s) in zip(ks, blocks):
        k2 = dec.decode(q.symbol_plan(s))
        assert torch.equal(k2, k)
        assert torch.equal(q.dequantize(k2, s), q.dequantize(k, s))
        assert torch.equal(q.states(k2, s), q.states(k, s))
    dec.finish()


def test_states_follow_the_scale_order():
    q = TcqQuantizer(order=1)
    r, s = _block(1, 16, 40, seed=3)
    k = q.quantize(r, s)
    ks, ss = to_streams(k).numpy(), to_streams(s).numpy()
    states = to_streams(q.states(k, s)).numpy()
    perm = stream_permutation(ss, 1)
    for row in range(ks.shape[0]):  # replay each stream in ascending-σ order from state 0
        st = 0
        for pos in perm[row]:
            assert states[row, pos] == st
            st = _T_NP[st, ks[row, pos] & 1]
    # the reconstruction is the level of each index in the state it was coded in
    lv = 2 * ks - np.sign(ks) * (states >> 1)
    assert np.allclose(to_streams(q.dequantize(k, s)).numpy(), lv * q.delta_u, atol=1e-6)


def test_ordered_equals_channel_order_when_sigma_already_ascends():
    r, s = _block(1, 12, 30, seed=5)
    s_sorted = torch.sort(s, dim=1, stable=True).values  # σ ascends along the channels
    a, b = TcqQuantizer(order=0), TcqQuantizer(order=1)
    assert torch.equal(a.quantize(r, s_sorted), b.quantize(r, s_sorted))
    ka = a.quantize(r, s_sorted)
    assert torch.equal(a.dequantize(ka), b.dequantize(ka, s_sorted))


def test_ordered_trellis_is_optimal_for_its_order():
    """The Viterbi path in scale order is at least as cheap as the channel-order path replayed
    in scale order (both are valid paths of the scale-ordered trellis)."""
    q = TcqQuantizer(order=1, c=0.05)
    r, s = _block(1, 8, 60, seed=7)
    rs, ss = to_streams(r).double().numpy(), to_streams(s).numpy()
    perm = stream_permutation(ss, 1)
    rp, sp = np.take_along_axis(rs, perm, 1), np.take_along_axis(ss, perm, 1)
    _, best = _viterbi(rp, sp, q.delta_u, q.lam, q.tables)
    k0 = to_streams(TcqQuantizer(order=0, c=0.05).quantize(r, s)).numpy()
    from lic_core.quantizer.tcq import path_cost

    other = path_cost(torch.from_numpy(np.take_along_axis(k0, perm, 1)), torch.from_numpy(rp),
                      torch.from_numpy(sp), q.delta_u, q.lam, q.tables).numpy()
    assert (best <= other + 1e-9).all()


def test_order_needs_the_scale_indices_and_is_validated():
    q = TcqQuantizer(order=1)
    r, s = _block(1, 4, 10, seed=1)
    with pytest.raises(ValueError, match="scale indices"):
        q.dequantize(q.quantize(r, s))
    for bad in (2, -1, True, 0.5):
        with pytest.raises(LicError, match="order"):
            build_quantizer("tcq", order=bad)
    assert "order" not in TcqQuantizer().params()  # channel order: older headers unchanged
    assert TcqQuantizer(order=1).params()["order"] == 1


def test_codec_round_trip_with_scale_order():
    torch.manual_seed(0)
    model = build_model("lic-lgem-tiny").eval()
    model.prior.update_tables()
    codec = LearnedCodec("lic-lgem-tiny", model=model)
    img = (np.random.default_rng(4).random((64, 128, 3)) * 255).astype(np.uint8)
    res = codec.encode(img, EncodeParams(rate=0.3, quantizer="tcq",
                                         quantizer_params={"order": 1}))
    assert unpack(res.data)[0].quantizer_params["order"] == 1
    dec = LearnedCodec("lic-lgem-tiny", model=model).decode(res.data)
    assert np.array_equal(dec.reconstruction, res.reconstruction)
    plain = codec.encode(img, EncodeParams(rate=0.3, quantizer="tcq"))
    assert plain.data != res.data


def test_finetune_flags_keep_integer_parameters():
    from lic_core.train.finetune import parse_quantizer_params

    p = parse_quantizer_params(["c=0.03", "order=1", "tables=0"])
    assert p == {"c": 0.03, "order": 1, "tables": 0} and isinstance(p["order"], int)
    assert build_quantizer("tcq", **p).params() == {"delta_u": 0.561, "c": 0.03, "order": 1}
    with pytest.raises(LicError, match="needs a number"):
        parse_quantizer_params(["c=abc"])
