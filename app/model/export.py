"""File output for the studio: atomic writes, PNGs, CSV tables, session JSON (Qt-free).

Every write goes through lic_core's atomic writer (:func:`lic_core.fileio.write_bytes_atomic`:
temporary file in the destination folder, fsync, then an atomic move), so a crash never leaves a
half-written .lic or session behind, and a saved file gets the permissions the user's umask gives
any new file (:func:`lic_core.fileio.new_file_mode`), not the temporary file's private 0600.
Overwrite confirmation is the caller's job (the GUI asks); :func:`atomic_write_bytes` refuses to
overwrite unless ``overwrite=True``.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from lic_core.errors import LicError
from lic_core.fileio import write_atomic_via_path, write_bytes_atomic


class ExportError(LicError):
    """Writing an export failed (exists, permission, disk full)."""


def atomic_write_bytes(path: str | Path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; refuse to replace an existing file by default."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ExportError(f"{path.name} exists (confirm to overwrite)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        return write_bytes_atomic(path, data, overwrite=overwrite)
    except LicError as exc:  # lost a race for the name, permission, disk full: one line
        raise ExportError(str(exc)) from None


def write_via_path(path: str | Path, write: Callable[[Path], Any],
                   overwrite: bool = False) -> Path:
    """For exporters that write to a file name themselves (format from its suffix, e.g. the RD
    plot's PNG/SVG): ``write`` gets a temporary name beside ``path``, which then moves into
    place atomically with the umask's permissions (:func:`lic_core.fileio.write_atomic_via_path`).
    """
    return write_atomic_via_path(path, write, overwrite=overwrite)


def png_bytes(image: np.ndarray, optimize: bool = True) -> bytes:
    """PNG of a uint8 H×W×3 / H×W×4 / H×W array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", optimize=optimize)
    return buf.getvalue()


def save_png(path: str | Path, image: np.ndarray, overwrite: bool = False) -> Path:
    return atomic_write_bytes(path, png_bytes(image), overwrite)


def csv_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    rows = list(rows)
    buf = io.StringIO()
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    w = csv.DictWriter(buf, fieldnames=fields or ["codec"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue().encode("utf-8")


def save_json(path: str | Path, obj: Any, overwrite: bool = False) -> Path:
    return atomic_write_bytes(path, json.dumps(obj, indent=2, default=str).encode("utf-8"),
                              overwrite)


def load_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LicError(f"cannot read session {Path(path).name}: {exc}") from None
