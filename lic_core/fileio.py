"""Atomic file writes: a crash or a full disk never leaves a half-written output behind.

The data goes to a temporary file in the destination folder (same file system, so the final step
is a rename), is flushed and fsync'ed, then moved into place.  Without ``overwrite`` an existing
destination is never replaced: the move is a hard link, which fails atomically if the name exists
(so two writers cannot both "win"), with an exists-check + rename fallback on file systems
without hard links.  The file then has the permissions the umask gives any new file
(:func:`new_file_mode`), never the temporary file's private 0600: every atomic writer of the
project (CLI, training exports, the studio) goes through here, so the rule lives in one place.
"""
from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Union

from .errors import LicError

PathLike = Union[str, os.PathLike]


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc), since
    ``os.umask`` can only be read by setting it, which races with other threads creating files."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Permissions an ordinary new file gets here (0666 minus the umask, e.g. 0644).

    ``tempfile.mkstemp`` creates its file 0600; an atomic write renames that file into place, so
    without this every saved image or .lic would be private to its owner, unlike files the user
    makes with any other program.
    """
    return 0o666 & ~current_umask()


def _refuse_existing(path: Path) -> LicError:
    return LicError(f"'{path}' already exists (use --force to overwrite it)")


def write_atomic(path: PathLike, writer: Callable[[object], None], overwrite: bool = False) -> Path:
    """Create ``path`` atomically; ``writer(fileobj)`` writes the content into a binary file.

    Raises :class:`LicError` when the destination exists (and ``overwrite`` is False), its folder
    does not exist, it is a folder, or the write fails (the partial temp file is removed).  The
    file gets :func:`new_file_mode` (the umask's permissions), like any other new file.
    """

    def fill(fd: int, tmp: Path) -> None:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())

    return _write_through_temp(path, fill, overwrite)


def write_atomic_via_path(path: PathLike, write_to: Callable[[Path], None],
                          overwrite: bool = False) -> Path:
    """:func:`write_atomic` for writers that want a file *name* (safetensors, plot exporters):
    ``write_to(tmp_path)`` writes a temporary file beside ``path``, which is then moved into
    place under the same rules (no partial file, no silent overwrite, umask permissions).  The
    temporary name ends with the destination's suffix, for writers that pick a format by it."""

    def fill(fd: int, tmp: Path) -> None:
        os.close(fd)
        write_to(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())

    return _write_through_temp(path, fill, overwrite, suffix=".part" + Path(path).suffix)


def _write_through_temp(path: PathLike, fill: Callable[[int, Path], None],
                        overwrite: bool, suffix: str = ".part") -> Path:
    """Temp file in the destination folder → ``fill(fd, tmp)`` → umask mode → atomic move."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise LicError(f"'{path}' is a folder, not a file name")
    if not folder.is_dir():
        raise LicError(f"cannot write '{path}': folder '{folder}' does not exist")
    if not overwrite and path.exists():
        raise _refuse_existing(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    except OSError as exc:
        raise LicError(f"cannot write '{path}': {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        fill(fd, tmp)
        # after the content: a writer that re-creates its file by name must not undo it
        if os.name == "posix":  # Windows has no mode bits to fix
            os.chmod(tmp, new_file_mode())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic "create if absent"
            except FileExistsError:
                raise _refuse_existing(path) from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                     errno.EMLINK, errno.ENOSYS):
                    raise
                if path.exists():  # no hard links here (FAT, some network shares)
                    raise _refuse_existing(path) from None
                os.replace(tmp, path)
    except LicError:
        raise
    except OSError as exc:
        raise LicError(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    return path


def write_bytes_atomic(path: PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic`); returns the path."""
    return write_atomic(path, lambda fh: fh.write(data), overwrite=overwrite)


def read_bytes(path: PathLike, what: str = "file", max_bytes: int = 1 << 31) -> bytes:
    """Read a whole file, turning OS errors into a one-line :class:`LicError`."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise LicError(f"'{p}' is a folder, not a {what}")
        if size > max_bytes:
            raise LicError(f"'{p}' is too large for a {what} ({size} bytes)")
        return p.read_bytes()
    except FileNotFoundError:
        raise LicError(f"no such file: '{p}'") from None
    except PermissionError:
        raise LicError(f"permission denied: '{p}'") from None
    except IsADirectoryError:
        raise LicError(f"'{p}' is a folder, not a {what}") from None
    except OSError as exc:
        raise LicError(f"cannot read '{p}': {exc.strerror or exc}") from None


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
