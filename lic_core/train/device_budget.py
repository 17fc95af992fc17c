"""How much a device ``run`` can still carry (tools/device_train.sh ``prepare``).

The lent device machine receives the working tree's tracked files plus the ``carry`` paths, 64 MiB
in all. The shipped weights take most of it, so the training photos are copied at the largest
size that still fits (:func:`lic_core.train.data.copy_training_data_within`).
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

from .campaign_base import ROOT

#: the device tool's upload limit
UPLOAD_BYTES = 64 * 2**20
#: headroom for files git does not ignore but that are not tracked yet, and for rounding
MARGIN_BYTES = 2**20


def tracked_bytes(root: Path = ROOT) -> int:
    """Bytes of the files git tracks under ``root`` (what every ``run`` uploads)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True,
                           capture_output=True).stdout.split(b"\0")
    return sum((root / n.decode()).stat().st_size for n in names
               if n and (root / n.decode()).is_file())


def _path_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def carry_budget(other_carried: Sequence[str] = (), root: Path = ROOT) -> int:
    """Bytes left for the training photos: the upload limit less the tracked files, the other
    carried paths (relative to ``root``) and a 1 MiB margin."""
    other = sum(_path_bytes(root / p) for p in other_carried)
    return UPLOAD_BYTES - tracked_bytes(root) - other - MARGIN_BYTES
