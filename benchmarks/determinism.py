"""Do .lic files decode to the encoder's picture in other processes, thread counts and devices?
(issue 11; docs/bitstream.md, "Reproducible decoding")

Encodes in one process per encode thread count and decodes every file in SEPARATE processes, one
per decode thread count (each process batches all files: start-up is the expensive part).  A file
is **bit-exact** when every decode returned a picture — no mismatch or corruption error — equal to
the encoder's reconstruction, byte for byte.

Full matrix (the issue's): Kodak 24 × 3 rates × 4 quantizers × encode threads {1, 2} × decode
threads {1, 2, 4}, plus the diffusion decoder where its weights exist (``--decoders mse,diffusion``).

    python benchmarks/determinism.py                         # the full matrix (hours of CPU)
    python benchmarks/determinism.py --limit 2 --rates 0.5   # a small subset
    python benchmarks/determinism.py --device cuda           # decode on CUDA (CPU-encoded files)
    python benchmarks/determinism.py --device cuda --encode-device cuda --decode-devices cpu
                                                             # the reverse: GPU-encoded, CPU-decoded

Added models (issue 25: ``lic models add NAME compressai:ARCH CKPT...``): ``--model NAME`` codes on
the exact path of ``bmshj2018-hyperprior``/``mbt2018-mean``/``mbt2018`` (``NAME:float``: the
float path, not guaranteed); the rates are then the model's rate points (default: all of them)
and the quantizer is rounding:

    python benchmarks/determinism.py --model my-mbt2018 --decode-isa avx2
                                     # + a decode process with ATen/oneDNN held to AVX2

Options: ``--quantizers``, ``--encode-threads``, ``--decode-threads``, ``--decode-isa`` (extra
decode processes, first decode thread count, with ``ATEN_CPU_CAPABILITY`` set to each ISA —
``avx2`` also sets ``ONEDNN_MAX_CPU_ISA=AVX2``; ``default`` is ATen's scalar code),
``--diffusion-steps``, ``--workdir`` (keep the files), ``--out``.  Prints the table and writes
``benchmarks/results/determinism_<model>[_<tag>].json``.  Worker processes run with
``OMP_WAIT_POLICY=passive`` unless set (on a busy 2-core machine OpenMP's spin-waiting makes
small ops 30× slower at 2 threads; how threads wait never changes a result).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUANTIZERS = ("round", "deadzone", "rdoq", "tcq")


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ------------------------------------------------------------------------------------ workers


def added_model(name: str):
    """The added model (``lic models add``) behind codec ``name`` (``NAME`` or ``NAME:float``),
    or None for our own codecs."""
    from lic_core.codecs.compressai_codec import FLOAT_SUFFIX, user_codecs

    base = name[:-len(FLOAT_SUFFIX)] if name.endswith(FLOAT_SUFFIX) else name
    return user_codecs().get(base)


def _codec(args, device: str):
    if added_model(args.model) is not None:
        from lic_core.codecs import get_codec

        if device != "cpu":
            raise SystemExit("determinism.py: added models code on the CPU only")
        return get_codec(args.model)
    from lic_core.codecs.learned import LearnedCodec

    return LearnedCodec(args.model, device=device)


#: the environment of a decode process held to an instruction set (``--decode-isa``)
ISA_ENV = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
           "avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
           "default": {"ATEN_CPU_CAPABILITY": "default"}}


def worker_encode(args) -> None:
    """Encode every (image, rate, quantizer, decoder) into ``args.dir``; manifest.json lists the
    encoder's reconstruction hash and time per file."""
    import numpy as np
    import torch

    from lic_core.codecs import EncodeParams
    from lic_core.image.io import load_image

    torch.set_num_threads(args.threads)
    codec = _codec(args, args.encode_device)
    if args.encode_device != "cpu":
        codec.model.to(args.encode_device)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for path in sorted(Path(args.kodak).glob("*.png"))[: args.limit]:
        img = load_image(path)
        for u in [float(r) for r in args.rates.split(",")]:
            for q in args.quantizers.split(","):
                for dec in args.decoders.split(","):
                    name = f"{path.stem}_u{u:g}_{q}_{dec}.lic"
                    t0 = time.perf_counter()
                    r = codec.encode(img, EncodeParams(rate=u, quantizer=q, decoder=dec,
                                                       diffusion_steps=args.diffusion_steps,
                                                       seed=args.seed))
                    dt = time.perf_counter() - t0
                    (out / name).write_bytes(r.data)
                    manifest.append({"file": name, "image": path.name, "u": u, "quantizer": q,
                                     "decoder": dec, "bytes": len(r.data), "encode_s": dt,
                                     "recon_sha256": _sha(np.ascontiguousarray(
                                         r.reconstruction).tobytes())})
                    print(f"encoded {name} in {dt:.2f}s", flush=True)
    (out / "manifest.json").write_text(json.dumps({"threads": torch.get_num_threads(),
                                                   "device": args.encode_device,
                                                   "files": manifest}, indent=1))


