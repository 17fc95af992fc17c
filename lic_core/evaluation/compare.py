"""BD-rate of measured curves against each other or against published anchors.

Thin glue over :func:`lic_core.evaluation.bdrate.bd_rate` (Bjøntegaard 2001, VCEG-M33) and the
:class:`~lic_core.evaluation.anchors.Curve` loaders, so ``lic eval`` results can be compared with
``lic_core/assets/anchors`` in one call.
"""
from __future__ import annotations

import math
from typing import Optional

from ..errors import LicError
from .anchors import Curve, load_anchors, normalize_metric


def _distortion(curve: Curve, metric: str) -> list[float]:
    """Values on an axis where higher is better, as BD-rate expects (MS-SSIM in dB, −LPIPS)."""
    vals = curve.values[metric]
    if metric == "ms-ssim":
        return [-10.0 * math.log10(max(1.0 - v, 1e-12)) for v in vals]
    if metric == "lpips":
        return [-v for v in vals]
    return list(vals)


def bd_rate_curves(test: Curve, reference: Curve, metric: str = "psnr") -> float:
    """BD-rate (percent; negative = ``test`` needs fewer bits) of ``test`` vs ``reference``."""
    from .bdrate import bd_rate

    metric = normalize_metric(metric)
    for c in (test, reference):
        if not c.has(metric):
            raise LicError(f"curve '{c.name}' has no {metric} values")
    return float(bd_rate(reference.bpp, _distortion(reference, metric),
                         test.bpp, _distortion(test, metric)))


def bd_rate_vs_anchor(test: Curve, anchor_id: str, dataset: str = "kodak",
                      metric: str = "psnr") -> float:
    """BD-rate of ``test`` against the published anchor ``lic_core/assets/anchors/DATASET/ID.json``."""
    found = load_anchors(dataset, metric, names=[anchor_id])
    if not found:
        raise LicError(f"no {metric} anchor '{anchor_id}' for dataset '{dataset}'")
    return bd_rate_curves(test, found[0], metric)


def bd_table(tests: list[Curve], references: list[Curve], metric: str = "psnr"
             ) -> dict[str, dict[str, Optional[float]]]:
    """``{test name: {reference name: BD-rate % or None when the curves do not overlap}}``."""
    out: dict[str, dict[str, Optional[float]]] = {}
    for t in tests:
        row: dict[str, Optional[float]] = {}
        for r in references:
            try:
                v = bd_rate_curves(t, r, metric)
                row[r.name] = v if math.isfinite(v) else None
            except (LicError, ValueError):
                row[r.name] = None
        out[t.name] = row
    return out
