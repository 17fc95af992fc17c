"""Frozen codec weights: files written with weights a release replaced keep decoding.

A ``.lic`` file names its codec (``lic-lgem-cpu``) and an 8-byte weights hash — the codec
weights' own, or ``SHA-256(base ‖ decoder)[:8]`` for a file made with a fine-tuned or GAN decoder
(:mod:`lic_core.decoder.finetuned`, :mod:`lic_core.decoder.gan`) — and a TCQ file names its
designed rate tables by id (:mod:`lic_core.quantizer.tcq_designed`). The first preview is frozen
*by name*: it is its own codec, ``lic-lgem-preview``, which nothing replaces. The campaign's codec
keeps its name while its weights move on, so installing new weights would leave every file of the
outgoing ones refused with "weights mismatch".

So a release (``tools/campaign.sh release``, ``campaign/release.py``) freezes the outgoing weights
*by hash*: the files that decode them move to ``<weights dir>/frozen/<name>-<hash>/`` under their
usual names::

    <name>.safetensors              the codec weights (their hash is the folder's <hash>)
    <name>-ft-<q>.safetensors       the decoders fine-tuned on them, one per quantizer
    <name>-gan.safetensors          their GAN decoder
    <name>-diffusion.safetensors    their diffusion decoder
    <name>.tcq-tables.json          their designed TCQ rate tables (looked up by id)
    FROZEN.json                     what they are, when they were frozen, what replaced them

Decoders tuned on other weights (stale) are not frozen: nothing was ever coded with them beside
these weights. When the installed ``<name>`` has no decoder a file's hash names,
:func:`frozen_codec` finds the frozen folder one of whose files does, and the file decodes with a
:class:`~lic_core.codecs.learned.LearnedCodec` on that folder: the same exact arithmetic and check
values as before the release. Nothing encodes with a frozen codec; ``lic compress``, ``lic
models`` and the studio only see the installed weights.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from ..paths import diffusion_weights_path, gan_weights_path, weights_dir

#: the weights folder's sub-folder of frozen weights, and the note in each generation
FROZEN_DIR = "frozen"
NOTE = "FROZEN.json"

_LOCK = threading.Lock()
#: frozen folder → (its mtime, the header hashes its files decode, the codec once built)
_CACHE: dict[tuple[str, str], tuple[int, set, object]] = {}


def frozen_root(folder: Optional[Path] = None) -> Path:
    """``<weights dir>/frozen`` (or that of ``folder``)."""
    return Path(folder if folder is not None else weights_dir()) / FROZEN_DIR


def frozen_folder(name: str, weights_hash_hex: str, folder: Optional[Path] = None) -> Path:
    """Where the weights ``name`` with hash ``weights_hash_hex`` are (or would be) frozen."""
    return frozen_root(folder) / f"{name}-{weights_hash_hex}"


def _bound(path: Path, base_hex: str) -> bool:
    """Whether a decoder file was trained on the codec weights ``base_hex``."""
    from ..decoder.finetuned import finetuned_base_hash

    return path.is_file() and finetuned_base_hash(path) == base_hex


def diffusion_bound(path: Path, base_hex: str) -> bool:
    """Whether a diffusion decoder file was trained on the codec weights ``base_hex`` (its
    card's ``codec_weights_hash``; an unreadable card binds to nothing)."""
    from ..decoder.bound import diffusion_trained_on

    return path.is_file() and diffusion_trained_on(path) == base_hex


def decoding_files(folder: Path, name: str) -> list[Path]:
    """The files of ``folder`` that decode files of the weights ``<name>.safetensors`` there:
    those weights, the decoders trained on them and the TCQ rate tables designed on them (what
    a release freezes); decoders of other weights are left out."""
    from ..quantizer.tcq_designed import SUFFIX, shipped_table_for
    from ..weights import read_weights_hash

    base = Path(folder) / f"{name}.safetensors"
    h = read_weights_hash(base)
    files = [base]
    files += [p for p in sorted(Path(folder).glob(f"{name}-ft-*.safetensors")) if _bound(p, h)]
    files += [p for p in [gan_weights_path(name, folder)] if _bound(p, h)]
    files += [p for p in [diffusion_weights_path(name, folder)] if diffusion_bound(p, h)]
    if shipped_table_for(name, h, folder) is not None:
        files.append(Path(folder) / f"{name}{SUFFIX}")
    return files


def header_hashes(folder: Path, name: str) -> set[bytes]:
    """Every header hash a file made with the weights ``<name>.safetensors`` of ``folder`` can
    carry: theirs, and one per decoder trained on them (from metadata: no tensor is read)."""
    from ..decoder.gan import gan_header_hash
    from ..weights import read_weights_hash

    base_hex = read_weights_hash(Path(folder) / f"{name}.safetensors")
    base = bytes.fromhex(base_hex)
    out = {base}
    for p in decoding_files(folder, name)[1:]:
        if p.name.endswith(".safetensors") and not p.name.endswith("-diffusion.safetensors"):
            out.add(gan_header_hash(p, base))  # SHA-256(base ‖ decoder)[:8], as for ft files
    return out


def generations(name: str, folder: Optional[Path] = None) -> list[Path]:
    """The frozen folders of ``name``, oldest first (by their note's date, then name)."""
    root = frozen_root(folder)
    if not root.is_dir():
        return []
    out = []
    for d in root.glob(f"{name}-*"):
        tail = d.name[len(name) + 1:]
        if d.is_dir() and len(tail) == 16 and all(c in "0123456789abcdef" for c in tail) \
                and (d / f"{name}.safetensors").is_file():
            out.append(d)

    def when(d: Path) -> str:
        try:
            return str(json.loads((d / NOTE).read_text()).get("frozen", ""))
        except (OSError, ValueError):
            return ""

    return sorted(out, key=lambda d: (when(d), d.name))


def frozen_codec(name: str, header_hash: bytes, factory: Callable[..., Any],
                 device: Optional[str] = None, folder: Optional[Path] = None):
    """The codec of the frozen weights of ``name`` that made a file with ``header_hash``, or
    None; ``factory(name, folder=..., device=...)`` builds it (a
    :class:`~lic_core.codecs.learned.LearnedCodec`), once per folder."""
    for d in generations(name, folder):
        key = (str(d), str(device))
        mtime = d.stat().st_mtime_ns
        with _LOCK:
            entry = _CACHE.get(key)
        if entry is None or entry[0] != mtime:
            try:
                entry = (mtime, header_hashes(d, name), None)
            except Exception:  # noqa: BLE001 - a torn frozen folder decodes nothing
                continue
        if bytes(header_hash) in entry[1]:
            codec = entry[2] or factory(name, folder=d, device=device)
            with _LOCK:
                _CACHE[key] = (entry[0], entry[1], codec)
            return codec
        with _LOCK:
            _CACHE[key] = entry
    return None


def frozen_for(codec, header, error: Exception):
    """The frozen codec that decodes a file the installed ``codec`` refused with ``error`` (a
    weights mismatch); raises ``error`` again when there is none (a frozen codec looks no
    further)."""
    old = None if codec._dir else frozen_codec(codec.name, header.weights_hash, type(codec),
                                               codec.device)
    if old is None:
        raise error
    return old
