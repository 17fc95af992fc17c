"""benchmarks/capacity_study.py (issue 27 item 2): the power-law fit and its decision, the arms'
training commands (the campaign's recipe and λ, from scratch, resumable) and the decode-cost
prediction from real built models. No training runs here."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, load_benchmark

T = list(np.geomspace(0.25, 2.0, 8))  # CPU-hours of 8 validations over a 2 CPU-h arm


@pytest.fixture(scope="module")
def cs():
    return load_benchmark("capacity_study")


@pytest.fixture(scope="module")
def cf(cs):
    import capacity_fit  # on sys.path once capacity_study is loaded

    return capacity_fit


def law(q_inf: float, b: float, c: float, noise: float = 0.0, seed: int = 0) -> list[float]:
    rng = np.random.RandomState(seed)
    return [q_inf - b * t ** (-c) + noise * rng.randn() for t in T]


# ------------------------------------------------------------------------------ fitting
def test_fit_recovers_a_known_power_law(cf):
    fit = cf.fit_power_law(T, law(1.5, 2.0, 0.6))
    assert fit.q_inf == pytest.approx(1.5, abs=0.02)
    assert fit.c == pytest.approx(0.6, abs=0.02)
    assert fit.b == pytest.approx(2.0, abs=0.05)
    assert fit.rmse < 1e-3


def test_extrapolation_interval_holds_the_truth_and_widens_with_noise(cf):
    truth = 1.5 - 2.0 * 20.0 ** (-0.6)
    clean = cf.extrapolate(T, law(1.5, 2.0, 0.6), 20.0)
    noisy = cf.extrapolate(T, law(1.5, 2.0, 0.6, noise=0.05, seed=3), 20.0)
    assert clean["pred"] == pytest.approx(truth, abs=0.02)
    assert clean["lo"] - 1e-4 <= truth <= clean["hi"] + 1e-4  # noise-free: a tight interval
    assert noisy["lo"] <= truth <= noisy["hi"]
    assert noisy["hi"] - noisy["lo"] > 5 * (clean["hi"] - clean["lo"])
    assert abs(clean["holdout_error"]) < 0.01 and clean["horizon"] == pytest.approx(2.0)
    assert {"leave_last_out", "last_half"} <= set(noisy["variants"])


def test_too_few_points_refuse_a_fit_and_an_interval(cf):
    with pytest.raises(cf.TooFewPoints):
        cf.fit_power_law(T[:3], law(1.0, 1.0, 0.5)[:3])
    # a validation without a BD figure is not a point
    with pytest.raises(cf.TooFewPoints):
        cf.fit_power_law(T[:4], [1.0, None, 2.0, 2.5])
    short = cf.extrapolate(T[:4], law(1.0, 1.0, 0.5)[:4], 20.0)
    assert short["pred"] is None and "4 usable points" in short["reason"]
    full = cf.extrapolate(T, law(3.0, 1.0, 0.5), 20.0)
    d = cf.decide({"N64": short, "N96": full}, 20.0, "N64")
    assert d["winner"] is None and d["line"].startswith("undecided")


def test_decide_names_a_clear_winner_and_its_margin(cf):
    fits = {"N64": cf.extrapolate(T, law(1.0, 1.0, 0.5), 20.0),
            "N96": cf.extrapolate(T, law(3.0, 1.5, 0.5), 20.0)}
    d = cf.decide(fits, 20.0, "N64")
    expect = (3.0 - 1.5 * 20 ** -0.5) - (1.0 - 20 ** -0.5)
    assert d["winner"] == "N96" and d["margin"] == pytest.approx(expect, abs=0.05)
    assert d["line"].startswith("at 20 CPU-h N96 is predicted ahead of N64 by")


def test_decide_is_undecided_when_the_intervals_overlap(cf):
    fits = {"N64": cf.extrapolate(T, law(1.0, 1.0, 0.5, noise=0.08, seed=1), 20.0),
            "N96": cf.extrapolate(T, law(1.1, 1.0, 0.5, noise=0.08, seed=2), 20.0)}
    assert fits["N96"]["lo"] < fits["N64"]["hi"]  # the premise: they do overlap
    d = cf.decide(fits, 20.0, "N64")
    assert d["winner"] is None and d["line"].startswith("undecided at 20 CPU-h")


def test_an_arm_over_the_decode_limit_cannot_win(cf):
    fits = {"N64": cf.extrapolate(T, law(1.0, 1.0, 0.5), 20.0),
            "N96": cf.extrapolate(T, law(3.0, 1.0, 0.5), 20.0)}
    d = cf.decide(fits, 20.0, "N64", excluded={"N96": "decode 2.3×"})
    assert d["winner"] == "N64" and "N96 excluded (decode 2.3×)" in d["line"]


# ------------------------------------------------------------------------------ commands
def _parse(cmd: list[str]):
    from lic_core.train.loop import TrainConfig, add_arguments

    assert cmd[1:5] == ["-m", "lic_core.train", "codec", "--data"]
    p = argparse.ArgumentParser()
    add_arguments(p)
    return TrainConfig.from_args(p.parse_args(cmd[4:]))


def test_campaign_lambdas_are_the_campaigns(cs):
    card = json.loads((REPO_ROOT / "benchmarks" / "results" / "campaign_export_2026-12-07"
                       / "lic-lgem-cpu.json").read_text())
    assert list(cs.CAMPAIGN_LAMBDAS) == card["lambdas"]
    assert len(cs.CAMPAIGN_LAMBDAS) == 11


@pytest.mark.parametrize("arm", ["N64", "N96", "N80", "rb2"])
def test_every_arm_trains_the_campaign_recipe_from_scratch(cs, arm, tmp_path):
    from campaign.codec import RECIPE
    from lic_core.models.registry import model_config
    from lic_core.train.loop import parse_model_config

    cfg = _parse(cs.arm_cmd(arm, 800, runs=tmp_path))
    ref = _parse([*"x -m lic_core.train codec --data d --out o".split(), *RECIPE])
    for key in ("model", "batch", "crop", "lr", "warmup", "decay", "clip", "ema", "amp",
                "threads"):
        assert getattr(cfg, key) == getattr(ref, key), key
    assert cfg.model == "lic-lgem-preview" and cfg.amp and cfg.lr == 4e-4
    assert cfg.init is None and cfg.resume is None  # from scratch
    assert cfg.steps == 800 and cfg.val_every == 100 and cfg.val_limit == 6
    assert cfg.val_u == [0.0, 0.5, 1.0] and cfg.lambdas is None
    arch = model_config(cfg.model, **parse_model_config(cfg.model_config))
    assert arch.lambdas == cs.CAMPAIGN_LAMBDAS
    assert arch.N == {"N96": 96, "N80": 80}.get(arm, 64)
    assert arch.res_blocks == (2 if arm == "rb2" else 1)


@pytest.mark.parametrize("arm", ["N64", "N96"])
def test_step_cost_is_measured_with_the_arms_flags(cs, arm):
    """train_step_cost.measure reads the flags back the way lic train does (no step is run)."""
    import train_step_cost as tsc

    from lic_core.train.loop import parse_model_config

    flags = cs.arm_flags(arm)
    over = tsc.flag(flags, "--model-config", [])
    over = parse_model_config([over] if isinstance(over, str) else over)
    assert over == cs.model_overrides(arm)
    assert "--amp" in flags and tsc.flag(flags, "--model") == "lic-lgem-preview"
    assert (tsc.flag(flags, "--crop"), tsc.flag(flags, "--batch")) == ("128", "8")


def test_an_arm_with_a_checkpoint_resumes(cs, tmp_path):
    (tmp_path / "N96").mkdir()
    assert _parse(cs.arm_cmd("N96", 800, runs=tmp_path)).resume is None
    (tmp_path / "N96" / "ckpt-00000400.pt").write_bytes(b"")
    cfg = _parse(cs.arm_cmd("N96", 800, runs=tmp_path))
    assert cfg.resume == str(tmp_path / "N96") and cfg.init is None and cfg.steps == 800
    assert not cs.arm_done("N96", 800, runs=tmp_path)
    (tmp_path / "N96" / "log.jsonl").write_text(json.dumps({"type": "end", "step": 800}) + "\n")
    assert cs.arm_done("N96", 800, runs=tmp_path) and not cs.arm_done("N96", 808, runs=tmp_path)


def test_step_budget_from_the_booked_cost_and_a_frozen_plan(cs, tmp_path, monkeypatch):
    costs = {cs.BASE_KEY: {"cpu_s_per_step": 0.5}, cs.cost_key("N96"): {"cpu_s_per_step": 1.0}}
    booked = cs.booked_step_cpu_s("N96", costs)
    assert booked == pytest.approx(2 * cs.rs.BASE_STEP_CPU_S)
    assert cs.booked_step_cpu_s("N80", costs) is None  # not measured: no invented cost
    steps = cs.arm_steps(120.0, booked)
    assert steps % cs.VAL_POINTS == 0 and abs(steps * booked - 7200) <= 4 * booked
    monkeypatch.setattr(cs, "COST_FILE", tmp_path / "costs.json")
    (tmp_path / "costs.json").write_text(json.dumps(costs))
    assert cs.plan("N96", 120.0, runs=tmp_path)["steps"] == steps
    (tmp_path / "N96").mkdir()
    (tmp_path / "N96" / "plan.json").write_text(json.dumps({"step_cpu_s": 0.9}))
    assert cs.plan("N96", 120.0, runs=tmp_path)["steps"] == cs.arm_steps(120.0, 0.9)


# ------------------------------------------------------------------------------ decode cost
@pytest.fixture(scope="module")
def macs(cs):
    import torch

    torch.manual_seed(0)
    return {a: cs.macs_per_pixel(cs.build_arm_model(a), size=64) for a in ("N64", "N96")}


def test_wider_arm_costs_more_multiply_adds_in_g_s(cs, macs):
    n64, n96 = macs["N64"], macs["N96"]
    assert 17e3 < n64["g_s"] < 21e3  # the docs' 18.8 kMAC/px of the N = 64 synthesis
    ratio = n96["g_s"] / n64["g_s"]
    assert 1.9 < ratio < 2.4  # ≈ (96/64)² on the N×N convolutions
    # the entropy part of the decoder does not grow with N: the decoder's ratio is smaller
    assert 1.0 < n96["decoder"] / n64["decoder"] < ratio
    assert n64["total"] > n64["decoder"] > n64["g_s"]


def test_predicted_decode_ratio(cs, macs):
    n64, n96 = macs["N64"], macs["N96"]
    gs = n96["g_s"] / n64["g_s"]
    assert cs.predicted_decode_ratio(n64, n64, 0.6) == pytest.approx(1.0)
    assert cs.predicted_decode_ratio(n96, n64, 0.6) == pytest.approx(0.4 + 0.6 * gs)
    assert cs.predicted_decode_ratio(n96, n64, None) == pytest.approx(
        n96["decoder"] / n64["decoder"])
    share = cs.gs_share_of_decode()
    if cs.EXACT_STAGES.is_file():
        assert 0.3 < share < 0.9


def test_decode_cost_flags_arms_over_the_limit(cs, tmp_path, monkeypatch):
    monkeypatch.setattr(cs, "RUNS", tmp_path)  # no saved timing
    monkeypatch.setattr(cs, "DECODE_LIMIT", 1.5)
    dc = cs.decode_cost(["N96"])
    assert set(dc) == {"N64", "N96"} and dc["N64"]["predicted_decode_ratio"] == 1.0
    assert dc["N96"]["g_s_ratio"] > 1.9 and dc["N96"]["measured_decode_ratio"] is None
    assert dc["N96"]["exceeds_limit"] and not dc["N64"]["exceeds_limit"]
    # a measured ratio over the limit excludes an arm whose prediction was under it
    pred = dc["N96"]["predicted_decode_ratio"]
    monkeypatch.setattr(cs, "DECODE_LIMIT", pred + 0.01)
    assert not cs.decode_cost(["N96"])["N96"]["exceeds_limit"]
    (tmp_path / "decode_cost.json").write_text(json.dumps({"seconds": {"N64": 1.0,
                                                                       "N96": pred + 0.2}}))
    again = cs.decode_cost(["N96"])["N96"]
    assert again["measured_decode_ratio"] == pytest.approx(pred + 0.2) and again["exceeds_limit"]


# ------------------------------------------------------------------------------ summary
def _jpeg_curve(names: list[str]) -> tuple[list[float], list[float]]:
    from campaign.learning_curve import reference_curve

    return reference_curve(REPO_ROOT / "benchmarks" / "results" / "classical" / "jpeg.json", names)


def _fake_arm(runs: Path, arm: str, q_inf: float, names: list[str], step_cpu_s: float) -> None:
    """A log of 8 validations whose PSNR is JPEG's + q(t) dB (t the booked CPU-hours)."""
    bpp, psnr = _jpeg_curve(names)
    (runs / arm).mkdir(parents=True)
    (runs / arm / "plan.json").write_text(json.dumps({"step_cpu_s": step_cpu_s}))
    lines = []
    for t in T:
        step = int(round(t * 3600 / step_cpu_s))
        d = q_inf - 1.0 * t ** -0.5
        pts = [{"u": u, "bpp": bpp[i], "psnr": psnr[i] + d} for u, i in ((0, 1), (0.5, 4), (1, 7))]
        lines.append(json.dumps({"type": "val", "step": step, "cpu_s": 1.3 * t * 3600,
                                 "points": pts, "images": len(names)}))
    (runs / arm / "log.jsonl").write_text("\n".join(lines) + "\n")


