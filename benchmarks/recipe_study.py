"""Recipe study: which training recipe gives the best Kodak RD per CPU-hour on this machine
(issue 12, docs/training.md "Recipe study").

Every arm trains from scratch for the same *quiet-machine CPU budget*: its number of steps is the
budget divided by the CPU seconds one step of its configuration costs on a quiet machine
(``benchmarks/train_step_cost.py``). Measured CPU time is not used for the budget because, on a
shared 2-core machine, contention inflates it by up to 2× (OpenMP threads spin while their partner
is descheduled), so arms run at different times would not be comparable. Arms are validated with
real bitstreams on the first ``VAL_IMAGES`` Kodak images at 4 evenly spaced points, run one after
another (never two heavy jobs at once on 2 cores) and resume where they stopped.

    python benchmarks/recipe_study.py run [ARM ...]     # run (or finish) arms, niced
    python benchmarks/recipe_study.py summary           # table + JSON + learning-curve PNG

Results: ``benchmarks/results/recipe_study.json`` and ``docs/figures/recipe_study.png``; runs under
``runs/study/<arm>`` (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIC_SHARED_DIR", ROOT.parent / "shared"))
DATA = f"{SHARED}/data/train{os.pathsep}{SHARED}/data/train_extra"
KODAK = SHARED / "data" / "kodak"
RUNS = ROOT / "runs" / "study"
RESULTS = ROOT / "benchmarks" / "results"
VAL_IMAGES = 6
VAL_U = ["0", "0.5", "1"]
CPU_BUDGET_MIN = 30.0
#: quiet CPU seconds (2 threads, both counted) per step of the base config (preview, crop 128,
#: batch 8); benchmarks/results/train_step_cost.json
BASE_STEP_CPU_S = 0.86

COMMON = ["--model", "lic-lgem-preview", "--batch", "8", "--crop", "128", "--warmup", "100",
          "--decay", "constant", "--clip", "1.0", "--threads", "0", "--log-every", "50",
          "--ckpt-every", "0", "--ckpt-minutes", "5", "--keep", "1"]

#: arm name → flags on top of COMMON (later flags win in argparse)
ARMS: dict[str, list[str]] = {
    # learning rate (CompressAI's 1e-4 vs higher with warm-up and clipping), 30 CPU-min each
    "lr1e-4": ["--lr", "1e-4"],
    "lr4e-4": ["--lr", "4e-4"],
    "lr1e-3": ["--lr", "1e-3"],
    # at the chosen lr, 15 CPU-min each (compared with the lr arms at equal steps)
    "crop256": ["--lr", "4e-4", "--crop", "256"],
    "bf16": ["--lr", "4e-4", "--amp"],
    "N48": ["--lr", "4e-4", "--model-config", "N=48"],
    "N96": ["--lr", "4e-4", "--model-config", "N=96"],
    "rb2": ["--lr", "4e-4", "--model-config", "res_blocks=2"],
    "one-lambda": ["--lr", "4e-4", "--lambdas", "0.013"],
}
#: CPU-minute budget per arm (default CPU_BUDGET_MIN)
BUDGET = {a: 15.0 for a in ("crop256", "bf16", "N48", "N96", "rb2", "one-lambda")}
#: quiet CPU cost of one step relative to the base config (train_step_cost.json)
RELATIVE_COST: dict[str, float] = {"crop256": 3.91, "bf16": 0.78, "N48": 0.86, "N96": 1.76,
                                   "rb2": 1.26, "one-lambda": 1.0}


def arm_steps(arm: str) -> int:
    cpu = 60.0 * BUDGET.get(arm, CPU_BUDGET_MIN)
    return int(round(cpu / (BASE_STEP_CPU_S * RELATIVE_COST.get(arm, 1.0)) / 4.0)) * 4


def arm_cmd(arm: str) -> list[str]:
    out = RUNS / arm
    n = arm_steps(arm)
    cmd = [sys.executable, "-m", "lic_core.train", "--data", DATA, "--out", str(out), *COMMON,
           *ARMS[arm], "--steps", str(n), "--val-every", str(n // 4), "--val-dir", str(KODAK),
           "--val-limit", str(VAL_IMAGES), "--val-u", *VAL_U]
    if any(out.glob("ckpt-*.pt")):
        cmd += ["--resume", str(out)]
    return cmd


def arm_done(arm: str) -> bool:
    log = RUNS / arm / "log.jsonl"
    if not log.is_file():
        return False
    recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    ends = [r for r in recs if r.get("type") == "end"]
    return bool(ends) and ends[-1].get("step", 0) >= arm_steps(arm)


def run_niced(cmd: list[str], out_file: Path) -> int:
    """Run ``cmd`` under ``nice -n 19`` from the checkout (its output appended to ``out_file``);
    returns its exit status. Shared with benchmarks/capacity_study.py."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with open(out_file, "a") as fh:
        return subprocess.call(["nice", "-n", "19", *cmd], cwd=ROOT, env=env, stdout=fh,
                               stderr=subprocess.STDOUT)


