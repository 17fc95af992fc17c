"""Kodak evaluation of the HiFiC baseline next to the published HiFiC figures.

For each slider value u it encodes every Kodak image with ``hific-small`` through the common
codec interface (real ``.lic`` bytes, decoder "gan"), decodes the bytes again (checks the round
trip is exact), and measures bpp, PSNR, MS-SSIM and LPIPS(alex) with ``lic_core.metrics``.  The
means per u are printed beside the published HiFiC Lo/Mi/Hi Kodak points
(``../shared/anchors/hific/tfc_models_hific_data.csv``, from tensorflow/compression
models/hific/data.csv) and written in CompressAI's results format.

    python benchmarks/hific_eval.py [--kodak ../shared/data/kodak] [--rates 0,0.25,0.5,0.75,1]
        [--limit N] [--threads 2] [--out benchmarks/results/hific_eval.json]

Without trained weights (``lic_core/assets/weights/hific-small.safetensors``) it prints why and exits 0.
``--random-tiny`` runs the same loop around a randomly initialised tiny model (plumbing check
only: its numbers mean nothing and are not written).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def published_points(csv_path: Path, dataset: str = "kodak") -> list[dict]:
    """The published HiFiC rows for ``dataset`` (bpp, PSNR, MS-SSIM, LPIPS), sorted by bpp."""
    if not csv_path.is_file():
        return []
    rows = []
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            if r.get("dataset") == dataset:
                rows.append({k: float(r[k]) for k in ("bpp", "PSNR", "MS-SSIM", "LPIPS") if r.get(k)})
    return sorted(rows, key=lambda r: r["bpp"])


def _codec(random_tiny: bool):
    from lic_core.codecs.hific import HificCodec

    if not random_tiny:
        return HificCodec()
    import torch

    from lic_core.models.hific import build_hific

    torch.manual_seed(0)
    return HificCodec(model=build_hific("hific-tiny"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kodak", default=str(SHARED / "data" / "kodak"))
    p.add_argument("--anchors", default=str(SHARED / "anchors" / "hific" / "tfc_models_hific_data.csv"))
    p.add_argument("--rates", default="0,0.25,0.5,0.75,1")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-lpips", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hific_eval.json"))
    p.add_argument("--random-tiny", action="store_true", help="plumbing check, numbers meaningless")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from lic_core.codecs.base import EncodeParams
    from lic_core.evaluation.run_eval import list_images, load_rgb
    from lic_core.metrics import compute_metrics

    codec = _codec(args.random_tiny)
    ok, why = codec.available()
    if not ok:
        print(f"hific_eval: skipped: {why}")
        return 0
    if not Path(args.kodak).is_dir():
        print(f"hific_eval: skipped: Kodak folder not found ({args.kodak})")
        return 0
    images = list_images(args.kodak, args.limit)
    rates = [float(r) for r in args.rates.split(",")]
    which = ("psnr", "ms-ssim") if args.no_lpips else ("psnr", "ms-ssim", "lpips")
    per_rate = []
    for u in rates:
        acc = {"bpp": [], "psnr": [], "ms_ssim": [], "lpips": [], "enc_s": [], "dec_s": []}
        for path in images:
            img = load_rgb(path)
            t0 = time.perf_counter()
            res = codec.encode(img, EncodeParams(rate=u, decoder="gan"))
            t1 = time.perf_counter()
            dec = codec.decode(res.data)
            t2 = time.perf_counter()
            if not np.array_equal(dec.reconstruction, res.reconstruction):
                print(f"hific_eval: ROUND TRIP MISMATCH on {path.name} at u={u}")
                return 1
            m = compute_metrics(img, dec.reconstruction, which=which)
            acc["bpp"].append(res.bpp)
            acc["enc_s"].append(t1 - t0)
            acc["dec_s"].append(t2 - t1)
            for k, v in m.items():
                acc[k].append(v)
        per_rate.append({k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()})
        r = per_rate[-1]
        print(f"u={u:.3f}  bpp={r['bpp']:.4f}  PSNR={r['psnr']:.2f}  MS-SSIM={r['ms_ssim']:.4f}  "
              f"LPIPS={r['lpips']:.4f}  enc={r['enc_s']:.2f}s dec={r['dec_s']:.2f}s")
    print("\npublished HiFiC (Mentzer et al. 2020, Kodak; tensorflow/compression data.csv):")
    for row in published_points(Path(args.anchors)):
        print(f"          bpp={row['bpp']:.4f}  PSNR={row.get('PSNR', float('nan')):.2f}  "
              f"MS-SSIM={row.get('MS-SSIM', float('nan')):.4f}  LPIPS={row.get('LPIPS', float('nan')):.4f}")
    if args.random_tiny:
        print("\n(--random-tiny: untrained model, results not written)")
        return 0
    out = {"name": "hific-small",
           "description": "HiFiC small (docs/methods.md §8.4), one model + gain units, GAN "
                          "decoder, Kodak, real .lic bytes",
           "rates_u": rates, "n_images": len(images),
           "results": {"bpp": [r["bpp"] for r in per_rate],
                       "psnr-rgb": [r["psnr"] for r in per_rate],
                       "ms-ssim-rgb": [r["ms_ssim"] for r in per_rate],
                       "lpips": [r["lpips"] for r in per_rate],
                       "encoding_time": [r["enc_s"] for r in per_rate],
                       "decoding_time": [r["dec_s"] for r in per_rate]},
           "describe": codec.describe()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
