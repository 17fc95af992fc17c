"""TCQ state machine, tables and Viterbi search (docs/methods.md §4.3–4.4, §11 items 6–10)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lic_core.entropy_model.gaussian import scale_index, scale_table
from lic_core.quantizer.tcq import (
    TAIL_MULTIPLIER,
    TRANSITIONS,
    TcqQuantizer,
    branch_costs,
    candidates,
    next_state_vvc,
    path_cost,
    reconstruction_level,
    replay_states,
    table_bits,
    tcq_support,
    tcq_tables,
    to_streams,
    viterbi,
)

DU = 0.561
LAM = 0.1155


def _streams(S, L, seed, lo=0.3, hi=8.0):
    g = torch.Generator().manual_seed(seed)
    sigma = torch.exp(torch.empty(S, L).uniform_(math.log(lo), math.log(hi), generator=g))
    r = (torch.randn(S, L, generator=g, dtype=torch.float64) * sigma.double())
    return r, scale_index(sigma)


def _blocks(shape, seed, lo, hi):
    """B×C×N residuals with log-uniform σ in [lo, hi], and the scale-table index of σ."""
    g = torch.Generator().manual_seed(seed)
    sigma = torch.exp(torch.empty(*shape).uniform_(math.log(lo), math.log(hi), generator=g))
    return torch.randn(*shape, generator=g) * sigma, scale_index(sigma)


def test_transition_table_equals_vvc_32040():
    for s in range(4):
        for p in (0, 1):
            assert TRANSITIONS[s][p] == next_state_vvc(s, p)
            # parity of negative indices (two's complement) gives the same move
            assert TRANSITIONS[s][(-2 - p) & 1] == next_state_vvc(s, p)


def test_reconstruction_formula():
    k = torch.arange(-6, 7)
    assert torch.equal(reconstruction_level(k, 0), 2 * k)
    expected = torch.tensor([2 * v - (1 if v > 0 else -1 if v < 0 else 0) for v in range(-6, 7)])
    assert torch.equal(reconstruction_level(k, 1), expected)


def test_membership_even_in_q0_zero_or_odd_in_q1():
    r, sidx = _blocks((2, 24, 300), 0, 0.2, 10)
    q = TcqQuantizer()
    k = q.quantize(r, sidx)
    states = q.states(k)
    lv = torch.round(q.dequantize(k).double() / DU).to(torch.int64)
    assert torch.allclose(q.dequantize(k).double(), lv.double() * DU, atol=1e-5)
    q0 = states >> 1 == 0
    assert (lv[q0] % 2 == 0).all()
    assert ((lv[~q0] == 0) | (lv[~q0] % 2 == 1)).all()
    assert q0.any() and (~q0).any()
    # every stream starts in state 0 (channel 0 of every position)
    assert (states[:, 0, :] == 0).all()


def test_viterbi_cost_is_path_cost_and_vectorised_equals_per_stream():
    r, sidx = _streams(40, 12, seed=1)
    tab = tcq_tables(DU)
    k, cost = viterbi(r, sidx, DU, LAM, tab)
    assert torch.allclose(cost, path_cost(k, r, sidx, DU, LAM, tab), rtol=0, atol=1e-9)
    for s in range(40):
        ks, cs = viterbi(r[s:s + 1], sidx[s:s + 1], DU, LAM, tab)
        assert torch.equal(ks[0], k[s])
        assert float(cs[0]) == float(cost[s])


def _brute_force(r, sidx, lam, tab):
    """Min over every candidate sequence: per step and state, {nearest p0, nearest p1, 0}."""
    S, L = r.shape
    K = tab.support_t[sidx]
    cand = candidates(r / DU, K)
    best = torch.full((S,), math.inf, dtype=torch.float64)
    for choice in itertools.product(range(3), repeat=L):
        s = torch.zeros(S, dtype=torch.int64)
        k = torch.empty(S, L, dtype=torch.int64)
        for t, c in enumerate(choice):
            j = s >> 1
            if c == 2:
                kt = torch.zeros(S, dtype=torch.int64)
            else:
                kt = torch.where(j == 0, cand[(0, c)][:, t], cand[(1, c)][:, t])
            k[:, t] = kt
            s = torch.tensor(TRANSITIONS)[s, kt & 1]
        best = torch.minimum(best, path_cost(k, r, sidx, DU, lam, tab))
    return best


@pytest.mark.parametrize("L,lam", [(1, LAM), (4, LAM), (6, LAM), (6, 0.6), (5, 0.0)])
def test_viterbi_equals_brute_force(L, lam):
    r, sidx = _streams(50, L, seed=10 + L)
    tab = tcq_tables(DU)
    _, cost = viterbi(r, sidx, DU, lam, tab)
    assert torch.allclose(cost, _brute_force(r, sidx, lam, tab), rtol=0, atol=1e-9)


def test_huge_lambda_gives_all_zeros():
    g = torch.Generator().manual_seed(2)
    sigma = torch.exp(torch.empty(1, 16, 400).uniform_(math.log(0.2), math.log(20), generator=g))
    r = torch.randn(1, 16, 400, generator=g) * sigma * 3
    assert (TcqQuantizer(c=1e9).quantize(r, scale_index(sigma)) == 0).all()
    # and a tiny model scale makes everything but large residuals cost more than they save
    small = torch.full_like(sigma, 0.11)
    k = TcqQuantizer(c=10.0).quantize(r.clamp(-0.3, 0.3), scale_index(small))
    assert (k == 0).all()


def test_lambda_zero_distortion_below_sq_at_double_step():
    r, sidx = _streams(2000, 32, seed=3)
    tab = tcq_tables(DU)
    k, _ = viterbi(r, sidx, DU, 0.0, tab)
    j = replay_states(k) >> 1
    d_tcq = float(((r - DU * reconstruction_level(k, j).double()) ** 2).mean())
    step = 2 * DU
    d_sq = float(((r - step * torch.round(r / step)) ** 2).mean())
    assert d_tcq < d_sq
    assert d_tcq < 0.9 * d_sq  # the trellis' granular gain is real, not a rounding artefact


def test_path_cost_not_worse_than_single_quantizer_or_greedy_paths():
    r, sidx = _streams(300, 24, seed=4)
    tab = tcq_tables(DU)
    k, cost = viterbi(r, sidx, DU, LAM, tab)
    # Q0-only path: stay in state 0 (even indices only), best of nearest-even and 0 per element
    br = branch_costs(r, sidx, DU, LAM, tab)
    k_q0 = br[(0, 0)][0]
    assert (replay_states(k_q0) == 0).all()
    assert (cost <= path_cost(k_q0, r, sidx, DU, LAM, tab) + 1e-9).all()
    # greedy path: per step the cheapest branch from the current state
    S, L = r.shape
    s = torch.zeros(S, dtype=torch.int64)
    kg = torch.empty(S, L, dtype=torch.int64)
    for t in range(L):
        bt = branch_costs(r[:, t], sidx[:, t], DU, LAM, tab)
        out = []
        for jj in (0, 1):
            (k0, c0), (k1, c1) = bt[(jj, 0)], bt[(jj, 1)]
            out.append(torch.where(c1 < c0, k1, k0))
        kg[:, t] = torch.where(s >> 1 == 0, out[0], out[1])
        s = torch.tensor(TRANSITIONS)[s, kg[:, t] & 1]
    assert (cost <= path_cost(kg, r, sidx, DU, LAM, tab) + 1e-9).all()
    assert float(cost.sum()) < float(path_cost(kg, r, sidx, DU, LAM, tab).sum())


def test_pmf_tables_normalised_symmetric_and_support():
    for du in (DU, 0.5):
        tab = tcq_tables(du)
        sums = tab.pmf.sum(-1)
        assert np.abs(sums - 1.0).max() < 1e-9
        assert np.array_equal(tab.pmf, tab.pmf[:, :, ::-1])
        K = tab.support
        assert np.array_equal(K, tcq_support(du))
        sig_n = scale_table() / du
        # support covers ±6.11 σ' with the open edge cells of both quantizers
        assert (2 * K - 2 >= TAIL_MULTIPLIER * sig_n).all()
        for i in (0, 20, 63):
            w = np.nonzero(tab.pmf[i, 0])[0]
            assert w.min() == tab.k_max - K[i] and w.max() == tab.k_max + K[i]
            assert (tab.pmf[i, :, tab.k_max - K[i]: tab.k_max + K[i] + 1] >= 1e-9 / 2).all()
    # Q0's zero cell [−1, 1] in units of Δ_u is wider than Q1's [−½, ½]
    tab = tcq_tables(DU)
    assert (tab.pmf[:, 0, tab.k_max] > tab.pmf[:, 1, tab.k_max]).all()
    # a cell mass by hand: Q1, k = 1 is [½, 2]·Δ_u
    i = 30
    sn = scale_table()[i] / DU
    phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    assert math.isclose(tab.pmf[i, 1, tab.k_max + 1], phi(2 / sn) - phi(0.5 / sn), rel_tol=1e-7)
    # (not 1e-9: the 1e-9 floor of far-tail cells renormalizes each row by a few 1e-9)


def test_emitted_indices_inside_support_even_for_outliers():
    g = torch.Generator().manual_seed(5)
    r, sidx = _blocks((1, 12, 500), 5, 0.11, 4)
    r[0, :, :10] = 1e4 * torch.sign(torch.randn(12, 10, generator=g))  # far outside support
    q = TcqQuantizer()
    k = q.quantize(r, sidx)
    K = torch.from_numpy(q.tables.support)[sidx]
    assert (k.abs() <= K).all()
    assert (k.abs() == K).any() or (k.abs() == K - 1).any()
    b = q.bits(k, sidx)
    assert torch.isfinite(b).all() and float(b.max()) <= 24.0 + 1e-9


def test_bits_match_table_lookup_of_replayed_states():
    r, sidx = _blocks((2, 8, 64), 6, 0.3, 8)
    q = TcqQuantizer()
    k = q.quantize(r, sidx)
    b = q.bits(k, sidx)
    ks, ss = to_streams(k), to_streams(sidx)
    j = replay_states(ks) >> 1
    expected = -np.log2(np.maximum(q.tables.pmf[ss.numpy(), j.numpy(), (ks + q.tables.k_max).numpy()],
                                   2.0 ** -24))
    assert np.allclose(to_streams(b).numpy(), expected, rtol=1e-12)
    assert torch.equal(table_bits(q.tables, ss, j, ks), to_streams(b))
