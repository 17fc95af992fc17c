"""Decode time of the blur-dissipated diffusion decoder (timing only: UNTRAINED full-size U-Net).

Times ``DiffusionDecoder.decode`` end to end (context adaptation + N U-Net evaluations + the DCT
posterior steps) on random contexts of the shapes the lic-lgem codec produces. The codec's own
g_s/entropy decoding is not included. Weights are random, so image quality means nothing here.

    python benchmarks/diffusion_decode.py [--threads 2] [--steps 10 25 50]
        [--cpu-sizes 256x256] [--gpu-sizes 256x256 768x512] [--repeat 1] [--out PATH]

CPU runs use ``--threads`` (default 2) threads and, unless ``--cpu-measure-all``, measure the
smallest step count and extrapolate the others linearly (each step is one U-Net evaluation); the
GPU part runs when torch.cuda.is_available() (fp32 and bf16 autocast). Results merge into
benchmarks/results/diffusion_decode.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lic_core.decoder.diffusion.decoder import DiffusionDecoder  # noqa: E402
from lic_core.decoder.diffusion.unet import DiffusionConfig  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "diffusion_decode.json"


def _inputs(cfg: DiffusionConfig, h: int, w: int, device: str):
    g = torch.Generator().manual_seed(0)
    y_hat = torch.randn(1, cfg.cond_channels[-1], h // 16, w // 16, generator=g)
    x_mse = torch.rand(1, 3, h, w, generator=g)
    feats = [torch.randn(1, c, h // s, w // s, generator=g)
             for c, s in zip(cfg.cond_channels[1:-1], cfg.cond_scales[1:-1])]
    return y_hat.to(device), (x_mse.to(device), [f.to(device) for f in feats])


def _time(dec: DiffusionDecoder, size: tuple[int, int], steps: int, device: str,
          repeat: int, bf16: bool) -> float:
    h, w = size
    y_hat, feats = _inputs(dec.config, h, w, device)
    best = float("inf")
    if device == "cuda":  # warm-up (kernel selection, allocator)
        dec.decode(y_hat, feats, steps=2, seed=0, device=device, bf16=bf16)
        torch.cuda.synchronize()
    for _ in range(repeat):
        t0 = time.perf_counter()
        dec.decode(y_hat, feats, steps=steps, seed=0, device=device, bf16=bf16)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def _size(s: str) -> tuple[int, int]:
    w, h = s.lower().split("x")
    return int(h), int(w)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50])
    p.add_argument("--cpu-sizes", nargs="*", default=["256x256"], help="WxH list ('' = skip)")
    p.add_argument("--gpu-sizes", nargs="*", default=["256x256", "768x512"])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--cpu-measure-all", action="store_true",
                   help="measure every step count on the CPU (default: measure the smallest, "
                        "extrapolate the others linearly; each step costs the same)")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dec = DiffusionDecoder(DiffusionConfig())
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.update({
        "note": "TIMING ONLY: untrained full-size U-Net (random weights); decode = context "
                "adaptation + N U-Net evaluations + DCT posterior steps; codec g_s not included",
        "config": dec.config.to_dict(), "parameters": dec.num_parameters(),
        "torch": torch.__version__, "python": platform.python_version(),
        "cpu_load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "cpu_count": os.cpu_count()})
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        results["cpu_note"] = ("CPU was shared with other jobs while measuring (load average above "
                               "the core count): an idle machine is faster")
    else:
        results.pop("cpu_note", None)
    runs = results.setdefault("runs", {})

    def record(key: str, device: str, size, steps: int, secs: float, extra: dict) -> None:
        runs[key] = {"device": device, "width": size[1], "height": size[0], "steps": steps,
                     "seconds": round(secs, 4), "seconds_per_step": round(secs / steps, 4),
                     **extra}
        print(f"{key:40s} {secs:8.3f} s  ({secs / steps * 1000:7.1f} ms/step)", flush=True)

    cpu_name = platform.processor() or platform.machine()
    for s in [s for s in args.cpu_sizes if s]:
        size = _size(s)
        base_steps = min(args.steps)
        base = None
        for steps in sorted(args.steps):
            extra = {"threads": args.threads, "cpu": cpu_name, "extrapolated": False}
            if args.cpu_measure_all or base is None:
                secs = _time(dec, size, steps, "cpu", args.repeat, False)
                base = base if base is not None else secs
            else:  # linear in the number of steps (one U-Net evaluation per step)
                secs = base * steps / base_steps
                extra.update(extrapolated=True, measured_steps=base_steps)
            record(f"cpu{args.threads}t_{s}_{steps}", "cpu", size, steps, secs, extra)
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        for s in args.gpu_sizes:
            size = _size(s)
            for steps in args.steps:
                for bf16 in (False, True):
                    secs = _time(dec, size, steps, "cuda", max(2, args.repeat), bf16)
                    record(f"cuda{'_bf16' if bf16 else ''}_{s}_{steps}", "cuda", size, steps,
                           secs, {"gpu": gpu, "bf16_autocast": bf16})
    else:
        results["gpu"] = "not available on the machine that ran this (CPU numbers only)"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
