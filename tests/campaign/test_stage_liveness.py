"""Whether a stage's training process is alive is read from /proc: a process of another command
line, a zombie or a missing one is not the stage's; a process caught inside ``execve`` (its
command line reads empty for a moment while ``nice`` execs the trainer) still is. The last
case once made a campaign test see a freshly resumed run as already stopped (CI, 2026-12-07)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import campaign.base as base


def _spawn(run_dir: Path, seconds: float) -> subprocess.Popen:
    # a process whose command line carries a marker and the run folder, as a trainer's does
    code = f"import time; time.sleep({seconds})"
    return subprocess.Popen([sys.executable, "-c", code, "lic_core.train", str(run_dir)])


def test_live_process_is_the_stages(tmp_path):
    proc = _spawn(tmp_path / "run", 30)
    try:
        pid_file = tmp_path / "pid"
        pid_file.write_text(f"{proc.pid}\n")
        assert base._alive(pid_file, tmp_path / "run") == proc.pid
        assert base._alive(pid_file, tmp_path / "other-run") is None  # not this stage's
    finally:
        proc.kill()
        proc.wait()


def test_zombie_and_gone_are_not_alive(tmp_path):
    proc = _spawn(tmp_path / "run", 0)
    pid_file = tmp_path / "pid"
    pid_file.write_text(f"{proc.pid}\n")
    t0 = time.monotonic()
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() - t0 < 30
        time.sleep(0.05)
    assert base._alive(pid_file, tmp_path / "run") is None  # exited, not yet reaped
    proc.wait()
    assert base._alive(pid_file, tmp_path / "run") is None


def test_empty_command_line_during_exec_is_read_again(tmp_path, monkeypatch):
    proc = _spawn(tmp_path / "run", 30)
    try:
        real_read_bytes = Path.read_bytes
        reads = {"n": 0}

        def read_bytes(self: Path) -> bytes:
            if self.name == "cmdline":
                reads["n"] += 1
                if reads["n"] <= 3:  # the exec window: the new image's arguments not yet there
                    return b""
            return real_read_bytes(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        pid_file = tmp_path / "pid"
        pid_file.write_text(f"{proc.pid}\n")
        assert base._alive(pid_file, tmp_path / "run") == proc.pid
        assert reads["n"] == 4
    finally:
        proc.kill()
        proc.wait()
