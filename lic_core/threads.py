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
from typing import Mapping, Optional

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
    count = default_threads() if not n else check_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    else:
        os.environ["OMP_NUM_THREADS"] = str(count)
        os.environ["MKL_NUM_THREADS"] = str(count)
    return count
