"""Capacity study: does a wider codec than the campaign's N = 64 learn more by 20 CPU-hours?
(issue 27 item 2, docs/training.md "Capacity study").

The recipe study measured 30-minute horizons, which favour small models. Here each arm trains
**from scratch with the campaign's recipe** (``campaign/codec.py: RECIPE``: crop 128 × batch 8,
lr 4e-4 constant after a 200-step warm-up, bf16 autocast, EMA 0.999, adaptive threads) and its
eleven λ (:data:`CAMPAIGN_LAMBDAS`, the rate levels of issue 27 item 1), for ``--budget-min``
CPU-minutes (default 120), validated with real bitstreams on the first 6 Kodak images at u = 0,
0.5, 1 at :data:`VAL_POINTS` evenly spaced steps. ``summary`` fits each arm's learning curve
(BD-PSNR vs JPEG over CPU-hours) with a saturating power law (:mod:`capacity_fit`), extrapolates
it to :data:`TARGET_CPU_H` with an interval, and says which arm is ahead or "undecided".

**CPU time is booked at the quiet-machine cost of a step**, as in the recipe study: an arm's step
budget is its CPU budget divided by the CPU seconds one step of its configuration costs on a quiet
machine, and its curve's x axis is steps × that cost. Measured process CPU is not used because on
this shared 2-core machine contention inflates it by up to 2× (OpenMP threads spin while their
partner is descheduled), so two arms run at different times would not be comparable; it is kept
in the JSON (``cpu_h``) for reference. The train_step_cost table has no entry for the wide arms
with this recipe (bf16, eleven levels), so ``run`` first measures every arm's step at 1 thread
beside the recipe study's base configuration (``benchmarks/train_step_cost.py``'s ``measure``,
a few seconds each, refused on a loaded machine) and books
``BASE_STEP_CPU_S × cost(arm) / cost(base)``: the recipe study's 2-thread quiet cost of its base
step, scaled by the arm's relative cost measured in the same session. The costs are saved in
``benchmarks/results/train_step_cost.json`` (``capacity-<arm>@1t``) and frozen per arm in
``runs/capacity/<arm>/plan.json`` when it starts, so a resumed arm keeps its step count.

**Decode cost**: the issue allows the exact decode to grow at most 2× over today's (N = 64).
``decode-cost`` counts each arm's multiply-adds per pixel of g_s and of the whole decoder (h_s,
the LGEM contexts, g_s; ``torch.utils.flop_counter``), predicts the 1-MP exact-decode time
relative to N64 from the measured share of g_s in today's decode
(``benchmarks/results/exact_path_lic-lgem-cpu.json``, stages at 1 thread: the entropy part does
not depend on N), and with ``--measure`` times a real exact decode of each randomly initialised
arm (a 512² picture, min of 3, arms interleaved; < 30 s). Arms predicted or measured over 2×
are excluded from the decision.

    nice -n 19 python benchmarks/capacity_study.py run [ARM ...] [--budget-min 120]
    python benchmarks/capacity_study.py decode-cost [--measure]
    python benchmarks/capacity_study.py summary          # table + JSON + PNG + decision
    python benchmarks/capacity_study.py final-eval ARM   # Kodak 24, 6 slider points

Stop the campaign first (``tools/campaign.sh stop``): one heavy job at a time on 2 cores. Runs
under ``runs/capacity/<arm>`` (git-ignored), resumable; results
``benchmarks/results/capacity_study.json`` and ``docs/figures/capacity_study.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import capacity_fit as cf  # noqa: E402
import recipe_study as rs  # noqa: E402

from campaign.codec import RECIPE  # noqa: E402

RUNS = ROOT / "runs" / "capacity"
RESULTS = ROOT / "benchmarks" / "results"
COST_FILE = RESULTS / "train_step_cost.json"
EXACT_STAGES = RESULTS / "exact_path_lic-lgem-cpu.json"
BUDGET_MIN = 120.0
VAL_POINTS = 8
TARGET_CPU_H = 20.0
DECODE_LIMIT = 2.0
#: quiet 1-min load average above which step costs are not measured (2 cores)
QUIET_LOAD = 1.0
#: the campaign's eleven rate levels since issue 27 item 1 (docs/training.md "Eleven rate
#: levels"; the 2026-12-07 export card's λ list, checked by tests/core/test_capacity_study.py)
CAMPAIGN_LAMBDAS = (0.00045, 0.0009, 0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483, 0.0932, 0.18,
                    0.36)
#: arm → architecture overrides of ``lic-lgem-preview`` (the campaign's narrow config, N = 64)
ARMS: dict[str, dict] = {
    "N64": {},
    "N96": {"N": 96},  # wider: g_s 2.2× the multiply-adds
    "N80": {"N": 80},  # the width between, should N96 break the decode limit
    "rb2": {"res_blocks": 2},  # deeper: two residual blocks per stage
    # warm arms: from the shipped lic-lgem-cpu weights instead of from scratch (N96w widened
    # so that it starts as exactly the same codec, lic_core/transform/widen.py)
    "A96": {"analysis_N": 96},  # a wider encoder only: the decoder (and decode time) of N64
    "N64w": {},
    "N96w": {"N": 96},
    "A96w": {"analysis_N": 96},
}
#: warm arm → the from-scratch arm of its architecture (its step cost, its decode cost)
WARM: dict[str, str] = {"N64w": "N64", "N96w": "N96", "A96w": "A96"}
#: the shipped weights the warm arms start from
WARM_FROM = "lic-lgem-cpu"
BASELINE = "N64"
DEFAULT_ARMS = ("N64", "N96")
REFERENCES = ("jpeg", "webp", "avif")


# ------------------------------------------------------------------------------ arm commands
def _drop(flags: list[str], name: str) -> list[str]:
    """``flags`` without ``name`` and its one value."""
    out, skip = [], False
    for f in flags:
        if skip:
            skip = False
        elif f == name:
            skip = True
        else:
            out.append(f)
    return out


def model_overrides(arm: str) -> dict:
    """The arm's architecture overrides with the campaign's λ list (one gain level per λ)."""
    return {**ARMS[arm], "lambdas": list(CAMPAIGN_LAMBDAS)}


def model_config_flags(arm: str) -> list[str]:
    """``--model-config KEY=VALUE ...`` of the arm (one occurrence: argparse keeps the last)."""
    items = [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in model_overrides(arm).items()]
    return ["--model-config", *items]


def arm_flags(arm: str) -> list[str]:
    """Training flags of an arm: the campaign's RECIPE (its run length and logging excepted)
    plus the arm's architecture; what the step cost is measured with too."""
    recipe = _drop(_drop(list(RECIPE), "--steps"), "--log-every")
    return [*recipe, *model_config_flags(arm)]


