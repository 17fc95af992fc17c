"""The networks of the learned codecs, and the one registry that names and builds them.

* :mod:`.registry` — every named configuration, LGEM and HiFiC alike (``register_model``,
  ``model_names``, ``model_config``, ``shipped_models``); the codec registry
  (``lic_core.codecs.registry``) builds its learned codecs from it;
* :mod:`.lgem` — :class:`LicModel`, the LGEM codec's network (ELIC transforms, hyperprior, LGEM
  context model, gain units);
* :mod:`.hific` — :class:`HificModel`, the HiFiC baseline's network (E, G, mean-scale hyperprior);
* :mod:`.lgem_exact`, :mod:`.hific_exact`, :mod:`.compressai_compat` — the exact forward passes
  files decode with, each beside its float network (built from the engine, :mod:`lic_core.exact`);
* this module — :func:`build_model` (fresh) and :func:`load_model` (with weights) for any
  registered name, whatever its family.

A *model* is an ``nn.Module``; a *codec* (``lic_core.codecs``) wraps one into files, and the codec
registry is what the CLI and the studio list.  Importing this package builds no network (and
imports no torch): the networks are imported when one is built.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

from ..errors import ModelNotFoundError
from ..paths import weights_path
from .registry import (
    FAMILIES,
    ModelEntry,
    model_config,
    model_entry,
    model_family,
    model_names,
    register_model,
    shipped_models,
)

if TYPE_CHECKING:
    from .hific import HificModel
    from .lgem import LicModel

__all__ = ["FAMILIES", "ModelEntry", "build_model", "load_model", "model_config", "model_entry",
           "model_family", "model_names", "register_model", "shipped_models", "weights_path"]


def build_model(name: str, **overrides) -> Union["LicModel", "HificModel"]:
    """A freshly initialised network of the named architecture (its family's class)."""
    cfg = model_config(name, **overrides)
    if model_family(name) == "hific":
        from .hific import HificModel

        return HificModel(cfg)
    from .lgem import LicModel

    return LicModel(cfg)


def load_model(name: str, path: str | Path | None = None) -> Union["LicModel", "HificModel"]:
    """The named model with its weights (``lic_core.paths.weights_path(name)`` unless ``path``).

    The config comes from the file when it carries one, so an LGEM name that is not registered
    (a campaign's or a test's weights) loads too; a ``hific`` name loads through
    :func:`lic_core.models.hific.load_hific`."""
    if name in model_names("hific"):
        from .hific import load_hific

        return load_hific(name, Path(path) if path else None)
    from ..config import ModelConfig
    from ..weights import load_weights
    from .lgem import LicModel
    from .uninitialised import init_fills_skipped

    p = Path(path) if path else weights_path(name)
    if not p.is_file():
        raise ModelNotFoundError(f"no weights for '{name}' at {p}")
    state, meta = load_weights(p)
    cfg_dict = meta.get("config")
    cfg = ModelConfig.from_dict(cfg_dict) if cfg_dict else model_config(name)
    with init_fills_skipped():  # every parameter is loaded next (strict): no random draw first
        model = LicModel(cfg)
    model.load_state_dict(state, strict=True)
    model.eval()
    model.weights_meta = meta
    return model
