"""Learning curves of the capacity study: a saturating power law, its extrapolation with an
honest spread, and the decision it supports (issue 27 item 2, ``benchmarks/capacity_study.py``).

The model is ``q(t) = q_inf − b·t^(−c)`` (quality ``q``, e.g. BD-PSNR vs JPEG in dB, after ``t``
CPU-hours): the usual form of a learning curve that approaches a ceiling (Hestness et al., 2017,
"Deep learning scaling is predictable, empirically"; Kaplan et al., 2020). For a fixed exponent
``c`` the model is linear in ``(q_inf, b)``, so the fit is a least-squares solve per ``c`` on a
geometric grid and the best ``c`` wins: numpy only, deterministic, no starting point to choose.

Extrapolating ten times beyond the measured horizon (2 → 20 CPU-hours) is uncertain, and the fit
says so by the spread of several honest alternatives rather than by one number:

* the *profile* over ``c``: every exponent whose residual sum of squares is within the 95 % F
  bound of the best (``SSE(c) ≤ SSE_min·(1 + F(1, n−3)/(n−3))``) — what the data cannot tell
  apart;
* *leave-last-point-out*: the curve without its newest point (and how far it misses that point:
  a direct measure of extrapolation error, reported as ``holdout_error``);
* the *last half* of the points (the early transient need not follow the law);
* *jackknife*: each point left out once.

The interval at the target is the range of all their predictions. With fewer than
:data:`MIN_FIT_POINTS` points there is no fit; with fewer than :data:`MIN_EXTRAP_POINTS` there is
no interval, and :func:`decide` says "undecided".
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

#: three parameters and at least one residual degree of freedom
MIN_FIT_POINTS = 4
#: the leave-last-out fit needs MIN_FIT_POINTS of its own
MIN_EXTRAP_POINTS = MIN_FIT_POINTS + 1
#: exponents tried: from nearly logarithmic growth (c → 0) to a fast saturation
C_GRID = np.geomspace(0.02, 4.0, 400)


class TooFewPoints(ValueError):
    """Not enough measured points for a fit (or for an interval)."""


@dataclass(frozen=True)
class PowerLaw:
    """``q(t) = q_inf − b·t^(−c)`` fitted to ``n`` points with residual ``rmse``."""

    q_inf: float
    b: float
    c: float
    rmse: float
    n: int

    def __call__(self, t: float | np.ndarray) -> float | np.ndarray:
        return self.q_inf - self.b * np.power(t, -self.c)

    def as_dict(self) -> dict:
        return asdict(self)


def _clean(t: Sequence[float], q: Sequence[Optional[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Finite points with t > 0, sorted by t (a validation without a BD figure is dropped)."""
    pts = sorted((float(a), float(b)) for a, b in zip(t, q)
                 if b is not None and math.isfinite(a) and math.isfinite(b) and a > 0)
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def _solve(t: np.ndarray, q: np.ndarray, c: float) -> tuple[float, float, float]:
    """(q_inf, b, SSE) of the linear least-squares fit at a fixed exponent ``c``."""
    A = np.stack([np.ones_like(t), -np.power(t, -c)], axis=1)
    coef, *_ = np.linalg.lstsq(A, q, rcond=None)
    r = q - A @ coef
    return float(coef[0]), float(coef[1]), float(r @ r)


def _profile(t: np.ndarray, q: np.ndarray, grid: np.ndarray) -> list[tuple[float, float, float,
                                                                          float]]:
    """(c, q_inf, b, SSE) at every exponent of the grid."""
    return [(float(c), *_solve(t, q, float(c))) for c in grid]


def fit_power_law(t: Sequence[float], q: Sequence[Optional[float]],
                  grid: np.ndarray = C_GRID) -> PowerLaw:
    """The least-squares saturating power law through (t, q); :class:`TooFewPoints` below
    :data:`MIN_FIT_POINTS` usable points."""
    tt, qq = _clean(t, q)
    if len(tt) < MIN_FIT_POINTS:
        raise TooFewPoints(f"{len(tt)} usable points, a fit needs {MIN_FIT_POINTS}")
    for _ in range(3):  # zoom in around the best exponent: the grid's step would bias c
        prof = _profile(tt, qq, grid)
        i = min(range(len(prof)), key=lambda k: prof[k][3])
        grid = np.linspace(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)], 41)
    c, q_inf, b, sse = prof[i]
    return PowerLaw(q_inf, b, c, math.sqrt(sse / len(tt)), len(tt))


def _f95(dof: int) -> float:
    """95 % quantile of F(1, dof) (scipy is a dependency of lic_core; the table is a fallback)."""
    try:
        from scipy.stats import f

        return float(f.ppf(0.95, 1, dof))
    except ImportError:  # pragma: no cover - scipy ships with the package
        table = {1: 161.4, 2: 18.51, 3: 10.13, 4: 7.71, 5: 6.61, 6: 5.99, 7: 5.59, 8: 5.32}
        return table.get(dof, 4.0)


