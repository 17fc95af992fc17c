"""``lic plot results/*.json [--anchors kodak] -o rd.png``: RD curves as a PNG (Pillow only)."""
from __future__ import annotations

import argparse
import re

from ..errors import LicError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="draw rate-distortion curves from lic eval results",
        description="Plot CompressAI-format result files (from `lic eval`) as RD curves; "
                    "published anchors are drawn dashed.")
    p.add_argument("results", nargs="*", help="result JSON files (ours: solid lines)")
    p.add_argument("--anchors", default=None, metavar="DATASET",
                   help="add published reference curves of DATASET (e.g. kodak)")
    p.add_argument("--anchor-names", default=None, metavar="A,B,...",
                   help="only these anchors (file stems in lic_core/assets/anchors/DATASET, "
                        "e.g. jpeg,webp,vtm,elic)")
    p.add_argument("--metric", default="psnr", choices=("psnr", "ms-ssim", "lpips", "all"),
                   help="y axis (default psnr; all = one panel per metric)")
    p.add_argument("-o", "--output", default="rd.png", help="output PNG (default rd.png)")
    p.add_argument("--size", default=None, metavar="WxH",
                   help="image size in pixels (default 1200x800, 1800x600 for --metric all)")
    p.add_argument("--xmax", type=float, default=None, help="right end of the bpp axis")
    p.add_argument("--title", default=None, help="plot title")
    p.set_defaults(func=run)


def _size(text: str | None, metric: str) -> tuple[int, int]:
    if text is None:
        return (1800, 600) if metric == "all" else (1200, 800)
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise LicError(f"--size: expected WxH (e.g. 1200x800), got '{text}'")
    return int(m.group(1)), int(m.group(2))


def run(args: argparse.Namespace) -> int:
    from ..evaluation.anchors import load_anchors, load_curve
    from ..evaluation.plot import save_rd_plot

    curves = [load_curve(p) for p in args.results]
    for c in curves:
        c.kind = "ours"
    if args.anchors:
        names = [n.strip() for n in args.anchor_names.split(",")] if args.anchor_names else None
        metrics = ["psnr", "ms-ssim", "lpips"] if args.metric == "all" else [args.metric]
        seen = set()
        for m in metrics:
            for c in load_anchors(args.anchors, m, names=names):
                if c.source not in seen:
                    seen.add(c.source)
                    curves.append(c)
    if not curves:
        raise LicError("nothing to plot: give result files and/or --anchors DATASET")
    xlim = (0.0, args.xmax) if args.xmax else None
    out = save_rd_plot(curves, args.output, metric=args.metric,
                       size=_size(args.size, args.metric), title=args.title, xlim=xlim)
    print(f"wrote {out} ({len(curves)} curves)")
    return 0
