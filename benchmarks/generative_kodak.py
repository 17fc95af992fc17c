"""The Kodak table of the generative decoders (issue 13): bpp, PSNR, MS-SSIM, LPIPS per slider
point for our MSE decoder and our diffusion decoder on the **same bitstreams**, for hific-small,
and HiFiC's published points — with the installed weights.

    python benchmarks/generative_kodak.py [--kodak ../shared/data/kodak] [--limit N]
        [--rates 0,0.2,0.4,0.6,0.8,1] [--codec lic-lgem-cpu] [--threads 1]
        [--out benchmarks/results/generative_kodak.json]

Each row that has no weights here is skipped with the reason (the campaign's ``--stage
diffusion`` / ``--stage hific`` train them, docs/training.md). Writes the JSON and a markdown
table beside it (``.md``). The same evaluation fills the campaign's model cards
(:func:`lic_core.evaluation.generative.evaluate_decoders`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "generative_kodak.json"


def main(argv=None) -> int:
    from lic_core.codecs import get_codec
    from lic_core.evaluation.generative import (
        DEFAULT_US,
        evaluate_decoders,
        kodak_table_md,
        published_hific,
    )
    from lic_core.paths import shared_dir
    from lic_core.threads import apply_threads

    shared = shared_dir() or Path(os.environ.get("LIC_SHARED_DIR", ROOT.parent / "shared"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kodak", default=str(Path(shared) / "data" / "kodak"))
    p.add_argument("--limit", type=int, default=None, help="first N images (default all)")
    p.add_argument("--rates", default=",".join(f"{u:g}" for u in DEFAULT_US))
    p.add_argument("--codec", default=None,
                   help="our learned codec (default: the first shipped one with a diffusion "
                        "decoder, else the first shipped one)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    apply_threads(args.threads)
    us = [float(v) for v in args.rates.split(",")]
    if not Path(args.kodak).is_dir():
        print(f"Kodak folder not found: {args.kodak}")
        return 0
    rows, skipped, meta = {}, {}, {}
    if args.codec is None:
        from lic_core.codecs import PREFERRED_LEARNED

        avail = [n for n in PREFERRED_LEARNED if get_codec(n).available()[0]]
        with_diffusion = [n for n in avail if "diffusion" in get_codec(n).decoders]
        args.codec = (with_diffusion or avail or list(PREFERRED_LEARNED))[0]
    ours = get_codec(args.codec)
    ok, why = ours.available()
    if not ok:
        skipped[args.codec] = why
    else:
        decs = ("mse", "diffusion") if "diffusion" in ours.decoders else ("mse",)
        if "diffusion" not in decs:
            skipped[f"{args.codec} diffusion decoder"] = (
                "no trained diffusion decoder (tools/campaign.sh --stage diffusion)")
        t0 = time.perf_counter()
        ev = evaluate_decoders(ours, args.kodak, us, decs, args.limit)
        meta[args.codec] = {"images": ev["images"], "steps": ev["steps"], "seed": ev["seed"],
                            "seconds": round(time.perf_counter() - t0, 1)}
        rows[f"{args.codec} MSE decoder"] = ev["points"]["mse"]
        if "diffusion" in ev["points"]:
            rows[f"{args.codec} diffusion decoder"] = ev["points"]["diffusion"]
    hific = get_codec("hific-small")
    ok, why = hific.available()
    if not ok:
        skipped["hific-small"] = why
    else:
        t0 = time.perf_counter()
        ev = evaluate_decoders(hific, args.kodak, us, ("gan",), args.limit)
        meta["hific-small"] = {"images": ev["images"], "seconds": round(time.perf_counter() - t0, 1)}
        rows["hific-small"] = ev["points"]["gan"]
    pub = published_hific()
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    table = kodak_table_md(rows, pub)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "published_hific": pub, "skipped": skipped,
                               "meta": meta, "rates": us}, indent=1) + "\n")
    out.with_suffix(".md").write_text(table)
    print(f"wrote {out} and {out.with_suffix('.md').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
