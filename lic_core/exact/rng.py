"""Counter-based Gaussian noise from integer operations (the diffusion decoder's sampler).

``torch.randn`` is not specified across versions, devices or thread counts; a decoder that must
reproduce the encoder's picture needs noise that is a pure function of (seed, draw, element).

* **Philox4x32-10** (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
  SC 2011): a 4×32-bit counter and a 2×32-bit key through 10 rounds of multiply-hi/lo, XOR and a
  Weyl key schedule.  Written in int64 torch ops on values < 2^32; every 32×32-bit product is
  split into 16-bit halves, so no intermediate reaches 2^63 (integer ops are exact on every
  device).  Checked against Random123's known-answer vectors (tests/core/test_exact_rng.py).
* **uniforms**: 53 random bits from two words, ``(a >> 5)·2^26 + (b >> 6)`` (< 2^53, exact), then
  ``u1 = (m + 1)·2^−53`` ∈ (0, 1] and ``u2 = m·2^−53`` ∈ [0, 1) (exact scalings);
* **Box–Muller**: ``√(−2 ln u1)·cos(2π u2)`` and ``…·sin(2π u2)`` with the deterministic log,
  sqrt, sin and cos of :mod:`lic_core.exact.dmath`.  The angle is reduced in turns first
  (``u2 − round(4u2)/4``, exact), so sin/cos see |θ| ≤ π/4.

Counter layout: element n of draw d of stream c under seed s uses counter (n mod 2^32, ⌊n/2^32⌋, d,
c) and key (s mod 2^32, ⌊s/2^32⌋ mod 2^32); one Philox block gives two normals (elements 2n, 2n+1).
Stream 0 is the whole-picture sampler's; the tiled sampler gives tile k (raster order) stream k + 1
(:mod:`lic_core.decoder.diffusion.tiles`).
"""
from __future__ import annotations

import math

import torch

from . import dmath

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK32 = 0xFFFFFFFF
ROUNDS = 10


def _mulhilo(m: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit words of m·x for a constant m < 2^32 and int64 x < 2^32, exactly."""
    m_lo, m_hi = m & 0xFFFF, m >> 16
    p_lo = x * m_lo  # < 2^48
    p_hi = x * m_hi  # < 2^48
    t = p_lo + ((p_hi & 0xFFFF) << 16)  # < 2^49
    lo = t & MASK32
    hi = (p_hi >> 16) + (t >> 32)
    return hi & MASK32, lo


def philox4x32(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor,
               k0: int, k1: int, rounds: int = ROUNDS) -> tuple[torch.Tensor, ...]:
    """Philox4x32-R on int64 tensors holding uint32 counter words; returns four uint32 words.

    CPU tensors run through :func:`_philox_numpy` (the same integer function, ~15× faster; it
    needs no thread team, which a busy 2-core machine starves), other devices through torch."""
    if c0.device.type == "cpu":
        return _philox_numpy(c0, c1, c2, c3, k0, k1, rounds)
    return _philox_torch(c0, c1, c2, c3, k0, k1, rounds)


def _philox_torch(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor,
                  k0: int, k1: int, rounds: int = ROUNDS) -> tuple[torch.Tensor, ...]:
    """Philox4x32-R in int64 torch ops (16-bit halves: no intermediate reaches 2^63)."""
    k0, k1 = int(k0) & MASK32, int(k1) & MASK32
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
        hi0, lo0 = _mulhilo(M0, c0)
        hi1, lo1 = _mulhilo(M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _philox_numpy(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor,
                  k0: int, k1: int, rounds: int = ROUNDS) -> tuple[torch.Tensor, ...]:
    """Philox4x32-R with numpy uint64: a 32×32-bit product is < 2^64, so one multiplication
    gives both words (``>> 32`` and ``& MASK32``). Integer arithmetic, so the words are those of
    the torch formulation bit for bit (tests/core/test_exact_rng.py)."""
    import numpy as np

    u64 = np.uint64
    mask, s32, m0, m1 = u64(MASK32), u64(32), u64(M0), u64(M1)
    a0, a1, a2, a3 = (c.numpy().astype(np.uint64) for c in (c0, c1, c2, c3))
    k0, k1 = int(k0) & MASK32, int(k1) & MASK32
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
        p0, p1 = a0 * m0, a2 * m1
        a0, a1, a2, a3 = (p1 >> s32) ^ a1 ^ u64(k0), p1 & mask, (p0 >> s32) ^ a3 ^ u64(k1), p0 & mask
    return tuple(torch.from_numpy(a.astype(np.int64)) for a in (a0, a1, a2, a3))


def normal(shape: tuple[int, ...], seed: int, draw: int, device="cpu",
           stream: int = 0) -> torch.Tensor:
    """Standard normal float64 noise of ``shape``: a pure function of (seed, draw, stream,
    element); ``stream`` (the fourth counter word, < 2^32) is 0 except for the diffusion
    decoder's tiles."""
    n = 1
    for s in shape:
        n *= int(s)
    blocks = (n + 1) // 2
    idx = torch.arange(blocks, dtype=torch.int64, device=device)
    c0, c1 = idx & MASK32, idx >> 32
    c2 = torch.full_like(idx, int(draw) & MASK32)
    if not 0 <= int(stream) <= MASK32:
        raise ValueError(f"noise stream {stream} outside [0, 2^32)")
    c3 = torch.full_like(idx, int(stream)) if stream else torch.zeros_like(idx)
    seed = int(seed)
    w0, w1, w2, w3 = philox4x32(c0, c1, c2, c3, seed & MASK32, (seed >> 32) & MASK32)
    m1 = ((w0 >> 5) << 26) + (w1 >> 6)  # 53 random bits, < 2^53
    m2 = ((w2 >> 5) << 26) + (w3 >> 6)
    scale = 2.0 ** -53
    u1 = (m1 + 1).to(torch.float64) * scale  # (0, 1]: exact
    u2 = m2.to(torch.float64) * scale  # [0, 1): exact
    radius = torch.sqrt(dmath.log(u1) * -2.0)
    q = torch.round(u2 * 4.0)  # quadrant of the angle 2π·u2 (in turns: exact)
    frac = u2 - q * 0.25  # exact: |frac| ≤ 1/8 turn
    theta = frac * (2.0 * math.pi)  # one rounding, |θ| ≤ π/4
    s, c = dmath._sin_cos_reduced(theta)
    qi = torch.remainder(q, 4.0)
    # rotate (cos, sin) of θ by q quarter turns
    cos_t = torch.where(qi == 0, c, torch.where(qi == 1, -s, torch.where(qi == 2, -c, s)))
    sin_t = torch.where(qi == 0, s, torch.where(qi == 1, c, torch.where(qi == 2, -s, -c)))
    z = torch.stack([radius * cos_t, radius * sin_t], dim=1).reshape(-1)[:n]
    return z.reshape(shape)
