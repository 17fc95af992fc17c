"""Orthonormal 2-D DCT-II in matrix form (docs/methods.md §7.2, §7.5).

The blurring-diffusion process is diagonal in the DCT basis. We use the real orthonormal DCT-II
``C[k, n] = sqrt(2/N) · c_k · cos(π (2n + 1) k / 2N)`` with ``c_0 = 1/√2`` (docs/methods.md §7.5:
the LGEM code's ``fft2(...).real`` is *not* a DCT). ``dct2`` computes ``u = C_H x C_Wᵀ`` over the
last two dims; ``idct2`` is its exact inverse ``x = C_Hᵀ u C_W`` because C is orthogonal.

Matrix form (not FFT) keeps the transform exact for any size, odd ones included, and is a plain
matmul on every device. Matrices are built in float64 and cached per (n, dtype, device).
"""
from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

__all__ = ["dct_matrix", "dct2", "idct2"]


@functools.lru_cache(maxsize=64)
def _dct_matrix_cached(n: int, dtype: torch.dtype, device: str) -> Tensor:
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    c = torch.cos(math.pi * (2.0 * i + 1.0) * k / (2.0 * n)) * math.sqrt(2.0 / n)
    c[0] *= 1.0 / math.sqrt(2.0)  # c_0 = 1/√2 makes the rows orthonormal
    return c.to(dtype=dtype, device=device).contiguous()


def dct_matrix(n: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> Tensor:
    """The n×n orthonormal DCT-II matrix C (rows = basis vectors; ``C Cᵀ = I``). Cached."""
    if n < 1:
        raise ValueError(f"DCT size must be >= 1, got {n}")
    dev = str(torch.device(device) if device is not None else torch.device("cpu"))
    return _dct_matrix_cached(int(n), dtype, dev)


def dct2(x: Tensor) -> Tensor:
    """Orthonormal 2-D DCT-II over the last two dims (``u = Vᵀx``, docs/methods.md §7.2)."""
    ch = dct_matrix(x.shape[-2], x.dtype, x.device)
    cw = dct_matrix(x.shape[-1], x.dtype, x.device)
    return ch @ x @ cw.transpose(0, 1)


def idct2(u: Tensor) -> Tensor:
    """Inverse of :func:`dct2` (``x = V u``)."""
    ch = dct_matrix(u.shape[-2], u.dtype, u.device)
    cw = dct_matrix(u.shape[-1], u.dtype, u.device)
    return ch.transpose(0, 1) @ u @ cw