def run(arms: list[str]) -> None:
    for arm in arms or list(ARMS):
        if arm_done(arm):
            print(f"{arm}: done")
            continue
        print(f"{arm}: running", flush=True)
        RUNS.mkdir(parents=True, exist_ok=True)
        rc = run_niced(arm_cmd(arm), RUNS.parent / f"study-{arm}.out")
        if rc != 0:
            print(f"{arm}: exit {rc}", flush=True)
            return


def final_eval(arm: str, runs: Path = RUNS) -> dict:
    """All 24 Kodak images, 6 slider points, real bitstreams, of the arm's last checkpoint
    (``runs/<arm>``; the capacity study passes its own folder)."""
    sys.path.insert(0, str(ROOT))
    import torch

    from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
    from lic_core.train.export import _round_to_fp16_, rebuild_model
    from lic_core.train.validate import CARD_U_VALUES, evaluate

    torch.set_num_threads(2)
    ck = load_checkpoint(latest_checkpoint(runs / arm))
    model = rebuild_model(ck)
    model.load_state_dict(ck["ema"]["shadow"] if ck.get("ema") else ck["model"])
    model.eval()
    _round_to_fp16_(model)  # what an export would ship
    res = evaluate(model, KODAK, list(CARD_U_VALUES), with_msssim=False)
    out = {"arm": arm, "step": ck["step"], "cpu_s": ck.get("cpu_s"), **res}
    (runs / arm / "final_eval.json").write_text(json.dumps(out, indent=1))
    return out


def _interp_psnr(points: list[dict], bpp: float) -> float | None:
    """PSNR at ``bpp`` by linear interpolation in log-rate (None outside the measured range)."""
    pts = sorted((p["bpp"], p["psnr"]) for p in points)
    for (b0, q0), (b1, q1) in zip(pts, pts[1:]):
        if b0 <= bpp <= b1 and b1 > b0:
            t = (math.log(bpp) - math.log(b0)) / (math.log(b1) - math.log(b0))
            return q0 + t * (q1 - q0)
    return None


def summary() -> dict:
    sys.path.insert(0, str(ROOT))
    from campaign.learning_curve import curve_rows, render_xy

    names = sorted(p.name for p in KODAK.glob("*.png"))
    table, series = [], []
    for arm in [a for a in ARMS if (RUNS / a / "log.jsonl").is_file()]:
        rows = curve_rows(RUNS / arm / "log.jsonl", RESULTS / "classical" / "jpeg.json", names)
        webp = curve_rows(RUNS / arm / "log.jsonl", RESULTS / "classical" / "webp.json", names)
        for r, w in zip(rows, webp):
            r["bd_rate_webp"] = w["bd_rate"]
        fe = RUNS / arm / "final_eval.json"
        final = json.loads(fe.read_text()) if fe.is_file() else None
        table.append({"arm": arm, "flags": ARMS[arm], "curve": rows, "final_eval": final})
        cost = BASE_STEP_CPU_S * RELATIVE_COST.get(arm, 1.0) / 60.0
        for r in rows:
            r["quiet_cpu_min"] = r["step"] * cost
        series.append((arm, [r["quiet_cpu_min"] for r in rows], [r["bd_psnr"] for r in rows]))
        last = rows[-1] if rows else None
        if last:
            pts = " ".join(f"{p['bpp']:.3f}/{p['psnr']:.2f}" for p in last["points"])
            bd = last["bd_psnr"]
            print(f"{arm:>12}: {last['quiet_cpu_min']:5.1f} quiet CPU-min, step {last['step']:5d}, "
                  f"Kodak-{last['images']} bpp/PSNR {pts}, BD-PSNR vs JPEG "
                  + (f"{bd:+.2f} dB" if bd is not None else "n/a"))
        if final:
            pts = " ".join(f"{p['bpp']:.3f}/{p['psnr']:.2f}" for p in final["points"])
            print(f"{'':>12}  Kodak-24 final: {pts}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"cpu_budget_min": CPU_BUDGET_MIN, "val_images": VAL_IMAGES, "common": COMMON,
           "arms": table}
    (RESULTS / "recipe_study.json").write_text(json.dumps(out, indent=1) + "\n")
    render_xy(series, ROOT / "docs" / "figures" / "recipe_study.png", "training CPU-minutes (quiet-machine cost)",
              "BD-PSNR vs JPEG on the same Kodak images (dB)",
              title="Recipe study: real-bitstream validation on 6 Kodak images", hlines=[("JPEG", 0.0)])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("arms", nargs="*")
    sub.add_parser("summary")
    f = sub.add_parser("final-eval")
    f.add_argument("arms", nargs="+")
    a = ap.parse_args()
    if a.cmd == "run":
        run(a.arms)
    elif a.cmd == "summary":
        summary()
    else:
        for arm in a.arms:
            r = final_eval(arm)
            print(arm, " ".join(f"u={p['u']:.1f} {p['bpp']:.3f}/{p['psnr']:.2f}"
                                for p in r["points"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