def test_summary_fits_decides_and_writes(cs, tmp_path, monkeypatch):
    names = [f"kodim{i:02d}.png" for i in range(1, 7)]
    runs = tmp_path / "runs"
    _fake_arm(runs, "N64", 0.5, names, 0.67)
    _fake_arm(runs, "N96", 1.5, names, 1.2)
    _fake_arm(runs, "N96w", 9.0, names, 1.2)  # a warm arm: not part of the from-scratch study
    monkeypatch.setattr(cs, "RUNS", runs)
    out = cs.summary(runs=runs, out_json=tmp_path / "c.json", figure=tmp_path / "c.png",
                     names=names)
    assert set(out["arms"]) == {"N64", "N96"}
    n96 = out["arms"]["N96"]
    assert [r["quiet_cpu_h"] for r in n96["curve"]] == pytest.approx(T, abs=1e-3)
    assert n96["curve"][-1]["bd_psnr"] == pytest.approx(1.5 - 2 ** -0.5, abs=0.05)
    assert n96["extrapolation"]["pred"] == pytest.approx(1.5 - 20 ** -0.5, abs=0.1)
    assert out["decision"]["winner"] == "N96"
    assert out["decision"]["margin"] == pytest.approx(1.0, abs=0.1)
    assert math.isfinite(n96["curve"][-1]["bd_rate_webp"])
    assert json.loads((tmp_path / "c.json").read_text())["decision"] == out["decision"]
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_warm_arms_start_from_the_shipped_codec_the_wide_one_widened(cs, tmp_path):
    """N64w continues the shipped weights; N96w starts from them widened (lic_core.transform.
    widen), A96w with its encoder alone widened: the model lic train builds from its flags and
    --init computes the shipped codec's training forward."""
    import torch

    from lic_core.models import load_model
    from lic_core.paths import weights_path
    from lic_core.train.loop import _build_model, load_init_weights

    shipped = load_model(cs.WARM_FROM).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = shipped(x, 0.9)["x_hat"]
    for arm, N, N_a in (("N64w", 64, 64), ("N96w", 96, 96), ("A96w", 64, 96)):
        cfg = _parse(cs.arm_cmd(arm, 800, runs=tmp_path))
        assert cfg.resume is None and cfg.lr == 4e-4 and cfg.warmup == 200
        want = weights_path(cs.WARM_FROM) if arm == "N64w" else tmp_path / arm / "init.pt"
        assert cfg.init == str(want) and Path(cfg.init).is_file()
        model, _ = _build_model(cfg, None, cfg.model)
        load_init_weights(model, cfg.init)
        assert (model.config.N, model.config.g_a_width) == (N, N_a)
        assert model.config.lambdas == cs.CAMPAIGN_LAMBDAS
        with torch.no_grad():
            assert torch.allclose(model.eval()(x, 0.9)["x_hat"], ref, atol=1e-4, rtol=0)
    assert cs.warm_start_hash("N96w", runs=tmp_path) == cs.shipped_hash()
    # an init widened from weights that are no longer the shipped ones is not reused
    state = torch.load(tmp_path / "N96w" / "init.pt", weights_only=True)
    torch.save({**state, "widened_from_hash": "0" * 16}, tmp_path / "N96w" / "init.pt")
    with pytest.raises(SystemExit, match="widened from other weights"):
        cs.arm_cmd("N96w", 800, runs=tmp_path)
    (tmp_path / "N96w" / "ckpt-00000400.pt").write_bytes(b"")
    assert _parse(cs.arm_cmd("N96w", 800, runs=tmp_path)).init is None  # resumes its own run


