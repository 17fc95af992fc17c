"""The frozen coding-scale table on the exact path (docs/methods.md §6.4; docs/bitstream.md).

The 64 scales are exact float64 literals (:data:`lic_core.entropy_model.gaussian.SCALE_TABLE_64`,
which ``scale_table()`` returns everywhere): numpy's ``exp`` differs in its last bits between
machines, so the table is never recomputed.  σ·G → index is a comparison against them.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..entropy_model.gaussian import SCALE_BOUND, SCALE_TABLE_64

LEVELS = len(SCALE_TABLE_64)


def scale_table_tensor(device="cpu") -> torch.Tensor:
    return torch.tensor(SCALE_TABLE_64, dtype=torch.float64, device=device)


def scale_index(sigma_gained: torch.Tensor) -> torch.Tensor:
    """Index of the smallest table entry ≥ σ·G (comparisons only), clamped to 63, int64.

    The exact path's index, which files are coded with; the float path's
    :func:`lic_core.entropy_model.gaussian.scale_index` (float32 table) is a separate function.
    """
    if sigma_gained.dtype != torch.float64:
        raise TypeError("scale_index of the exact path needs float64 σ·G")
    table = scale_table_tensor(sigma_gained.device)
    idx = torch.searchsorted(table, sigma_gained.contiguous(), right=False)
    return idx.clamp_max(LEVELS - 1)


def table_std(index: torch.Tensor) -> torch.Tensor:
    """The coding standard deviation (float64) of each index, on index's device — the one home
    of index → std (the scalar quantizers import it)."""
    return scale_table_tensor(index.device)[index]


def sigma_index(sigma: torch.Tensor,
                gain: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale index, σ·G): σ bounded below at 0.11, one multiplication, a comparison."""
    sigma = torch.clamp_min(sigma, SCALE_BOUND)
    sg = sigma if gain is None else sigma * gain
    return scale_index(sg), sg
