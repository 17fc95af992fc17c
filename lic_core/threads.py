"""How many CPU threads torch may use: the one thread policy of the CLI and the studio.

Why a policy at all: torch starts one intra-op thread per core and its OpenMP workers spin while
they wait.  On a machine whose cores are already busy (a training job, a browser, another
encode) those threads fight for the same cores: issue 11 measured ``lic compress`` at 8–15 s with
torch's default thread count under load against 0.9 s with one thread.  The model's convolutions
on one image are small enough that a thread which cannot get a core costs far more than it adds.

Policy (:func:`default_threads`), in order:

1. ``LIC_THREADS`` in the environment, when set to a positive integer (an explicit user choice);
2. ``OMP_NUM_THREADS``, when set (the standard knob a user or a batch scheduler sets);
3. otherwise the CPUs this process may run on (``os.sched_getaffinity``, which honours
   ``taskset`` and container CPU sets; ``os.cpu_count`` where it does not exist) minus the
   1-minute load average (runnable processes already competing for them), rounded, and
   clamped to ``[1, CPUs]``.  An idle 8-core laptop gets 8 threads, a 2-core machine running a
   training job (load ≈ 1) gets 1.

:func:`apply_threads` applies a count (``None`` = the default above) to torch, or — when torch is
not imported yet — to ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` so torch starts with it.  Both
``lic --threads N`` and the studio's Settings → Compute threads use these two functions.
"""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Mapping, Optional

from .errors import LicError

#: environment variable that overrides the automatic choice (like ``--threads``)
ENV_VAR = "LIC_THREADS"


def available_cpus() -> int:
    """CPUs this process may run on (affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def current_load() -> Optional[float]:
    """1-minute load average (runnable processes), or None where the OS has none (Windows)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def _positive_int(text: Optional[str]) -> Optional[int]:
    try:
        n = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return n if n >= 1 else None


def default_threads(cpus: Optional[int] = None, load: Optional[float] = None,
                    env: Optional[Mapping[str, str]] = None) -> int:
    """The automatic thread count (policy in the module docstring).

    ``cpus``, ``load`` and ``env`` default to this machine's values; tests pass their own.
    """
    env = os.environ if env is None else env
    for var in (ENV_VAR, "OMP_NUM_THREADS"):
        n = _positive_int(env.get(var))
        if n is not None:
            return n
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    load = current_load() if load is None else float(load)
    if load is None or load != load:  # unknown load: assume the machine is ours
        return cpus
    free = cpus - max(0.0, load)
    return int(min(cpus, max(1, round(free))))


def check_threads(n: int) -> int:
    """``n`` as a valid thread count, or a one-line :class:`LicError`."""
    try:
        value = int(n)
    except (TypeError, ValueError):
        raise LicError(f"--threads must be a whole number, got '{n}'") from None
    if value < 1:
        raise LicError(f"--threads must be at least 1, got {value}")
    return value


def apply_threads(n: Optional[int] = None) -> int:
    """Use ``n`` CPU threads for torch (``None`` or 0 = :func:`default_threads`); returns the count.

    When torch is already imported its intra-op pool is resized now; otherwise the OpenMP/MKL
    environment variables are set so torch starts with ``n`` threads when it is first imported
    (importing torch only to set a number would cost a second for commands that never use it).
    """
    global _single_saved
    count = default_threads() if not n else check_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
        with _SINGLE_LOCK:  # a decode's tile threads are running: they restore this count
            if _single_holders:
                _single_saved = count
    else:
        os.environ["OMP_NUM_THREADS"] = str(count)
        os.environ["MKL_NUM_THREADS"] = str(count)
    return count


def _cpu_jiffies() -> Optional[tuple[int, int]]:
    """(busy, total) jiffies of the whole machine from /proc/stat (Linux), else None."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return sum(vals) - idle, sum(vals)


def _own_jiffies() -> Optional[int]:
    """User + system jiffies of this process, all threads (Linux), else None."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat(5))
    except (OSError, ValueError, IndexError):
        return None


