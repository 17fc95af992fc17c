"""Trellis-coded (dependent) quantization for the learned codec (docs/methods.md §4.3–4.4, §6.3).

**Quantizers and states (VVC dependent quantization, §4.3).** Two scalar quantizers share the
step Δ_u: Q0 reconstructs index k at ``2k·Δ_u`` and Q1 at ``(2k − sgn k)·Δ_u``. A 4-state machine
picks the quantizer, ``j = s ≫ 1``, and moves on the parity of k with the table
``TRANSITIONS[s][k & 1]`` (VVC's packed constant 32040). Every stream starts in state 0, no
termination; the decoder replays the states from the decoded indices, nothing else is sent.

**Streams (format, §4.4).** For a ``B×C×N`` (group, pass) block there is one trellis stream per
spatial position, running along the C channels of the group: ``S = B·N`` streams of length C.
Stream ``b·N + n`` visits ``(b, 0, n), (b, 1, n), …, (b, C−1, n)``.
With the parameter ``order = 1`` a stream visits the same elements by ascending scale index
(ties in channel order) — see :data:`STREAM_ORDERS`; files without it use channel order.

**Rate model (§4.4).** In normalized units ``r' = r/Δ_u`` and ``σ' = σ_table/Δ_u`` (the *table*
scale, so encoder decisions and coded pmfs agree), index k of quantizer j owns the midpoint
decision cell of its level: Q0 ``[2k−1, 2k+1]``; Q1 ``[−½, ½]`` for k = 0, ``±[½, 2]`` for
k = ±1 and ``±[2|k|−2, 2|k|]`` beyond. Its pmf is the Gaussian mass of the cell, floored at 1e-9
and renormalized over the support ``|k| ≤ K_i = ⌈(6.11·σ_i/Δ_u + 2)/2⌉``, whose edge cells extend
to ±∞. Tables for the 64 scale-table entries × 2 quantizers are built once per Δ_u in float64 and
cached; the table of scale entry i and quantizer j (§4.4) is ``[i, j]`` here.  The pmf rows are
coded, so they are built from single IEEE operations only (format v2): the deterministic erfc of
:mod:`lic_core.exact.dmath`, sums in a fixed order, the frozen scale table and a frozen tail
multiplier — the same bits on every machine.

**Search.** Viterbi over the S streams at once (Python loop over the C steps only), branch cost
``(r − Δ_u·level)² + λ·bits`` with ``λ = c·Δ_SQ²`` (Δ_SQ = 1; λ is an encoder-only choice the
decoder never needs). The default c = 0.03, not the high-rate value ln2/6 ≈ 0.1155 (§4.2): chosen on
held-back training photos for the campaign codec, where it loses 3× less (docs/quantizers.md);
the shipped fine-tuned TCQ decoder was trained on latents quantized with it. Candidates per
(quantizer j, parity p): the nearest level of Q_j whose index has parity p, plus k = 0 for
p = 0, restricted to the support with a parity-preserving clamp, so the search never emits an
index the coder cannot code.

**Coding (§4.4, §6.3).** Per channel step t, the S symbols split by quantizer j = s ≫ 1; the Q0
subset (in stream order), then the Q1 subset, each become one
:class:`~lic_core.entropy_model.symbols.CategoricalModel` chunk of the symbol plan whose rows are
the table rows of each symbol, cut to the largest support ``K_c`` within that chunk; the coded
table entry is ``k + K_c``.  The entropy coder codes the chunks; the plan replays the states.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch

from ..entropy_model.symbols import CategoricalModel, SymbolPlan
from .base import Quantizer, check_shapes
from .tcq_designed import designed_tables
from .tcq_rate import (  # noqa: F401 - the rate tables are part of this module's interface
    _BITS_OUTSIDE,
    DEFAULT_DELTA_U,
    MIN_CODED_PROB,
    PMF_FLOOR,
    TAIL_MULTIPLIER,
    TcqTables,
    gaussian_half_pmf,
    normalize_half,
    tables_from_half,
    tcq_support,
    tcq_tables,
)

#: next state = TRANSITIONS[state][parity of k] (docs/methods.md §4.3 table)
TRANSITIONS: tuple[tuple[int, int], ...] = ((0, 2), (2, 0), (1, 3), (3, 1))
#: VVC packs the table into this 16-bit constant (DepQuant.cpp)
VVC_STATE_CONSTANT = 32040
DEFAULT_C = 0.03
_T = torch.tensor(TRANSITIONS, dtype=torch.int64)
_T_NP = np.array(TRANSITIONS, dtype=np.int64)


def next_state_vvc(state: int, parity: int) -> int:
    """VVC's decode of the packed table: ``(32040 >> ((s << 2) + (p << 1))) & 3``."""
    return (VVC_STATE_CONSTANT >> ((state << 2) + ((parity & 1) << 1))) & 3


