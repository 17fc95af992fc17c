"""Shared test fixtures.

``tests/core/`` tests lic_core (no Qt); ``tests/studio/`` tests the app.  Tests run headless (Qt
offscreen) and on CPU with few threads so the suite fits 2 cores.  Tests that need ../shared
(Kodak, training photos, anchors) use the ``shared_dir`` / ``kodak_dir`` fixtures, carry the
``shared`` marker (collection refuses one that does not) and skip cleanly when it is absent (a
user's clone has none; CI has it).
"""
from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# models a test adds go to a throw-away config folder, never the user's (~/.config/lic-studio)
os.environ.setdefault("LIC_CONFIG_DIR", tempfile.mkdtemp(prefix="lic-test-config-"))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("LIC_SHARED_DIR", REPO_ROOT.parent / "shared"))


def _limit_threads() -> None:
    try:
        import torch

        # one thread: tiny test models are dominated by per-op overhead, which threads only add to
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


_limit_threads()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test runs single-threaded and cannot leak another thread count to the next one
    (tiny models are dominated by per-op overhead; a thread team only adds spin-waits)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SHARED_FIXTURES = ("shared_dir", "kodak_dir")


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
def _no_trainer_outlives_its_test(request):
    """The campaign tests start trainers in the background (their own sessions,
    ``campaign.base.launch``), some with ``--steps 100000`` that only a later ``stop`` ends; a
    test that fails before that stop would leave its trainer running for the rest of the suite
    (it did once, for 14 minutes). After every test that has a ``tmp_path``, any process whose pid
    file lies under it and whose command line names it is stopped, its whole session with it."""
    # taken before the test (then it is torn down after this fixture, not before)
    tmp_path = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp_path is None:
        return
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


def pytest_collection_modifyitems(config, items):
    """Every test that needs ../shared says so with ``@pytest.mark.shared`` (``-m "not shared"``
    then runs exactly the tests a clone without it can run)."""
    unmarked = [item.nodeid for item in items
                if any(f in getattr(item, "fixturenames", ()) for f in SHARED_FIXTURES)
                and item.get_closest_marker("shared") is None]
    if unmarked:
        raise pytest.UsageError("tests that need ../shared must carry @pytest.mark.shared: "
                                + ", ".join(unmarked))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def load_benchmark(name: str):
    """A script of benchmarks/ imported as a module (its functions are tested directly)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}",
                                                  REPO_ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path to ../shared; skips the test when it is not there."""
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is absent (only CI and the team's machines have it)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def kodak_dir(shared_dir: Path) -> Path:
    d = shared_dir / "data" / "kodak"
    if not d.is_dir():
        pytest.skip("../shared/data/kodak is absent")
    return d
