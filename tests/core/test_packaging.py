"""A regular (non-editable) ``pip install .`` finds the shipped weights and resources.

The package is built and installed with ``pip install --no-deps --no-build-isolation --no-index
--target`` into a temporary folder (no network, the installed setuptools), then imported in a
fresh interpreter whose working directory and ``sys.path`` do not contain the repository: the
preview codec must load its weights from the installed copy (lic_core.paths, package data).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_PROBE = r"""
import json, sys
from pathlib import Path
import lic_core
from lic_core import paths
from lic_core.codecs import get_codec
from lic_core.evaluation.anchors import anchors_dir, measured_dir
from lic_core.image.io import sample_image_path
from lic_core.metrics.lpips_metric import weights_path as lpips_weights

codec = get_codec("lic-lgem-preview")
ok, why = codec.available()
model = codec.model  # loads the weights file
print(json.dumps({
    "package": lic_core.__file__, "weights": str(paths.weights_path("lic-lgem-preview")),
    "available": ok, "why": why, "parameters": model.num_parameters(),
    "weights_hash": codec.weights_hash.hex(), "anchors": sorted(p.name for p in
    (anchors_dir() / "kodak").glob("*.json")), "sample": str(sample_image_path()),
    "measured": sorted(p.name for p in (measured_dir() / "kodak").glob("*.json")),
    "lpips": lpips_weights().is_file()}))
"""


def _have_build_tools() -> str:
    for mod in ("pip", "setuptools"):
        if importlib.util.find_spec(mod) is None:
            return mod
    return ""


@pytest.mark.slow
def test_regular_install_finds_the_weights(tmp_path):
    missing = _have_build_tools()
    if missing:
        pytest.skip(f"cannot build the package here: {missing} is not installed")
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / f, src / f)
    for d in ("lic_core", "app", "campaign"):  # the campaign: a repository tool, not installed
        shutil.copytree(REPO / d, src / d, ignore=shutil.ignore_patterns("__pycache__", "seeds"))
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    assert not (site / "campaign").exists()  # the wheel's package list excludes the campaign
    assert not list((site / "lic_core" / "train").glob("*campaign*"))
    shutil.rmtree(src)  # nothing may be read from the source copy either
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LIC_WEIGHTS_DIR", "LIC_ANCHORS_DIR", "LIC_LPIPS_WEIGHTS")}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    info = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(info["package"]).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(info["weights"]).is_relative_to(site) and info["available"], info["why"]
    assert info["parameters"] > 1_000_000
    assert info["weights_hash"] == get_repo_preview_hash()
    assert "jpeg.json" in info["anchors"] and "vtm.json" in info["anchors"]
    assert "hevc.json" in info["measured"]  # issue 31: the measured HEVC Kodak reference
    assert Path(info["sample"]).is_relative_to(site) and info["lpips"]


def get_repo_preview_hash() -> str:
    """The preview weights' hash as the checkout sees it (same file, same hash)."""
    from lic_core.codecs import get_codec

    return get_codec("lic-lgem-preview").weights_hash.hex()


def test_weights_hash_does_not_depend_on_what_was_asked_first():
    """The header's weights hash is the file's stored identity whether or not the model was
    loaded before the hash was asked for (a fresh codec asked for the hash first once
    recomputed it, with the current format version mixed in, and got another value)."""
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.paths import weights_path

    if not weights_path("lic-lgem-preview").is_file():
        pytest.fail("the shipped preview weights are missing from the checkout")
    hash_first = LearnedCodec("lic-lgem-preview").weights_hash
    c = LearnedCodec("lic-lgem-preview")
    _ = c.model
    assert hash_first == c.weights_hash == bytes.fromhex(c.model.weights_meta["weights_hash"])
