"""Codec registry: name → :class:`~lic_core.codecs.base.Codec`, for files, the CLI and the studio.

(CompressAI's decorator-registry pattern.)  A codec is a network *plus* a file format, so this
registry is not a second list of models: it is built from

* the one model registry (:mod:`lic_core.models.registry`): every *shipped* model there gets its
  codec from its family's adapter — ``lgem`` → :class:`~lic_core.codecs.learned.LearnedCodec`,
  ``hific`` → :class:`~lic_core.codecs.hific.HificCodec`; :data:`PREFERRED_LEARNED` is the LGEM
  family's shipped names, best first;
* the classical codecs (:mod:`lic_core.codecs.classical`: JPEG, WebP, AVIF, …), which are not
  networks;
* the models the user added (``lic models add``, :mod:`lic_core.codecs.compressai_codec`), synced
  from the config folder's record.
"""
from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from typing import Callable, Union

from ..bitstream import MAGIC, peek_header
from ..errors import LicFormatError, ModelNotFoundError
from ..models.registry import shipped_models
from .base import Codec

#: learned codecs, best first: what ``lic compress`` and the studio start with when available
#: (the product architecture, the CPU campaign's newest weights, the frozen first preview) — the
#: shipped ``lgem`` models of the model registry, in its order
PREFERRED_LEARNED = shipped_models("lgem")

_FACTORIES: dict[str, Callable[[], Codec]] = {}
_CACHE: dict[str, Codec] = {}
#: added models (``lic models add``): name → (the record their codecs were built from, the
#: codec names: ``NAME``, and ``NAME:float`` beside an exact path)
_USER: dict[str, tuple[object, list[str]]] = {}

# Modules whose import registers codecs (the two learned adapters register one codec per shipped
# model of their family; classical.py its Pillow/ffmpeg codecs).  Missing optional modules are
# skipped quietly so a partial install still lists what it has.
_PROVIDERS = (
    "lic_core.codecs.learned",
    "lic_core.codecs.classical",
    "lic_core.codecs.hific",
)


def register_codec(name: str):
    """Class/factory decorator: ``@register_codec("jpeg")``."""

    def deco(factory):
        _FACTORIES[name] = factory
        return factory

    return deco


def _load_providers() -> None:
    for mod in _PROVIDERS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # provider not built yet / optional
            if exc.name is None or not mod.startswith(exc.name):
                raise
    _sync_user_codecs()


_SYNC_LOCK = threading.RLock()


def _sync_user_codecs() -> None:
    """See :func:`_sync_user_codecs_locked`; studio workers call ``get_codec`` concurrently."""
    with _SYNC_LOCK:
        _sync_user_codecs_locked()


def _sync_user_codecs_locked() -> None:
    """Register the models the user added (the config folder's record, re-read when it
    changes): a new one appears, a removed one disappears, a re-added one is rebuilt.  A model
    whose architecture has the exact path (issue 25) is two codecs: ``NAME`` on the exact path
    and ``NAME:float`` on CompressAI's float path."""
    from .compressai_codec import CompressAICodec, codec_names_of, user_codecs

    now = {n: m for n, m in user_codecs().items() if n not in _BUILTIN()}
    for name in list(_USER):
        if name not in now or now[name].to_dict() != _USER[name][0]:
            for codec_name in _USER[name][1]:
                _FACTORIES.pop(codec_name, None)
                _CACHE.pop(codec_name, None)
            _USER.pop(name)
    for name, m in now.items():
        if name not in _USER:
            names = codec_names_of(m)
            for codec_name, exact in names.items():
                _FACTORIES[codec_name] = (lambda m=m, e=exact: CompressAICodec(m, exact=e))
            _USER[name] = (m.to_dict(), list(names))


def _BUILTIN() -> set[str]:
    added = {n for _, names in _USER.values() for n in names}
    return {n for n in _FACTORIES if n not in added}


def builtin_codecs() -> list[str]:
    """Names of the codecs that ship (an added model may not take one of them)."""
    _load_providers()
    with _SYNC_LOCK:
        return sorted(_BUILTIN())


def list_codecs() -> list[str]:
    """Names of all registered codecs (available or not: ask ``codec.available()``)."""
    _load_providers()
    return sorted(_FACTORIES)


def best_first(names: list[str]) -> list[str]:
    """``names`` with the preferred learned codecs first, in :data:`PREFERRED_LEARNED` order."""
    rank = {n: i for i, n in enumerate(PREFERRED_LEARNED)}
    return sorted(names, key=lambda n: rank.get(n, len(rank)))


def get_codec(name: str) -> Codec:
    """The codec registered under ``name`` (instances are cached: models load once)."""
    _load_providers()
    if name not in _FACTORIES:
        raise ModelNotFoundError(
            f"unknown codec '{name}' (known: {', '.join(sorted(_FACTORIES)) or 'none'})")
    if name not in _CACHE:
        _CACHE[name] = _FACTORIES[name]()
    return _CACHE[name]


def codec_for_file(data: bytes, path: Union[str, os.PathLike, None] = None) -> Codec:
    """The codec that decodes a compressed file: the one rule of ``lic decompress`` and the studio.

    A ``.lic`` file (its magic, or a ``.lic`` name) names its model in the header: that codec,
    whether or not it is available here (``unknown codec`` when no such codec is registered; a
    broken header is a :class:`LicFormatError`).  Any other file: the registered codec whose
    ``file_extension`` is the name's suffix.
    """
    suffix = Path(path).suffix.lower() if path is not None else ""
    if data[:len(MAGIC)] == MAGIC or suffix == ".lic":
        header = peek_header(data)
        from .compressai_codec import added_model_for, is_added_model_header

        if is_added_model_header(header.model):  # an added model (either path), by its weights
            _load_providers()
            return get_codec(added_model_for(header.model, header.weights_hash))
        return get_codec(header.model)
    _load_providers()
    for name in sorted(_FACTORIES):
        codec = get_codec(name)
        if suffix and codec.file_extension.lower() == suffix:
            return codec
    label = Path(path).name if path is not None else "data"
    raise LicFormatError(f"{label}: not a file any codec here decodes"
                         + (f" (unknown format '{suffix}')" if suffix else ""))
