"""A hific-small run warm-started from a file books what that file was built on (issue 26: the
comparison with the diffusion decoder is on the same CPU budget only if a continued run counts
its start): ``--init`` records the file's lineage in every checkpoint, a resume carries it on, a
chain of warm starts adds up, and the campaign's budget line and card count it."""
from __future__ import annotations

import json

import torch

from lic_core.models.hific import HificModel, get_config
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from lic_core.train.hific.trainer import export, init_lineage_of, resumed_lineage
from test_hific_train import _lic_train, _photos


def _exported(path, cpu_hours: float, steps: int, lineage: float | None = None):
    torch.manual_seed(0)
    extra = {"cpu_hours": cpu_hours, "total_steps": steps}
    if lineage is not None:
        extra["lineage_cpu_hours"] = lineage
    export(HificModel(get_config("hific-tiny")).eval(), path, "hific-2", steps, extra)
    return path


COMMON = ["--hific-config", "hific-tiny", "--crop", "64", "--batch", "2", "--workers", "0",
          "--perceptual", "none", "--device", "cpu", "--log-every", "1", "--ckpt-every", "0",
          "--stage", "hific-2"]


def test_init_records_the_files_lineage_and_a_resume_carries_it(tmp_path):
    data = _photos(tmp_path / "photos")
    shipped = _exported(tmp_path / "shipped.safetensors", 3.0, 700, lineage=3.25)
    assert init_lineage_of(shipped)["cpu_hours"] == 3.25  # its own warm start counted too
    assert init_lineage_of(shipped)["steps"] == 700
    assert resumed_lineage(shipped)["cpu_hours"] == 3.25  # an export: a fresh clock

    run1 = tmp_path / "probe"
    assert _lic_train(["--data", str(data), "--out", str(run1), "--steps", "2", "--init",
                       str(shipped), *COMMON]) == 0
    ck1 = load_checkpoint(latest_checkpoint(run1))
    assert ck1["step"] == 2 and ck1["init_lineage"]["cpu_hours"] == 3.25
    assert ck1["init_lineage"]["file"] == "shipped.safetensors"
    # resumed (same folder, more steps): the lineage is carried, the clock goes on
    assert _lic_train(["--data", str(data), "--out", str(run1), "--steps", "3", *COMMON]) == 0
    ck2 = load_checkpoint(latest_checkpoint(run1))
    assert ck2["step"] == 3 and ck2["init_lineage"] == ck1["init_lineage"]
    assert ck2["cpu_s"] > ck1["cpu_s"]
    # the run's export card books the warm start too
    from lic_core.weights import lineage_cpu_hours, read_weights_card

    card = read_weights_card(run1 / "hific-tiny-hific-2.safetensors")
    assert card["lineage_steps"] == 703 and card["init_lineage"]["cpu_hours"] == 3.25
    assert abs(lineage_cpu_hours(card) - (3.25 + card["cpu_hours"])) < 1e-3
    assert resumed_lineage(latest_checkpoint(run1)) == ck1["init_lineage"]

    # a second warm start from that checkpoint adds its booked time and steps to the chain
    chain = init_lineage_of(latest_checkpoint(run1))
    assert abs(chain["cpu_hours"] - (3.25 + ck2["cpu_s"] / 3600.0)) < 1e-3
    assert chain["steps"] == 700 + 3
    run2 = tmp_path / "second"
    assert _lic_train(["--data", str(data), "--out", str(run2), "--steps", "1", "--init",
                       str(latest_checkpoint(run1)), *COMMON]) == 0
    ck3 = load_checkpoint(latest_checkpoint(run2))
    assert ck3["init_lineage"]["cpu_hours"] == chain["cpu_hours"]
    assert ck3["init_lineage"]["steps"] == 703


def test_campaign_budget_counts_the_warm_start(tmp_path):
    """The stage state's ``init_lineage`` (recorded when a run begins from a file) is added to
    the stage's booked hours in the budget line; a run from scratch adds nothing."""
    from campaign.generative import budgets, warm_start_hours

    root = tmp_path / "campaign"
    (root / "hific").mkdir(parents=True)
    (root / "hific" / "log.jsonl").write_text(json.dumps(
        {"type": "train", "step": 10, "cpu_s": 1800.0}) + "\n")
    (root / "diffusion").mkdir()
    (root / "diffusion" / "log.jsonl").write_text(json.dumps(
        {"type": "train", "step": 10, "cpu_s": 3.75 * 3600}) + "\n")
    assert warm_start_hours(root, "hific") == 0.0
    b = budgets(root)
    assert b["hific_cpu_hours"] == 0.5 and not b["same_budget"]
    (root / "hific.json").write_text(json.dumps(
        {"init_lineage": {"file": "hific-small.safetensors", "cpu_hours": 3.25, "steps": 7213}}))
    b = budgets(root)
    assert b["hific_cpu_hours"] == 3.75 and b["same_budget"]


