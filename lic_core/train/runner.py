"""The one training runner every stage plugs its step function into (docs/training.md).

The codec (:mod:`.loop`), the diffusion decoder (:mod:`.diffusion`), HiFiC (:mod:`.hific.trainer`),
the fine-tuned decoders (:mod:`.finetune`) and the GAN decoder (:mod:`.gan_decoder`) differ in what
one optimizer step does; everything around the step is here, once:

* **CPU booking** — training time is booked in CPU seconds (user + system, all threads), not wall
  seconds: a niced run on a shared 2-core machine runs slower when others work, but its CPU bill is
  what it learned with. Checkpoints carry the cumulative ``cpu_s``; validation is not booked.
* **Budgets** — ``cpu_budget_min`` stops once that many cumulative training CPU-minutes are booked
  (reason ``"cpu budget"``); ``time_budget_min`` stops *before* that many wall minutes have passed
  since the run started, keeping a margin of 1.5 step times + the measured checkpoint (and
  validation) time (reason ``"time budget"``).
* **Signals** — SIGTERM / SIGINT finish the current step, checkpoint and stop (reason
  ``"signal"``): ``tools/campaign.sh stop`` and device commands end a run so.
* **Checkpoints** — every ``ckpt_every`` steps and whenever ``ckpt_minutes`` of wall time passed
  since the last one (a session may end at any moment), and at the end.
* **Threads** — ``threads`` 0 on the CPU follows the machine's load
  (:class:`lic_core.threads.AdaptiveThreads`), a positive count is fixed.
* **The JSONL log** — ``run_dir/log.jsonl``: the stage's ``train`` records every ``log_every``
  steps (and after the first step of a session and the last of the run), ``val`` records, and an
  ``end`` record with the reason. A resumed run first forgets the ``train`` records of steps whose
  checkpoint was never kept, so the learning curve shows no step twice.
* **Resume** — :meth:`Runner.latest` loads the run folder's newest checkpoint (refusing one of
  another kind); :meth:`Runner.resume` continues its step count and booked CPU seconds.

A stage calls :meth:`Runner.run` with ``step(step) -> logs`` (one optimizer step) and
``save(step) -> path`` (its checkpoint); ``report(step, window, timing) -> (record, line)`` turns
the logs of the last steps into the log record and the console line.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..errors import LicError

__all__ = ["RunSettings", "Runner", "process_cpu_s", "StopFlag", "CpuClock", "CheckpointTimer",
           "setup_threads", "drop_rolled_back_records"]


def process_cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far, all threads together."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class StopFlag:
    """SIGTERM/SIGINT → finish the step, checkpoint, exit 0 (device commands end with a kill)."""

    def __init__(self) -> None:
        self.set = False
        self._old: dict = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:  # pragma: no cover - exercised by hand
        self.set = True

    def restore(self) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)
        self._old.clear()


class CpuClock:
    """Cumulative training CPU seconds: what earlier runs booked (``previous``, from the
    checkpoint) plus this process's CPU time since it was made, minus excluded work
    (validation: ``exclude(seconds)``). ``book=False`` (a GPU run) books nothing more."""

    def __init__(self, previous: float = 0.0, book: bool = True) -> None:
        self.previous = float(previous)
        self.book = book
        self._start = process_cpu_s()
        self._excluded = 0.0

    def exclude(self, seconds: float) -> None:
        self._excluded += float(seconds)

    def __call__(self) -> float:
        if not self.book:
            return self.previous
        return self.previous + (process_cpu_s() - self._start - self._excluded)


class CheckpointTimer:
    """True once ``minutes`` of wall time have passed since the last ``reset()`` (None: never)."""

    def __init__(self, minutes: Optional[float]) -> None:
        self.seconds = 60.0 * minutes if minutes else None
        self._t = time.monotonic()

    def due(self) -> bool:
        return self.seconds is not None and time.monotonic() - self._t >= self.seconds

    def reset(self) -> None:
        self._t = time.monotonic()


def setup_threads(threads: Optional[int], device_type: str = "cpu"):
    """``threads`` 0 on the CPU → a started :class:`lic_core.threads.AdaptiveThreads` (call its
    ``update()`` every step); a positive count is applied; None leaves torch's default."""
    import torch

    if threads == 0 and device_type == "cpu":
        from ..threads import AdaptiveThreads

        adaptive = AdaptiveThreads()
        adaptive.start()
        return adaptive
    if threads:
        torch.set_num_threads(int(threads))
    return None


