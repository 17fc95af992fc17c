"""CompressAI's image architectures, re-implemented state-dict compatibly (no ``compressai``
import): a user's own checkpoint opens in the studio and is coded with our entropy coder.

The registry maps CompressAI's zoo names to (module, class); modules are imported on first use,
so one architecture file failing to import (or missing) does not take the others down.

* :func:`architecture_names` — the names the studio offers.
* :func:`build_from_state_dict` — size the model from the tensors as CompressAI's
  ``from_state_dict`` does, then load strictly.
* :func:`guess_architecture` — name the architecture from the keys and shapes alone, with a
  short reason the studio shows ("GDN layers and a mean-scale hyperprior").

Every failure is one :class:`~lic_core.errors.CheckpointError` line saying what was expected and
what was found.  ``elic.py`` takes part in the guess through its ``looks_like(sd)``, which
returns ``None`` or ``(arch, reason)`` (a bare arch name is accepted too).
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional

from ...errors import CheckpointError
from .base import Coded, CompatModel, clean_state_dict, crop, load_compat_state_dict, pad

__all__ = ["ARCHITECTURES", "Coded", "CompatModel", "architecture_label", "architecture_names",
           "build_from_state_dict", "crop", "guess_architecture", "model_class", "pad"]

#: zoo name → (module in this package, class)
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "bmshj2018-factorized": ("google", "FactorizedPrior"),
    "bmshj2018-factorized-relu": ("google", "FactorizedPriorReLU"),
    "bmshj2018-hyperprior": ("google", "ScaleHyperprior"),
    "mbt2018-mean": ("google", "MeanScaleHyperprior"),
    "mbt2018": ("google", "JointAutoregressiveHierarchicalPriors"),
    "cheng2020-anchor": ("waseda", "Cheng2020Anchor"),
    "cheng2020-attn": ("waseda", "Cheng2020Attention"),
    "elic2022-official": ("elic", "Elic2022Official"),
    "elic2022-chandelier": ("elic", "Elic2022Chandelier"),
}


#: the paper each architecture comes from (what `lic models` and the studio say)
PAPERS: dict[str, str] = {
    "bmshj2018-factorized": "Ballé et al. 2018, factorized prior (GDN)",
    "bmshj2018-factorized-relu": "Ballé et al. 2018, factorized prior (ReLU)",
    "bmshj2018-hyperprior": "Ballé et al. 2018, scale hyperprior",
    "mbt2018-mean": "Minnen et al. 2018, mean-scale hyperprior",
    "mbt2018": "Minnen et al. 2018, joint autoregressive and hierarchical priors",
    "cheng2020-anchor": "Cheng et al. 2020, residual blocks + autoregressive context",
    "cheng2020-attn": "Cheng et al. 2020, with attention modules",
    "elic2022-official": "He et al. 2022, ELIC (uneven groups, checkerboard)",
    "elic2022-chandelier": "He et al. 2022, ELIC (Chandelier's variant)",
}


def architecture_label(arch: str) -> str:
    """The paper of ``arch`` in a few words."""
    return PAPERS.get(arch, arch)


def architecture_names() -> list[str]:
    """The registry's architecture names, in the registry's order."""
    return list(ARCHITECTURES)


def _module(name: str) -> Optional[ModuleType]:
    """This package's module ``name``, or None when it does not exist."""
    full = f"{__name__}.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name != full:  # a real import error inside the module: let it show
            raise
        return None


def model_class(arch: str) -> type[CompatModel]:
    """The class of ``arch``; an unknown or unavailable name is a :class:`CheckpointError`."""
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown architecture '{arch}' (expected one of: "
                              f"{', '.join(ARCHITECTURES)})")
    module_name, class_name = ARCHITECTURES[arch]
    module = _module(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    if cls is None:
        raise CheckpointError(f"architecture '{arch}' is not available in this installation "
                              f"(expected {class_name} in {__name__}.{module_name})")
    return cls


def build_from_state_dict(arch: str, state_dict: dict) -> CompatModel:
    """The ``arch`` model holding ``state_dict`` (CompressAI keys, any of the forms
    :func:`~.base.clean_state_dict` accepts), in eval mode.

    A state dict of another architecture fails with the mismatch and, where the keys say what
    it is, the architecture it looks like — the usual mistake is picking the wrong name."""
    cls = model_class(arch)
    sd = clean_state_dict(state_dict)
    try:
        return load_compat_state_dict(cls(**cls.sizes_from_state_dict(sd)), sd)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}{_hint(arch, sd)}") from None


