"""``lic eval FOLDER --codecs jpeg,webp,...``: RD evaluation (see lic_core.evaluation.run_eval)."""
from __future__ import annotations

import argparse
import sys

from ..errors import LicError


def _floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.replace(":", ",").split(",") if v.strip()]
    except ValueError:
        raise LicError(f"{what}: expected comma-separated numbers, got '{text}'") from None
    if not vals:
        raise LicError(f"{what}: empty list")
    return vals


def parse_rates(items: list[str] | None) -> dict[str, list[float]]:
    """``["10,20,30"]`` → all codecs; ``["jpeg=10,20", "webp=5,50"]`` → per codec."""
    out: dict[str, list[float]] = {}
    for item in items or []:
        for part in item.split(";"):
            if not part.strip():
                continue
            if "=" in part:
                name, vals = part.split("=", 1)
                out[name.strip()] = _floats(vals, f"--rates {name.strip()}")
            else:
                out["*"] = _floats(part, "--rates")
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="rate-distortion evaluation of codecs over an image folder",
        description="Encode every image of FOLDER with each codec at several rate points and "
                    "write CompressAI-format JSON results (one file per codec).")
    p.add_argument("folder", help="folder of images (PNG, JPEG, ...)")
    p.add_argument("--codecs", default="jpeg,webp",
                   help="comma-separated codec names (see `lic models`); default jpeg,webp")
    p.add_argument("--rates", action="append", metavar="[CODEC=]R1,R2,...",
                   help="rate-knob values, for all codecs or per codec (repeatable); default: "
                        "per-codec points spanning ~0.1-2 bpp, 6 slider values for learned")
    p.add_argument("--target-bpp", default=None, metavar="B1,B2,...",
                   help="instead of fixed knobs, search each image's knob for these bpp")
    p.add_argument("--metrics", default="psnr,ms-ssim",
                   help="comma-separated subset of psnr,ms-ssim,lpips (default psnr,ms-ssim)")
    p.add_argument("--out", default="results", help="output folder (default results/)")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes for classical codecs (default 1)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--quantizer", default=None, help="learned codecs: quantizer name")
    p.add_argument("--decoder", default=None, help="learned codecs: mse | diffusion | gan")
    p.add_argument("--no-cache", action="store_true", help="ignore and overwrite OUT/.cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..codecs.base import EncodeParams
    from ..evaluation.run_eval import run_eval

    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    if not codecs:
        raise LicError("--codecs: give at least one codec name")
    if args.jobs < 1:
        raise LicError("--jobs must be >= 1")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    target = _floats(args.target_bpp, "--target-bpp") if args.target_bpp else None
    if target and any(t <= 0 for t in target):
        raise LicError("--target-bpp values must be positive")
    params = EncodeParams(rate=0.0)
    if args.quantizer:
        params.quantizer = args.quantizer
    if args.decoder:
        params.decoder = args.decoder
    written = run_eval(args.folder, codecs, args.out, rates=parse_rates(args.rates),
                       target_bpp=target, metrics=metrics, jobs=args.jobs, limit=args.limit,
                       params=params, use_cache=not args.no_cache, progress=not args.quiet)
    import json

    for name, path in written.items():
        res = json.loads(path.read_text())["results"]
        print(f"{name}: {path}", file=sys.stdout)
        cols = [k for k in ("bpp", "psnr-rgb", "ms-ssim-rgb", "lpips") if k in res]
        print("    " + "  ".join(f"{c:>11}" for c in ["rate"] + cols))
        for j in range(len(res["bpp"])):
            print("    " + "  ".join(f"{res[c][j]:11.4f}" for c in ["rate"] + cols))
    return 0