def drop_rolled_back_records(path: Path, step: int) -> int:
    """Remove the ``train`` records after ``step`` from a run log before resuming at ``step``:
    they were logged by steps whose checkpoint was never kept (a kill between checkpoints, or a
    checkpoint set aside), so the learning curve would show them twice. Returns how many."""
    from ..fileio import write_bytes_atomic

    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1  # a torn last line from a kill
            continue
        if rec.get("type") == "train" and int(rec.get("step", 0)) > step:
            dropped += 1
            continue
        keep.append(line)
    if dropped:
        write_bytes_atomic(path, ("\n".join(keep) + ("\n" if keep else "")).encode(), True)
    return dropped


@dataclass
class RunSettings:
    """What every training run is told (the stages' shared flags)."""

    steps: int                             #: absolute: a resumed run trains on to this count
    run_dir: Optional[Path] = None         #: checkpoints + log.jsonl (None: nothing is written)
    log_every: int = 10
    ckpt_every: int = 0                    #: also checkpoint every N steps (0: only by time)
    ckpt_minutes: Optional[float] = None   #: checkpoint when this much wall time passed
    keep: int = 2                          #: checkpoints kept
    cpu_budget_min: Optional[float] = None
    time_budget_min: Optional[float] = None
    threads: Optional[int] = None          #: 0: adapt to the machine's load


Report = Callable[[int, list, dict], Optional[tuple[Optional[dict], Optional[str]]]]


