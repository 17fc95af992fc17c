"""CPU cost of one training step per recipe-study configuration (issue 12, docs/training.md).

For each arm of ``benchmarks/recipe_study.py`` builds its model, runs a few warm-up steps and then
times ``STEPS`` optimizer steps (forward, RD loss, backward, Adam, aux step) on random crops,
reporting wall seconds and process CPU seconds (all threads) per step. Run it on a quiet machine
(the numbers set the arms' step budgets); it prints a table and saves
``benchmarks/results/train_step_cost.json``.

    python benchmarks/train_step_cost.py [--threads 2] [--steps 6] [--channels-last] [ARM ...]

``campaign`` as an ARM measures the codec campaign's recipe (``campaign/codec.py: RECIPE``);
``--channels-last`` the same with the model and batch in channels_last.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def flag(flags: list[str], name: str, default=None):
    if name not in flags:
        return default
    i = len(flags) - 1 - flags[::-1].index(name)  # the last occurrence wins, as in argparse
    vals = []
    for v in flags[i + 1:]:
        if v.startswith("--"):
            break
        vals.append(v)
    return vals if len(vals) != 1 else vals[0]


def measure(flags: list[str], threads: int, steps: int) -> dict:
    import torch

    from lic_core.train.loop import parse_model_config, rd_terms, resolve_model

    torch.set_num_threads(threads)
    over = flag(flags, "--model-config", [])
    over = parse_model_config([over] if isinstance(over, str) else over)
    model = resolve_model(flag(flags, "--model", "lic-lgem-preview"), **over)
    crop, batch = int(flag(flags, "--crop", 128)), int(flag(flags, "--batch", 8))
    amp = "--amp" in flags
    channels_last = "--channels-last" in flags
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.main_parameters(), 1e-4)
    aux = torch.optim.Adam(model.aux_parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, crop, crop, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x, 0.6)
        loss = rd_terms(out, x, 0.01)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.main_parameters(), 1.0)
        opt.step()
        aux.zero_grad(set_to_none=True)
        model.aux_loss().backward()
        aux.step()

    for _ in range(2):
        step()
    w0, c0 = time.perf_counter(), cpu_s()
    for _ in range(steps):
        step()
    w, c = (time.perf_counter() - w0) / steps, (cpu_s() - c0) / steps
    return {"wall_s_per_step": w, "cpu_s_per_step": c, "threads": threads, "crop": crop,
            "batch": batch, "amp": amp, "channels_last": channels_last,
            "params": sum(p.numel() for p in model.parameters()),
            "loadavg_1min": os.getloadavg()[0]}


def main() -> int:
    import recipe_study as rs

    ap = argparse.ArgumentParser()
    ap.add_argument("arms", nargs="*")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--channels-last", action="store_true",
                    help="the model and the batch in channels_last (the `lic train` flag)")
    a = ap.parse_args()
    arms = a.arms or ["lr4e-4", "crop256", "bf16", "N48", "N96", "rb2"]
    out_path = ROOT / "benchmarks" / "results" / "train_step_cost.json"
    res = json.loads(out_path.read_text()) if out_path.is_file() else {}
    for arm in arms:
        if arm == "campaign":  # the codec campaign's recipe (campaign/codec.py: RECIPE)
            from campaign.codec import RECIPE
            flags = [f for f in RECIPE if f != "--channels-last"]
        else:
            flags = rs.COMMON + rs.ARMS[arm]
        if a.channels_last:
            flags = [*flags, "--channels-last"]
        r = measure(flags, a.threads, a.steps)
        arm = f"{arm}+channels_last" if a.channels_last else arm
        res[f"{arm}@{a.threads}t"] = r
        print(f"{arm:>10} {a.threads}t: {r['wall_s_per_step']:.3f} s/step wall, "
              f"{r['cpu_s_per_step']:.3f} CPU-s/step (load {r['loadavg_1min']:.2f})", flush=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
