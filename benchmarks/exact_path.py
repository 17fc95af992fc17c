"""The cost of reproducible decoding (issue 11): the exact path of format v2 against the float
path of format v1, on the shipped preview weights and Kodak.

Two parts (docs/bitstream.md, "Reproducible decoding", cost):

1. ``cost`` — real range-coded bytes of the z and y sections and PSNR of the decoded picture, for
   the float path (float32 entropy parameters and g_s, as v1 coded) and the exact path (what
   ``lic compress`` writes now), on the first ``--images`` Kodak images at ``--rates``; BD-rate and
   BD-PSNR of exact vs float (sections only: the arithmetic), and the size of the v2 check values
   (CRC32s of every step's symbols and of the picture) reported separately.
2. ``time`` — encode and decode wall time per image on ``--threads`` threads, float vs exact
   (min of ``--repeat`` runs per image, interleaved; u = 0.5), with the load average.
3. ``stages`` — where a `lic decompress` of a 1 MP photo spends its time (issue 28 item 2): four
   Kodak images tiled 2×2 and cropped to 1224×816, compressed at u = 0.5 (round, MSE decoder),
   then decoded as the CLI does (a fresh codec: weights loaded and the exact networks built, no
   latent maps, freed memory reused, the PNG written) on each of ``--stage-threads``; wall and
   CPU seconds of every stage (:mod:`stage_clock`: weights, exact builds, z, h_s, group
   features, anchor and non-anchor parameters, range decoder, g_s, PNG), the min of
   ``--repeat`` decodes each, every thread count in a process of its own.
   CPU seconds are the process's (every thread; OpenMP's idle workers spin a little): on a
   machine shared with other jobs they are the steadier measure.

    python benchmarks/exact_path.py [--kodak ../shared/data/kodak] [--images 6]
        [--rates 0.1,0.5,0.9] [--threads 2] [--repeat 3] [--parts cost,time]
    python benchmarks/exact_path.py --model lic-lgem-cpu --parts stages [--stage-threads 1,2]

Prints tables and writes benchmarks/results/exact_path_<model>.json (an earlier file's content is
kept under "previous"; a stages run keeps the stages it replaces under "stages_previous", and
the rows of thread counts it did not measure).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from lic_core.bitstream import layout, pack, unpack  # noqa: E402
from lic_core.codecs import EncodeParams  # noqa: E402
from lic_core.codecs.learned import LearnedCodec, latent_codec  # noqa: E402
from lic_core.image.io import load_image  # noqa: E402
from lic_core.image.tensor import crop, pad_to_multiple, to_tensor, to_uint8  # noqa: E402
from lic_core.latent_codecs import LgemFloatParameters  # noqa: E402
from lic_core.metrics.psnr import psnr  # noqa: E402
from lic_core.paths import shared_dir  # noqa: E402
from lic_core.quantizer import build_quantizer  # noqa: E402
from lic_core.rate.gain import quantize_slider  # noqa: E402


class FloatPath:
    """Format v1's arithmetic: float32 entropy parameters (index = scale_index(σ·G)) and g_s."""

    def __init__(self, model) -> None:
        self.model = model
        self.engine = LgemFloatParameters(model)

    @torch.no_grad()
    def encode(self, img: np.ndarray, u: float):
        m = self.model
        code, _ = quantize_slider(u)
        x, _ = pad_to_multiple(to_tensor(img), 64)
        g = self.engine.gains_for_code(code)
        y = m.g_a(x)
        c = latent_codec(m, self.engine).compress(y * g["G"], m.h_a(y) * g["H"], g,
                                                  build_quantizer("round"))
        H, W = img.shape[:2]
        pic = to_uint8(crop(m.synthesize(c.y_hat_gained.float(), g), H, W))
        return c.sections, pic, (x.shape[-2] // 64, x.shape[-1] // 64), code

    @torch.no_grad()
    def decode(self, sections, latent_size, code: int, H: int, W: int) -> np.ndarray:
        m = self.model
        g = self.engine.gains_for_code(code)
        c = latent_codec(m, self.engine).decompress(sections, latent_size, g,
                                                    build_quantizer("round"))
        return to_uint8(crop(m.synthesize(c.y_hat_gained.float(), g), H, W))


def part_cost(args, codec: LearnedCodec) -> dict:
    from lic_core.evaluation.bdrate import bd_psnr, bd_rate

    torch.set_num_threads(args.threads)
    fl = FloatPath(codec.model)
    rates = [float(r) for r in args.rates.split(",")]
    paths = sorted(Path(args.kodak).glob("*.png"))[: args.images]
    rows = []
    for path in paths:
        img = load_image(path)
        H, W = img.shape[:2]
        for u in rates:
            sections, fpic, _, _ = fl.encode(img, u)
            r = codec.encode(img, EncodeParams(rate=u))
            header, esec = unpack(r.data)
            lay = layout(r.data)
            bare = pack(dataclasses.replace(header, symbol_crcs=[], picture_crcs=[]), esec)
            checks = len(r.data) - len(bare)  # the v2 check values (two empty lists: 2 bytes)
            row = {"image": path.name, "u": u, "pixels": H * W,
                   "float_bytes": sum(map(len, sections)), "exact_bytes": sum(map(len, esec)),
                   "float_psnr": psnr(img, fpic), "exact_psnr": psnr(img, r.reconstruction),
                   "file_bytes": len(r.data), "header_bytes": lay.header_bytes,
                   "check_bytes": checks}
            rows.append(row)
            print(f"cost {path.name} u={u}: section bytes float {row['float_bytes']} exact "
                  f"{row['exact_bytes']}, PSNR float {row['float_psnr']:.3f} exact "
                  f"{row['exact_psnr']:.3f}, checks {checks} B of {len(r.data)} B", flush=True)
    per_rate = []
    for u in rates:
        rs = [r for r in rows if r["u"] == u]
        px = sum(r["pixels"] for r in rs)
        per_rate.append({
            "u": u, "float_bpp": 8 * sum(r["float_bytes"] for r in rs) / px,
            "exact_bpp": 8 * sum(r["exact_bytes"] for r in rs) / px,
            "check_bpp": 8 * sum(r["check_bytes"] for r in rs) / px,
            "file_bpp": 8 * sum(r["file_bytes"] for r in rs) / px,
            "float_psnr": float(np.mean([r["float_psnr"] for r in rs])),
            "exact_psnr": float(np.mean([r["exact_psnr"] for r in rs]))})
    summary = {"per_rate": per_rate}
    for p in per_rate:
        print(f"u={p['u']}: bpp (sections) {p['float_bpp']:.4f} → {p['exact_bpp']:.4f}, PSNR "
              f"{p['float_psnr']:.3f} → {p['exact_psnr']:.3f}; check values {p['check_bpp']:.4f} bpp")
    if len(rates) >= 2:
        fb, fp = [p["float_bpp"] for p in per_rate], [p["float_psnr"] for p in per_rate]
        eb, ep = [p["exact_bpp"] for p in per_rate], [p["exact_psnr"] for p in per_rate]
        cb = [p["exact_bpp"] + p["check_bpp"] for p in per_rate]
        summary["bd_rate_pct"] = bd_rate(fb, fp, eb, ep)
        summary["bd_psnr_db"] = bd_psnr(fb, fp, eb, ep)
        summary["bd_rate_with_checks_pct"] = bd_rate(fb, fp, cb, ep)
        print(f"BD-rate exact vs float (sections): {summary['bd_rate_pct']:+.3f} %, BD-PSNR "
              f"{summary['bd_psnr_db']:+.4f} dB; with the v2 check values: "
              f"{summary['bd_rate_with_checks_pct']:+.3f} %")
    return {"images": [p.name for p in paths], "rows": rows, "summary": summary}


def _min_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _time_image(fl: FloatPath, codec: LearnedCodec, img: np.ndarray, repeat: int) -> dict:
    """Encode/decode times of one image, float and exact, each the min of ``repeat`` runs."""
    H, W = img.shape[:2]
    sections, _, lat, code = fl.encode(img, 0.5)  # warm-up and a float file
    data = codec.encode(img, EncodeParams(rate=0.5)).data
    codec.decode(data)
    jobs = (("float_encode_s", lambda: fl.encode(img, 0.5)),
            ("exact_encode_s", lambda: codec.encode(img, EncodeParams(rate=0.5))),
            ("float_decode_s", lambda: fl.decode(sections, lat, code, H, W)),
            ("exact_decode_s", lambda: codec.decode(data)))
    row: dict = {}
    for _ in range(repeat):  # interleaved, so load changes hit both paths alike
        for key, fn in jobs:
            row[key] = min(row.get(key, float("inf")), _min_time(fn, 1))
    return row


def part_time(args, codec: LearnedCodec) -> dict:
    torch.set_num_threads(args.threads)
    fl = FloatPath(codec.model)
    paths = sorted(Path(args.kodak).glob("*.png"))[: args.images]
    rows = []
    load_before = os.getloadavg()
    for path in paths:
        row = {"image": path.name, **_time_image(fl, codec, load_image(path), args.repeat)}
        rows.append(row)
        print(f"time {path.name}: encode {row['float_encode_s']:.2f}s → {row['exact_encode_s']:.2f}s,"
              f" decode {row['float_decode_s']:.2f}s → {row['exact_decode_s']:.2f}s", flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k.endswith("_s")}
    summary = {**mean, "encode_ratio": mean["exact_encode_s"] / mean["float_encode_s"],
               "decode_ratio": mean["exact_decode_s"] / mean["float_decode_s"],
               "threads": torch.get_num_threads(), "repeat": args.repeat,
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
               "load_average_before": load_before, "load_average_after": os.getloadavg()}
    print(f"mean over {len(rows)} images on {summary['threads']} threads (min of {args.repeat}): "
          f"encode {mean['float_encode_s']:.2f}s float → {mean['exact_encode_s']:.2f}s exact "
          f"(×{summary['encode_ratio']:.2f}); decode {mean['float_decode_s']:.2f}s → "
          f"{mean['exact_decode_s']:.2f}s (×{summary['decode_ratio']:.2f}); load average "
          f"{load_before[0]:.1f} → {summary['load_average_after'][0]:.1f}")
    return {"rows": rows, "summary": summary}


def mp_picture(kodak: Path) -> np.ndarray:
    """About a megapixel of real photo: kodim01, 05, 13, 23 tiled 2×2, cropped to 1224×816."""
    tiles = [load_image(kodak / f"kodim{i:02d}.png") for i in (1, 5, 13, 23)]
    tiles = [t if t.shape[:2] == (512, 768) else np.ascontiguousarray(t.transpose(1, 0, 2))
             for t in tiles]
    top, bottom = np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=0)[:816, :1224])


