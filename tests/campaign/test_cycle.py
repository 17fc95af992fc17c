"""The unattended end of a campaign phase (``tools/campaign.sh cycle``): stop the main line, decay
branch, export, release when earned, main line again — in that order, never leaving the CPU idle
after a failure or an unearned export, and continuing where a stop left it."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from campaign.base import CYCLE_ENV, CampaignError
from campaign.cycle import CycleDriver, Stopped
from campaign.stages import open_stage
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from synthetic_photos import striped_photos, wait_stopped
from test_campaign import TINY


class Scripted(CycleDriver):
    """The driver's state machine with its steps replaced by a script (no processes)."""

    def __init__(self, root, earned=True, fail=None, stop=None, stale_branch=0):
        super().__init__(root)
        self.calls: list[str] = []
        self.earned, self.fail, self.stop_in = earned, fail, stop
        self.stale = stale_branch  # how many times export finds the branch behind the main line

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail:
            raise CampaignError(f"{name} broke")
        if name == self.stop_in:
            self._stop = True  # what SIGTERM does
            raise Stopped()

    def stop_main(self):
        self.calls.append("stop-main")

    def decay(self, st):
        self._step("decay")

    def export_ready(self):
        self.stale -= 1
        return self.stale < 0

    def export(self, st):
        self._step("export")
        return {"earned": self.earned, "line": "x: +3.00 %" if self.earned else "x: +1.00 % — "
                "not released", "gain_vs_shipped_pct": 3.0 if self.earned else 1.0}

    def release(self, st):
        self._step("release")
        return "released abc"

    def resume_main(self, st):
        self.calls.append("resume-main")
        return "campaign started"

    def stop_step(self, phase):
        self.calls.append(f"stop {phase}")


def begin(root, **kw) -> None:
    CycleDriver(root).save_state(CycleDriver.fresh_state(25.0, 0.1, **kw))


def steps(calls: list[str]) -> list[str]:
    return [c for c in calls if c != "stop-main"]


def test_a_cycle_runs_its_steps_in_order_then_trains_again(tmp_path):
    begin(tmp_path)
    d = Scripted(tmp_path)
    assert d.drive() == 0
    assert steps(d.calls) == ["decay", "export", "release", "resume-main"]
    # the main line is stopped before every step that trains or measures (one job at a time)
    for s in ("decay", "export", "release"):
        assert d.calls[d.calls.index(s) - 1] == "stop-main"
    st = d.state()
    assert st["phase"] == "done" and st["export"]["earned"]
    assert [h["phase"] for h in st["history"]] == ["stop-main", "decay", "export", "release",
                                                   "resume-main"]
    assert st["history"][3]["note"] == "released abc"


@pytest.mark.parametrize("earned, release", [(False, True), (True, False)])
def test_no_release_without_an_earned_export_or_with_no_release(tmp_path, earned, release):
    begin(tmp_path, release=release)
    d = Scripted(tmp_path, earned=earned)
    assert d.drive() == 0
    assert steps(d.calls) == ["decay", "export", "resume-main"]
    assert d.state()["phase"] == "done"


def test_a_failed_step_is_recorded_the_main_line_trains_and_a_restart_retries_it(tmp_path):
    begin(tmp_path)
    d = Scripted(tmp_path, fail="export")
    assert d.drive() == 1
    assert steps(d.calls) == ["decay", "export", "resume-main"]  # the CPU does not sit idle
    st = d.state()
    assert st["phase"] == "export" and st["error"] == "export: export broke"
    assert "failed: export: export broke" in d.status()

    st.pop("error")  # what `cycle start` does before it launches the driver again
    d.save_state(st)
    again = Scripted(tmp_path)
    assert again.drive() == 0
    assert again.calls[0] == "stop-main"  # the main line it resumed is stopped again first
    assert steps(again.calls) == ["export", "release", "resume-main"]


def test_an_export_of_a_branch_the_main_line_has_left_decays_again_first(tmp_path):
    begin(tmp_path)
    d = Scripted(tmp_path, stale_branch=1)
    assert d.drive() == 0
    assert steps(d.calls) == ["decay", "decay", "export", "release", "resume-main"]
    assert "decay again" in d.state()["history"][2]["note"]


def test_a_stop_during_a_failure_leaves_the_main_line_stopped(tmp_path):
    begin(tmp_path)

    class StopThenFail(Scripted):
        def decay(self, st):
            self.calls.append("decay")
            self._stop = True  # SIGTERM arrived while the step was failing
            raise CampaignError("broke")

    d = StopThenFail(tmp_path)
    assert d.drive() == 1
    assert steps(d.calls) == ["decay"] and d.state()["error"] == "decay: broke"


