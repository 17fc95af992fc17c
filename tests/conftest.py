"""Shared test fixtures.

``tests/core/`` tests lic_core (no Qt); ``tests/studio/`` tests the app.  Tests run headless (Qt
offscreen) and on CPU with few threads so the suite fits 2 cores.  Tests that need ../shared
(Kodak, training photos, anchors) use the ``shared_dir`` / ``kodak_dir`` fixtures, carry the
``shared`` marker (collection refuses one that does not) and skip cleanly when it is absent (a
user's clone has none; CI has it).
"""
from __future__ import annotations

import os
import tempfile
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