def test_stage_started_from_a_checkpoint_records_its_lineage(tmp_path, monkeypatch):
    """``tools/campaign.sh --stage hific start --init CKPT`` continues CKPT (its clock and its
    lineage): the state records the lineage the run carries, which the budget line adds."""
    from campaign.stages import open_stage

    monkeypatch.setenv("LIC_CAMPAIGN_SEEDS_DIR", str(tmp_path / "no-seeds"))
    data = _photos(tmp_path / "photos")
    shipped = _exported(tmp_path / "shipped.safetensors", 3.25, 7213)
    probe = tmp_path / "probe"
    assert _lic_train(["--data", str(data), "--out", str(probe), "--steps", "1", "--init",
                       str(shipped), *COMMON]) == 0
    c = open_stage("hific", tmp_path / "campaign")
    st: dict = {}
    cmd, how = c.launch_command(st, data=str(data), kodak=str(data),
                                init=str(latest_checkpoint(probe)), recipe=None, extra=[],
                                val=False)
    assert "--resume" in cmd and "warm-starting" in how
    assert st["init_lineage"]["cpu_hours"] == 3.25 and st["init_lineage"]["steps"] == 7213
    st2: dict = {}
    c.launch_command(st2, data=str(data), kodak=str(data), init=None, recipe=None, extra=[],
                     val=False)
    assert st2["init_lineage"] is None  # from scratch (no seed here): nothing to add
    st3: dict = {}  # weights only, through the trainer's own flag: the whole file's lineage
    c.launch_command(st3, data=str(data), kodak=str(data), init=None, recipe=None,
                     extra=["--init", str(shipped)], val=False)
    assert st3["init_lineage"]["cpu_hours"] == 3.25 and st3["init_lineage"]["steps"] == 7213


def test_a_seed_of_a_warm_started_run_carries_its_lineage(tmp_path, monkeypatch):
    """A campaign seed written from a warm-started hific run (the state that survives a lost
    runs/) keeps the lineage: a run resumed from the seed books the same warm start."""
    from campaign.seeds import write_stage_seed
    from campaign.stages import open_stage

    monkeypatch.setenv("LIC_CAMPAIGN_SEEDS_DIR", str(tmp_path / "no-seeds"))
    data = _photos(tmp_path / "photos")
    shipped = _exported(tmp_path / "shipped.safetensors", 3.25, 7213)
    c = open_stage("hific", tmp_path / "campaign")
    assert _lic_train(["--data", str(data), "--out", str(c.run_dir), "--steps", "1", "--init",
                       str(shipped), *COMMON]) == 0
    lineage = load_checkpoint(latest_checkpoint(c.run_dir))["init_lineage"]
    assert lineage["cpu_hours"] == 3.25
    seed = write_stage_seed(c, tmp_path / "seeds")
    assert not seed["installed"]
    assert resumed_lineage(seed["path"]) == lineage
    # without a lineage, the seed says none (a run from scratch books nothing more)
    scratch = open_stage("hific", tmp_path / "campaign2")
    assert _lic_train(["--data", str(data), "--out", str(scratch.run_dir), "--steps", "1",
                       *COMMON]) == 0
    assert resumed_lineage(write_stage_seed(scratch, tmp_path / "seeds2")["path"]) is None


def test_the_card_says_what_the_run_was_warm_started_from():
    """The stage card's markdown names the warm start and the lineage's hours and steps (the
    budget comparison of issue 26 reads them); a run from scratch has no such line."""
    from campaign.generative import _card_md

    card = {"model": "hific-small", "status": "s", "family": "f", "total_steps": 480,
            "cpu_hours": 0.333, "device": "CPU", "recipe": "--lr 1e-4", "data": "d",
            "budgets": {"note": "n"}, "learning_curve": "c.png",
            "warm_start": "ckpt-00000488.pt", "lineage_cpu_hours": 3.6, "lineage_steps": 7693}
    md = _card_md(card)
    assert "warm-started from ckpt-00000488.pt; with it 3.60 CPU-hours and 7693 steps" in md
    card.pop("warm_start")
    assert "warm-started" not in _card_md(card)
