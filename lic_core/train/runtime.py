"""What every long training run shares: CPU-time booking, a clean stop on SIGTERM, the thread
policy of a background job, and checkpoints on a wall-clock timer (docs/training.md, "The
campaign").  The codec loop (:mod:`.loop`), the diffusion stage (:mod:`.diffusion`) and the
HiFiC stage (:mod:`.hific.trainer`) use the same pieces, so their CPU-hours compare."""
from __future__ import annotations

import signal
import threading
import time
from typing import Optional

__all__ = ["process_cpu_s", "StopFlag", "CpuClock", "CheckpointTimer", "setup_threads"]


def process_cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far, all threads together.

    Training time is booked in CPU seconds, not wall seconds: a niced campaign on a shared
    2-core machine runs slower in wall time when others work, but its CPU bill is what it
    learned with (docs/training.md, "CPU-hours").
    """
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
    checkpoint) plus this process's CPU time since ``start()``, minus excluded work
    (validation: ``exclude(seconds)``)."""

    def __init__(self, previous: float = 0.0) -> None:
        self.previous = float(previous)
        self._start = process_cpu_s()
        self._excluded = 0.0

    def exclude(self, seconds: float) -> None:
        self._excluded += float(seconds)

    def __call__(self) -> float:
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
    """``threads`` 0 on the CPU → an started :class:`lic_core.threads.AdaptiveThreads` (call its
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