def reconstruction_level(k: torch.Tensor, quantizer: torch.Tensor | int) -> torch.Tensor:
    """Level in units of Δ_u: ``2k − sgn(k)·j`` (VVC ``dequantBlock``), same dtype as k."""
    return 2 * k - torch.sign(k) * quantizer


def table_bits(tables: TcqTables, sidx: torch.Tensor, quantizer: torch.Tensor | int,
               k: torch.Tensor) -> torch.Tensor:
    """Code length (float64) of index k for quantizer j at scale index sidx (same shapes)."""
    return torch.from_numpy(_table_bits(tables, _np(sidx), _np(quantizer), _np(k)))


# ---- candidates and Viterbi ---------------------------------------------------------------------
# The search runs in NumPy: its element-wise ops never start a thread team. torch's indexing and
# dtype-conversion kernels parallelize even tiny (S = 768) tensors, which on a busy 2-core machine
# made the search 10–20× slower at 2 threads. All arithmetic is IEEE float64 (+, ×, round half to
# even), so results equal the torch formulation bit for bit.
def _np(x: Any) -> Any:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def _table_bits(tables: TcqTables, sidx: np.ndarray, quantizer: np.ndarray | int,
                k: np.ndarray) -> np.ndarray:
    flat = (sidx * 2 + quantizer) * tables.width + (k + tables.k_max)
    return np.take(tables.bits_flat, flat)


def _level(k: np.ndarray, quantizer: np.ndarray | int) -> np.ndarray:
    return 2 * k - np.sign(k) * quantizer


