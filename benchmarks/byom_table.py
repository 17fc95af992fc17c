"""The docs/compressai.md table ("Speed and size on Kodak") from saved benchmark results.

Reads ``benchmarks/results/byom_exact_ARCH.json`` (``benchmarks/byom_exact.py``) and
``benchmarks/results/determinism_NAME.json`` (``benchmarks/determinism.py --model NAME``) and
prints one Markdown row per architecture, so the table in the docs is the measured numbers and
nothing else:

    python benchmarks/byom_table.py [--results benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURES = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018")
HEADER = ("| architecture (checkpoints) | CompressAI float: bpp / dB | exact: bpp streams (file) / dB "
          "| BD-rate exact vs CompressAI: streams (file) | encode s: CompressAI → exact (float) "
          "| decode s: CompressAI → exact (float) | determinism matrix |\n"
          "|---|---|---|---|---|---|---|")


def _pct(bd: dict, key: str) -> str:
    v = bd.get(key, {}).get("bd_rate_pct")
    return "—" if v is None else f"{v:+.2f} %"


def row(arch: str, result: dict, determinism: dict | None) -> str:
    """One Markdown row: the mean over the images of each rate point, points joined by ' · '."""
    (name, model), = result["models"].items()
    pts = [p["means"] for p in model["points"]]
    n_img = len(result.get("images", []))

    def join(fmt) -> str:
        return " · ".join(fmt(p) for p in pts)

    ca = join(lambda p: f"{p['compressai']['bpp']:.3f} / {p['compressai']['psnr']:.2f}")
    ex = join(lambda p: f"{p['exact']['stream_bpp']:.3f} ({p['exact']['bpp']:.3f}) / "
                        f"{p['exact']['psnr']:.2f}")
    bd = model.get("bd_rate_vs_compressai", {})
    enc = join(lambda p: f"{p['compressai']['encode_s']:.2f} → {p['exact']['encode_s']:.2f} "
                         f"({p['float']['encode_s']:.2f})")
    dec = join(lambda p: f"{p['compressai']['decode_s']:.2f} → {p['exact']['decode_s']:.2f} "
                         f"({p['float']['decode_s']:.2f})")
    if determinism is None:
        det = "not run"
    else:
        s = determinism["summary"]
        det = f"{s['bit_exact']}/{s['files']} ({s['bit_exact_pct']:.0f} %)"
    return (f"| {arch} ({name}, {len(pts)} points, {n_img} images) | {ca} | {ex} | "
            f"{_pct(bd, 'exact_streams')} ({_pct(bd, 'exact_file')}) | {enc} | {dec} | {det} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    print(HEADER)
    for arch in ARCHITECTURES:
        path = args.results / f"byom_exact_{arch}.json"
        if not path.exists():
            print(f"| {arch} | not measured | | | | | |")
            continue
        result = json.loads(path.read_text())
        (name, _), = result["models"].items()
        det_path = args.results / f"determinism_{name}.json"
        det = json.loads(det_path.read_text()) if det_path.exists() else None
        print(row(arch, result, det))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
