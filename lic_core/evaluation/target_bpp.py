"""Encode an image at a target bit rate by bisection on the codec's rate knob.

Works for every :class:`~lic_core.codecs.base.Codec`: classical codecs with integer quality
knobs (``codec.integer_rate`` true: bisection over integers, closest achievable point returned)
and learned codecs with the continuous slider u ∈ [0, 1] (docs/methods.md §5).  It relies only on
the documented monotonicity of the knob (``Codec.rate_increasing``); when an observation
contradicts it (libwebp/libjxl have rare one-step inversions) the search keeps going on the
bracket it has and still returns the closest point it saw, with the bpp actually reached.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import numpy as np

from ..codecs.base import Codec, EncodeParams, EncodeResult, ProgressFn
from ..errors import LicError


def _is_integer_knob(codec: Codec) -> bool:
    return bool(getattr(codec, "integer_rate", False))


def encode_at_target_bpp(codec: Codec, image: np.ndarray, target_bpp: float,
                         params_template: Optional[EncodeParams] = None, tol: float = 0.02,
                         max_iter: Optional[int] = None,
                         history: Optional[list[tuple[float, float]]] = None,
                         progress: Optional[ProgressFn] = None,
                         ) -> tuple[EncodeResult, float]:
    """Find the knob value whose encoding of ``image`` is closest to ``target_bpp``.

    Returns ``(result, reached_bpp)``.  Stops as soon as ``|bpp − target| ≤ tol·target``; an
    integer knob stops when the bracket is one step wide (the closer end wins); a continuous knob
    after ``max_iter`` halvings (default 24 after the two end points).  Targets outside the
    codec's range return the end point (lowest or highest rate) with the bpp it reaches.
    ``history`` (if given) receives every ``(rate, bpp)`` tried, in order.  ``progress`` (if
    given) hears about every trial and is handed to each encode, so raising
    :class:`~lic_core.errors.CancelledError` from it stops the search.
    """
    if not (target_bpp > 0 and math.isfinite(target_bpp)):
        raise LicError(f"target bpp must be a positive number, got {target_bpp}")
    template = params_template if params_template is not None else EncodeParams(
        rate=codec.default_rate)
    integer = _is_integer_knob(codec)
    lo, hi = (float(v) for v in codec.rate_range)
    if integer:
        lo, hi = float(math.ceil(lo)), float(math.floor(hi))
    # t is the knob re-oriented so that bigger t means more bits.
    sign = 1.0 if codec.rate_increasing else -1.0
    t_lo, t_hi = (lo, hi) if sign > 0 else (-hi, -lo)
    if max_iter is None:
        max_iter = (int(math.ceil(math.log2(max(hi - lo, 1.0)))) + 4) if integer else 24

    tried: dict[float, EncodeResult] = {}
    best: list = [None]  # (abs error, result)
    budget = max_iter + 2  # the two end points, then the halvings

    def run(t: float) -> EncodeResult:
        if t in tried:
            return tried[t]
        step = len(tried) + 1
        inner = None
        if progress is not None:
            start = min(0.95, (step - 1) / budget)
            progress(start, f"search step {step}: rate {sign * t:g}")

            def inner(f: float, msg: str, start=start, step=step) -> None:
                progress(min(0.95, start + f / budget), f"search step {step}: {msg}")
        res = codec.encode(image, replace(template, rate=sign * t), inner)
        tried[t] = res
        if history is not None:
            history.append((sign * t, res.bpp))
        err = abs(res.bpp - target_bpp)
        if best[0] is None or err < best[0][0]:
            best[0] = (err, res)
        return res

    def done(res: EncodeResult) -> bool:
        return abs(res.bpp - target_bpp) <= tol * target_bpp

    r_lo = run(t_lo)
    if done(r_lo) or r_lo.bpp >= target_bpp:
        return r_lo, r_lo.bpp  # even the lowest rate is at/above the target
    r_hi = run(t_hi)
    if done(r_hi) or r_hi.bpp <= target_bpp:
        return r_hi, r_hi.bpp  # even the highest rate is at/below the target
    a, b = t_lo, t_hi  # invariant (under monotonicity): bpp(a) < target < bpp(b)
    for _ in range(max_iter):
        if integer and b - a <= 1.0:
            break
        mid = math.floor((a + b) / 2.0) if integer else (a + b) / 2.0
        res = run(mid)
        if done(res):
            return res, res.bpp
        if res.bpp < target_bpp:
            a = mid
        else:
            b = mid
    _, res = best[0]
    return res, res.bpp