def part_stages(args, _codec: LearnedCodec) -> dict:
    """Per-stage seconds of CLI-like decodes of a 1 MP file (see the module docstring)."""
    import hashlib
    import subprocess
    import tempfile

    counts = [int(t) for t in args.stage_threads.split(",")]
    if len(counts) > 1 or args.parts.split(",") != ["stages"]:
        # one process per thread count, as the CLI runs (torch's thread count set once): in a
        # process that had run the 1-thread decodes first, the 2-thread entropy stages measured
        # 40-60 % slower (1.60 against 1.38-1.42 s/MP, the same quiet machine)
        merged: dict = {"by_threads": {}}
        with tempfile.TemporaryDirectory() as tmp:
            for t in counts:
                child = Path(tmp) / f"stages_{t}.json"
                subprocess.run([sys.executable, __file__, "--kodak", args.kodak, "--model",
                                args.model, "--repeat", str(args.repeat), "--parts", "stages",
                                "--stage-threads", str(t), "--out", str(child)], check=True)
                res = json.loads(child.read_text())["stages"]
                merged.update({k: v for k, v in res.items()
                               if k not in ("by_threads", "wall_s", "threads")})
                merged["by_threads"].update(res["by_threads"])
        return merged

    from stage_clock import StageClock

    from lic_core.image import io as image_io  # looked up in the clock: its PNG stage
    from lic_core.memory import reuse_freed_memory

    reused = reuse_freed_memory()  # as the `lic` process does (lic_core.cli.main)
    img = mp_picture(Path(args.kodak))
    mp = img.shape[0] * img.shape[1] / 1e6
    data = LearnedCodec(args.model).encode(img, EncodeParams(rate=0.5)).data  # as `lic compress`
    out: dict = {"pixels": int(img.shape[0] * img.shape[1]), "bytes": len(data),
                 "repeat": args.repeat, "reuse_freed_memory": reused, "by_threads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "decoded.png"
        for threads in (int(t) for t in args.stage_threads.split(",")):
            torch.set_num_threads(threads)
            LearnedCodec(args.model).decode(data, inspect=False)  # warm-up (allocator, caches)
            best: dict = {}
            load_before = os.getloadavg()
            for _ in range(args.repeat):
                fresh = LearnedCodec(args.model)  # weights loaded, exact networks built
                with StageClock() as clock:
                    res = fresh.decode(data, inspect=False)
                    image_io.save_image_atomic(res.reconstruction, png, overwrite=True)
                for name, v in clock.result().items():
                    b = best.setdefault(name, {"wall_s": float("inf"), "cpu_s": float("inf")})
                    b["wall_s"], b["cpu_s"] = min(b["wall_s"], v["wall_s"]), min(b["cpu_s"], v["cpu_s"])
            total = {k: sum(v[k] for v in best.values()) for k in ("wall_s", "cpu_s")}
            decode = {k: total[k] - best["png write"][k] for k in total}
            row = {"stages": best, "total": total, "decode_without_png": decode,
                   "decode_s_per_mp": decode["wall_s"] / mp,
                   "picture_sha256": hashlib.sha256(res.reconstruction.tobytes()).hexdigest(),
                   "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
                   "load_average_before": load_before, "load_average_after": os.getloadavg(),
                   "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            out["by_threads"][str(threads)] = row
            print(f"stages of a {mp:.2f} MP decode ({len(data)} bytes) on {threads} thread(s), "
                  f"min of {args.repeat}; load average {load_before[0]:.1f}:")
            for name, v in best.items():
                print(f"  {name:18s} wall {v['wall_s']:6.3f} s  CPU {v['cpu_s']:6.3f} s "
                      f"({100 * v['cpu_s'] / total['cpu_s']:4.1f} % of CPU)")
            print(f"  {'total':18s} wall {total['wall_s']:6.3f} s  CPU {total['cpu_s']:6.3f} s; "
                  f"without the PNG {decode['wall_s'] / mp:.2f} s/MP wall", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kodak = os.environ.get("LIC_KODAK", str((shared_dir() or ROOT.parent / "shared") / "data" / "kodak"))
    ap.add_argument("--kodak", default=kodak)
    ap.add_argument("--model", default="lic-lgem-preview")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--rates", default="0.1,0.5,0.9")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parts", default="cost,time")
    ap.add_argument("--stage-threads", default="1,2", help="threads of the stages part")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not Path(args.kodak).is_dir():
        raise SystemExit(f"Kodak folder not found: {args.kodak} (use --kodak)")
    codec = LearnedCodec(args.model, use_finetuned=False)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"exact_path_{args.model}.json"
    previous = json.loads(out.read_text()) if out.is_file() else {}
    result = {"model": args.model, "torch": torch.__version__, "format_version": 2,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              **{k: v for k, v in previous.items() if k in ("cost", "time", "stages")}}
    if previous and "previous" not in previous:
        result["previous"] = previous  # the phase-1 measurements (issue 11)
    elif "previous" in previous:
        result["previous"] = previous["previous"]
    parts = {"cost": part_cost, "time": part_time, "stages": part_stages}
    if "stages" in args.parts.split(",") and "stages" in previous:
        result["stages_previous"] = previous["stages"]  # the run this one replaces
    for name in args.parts.split(","):
        t0 = time.perf_counter()
        result[name] = parts[name](args, codec)
        result[name]["wall_s"] = time.perf_counter() - t0
        if name == "stages":
            # a run of some thread counts keeps the others' rows (each row says when and under
            # what load it was measured): capacity_study.py reads the 1-thread row
            kept = {k: v for k, v in (previous.get("stages") or {}).get("by_threads", {}).items()
                    if k not in result[name]["by_threads"]}
            result[name]["by_threads"] = {**kept, **result[name]["by_threads"]}
        result[name]["threads"] = args.threads
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