def worker_decode(args) -> None:
    """Decode every .lic under ``args.dir`` (recursively); print one JSON line per file."""
    import numpy as np
    import torch

    from lic_core.errors import LicError, LicFormatError, LicMismatchError

    torch.set_num_threads(args.threads)
    codec = _codec(args, args.device)
    results = {}
    for f in sorted(Path(args.dir).rglob("*.lic")):
        key = str(f.relative_to(args.dir))
        t0 = time.perf_counter()
        try:
            r = codec.decode(f.read_bytes())
            res = {"outcome": "picture", "sha256": _sha(np.ascontiguousarray(
                r.reconstruction).tobytes()), "picture_checked": r.info.get("picture_checked")}
        except LicMismatchError as exc:
            res = {"outcome": "mismatch", "error": str(exc)}
        except LicFormatError as exc:
            res = {"outcome": "corrupt", "error": str(exc)}
        except LicError as exc:
            res = {"outcome": "error", "error": str(exc)}
        res["decode_s"] = time.perf_counter() - t0
        results[key] = res
        print(f"decoded {key}: {res['outcome']} in {res['decode_s']:.2f}s", file=sys.stderr,
              flush=True)
    print(json.dumps({"threads": torch.get_num_threads(), "device": args.device,
                      "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "results": results}))


# ------------------------------------------------------------------------------------- driver


def _run_worker(role: str, threads: int, args, extra: list[str],
                isa: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **ISA_ENV.get(isa, {})}
    env.setdefault("OMP_WAIT_POLICY", "passive")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", role,
           "--threads", str(threads), "--model", args.model, "--kodak", args.kodak,
           "--limit", str(args.limit), "--rates", args.rates, "--quantizers", args.quantizers,
           "--decoders", args.decoders, "--diffusion-steps", str(args.diffusion_steps),
           "--seed", str(args.seed), *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{role} worker ({threads} threads{', ' + isa if isa else ''}) "
                         f"failed:\n{r.stderr[-3000:]}")
    return r


def _check_device(name: str) -> None:
    from lic_core.devices import coding_device
    from lic_core.errors import LicError

    try:
        coding_device(name)
    except LicError as exc:
        raise SystemExit(f"determinism.py: {exc}") from None


def main() -> None:
    from lic_core.paths import shared_dir

    kodak = os.environ.get("LIC_KODAK", str((shared_dir() or ROOT.parent / "shared") / "data" / "kodak"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", default=kodak)
    ap.add_argument("--model", default="lic-lgem-preview")
    ap.add_argument("--limit", type=int, default=24, help="first N Kodak images")
    ap.add_argument("--rates", default=None,
                    help="slider values (default 0.1,0.5,0.9; added models: rate points, "
                         "default all)")
    ap.add_argument("--quantizers", default=None,
                    help=f"default {','.join(QUANTIZERS)} (added models: round)")
    ap.add_argument("--decoders", default="mse", help="mse[,diffusion]")
    ap.add_argument("--encode-threads", default="1,2")
    ap.add_argument("--decode-threads", default="1,2,4")
    ap.add_argument("--decode-isa", default="",
                    help="extra decode processes held to these instruction sets "
                         f"({', '.join(ISA_ENV)}), e.g. avx2")
    ap.add_argument("--device", default="cpu", help="decode device (cpu | cuda)")
    ap.add_argument("--encode-device", default="cpu", help="encode device (cpu | cuda)")
    ap.add_argument("--diffusion-steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="keep the files here (default: a temp dir)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", choices=("encode", "decode"), help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    added = added_model(args.model)
    if args.rates is None:
        args.rates = (",".join(str(i + 1) for i in range(len(added.points))) if added
                      else "0.1,0.5,0.9")
    if args.quantizers is None:
        args.quantizers = "round" if added else ",".join(QUANTIZERS)
    if args.worker == "encode":
        return worker_encode(args)
    if args.worker == "decode":
        return worker_decode(args)

    _check_device(args.device)
    _check_device(args.encode_device)
    if not Path(args.kodak).is_dir():
        raise SystemExit(f"determinism.py: Kodak folder not found: {args.kodak} (use --kodak)")
    for isa in filter(None, args.decode_isa.split(",")):
        if isa not in ISA_ENV:
            raise SystemExit(f"determinism.py: --decode-isa {isa}: one of {', '.join(ISA_ENV)}")
    if added is not None and (args.device != "cpu" or args.encode_device != "cpu"):
        raise SystemExit("determinism.py: added models code on the CPU only")
    if added is not None and args.decoders != "mse":
        raise SystemExit("determinism.py: added models have the mse decoder only")
    if "diffusion" in args.decoders.split(","):
        from lic_core.paths import diffusion_weights_path

        if not diffusion_weights_path(args.model).is_file():
            raise SystemExit(f"determinism.py: no diffusion decoder weights for {args.model} "
                             f"({diffusion_weights_path(args.model)}); run with --decoders mse")
    import torch

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lic_det_"))
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    manifests = {}
    for et in [int(t) for t in args.encode_threads.split(",")]:
        d = work / f"enc{et}"
        t0 = time.perf_counter()
        _run_worker("encode", et, args, ["--dir", str(d), "--encode-device", args.encode_device])
        manifests[et] = json.loads((d / "manifest.json").read_text())
        print(f"encoded {len(manifests[et]['files'])} files with {et} thread(s) in "
              f"{time.perf_counter() - t0:.0f}s", flush=True)
    decodes = {}
    thread_counts = [int(t) for t in args.decode_threads.split(",")]
    runs = [(str(dt), dt, "") for dt in thread_counts]
    runs += [(f"{isa}:{thread_counts[0]}", thread_counts[0], isa)
             for isa in filter(None, args.decode_isa.split(","))]
    for label, dt, isa in runs:
        t0 = time.perf_counter()
        r = _run_worker("decode", dt, args, ["--dir", str(work), "--device", args.device], isa)
        decodes[label] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"decoded all files with {dt} thread(s) on {args.device}"
              f"{' (' + decodes[label]['cpu_capability'] + ')' if isa else ''} in "
              f"{time.perf_counter() - t0:.0f}s", flush=True)

    rows, by = [], {}
    for et, man in manifests.items():
        for f in man["files"]:
            key = str(Path(f"enc{et}") / f["file"])
            outs = {dt: d["results"][key] for dt, d in decodes.items()}
            pictures = [o.get("sha256") for o in outs.values()]
            exact = all(o["outcome"] == "picture" and o["sha256"] == f["recon_sha256"]
                        for o in outs.values())
            row = {**f, "encode_threads": et, "exact": exact,
                   "outcomes": {str(dt): o["outcome"] for dt, o in outs.items()},
                   "decodes_agree": len(set(pictures)) == 1,
                   "decode_s": {str(dt): o["decode_s"] for dt, o in outs.items()}}
            if not exact:
                row["errors"] = {str(dt): o.get("error") for dt, o in outs.items() if "error" in o}
            rows.append(row)
            for k in (f"quantizer={f['quantizer']}", f"decoder={f['decoder']}",
                      f"encode_threads={et}", "all"):
                n, e = by.get(k, (0, 0))
                by[k] = (n + 1, e + int(exact))
    n_all, e_all = by["all"]
    enc_s = sum(f["encode_s"] for m in manifests.values() for f in m["files"])
    dec_s = sum(o["decode_s"] for d in decodes.values() for o in d["results"].values())
    # files of the full matrix per decoder (added models: every rate point, rounding)
    full = 24 * len(args.rates.split(",")) * 2 if added else 24 * 3 * 4 * 2
    per_file = (enc_s + dec_s) / max(1, n_all)
    summary = {"files": n_all, "bit_exact": e_all, "bit_exact_pct": 100.0 * e_all / max(1, n_all),
               "by": {k: {"files": n, "bit_exact": e, "pct": 100.0 * e / n}
                      for k, (n, e) in sorted(by.items())},
               "encode_cpu_s": enc_s, "decode_cpu_s": dec_s,
               "wall_s": time.perf_counter() - t_start,
               "estimated_full_matrix_s_per_decoder": per_file * full,
               "device": args.device, "encode_device": args.encode_device,
               "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "decode_capabilities": {k: d.get("cpu_capability") for k, d in decodes.items()}}
    if added is not None:
        summary["added_model"] = {"name": added.name, "codec": args.model,
                                  "architecture": added.arch,
                                  "checkpoints": [p.model_hash for p in added.points]}
    print(f"\nbit-exact: {e_all}/{n_all} files ({summary['bit_exact_pct']:.1f} %), encoded with "
          f"{args.encode_threads} thread(s) on {args.encode_device}, each decoded with "
          f"{args.decode_threads} thread(s) on {args.device}"
          + (f" and held to {args.decode_isa}" if args.decode_isa else ""))
    for k, v in summary["by"].items():
        print(f"  {k:20s} {v['bit_exact']:4d}/{v['files']:<4d} {v['pct']:6.1f} %")
    matrix = (f"24 images × {len(args.rates.split(','))} rate points × 2 encode threads"
              if added else "24 images × 3 rates × 4 quantizers × 2 encode threads")
    print(f"time: encode {enc_s:.0f}s, decode {dec_s:.0f}s (wall {summary['wall_s']:.0f}s); the "
          f"full matrix ({matrix}, each decoded "
          f"{len(decodes)}×) would take ≈ {summary['estimated_full_matrix_s_per_decoder'] / 3600:.1f} "
          f"hours per decoder at this rate (processes one after another, these thread counts)")
    tag = "" if args.device == args.encode_device == "cpu" else f"_{args.encode_device}_to_{args.device}"
    stem = args.model.replace(":", "_")  # NAME:float
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"determinism_{stem}{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k not in ("worker", "dir")},
                               "summary": summary, "rows": rows}, indent=1))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