def test_a_stop_stops_the_step_leaves_the_main_line_stopped_and_continues(tmp_path):
    begin(tmp_path)
    d = Scripted(tmp_path, stop="release")
    assert d.drive() == 0
    assert steps(d.calls) == ["decay", "export", "release", "stop release"]  # no resume-main
    assert d.state()["phase"] == "release"
    again = Scripted(tmp_path)
    assert again.drive() == 0
    assert steps(again.calls) == ["release", "resume-main"]


def test_the_cycle_counts_as_a_running_job_except_for_its_own_steps(tmp_path, monkeypatch):
    root = tmp_path / "campaign"
    root.mkdir()
    monkeypatch.delenv(CYCLE_ENV, raising=False)
    # a live process whose command line says it is this folder's cycle driver
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                             "campaign.cycle", str(root / "cycle")])
    try:
        (root / "cycle.pid").write_text(f"{proc.pid}\n")
        t0 = time.monotonic()
        while CycleDriver(root).pid() is None:
            assert time.monotonic() - t0 < 20
            time.sleep(0.05)
        main = open_stage("codec", root)
        with pytest.raises(CampaignError, match=r"cycle stage is running.*cycle stop"):
            main.refuse_if_another_runs()
        with pytest.raises(CampaignError, match="cycle stage is running"):
            main.start(init="none")
        monkeypatch.setenv(CYCLE_ENV, str(proc.pid))  # inside the driver and its children
        assert main.running_stages() == []
        main.refuse_if_another_runs()
        assert "already running" in CycleDriver(root).start()
        monkeypatch.setenv(CYCLE_ENV, str(proc.pid + 1))  # another cycle's: no exemption
        with pytest.raises(CampaignError, match="cycle stage is running"):
            main.refuse_if_another_runs()
    finally:
        proc.kill()
        proc.wait()


def test_a_cycle_refuses_to_start_beside_another_stage_but_not_the_main_line(tmp_path):
    root = tmp_path / "campaign"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                             "lic_core.train", str(root / "gan")])
    try:
        (root / "gan.pid").write_text(f"{proc.pid}\n")
        with pytest.raises(CampaignError, match=r"gan stage is running.*--stage gan stop"):
            CycleDriver(root).start()
        assert not (root / "cycle.json").exists()
    finally:
        proc.kill()
        proc.wait()


