"""The networks of the learned codecs, and the registry that builds them by name.

* :mod:`.lgem` — :class:`LicModel`, the LGEM codec's network (ELIC transforms, hyperprior, LGEM
  context model, gain units);
* :mod:`.hific` — :class:`HificModel`, the HiFiC baseline's network (E, G, mean-scale hyperprior);
* this module — the LGEM registry: :func:`build_model` (fresh), :func:`load_model` (with weights).

A *model* is an ``nn.Module``; a *codec* (``lic_core.codecs``) wraps one into files, and the codec
registry (``lic_core.codecs.registry``) is what the CLI and the studio list.

Names (CompressAI-style ids): ``lic-lgem`` (the product architecture), ``lic-lgem-preview``
(narrow architecture; the first CPU-trained preview weights), ``lic-lgem-cpu`` (the same narrow
architecture: the CPU training campaign's weights; the file's config says so), ``lic-lgem-tiny``
(tests).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from ..config import ModelConfig, tiny_config
from ..errors import ModelNotFoundError
from ..paths import weights_path
from .lgem import LicModel

_CONFIGS: dict[str, Callable[[], ModelConfig]] = {
    "lic-lgem": lambda: ModelConfig(name="lic-lgem"),
    # A narrower variant (same M, groups and entropy model) that can be trained on a CPU in
    # minutes; shipped only as a labelled PREVIEW, never as the product codec.
    "lic-lgem-preview": lambda: ModelConfig(name="lic-lgem-preview", preview=True, N=64,
                                            res_blocks=1, hyper_N=64, hyper_out=128,
                                            ctx_max=64, ep_hidden_max=96, attn_dim=32),
    # the campaign's weights: the preview's architecture (their file carries its own config)
    "lic-lgem-cpu": lambda: dataclasses.replace(_CONFIGS["lic-lgem-preview"](), name="lic-lgem-cpu"),
    "lic-lgem-tiny": lambda: tiny_config(),
}


def register_model(name: str, factory: Callable[[], ModelConfig]) -> None:
    _CONFIGS[name] = factory


def model_names() -> list[str]:
    return sorted(_CONFIGS)


def model_config(name: str, **overrides) -> ModelConfig:
    if name not in _CONFIGS:
        raise ModelNotFoundError(f"unknown model '{name}' (known: {', '.join(model_names())})")
    cfg = _CONFIGS[name]()
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def build_model(name: str, **overrides) -> LicModel:
    """A freshly initialised network of the named architecture."""
    return LicModel(model_config(name, **overrides))


def load_model(name: str, path: str | Path | None = None) -> LicModel:
    """The named model with its weights (``lic_core.paths.weights_path(name)`` unless ``path``)."""
    from ..weights import load_weights

    p = Path(path) if path else weights_path(name)
    if not p.is_file():
        raise ModelNotFoundError(f"no weights for '{name}' at {p}")
    state, meta = load_weights(p)
    cfg_dict = meta.get("config")
    cfg = ModelConfig.from_dict(cfg_dict) if cfg_dict else model_config(name)
    model = LicModel(cfg)
    model.load_state_dict(state, strict=True)
    model.eval()
    model.weights_meta = meta
    return model