class AdaptiveThreads:
    """Thread count for a long background job (the training campaign) that follows the
    machine: all CPUs while nobody else needs them, one thread as soon as others do.

    Why not a fixed count: an OpenMP team of 2 threads on a 2-core machine where another process
    holds one core runs each parallel region only when *both* threads get a core; a niced job then
    loses ~10× (measured: 0.1–0.3 steps/s against 2.3 quiet and ~1.6 with one thread). Every
    ``interval_s`` it measures the CPU time *other* processes used (machine busy time from
    /proc/stat minus this process's own) and sets ``torch.set_num_threads`` to the CPUs left free,
    at least 1. On systems without /proc it keeps :func:`default_threads`.
    """

    def __init__(self, interval_s: float = 20.0, max_threads: Optional[int] = None) -> None:
        self.interval_s = float(interval_s)
        self.max_threads = max_threads or available_cpus()
        self._last: Optional[tuple[float, tuple[int, int], int]] = None
        self.threads = 1
        self.history: list[tuple[float, int]] = []

    def _sample(self):
        import time

        m, own = _cpu_jiffies(), _own_jiffies()
        if m is None or own is None:
            return None
        return time.monotonic(), m, own

    def start(self) -> int:
        import torch

        self._last = self._sample()
        self.threads = 1 if self._last is not None else default_threads()
        self.threads = min(self.threads, self.max_threads)
        torch.set_num_threads(self.threads)
        return self.threads

    def update(self) -> int:
        """Re-decide when ``interval_s`` has passed; returns the thread count in force."""
        import time

        import torch

        if self._last is None or time.monotonic() - self._last[0] < self.interval_s:
            return self.threads
        now = self._sample()
        t0, (busy0, tot0), own0 = self._last
        t1, (busy1, tot1), own1 = now
        self._last = now
        if tot1 <= tot0:
            return self.threads
        cpus = available_cpus()
        # cores' worth of CPU the rest of the machine used over the interval
        others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (tot1 - tot0) * cpus
        want = int(min(self.max_threads, max(1, cpus - round(others + 0.2))))
        if want != self.threads:
            self.threads = want
            torch.set_num_threads(want)
            self.history.append((t1, want))
        return self.threads


_SINGLE_LOCK = threading.Lock()
_single_holders = 0
_single_saved = 0


def intended_threads() -> int:
    """torch's thread count as the user set it: while tiles run single-threaded in Python threads
    (:func:`single_threaded_ops`) a thread started meanwhile would read their 1 (torch starts new
    threads with the last count set anywhere), so the count saved by the first holder; else
    ``torch.get_num_threads()``."""
    import torch

    with _SINGLE_LOCK:
        if _single_holders:
            return _single_saved
    return torch.get_num_threads()


def use_intended_threads() -> int:
    """Give the calling thread :func:`intended_threads` (a decode in a thread born while another
    decode's tiles ran single-threaded would otherwise run on 1 for the thread's life); returns
    the count. The bytes of an exact decode do not depend on it, only its speed."""
    import torch

    n = intended_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@contextmanager
def single_threaded_ops() -> Iterator[None]:
    """Held while work runs split over Python threads instead of torch's intra-op threads (the
    exact g_s's tiles, :meth:`lic_core.models.lgem_exact.ExactSynthesis._tiled`), each worker
    thread calling ``torch.set_num_threads(1)`` itself: on exit torch's thread count is set back
    to what the first holder found.  Why: whether a count set in one thread reaches the others
    depends on the OpenMP runtime and on whether they have set their own (both seen here with
    torch 2.14 and libgomp; torch starts new threads with the last count set anywhere), so the
    workers' 1 must not outlive the work.  Holders that overlap (two decodes in two threads) share the bookkeeping:
    the last one out restores.

    Why workers: an OpenMP team of n threads runs each of a tile's ~5 000 small GEMMs and
    elementwise passes only when all n get a core, and its idle workers spin; n independent
    tiles, one per thread, meet once at the end.  Measured beside the niced training job on 2
    cores (issue 28 item 2, 1 MP, lic-lgem-cpu): g_s 1.09 s wall / 2.13 CPU-s with a team of 2
    against 0.79 / 1.53 with two tile threads."""
    global _single_holders, _single_saved
    import torch

    with _SINGLE_LOCK:
        if _single_holders == 0:
            _single_saved = torch.get_num_threads()
        _single_holders += 1
    try:
        yield
    finally:
        with _SINGLE_LOCK:
            _single_holders -= 1
            if _single_holders == 0:
                torch.set_num_threads(_single_saved)