def test_the_driver_needs_its_folder():
    r = subprocess.run([sys.executable, "-m", "campaign.cycle"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


@pytest.mark.slow
def test_a_real_cycle_stops_decays_exports_and_resumes_the_main_line(tmp_path, monkeypatch):
    """With the processes: a tiny main line training in the background; the cycle stops it,
    forks and decays it, measures the branch, and (no release asked) starts the main line again
    from the checkpoint it stopped at."""
    data = striped_photos(tmp_path / "photos")
    root = tmp_path / "campaign"
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(tmp_path / "weights"))
    main = open_stage("codec", root)
    main.start(data=str(data), kodak=str(data), init="none",
               recipe=TINY.split() + ["--steps", "100000"], nice=5, val=False)
    t0 = time.monotonic()
    while len([r for r in main.log() if r.get("type") == "train"]) < 3:
        assert main.pid() is not None, main.out_file.read_text()[-2000:]
        assert time.monotonic() - t0 < 240
        time.sleep(0.3)

    cycle = CycleDriver(root)
    msg = cycle.start(decay_min=0.0, release=False, nice=5)
    assert "phase cycle started" in msg and "no release" in msg
    t0 = time.monotonic()
    while cycle.pid() is not None:
        assert time.monotonic() - t0 < 600, cycle.out_file.read_text()[-3000:]
        time.sleep(0.5)
    st = cycle.state()
    assert st["phase"] == "done" and "error" not in st, cycle.out_file.read_text()[-3000:]

    branch = open_stage("codec-decay", root)
    fork = branch.own_state()
    forked = load_checkpoint(fork["forked_from"])
    assert fork["steps"] == forked["step"] + branch.min_steps  # 0 CPU-min: the shortest decay
    assert load_checkpoint(latest_checkpoint(branch.run_dir))["step"] == fork["steps"]
    assert (root / "export" / "lic-lgem-cpu.safetensors").is_file()
    assert st["export"]["earned"] and st["export"]["line"].startswith("lic-lgem-cpu")
    assert [h["phase"] for h in st["history"]] == ["stop-main", "decay", "export",
                                                   "resume-main"]
    # the main line trains again, from the checkpoint the cycle stopped it at
    assert main.pid() is not None
    assert f"resuming {Path(fork['forked_from']).name}" in main.out_file.read_text()
    assert "phase done" in cycle.status()
    main.stop()
    wait_stopped(main)


class FakeRelease:
    """A release train whose outcome is given (the real one: test_release_train.py)."""
    state_after: dict = {}
    state_before: dict = {}
    started: list = []

    def __init__(self, root):
        self.out_file = root / "release.out"

    def state(self):
        return FakeRelease.state_after if FakeRelease.started else FakeRelease.state_before

    def start(self, **opts):
        FakeRelease.started.append(opts)
        return "release train started"

    def pid(self):
        return None


@pytest.mark.parametrize("after, outcome", [
    ({"phase": "installed", "export": {"weights_hash": "abcd"}}, "released abcd"),
    ({"phase": "held", "why_held": "did not earn its install: gan"}, "release held: did not"),
    ({"phase": "training", "error": "gan: it broke"}, CampaignError),
    ({"phase": "training", "stopped": "2026-12-08T03:00:00Z"}, Stopped),  # someone stopped it
    ({"phase": "training"}, CampaignError),  # it died without a word: a failure, not a stop
])
def test_the_release_step_starts_the_train_waits_and_reads_its_outcome(tmp_path, monkeypatch,
                                                                       after, outcome):
    import campaign.release

    monkeypatch.setattr(campaign.release, "ReleaseTrain", FakeRelease)
    FakeRelease.started, FakeRelease.state_before = [], {}
    FakeRelease.state_after = {"created": "2026-12-08T02:00:00Z", **after}
    d = CycleDriver(tmp_path)
    st = CycleDriver.fresh_state(25.0, 0.1, nice=7, release_options={"max_steps": 3})
    if isinstance(outcome, str):
        assert d.release(st).startswith(outcome)
    else:
        with pytest.raises(outcome):
            d.release(st)
    assert FakeRelease.started == [{"max_steps": 3, "nice": 7}] and st["release_started"]
    assert st["release_created"] == "2026-12-08T02:00:00Z"


def test_a_continued_release_step_goes_on_with_its_own_release_only(tmp_path, monkeypatch):
    import campaign.release

    monkeypatch.setattr(campaign.release, "ReleaseTrain", FakeRelease)
    st = CycleDriver.fresh_state(25.0, 0.1)
    st.update(release_started="2026-12-08T02:00:01Z", release_created="2026-12-08T02:00:00Z")
    FakeRelease.started, FakeRelease.state_before = [], {}
    FakeRelease.state_after = {"created": "2026-12-08T02:00:00Z", "phase": "installed",
                               "export": {"weights_hash": "abcd"}}
    FakeRelease.started = []
    # discarded by `release abort` (no state) or replaced by another release: not restarted
    assert "discarded" in CycleDriver(tmp_path).release(dict(st))
    assert FakeRelease.started == []


def test_the_release_step_does_not_take_over_a_release_it_did_not_start(tmp_path, monkeypatch):
    import campaign.release

    monkeypatch.setattr(campaign.release, "ReleaseTrain", FakeRelease)
    FakeRelease.started, FakeRelease.state_before = [], {"phase": "held"}
    with pytest.raises(CampaignError, match="another release is under way"):
        CycleDriver(tmp_path).release(CycleDriver.fresh_state(25.0, 0.1))
    assert FakeRelease.started == []


def test_continuing_a_cycle_takes_the_new_options_and_fresh_begins_anew(tmp_path, monkeypatch):
    import campaign.cycle

    launched = []
    monkeypatch.setattr(campaign.cycle, "launch",
                        lambda c, st, cmd, how, nice: launched.append((st, how)) or "started")
    d = CycleDriver(tmp_path)
    st = CycleDriver.fresh_state(25.0, 0.1, release=True)
    st.update(phase="release", error="release: broke")
    d.save_state(st)
    d.start(release=False, nice=5)
    st2, how = launched[-1]
    assert st2["phase"] == "release" and "continuing the cycle at release" in how
    assert st2["options"]["release"] is False and st2["options"]["nice"] == 5
    assert "error" not in st2 and st2["options"]["decay_min"] == 25.0
    d.start(fresh=True, decay_min=10.0)
    st3, how = launched[-1]
    assert st3["phase"] == "stop-main" and st3["options"]["decay_min"] == 10.0
    assert "a new cycle" in how


def test_the_command_line_reaches_the_cycle(tmp_path, capsys):
    from campaign.cli import main

    assert main(["--dir", str(tmp_path), "cycle", "status"]) == 0
    assert "no cycle yet" in capsys.readouterr().out
    assert main(["--dir", str(tmp_path), "cycle", "stop"]) == 0
    assert "not running" in capsys.readouterr().out
