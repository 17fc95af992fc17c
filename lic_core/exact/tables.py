"""The frozen coding-scale table of the exact path (METHODS §6.4; docs/determinism.md).

``lic_core.entropy_model.gaussian.scale_table()`` computes the 64 scales with
``np.exp(np.linspace(log 0.11, log 256, 64))``; the last bits of that depend on numpy's exp
(SIMD/SVML vs scalar libm), i.e. on the machine.  The coder's standard deviations and the
σ → index boundaries must be the same bits everywhere, so the values are frozen here as exact
float64 literals (they are today's values on the reference machine; tests check they agree
with ``scale_table()`` to 1e-15 relative).
"""
from __future__ import annotations

import torch

SCALE_TABLE_64: tuple[float, ...] = (
    0.11000000000000001, 0.12440410337871262, 0.14069437215874012, 0.1591177928985361,
    0.17995369415583692, 0.20351798155585427, 0.23016792742637654, 0.26030758761831785,
    0.2943939276393863, 0.33294375098286777, 0.37654153469608204, 0.4258482909882771,
    0.48161158923412467, 0.5446768903224373, 0.6160003651969836, 0.6966633919390023,
    0.787888951190402, 0.891060168498511, 1.0077412847140166, 1.1397013723869016,
    1.2889411577389158, 1.4577233548766322, 1.64860697216033, 1.8644861108681825,
    2.108633844405629, 2.384751843339001, 2.697026498648367, 3.0501923941179885,
    3.449604090207429, 3.901317307761771, 4.412180742435963, 4.989939901886986,
    5.6433545400719245, 6.382331469143953, 7.218074762587224, 8.163255626910708,
    9.232204517427787, 10.441128410904577, 11.808356529278063, 13.354618240009122,
    15.103357346484879, 17.081087533615843, 19.317794357752575, 21.847389875732397,
    24.708226805960464, 27.943680017030772, 31.602804160185094, 35.74107741637158,
    40.42124263429875, 45.71425861248477, 51.70037594826147, 58.47035376532569,
    66.12683576737696, 74.78590648101743, 84.57885128304754, 95.65414689699084,
    108.17971253796196, 122.3454558368367, 138.36615214401417, 156.48470086762356,
    176.9758082174797, 200.15015219107795, 226.3590929494899, 255.99999999999994,
)
LEVELS = len(SCALE_TABLE_64)


def scale_table_tensor(device="cpu") -> torch.Tensor:
    return torch.tensor(SCALE_TABLE_64, dtype=torch.float64, device=device)


def scale_index(sigma_gained: torch.Tensor) -> torch.Tensor:
    """Index of the smallest table entry ≥ σ·G (comparisons only), clamped to 63, int64."""
    if sigma_gained.dtype != torch.float64:
        raise TypeError("scale_index of the exact path needs float64 σ·G")
    table = scale_table_tensor(sigma_gained.device)
    idx = torch.searchsorted(table, sigma_gained.contiguous(), right=False)
    return idx.clamp_max(LEVELS - 1)


def table_std(index: torch.Tensor) -> torch.Tensor:
    """The coding standard deviation (float64) of each index."""
    return scale_table_tensor(index.device)[index]
