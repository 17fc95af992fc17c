"""The one model registry: every named network configuration of lic_core, whatever its family.

In the spirit of CompressAI's zoo (one table from a model name to its architecture and sizes),
each name maps to a :class:`ModelEntry`: its *family* — which config dataclass and network class
it uses — and a factory of its config.

=========  ======================================  ==========================================
family     config (:mod:`lic_core.config`)         network
=========  ======================================  ==========================================
``lgem``   :class:`~lic_core.config.ModelConfig`   :class:`~lic_core.models.lgem.LicModel`
``hific``  :class:`~lic_core.config.HificConfig`   :class:`~lic_core.models.hific.HificModel`
=========  ======================================  ==========================================

:func:`lic_core.models.build_model` and :func:`lic_core.models.load_model` build any entry;
:func:`lic_core.models.hific.get_config` is a typed lookup of the ``hific`` family here.

``ships=True`` marks the models a codec is offered for.  The codec registry
(:mod:`lic_core.codecs.registry`, name → ``Codec`` for files, the CLI and the studio) takes its
learned codecs from :func:`shipped_models` — it keeps no list of learned names of its own — and
adds the classical codecs and the models the user added (``lic models add``).  Test-sized models
(``*-tiny``) are registered but not shipped.

This module is plain data (no torch): the codec registry reads it without building a network.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..config import HificConfig, ModelConfig, tiny_config
from ..errors import ModelNotFoundError

#: the network families: ``lgem`` → LicModel (ModelConfig), ``hific`` → HificModel (HificConfig)
FAMILIES = ("lgem", "hific")


@dataclass(frozen=True)
class ModelEntry:
    """One registered name: its family, a factory of its config, and whether a codec ships."""

    name: str
    family: str
    config: Callable[[], Any]
    ships: bool = False


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, factory: Callable[[], Any], family: str = "lgem",
                   ships: bool = False) -> None:
    """Register (or replace) ``name``: ``factory()`` returns its config (a :class:`ModelConfig`
    for ``lgem``, a :class:`HificConfig` for ``hific``).  Shipped models of a family are listed
    in registration order, best first."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family '{family}' (known: {', '.join(FAMILIES)})")
    _MODELS[name] = ModelEntry(name, family, factory, ships)


def model_entry(name: str) -> ModelEntry:
    """The registered entry of ``name`` (:class:`ModelNotFoundError` if there is none)."""
    entry = _MODELS.get(name)
    if entry is None:
        raise ModelNotFoundError(f"unknown model '{name}' (known: {', '.join(model_names())})")
    return entry


def model_names(family: Optional[str] = None) -> list[str]:
    """Registered names (of one family, or all), sorted."""
    return sorted(n for n, e in _MODELS.items() if family is None or e.family == family)


def shipped_models(family: str) -> tuple[str, ...]:
    """The names a codec ships for, of one family, best first (registration order)."""
    return tuple(n for n, e in _MODELS.items() if e.ships and e.family == family)


def model_family(name: str) -> str:
    """``"lgem"`` or ``"hific"``: which network class builds ``name``."""
    return model_entry(name).family


def model_config(name: str, **overrides) -> Any:
    """A fresh config of ``name`` (its family's dataclass), with optional field overrides."""
    cfg = model_entry(name).config()
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


# ------------------------------------------------------------------------------ the LGEM codec
# CompressAI-style ids: ``lic-lgem`` (the product architecture), ``lic-lgem-cpu`` (the CPU
# training campaign's weights: the preview's narrow architecture, their file carries its own
# config), ``lic-lgem-preview`` (the first CPU-trained preview weights, kept so that files
# written with them keep decoding), ``lic-lgem-tiny`` (tests).


def _narrow(name: str) -> ModelConfig:
    """A narrower variant (same M, groups and entropy model) that can be trained on a CPU in
    minutes; shipped only as a labelled PREVIEW, never as the product codec."""
    return ModelConfig(name=name, preview=True, N=64, res_blocks=1, hyper_N=64, hyper_out=128,
                       ctx_max=64, ep_hidden_max=96, attn_dim=32)


register_model("lic-lgem", lambda: ModelConfig(name="lic-lgem"), ships=True)
register_model("lic-lgem-cpu", lambda: _narrow("lic-lgem-cpu"), ships=True)
register_model("lic-lgem-preview", lambda: _narrow("lic-lgem-preview"), ships=True)
register_model("lic-lgem-tiny", tiny_config)

# ------------------------------------------------------------------------------ HiFiC
# "hific-small" — the product baseline (docs/methods.md §8.4).  Halving the official widths,
# (30, 60, 120, 240, 480), with C_y = 128 and 5 residual blocks at 480 channels costs ≈ 28 M
# parameters (each residual block at width w has 18·w² weights), far over the 8 M budget; so
# the E/G ladder is (24, 48, 96, 192, 192) with the 5 residual blocks at 192 channels, C_y = 128
# (220 does not fit), and the hyperprior is 128 wide with 128 hyper-latent channels.  Parameters
# (``count_parameters``): E 0.78 M, G 4.10 M, h_a 0.97 M, h_s^μ and h_s^σ 0.97 M each,
# factorized prior 8 k, gains 1.5 k — 7.79 M in total; the training-only discriminator (widths
# halved: 32, 64, 128, 256) adds 0.71 M.  Three gain levels with rate targets 0.14/0.30/0.45 bpp.
register_model("hific-small", HificConfig, family="hific", ships=True)
# "hific-tiny" — tests only (CPU, milliseconds per step).
register_model("hific-tiny", lambda: HificConfig(
    name="hific-tiny", widths=(8, 8, 16, 16, 24), C_y=32, n_res=1, N=8, hyper_width=16,
    disc_cond=4, disc_widths=(8, 8, 16, 16)), family="hific")
