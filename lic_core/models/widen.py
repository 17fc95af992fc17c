"""A wider codec built from a trained one that computes the same pictures
(:mod:`lic_core.transform.widen` says how and why)."""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
from torch import nn

from ..transform.widen import widen_state


def widen_model(model: nn.Module, N: Optional[int] = None, seed: int = 0,
                analysis_N: Optional[int] = None) -> nn.Module:
    """A model of ``model``'s configuration with transforms of width ``N`` (g_a and g_s) and,
    when given, an analysis transform of width ``analysis_N`` (g_a alone: a wider encoder for
    the same decoder), that computes the same pictures (module docstring); the new units'
    random weights come from ``seed``. Without ``analysis_N`` (or with 0) the encoder is as wide
    as the wider of ``N`` and its present width (a wider encoder stays wider). Widths below the
    model's own are refused. The configuration (name included) is otherwise the model's."""
    cfg = model.config
    N = int(cfg.N if N is None else N)
    a_N = int(analysis_N) if analysis_N else max(N, cfg.g_a_width)
    if N < cfg.N or a_N < cfg.g_a_width:
        raise ValueError(f"N = {N}, analysis N = {a_N} is narrower than the model's "
                         f"{cfg.N}, {cfg.g_a_width}")
    new_cfg = dataclasses.replace(cfg, N=N, analysis_N=a_N if a_N != N else 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wide = type(model)(new_cfg)
    wide.load_state_dict(widen_state(model.state_dict(), wide), strict=True)
    return wide
