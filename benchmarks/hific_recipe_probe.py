"""Is hific-small's recipe its limit? (issue 26 item 3): short arms of ``lic train hific`` from the
shipped ``hific-small`` weights, one recipe change each, measured on the first Kodak images.

The shipped hific-small (3.27 CPU-h from scratch at the paper's lr 1e-4, no warm-up, no clipping)
sits at 23 dB and LPIPS 0.42 whatever the rate, and its training loss stopped falling after about
one CPU-hour. The codec's recipe study (docs/training.md) found lr 1e-4 the worst of its short-
horizon arms (4e-4 with a warm-up and gradient clipping the best). Each arm here continues stage 2
(GAN on, a fresh D, fresh optimizers) for the same CPU budget with the same seed and data; then the
model, in eval mode (real rounding of ŷ and ẑ), is measured on full Kodak pictures: bpp from the
quantized likelihoods (the file adds a few header bytes), PSNR and LPIPS of the picture.

    python benchmarks/hific_recipe_probe.py [--arms paper,lr4e-4] [--cpu-min 20] [--images 4]
        [--us 0,0.5,1] [--kodak ../shared/data/kodak] [--runs runs/hific-probe]
        [--out benchmarks/results/hific_recipe_probe.json]

Arms that already reached the budget are measured again, not retrained (a re-run continues).
Run it niced and alone: it is a heavy CPU job.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "hific_recipe_probe.json"

#: one change per arm against the shipped run's recipe (campaign/generative.py RECIPES["hific"])
ARMS: dict[str, list[str]] = {
    "paper": ["--lr", "1e-4"],
    "lr4e-4": ["--lr", "4e-4", "--warmup", "100", "--clip", "1.0", "--d-lr", "1e-4"],
    "lr2e-4": ["--lr", "2e-4", "--warmup", "100", "--clip", "1.0", "--d-lr", "1e-4"],
}
COMMON = ["--stage", "hific-2", "--hific-config", "hific-small", "--batch", "4", "--crop", "256",
          "--perceptual", "lpips", "--threads", "0", "--workers", "0", "--log-every", "20",
          "--ckpt-every", "0", "--ckpt-minutes", "8", "--keep", "1", "--steps", "100000000",
          "--seed", "0"]


def train_arm(name: str, run: Path, init: Path, data: str, cpu_min: float) -> dict:
    """Train (or continue) one arm up to ``cpu_min`` CPU-minutes; its last log record."""
    cmd = [sys.executable, "-m", "lic_core.train", "hific", "--data", data, "--out", str(run),
           *COMMON, *ARMS[name], "--cpu-budget-min", f"{cpu_min:g}"]
    from lic_core.train.checkpoint import latest_checkpoint

    if latest_checkpoint(run) is None:
        cmd += ["--init", str(init)]
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(run / "train.out", "a") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    recs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
    train = [r for r in recs if "cpu_s" in r and "loss" in r]
    last = train[-1] if train else {}
    return {"steps": int(last.get("step", 0)), "cpu_h": round(float(last.get("cpu_s", 0)) / 3600, 4),
            "wall_s": round(time.monotonic() - t0, 1), "command": " ".join(cmd[2:])}


def _uint8(t, h: int, w: int):
    """The picture's H×W×3 uint8 (padding cut, rounded as the codec writes it)."""
    import numpy as np

    return (t[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def measure(model, kodak: str, n: int, us: list[float]) -> dict:
    """Mean bpp (quantized likelihoods over the original pixels), PSNR and LPIPS per u."""
    import numpy as np
    import torch

    from lic_core.metrics import compute_metrics
    from lic_core.train.data import KodakEval as Eval  # the trainer's validation pictures

    model.eval()
    items = list(Eval(kodak, limit=n))
    out = {}
    with torch.no_grad():
        for u in us:
            rows = []
            for it in items:
                x, (h, w) = it["x"][None], tuple(it["size"])
                res = model(x, float(u))
                bpp = float(res["bpp_quantized"][0]) * x.shape[-2] * x.shape[-1] / (h * w)
                m = compute_metrics(_uint8(x, h, w), _uint8(res["x_hat"], h, w),
                                    ("psnr", "lpips"))
                rows.append((bpp, m["psnr"], m["lpips"]))
            a = np.array(rows)
            out[f"{u:g}"] = {"bpp": float(a[:, 0].mean()), "psnr": float(a[:, 1].mean()),
                             "lpips": float(a[:, 2].mean())}
    return out


def load(path: Path):
    from lic_core.models.hific import HificModel, get_config
    from lic_core.train.hific.trainer import load_init_weights

    model = HificModel(get_config("hific-small"))
    load_init_weights(model, str(path))
    return model


def main(argv=None) -> int:
    from lic_core.paths import shared_dir, weights_path
    from lic_core.train.checkpoint import latest_checkpoint

    shared = shared_dir() or Path(os.environ.get("LIC_SHARED_DIR", ROOT.parent / "shared"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arms", default="paper,lr4e-4")
    p.add_argument("--cpu-min", type=float, default=20.0, help="training CPU-minutes per arm")
    p.add_argument("--images", type=int, default=4, help="first N Kodak images")
    p.add_argument("--us", default="0,0.5,1")
    p.add_argument("--kodak", default=str(Path(shared) / "data" / "kodak"))
    p.add_argument("--data", default=":".join(str(Path(shared) / "data" / d)
                                              for d in ("train", "train_extra")))
    p.add_argument("--runs", default=str(ROOT / "runs" / "hific-probe"))
    p.add_argument("--out", default=str(DEFAULT_OUT))
    a = p.parse_args(argv)
    arms = [s for s in a.arms.split(",") if s]
    bad = [s for s in arms if s not in ARMS]
    if bad:
        print(f"error: unknown arm {bad[0]!r} (choose from {', '.join(ARMS)})", file=sys.stderr)
        return 2
    init = weights_path("hific-small")
    if not init.is_file() or not Path(a.kodak).is_dir():
        print(f"error: needs {init.name} and the Kodak folder {a.kodak}", file=sys.stderr)
        return 2
    us = [float(s) for s in a.us.split(",")]
    from lic_core.threads import apply_threads

    apply_threads(0)
    result = {"what": __doc__.splitlines()[0], "init": init.name, "cpu_min_per_arm": a.cpu_min,
              "images": a.images, "us": us, "common": " ".join(COMMON), "arms": {},
              "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"shipped {init.name} (no training) on {a.images} Kodak images ...", flush=True)
    result["shipped"] = measure(load(init), a.kodak, a.images, us)
    for name in arms:
        run = Path(a.runs) / name
        print(f"arm {name}: {' '.join(ARMS[name])}, {a.cpu_min:g} CPU-min ...", flush=True)
        info = train_arm(name, run, init, a.data, a.cpu_min)
        info["kodak"] = measure(load(latest_checkpoint(run)), a.kodak, a.images, us)
        result["arms"][name] = {"flags": " ".join(ARMS[name]), **info}
    print(f"{'row':<10} " + "  ".join(f"u={u:g}: bpp / dB / LPIPS".ljust(28) for u in us))
    for name, rows in [("shipped", result["shipped"])] + [
            (n, r["kodak"]) for n, r in result["arms"].items()]:
        print(f"{name:<10} " + "  ".join(
            f"{rows[f'{u:g}']['bpp']:.3f} / {rows[f'{u:g}']['psnr']:.2f} / "
            f"{rows[f'{u:g}']['lpips']:.4f}".ljust(28) for u in us))
    from lic_core.fileio import write_bytes_atomic

    text = json.dumps(result, indent=1) + "\n"
    write_bytes_atomic(Path(a.out), text.encode(), True)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
