"""Time and peak memory of `lic compress` / `lic decompress` from 0.4 to 48 megapixels (issue 28).

For each size, one real photo is resized (Lanczos, its own aspect ratio) to that many pixels and
saved as PNG; then every measurement runs **in its own process** (this script with ``--worker``),
so its peak resident memory is that process's alone (``ru_maxrss`` from ``wait4``):

* ``lic compress`` and ``lic decompress`` (the CLI's ``main``) of the learned codec (default
  ``lic-lgem-cpu``, rate u = 0.5) for each decoder asked for (default ``mse`` and ``diffusion``;
  a diffusion *compress* also runs the diffusion decoder, whose picture the file's check value
  records; a picture larger than one sampler tile — 768×768 padded pixels — runs the tiled
  sampler, docs/diffusion.md "Big pictures: the tiled sampler", and its row records the file's
  tiling);
* AVIF through Pillow (libavif, speed 6, 4:4:4, quality 60 — the studio's AVIF codec) beside it:
  encode to bytes, decode the bytes.

Times are the codec work inside the process (the CLI call after its modules are imported: weights,
image loading and writing, the codec) and the whole process (interpreter, imports); the JSON keeps
both, the table prints the former. Issue 28's limits: peak RSS ≤ 2.5 GB at every size, and time per megapixel at 48 MP
within 1.3× of 1 MP.

    python benchmarks/scale.py [--sizes 0.4 1 4 12 24 48] [--decoders mse diffusion]
        [--threads 2] [--image PATH] [--codec lic-lgem-cpu] [--timeout 3600] [--out PATH]
        [--omp-wait-policy passive]

Results go to benchmarks/results/scale.json (runs at other sizes are merged by size, and runs
of other decoders at a size already there are merged into it: each result keeps its own
``measured_at`` and load average). ``--note KEY=TEXT`` stores a note (e.g. which sizes a run
skipped, and why) under the JSON's ``notes``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the driver reads lic_core too (paths, the sample image)
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "scale.json"
DEFAULT_SIZES = (0.4, 1.0, 4.0, 12.0, 24.0, 48.0)
RSS_LIMIT_GB, SLOPE_LIMIT = 2.5, 1.3
AVIF_QUALITY = 60


# ------------------------------------------------------------------------------------ workers


def _worker(argv: list[str]) -> None:
    """One measurement in this process; prints one JSON line."""
    op = argv[0]
    if op in ("compress", "decompress"):
        from lic_core.cli import build_parser, main

        build_parser()  # imports every sub-command (torch, the codecs): not part of the codec work
        from lic_core.memory import reuse_freed_memory

        reuse_freed_memory()  # what the `lic` process itself does (lic_core.cli.main)
        t = time.perf_counter()
        rc = main(argv)
        print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t}))
        return
    if op == "avif":
        import io

        from PIL import Image

        src, = argv[1:]
        img = Image.open(src).convert("RGB")
        img.load()
        t = time.perf_counter()
        buf = io.BytesIO()
        img.save(buf, "AVIF", quality=AVIF_QUALITY, speed=6, subsampling="4:4:4")
        t_enc = time.perf_counter() - t
        data = buf.getvalue()
        t = time.perf_counter()
        back = Image.open(io.BytesIO(data))
        back.load()
        t_dec = time.perf_counter() - t
        print(json.dumps({"rc": 0, "encode_s": t_enc, "decode_s": t_dec, "bytes": len(data)}))
        return
    raise SystemExit(f"unknown worker {op}")


def _measure(args: list[str], threads: int, timeout: float, wait_policy: str = "") -> dict:
    """Run this script as a worker; its JSON plus the process's wall time and peak RSS (GB, from
    ``wait4``: the child's own high-water mark).  ``wait_policy``: OMP_WAIT_POLICY of the worker
    ("" leaves OpenMP's default)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    env.pop("OMP_WAIT_POLICY", None)
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", *args],
                                stdout=out, stderr=err, env=env, cwd=ROOT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() - t > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                return {"error": f"timeout after {timeout:.0f} s"}
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    rss = usage.ru_maxrss / 1e6  # kB → GB
    if proc.returncode != 0:
        tail = stderr.strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit status {proc.returncode}",
                "peak_rss_gb": rss, "process_s": wall}
    res = json.loads(stdout.strip().splitlines()[-1])
    res.update(process_s=wall, peak_rss_gb=rss)
    return res


