"""A phase of the codec campaign end to end, unattended: ``tools/campaign.sh cycle
start|status|stop`` (docs/training.md, "Cycle").

A phase ends with four steps that each wait for the one before: stop the main line (it
checkpoints), train its decay branch (:mod:`.decay`), measure the branch (``--stage codec-decay
export``), and — when the export earned its install (≥ 2 % BD-rate over the shipped weights) — run
the release train (:mod:`.release`), which re-derives and installs every dependent. Then the main
line goes back to training. Done by hand, every hand-over waits for someone to notice that the
step before has finished (a 10-minute poll left the CPU idle for 6 minutes after the second
release), and a session that ends in the middle leaves the CPU idle until the next one. The cycle
is one background driver (``python -m campaign.cycle``, niced, its own session) that runs the
steps back to back:

=============  ==========================================================================
phase          what it does
=============  ==========================================================================
stop-main      ``tools/campaign.sh stop`` (the codec's main line checkpoints and exits)
decay          ``tools/campaign.sh decay`` and wait; a branch of the newest checkpoint that
               is already complete is not trained again
export         ``--stage codec-decay export`` (in the driver): the card, the gain over the
               shipped weights, ``earned``
release        when earned (and not ``--no-release``): ``release start`` and wait until it
               installed (or held: its status says why)
resume-main    ``tools/campaign.sh start``: the main line trains on from where it forked
=============  ==========================================================================

* **The CPU is never left idle by the cycle**: an export that did not earn its install, or a
  step that failed, goes straight to ``resume-main`` (a failure is recorded in the state and
  ``cycle status`` shows it; ``cycle start`` then retries the failed step, stopping the main line
  again first).
* **Stop and continue**: ``cycle stop`` stops the running step (the branch or the release
  checkpoints) and the driver; the main line is *not* restarted (a stop means someone wants the
  CPU). ``cycle start`` continues at the phase it stopped in.
* **One job at a time**: while the cycle runs, the stages refuse to start beside it (it counts as
  a running stage of the folder), and the cycle's own steps are exempt from that check through
  :data:`CYCLE_ENV`, which the driver puts in its environment (its children inherit it).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .base import CYCLE_ENV, DEFAULT_DIR, CampaignError, Stage, launch, now

PHASES = ("stop-main", "decay", "export", "release", "resume-main", "done")
#: the phases that need the main line stopped (one training job at a time)
MAIN_STOPPED = ("decay", "export", "release")


class Stopped(BaseException):
    """The cycle was asked to stop (SIGTERM). Not an ``Exception``: the measuring code's broad
    ``except Exception`` blocks must not swallow it."""


class CycleDriver(Stage):
    """``tools/campaign.sh cycle``: the end of a phase, unattended (module docstring)."""

    name = "cycle"
    label = "phase cycle"
    #: seconds between looks at a step running in the background
    poll_s = 2.0

    def __init__(self, root: Path | str = DEFAULT_DIR) -> None:
        super().__init__(root)
        self._stop = False
        self._interruptible = False

    # -- the user's side ----------------------------------------------------------------------
    def start(self, decay_min: Optional[float] = None, final_lr: Optional[float] = None,
              release: bool = True, nice: int = 19, fresh: bool = False,
              release_options: Optional[dict] = None) -> str:  # type: ignore[override]
        """Begin a cycle (or continue the one stopped or failed, with these options; ``fresh``:
        begin anew instead) in the background; one line.

        ``release_options`` (keyword arguments of :meth:`.release.ReleaseTrain.start`) are for
        smoke runs and tests."""
        from .decay import DEFAULT_CPU_MIN, DEFAULT_FINAL_LR

        pid = self.pid()
        if pid:
            return f"{self.label} already running (pid {pid}); `cycle status` to follow it"
        others = [(s, p) for s, p in self.running_stages() if s != "codec"]
        if others:  # the main line may run: stopping it is the cycle's first step
            s, p = others[0]
            how = "release stop" if s == "release" else f"--stage {s} stop"
            raise CampaignError(f"the {s} stage is running (pid {p}); only one job at a time: "
                                f"stop it first (tools/campaign.sh {how})")
        st = self.state()
        if st.get("phase") in (None, "done") or fresh:
            st = self.fresh_state(DEFAULT_CPU_MIN if decay_min is None else decay_min,
                                  DEFAULT_FINAL_LR if final_lr is None else final_lr,
                                  release, nice, release_options)
            how = (f"a new cycle: decay {st['options']['decay_min']:g} CPU-min, export, "
                   + ("release when earned, " if release else "no release, ") + "resume")
        else:
            how = f"continuing the cycle at {st['phase']}"
            if st.get("error"):
                how += f" (after: {st['error']})"
            st.pop("error", None)
            st["options"].update(release=bool(release), nice=int(nice))
            if decay_min is not None:
                st["options"]["decay_min"] = float(decay_min)
            if final_lr is not None:
                st["options"]["final_lr"] = float(final_lr)
            if release_options is not None:
                st["options"]["release_options"] = dict(release_options)
        cmd = [sys.executable, "-m", "campaign.cycle", str(self.run_dir)]
        return launch(self, st, cmd, how, nice)

    @staticmethod
    def fresh_state(decay_min: float, final_lr: float, release: bool = True, nice: int = 19,
                    release_options: Optional[dict] = None) -> dict:
        """The state of a cycle that has not begun (its first phase: stop the main line)."""
        return {"created": now(), "phase": PHASES[0], "history": [],
                "options": {"decay_min": float(decay_min), "final_lr": float(final_lr),
                            "release": bool(release), "nice": int(nice),
                            "release_options": dict(release_options or {})}}

    def status(self) -> str:
        st = self.state()
        if not st:
            return "no cycle yet (tools/campaign.sh cycle start)"
        head = f"{self.label} {self.state_word()}: phase {st['phase']}"
        if st.get("error"):
            head += f"; failed: {st['error']} (`cycle start` retries it)"
        lines = [head]
        ex = st.get("export")
        if ex:
            lines.append(f"  export: {ex['line']}")
        step = self._step_status(st.get("phase"))
        if step:
            lines.append("  " + step.replace("\n", "\n  "))
        return "\n".join(lines)

    def _step_status(self, phase: Optional[str]) -> str:
        from .release import ReleaseTrain
        from .stages import open_stage

        if phase == "decay":
            return open_stage("codec-decay", self.root).status()
        if phase == "release":
            return ReleaseTrain(self.root).status()
        if phase in ("resume-main", "done"):
            return open_stage("codec", self.root).status()
        return ""

    def stop(self, timeout: float = 900.0) -> str:
        """Stop the driver (it stops its running step first); ``cycle start`` continues it."""
        msg = super().stop(timeout)
        if "not running" in msg:
            return msg
        return f"{self.label} stopped at {self.state().get('phase')}; `cycle start` continues it"

    # -- the driver (python -m campaign.cycle) -----------------------------------------------
    def _on_term(self, signum, frame) -> None:
        self._stop = True
        if self._interruptible:
            self._interruptible = False
            raise Stopped()

    def _check(self) -> None:
        if self._stop:
            raise Stopped()

    def say(self, msg: str) -> None:
        print(f"{now()} {msg}", flush=True)

    def advance(self, st: dict, phase: str, note: str = "") -> None:
        st.setdefault("history", []).append({"phase": st["phase"], "ended": now(),
                                             **({"note": note} if note else {})})
        st["phase"] = phase
        self.save_state(st)

    def run_in_background(self) -> int:
        """The background process's body: a stop is SIGTERM, and the steps it starts know it as
        their cycle (:data:`CYCLE_ENV`); then :meth:`drive`."""
        signal.signal(signal.SIGTERM, self._on_term)
        os.environ[CYCLE_ENV] = str(os.getpid())
        return self.drive()

    def drive(self) -> int:
        """Run the cycle to its end, a stop or a failure."""
        st = self.state()
        try:
            while st["phase"] != "done":
                self._check()
                phase = st["phase"]
                if phase in MAIN_STOPPED or phase == "stop-main":
                    self.stop_main()
                if phase == "stop-main":
                    self.advance(st, "decay")
                elif phase == "decay":
                    self.decay(st)
                    self.advance(st, "export")
                elif phase == "export":
                    if not self.export_ready():  # the main line moved on since the branch
                        self.advance(st, "decay", "the decay branch is not of the newest "
                                                  "checkpoint: decay again")
                        continue
                    st["export"] = self.export(st)
                    go = st["export"]["earned"] and st["options"]["release"]
                    self.advance(st, "release" if go else "resume-main",
                                 "" if go else st["export"]["line"])
                elif phase == "release":
                    self.advance(st, "resume-main", self.release(st))
                elif phase == "resume-main":
                    self.say(self.resume_main(st))
                    self.advance(st, "done")
                else:
                    raise CampaignError(f"unknown cycle phase {phase!r}")
            self.say("cycle done")
            return 0
        except Stopped:
            self._interruptible = False
            self.stop_step(st.get("phase"))
            self.save_state(st)
            self.say(f"stopped at {st.get('phase')}: `cycle start` continues it")
            return 0
        except Exception as exc:  # noqa: BLE001 - recorded; the main line must not sit idle
            self._interruptible = False
            st["error"] = f"{st.get('phase')}: {exc}"
            self.save_state(st)
            self.say(f"failed at {st['error']}")
            if self._stop:  # asked to stop meanwhile: the CPU is wanted, no training
                return 1
            try:
                self.say(self.resume_main(st))
            except (Exception, Stopped) as again:  # noqa: BLE001 - the first failure is the one
                self.say(f"could not resume the main line either: {again!r}")
            return 1

    # -- the steps ----------------------------------------------------------------------------
    def stop_main(self) -> None:
        from .stages import open_stage

        main = open_stage("codec", self.root)
        if main.pid():
            self.say(main.stop())

    def wait(self, stage) -> None:
        """Until ``stage``'s process has exited (a stop of the cycle interrupts the wait)."""
        self._interruptible = True
        try:
            while stage.pid() is not None:
                self._check()
                time.sleep(self.poll_s)
        finally:
            self._interruptible = False
        self._check()

    def decay(self, st: dict) -> None:
        from .decay import DecayBranchStage

        branch = DecayBranchStage(self.root)
        if self.branch_complete(branch):
            self.say("the decay branch of the newest checkpoint is complete already")
            return
        branch.cpu_min = float(st["options"]["decay_min"])
        branch.final_lr = float(st["options"]["final_lr"])
        fork_before = branch.own_state().get("forked_from")
        ends_before = len([r for r in branch.log() if r.get("type") == "end"])
        self.say(branch.start(nice=int(st["options"]["nice"]), val=False))
        if branch.own_state().get("forked_from") != fork_before:
            ends_before = 0  # a new fork: its log began afresh
        self.wait(branch)
        ends = [r for r in branch.log() if r.get("type") == "end"]
        reason = ends[-1].get("reason") if len(ends) > ends_before else None
        if reason == "signal":  # stopped by someone else: so is the cycle
            raise Stopped()
        if not self.branch_complete(branch):
            tail = branch.out_file.read_text(errors="replace")[-1500:] \
                if branch.out_file.is_file() else ""
            raise CampaignError(f"the decay branch ended before its last step "
                                f"(reason {reason}):\n{tail}")

    @staticmethod
    def branch_complete(branch) -> bool:
        """Whether the branch forked from the main line's newest checkpoint reached its end."""
        from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

        own = branch.own_state()
        main_ck = latest_checkpoint(branch.main.run_dir)
        mine = latest_checkpoint(branch.run_dir)
        if not own.get("forked_from") or main_ck is None or mine is None:
            return False
        return (own["forked_from"] == str(main_ck)
                and int(load_checkpoint(mine)["step"]) >= int(own["steps"]))

    def export_ready(self) -> bool:
        """Whether the decay branch is the complete branch of the main line's newest
        checkpoint (else the export would measure weights the main line has left behind)."""
        from .decay import DecayBranchStage

        return self.branch_complete(DecayBranchStage(self.root))

    def export(self, st: dict) -> dict:
        from .stages import open_stage

        self._interruptible = True
        try:
            s = open_stage("codec-decay", self.root).export()
        finally:
            self._interruptible = False
        card = s["card"]
        gain = s.get("gain_vs_shipped_pct")
        line = (f"{s['name']} {card.get('total_steps')} steps, {card.get('cpu_hours', 0):.2f} "
                "CPU-h: " + (f"{gain:+.2f} % over the shipped weights" if gain is not None
                             else "no comparison with shipped weights") +
                ("" if s["earned"] else f" — not released: {s['why_not_earned']}"))
        self.say(f"export: {line}")
        return {"earned": bool(s["earned"]), "gain_vs_shipped_pct": gain, "line": line,
                "bd_rate": card.get("bd_rate"), "files": s.get("files")}

    def release(self, st: dict) -> str:
        """Start (or continue) the release train and wait for it; its outcome in one line."""
        from .release import ReleaseTrain

        train = ReleaseTrain(self.root)
        rst = train.state()
        opts = dict(st["options"].get("release_options") or {})
        opts.setdefault("nice", int(st["options"]["nice"]))
        if not st.get("release_started"):
            if rst.get("phase") not in (None, "installed"):
                raise CampaignError("another release is under way (`release status`; `release "
                                    "abort` discards it)")
            self.say(train.start(**opts))
            st["release_started"] = now()
            st["release_created"] = train.state().get("created")  # which release is ours
            self.save_state(st)
        elif not rst or rst.get("created") != st.get("release_created"):
            return "the release was discarded (`release abort`)"  # not ours to start again
        elif rst.get("phase") != "installed":  # the cycle stopped during it: it continues
            self.say(train.start(**opts))
        self.wait(train)
        rst = train.state()
        if rst.get("error"):
            raise CampaignError(f"the release train failed: {rst['error']}")
        if rst.get("phase") == "installed":
            return f"released {rst['export']['weights_hash']}"
        if rst.get("phase") == "held":
            return f"release held: {rst.get('why_held')}"
        if rst.get("stopped"):  # someone stopped it: so is the cycle
            raise Stopped()
        raise CampaignError("the release train ended without finishing or recording an error "
                            f"(its log: {train.out_file})")

    def resume_main(self, st: dict) -> str:
        from .stages import open_stage

        return open_stage("codec", self.root).start(nice=int(st["options"]["nice"]))

    def stop_step(self, phase: Optional[str]) -> None:
        """Stop the step of ``phase`` that runs in the background (if it does)."""
        from .release import ReleaseTrain
        from .stages import open_stage

        if phase == "decay":
            step = open_stage("codec-decay", self.root)
        elif phase == "release":
            step = ReleaseTrain(self.root)
        else:
            return
        if step.pid():
            self.say(step.stop())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m campaign.cycle RUN_DIR``: the background driver ``cycle start`` launches."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m campaign.cycle RUN_DIR (started by tools/campaign.sh cycle "
              "start)", file=sys.stderr)
        return 2
    # not resolved: the stages find each other by the folder as written on their command lines
    return CycleDriver(Path(args[0]).parent).run_in_background()


if __name__ == "__main__":
    raise SystemExit(main())
