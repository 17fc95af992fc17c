"""AdaptiveThreads (the campaign's thread count) follows the CPU time *other* processes use."""
from __future__ import annotations

import torch

from lic_core import threads as T


def test_adaptive_threads_follow_other_processes(monkeypatch):
    clock = [0.0]
    machine = [(0, 0)]  # (busy, total) jiffies of the whole machine
    own = [0]
    monkeypatch.setattr(T, "available_cpus", lambda: 2)
    monkeypatch.setattr(T, "_cpu_jiffies", lambda: machine[0])
    monkeypatch.setattr(T, "_own_jiffies", lambda: own[0])
    import time as _time

    monkeypatch.setattr(_time, "monotonic", lambda: clock[0])
    before = torch.get_num_threads()
    try:
        a = T.AdaptiveThreads(interval_s=10.0, max_threads=2)
        assert a.start() == 1  # start small until the machine has been measured

        def tick(other_busy: int, own_busy: int) -> int:
            # 10 s at 100 jiffies/s on 2 CPUs = 2000 jiffies of which others/own were busy
            clock[0] += 10.0
            b, t = machine[0]
            machine[0] = (b + other_busy + own_busy, t + 2000)
            own[0] += own_busy
            return a.update()

        assert tick(other_busy=0, own_busy=1000) == 2          # only we work: both cores
        assert torch.get_num_threads() == 2
        assert tick(other_busy=1000, own_busy=900) == 1         # someone took a core
        assert tick(other_busy=1900, own_busy=100) == 1         # both cores busy elsewhere
        assert tick(other_busy=100, own_busy=1000) == 2         # free again
        clock[0] += 1.0
        assert a.update() == 2                                   # within the interval: unchanged
        assert [n for _, n in a.history] == [2, 1, 2]
    finally:
        torch.set_num_threads(before)


def test_own_and_machine_jiffies_are_read_on_linux():
    m, own = T._cpu_jiffies(), T._own_jiffies()
    if m is None:  # not Linux
        return
    busy, total = m
    assert 0 <= busy <= total and own is not None and own >= 0