def _hint(arch: str, sd: dict) -> str:
    try:
        guess, reason = guess_architecture(sd)
    except CheckpointError:
        return ""
    return f"; it looks like a {guess} checkpoint ({reason})" if guess != arch else ""


def guess_architecture(state_dict: dict) -> tuple[str, str]:
    """(architecture, short reason) read from the keys and shapes of ``state_dict``.

    What tells the zoo's architectures apart (their constructors are otherwise alike):
    residual blocks (``g_a.0.conv1``) are Cheng et al.'s, with attention blocks
    (``conv_a``) in the attn variant; a ``context_prediction`` is Minnen's mbt2018; h_s
    ending in 2M channels (mean and scale) is mbt2018-mean, in M (scales only) Ballé's scale
    hyperprior; no hyperprior at all is the factorized prior, with GDN (``g_a.1.beta``) or
    with ReLUs."""
    sd = clean_state_dict(state_dict)
    elic = _elic_guess(sd)
    if elic is not None:
        return elic
    if "g_a.0.conv1.weight" in sd:
        if any(".conv_a." in k for k in sd if k.startswith(("g_a.", "g_s."))):
            return "cheng2020-attn", ("residual blocks with attention modules and a masked "
                                      "5×5 context model")
        return "cheng2020-anchor", ("residual blocks (no attention modules) and a masked 5×5 "
                                    "context model")
    if "g_a.0.weight" in sd and "g_a.6.weight" in sd:
        act = "GDN layers" if "g_a.1.beta" in sd else "ReLU layers"
        M = int(sd["g_a.6.weight"].shape[0])
        if "context_prediction.weight" in sd:
            return "mbt2018", f"{act}, a mean-scale hyperprior and a masked 5×5 context model"
        out = _last_conv_width(sd, "h_s.")
        if out == 2 * M:
            return "mbt2018-mean", f"{act} and a mean-scale hyperprior (h_s predicts 2×{M} " \
                                   "channels)"
        if out == M:
            return "bmshj2018-hyperprior", f"{act} and a scale hyperprior (h_s predicts {M} " \
                                           "scales)"
        if out is None and not any(k.startswith("h_a.") for k in sd):
            if "g_a.1.beta" in sd:
                return "bmshj2018-factorized", "GDN layers and a factorized prior (no hyperprior)"
            return "bmshj2018-factorized-relu", ("ReLU layers (no GDN parameters) and a "
                                                 "factorized prior (no hyperprior)")
    some = ", ".join(list(sd)[:3]) or "none"
    raise CheckpointError(
        "not a CompressAI image model this tool knows: looked for g_a.0.weight/g_a.6.weight "
        "(bmshj2018, mbt2018), g_a.0.conv1.weight (cheng2020), ELIC's latent codec keys; "
        f"found {len(sd)} tensors ({some}, …)")


def _last_conv_width(sd: dict, prefix: str) -> Optional[int]:
    """Output channels of the last 4-d weight under ``prefix`` (by layer index)."""
    best = None
    for k, v in sd.items():
        if k.startswith(prefix) and k.endswith(".weight") and getattr(v, "dim", lambda: 0)() == 4:
            head = k[len(prefix):].split(".", 1)[0]
            if head.isdigit() and (best is None or int(head) > best[0]):
                best = (int(head), int(v.shape[0]))
    return best[1] if best else None


def _elic_guess(sd: dict) -> Optional[tuple[str, str]]:
    module = _module("elic")
    looks_like = getattr(module, "looks_like", None) if module is not None else None
    if looks_like is None:
        return None
    found = looks_like(sd)
    if not found:
        return None
    if isinstance(found, str):
        return found, "ELIC's latent codec (uneven channel groups with a checkerboard context)"
    arch, reason = found
    return str(arch), str(reason)
