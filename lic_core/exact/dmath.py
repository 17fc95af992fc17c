"""Deterministic elementwise math on float64 tensors (docs/bitstream.md, "Reproducible
decoding").

Every function here is built only from IEEE-754 *basic* operations applied elementwise — ``+ − ×
÷ sqrt``, round-half-even, floor, compare, min/max/clamp — plus exact bit manipulation
(:func:`pow2`) and :func:`torch.frexp` (exact).  Basic operations are correctly rounded, so on
every conforming CPU (any SIMD width) and GPU they give the same bits; a fixed formula evaluated
in a fixed order with one torch op per operation is therefore bit-identical everywhere.

What is deliberately *not* used: ``torch.exp/log/erf/erfc/sigmoid/softplus/gelu/pow/rsqrt`` (their
kernels are SLEEF / libm / CUDA intrinsics whose last bits differ between vector widths and
devices), fused ops (``addcmul``, ``lerp``, ``torch.add(alpha=…)`` with an inexact product) that a
compiler may contract into an FMA, and **division by a Python/0-dim CPU scalar**: PyTorch's CUDA
kernel turns ``x / c`` into ``x · (1/c)`` (one extra rounding), so :func:`div` always divides by
a tensor on the same device.

Accuracy (tests/core/test_exact_dmath.py; tanh: tests/core/test_byom_exact.py): exp, log, sin,
cos, atan, expm1, tanh within a few ulp of libm; erfc's relative error < 1e-12 (a frozen
least-squares fit).  Accuracy only decides how close the exact path is to the float model;
determinism does not depend on it.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import torch

# Cody–Waite split of ln 2 (fdlibm): LN2_HI has 32 trailing zero bits, so k·LN2_HI is exact for
# |k| < 2^20 and the reduced argument keeps full precision.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e+00
SQRT_HALF = 0.70710678118654752440
#: exp() arguments are clamped to this range so every intermediate and the result stay normal
#: numbers (exp(−700) ≈ 1e-304; no subnormal, so flush-to-zero modes cannot matter)
EXP_MIN, EXP_MAX = -700.0, 709.0

# exp(x) = 2^e · 2^(j/32) · e^r with k = round(32x/ln2) = 32e + j and |r| ≤ ln2/64: a 32-entry
# table and a degree-6 Taylor polynomial (< 4e-18 relative error).  1/n! are correctly rounded
# divisions of exact integers; the table holds 2^(j/32) correctly rounded (computed once with
# mpmath at 200 bits) — frozen literals, never a libm call.
_EXP_COEFFS = tuple(1.0 / math.factorial(n) for n in range(6, -1, -1))  # highest degree first
INV_LN2_32 = 46.16624130844683  # 32/ln 2
LN2_32_HI = LN2_HI / 32.0  # exact (power-of-two scaling); k·LN2_32_HI is exact for |k| < 2^25
LN2_32_LO = LN2_LO / 32.0
_EXP2_TABLE = (
    1.0, 1.0218971486541166, 1.0442737824274138, 1.0671404006768237,
    1.0905077326652577, 1.1143867425958924, 1.1387886347566916, 1.1637248587775775,
    1.189207115002721, 1.215247359980469, 1.241857812073484, 1.2690509571917332,
    1.2968395546510096, 1.3252366431597413, 1.3542555469368927, 1.383909881963832,
    1.4142135623730951, 1.4451808069770467, 1.4768261459394993, 1.5091644275934228,
    1.5422108254079407, 1.5759808451078865, 1.6104903319492543, 1.645755478153965,
    1.681792830507429, 1.718619298122478, 1.7562521603732995, 1.7947090750031072,
    1.8340080864093424, 1.8741676341103, 1.9152065613971474, 1.9571441241754002,
)
_EXP2_T: dict = {}
#: k of exp's reduction spans [K_MIN, K_MAX]; 2^(k/32) = 2^(j/32)·2^e is tabulated for every k
#: (65 k entries, 512 KiB; each an exact product), so exp needs one gather and no branch
K_MIN, K_MAX = -32320, 32733
#: k + (2^52 − K_MIN) is exact for an integer k in [K_MIN, K_MAX] (it lies in [2^52, 2^53)), and
#: its bits minus the bits of 2^52 are the integer k − K_MIN: exp's table index
_EXP_IDX_OFFSET = 2.0 ** 52 - K_MIN
_TWO52_BITS = 0x4330000000000000
# 1/(2k+1) for 2·atanh(s) = log((1+s)/(1−s)); |s| ≤ 0.1716 so 11 terms leave < 1e-17.
_LOG_COEFFS = tuple(1.0 / (2 * k + 1) for k in range(10, -1, -1))

# erfc(t) = τ·exp(−t² + Q(x)),  τ = 1/(1 + t/2),  x = 2·(τ − 0.2)/0.8 − 1 ∈ [−1, 1]  for 0 ≤ t ≤ 8.
# Q: degree-12 polynomial (lowest degree first), least-squares fit of ln(erfc(t)/τ) + t² on 4000
# Chebyshev nodes against mpmath; max |error of Q| ≈ 1.6e-10, i.e. relative error of erfc
# ≈ 1.6e-10 — far below the 2^−16 grid GELU's output is rounded to (and below the 1e-9 floor of
# the TCQ pmfs).  Frozen here as exact literals: the *values* define the function.
_ERFC_Q = (
    -0.5357597617338343, 0.5485680602720061, 0.011244147798326404, -0.026169873304200064,
    -0.00026235049270847537, 0.002957282918087795, -0.0003374434708243228,
    -0.00037312287627832744, 0.00012154289667867507, 3.6106686666608126e-05,
    -2.6234256879280695e-05, -1.4243941752437236e-06, 3.0701180769899956e-06,
)
_ERFC_Q_HIGH_FIRST = tuple(reversed(_ERFC_Q))
ERFC_T_MAX = 8.0  # erfc(8) ≈ 1.1e-29: beyond it the fit is not used (values are clamped)
_ERFC_TAU_LO = 0.2  # τ at t = 8


# fdlibm's split of π/2: PIO2_1 has 33 significant bits, so k·PIO2_1 is exact for |k| < 2^20
PIO2_1 = 1.57079632673412561417e+00
PIO2_1T = 6.07710050650619224932e-11
INV_PIO2 = 6.36619772367581382433e-01
HALF_PI = math.pi / 2.0  # exact halving of the double nearest π
#: (−1)^n/(2n+1)! (sin) and (−1)^n/(2n)! (cos), highest degree first, for |r| ≤ π/4 (< 1e-19)
_SIN_COEFFS = tuple((-1) ** n / math.factorial(2 * n + 1) for n in range(8, -1, -1))
_COS_COEFFS = tuple((-1) ** n / math.factorial(2 * n) for n in range(9, -1, -1))
#: (−1)^k/(2k+1) for atan on |t| ≤ tan(π/12): 16 terms leave < 1e-18
_ATAN_COEFFS = tuple((-1) ** k / (2 * k + 1) for k in range(15, -1, -1))
TAN_PI_12 = 2.0 - math.sqrt(3.0)  # tan(π/12): one correctly rounded sqrt, one exact subtraction
SQRT3 = math.sqrt(3.0)
PI_6 = math.pi / 6.0
#: 1/(k+1)! for expm1 on |x| < ½: x·Σ x^k/(k+1)!, k ≤ 17
_EXPM1_COEFFS = tuple(1.0 / math.factorial(k + 1) for k in range(17, -1, -1))


#: elements per block and per thread of the elementwise functions below on large CPU tensors:
#: their ~20 passes then run on a block that stays in cache instead of streaming every temporary
#: through memory (4× faster for exp on a million elements; every element gets the same
#: operations, so the same bits — issue 28).  A block holds this many elements per torch thread:
#: ATen splits an elementwise op into pieces of 32 768 elements (its grain), so each thread
#: works on its own cache-sized piece — one thread per block would leave the others idle
BLOCK = 1 << 15


def _blockwise(fn: Callable[..., torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``fn`` (elementwise, one tensor in and out) applied block by block to a large CPU tensor.

    ``fn(x, out)`` writes its last operation's result into ``out`` (a block of the result) when
    given one: the same operation on the same operands, without a copy of every block."""

    @functools.wraps(fn)
    def run(x: torch.Tensor) -> torch.Tensor:
        n = x.numel()
        block = BLOCK * max(1, torch.get_num_threads())
        if n <= 2 * block or x.device.type != "cpu":
            return fn(x)
        flat = x.reshape(-1)
        out = torch.empty_like(flat)
        for i in range(0, n, block):
            fn(flat[i:i + block], out[i:i + block])
        return out.view(x.shape)

    return run