# -------------------------------------------------------------------------------------- driver


def _source(path: str | None) -> Path:
    if path:
        return Path(path)
    from lic_core.paths import shared_dir

    shared = shared_dir()
    kodak = shared / "data" / "kodak" / "kodim23.png" if shared else None
    if kodak is not None and kodak.is_file():
        return kodak
    from lic_core.image.io import sample_image_path

    return Path(sample_image_path())


def _resized(src: Path, mp: float, folder: Path) -> tuple[Path, int, int]:
    from PIL import Image

    img = Image.open(src).convert("RGB")
    aspect = img.width / img.height
    w = max(64, round((mp * 1e6 * aspect) ** 0.5))
    h = max(64, round(mp * 1e6 / w))
    out = folder / f"photo_{mp:g}mp.png"
    if not out.is_file():
        img.resize((w, h), Image.LANCZOS).save(out, compress_level=1)
    return out, w, h


def _row(size: float, w: int, h: int, results: dict) -> str:
    mp = w * h / 1e6
    cells = [f"{size:>5g} MP ({w}×{h})"]
    for key, r in results.items():
        if key == "avif":
            cells.append("AVIF " + ("failed" if "error" in r else
                                    f"{r['encode_s']:.2f}/{r['decode_s']:.2f} s"))
            continue
        if "error" in r:
            cells.append(f"{key}: {r['error'][:40]}")
        else:
            cells.append(f"{key} {r['seconds']:.1f} s ({r['seconds'] / mp:.2f} s/MP) "
                         f"{r['peak_rss_gb']:.2f} GB")
    return " | ".join(cells)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=list(DEFAULT_SIZES),
                    help="megapixels")
    ap.add_argument("--decoders", nargs="+", default=["mse", "diffusion"])
    ap.add_argument("--codec", default="lic-lgem-cpu")
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image", default=None, help="source photo (default: Kodak kodim23)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    ap.add_argument("--no-avif", action="store_true")
    ap.add_argument("--keep", default=None, help="keep the images and files in this folder")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--note", action="append", default=[], metavar="KEY=TEXT",
                    help="a note stored under the JSON's notes (repeatable)")
    # OpenMP's default spins a while before sleeping; "passive" sleeps at once, which keeps 2
    # threads usable beside a busy equal-priority process but costs every one of the exact
    # path's thousands of small parallel ops a wake-up: measured on 2 cores beside a niced job,
    # g_s at 1 MP took 2.5 s at 2 threads with it, 1.3 s without (1.6–2.0 s at 1 thread)
    ap.add_argument("--omp-wait-policy", default="", choices=("", "passive", "active"),
                    help="OMP_WAIT_POLICY of the workers (default: OpenMP's own)")
    args = ap.parse_args()

    src = _source(args.image)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lic_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out)
    doc = json.loads(out_path.read_text()) if out_path.is_file() else {}
    import torch

    doc.update(issue=28, codec=args.codec, rate=args.rate, threads=args.threads,
               source=src.name, avif_quality=AVIF_QUALITY,
               omp_wait_policy=args.omp_wait_policy or "(OpenMP default)",
               machine={"platform": platform.platform(), "cpus": os.cpu_count(),
                        "python": platform.python_version(), "torch": torch.__version__,
                        "load_average_at_start": list(os.getloadavg())},
               limits={"peak_rss_gb": RSS_LIMIT_GB, "s_per_mp_48_over_1": SLOPE_LIMIT})
    for note in args.note:
        key, _, text = note.partition("=")
        doc.setdefault("notes", {})[key.strip()] = text.strip()
    sizes = doc.setdefault("sizes", {})
    t_all = ["--threads", str(args.threads)]
    for size in args.sizes:
        png, w, h = _resized(src, size, work)
        # sizes of several runs are merged: each keeps its own machine load and time
        entry: dict = {"width": w, "height": h, "megapixels": w * h / 1e6,
                       "load_average_at_start": list(os.getloadavg()),
                       "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "threads": args.threads,
                       "omp_wait_policy": args.omp_wait_policy or "(OpenMP default)"}
        old = sizes.get(f"{size:g}")
        if old and (old.get("width"), old.get("height")) == (w, h):
            # another run's decoders at this size: kept, each result with its own time and load
            for r in old.get("results", {}).values():
                r.setdefault("measured_at", old.get("measured_at"))
                r.setdefault("load_average_at_start", old.get("load_average_at_start"))
                r.setdefault("threads", old.get("threads"))
            results: dict = dict(old.get("results", {}))
        else:
            results = {}
        stamp = {"measured_at": entry["measured_at"], "threads": args.threads}
        for dec in args.decoders:
            lic = work / f"photo_{size:g}mp_{dec}.lic"
            stamp["load_average_at_start"] = list(os.getloadavg())
            results[f"compress/{dec}"] = _measure(
                ["compress", str(png), str(lic), "--codec", args.codec, "--rate", str(args.rate),
                 "--decoder", dec, "--force", "--quiet", *t_all], args.threads, args.timeout,
                args.omp_wait_policy)
            results[f"compress/{dec}"].update(stamp)
            if lic.is_file():
                from lic_core.bitstream import peek_header

                head = peek_header(lic.read_bytes()[:4096])
                results[f"compress/{dec}"]["bytes"] = lic.stat().st_size
                results[f"compress/{dec}"]["bpp"] = 8 * lic.stat().st_size / (w * h)
                if dec == "diffusion":  # which sampler made (and decodes) the picture
                    results[f"compress/{dec}"].update(
                        format_version=head.format_version,
                        sampler=(f"tiled {head.diffusion_tile}/{head.diffusion_overlap}"
                                 if head.diffusion_tile else "whole picture"),
                        padded=[head.padded_height, head.padded_width])
                stamp["load_average_at_start"] = list(os.getloadavg())
                results[f"decompress/{dec}"] = _measure(
                    ["decompress", str(lic), str(work / f"out_{size:g}mp_{dec}.png"), "--force",
                     "--quiet", *t_all], args.threads, args.timeout, args.omp_wait_policy)
                results[f"decompress/{dec}"].update(stamp)
        if not args.no_avif:
            stamp["load_average_at_start"] = list(os.getloadavg())
            results["avif"] = _measure(["avif", str(png)], args.threads, args.timeout,
                                       args.omp_wait_policy)
            if "bytes" in results["avif"]:
                results["avif"]["bpp"] = 8 * results["avif"]["bytes"] / (w * h)
            results["avif"].update(stamp)
        entry["results"] = results
        sizes[f"{size:g}"] = entry
        print(_row(size, w, h, results), flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=1) + "\n")

    # the issue's limits, over every size measured so far
    per_mp = {}
    for key in [f"{op}/{d}" for d in args.decoders for op in ("compress", "decompress")]:
        pts = {s: e["results"].get(key, {}) for s, e in sizes.items()}
        ok = {s: r for s, r in pts.items() if "seconds" in r}
        worst = max((r.get("peak_rss_gb") or 0 for r in ok.values()), default=None)
        if "1" in ok and "48" in ok:
            per_mp[key] = (ok["48"]["seconds"] / sizes["48"]["megapixels"]) / \
                (ok["1"]["seconds"] / sizes["1"]["megapixels"])
        print(f"{key}: peak RSS max {worst} GB (limit {RSS_LIMIT_GB})"
              + (f", s/MP at 48 MP / at 1 MP = {per_mp[key]:.2f} (limit {SLOPE_LIMIT})"
                 if key in per_mp else ""))
    doc["slope_48_over_1"] = per_mp
    out_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
