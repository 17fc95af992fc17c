"""A safety net for the campaign tests: they start trainers in the background (their own
sessions, ``campaign.base.launch``), some with ``--steps 100000`` that only a later ``stop`` ends.
When a test fails before that stop, the trainer would train on for the rest of the suite (it did
once, for 14 minutes, and slowed everything after it). After every test, any process whose pid
file lies under the test's ``tmp_path`` and whose command line names that folder is stopped,
its whole session with it."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest


def _alive_pid(pid_file: Path, tmp: str) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return None
    return pid if tmp in cmd else None


def _running(pid: int) -> bool:
    try:  # a zombie (state Z) has ended; its parent reaps it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture(autouse=True)
def _no_trainer_outlives_its_test(tmp_path):
    yield
    pids = {p for f in tmp_path.rglob("*pid") if f.is_file()
            for p in [_alive_pid(f, str(tmp_path))] if p}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig)  # launched with start_new_session: its own process group
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 20
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if _running(p)}
            time.sleep(0.2)
        if not pids:
            break