def profile_range(t: Sequence[float], q: Sequence[Optional[float]], target: float,
                  grid: np.ndarray = C_GRID) -> tuple[float, float]:
    """Range of q(target) over the exponents the data cannot tell apart (95 % F bound)."""
    tt, qq = _clean(t, q)
    prof = _profile(tt, qq, grid)
    sse_min = min(r[3] for r in prof)
    dof = len(tt) - 3
    # a perfect fit (SSE ≈ 0) admits only its own exponent, up to rounding
    limit = sse_min * (1.0 + _f95(dof) / dof) + 1e-12 * max(1.0, float(qq @ qq))
    preds = [q_inf - b * target ** (-c) for c, q_inf, b, sse in prof if sse <= limit]
    return min(preds), max(preds)


def _variants(tt: np.ndarray, qq: np.ndarray, grid: np.ndarray) -> dict[str, PowerLaw]:
    """The alternative fits whose spread is the extrapolation's uncertainty."""
    n = len(tt)
    out = {"leave_last_out": fit_power_law(tt[:-1], qq[:-1], grid)}
    half = max(MIN_FIT_POINTS, (n + 1) // 2)
    if half < n:
        out["last_half"] = fit_power_law(tt[-half:], qq[-half:], grid)
    for i in range(n - 1):  # the last one is leave_last_out
        keep = np.arange(n) != i
        out[f"jackknife_{i}"] = fit_power_law(tt[keep], qq[keep], grid)
    return out


def extrapolate(t: Sequence[float], q: Sequence[Optional[float]], target: float,
                grid: np.ndarray = C_GRID) -> dict:
    """The fit's prediction at ``target`` with its interval (module docstring).

    Returns ``{"pred", "lo", "hi", "fit", "variants", "holdout_error", "horizon", "n"}``; with
    too few points ``{"pred": None, "reason": ...}`` (never a made-up number)."""
    tt, qq = _clean(t, q)
    if len(tt) < MIN_EXTRAP_POINTS:
        return {"pred": None, "n": len(tt),
                "reason": f"{len(tt)} usable points; an extrapolation with an interval needs "
                          f"{MIN_EXTRAP_POINTS}"}
    fit = fit_power_law(tt, qq, grid)
    variants = _variants(tt, qq, grid)
    preds = [float(fit(target))] + [float(v(target)) for v in variants.values()]
    preds += list(profile_range(tt, qq, target, grid))
    llo = variants["leave_last_out"]
    return {"pred": float(fit(target)), "lo": min(preds), "hi": max(preds), "n": len(tt),
            "fit": fit.as_dict(), "horizon": float(tt[-1]), "target": float(target),
            "holdout_error": float(llo(tt[-1]) - qq[-1]),
            "variants": {k: float(v(target)) for k, v in variants.items()}}


def decide(preds: dict[str, dict], target: float, baseline: str,
           excluded: Optional[dict[str, str]] = None, unit: str = "dB") -> dict:
    """Which arm the extrapolations favour at ``target`` CPU-hours.

    ``preds``: arm → :func:`extrapolate`'s result; ``excluded``: arm → why it may not win (e.g.
    its exact decode would exceed 2× the baseline's). An arm is *ahead* only when its whole
    interval lies above every other eligible arm's; otherwise the answer is "undecided".
    Returns ``{"winner", "margin", "line"}``."""
    excluded = excluded or {}
    missing = [a for a, p in preds.items() if p.get("pred") is None]
    if missing:
        why = "; ".join(f"{a}: {preds[a].get('reason', 'no fit')}" for a in missing)
        return {"winner": None, "margin": None, "line": f"undecided: {why}"}
    eligible = {a: p for a, p in preds.items() if a not in excluded}
    notes = "".join(f"; {a} excluded ({why})" for a, why in excluded.items() if a in preds)
    if len(eligible) < 2:
        only = next(iter(eligible), baseline)
        return {"winner": only if eligible else None, "margin": None,
                "line": f"no comparison at {target:g} CPU-h: only {only} is eligible{notes}"}
    best = max(eligible, key=lambda a: eligible[a]["pred"])
    others = [a for a in eligible if a != best]
    second = max(others, key=lambda a: eligible[a]["pred"])
    margin = eligible[best]["pred"] - eligible[second]["pred"]
    iv = " vs ".join(f"{a} [{eligible[a]['lo']:+.2f}, {eligible[a]['hi']:+.2f}]"
                     for a in [best, *others])
    if all(eligible[best]["lo"] > eligible[a]["hi"] for a in others):
        return {"winner": best, "margin": margin,
                "line": f"at {target:g} CPU-h {best} is predicted ahead of {second} by "
                        f"{margin:.2f} {unit} (intervals {iv}){notes}"}
    return {"winner": None, "margin": margin,
            "line": f"undecided at {target:g} CPU-h: {best} leads {second} by {margin:.2f} {unit} "
                    f"but the intervals overlap ({iv}){notes}"}
