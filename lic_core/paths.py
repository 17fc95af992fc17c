"""Where lic_core finds its weights and resources — the one place that knows.

Weights (``*.safetensors`` + model cards) and resources (published anchor curves, the sample
image) ship inside the package as package data, so an editable checkout and a regular
``pip install .`` find them the same way.  ``$LIC_WEIGHTS_DIR`` overrides the weights folder
(trained weights kept elsewhere, tests); every codec, the diffusion decoder, fine-tuned decoders
and GAN decoders read weights through :func:`weights_dir`.  The LPIPS trunk is a metric, not a
codec: it always comes from :func:`shipped_weights_dir` (or its own ``$LIC_LPIPS_WEIGHTS``).
``$LIC_SHARED_DIR`` names the team's shared data folder (Kodak, training photos); a source
checkout falls back to ``../shared``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

_ASSETS = Path(__file__).resolve().parent / "assets"


def shipped_weights_dir() -> Path:
    """The weights that ship inside the package (preview codec, LPIPS trunk, model cards)."""
    return _ASSETS / "weights"


def weights_dir() -> Path:
    """``$LIC_WEIGHTS_DIR`` when set, else :func:`shipped_weights_dir` (codec weights)."""
    env = os.environ.get("LIC_WEIGHTS_DIR")
    return Path(env) if env else shipped_weights_dir()


def weights_path(name: str) -> Path:
    """``<weights dir>/<name>.safetensors``."""
    return weights_dir() / f"{name}.safetensors"


def finetuned_path(model_name: str, quantizer: str, folder: Optional[Path] = None) -> Path:
    """A decoder fine-tuned on ``quantizer``'s latents (docs/methods.md §4.5):
    ``<model>-ft-<q>``."""
    base = weights_dir() if folder is None else Path(folder)
    return base / f"{model_name}-ft-{quantizer}.safetensors"


def diffusion_weights_path(model_name: str, folder: Optional[Path] = None) -> Path:
    """The diffusion decoder trained for a learned codec: ``<model>-diffusion.safetensors``
    (in the weights folder, or ``folder``: a frozen codec's, :mod:`lic_core.codecs.frozen`)."""
    base = weights_dir() if folder is None else Path(folder)
    return base / f"{model_name}-diffusion.safetensors"


def gan_weights_path(model_name: str, folder: Optional[Path] = None) -> Path:
    """The GAN decoder of a learned codec (issue 26; g_s retrained with HiFiC's generator
    objective on the codec's frozen latents): ``<model>-gan.safetensors``."""
    base = weights_dir() if folder is None else Path(folder)
    return base / f"{model_name}-gan.safetensors"


def resources_dir() -> Path:
    """Resources shipped with the package (``anchors/``, ``sample/``)."""
    return _ASSETS


def anchors_dir() -> Path:
    """Published reference RD curves: ``<dataset>/<name>.json``."""
    return _ASSETS / "anchors"


def sample_image_path() -> Path:
    """The bundled sample photo the studio opens on first start."""
    return _ASSETS / "sample" / "seeding.png"


def source_checkout() -> Optional[Path]:
    """The repository root when lic_core runs from a source checkout (else None)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "lic_core").is_dir() else None


def shared_dir() -> Optional[Path]:
    """``$LIC_SHARED_DIR``, else ``../shared`` beside a source checkout; None when absent."""
    env = os.environ.get("LIC_SHARED_DIR")
    if env:
        return Path(env) if Path(env).is_dir() else None
    root = source_checkout()
    if root is not None and (root.parent / "shared").is_dir():
        return root.parent / "shared"
    return None


def config_dir() -> Path:
    """The user's LIC Studio configuration folder: ``$LIC_CONFIG_DIR`` (tests), else
    ``$XDG_CONFIG_HOME/lic-studio``, else ``~/.config/lic-studio`` (XDG base directories).
    Added models are recorded here (``models.json``)."""
    env = os.environ.get("LIC_CONFIG_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "lic-studio"
