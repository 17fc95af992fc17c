"""The codec's decay branch (issue 27 item 4): a fork of the main line's newest checkpoint that
trains on with a cosine decay window, leaves the main line untouched, and exports like it."""
from __future__ import annotations

import json
import time

import pytest

from campaign.base import CampaignError
from campaign.decay import cpu_s_per_step, decay_recipe
from campaign.stages import open_stage
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from synthetic_photos import striped_photos, wait_stopped
from test_campaign import TINY


def wait_step(stage, step: int, timeout: float = 240.0) -> None:
    """Until ``stage`` has stopped with a checkpoint at ``step`` (a loaded machine may take a
    while to exec the trainer, so "no process yet" is not "finished")."""
    t0 = time.monotonic()
    while True:
        ck = latest_checkpoint(stage.run_dir)
        if stage.pid() is None and ck is not None and load_checkpoint(ck)["step"] >= step:
            return
        assert time.monotonic() - t0 < timeout, stage.out_file.read_text()[-2000:]
        time.sleep(0.3)


def test_decay_recipe_sets_the_window_and_keeps_the_rest():
    base = ["--model", "m", "--lr", "4e-4", "--decay", "constant", "--steps", "100000000"]
    r = decay_recipe(base, 3360, 4860, 0.1)
    assert r[:4] == base[:4]
    assert r[r.index("--decay") + 1] == "cosine" and r[r.index("--decay-from") + 1] == "3360"
    assert r[r.index("--steps") + 1] == "4860" and float(r[r.index("--final-lr") + 1]) == 0.1
    assert r.count("--steps") == 1


def test_cpu_seconds_per_step_is_the_median_of_the_recent_records():
    log = [{"type": "start"}] + [{"type": "train", "step": 100 * i, "cpu_s": 100.0 * i * 1.5}
                                 for i in range(1, 8)]
    log.insert(4, {"type": "val", "step": 300})
    log[-1]["cpu_s"] += 500.0  # one slow stretch (a validation) does not move the median
    assert cpu_s_per_step(log) == pytest.approx(1.5)
    assert cpu_s_per_step([{"type": "train", "step": 1, "cpu_s": 1.0}]) is None


def test_the_branch_never_stands_in_for_the_main_line(tmp_path):
    """The committed codec seed and a device's weights continue the constant-rate main line: the
    branch (a CodecStage) refuses seed, handoff and adopt instead of writing the codec's."""
    branch = open_stage("codec-decay", tmp_path / "campaign")
    for call in (lambda: branch.seed(tmp_path / "seeds"), lambda: branch.adopt(tmp_path / "x"),
                 lambda: branch.handoff(None, tmp_path / "h.pt")):
        with pytest.raises(CampaignError, match="main line"):
            call()
    assert not (tmp_path / "seeds").exists()


@pytest.mark.slow
def test_a_branch_decays_to_its_floor_leaves_the_main_line_and_exports(tmp_path, monkeypatch):
    data = striped_photos(tmp_path / "photos")
    root = tmp_path / "campaign"
    branch = open_stage("codec-decay", root)
    with pytest.raises(CampaignError, match="no codec checkpoint"):
        branch.start(val=False)
    main = open_stage("codec", root)
    main.start(data=str(data), kodak=str(data), init="none",
               recipe=TINY.split() + ["--steps", "4"], nice=5, val=False)
    wait_stopped(main)
    main_ck = latest_checkpoint(main.run_dir)
    before = main_ck.read_bytes()

    branch.cpu_min, branch.min_steps = 0.0, 6
    msg = branch.start(val=False, nice=5)
    assert "forking ckpt-00000004.pt" in msg and "4 → 10" in msg
    wait_step(branch, 10)
    ck = load_checkpoint(latest_checkpoint(branch.run_dir))
    assert ck["step"] == 10 and ck["cpu_s"] > load_checkpoint(main_ck)["cpu_s"]
    lrs = [r["lr"] for r in branch.log() if r.get("type") == "train"]
    peak = float(TINY.split()[TINY.split().index("--lr") + 1])
    # the cosine reaches its floor at step 10, after the last step ran (at 0.16 of the peak)
    assert lrs[0] <= peak and 0.1 * peak <= lrs[-1] < 0.2 * peak
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))                    # a decay, all the way
    assert main_ck.read_bytes() == before and latest_checkpoint(main.run_dir) == main_ck
    assert "complete" in branch.status()
    with pytest.raises(CampaignError, match="complete"):
        branch.start(val=False)

    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(tmp_path / "weights"))
    s = branch.export(name="tiny-decayed", eval_dir=str(data), eval_limit=1,
                      results_dir=tmp_path / "results")
    card = json.loads((branch.export_dir / "tiny-decayed.json").read_text())
    assert card["total_steps"] == s["step"] == 10
    assert "--decay-from 4" in card["recipe"] and "--decay cosine" in card["recipe"]

    # the main line resumes where it forked, at its constant rate
    assert "resuming ckpt-00000004.pt" in main.start(extra=["--steps", "5"], nice=5, val=False)
    wait_stopped(main)
    assert [r["lr"] for r in main.log() if r.get("type") == "train"][-1] == peak
