"""Kodak round trip of the learned codec: exactness, timing and real vs estimated bits.

Issue "lic_core" done-when: ``lic compress`` + ``lic decompress`` give exactly the reconstruction
of the model's own inference path, on all 24 Kodak images, at 3 rates, for each scalar
quantizer, decoding **in a separate process** from the encoder; the file size is within 1 % +
header of the estimated −log2 p bits.  This script runs the encoder in one process (writing the
.lic files and the encoder-side reconstructions) and the decoder in another, then compares.

    python benchmarks/kodak_roundtrip.py [--kodak ../shared/data/kodak] [--codec lic-lgem-preview]
        [--rates 0.1,0.5,0.9] [--quantizers round,deadzone,rdoq] [--threads 2] [--limit N]

Prints a table and writes benchmarks/results/kodak_roundtrip_<codec>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _encode_all(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from lic_core.codecs import EncodeParams, get_codec
    from lic_core.image import load_image

    codec = get_codec(args.codec)
    work = Path(args.work)
    rows = []
    for img_path in sorted(Path(args.kodak).glob("*.png"))[: args.limit or None]:
        img = load_image(img_path)
        for q in args.quantizers.split(","):
            for rate in (float(r) for r in args.rates.split(",")):
                t0 = time.perf_counter()
                r = codec.encode(img, EncodeParams(rate=rate, quantizer=q))
                t_enc = time.perf_counter() - t0
                stem = f"{img_path.stem}_{q}_{rate:.3f}"
                (work / f"{stem}.lic").write_bytes(r.data)
                np.save(work / f"{stem}.npy", r.reconstruction)
                ins = r.inspection
                rows.append({"image": img_path.name, "quantizer": q, "rate": rate, "stem": stem,
                             "bytes": len(r.data), "bpp": r.bpp, "encode_s": t_enc,
                             "header_bytes": ins.header_bytes,
                             "coded_bits": 8 * (ins.z_bytes + ins.y_bytes),
                             "estimated_bits": ins.estimated_bits,
                             "pixels": int(img.shape[0] * img.shape[1])})
                print(f"enc {stem}: {r.bpp:.4f} bpp {t_enc:.2f}s", flush=True)
    (work / "encoded.json").write_text(json.dumps(rows))


def _decode_all(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from lic_core.bitstream import peek_header
    from lic_core.codecs import get_codec
    from lic_core.image import load_image
    from lic_core.metrics import psnr

    work = Path(args.work)
    rows = json.loads((work / "encoded.json").read_text())
    for row in rows:
        data = (work / f"{row['stem']}.lic").read_bytes()
        codec = get_codec(peek_header(data).model)
        t0 = time.perf_counter()
        d = codec.decode(data)
        row["decode_s"] = time.perf_counter() - t0
        enc_recon = np.load(work / f"{row['stem']}.npy")
        row["exact"] = bool(np.array_equal(enc_recon, d.reconstruction))
        row["psnr"] = psnr(load_image(Path(args.kodak) / row["image"]), d.reconstruction)
        print(f"dec {row['stem']}: exact={row['exact']} {row['decode_s']:.2f}s", flush=True)
    (work / "decoded.json").write_text(json.dumps(rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    ap.add_argument("--codec", default="lic-lgem-preview")
    ap.add_argument("--rates", default="0.1,0.5,0.9")
    ap.add_argument("--quantizers", default="round,deadzone,rdoq")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--role", choices=["main", "encode", "decode"], default="main")
    ap.add_argument("--work", default="")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    if args.role == "encode":
        _encode_all(args)
        return 0
    if args.role == "decode":
        _decode_all(args)
        return 0
    with tempfile.TemporaryDirectory() as work:
        base = [sys.executable, __file__, "--kodak", args.kodak, "--codec", args.codec,
                "--rates", args.rates, "--quantizers", args.quantizers, "--threads",
                str(args.threads), "--limit", str(args.limit), "--work", work]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        subprocess.run(base + ["--role", "encode"], check=True, env=env)
        subprocess.run(base + ["--role", "decode"], check=True, env=env)  # a separate process
        rows = json.loads((Path(work) / "decoded.json").read_text())
    n = len(rows)
    exact = sum(r["exact"] for r in rows)
    rel = [(r["coded_bits"] - r["estimated_bits"]) / r["estimated_bits"] for r in rows]
    within = sum(abs(r["coded_bits"] - r["estimated_bits"]) <= 0.01 * r["estimated_bits"] + 8 * r["header_bytes"]
                 for r in rows)
    summary = {
        "codec": args.codec, "threads": args.threads, "files": n, "exact_round_trips": exact,
        "size_within_1pct_plus_header": within,
        "mean_real_vs_estimated_bits_percent": 100 * float(np.mean(rel)),
        "max_abs_real_vs_estimated_bits_percent": 100 * float(np.max(np.abs(rel))),
        "mean_encode_s": float(np.mean([r["encode_s"] for r in rows])),
        "mean_decode_s": float(np.mean([r["decode_s"] for r in rows])),
        "per_quantizer_rate": {},
        "rows": rows,
    }
    for q in args.quantizers.split(","):
        for rate in (float(r) for r in args.rates.split(",")):
            sel = [r for r in rows if r["quantizer"] == q and r["rate"] == rate]
            if sel:
                summary["per_quantizer_rate"][f"{q}@{rate}"] = {
                    "bpp": float(np.mean([r["bpp"] for r in sel])),
                    "psnr": float(np.mean([r["psnr"] for r in sel])),
                    "encode_s": float(np.mean([r["encode_s"] for r in sel])),
                    "decode_s": float(np.mean([r["decode_s"] for r in sel]))}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"kodak_roundtrip_{args.codec}.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{args.codec}: {exact}/{n} exact round trips (separate decoder process); "
          f"{within}/{n} sizes within 1 % + header of the estimate; "
          f"real vs estimated bits {summary['mean_real_vs_estimated_bits_percent']:+.3f} % "
          f"(max |.| {summary['max_abs_real_vs_estimated_bits_percent']:.3f} %)")
    print(f"mean encode {summary['mean_encode_s']:.2f} s, decode {summary['mean_decode_s']:.2f} s "
          f"on {args.threads} CPU threads")
    for k, v in summary["per_quantizer_rate"].items():
        print(f"  {k:16s} {v['bpp']:.4f} bpp  {v['psnr']:.2f} dB  enc {v['encode_s']:.2f}s  dec {v['decode_s']:.2f}s")
    return 0 if exact == n else 1


if __name__ == "__main__":
    sys.exit(main())
