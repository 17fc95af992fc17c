"""What every CompressAI-compatible architecture shares: loading a user's state dict, the coding
entry points the codec calls, and CompressAI's padding.

A model here is a plain ``nn.Module`` whose parameter names are CompressAI's, with three entry
points besides the networks:

* ``code(coder, x, padded_hw)`` — the one coding procedure for both directions: ``x`` given and
  a :class:`~lic_core.entropy_coder.tables.TableEncoder` encodes; ``x`` None and a
  :class:`~lic_core.entropy_coder.tables.TableDecoder` decodes.  It returns a :class:`Coded`
  (ŷ, ẑ, μ, σ, the model's own likelihoods of what was coded).
* ``synthesize(y_hat)`` — the picture, ``g_s(ŷ)`` clamped to [0, 1] as CompressAI decodes it.
* ``forward(x)`` — CompressAI's forward (eval mode: rounding around the medians / means).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import CheckpointError
from .entropy import CODER_BUFFERS, GaussianConditional, default_scale_table, remap_keys

#: CompressAI's ``eval_model`` pads to a multiple of 64 (centred, zeros)
PAD_MULTIPLE = 64


@dataclass
class Coded:
    """What a model coded (batch dimension kept).  ``means``/``scales`` are None where y is not
    Gaussian-conditional (the factorized models); ``likelihoods`` are the model's own p(ŷ), p(ẑ)
    of the coded values, the source of the bits heatmap."""

    y_hat: torch.Tensor
    z_hat: Optional[torch.Tensor] = None
    means: Optional[torch.Tensor] = None
    scales: Optional[torch.Tensor] = None
    likelihoods: dict = field(default_factory=dict)
    #: channel groups of y for display (ELIC's uneven groups; one group otherwise)
    groups: list = field(default_factory=list)


class CompatModel(nn.Module):
    """Base of the CompressAI-compatible architectures (see the module docstring)."""

    #: registry name, e.g. ``"mbt2018-mean"``
    arch: str = ""
    #: y coded under a Gaussian conditional (means/scales shown by the studio)
    gaussian: bool = True

    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        raise NotImplementedError

    def synthesize(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.g_s(y_hat).clamp_(0, 1)

    def invalidate_tables(self) -> None:
        """Forget cached coding tables (after the parameters changed)."""
        for m in self.modules():
            if hasattr(m, "invalidate") and m is not self:
                m.invalidate()


def centred_padding(h: int, w: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding of CompressAI's ``eval_model``."""
    H = (h + multiple - 1) // multiple * multiple
    W = (w + multiple - 1) // multiple * multiple
    left, top = (W - w) // 2, (H - h) // 2
    return left, W - w - left, top, H - h - top


def pad(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, tuple]:
    p = centred_padding(x.shape[-2], x.shape[-1], multiple)
    return F.pad(x, p, mode="constant", value=0), p


def crop(x: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = padding
    return x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]


def clean_state_dict(state_dict: dict) -> dict:
    """A CompressAI state dict as our modules read it: ``module.`` prefixes (DataParallel)
    stripped, old names remapped (EntropyBottleneck's, and ``downsample`` → ``skip`` of the
    residual blocks, as CompressAI's zoo loader does), the ``update()`` buffers dropped."""
    sd = {}
    for k, v in state_dict.items():
        if k.startswith("module."):
            k = k[len("module."):]
        k = k.replace(".downsample.", ".skip.")
        if k.rsplit(".", 1)[-1] in CODER_BUFFERS:
            continue
        # zoo files of the Cheng 2020 models predate the rename 'downsample' -> 'skip'
        k = k.replace(".downsample.", ".skip.")
        sd[k] = v
    return remap_keys(sd)


def load_compat_state_dict(model: CompatModel, state_dict: dict) -> CompatModel:
    """Load a (cleaned) CompressAI state dict into ``model`` strictly; a mismatch is one
    :class:`CheckpointError` line that says what was expected and what was found."""
    sd = dict(state_dict)
    for name, m in model.named_modules():
        if isinstance(m, GaussianConditional):
            key = f"{name}.scale_table" if name else "scale_table"
            table = sd.pop(key, None)
            # its size is the checkpoint's; before update() it is empty and CompressAI's default
            # applies, so the two saves of one model load (and hash) the same
            m.scale_table = (table.detach().float().clone() if table is not None and table.numel()
                             else default_scale_table())
    expected = model.state_dict()
    expected.pop("scale_table", None)
    for name, m in model.named_modules():
        if isinstance(m, GaussianConditional):
            expected.pop(f"{name}.scale_table" if name else "scale_table", None)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} of other shape (e.g. {k}: expected "
                         f"{tuple(expected[k].shape)}, found {tuple(sd[k].shape)})")
        raise CheckpointError(f"not a {model.arch} checkpoint: its tensors do not fit the "
                              f"architecture ({'; '.join(parts)})")
    with torch.no_grad():
        model.load_state_dict({k: sd[k].float() if sd[k].is_floating_point() else sd[k]
                               for k in expected}, strict=False)
    model.invalidate_tables()
    return model.eval()