class Runner:
    """One run of a stage: threads, CPU clock, stop flag, checkpoint timer and log (see the
    module docstring). ``is_main`` is False on the other ranks of a multi-process run (they
    neither log nor print); ``book_cpu`` False for a GPU run (its CPU time is not training
    cost); ``started`` the monotonic time the time budget counts from (default: now)."""

    def __init__(self, settings: RunSettings, device_type: str = "cpu",
                 log: Callable[[str], None] = print, is_main: bool = True,
                 book_cpu: bool = True, started: Optional[float] = None) -> None:
        self.s = settings
        self.run_dir = Path(settings.run_dir) if settings.run_dir is not None else None
        self.is_main = is_main
        self.say = log if is_main else (lambda _m: None)
        self.t0 = time.monotonic() if started is None else started
        self.book_cpu = book_cpu
        self.adaptive = setup_threads(settings.threads, device_type)
        self.clock = CpuClock(0.0, book_cpu)
        self.timer = CheckpointTimer(settings.ckpt_minutes if self.run_dir is not None else None)
        self.stopper = StopFlag()
        self.start = self.step = 0
        self.reason = "done"
        self.step_time = 0.0
        self.ckpt_time = 1.0   # first guess; measured at every checkpoint
        self.val_time = 0.0
        self.last_checkpoint: Optional[Path] = None
        self._log = None

    # -- resume -------------------------------------------------------------------------------
    def latest(self, kind: Optional[str] = None, what: str = "training",
               map_location="cpu") -> Optional[dict]:
        """The newest checkpoint of the run folder (None without one); one of another ``kind``
        (the checkpoint's ``"kind"`` entry) is refused."""
        from .checkpoint import latest_checkpoint, load_checkpoint

        path = latest_checkpoint(self.run_dir) if self.run_dir is not None else None
        if path is None:
            return None
        ck = load_checkpoint(path, map_location=map_location)
        if kind is not None and ck.get("kind") != kind:
            raise LicError(f"{path} is not a {what} checkpoint")
        return ck

    def resume(self, step: int, cpu_s: float = 0.0) -> None:
        """Continue at ``step`` with ``cpu_s`` training CPU seconds already booked (this run's
        own CPU time counts from the runner's creation: the run's setup is part of its cost)."""
        self.start = self.step = int(step)
        self.clock.previous = float(cpu_s)

    # -- the log ------------------------------------------------------------------------------
    def open_log(self) -> None:
        """Open ``run_dir/log.jsonl`` for appending (main process; forgets rolled-back steps)."""
        if self._log is not None or self.run_dir is None or not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        drop_rolled_back_records(self.run_dir / "log.jsonl", self.start)
        self._log = open(self.run_dir / "log.jsonl", "a", encoding="utf-8")

    def record(self, obj: dict) -> None:
        """Append one JSON record to the log (main process only)."""
        if self._log is not None:
            self._log.write(json.dumps(obj) + "\n")
            self._log.flush()

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- pieces of the loop -------------------------------------------------------------------
    def stop_reason(self) -> Optional[str]:
        """Why the run must stop before its next step (None: go on)."""
        s = self.s
        if self.stopper.set:
            return "signal"
        if s.cpu_budget_min is not None and self.clock() >= 60.0 * s.cpu_budget_min:
            self.say(f"CPU budget of {s.cpu_budget_min:g} min reached after {self.step} steps")
            return "cpu budget"
        if s.time_budget_min:
            budget = 60.0 * s.time_budget_min
            need = 1.5 * self.step_time + self.ckpt_time + min(2.0, 0.05 * budget) + self.val_time
            if time.monotonic() - self.t0 + need > budget:
                self.say(f"time budget of {s.time_budget_min:g} min reached after {self.step} "
                         "steps")
                return "time budget"
        return None

    def checkpoint(self, save: Callable[[int], Optional[Path]]) -> None:
        """Run ``save(step)`` (timed: the time budget keeps room for one) and restart the
        checkpoint timer."""
        if self.run_dir is None:
            return
        t = time.monotonic()
        path = save(self.step)
        if path is not None:
            self.last_checkpoint = Path(path)
        self.ckpt_time = time.monotonic() - t
        self.timer.reset()

    def validate(self, fn: Callable[[int], bool]) -> None:
        """Run ``fn(step)`` (True when it validated) without booking its CPU time."""
        t, c0 = time.monotonic(), process_cpu_s()
        if fn(self.step):
            self.val_time = time.monotonic() - t
        self.clock.exclude(process_cpu_s() - c0)

    def _log_due(self) -> bool:
        st, every = self.step, max(1, int(self.s.log_every))
        return st % every == 0 or st == self.s.steps or st == self.start + 1

    def _ckpt_due(self) -> bool:
        every = self.s.ckpt_every
        return bool(every) and self.step % every == 0 or self.timer.due()

    # -- the loop -----------------------------------------------------------------------------
    def run(self, step: Callable[[int], Optional[dict]], save: Callable[[int], Optional[Path]],
            report: Optional[Report] = None, validate: Optional[Callable[[int], bool]] = None,
            finish: Optional[Callable[[int, str], Optional[dict]]] = None,
            sync: Optional[Callable[[bool], bool]] = None) -> str:
        """Train until ``settings.steps`` or a stop; returns the reason (``"done"``, ``"signal"``,
        ``"cpu budget"``, ``"time budget"``).

        ``step(step)`` does one optimizer step and returns its logs; ``save(step)`` writes a
        checkpoint and returns its path; ``report`` (see the module docstring) gets the logs of
        the last ``log_every`` steps and ``timing`` = {cpu_s, it_s, threads, elapsed_s};
        ``validate(step)`` runs after every step and says whether it validated (its CPU time
        is not booked); ``finish(step, reason)`` runs after the final checkpoint and returns
        more fields of the ``end`` record; ``sync(stop)`` agrees on stopping across processes
        (any rank stops → all stop)."""
        import torch

        self.open_log()
        self.stopper.install()
        window: deque = deque(maxlen=max(1, int(self.s.log_every)))
        t_log, n_log = time.monotonic(), 0
        try:
            while self.step < self.s.steps:
                reason = self.stop_reason()
                if sync is not None and sync(reason is not None) and reason is None:
                    reason = "signal" if self.stopper.set else "time budget"  # another rank's
                if reason is not None:
                    self.reason = reason
                    break
                if self.adaptive is not None:
                    self.adaptive.update()
                t = time.monotonic()
                logs = step(self.step) or {}
                self.step += 1
                dt = time.monotonic() - t
                self.step_time = dt if self.step_time == 0.0 else max(dt, 0.9 * self.step_time
                                                                      + 0.1 * dt)
                window.append(logs)
                n_log += 1
                if report is not None and self._log_due():
                    now = time.monotonic()
                    timing = {"cpu_s": self.clock(), "it_s": n_log / max(1e-9, now - t_log),
                              "threads": torch.get_num_threads(), "elapsed_s": now - self.t0}
                    rec, line = report(self.step, list(window), timing) or (None, None)
                    if rec is not None:
                        self.record(rec)
                    if line:
                        self.say(line)
                    t_log, n_log = now, 0
                if validate is not None:
                    self.validate(validate)
                if self.step < self.s.steps and self._ckpt_due():
                    self.checkpoint(save)
            self.checkpoint(save)
            extra = (finish(self.step, self.reason) if finish is not None else None) or {}
            self.record({"type": "end", "step": self.step, "reason": self.reason,
                         "cpu_s": round(self.clock(), 2), **extra})
        finally:
            self.stopper.restore()
            self.close_log()
        self.say(f"stopped at step {self.step} ({self.reason}); checkpoint "
                 f"{self.last_checkpoint}")
        return self.reason