def test_an_arms_decay_branch_forks_its_newest_checkpoint_once(cs, tmp_path):
    import torch

    (tmp_path / "N96w").mkdir()
    (tmp_path / "N96w" / "plan.json").write_text(json.dumps({"step_cpu_s": 1.2}))
    torch.save({"model": {}, "step": 400}, tmp_path / "N96w" / "ckpt-00000400.pt")
    cfg = _parse(cs.decay_cmd("N96w", decay_min=10.0, runs=tmp_path))
    out = tmp_path / "N96w-decay"
    assert (out / "ckpt-00000400.pt").is_file() and cfg.resume == str(out)
    assert (cfg.decay, cfg.decay_from, cfg.steps) == ("cosine", 400, 400 + 500)  # 600 s / 1.2
    assert cfg.final_lr == cs.DECAY_FINAL_LR and cfg.lr == 4e-4 and cfg.val_every == 0
    assert cs.model_config_flags("N96w")[1:] == [f for f in cs.arm_flags("N96w")
                                                 if f.startswith(("N=", "lambdas="))]
    # a stopped branch resumes its own fork
    torch.save({"model": {}, "step": 650}, out / "ckpt-00000650.pt")
    (out / "log.jsonl").write_text(json.dumps({"type": "val", "step": 650}) + "\n")
    cfg = _parse(cs.decay_cmd("N96w", decay_min=10.0, runs=tmp_path))
    assert (cfg.decay_from, cfg.steps) == (400, 900) and (out / "ckpt-00000650.pt").is_file()
    # the arm trained on: a new fork from its newest checkpoint, the old branch gone (log too)
    torch.save({"model": {}, "step": 800}, tmp_path / "N96w" / "ckpt-00000800.pt")
    cfg = _parse(cs.decay_cmd("N96w", decay_min=10.0, runs=tmp_path))
    assert (cfg.decay_from, cfg.steps) == (800, 1300)
    assert sorted(p.name for p in out.iterdir()) == ["ckpt-00000800.pt", "plan.json"]
    # an arm short of its budget is not decayed (arms are compared at equal CPU)
    (tmp_path / "N96w" / "plan.json").write_text(json.dumps({"step_cpu_s": 1.2, "steps": 1600}))
    with pytest.raises(SystemExit, match="not at the end of its budget"):
        cs.decay_cmd("N96w", runs=tmp_path)


def test_a_finished_decay_branch_is_redone_when_the_arm_trained_on(cs, tmp_path):
    """`decay` skips an arm only while its finished branch is the fork of the arm's newest
    checkpoint; once the arm trained on, the old branch is stale (it would be compared with
    the longer curve)."""
    import torch

    (tmp_path / "N64w").mkdir()
    (tmp_path / "N64w" / "plan.json").write_text(json.dumps({"step_cpu_s": 1.2}))
    torch.save({"model": {}, "step": 400}, tmp_path / "N64w" / "ckpt-00000400.pt")
    assert not cs.decay_up_to_date("N64w", runs=tmp_path)  # no branch yet
    cs.decay_cmd("N64w", decay_min=10.0, runs=tmp_path)
    out = tmp_path / "N64w-decay"
    assert not cs.decay_up_to_date("N64w", runs=tmp_path)  # forked, not trained
    (out / "log.jsonl").write_text(json.dumps({"type": "end", "step": 900}) + "\n")
    assert cs.decay_up_to_date("N64w", runs=tmp_path)
    torch.save({"model": {}, "step": 800}, tmp_path / "N64w" / "ckpt-00000800.pt")
    assert not cs.decay_up_to_date("N64w", runs=tmp_path)