def arm_steps(budget_min: float, step_cpu_s: float) -> int:
    """Steps of a CPU budget at a booked step cost, a multiple of :data:`VAL_POINTS`."""
    return max(1, int(round(60.0 * budget_min / step_cpu_s / VAL_POINTS))) * VAL_POINTS


def shipped_hash() -> str:
    """The weights hash (hex) of the shipped :data:`WARM_FROM`."""
    from lic_core.paths import weights_path
    from lic_core.weights import load_weights

    return str(load_weights(weights_path(WARM_FROM))[1]["weights_hash"])


def warm_init(arm: str, runs: Path = RUNS) -> Path:
    """The weights a warm arm starts from: the shipped :data:`WARM_FROM` as it is (N64w), or
    widened to the arm's N and saved once as ``<arm>/init.pt`` (weights only, checkpoint format,
    step 0: the arm's steps and booked CPU count from the warm start) with the hash of the
    weights it was widened from — reused only while those are still the shipped ones."""
    import torch

    from lic_core.models import load_model
    from lic_core.paths import weights_path

    src = weights_path(WARM_FROM)
    widths = {k: int(v) for k, v in ARMS[arm].items() if k in ("N", "analysis_N")}
    if not widths:
        return src
    dst = runs / arm / "init.pt"
    if dst.is_file():
        have = torch.load(dst, map_location="cpu", weights_only=True).get("widened_from_hash")
        if have != shipped_hash():
            raise SystemExit(f"{dst} was widened from other weights ({have}) than the shipped "
                             f"{WARM_FROM}: delete it (and the arm's run) to start afresh")
        return dst
    from lic_core.models.widen import widen_model

    wide = widen_model(load_model(WARM_FROM, src), **widths)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save({"model": wide.state_dict(), "step": 0, "cpu_s": 0.0,
                "model_name": "lic-lgem-preview", "config": wide.config.to_dict(),
                "widened_from": str(src), "widened_from_hash": shipped_hash()}, tmp)
    os.replace(tmp, dst)
    return dst


def warm_start_hash(arm: str, runs: Path = RUNS) -> Optional[str]:
    """The hash of the shipped weights a warm arm started from (its log's start record, or the
    widened init's), None when unknown."""
    import torch

    from campaign.learning_curve import read_log

    if any(k in ARMS[arm] for k in ("N", "analysis_N")):
        p = runs / arm / "init.pt"
        return torch.load(p, map_location="cpu", weights_only=True).get(
            "widened_from_hash") if p.is_file() else None
    starts = [r for r in read_log(runs / arm / "log.jsonl") if r.get("type") == "start"]
    return (starts[0].get("init") or {}).get("weights_hash") if starts else None


