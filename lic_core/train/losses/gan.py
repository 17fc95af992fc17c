"""Generic GAN helpers: non-saturating losses and gradient switches (docs/methods.md §8.2).

Losses take raw logits (before the sigmoid) and use ``softplus`` forms, which are the numerically
stable spellings of the log-sigmoid terms:

* generator (non-saturating):  ``−log D(x̂) = softplus(−ℓ(x̂))``;
* discriminator:               ``−log(1 − D(x̂)) − log D(x) = softplus(ℓ(x̂)) + softplus(−ℓ(x))``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def generator_loss_ns(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``E[−log D(x̂)]`` (mean over patches and batch)."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss_ns(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``E[−log D(x)] + E[−log(1 − D(x̂))]`` (mean over patches and batch)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Temporarily stop gradients into ``module``'s parameters (the D side of a G step)."""
    prev = [p.requires_grad for p in module.parameters()]
    set_requires_grad(module, False)
    try:
        yield module
    finally:
        for p, r in zip(module.parameters(), prev):
            p.requires_grad_(r)