def _check(x: torch.Tensor) -> None:
    if x.dtype != torch.float64:
        raise TypeError(f"exact math needs float64 tensors, got {x.dtype}")


def div(a: torch.Tensor, b) -> torch.Tensor:
    """``a / b`` as one correctly rounded IEEE division on every device.

    ``b`` becomes a tensor on ``a``'s device with at least one dimension: CUDA replaces division
    by a CPU scalar with multiplication by its reciprocal, which rounds twice.
    """
    b = torch.as_tensor(b, dtype=a.dtype, device=a.device)
    if b.dim() == 0:
        b = b.reshape(1)
    return torch.div(a, b)


def pow2(k: torch.Tensor, check: bool = True) -> torch.Tensor:
    """2^k (float64) for integer tensors k ∈ [−1022, 1023], built from the exponent bits (exact).

    ``check=False`` skips the range check (two reductions) where the caller's clamps guarantee it.
    """
    k = k.to(torch.int64)
    if check and k.numel() and (int(k.min()) < -1022 or int(k.max()) > 1023):
        raise ValueError("pow2 exponent out of the normal float64 range")
    return torch.bitwise_left_shift(k + 1023, 52).view(torch.float64)


def _horner(coeffs: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    """Σ c_i x^i, highest degree first, one multiply and one add per step (never fused).

    In-place ops on a fresh tensor: the same single IEEE operations, fewer allocations.
    """
    p = x * coeffs[0]
    p.add_(coeffs[1])
    for c in coeffs[2:]:
        p.mul_(x)
        p.add_(c)
    return p


def _exp2_table(device) -> torch.Tensor:
    """2^(k/32) for k = K_MIN … K_MAX: the frozen 2^(j/32) times the exact 2^e (k = 32e + j)."""
    key = str(device)
    if key not in _EXP2_T:
        k = torch.arange(K_MIN, K_MAX + 1, dtype=torch.int64)
        j = k % 32  # Python-style modulo of integers: exact
        e = (k - j) // 32
        frac = torch.tensor(_EXP2_TABLE, dtype=torch.float64)[j]
        _EXP2_T[key] = (frac * pow2(e)).to(device)  # × a power of two: exact
    return _EXP2_T[key]


@_blockwise
def exp(x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """e^x: k = round(32x/ln2), r = x − k·ln2/32 (Cody–Waite), e^r by Taylor degree 6, times the
    table's 2^(k/32) (one gather, one rounding)."""
    _check(x)
    x = torch.clamp(x, EXP_MIN, EXP_MAX)
    k = (x * INV_LN2_32).round_()
    r = x - k * LN2_32_HI
    r.sub_(k * LN2_32_LO)
    p = _horner(_EXP_COEFFS, r)
    # k − K_MIN as int64 from the bits of k + 2^52 − K_MIN (an integer in [2^52, 2^53): its
    # mantissa bits are k − K_MIN — exact, and cheaper than a float → int conversion)
    idx = k.add_(_EXP_IDX_OFFSET).view(torch.int64).sub_(_TWO52_BITS).reshape(-1)
    return torch.mul(p, _exp2_table(x.device).index_select(0, idx).view(p.shape),
                     out=p if out is None else out)


#: bits of √½: subtracting them from x's bits puts the exponent of x/√½ in the top bits (musl's
#: branch-free reduction), so x = m·2^e with m ∈ [√½, √2) from integer operations only
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD


@_blockwise
def log(x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ln x for x > 0 (normal): x = m·2^e with m ∈ [√½, √2) by exact bit operations,
    ln m = 2·atanh((m−1)/(m+1))."""
    _check(x)
    bits = x.contiguous().view(torch.int64)
    e = (bits - _SQRT_HALF_BITS) >> 52  # arithmetic shift: floor(log2(x/√½))
    m = (bits - (e << 52)).view(torch.float64)  # x·2^−e: exact
    f = m - 1.0  # exact (Sterbenz)
    s = div(f, m + 1.0)
    w = s * s
    ln_m = (s * _horner(_LOG_COEFFS, w)).mul_(2.0)
    ef = e.to(torch.float64)
    acc = (ef * LN2_LO).add_(ln_m)
    return torch.add(acc, ef * LN2_HI, out=acc if out is None else out)


@_blockwise
def sigmoid(x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """1 / (1 + e^−x)."""
    den = exp(-x).add_(1.0)
    return torch.div(torch.ones_like(x), den, out=den if out is None else out)


@_blockwise
def softplus(x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ln(1 + e^x) = max(x, 0) + ln(1 + e^−|x|)."""
    ln = log(exp(-x.abs()).add_(1.0))
    return torch.add(ln, torch.clamp_min(x, 0.0), out=ln if out is None else out)


@_blockwise
def erfc_nonneg(t: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """erfc(t) for t ≥ 0 (t is clamped to [0, 8]; erfc(8) ≈ 1e-29)."""
    _check(t)
    t = torch.clamp(t, 0.0, ERFC_T_MAX)
    tau = div(torch.ones_like(t), (t * 0.5).add_(1.0))
    xs = (tau - _ERFC_TAU_LO).mul_(2.0 / (1.0 - _ERFC_TAU_LO)).sub_(1.0)
    q = _horner(_ERFC_Q_HIGH_FIRST, xs)
    e = exp(q.sub_(t * t))
    return torch.mul(e, tau, out=e if out is None else out)


def normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Φ(x) = ½·erfc(−x/√2), evaluated on |x| so both tails keep their precision."""
    t = div(x.abs(), math.sqrt(2.0))
    half_tail = erfc_nonneg(t) * 0.5  # = Φ(−|x|)
    return torch.where(x < 0, half_tail, 1.0 - half_tail)


@_blockwise
def gelu(x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Exact (erf) GELU x·Φ(x) — ``nn.GELU(approximate='none')`` — written without a branch:
    x·Φ(x) = max(x, 0) − |x|·Φ(−|x|), Φ(−|x|) = ½·erfc(|x|/√2)."""
    ax = x.abs()
    tail = erfc_nonneg(div(ax, math.sqrt(2.0))).mul_(0.5)
    pos = torch.clamp_min(x, 0.0)
    return torch.sub(pos, tail.mul_(ax), out=pos if out is None else out)


def _sin_cos_reduced(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sin and cos of |r| ≤ π/4 by Taylor polynomials in r² (Horner, one op per step)."""
    w = r * r
    return r * _horner(_SIN_COEFFS, w), _horner(_COS_COEFFS, w)


def _reduce_pio2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x = k·π/2 + r with |r| ≲ π/4 (Cody–Waite with fdlibm's split); returns (r, k mod 4)."""
    _check(x)
    k = (x * INV_PIO2).round_()
    if k.numel() and float(k.abs().max()) >= 2.0 ** 20:
        raise ValueError("sin/cos argument too large for the exact reduction")
    r = x - k * PIO2_1
    r.sub_(k * PIO2_1T)
    return r, torch.remainder(k, 4.0)


def sin(x: torch.Tensor) -> torch.Tensor:
    """sin x for |x| < 2^20·π/2."""
    r, q = _reduce_pio2(x)
    s, c = _sin_cos_reduced(r)
    out = torch.where(q == 0, s, torch.where(q == 1, c, torch.where(q == 2, -s, -c)))
    return out


def cos(x: torch.Tensor) -> torch.Tensor:
    """cos x for |x| < 2^20·π/2."""
    r, q = _reduce_pio2(x)
    s, c = _sin_cos_reduced(r)
    return torch.where(q == 0, c, torch.where(q == 1, -s, torch.where(q == 2, -c, s)))


def tan(x: torch.Tensor) -> torch.Tensor:
    """tan x = sin x / cos x (one division)."""
    return div(sin(x), cos(x))


def atan(x: torch.Tensor) -> torch.Tensor:
    """atan x: |x| > 1 → π/2 − atan(1/|x|); t > tan(π/12) → π/6 + atan((t√3 − 1)/(t + √3));
    then the odd series on |t| ≤ tan(π/12)."""
    _check(x)
    ax = x.abs()
    inv = ax > 1.0
    t = torch.where(inv, div(torch.ones_like(ax), torch.where(inv, ax, torch.ones_like(ax))), ax)
    hi = t > TAN_PI_12
    t2 = torch.where(hi, div(t * SQRT3 - 1.0, t + SQRT3), t)
    p = t2 * _horner(_ATAN_COEFFS, t2 * t2)
    res = torch.where(hi, p + PI_6, p)
    res = torch.where(inv, HALF_PI - res, res)
    return torch.where(x < 0, -res, res)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh x = sign(x)·m/(m + 2) with m = e^(2|x|) − 1 (:func:`expm1`: no cancellation near 0;
    for |x| > 354, 2|x| is clamped by exp and the quotient rounds to 1).  CompressAI's factorized
    density (Ballé et al. 2018, appendix 6.1) needs it between its layers."""
    _check(x)
    m = expm1(x.abs() * 2.0)
    t = div(m, m + 2.0)
    return torch.where(x < 0, -t, t)


def expm1(x: torch.Tensor) -> torch.Tensor:
    """e^x − 1, without cancellation near 0 (Taylor for |x| < ½, exp(x) − 1 beyond)."""
    _check(x)
    small = x.abs() < 0.5
    xs = torch.where(small, x, torch.zeros_like(x))
    taylor = xs * _horner(_EXPM1_COEFFS, xs)
    return torch.where(small, taylor, exp(x) - 1.0)