def _clamp_parity(mag: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Clamp |k| into [0, K] keeping its parity (the state path must not change)."""
    fix = np.where((K - mag) % 2 == 0, K, K - 1)
    return np.where(mag > K, fix, mag)


def _candidates(r_n: np.ndarray, K: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    a = np.abs(r_n)
    sg = np.where(r_n < 0, -1, 1)

    def m(offset: float) -> np.ndarray:
        return np.maximum(np.round((a - offset) / 4), 0).astype(np.int64)

    mags = {(0, 0): 2 * m(0.0), (0, 1): 2 * m(2.0) + 1, (1, 1): 2 * m(1.0) + 1,
            (1, 0): 2 * m(3.0) + 2}
    return {jp: sg * _clamp_parity(mag, K) for jp, mag in mags.items()}


def candidates(r_n: torch.Tensor, K: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
    """Nearest index of Q_j with parity p, for (j, p) ∈ {0,1}², clamped to the support K.

    ``r_n = r/Δ_u``; levels: Q0 p0 → ±4m, Q0 p1 → ±(4m+2), Q1 p1 → ±(4m+1), Q1 p0 → ±(4m+3)
    (the k = 0 candidate of parity 0 is added separately by the search).
    """
    out = _candidates(_np(r_n).astype(np.float64), _np(K))
    return {jp: torch.from_numpy(v) for jp, v in out.items()}


def _branch_costs(r: np.ndarray, sidx: np.ndarray, delta_u: float, lam: float,
                  tables: TcqTables) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    cand = _candidates(r / delta_u, tables.support[sidx])
    zero = np.zeros_like(sidx)
    bits0 = {j: _table_bits(tables, sidx, j, zero) for j in (0, 1)}
    out = {}
    for (j, p), k in cand.items():
        d = (r - delta_u * _level(k, j)) ** 2
        cost = d + lam * _table_bits(tables, sidx, j, k)
        if p == 0:
            cost0 = r * r + lam * bits0[j]
            use0 = cost0 < cost
            k = np.where(use0, 0, k)
            cost = np.where(use0, cost0, cost)
        out[(j, p)] = (k, cost)
    return out


def branch_costs(r: torch.Tensor, sidx: torch.Tensor, delta_u: float, lam: float,
                 tables: TcqTables) -> dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]:
    """Best (k, cost) per (quantizer j, parity p) for residuals r (latent units), float64 costs.

    cost = (r − Δ_u·level)² + λ·bits; for p = 0 the better of the nearest index and k = 0
    (the nearest one wins ties).
    """
    out = _branch_costs(_np(r).astype(np.float64), _np(sidx), delta_u, lam, tables)
    return {jp: (torch.from_numpy(k), torch.from_numpy(c)) for jp, (k, c) in out.items()}


#: for each next state n, its two (previous state, parity) predecessors (from TRANSITIONS)
_PREDECESSORS = tuple(tuple((s, p) for s in range(4) for p in (0, 1) if TRANSITIONS[s][p] == n)
                      for n in range(4))


def _viterbi(r: np.ndarray, sidx: np.ndarray, delta_u: float, lam: float,
             tables: TcqTables) -> tuple[np.ndarray, np.ndarray]:
    S, L = r.shape
    J = np.full((S, 4), np.inf)
    J[:, 0] = 0.0
    pred = np.empty((L, S, 4), dtype=np.int8)
    kbest = np.empty((L, S, 4), dtype=np.int64)
    # branch costs do not depend on the path: compute them for all steps at once, in L×S layout
    # so each step reads contiguous rows; only add-compare-select runs per step
    br = _branch_costs(np.ascontiguousarray(r.T), np.ascontiguousarray(sidx.T), delta_u, lam,
                       tables)
    for t in range(L):
        newJ = np.empty_like(J)
        for n, ((s_a, p_a), (s_b, p_b)) in enumerate(_PREDECESSORS):
            j = s_a >> 1  # both predecessors of n use the same quantizer (§4.4 update rules)
            (ka, ca), (kb, cb) = br[(j, p_a)], br[(j, p_b)]
            va, vb = J[:, s_a] + ca[t], J[:, s_b] + cb[t]
            take_b = vb < va  # ties keep the lower predecessor state
            newJ[:, n] = np.where(take_b, vb, va)
            pred[t, :, n] = np.where(take_b, s_b, s_a)
            kbest[t, :, n] = np.where(take_b, kb[t], ka[t])
        J = newJ
    state = np.argmin(J, axis=1)  # first minimum: lowest state index on ties
    cost = J[np.arange(S), state]
    k = np.empty((S, L), dtype=np.int64)
    rows = np.arange(S)
    for t in range(L - 1, -1, -1):
        k[:, t] = kbest[t, rows, state]
        state = pred[t, rows, state].astype(np.int64)
    return k, cost


def viterbi(r: torch.Tensor, sidx: torch.Tensor, delta_u: float, lam: float,
            tables: TcqTables) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-cost index paths for S independent streams of length L (docs/methods.md §4.4).

    Args: ``r`` S×L residuals (latent units), ``sidx`` S×L scale-table indices.
    Returns: ``k`` S×L int64 indices and the S path costs (float64, Σ D + λ·bits).
    Every stream starts in state 0; the best end state wins (lowest state index on ties).
    """
    k, cost = _viterbi(_np(r).astype(np.float64), _np(sidx), delta_u, lam, tables)
    return torch.from_numpy(k), torch.from_numpy(cost)


def _replay_states(k: np.ndarray) -> np.ndarray:
    S, L = k.shape
    states = np.empty((S, L), dtype=np.int64)
    s = np.zeros(S, dtype=np.int64)
    for t in range(L):
        states[:, t] = s
        s = _T_NP[s, k[:, t] & 1]
    return states


def replay_states(k: torch.Tensor) -> torch.Tensor:
    """States (S×L int64) in which each index of the S×L streams was coded (start state 0)."""
    return torch.from_numpy(_replay_states(_np(k)))


def path_cost(k: torch.Tensor, r: torch.Tensor, sidx: torch.Tensor, delta_u: float, lam: float,
              tables: TcqTables) -> torch.Tensor:
    """Σ (r − Δ_u·level)² + λ·bits of given index paths (S×L), replaying their states."""
    k, sidx = _np(k), _np(sidx)
    j = _replay_states(k) >> 1
    d = (_np(r).astype(np.float64) - delta_u * _level(k, j)) ** 2
    return torch.from_numpy((d + lam * _table_bits(tables, sidx, j, k)).sum(1))


# ---- layout helpers --------------------------------------------------------------------------------
def to_streams(x: torch.Tensor) -> torch.Tensor:
    """B×C×N → (B·N)×C: one stream per spatial position, along the channels."""
    B, C, N = x.shape
    return x.permute(0, 2, 1).reshape(B * N, C)


def from_streams(x: torch.Tensor, shape: torch.Size | tuple[int, int, int]) -> torch.Tensor:
    """Inverse of :func:`to_streams`."""
    B, C, N = shape
    return x.reshape(B, N, C).permute(0, 2, 1).contiguous()


#: stream orders (the TCQ parameter ``order``): 0 = along the channels (§4.4 format); 1 = by
#: ascending scale index σ_i, ties in channel order. Both sides know σ before a block is coded.
#: Why 1: the trellis starts every stream in state 0, whose zeros keep it there with Q0's wide
#: zero cell; coding the near-certain zeros first and the few large-σ elements last (VVC scans a
#: block from high frequencies to DC for the same reason) stops early small-σ zeros from landing
#: in Q1's narrow zero cell — on held-back photos it took TCQ from +7.4 % to 0.0 % BD-rate vs
#: rounding (docs/quantizers.md).
STREAM_ORDERS = {0: "channels", 1: "ascending scale"}


def stream_permutation(sidx: np.ndarray, order: int) -> Optional[np.ndarray]:
    """Coding-order positions (S×L, per stream) for ``order``; None for channel order."""
    if not order:
        return None
    return np.argsort(sidx, axis=1, kind="stable")  # stable: ties keep channel order


def _gather(x: np.ndarray, perm: Optional[np.ndarray]) -> np.ndarray:
    return x if perm is None else np.ascontiguousarray(np.take_along_axis(x, perm, axis=1))


def _scatter(x: np.ndarray, perm: Optional[np.ndarray]) -> np.ndarray:
    if perm is None:
        return x
    out = np.empty_like(x)
    np.put_along_axis(out, perm, x, axis=1)
    return out


class TcqQuantizer(Quantizer):
    """4-state dependent quantization with a Gaussian rate model (docs/methods.md §4.3–4.4).

    ``delta_u`` (Δ_u, default 0.561 = VVC's union step for the same nominal rate as rounding)
    is needed by the decoder; ``c`` sets the encoder's ``λ_q = c·Δ_SQ²`` (Δ_SQ = 1).
    ``tables`` names the rate tables both sides use: 0, §4.4's Gaussian midpoint cells, else the
    id of a designed table set shipped beside the codec weights (:mod:`.tcq_designed`).
    ``order`` is the order of each trellis stream (:data:`STREAM_ORDERS`).
    """

    name = "tcq"

    def __init__(self, delta_u: float = DEFAULT_DELTA_U, c: float = DEFAULT_C,
                 tables: int = 0, order: int = 0) -> None:
        delta_u, c = float(delta_u), float(c)
        if not (0.05 <= delta_u <= 4.0):
            raise ValueError(f"TCQ delta_u must be in [0.05, 4], got {delta_u}")
        if not (c >= 0.0 and math.isfinite(c)):
            raise ValueError(f"TCQ c must be a finite number ≥ 0, got {c}")
        if isinstance(tables, bool) or not isinstance(tables, int) or not 0 <= tables < 2 ** 63:
            raise ValueError(f"TCQ tables must be a table id (an int in [0, 2^63)), got {tables!r}")
        if isinstance(order, bool) or order not in STREAM_ORDERS:
            raise ValueError(f"TCQ order must be one of {sorted(STREAM_ORDERS)}, got {order!r}")
        self.delta_u, self.c, self.table_id, self.order = delta_u, c, int(tables), int(order)
        self._tables: Optional[TcqTables] = None

    @property
    def lam(self) -> float:
        """λ_q = c·Δ_SQ² with Δ_SQ = 1 (docs/methods.md §4.2, §4.4)."""
        return self.c

    @property
    def tables(self) -> TcqTables:
        if self._tables is None:
            if self.table_id:
                self._tables = designed_tables(self.table_id, self.delta_u)
            else:
                self._tables = tcq_tables(self.delta_u)
        return self._tables

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"delta_u": self.delta_u, "c": self.c}
        if self.table_id:  # absent = Gaussian tables: older headers stay byte-identical
            out["tables"] = self.table_id
        if self.order:  # absent = channel order (§4.4)
            out["order"] = self.order
        return out

    def _perm(self, sidx: np.ndarray) -> Optional[np.ndarray]:
        """Positions (S×L) of each stream's elements in coding order, None for channel order."""
        return stream_permutation(sidx, self.order)

    def _streams(self, index: Optional[torch.Tensor], shape) -> tuple[Optional[np.ndarray],
                                                                      Optional[np.ndarray]]:
        """(scale indices as S×L streams, their permutation) — index is needed for order 1."""
        if index is None:
            if self.order:
                raise ValueError("TCQ with a scale-ordered trellis needs the scale indices")
            return None, None
        check_shapes(None, index)
        if tuple(index.shape) != tuple(shape):
            raise ValueError(f"indices {tuple(shape)} and scale index {tuple(index.shape)} differ")
        sidx = to_streams(index.cpu()).numpy()
        return sidx, self._perm(sidx)

    #: trellis elements per Viterbi chunk: the search keeps ~120 bytes per element (branch
    #: costs and back-pointers of 4 states), so a big step runs its independent streams in
    #: chunks (issue 28: the same paths, ~100 MB instead of 2 GB for a 48 MP photo's step)
    VITERBI_CHUNK = 1 << 20

    def quantize(self, residual: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        check_shapes(residual, index)
        if residual.numel() == 0:
            return torch.zeros(residual.shape, dtype=torch.int64, device=residual.device)
        r = to_streams(residual.detach().cpu()).numpy().astype(np.float64)
        sidx = to_streams(index.cpu()).numpy()
        S, L = r.shape
        k = np.empty((S, L), dtype=np.int64)
        rows = max(1, self.VITERBI_CHUNK // max(L, 1))
        for s0 in range(0, S, rows):  # every stream's search is its own: chunks change nothing
            part = slice(s0, min(S, s0 + rows))
            perm = self._perm(sidx[part])
            kp, _ = _viterbi(_gather(r[part], perm), _gather(sidx[part], perm), self.delta_u,
                             self.lam, self.tables)
            k[part] = _scatter(kp, perm)
        return from_streams(torch.from_numpy(k), residual.shape).to(residual.device)

    def dequantize(self, indices: torch.Tensor,
                   index: Optional[torch.Tensor] = None) -> torch.Tensor:
        _, perm = self._streams(index, indices.shape)
        k = _gather(to_streams(indices.detach().cpu().to(torch.int64)).numpy(), perm)
        j = _replay_states(k) >> 1
        level = (_level(k, j) * self.delta_u).astype(np.float32)  # float64 product, then f32
        return from_streams(torch.from_numpy(_scatter(level, perm)),
                            indices.shape).to(indices.device)

    def states(self, indices: torch.Tensor, index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The state (B×C×N) in which each index is coded, replayed from state 0."""
        _, perm = self._streams(index, indices.shape)
        k = _gather(to_streams(indices.detach().cpu().to(torch.int64)).numpy(), perm)
        return from_streams(torch.from_numpy(_scatter(_replay_states(k), perm)),
                            indices.shape).to(indices.device)

    def bits(self, indices: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        check_shapes(indices, index)
        sidx = to_streams(index.cpu()).numpy()
        perm = self._perm(sidx)
        k = _gather(to_streams(indices.detach().cpu().to(torch.int64)).numpy(), perm)
        sidx = _gather(sidx, perm)
        j = _replay_states(k) >> 1
        k = np.sign(k) * _clamp_parity(np.abs(k), self.tables.support[sidx])  # as coded
        b = torch.from_numpy(_scatter(_table_bits(self.tables, sidx, j, k), perm))
        return from_streams(b, indices.shape).to(indices.device)

    # -- coding --------------------------------------------------------------------------------------
    #: table entries per piece of a Categorical chunk: the subset of one channel step is cut to
    #: its largest support K_c (format), but its rows (2·K_c + 1 float64 each, up to ~20 KB) are
    #: built and coded in pieces — each symbol is coded under its own row, so the pieces code
    #: the same bits as one call (issue 28: no multi-GB row block on a 48 MP photo)
    ROW_PIECE_ENTRIES = 1 << 21

    def _rows(self, sidx: np.ndarray, j: int, kc: Optional[int] = None) -> tuple[np.ndarray, int]:
        tab = self.tables
        kc = int(tab.support[sidx].max()) if kc is None else kc
        rows = tab.pmf[sidx, j, tab.k_max - kc: tab.k_max + kc + 1]
        return np.ascontiguousarray(rows), kc

    def symbol_plan(self, index: torch.Tensor,
                    indices: Optional[torch.Tensor] = None) -> SymbolPlan:
        check_shapes(indices, index)
        if index.numel() == 0:
            return torch.zeros(index.shape, dtype=torch.int64, device=index.device), 0
        sidx = to_streams(index.cpu()).numpy()
        perm = self._perm(sidx)
        sidx = _gather(sidx, perm)
        S, L = sidx.shape
        encoding = indices is not None
        k = (np.array(_gather(to_streams(indices.detach().cpu().to(torch.int64)).numpy(), perm))
             if encoding else np.empty((S, L), dtype=np.int64))
        support = self.tables.support
        s = np.zeros(S, dtype=np.int64)
        clamped = 0
        for t in range(L):
            it = sidx[:, t]
            if encoding:
                kt = k[:, t]
                K = support[it]
                mag = np.abs(kt)
                over = mag > K
                if over.any():  # parity-preserving clamp keeps the decoder's state path intact
                    clamped += int(over.sum())
                    kt = np.sign(kt) * _clamp_parity(mag, K)
            else:
                kt = np.empty(S, dtype=np.int64)
            j = s >> 1
            for jj in (0, 1):  # Q0 subset first, then Q1 (format)
                pos = np.flatnonzero(j == jj)
                if pos.size == 0:
                    continue
                kc = int(support[it[pos]].max())  # the whole subset's largest support
                piece = max(1, self.ROW_PIECE_ENTRIES // (2 * kc + 1))
                for p0 in range(0, pos.size, piece):
                    part = pos[p0:p0 + piece]
                    rows, _ = self._rows(it[part], jj, kc)
                    got = yield CategoricalModel(rows, kc), (kt[part] if encoding else None)
                    if not encoding:
                        kt[part] = got
            k[:, t] = kt
            s = _T_NP[s, kt & 1]
        return (from_streams(torch.from_numpy(_scatter(k, perm)), index.shape).to(index.device),
                clamped)
