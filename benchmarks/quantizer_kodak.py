"""Quantizers on Kodak: BD-rate of {round, dead-zone, RDOQ, TCQ} × {before, after fine-tuning}.

Issue "TCQ + fine-tuning" benchmark: all at matched slider points, BD-rate (PSNR, pchip) against
plain rounding before fine-tuning, plus the encode time TCQ adds on this machine's CPU threads
(and on GPU when one is present — the trellis itself runs in NumPy on the CPU).

    python benchmarks/quantizer_kodak.py [--codec lic-lgem-preview] [--limit 24]
        [--rates 0.1,0.3,0.5,0.7,0.9] [--threads 2]

"after fine-tuning" rows appear for every quantizer with a lic_core/assets/weights/<codec>-ft-<q>.safetensors file.
Writes benchmarks/results/quantizer_kodak_<codec>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    ap.add_argument("--codec", default="lic-lgem-preview")
    ap.add_argument("--rates", default="0.1,0.3,0.5,0.7,0.9")
    ap.add_argument("--quantizers", default="round,deadzone,rdoq,tcq")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from lic_core.codecs import EncodeParams
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.evaluation.bdrate import bd_rate
    from lic_core.image import load_image
    from lic_core.metrics import psnr
    from lic_core.paths import finetuned_path

    images = [load_image(p) for p in sorted(Path(args.kodak).glob("*.png"))[: args.limit or None]]
    if not images:
        print(f"no images under {args.kodak}", file=sys.stderr)
        return 2
    rates = [float(r) for r in args.rates.split(",")]
    variants = [("before", False)]
    if any(finetuned_path(args.codec, q).is_file() for q in args.quantizers.split(",")):
        variants.append(("after", True))
    curves: dict[str, dict] = {}
    for label, use_ft in variants:
        codec = LearnedCodec(args.codec, use_finetuned=use_ft)
        for q in args.quantizers.split(","):
            if use_ft and not finetuned_path(args.codec, q).is_file():
                continue
            key = f"{q}/{label}"
            pts = {"bpp": [], "psnr": [], "encode_s": []}
            for u in rates:
                bpp, ps, te = [], [], []
                for img in images:
                    t0 = time.perf_counter()
                    r = codec.encode(img, EncodeParams(rate=u, quantizer=q))
                    te.append(time.perf_counter() - t0)
                    bpp.append(r.bpp)
                    ps.append(psnr(img, r.reconstruction))
                pts["bpp"].append(float(np.mean(bpp)))
                pts["psnr"].append(float(np.mean(ps)))
                pts["encode_s"].append(float(np.mean(te)))
                print(f"{key:16s} u={u:.2f} {pts['bpp'][-1]:.4f} bpp {pts['psnr'][-1]:.2f} dB "
                      f"enc {pts['encode_s'][-1]:.2f}s", flush=True)
            curves[key] = pts
    ref = curves["round/before"]
    table = {}
    for key, pts in curves.items():
        table[key] = {"bd_rate_percent": bd_rate(ref["bpp"], ref["psnr"], pts["bpp"], pts["psnr"]),
                      "mean_encode_s": float(np.mean(pts["encode_s"]))}
    tcq_extra = None
    if "tcq/before" in table:
        tcq_extra = table["tcq/before"]["mean_encode_s"] - table["round/before"]["mean_encode_s"]
    result = {"codec": args.codec, "images": len(images), "rates": rates, "threads": args.threads,
              "cuda": torch.cuda.is_available(), "curves": curves, "bd_vs_round_before": table,
              "tcq_added_encode_s": tcq_extra}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"quantizer_kodak_{args.codec}.json").write_text(json.dumps(result, indent=1))
    print(f"\nBD-rate (PSNR) vs rounding before fine-tuning, {len(images)} Kodak images:")
    for key, row in table.items():
        print(f"  {key:16s} {row['bd_rate_percent']:+7.2f} %   encode {row['mean_encode_s']:.2f} s")
    if tcq_extra is not None:
        print(f"TCQ adds {tcq_extra:.2f} s per image on {args.threads} CPU threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