def _write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` as JSON atomically (a crash leaves the old file or none, never half)."""
    from lic_core.fileio import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(obj, indent=1) + "\n").encode(), overwrite=True)


def arm_cmd(arm: str, steps: int, runs: Path = RUNS) -> list[str]:
    """The training command of an arm (``--resume`` when it has a checkpoint; else from
    scratch, or for a warm arm (:data:`WARM`) ``--init`` its warm start)."""
    out = runs / arm
    cmd = [sys.executable, "-m", "lic_core.train", "codec", "--data", rs.DATA, "--out", str(out),
           *arm_flags(arm), "--steps", str(steps), "--log-every", "100", "--ckpt-every", "0",
           "--ckpt-minutes", "5", "--keep", "1", "--val-every", str(steps // VAL_POINTS),
           "--val-dir", str(rs.KODAK), "--val-limit", str(rs.VAL_IMAGES), "--val-u", *rs.VAL_U]
    if any(out.glob("ckpt-*.pt")):
        cmd += ["--resume", str(out)]
    elif arm in WARM:
        cmd += ["--init", str(warm_init(arm, runs))]
    return cmd


def arm_done(arm: str, steps: int, runs: Path = RUNS) -> bool:
    """The arm's log ends with an ``end`` record at ``steps`` or beyond."""
    from campaign.learning_curve import read_log

    ends = [r for r in read_log(runs / arm / "log.jsonl") if r.get("type") == "end"]
    return bool(ends) and int(ends[-1].get("step", 0)) >= steps


# ------------------------------------------------------------------------------ step costs
def cost_key(arm: str) -> str:
    """A warm arm costs what a step of its architecture costs."""
    return f"capacity-{WARM.get(arm, arm)}@1t"


BASE_KEY = "capacity-base@1t"


def booked_step_cpu_s(arm: str, costs: dict) -> Optional[float]:
    """Quiet 2-thread CPU-s of one step of ``arm`` (module docstring), None if not measured."""
    if cost_key(arm) not in costs or BASE_KEY not in costs:
        return None
    rel = costs[cost_key(arm)]["cpu_s_per_step"] / costs[BASE_KEY]["cpu_s_per_step"]
    return rs.BASE_STEP_CPU_S * rel


def measure_step_costs(arms: list[str], steps: int = 6, force: bool = False) -> dict:
    """Measure the base configuration and ``arms`` at 1 thread in one go, saved in
    :data:`COST_FILE`; refused on a loaded machine (the costs would be inflated)."""
    import train_step_cost as tsc

    load = os.getloadavg()[0]
    if load > QUIET_LOAD and not force:
        raise SystemExit(f"load average {load:.2f} > {QUIET_LOAD}: stop the campaign "
                         "(tools/campaign.sh stop), wait a minute, retry (or --force)")
    res = json.loads(COST_FILE.read_text()) if COST_FILE.is_file() else {}
    jobs = [(BASE_KEY, rs.COMMON + rs.ARMS["lr4e-4"])]
    jobs += [(cost_key(a), arm_flags(a)) for a in arms]
    for key, flags in jobs:
        res[key] = tsc.measure(flags, 1, steps)
        print(f"{key}: {res[key]['cpu_s_per_step']:.3f} CPU-s/step (load "
              f"{res[key]['loadavg_1min']:.2f})", flush=True)
    _write_json(COST_FILE, res)
    return res


def plan(arm: str, budget_min: float, runs: Path = RUNS) -> Optional[dict]:
    """``{"step_cpu_s", "steps", "budget_min"}`` of the arm: its step cost frozen in
    ``plan.json`` at its start (a resumed arm keeps it), else from :data:`COST_FILE`."""
    p = runs / arm / "plan.json"
    if p.is_file():
        cost = float(json.loads(p.read_text())["step_cpu_s"])
    else:
        costs = json.loads(COST_FILE.read_text()) if COST_FILE.is_file() else {}
        cost = booked_step_cpu_s(arm, costs)
        if cost is None:
            return None
    return {"step_cpu_s": cost, "steps": arm_steps(budget_min, cost), "budget_min": budget_min}


def run(arms: list[str], budget_min: float = BUDGET_MIN, force: bool = False) -> int:
    """Train the arms one after another (niced), measuring step costs first when missing."""
    arms = arms or list(DEFAULT_ARMS)
    if any(plan(a, budget_min) is None for a in arms):
        measure_step_costs([a for a in ARMS if (a in arms or a == BASELINE) and a not in WARM]
                           + [WARM[a] for a in arms if a in WARM and WARM[a] not in arms
                              and WARM[a] != BASELINE], force=force)
    if not (RUNS / "decode_cost.json").is_file() and any(a not in WARM for a in arms):
        decode_cost(arms, measure=True)
    for arm in arms:
        pl = plan(arm, budget_min)
        if arm_done(arm, pl["steps"]):
            print(f"{arm}: done ({pl['steps']} steps)")
            continue
        (RUNS / arm).mkdir(parents=True, exist_ok=True)
        _write_json(RUNS / arm / "plan.json", pl)
        print(f"{arm}: running to step {pl['steps']} ({pl['step_cpu_s']:.3f} booked CPU-s/step)",
              flush=True)
        rc = rs.run_niced(arm_cmd(arm, pl["steps"]), RUNS / f"{arm}.out")
        if rc != 0:
            print(f"{arm}: exit {rc} (see {RUNS / f'{arm}.out'})", flush=True)
            return rc
    return 0


# ------------------------------------------------------------------------------ decay branches
DECAY_MIN = 20.0
DECAY_FINAL_LR = 0.1


def decay_dir(arm: str, runs: Path = RUNS) -> Path:
    return runs / f"{arm}-decay"


def decay_cmd(arm: str, decay_min: float = DECAY_MIN, runs: Path = RUNS) -> list[str]:
    """The arm's decay branch, as the campaign ends a phase (campaign/decay.py): the arm's newest
    checkpoint forked into ``<arm>-decay`` and trained on with the same recipe while the learning
    rate falls as a cosine to :data:`DECAY_FINAL_LR` of its peak, for ``decay_min`` booked
    CPU-minutes at the arm's step cost; validated once, at its end (the loop does that when a run
    completes). A stable-phase validation shows the EMA of a noisy constant-rate run; what an arm
    has learned shows after the decay (warmup–stable–decay: Hägele et al. 2024, §3)."""
    from campaign.decay import decay_recipe
    from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

    out = decay_dir(arm, runs)
    src = latest_checkpoint(runs / arm)
    if src is None:
        raise SystemExit(f"{arm}: no checkpoint to decay (run the arm first)")
    arm_plan = json.loads((runs / arm / "plan.json").read_text())
    if "steps" in arm_plan and not arm_done(arm, int(arm_plan["steps"]), runs):
        raise SystemExit(f"{arm}: not at the end of its budget (step {arm_plan['steps']}): "
                         "arms are compared at equal CPU, run it to the end first")
    fork = int(load_checkpoint(src)["step"])
    pl = json.loads((out / "plan.json").read_text()) if (out / "plan.json").is_file() else None
    if pl is None or int(pl["fork_step"]) != fork or latest_checkpoint(out) is None:
        # a new fork (or the arm trained on since): the old branch goes, log and all
        cost = float(arm_plan["step_cpu_s"])
        k = max(50, int(round(60.0 * decay_min / cost)))
        pl = {"forked_from": str(src), "fork_step": fork, "steps": fork + k,
              "step_cpu_s": cost, "decay_min": decay_min, "final_lr": DECAY_FINAL_LR}
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        shutil.copy2(src, out / src.name)
        _write_json(out / "plan.json", pl)
    recipe = decay_recipe(_drop(arm_flags(arm), "--decay"), pl["fork_step"], pl["steps"],
                          pl["final_lr"])
    return [sys.executable, "-m", "lic_core.train", "codec", "--data", rs.DATA, "--out", str(out),
            *recipe, "--log-every", "100", "--ckpt-every", "0", "--ckpt-minutes", "5",
            "--keep", "1", "--val-every", "0", "--val-dir", str(rs.KODAK),
            "--val-limit", str(rs.VAL_IMAGES), "--val-u", *rs.VAL_U, "--resume", str(out)]


def decay_up_to_date(arm: str, runs: Path = RUNS) -> bool:
    """The arm's decay branch is finished and forked from the arm's newest checkpoint (an arm
    that trained on since needs a new fork: :func:`decay_cmd` makes it)."""
    from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

    out, src = decay_dir(arm, runs), latest_checkpoint(runs / arm)
    if src is None or not (out / "plan.json").is_file():
        return False
    pl = json.loads((out / "plan.json").read_text())
    return (arm_done(f"{arm}-decay", int(pl["steps"]), runs)
            and int(pl["fork_step"]) == int(load_checkpoint(src)["step"]))


def decay(arms: list[str], decay_min: float = DECAY_MIN) -> int:
    """The arms' decay branches, one after another (niced, resumable)."""
    for arm in arms:
        out = decay_dir(arm)
        if decay_up_to_date(arm):
            steps = json.loads((out / "plan.json").read_text())["steps"]
            print(f"{arm}: decay branch done ({steps} steps)")
            continue
        cmd = decay_cmd(arm, decay_min)
        print(f"{arm}: decay branch to step {json.loads((out / 'plan.json').read_text())['steps']}",
              flush=True)
        rc = rs.run_niced(cmd, RUNS / f"{arm}-decay.out")
        if rc != 0:
            print(f"{arm}: decay exit {rc}", flush=True)
            return rc
    return 0


# ------------------------------------------------------------------------------ decode cost
def build_arm_model(arm: str):
    """A randomly initialised model of the arm (eval mode)."""
    from lic_core.models import build_model

    m = build_model("lic-lgem-preview", **model_overrides(arm))
    return m.eval()


def macs_per_pixel(model, size: int = 128) -> dict:
    """Multiply-adds per picture pixel of g_s, of the decoder (h_s, contexts, g_s: the forward
    pass without g_a and h_a) and of the whole model, at a ``size``² input (convs, linears and
    attention products; per pixel nearly independent of the size)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))

    def macs(fn, *args) -> float:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            fn(*args)
        return fc.get_total_flops() / 2.0 / (size * size)  # FLOPs count a MAC as two

    y = model.g_a(x)
    total, g_a, h_a = macs(model, x, 0.5), macs(model.g_a, x), macs(model.h_a, y)
    return {"g_s": macs(model.g_s, y), "decoder": total - g_a - h_a, "total": total}


def gs_share_of_decode(path: Path = EXACT_STAGES) -> Optional[float]:
    """Share of g_s in today's exact 1-MP decode at 1 thread (benchmarks/exact_path.py stages)."""
    if not path.is_file():
        return None
    st = json.loads(path.read_text()).get("stages", {}).get("by_threads", {}).get("1")
    if not st:
        return None
    return st["stages"]["g_s"]["wall_s"] / st["decode_without_png"]["wall_s"]


def predicted_decode_ratio(macs: dict, base: dict, gs_share: Optional[float]) -> float:
    """Exact-decode time relative to the baseline: g_s's share scaled by its MAC ratio, the
    rest (entropy parameters, range decoder) unchanged; without the share, the decoder's
    MAC ratio."""
    if gs_share is None:
        return macs["decoder"] / base["decoder"]
    return (1.0 - gs_share) + gs_share * macs["g_s"] / base["g_s"]


def time_exact_decode(models: dict, size: int = 512, repeat: int = 3) -> dict[str, float]:
    """Seconds of a real exact decode (``LearnedCodec``) of a ``size``² picture per model at 1
    thread, min of ``repeat``, the models interleaved so drifting load hits all alike."""
    import numpy as np
    import torch

    from lic_core.codecs import EncodeParams
    from lic_core.codecs.learned import LearnedCodec

    torch.set_num_threads(1)
    rng = np.random.RandomState(0)
    img = np.clip(128 + 40 * rng.randn(size, size, 3), 0, 255).astype(np.uint8)
    data = {}
    for arm, m in models.items():
        m.prior.update_tables()
        codec = LearnedCodec(f"capacity-{arm}", model=m, use_finetuned=False,
                             use_tcq_tables=False)
        data[arm] = (codec, codec.encode(img, EncodeParams(rate=0.5, quantizer="round")).data)
        codec.decode(data[arm][1])  # builds the exact networks: not part of the timing
    best = {a: math.inf for a in models}
    for _ in range(repeat):
        for arm, (codec, blob) in data.items():
            t0 = _clock()
            codec.decode(blob)
            best[arm] = min(best[arm], _clock() - t0)
    return best


def _clock() -> float:
    import time

    return time.perf_counter()


def decode_cost(arms: list[str], measure: bool = False, size: int = 512) -> dict:
    """Per arm: parameters, MACs/pixel, MAC ratios and predicted (and with ``measure`` the
    measured) exact-decode ratio to :data:`BASELINE`, and whether it exceeds the limit. The
    measurement is saved in ``runs/capacity/decode_cost.json`` and reused when not remeasured."""
    arms = list(dict.fromkeys([BASELINE, *arms]))
    models = {a: build_arm_model(a) for a in arms}
    macs = {a: macs_per_pixel(m) for a, m in models.items()}
    share = gs_share_of_decode()
    saved = RUNS / "decode_cost.json"
    timed = json.loads(saved.read_text()).get("seconds", {}) if saved.is_file() else {}
    if measure:
        timed = time_exact_decode(models, size)
        saved.parent.mkdir(parents=True, exist_ok=True)
        _write_json(saved, {"size": size, "seconds": timed,
                            "loadavg_1min": os.getloadavg()[0]})
    out = {}
    for a in arms:
        pred = predicted_decode_ratio(macs[a], macs[BASELINE], share)
        meas = (timed[a] / timed[BASELINE]) if a in timed and BASELINE in timed else None
        out[a] = {"params": sum(p.numel() for p in models[a].parameters()),
                  "kmac_px": {k: v / 1000.0 for k, v in macs[a].items()},
                  "g_s_ratio": macs[a]["g_s"] / macs[BASELINE]["g_s"],
                  "decoder_mac_ratio": macs[a]["decoder"] / macs[BASELINE]["decoder"],
                  "gs_share_today": share, "predicted_decode_ratio": pred,
                  "measured_decode_ratio": meas, "measured_decode_s": timed.get(a),
                  "exceeds_limit": max(pred, meas or 0.0) > DECODE_LIMIT}
    return out


def print_decode_cost(dc: dict) -> None:
    for a, d in dc.items():
        meas = d["measured_decode_ratio"]
        print(f"{a:>5}: {d['params'] / 1e6:.2f} M params, g_s {d['kmac_px']['g_s']:.1f} kMAC/px "
              f"({d['g_s_ratio']:.2f}×), decoder {d['kmac_px']['decoder']:.1f} kMAC/px "
              f"({d['decoder_mac_ratio']:.2f}×), exact decode predicted "
              f"{d['predicted_decode_ratio']:.2f}×"
              + (f", measured {meas:.2f}×" if meas else "")
              + ("  OVER THE 2× LIMIT" if d["exceeds_limit"] else ""))


# ------------------------------------------------------------------------------ summary
def arm_curve(arm: str, names: list[str], runs: Path = RUNS) -> list[dict]:
    """The arm's validations: BD figures vs JPEG / WebP / AVIF on the same images, measured
    ``cpu_h`` and the booked quiet ``quiet_cpu_h`` (steps × the plan's step cost)."""
    from campaign.learning_curve import curve_rows

    log = runs / arm / "log.jsonl"
    pl = json.loads((runs / arm / "plan.json").read_text())
    rows = curve_rows(log, RESULTS / "classical" / "jpeg.json", names)
    for ref in REFERENCES[1:]:
        path = RESULTS / "classical" / f"{ref}.json"
        if path.is_file():
            for r, o in zip(rows, curve_rows(log, path, names)):
                r[f"bd_rate_{ref}"], r[f"bd_psnr_{ref}"] = o["bd_rate"], o["bd_psnr"]
    for r in rows:
        r["quiet_cpu_h"] = r["step"] * pl["step_cpu_s"] / 3600.0
    return rows


def fig(v: Optional[float], f: str) -> str:
    return "n/a" if v is None else f.format(v)


def fmt_row(arm: str, rows: list[dict], ex: dict, dc: dict) -> str:
    """One table line: the last validation, the fit and its extrapolation, the decode cost."""
    last = rows[-1]
    head = (f"{arm:>5} {last['step']:7d} {last['quiet_cpu_h']:6.2f} "
            f"{fig(last['bd_psnr'], '{:+6.2f}')} {fig(last.get('bd_rate_webp'), '{:+7.1f}')} "
            f"{fig(last.get('bd_rate_avif'), '{:+7.1f}')}")
    if ex.get("pred") is None:
        fit = f"  no fit: {ex.get('reason')}"
    else:
        f = ex["fit"]
        fit = (f"  q_inf {f['q_inf']:+6.2f} c {f['c']:.2f}  q({TARGET_CPU_H:g}h) "
               f"{ex['pred']:+6.2f} [{ex['lo']:+.2f}, {ex['hi']:+.2f}] holdout "
               f"{ex['holdout_error']:+.2f}")
    return head + fit + f"  decode {dc['predicted_decode_ratio']:.2f}×"


def render(curves: dict, fits: dict, path: Path) -> None:
    """Measured points, fitted curves to the target and the intervals at the target."""
    import numpy as np

    from campaign.learning_curve import render_xy

    series = [(a, [r["quiet_cpu_h"] for r in rows], [r["bd_psnr"] for r in rows])
              for a, rows in curves.items()]
    dashed, bars = [], []
    for k, a in enumerate(curves):
        ex = fits.get(a, {})
        if ex.get("pred") is None:
            continue
        law = cf.PowerLaw(**ex["fit"])
        ts = np.linspace(min(series[k][1]), TARGET_CPU_H, 80)  # even dashes
        dashed.append((k, list(ts), [float(law(t)) for t in ts]))
        bars.append((k, TARGET_CPU_H, ex["lo"], ex["hi"]))
    render_xy(series, path, "training CPU-hours (quiet-machine cost)",
              "BD-PSNR vs JPEG on the same Kodak images (dB)",
              title=f"Capacity study: measured, fitted (dashed), interval at {TARGET_CPU_H:g} CPU-h",
              hlines=[("JPEG", 0.0)], dashed=dashed, bars=bars)


def summary(runs: Path = RUNS, out_json: Path = RESULTS / "capacity_study.json",
            figure: Path = ROOT / "docs" / "figures" / "capacity_study.png",
            names: Optional[list[str]] = None) -> dict:
    """Table, fits, decision; writes the JSON and the figure. ``names``: the Kodak file names
    in validation order (default: the Kodak folder's)."""
    names = names or sorted(p.name for p in rs.KODAK.glob("*.png"))
    arms = [a for a in ARMS if a not in WARM and (runs / a / "log.jsonl").is_file()
            and (runs / a / "plan.json").is_file()]
    curves = {a: arm_curve(a, names, runs) for a in arms}
    curves = {a: rows for a, rows in curves.items() if rows}
    dc = decode_cost(list(curves))
    fits = {a: cf.extrapolate([r["quiet_cpu_h"] for r in rows], [r["bd_psnr"] for r in rows],
                              TARGET_CPU_H) for a, rows in curves.items()}
    excluded = {a: f"exact decode {dc[a]['predicted_decode_ratio']:.2f}× N64's > {DECODE_LIMIT:g}×"
                for a in curves if dc[a]["exceeds_limit"]}
    decision = cf.decide(fits, TARGET_CPU_H, BASELINE, excluded, unit="dB BD-PSNR vs JPEG")
    print(f"{'arm':>5} {'step':>7} {'CPU-h':>6} {'BD-dB':>6} {'WebP %':>7} {'AVIF %':>7}  "
          f"fit, extrapolation [interval], leave-last-out miss; exact decode vs N64")
    for a, rows in curves.items():
        print(fmt_row(a, rows, fits[a], dc[a]))
    print(decision["line"])
    out = {"target_cpu_h": TARGET_CPU_H, "budget_note": "x = steps × quiet step cost",
           "lambdas": list(CAMPAIGN_LAMBDAS), "recipe": arm_flags(BASELINE),
           "arms": {a: {"overrides": ARMS[a], "curve": curves[a], "extrapolation": fits[a],
                        "decode": dc[a]} for a in curves},
           "decision": decision}
    out_json.parent.mkdir(parents=True, exist_ok=True)
    _write_json(out_json, out)
    render(curves, fits, figure)
    return out


def ceiling_of(model, us: tuple = (0.5, 1.0), images: int = rs.VAL_IMAGES) -> dict:
    """PSNR of g_s(g_a(x)·G·G') without quantization, per slider value, on the first ``images``
    Kodak images: the most any rate can give these transforms. For lic-lgem-cpu on 4 Kodak
    images it is 34.75 dB at u = 1 against 34.34 dB with rounding, so the flat top of the slider
    is the transforms' limit, not the quantizer's (docs/training.md, "Capacity study")."""
    import torch

    from lic_core.image.io import load_image
    from lic_core.image.tensor import to_tensor

    model = model.float().eval().to(memory_format=torch.contiguous_format)
    files = sorted(rs.KODAK.glob("*.png"))[:images]
    out: dict = {"images": len(files)}
    for u in us:
        vals = []
        for f in files:
            x = to_tensor(load_image(f))
            with torch.no_grad():
                g = model._gains(u, 1, x.device)
                xc = model.g_s(model.g_a(x) * g["G"] * g["G_inv"]).clamp(0, 1)
            vals.append(float(10 * torch.log10(1.0 / ((xc - x) ** 2).mean())))
        out[f"u={u:g}"] = sum(vals) / len(vals)
    return out


def transform_ceiling(arm: str, runs: Path = RUNS) -> dict:
    """:func:`ceiling_of` the arm's newest checkpoint (its EMA weights, as validated)."""
    from lic_core.train.checkpoint import load_checkpoint
    from lic_core.train.loop import resolve_model

    ck = load_checkpoint(runs / arm)
    model = resolve_model(ck.get("model_name", "lic-lgem-preview"),
                          **{k: v for k, v in ck["config"].items() if k != "name"})
    model.load_state_dict(ck["ema"]["shadow"] if ck.get("ema") else ck["model"], strict=True)
    return {"step": int(ck["step"]), **ceiling_of(model)}


def warm_start_row(names: list[str]) -> dict:
    """Where both warm arms start: the shipped weights validated as the arms validate (real
    bitstreams, first 6 Kodak images, u = 0, 0.5, 1), their BD figures and transform ceiling."""
    from campaign.learning_curve import rd_against, reference_curve
    from lic_core.models import load_model
    from lic_core.train.validate import evaluate

    model = load_model(WARM_FROM)
    res = evaluate(model, rs.KODAK, [float(u) for u in rs.VAL_U], limit=rs.VAL_IMAGES,
                   with_msssim=False)
    row = {"step": 0, "quiet_cpu_h": 0.0, "points": res["points"]}
    for ref in REFERENCES:
        path = RESULTS / "classical" / f"{ref}.json"
        if not path.is_file():
            continue
        bd = rd_against(res["points"], reference_curve(path, names[: res["images"]]))
        if ref == "jpeg":
            row["bd_rate"], row["bd_psnr"] = bd["bd_rate"], bd["bd_psnr"]
        row[f"bd_rate_{ref}"], row[f"bd_psnr_{ref}"] = bd["bd_rate"], bd["bd_psnr"]
    row["transform_ceiling"] = ceiling_of(model)
    return row


def kodak24(arm: str, runs: Path = RUNS) -> dict:
    """The arm's newest checkpoint (EMA weights) on all 24 Kodak images at the card's six slider
    points with real bitstreams (PSNR), its BD-rates vs JPEG / WebP / AVIF and its BD-rate gain
    over the shipped card's own Kodak evaluation — what ``export`` would decide an install on
    (``campaign.codec.gain_over``, ≥ 2 % earns one; the weights rounded to fp16 first, as an
    export ships them). Saved as ``kodak24.json`` in the run folder; ``warm-summary`` collects
    it."""
    from campaign.codec import bd_rates, gain_over
    from lic_core.paths import weights_path
    from lic_core.train.checkpoint import load_checkpoint
    from lic_core.train.export import _round_to_fp16_
    from lic_core.train.loop import resolve_model
    from lic_core.train.validate import CARD_U_VALUES, evaluate

    ck = load_checkpoint(runs / arm)
    model = resolve_model(ck.get("model_name", "lic-lgem-preview"),
                          **{k: v for k, v in ck["config"].items() if k != "name"})
    model.load_state_dict(ck["ema"]["shadow"] if ck.get("ema") else ck["model"], strict=True)
    _round_to_fp16_(model)
    res = evaluate(model.eval(), rs.KODAK, CARD_U_VALUES, with_msssim=False)
    names = sorted(p.name for p in rs.KODAK.glob("*.png"))
    shipped = json.loads(weights_path(WARM_FROM).with_suffix(".json").read_text())
    out = {"arm": arm, "step": int(ck["step"]), "eval": res,
           "gain_over_shipped": gain_over(shipped, {"eval": {"images": res["images"],
                                                             "points": res["points"]}}, names),
           "bd": bd_rates(res["points"], names)}
    _write_json(runs / arm / "kodak24.json", out)
    return out


def warm_summary(runs: Path = RUNS, out_json: Path = RESULTS / "capacity_warm.json",
                 names: Optional[list[str]] = None) -> dict:
    """The warm arms side by side: at each validation (the same booked CPU for arms of the same
    budget), BD-PSNR vs JPEG, BD-rate vs WebP / AVIF and the top point (u = 1), and the wide
    arm's lead over N64w. Written to its own JSON (the from-scratch study's stays as it is)."""
    names = names or sorted(p.name for p in rs.KODAK.glob("*.png"))
    curves = {a: arm_curve(a, names, runs) for a in WARM
              if (runs / a / "log.jsonl").is_file() and (runs / a / "plan.json").is_file()}
    curves = {a: rows for a, rows in curves.items() if rows}
    for rows in curves.values():  # N64w's log counts the shipped card's hours, N96w's not:
        for r in rows:             # the comparison is in booked quiet CPU from the warm start
            r.pop("cpu_h", None)
    budgets = {json.loads((runs / a / "plan.json").read_text())["budget_min"] for a in curves}
    if len(budgets) > 1:
        print(f"warning: the warm arms have different budgets {sorted(budgets)}: the lead pairs "
              "validations by index", flush=True)
    here = shipped_hash()
    stale = [a for a in curves if warm_start_hash(a, runs) not in (None, here)]
    start = warm_start_row(names) if not stale else {"stale_arms": stale}
    if stale:
        print(f"warning: {', '.join(stale)} started from other weights than the shipped "
              f"{WARM_FROM} ({here}): no start row", flush=True)
    print(f"{'arm':>5} {'step':>6} {'CPU-h':>5} {'BD-dB':>6} {'WebP %':>7} {'AVIF %':>7}  "
          "u = 1: bpp / PSNR")
    for a, rows in [*([("start", [start])] if not stale else []), *curves.items()]:
        for r in rows:
            top = max(r["points"], key=lambda p: p["bpp"])
            print(f"{a:>5} {r['step']:6d} {r['quiet_cpu_h']:5.2f} {fig(r.get('bd_psnr'), '{:+6.2f}')} "
                  f"{fig(r.get('bd_rate_webp'), '{:+7.1f}')} {fig(r.get('bd_rate_avif'), '{:+7.1f}')}"
                  f"  {top['bpp']:.3f} / {top['psnr']:.2f}")
    lead: dict[str, list] = {}
    for arm in (a for a in curves if a != "N64w" and "N64w" in curves):
        lead[arm] = [{"quiet_cpu_h": b["quiet_cpu_h"], "bd_psnr_lead_db": b["bd_psnr"] - a["bd_psnr"]}
                     for a, b in zip(curves["N64w"], curves[arm])
                     if a["bd_psnr"] is not None and b["bd_psnr"] is not None]
        print(f"{arm} − N64w, BD-PSNR vs JPEG (dB): " + ", ".join(
            f"{x['bd_psnr_lead_db']:+.2f} @ {x['quiet_cpu_h']:.2f} h" for x in lead[arm]))
    decayed = {}
    for a in curves:
        d = f"{a}-decay"
        if (runs / d / "log.jsonl").is_file() and (runs / d / "plan.json").is_file():
            rows = arm_curve(d, names, runs)
            if rows:
                decayed[a] = {**rows[-1], "plan": json.loads((runs / d / "plan.json").read_text())}
                decayed[a].pop("cpu_h", None)
    for a, r in decayed.items():
        top = max(r["points"], key=lambda p: p["bpp"])
        print(f"{a + '+decay':>10} {r['step']:6d} {r['quiet_cpu_h']:5.2f} "
              f"{fig(r['bd_psnr'], '{:+6.2f}')} {fig(r.get('bd_rate_webp'), '{:+7.1f}')} "
              f"{fig(r.get('bd_rate_avif'), '{:+7.1f}')}  {top['bpp']:.3f} / {top['psnr']:.2f}")
    for a in (x for x in decayed if x != "N64w" and "N64w" in decayed):
        if decayed[a]["bd_psnr"] is not None and decayed["N64w"]["bd_psnr"] is not None:
            lead[f"{a}+decay"] = [{"quiet_cpu_h": decayed[a]["quiet_cpu_h"], "bd_psnr_lead_db":
                                   decayed[a]["bd_psnr"] - decayed["N64w"]["bd_psnr"]}]
            print(f"{a} − N64w after their decays: {lead[a + '+decay'][0]['bd_psnr_lead_db']:+.2f} dB")
    k24 = {a: json.loads((runs / f"{a}-decay" / "kodak24.json").read_text()) for a in decayed
           if (runs / f"{a}-decay" / "kodak24.json").is_file()}
    k24 = {a: r for a, r in k24.items()  # only of the finished branch (not an older fork's)
           if int(r["step"]) == int(decayed[a]["plan"]["steps"])}
    for a, r in k24.items():
        g = r["gain_over_shipped"][0]
        print(f"{a}+decay on Kodak 24: " + " ".join(
            f"{p['bpp']:.3f}/{p['psnr']:.2f}" for p in r["eval"]["points"]) +
            f"; BD-rate vs shipped {fig(g, '{:+.2f}')} % (gain), vs AVIF "
            f"{fig(r['bd'].get('avif'), '{:+.1f}')} %, vs WebP {fig(r['bd'].get('webp'), '{:+.1f}')} %")
    ceiling = {}
    from lic_core.train.checkpoint import latest_checkpoint

    for a in [*curves, *(f"{x}-decay" for x in decayed)]:
        if latest_checkpoint(runs / a) is None:  # an arm that has not checkpointed yet
            continue
        ceiling[a] = transform_ceiling(a, runs=runs)
        print(f"{a}: unquantized transforms at step {ceiling[a]['step']}: " + ", ".join(
            f"{k} {v:.2f} dB" for k, v in ceiling[a].items() if k.startswith("u=")))
    out = {"warm_from": WARM_FROM, "budget_note": "x = steps × quiet step cost, from the warm start",
           "lambdas": list(CAMPAIGN_LAMBDAS), "recipe": arm_flags("N64w"),
           "arms": {a: {"overrides": ARMS[a], "curve": rows} for a, rows in curves.items()},
           "decayed": decayed, "kodak24": k24, "start": start, "lead": lead, "transform_ceiling": ceiling}
    out_json.parent.mkdir(parents=True, exist_ok=True)
    _write_json(out_json, out)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the arms (niced, resumable)")
    r.add_argument("arms", nargs="*", help=f"of {', '.join(ARMS)} (default: "
                   f"{' '.join(DEFAULT_ARMS)})")
    r.add_argument("--budget-min", type=float, default=BUDGET_MIN)
    r.add_argument("--force", action="store_true", help="measure step costs on a loaded machine")
    d = sub.add_parser("decode-cost", help="MACs and exact-decode ratios of the arms")
    d.add_argument("--measure", action="store_true")
    sub.add_parser("summary")
    sub.add_parser("warm-summary", help="the warm arms (N64w, N96w, A96w) side by side")
    dc = sub.add_parser("decay", help="decay branches of arms (cosine to 0.1 of the peak)")
    dc.add_argument("arms", nargs="+")
    dc.add_argument("--decay-min", type=float, default=DECAY_MIN)
    k = sub.add_parser("kodak24", help="a (decayed) arm on Kodak 24 against the shipped card")
    k.add_argument("arms", nargs="+", help="run folders under runs/capacity, e.g. N64w-decay")
    f = sub.add_parser("final-eval")
    f.add_argument("arms", nargs="+")
    a = ap.parse_args(argv)
    unknown = [x for x in getattr(a, "arms", None) or []
               if x not in ARMS and not (a.cmd == "kodak24" and x.removesuffix("-decay") in ARMS)]
    if unknown:
        ap.error(f"unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    if a.cmd == "run":
        return run(a.arms or [], a.budget_min, a.force)
    if a.cmd == "decay":
        return decay(a.arms, a.decay_min)
    if a.cmd == "kodak24":
        for arm in a.arms:
            r = kodak24(arm)
            print(arm, r["gain_over_shipped"], r["bd"])
        return 0
    if a.cmd == "decode-cost":
        print_decode_cost(decode_cost([x for x in ARMS if x not in WARM], measure=a.measure))
    elif a.cmd == "summary":
        summary()
    elif a.cmd == "warm-summary":
        warm_summary()
    else:
        for arm in a.arms:
            res = rs.final_eval(arm, runs=RUNS)
            print(arm, " ".join(f"u={p['u']:.1f} {p['bpp']:.3f}/{p['psnr']:.2f}"
                                for p in res["points"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
