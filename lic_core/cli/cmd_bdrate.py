"""``lic bdrate results/*.json --reference NAME [--metric psnr|ms-ssim|lpips]``.

Prints the Bjøntegaard delta rate (and delta quality) of every curve against the reference
curve, from CompressAI-format result files (``{"name", "results": {"bpp", "psnr-rgb",
"ms-ssim-rgb" | "ms-ssim-db-rgb", "lpips"}}``, as ``lic eval`` writes and ../shared/anchors
holds). MS-SSIM is compared in dB (``−10·log10(1 − MS-SSIM)``, as CompressAI plots it); LPIPS on
its own scale (lower is better, so a *negative* BD-LPIPS is better).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import LicError

QUALITY_UNITS = {"psnr": "BD-PSNR (dB)", "ms-ssim": "BD-MS-SSIM (dB)", "lpips": "BD-LPIPS"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bdrate", help="BD-rate table of RD curves against a reference curve",
        description="Bjøntegaard delta rate of every curve vs --reference (negative = fewer "
                    "bits at equal quality), from CompressAI-format result JSON files.")
    p.add_argument("results", nargs="*", help="result JSON files (lic eval output, anchors)")
    p.add_argument("--reference", "-r", required=True, metavar="NAME",
                   help="reference curve: its 'name' field, file stem, or a JSON path")
    p.add_argument("--metric", default="psnr", choices=("psnr", "ms-ssim", "lpips"),
                   help="quality axis (default psnr)")
    p.add_argument("--method", default="pchip", choices=("pchip", "poly"),
                   help="pchip: piecewise cubic (CTC/RDPlot, default); poly: VCEG-M33 cubic fit")
    p.add_argument("--anchors", default=None, metavar="DATASET",
                   help="also include the published anchors of DATASET (e.g. kodak)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=run)


def _axis(values: List[float], metric: str) -> List[float]:
    if metric == "ms-ssim":  # dB, as CompressAI's ms-ssim plots; 1.0 would be +inf
        return [-10.0 * math.log10(max(1.0 - v, 1e-12)) for v in values]
    return list(values)


def _find_reference(curves, ref: str):
    p = Path(ref)
    if p.suffix.lower() == ".json" and p.is_file():
        for c in curves:
            if Path(c.source).resolve() == p.resolve():
                return c, False
        from ..evaluation.anchors import load_curve

        return load_curve(p), True
    # Exact name, then file stem, then the same case-insensitively.
    keys = (lambda c: c.name, lambda c: Path(c.source).stem,
            lambda c: c.name.lower(), lambda c: Path(c.source).stem.lower())
    for i, key in enumerate(keys):
        want = ref if i < 2 else ref.lower()
        hits = [c for c in curves if key(c) == want]
        if len(hits) == 1:
            return hits[0], False
        if len(hits) > 1:
            raise LicError(f"--reference '{ref}' is ambiguous ({len(hits)} curves); "
                           "give the file path")
    names = ", ".join(sorted({c.name for c in curves})) or "none"
    raise LicError(f"no curve named '{ref}' (have: {names})")


def bd_table(curves, reference, metric: str, method: str
             ) -> List[Tuple[str, int, Optional[float], Optional[float], str]]:
    """Rows ``(name, points, BD-rate %, BD-quality, note)`` of each curve vs ``reference``."""
    from ..evaluation.bdrate import bd_psnr, bd_rate

    rr, rd = reference.points(metric)
    rd = _axis(rd, metric)
    rows = []
    for c in curves:
        if c is reference:
            rows.append((c.name, len(c.bpp), 0.0, 0.0, "reference"))
            continue
        if not c.has(metric):
            rows.append((c.name, len(c.bpp), None, None, f"no {metric} values"))
            continue
        cr, cd = c.points(metric)
        cd = _axis(cd, metric)
        try:
            rate = bd_rate(rr, rd, cr, cd, method=method)
            qual = bd_psnr(rr, rd, cr, cd, method=method)
            rows.append((c.name, len(cr), rate, qual, ""))
        except LicError as exc:
            rows.append((c.name, len(cr), None, None, str(exc)))
    return rows


def run(args: argparse.Namespace) -> int:
    from ..evaluation.anchors import load_anchors, load_curve

    curves = [load_curve(p) for p in args.results]
    if args.anchors:
        curves += load_anchors(args.anchors, args.metric)
    if not curves:
        raise LicError("no curves: give result JSON files and/or --anchors DATASET")
    reference, extra = _find_reference(curves, args.reference)
    if extra:
        curves.insert(0, reference)
    if not reference.has(args.metric):
        raise LicError(f"reference '{reference.name}' has no {args.metric} values")
    rows = bd_table(curves, reference, args.metric, args.method)
    # Same name twice (e.g. an mse and an ms-ssim model): tell them apart by file stem.
    names = [r[0] for r in rows]
    rows = [(f"{r[0]} [{Path(c.source).stem}]" if names.count(r[0]) > 1 else r[0], *r[1:])
            for r, c in zip(rows, curves)]
    if args.json:
        print(json.dumps({"reference": reference.name, "metric": args.metric,
                          "method": args.method,
                          "rows": [{"name": n, "points": k, "bd_rate": r, "bd_quality": q,
                                    "note": note} for n, k, r, q, note in rows]}, indent=2))
        return 0
    qhead = QUALITY_UNITS[args.metric]
    width = max(12, *(len(n) for n, *_ in rows))
    print(f"BD-rate vs '{reference.name}' ({args.metric}, {args.method}); "
          "negative BD-rate = fewer bits at equal quality")
    print(f"{'curve':<{width}}  {'pts':>3}  {'BD-rate (%)':>11}  {qhead:>16}  note")
    q_fmt = ".4f" if args.metric == "lpips" else ".3f"
    for name, k, rate, qual, note in rows:
        r_txt = "n/a" if rate is None else f"{rate:+.2f}"
        q_txt = "n/a" if qual is None else f"{qual:+{q_fmt}}"
        print(f"{name:<{width}}  {k:>3}  {r_txt:>11}  {q_txt:>16}  {note}")
    return 0
