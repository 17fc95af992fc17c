"""Bjøntegaard delta rate (BD-rate) and delta distortion (BD-PSNR).

G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves", VCEG-M33, 2001,
and the piecewise-cubic revision used by the JCT-VC/JVET CTC spreadsheets and RDPlot's ``BD.py``
(VCEG-AL22 / JCTVC-B055 style):

* BD-rate: interpolate ``log10(rate)`` as a function of the distortion for each curve, integrate
  both over the **overlapping** distortion interval ``[max(min D_a, min D_b), min(max D_a, max
  D_b)]``, take the mean difference ``Δ = (∫ log R_b − ∫ log R_a) / (D_hi − D_lo)`` and report
  ``(10^Δ − 1) · 100`` percent. Negative: curve *b* needs fewer bits than *a* at equal quality.
* BD-PSNR (BD-distortion): the same with the axes swapped (distortion as a function of
  ``log10(rate)``, integrated over the overlapping log-rate interval); positive: *b* has higher
  values at equal rate (for PSNR/MS-SSIM-dB "better"; for LPIPS, where lower is better,
  negative means better).

``method="pchip"`` (default) is the monotone piecewise cubic Hermite interpolant (Fritsch–
Carlson slopes with the non-centred, shape-preserving end conditions); for four points it is the
same polynomial pieces as the CTC spreadsheet's ``bdRIntEnc`` macro and the ``bjontegaard``
package's "pchip" method. Points are sorted by the interpolation abscissa. ``method="poly"`` is
the classic VCEG-M33 least-squares cubic (needs ≥ 4 points). Both take any distortion axis
that is a function along the curve (PSNR, MS-SSIM in dB, LPIPS).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..errors import LicError

METHODS = ("pchip", "poly")


class BDRateError(LicError):
    """BD-rate is undefined for these curves (too few points, no overlap, bad rates)."""


def _prepare(rate: Sequence[float], dist: Sequence[float], label: str,
             min_points: int) -> Tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64).ravel()
    d = np.asarray(dist, dtype=np.float64).ravel()
    if r.shape != d.shape:
        raise BDRateError(f"curve {label}: {r.size} rates but {d.size} distortion values")
    if r.size < min_points:
        raise BDRateError(f"curve {label}: needs at least {min_points} RD points, has {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(d))):
        raise BDRateError(f"curve {label}: rates and distortions must be finite numbers")
    if np.any(r <= 0):
        raise BDRateError(f"curve {label}: rates must be positive (log-rate axis)")
    return np.log10(r), d


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str,
              label: str) -> float:
    """∫_lo^hi f where f interpolates (x, y) (pchip) or is the LSQ cubic in x (poly)."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if method == "pchip":
        if np.any(np.diff(x) <= 0):
            raise BDRateError(f"curve {label}: repeated values on the interpolation axis")
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(x, y, extrapolate=False).integrate(lo, hi))
    coeffs = np.polyfit(x, y, 3)
    antideriv = np.polyint(coeffs)
    return float(np.polyval(antideriv, hi) - np.polyval(antideriv, lo))


def _mean_gap(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray,
              method: str, axis: str) -> float:
    """Mean of (f_b − f_a) over the overlapping interval of the x values."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    lo = max(xa.min(), xb.min())
    hi = min(xa.max(), xb.max())
    if not hi > lo:
        raise BDRateError(f"the two RD curves do not overlap in {axis}")
    ia = _integral(xa, ya, lo, hi, method, "a")
    ib = _integral(xb, yb, lo, hi, method, "b")
    return (ib - ia) / (hi - lo)


def bd_rate(rate_a: Sequence[float], dist_a: Sequence[float], rate_b: Sequence[float],
            dist_b: Sequence[float], method: str = "pchip") -> float:
    """BD-rate of curve *b* against reference *a*, in percent (negative = *b* saves bits).

    ``rate_*`` in any positive unit (bpp, kbps), ``dist_*`` on the quality axis (PSNR dB,
    MS-SSIM dB, LPIPS...). Raises :class:`BDRateError` when undefined.
    """
    n = 4 if method == "poly" else 2
    la, da = _prepare(rate_a, dist_a, "a", n)
    lb, db = _prepare(rate_b, dist_b, "b", n)
    gap = _mean_gap(da, la, db, lb, method, "distortion")
    return float((10.0 ** gap - 1.0) * 100.0)


def bd_psnr(rate_a: Sequence[float], dist_a: Sequence[float], rate_b: Sequence[float],
            dist_b: Sequence[float], method: str = "pchip") -> float:
    """BD-PSNR (BD-distortion) of *b* vs *a*: mean ``dist_b − dist_a`` at equal rate, in the
    units of ``dist`` (dB for PSNR). Integrated over the overlapping ``log10(rate)`` interval."""
    n = 4 if method == "poly" else 2
    la, da = _prepare(rate_a, dist_a, "a", n)
    lb, db = _prepare(rate_b, dist_b, "b", n)
    return float(_mean_gap(la, da, lb, db, method, "rate"))


# The same quantity under a metric-neutral name (BD-MS-SSIM, BD-LPIPS ...).
bd_distortion = bd_psnr
