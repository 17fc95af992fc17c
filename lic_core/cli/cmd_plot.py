"""``lic plot results/*.json -o rd.png``: RD curves as a PNG (Pillow only).

Published reference curves are drawn dashed by default: those of the dataset the result files
name (``meta.dataset``, written by ``lic eval``), else Kodak; ``--anchors none`` turns them off.
"""
from __future__ import annotations

import argparse
import re

from ..errors import LicError

#: anchors drawn when --anchor-names is not given: one per codec generation, readable together
DEFAULT_ANCHORS = ("jpeg", "webp", "av1", "bpg444", "vtm", "elic")


def anchor_dataset(choice: str, curves: list) -> str | None:
    """The anchor dataset to draw: ``choice``, or for 'auto' the results' own, else kodak."""
    from ..evaluation.anchors import list_anchor_datasets

    if choice.lower() == "none":
        return None
    if choice.lower() != "auto":
        return choice
    known = list_anchor_datasets()
    named = [c.dataset.lower() for c in curves if c.dataset]
    for d in named:
        if d in known:
            return d
    return "kodak" if "kodak" in known else None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="draw rate-distortion curves from lic eval results",
        description="Plot CompressAI-format result files (from `lic eval`) as RD curves; "
                    "published anchors are drawn dashed.")
    p.add_argument("results", nargs="*", help="result JSON files (ours: solid lines)")
    p.add_argument("--anchors", default="auto", metavar="DATASET",
                   help="published reference curves to draw dashed: a dataset (e.g. kodak), "
                        "'none', or 'auto' (default: the results' dataset, else kodak)")
    p.add_argument("--anchor-names", default=None, metavar="A,B,...",
                   help="which anchors (file stems in lic_core/assets/anchors/DATASET; "
                        f"default {','.join(DEFAULT_ANCHORS)}; 'all' = every one)")
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
    dataset = anchor_dataset(args.anchors, curves)
    if dataset:
        if args.anchor_names is None:
            names = list(DEFAULT_ANCHORS)
        elif args.anchor_names.strip().lower() == "all":
            names = None
        else:
            names = [n.strip() for n in args.anchor_names.split(",")]
        metrics = ["psnr", "ms-ssim", "lpips"] if args.metric == "all" else [args.metric]
        seen = set()
        for m in metrics:
            for c in load_anchors(dataset, m, names=names):
                if c.source not in seen:
                    seen.add(c.source)
                    curves.append(c)
    if not curves:
        raise LicError("nothing to plot: give result files (or --anchors DATASET)")
    xlim = (0.0, args.xmax) if args.xmax else None
    out = save_rd_plot(curves, args.output, metric=args.metric,
                       size=_size(args.size, args.metric), title=args.title, xlim=xlim)
    print(f"wrote {out} ({len(curves)} curves)")
    return 0
