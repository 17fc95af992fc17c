"""The blur-dissipated diffusion decoder (docs/methods.md §7): weights, float sampling.

``.lic`` files decode through its exact version, :mod:`lic_core.decoder.diffusion.exact` (the same
picture on every machine, format v2); this float sampler serves training previews and timing.
Usage of the float path::

    y_hat = ...                                        # B×M×h×w, un-gained ŷ (what g_s eats)
    feats = model.g_s.forward_features(y_hat)          # (x̂_mse, [H/2, H/4, H/8] features)
    dec = DiffusionDecoder.load(weights_path("lic-diffusion"))  # lic_core.paths
    x = dec.decode(y_hat, feats, steps=header.diffusion_steps, seed=header.diffusion_seed)
    # x: B×3×(16h)×(16w) float32 in [0, 1] on the CPU; the codec crops to the image size.

Context assembly (order = ``DiffusionConfig.cond_channels``): ``[2·x̂_mse − 1`` (if
``use_x_mse``), the g_s features fine-to-coarse, ``ŷ`` (if ``use_y_hat``)``]``. The texture
latents are deterministic functions of ŷ, so they cost no bits (docs/methods.md §7.3).
"""
from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ...errors import CodecUnavailableError, LicError, ModelNotFoundError
from ...paths import weights_path
from .blurring import sample
from .lite import LiteUNet
from .unet import ARCH_FIELDS, CondUNet, DiffusionConfig, count_parameters

__all__ = ["DiffusionDecoder", "DecodeCallback", "config_for_codec", "decode_latent",
           "build_network", "resolve_device", "FORMAT_TAG", "DEFAULT_NAME"]

FORMAT_TAG = "lic-diffusion-v1"
DEFAULT_NAME = "lic-diffusion"
#: ``callback(step_index, total_steps, x0_hat)`` with x0_hat a B×3×H×W CPU tensor in [0, 1].
#: It may raise :class:`lic_core.errors.CancelledError` to stop the decode.
DecodeCallback = Callable[[int, int, Tensor], None]
Features = Union[Sequence[Tensor], tuple]


def resolve_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """``None``/"auto" → CUDA when available, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CodecUnavailableError("the diffusion decoder was asked to run on CUDA, "
                                    "but no CUDA device is available")
    return dev


_CUDNN_LOCK = threading.Lock()
_CUDNN_STATE: dict = {"depth": 0, "saved": None}


@contextlib.contextmanager
def _deterministic_kernels(device: torch.device) -> Iterator[None]:
    """cuDNN autotuning may pick different conv algorithms run to run; pin them during a float
    decode.  The flags are process-wide: they are set by the first of any overlapping decodes
    (studio worker threads) and restored by the last, under a lock.  (Files decode through the
    exact path, :mod:`.exact`, which touches no global flag.)"""
    if device.type != "cuda":
        yield
        return
    with _CUDNN_LOCK:
        if _CUDNN_STATE["depth"] == 0:
            _CUDNN_STATE["saved"] = (torch.backends.cudnn.deterministic,
                                     torch.backends.cudnn.benchmark)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        _CUDNN_STATE["depth"] += 1
    try:
        yield
    finally:
        with _CUDNN_LOCK:
            _CUDNN_STATE["depth"] -= 1
            if _CUDNN_STATE["depth"] == 0:
                (torch.backends.cudnn.deterministic,
                 torch.backends.cudnn.benchmark) = _CUDNN_STATE["saved"]


def _split_features(features: Features) -> tuple[Optional[Tensor], list[Tensor]]:
    """Accept ``g_s.forward_features`` output as ``(x̂, [feats])`` or just ``[feats]``."""
    if (isinstance(features, tuple) and len(features) == 2 and isinstance(features[0], Tensor)
            and isinstance(features[1], (list, tuple))):
        return features[0], list(features[1])
    return None, list(features)


def build_network(config: DiffusionConfig) -> nn.Module:
    """The network a config names: :class:`~.lite.LiteUNet` ("lite") or :class:`CondUNet`."""
    return LiteUNet(config) if config.arch == "lite" else CondUNet(config)


class DiffusionDecoder(nn.Module):
    """ŷ (+ texture latents) → image by blurring diffusion (docs/methods.md §7.2–7.3)."""

    def __init__(self, config: Optional[DiffusionConfig] = None) -> None:
        super().__init__()
        self.config = config or DiffusionConfig()
        self.unet = build_network(self.config)
        self.meta: dict[str, Any] = {}

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def for_codec(cls, codec_model: nn.Module, **overrides: Any) -> "DiffusionDecoder":
        """A fresh decoder whose context channels match ``codec_model`` (a LicModel)."""
        return cls(config_for_codec(codec_model, **overrides))

    def num_parameters(self) -> int:
        return count_parameters(self)

    # -- contexts -------------------------------------------------------------------------------
    def contexts(self, y_hat: Tensor, features: Features) -> list[Tensor]:
        """The context list fed to the U-Net adapter (see module docstring)."""
        x_mse, feats = _split_features(features)
        ctx: list[Tensor] = []
        if self.config.use_x_mse:
            if x_mse is None:
                raise ValueError("this diffusion decoder needs x̂_mse: pass the whole "
                                 "g_s.forward_features(y_hat) tuple")
            ctx.append(x_mse.clamp(0.0, 1.0) * 2.0 - 1.0)
        ctx.extend(feats)
        if self.config.use_y_hat:
            ctx.append(y_hat)
        if len(ctx) != len(self.config.cond_channels):
            raise ValueError(f"got {len(ctx)} context tensors, the decoder expects "
                             f"{len(self.config.cond_channels)}")
        for c, want in zip(ctx, self.config.cond_channels):
            if c.shape[1] != want:
                raise ValueError(f"context has {c.shape[1]} channels, expected {want}")
        return ctx

    # -- decoding -------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, y_hat: Tensor, features: Features, steps: Optional[int] = None,
               seed: int = 0, callback: Optional[DecodeCallback] = None,
               device: Optional[Union[str, torch.device]] = None, bf16: bool = False) -> Tensor:
        """Sample x ~ p(x | ŷ): ``B×3×16h×16w`` float32 in [0, 1], on the CPU.

        ``steps`` defaults to ``config.steps``; ``seed`` (stored in the .lic header) fixes all the
        sampler's noise, so a (seed, device) pair decodes bit-identically. ``device`` None → GPU
        when available, else CPU. ``callback(i, total, x0_hat)`` is called before each step.
        ``bf16=True`` runs the U-Net (only) under bf16 autocast on CUDA; the DCT posterior steps
        stay in float32 (bf16 DCTs would cost ~3 significant digits per step).
        """
        dev = resolve_device(device)
        steps = int(steps or self.config.steps)
        if steps < 1:
            raise LicError(f"diffusion steps must be >= 1, got {steps}")
        self.to(dev).eval()
        ctx = [c.to(dev, torch.float32) for c in self.contexts(y_hat, features)]
        b = y_hat.shape[0]
        h, w = 16 * y_hat.shape[-2], 16 * y_hat.shape[-1]
        x_mse = ctx[0] if self.config.use_x_mse else None
        with _deterministic_kernels(dev):
            adapted = self.unet.adapt(ctx, (h, w))

            use_bf16 = bf16 and dev.type == "cuda"

            def model_fn(x: Tensor, t: Tensor, cond: Any) -> Tensor:
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                    return self.unet(x, t, adapted=cond).float()

            cb = None
            if callback is not None:
                def cb(i: int, x0: Tensor) -> None:
                    callback(i, steps, ((x0 + 1.0) * 0.5).clamp(0.0, 1.0).float().cpu())

            x = sample(model_fn, adapted, (b, 3, h, w), steps, int(seed), self.config.schedule,
                       device=dev, callback=cb, x_init_mean=x_mse,
                       inv_alpha_max=self.config.inv_alpha_max, pred=self.config.param,
                       clip_x0=self.config.clip_x0)
        return ((x + 1.0) * 0.5).clamp(0.0, 1.0).float().cpu()

    @torch.no_grad()
    def variance_map(self, y_hat: Tensor, features: Features, steps: Optional[int] = None,
                     seeds: Sequence[int] = (0, 1, 2, 3),
                     device: Optional[Union[str, torch.device]] = None) -> Tensor:
        """Per-pixel variance over decodes with several seeds (mean over RGB): ``H×W`` float32.

        Shows where the decoder "invents" detail (high variance) vs. where ŷ pins it down.
        Uses the first image of the batch.
        """
        if len(seeds) < 2:
            raise LicError("a variance map needs at least two seeds")
        y1 = y_hat[:1]
        x_mse, feats = _split_features(features)
        f1 = ((x_mse[:1], [f[:1] for f in feats]) if x_mse is not None else [f[:1] for f in feats])
        xs = torch.stack([self.decode(y1, f1, steps, s, device=device)[0] for s in seeds])
        return xs.var(dim=0, unbiased=True).mean(dim=0)

    # -- weights --------------------------------------------------------------------------------
    def save(self, path: Union[str, Path], card: Optional[dict] = None,
             extra_meta: Optional[dict] = None, dtype: torch.dtype = torch.float32) -> None:
        """Write safetensors (float32, or ``dtype``: fp16 for shipped weights) with
        ``{"format", "config", "card"}`` JSON metadata."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT_TAG, "config": json.dumps(self.config.to_dict(), sort_keys=True),
                "card": json.dumps(card or {}, sort_keys=True)}
        meta.update({k: str(v) for k, v in (extra_meta or {}).items()})
        state = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu()
                 .contiguous() for k, v in self.state_dict().items()}
        tmp = path.with_name(path.name + ".tmp")
        save_file(state, str(tmp), metadata=meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Union[str, Path],
             device: Optional[Union[str, torch.device]] = None) -> "DiffusionDecoder":
        """Load a decoder saved by :meth:`save` (raises ModelNotFoundError when missing)."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(f"no diffusion decoder weights at {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
        except Exception:  # safetensors raises its own error types for torn/foreign files
            raise ModelNotFoundError(f"{path.name} is not a readable safetensors file") from None
        if meta.get("format") != FORMAT_TAG:
            raise ModelNotFoundError(f"{path.name} is not a LIC diffusion decoder file")
        dec = cls(DiffusionConfig.from_dict(json.loads(meta["config"])))
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        dec.load_state_dict(state, strict=True)
        dec.meta = meta
        if device is not None:
            dec.to(resolve_device(device))
        return dec.eval()

    @classmethod
    def load_default(cls, name: str = DEFAULT_NAME,
                     device: Optional[Union[str, torch.device]] = None) -> "DiffusionDecoder":
        """``<weights dir>/<name>.safetensors`` (:mod:`lic_core.paths`); ModelNotFoundError (one
        line) when it is not there."""
        path = weights_path(name)
        if not path.is_file():
            raise ModelNotFoundError(f"no trained diffusion decoder '{name}' ({path}); train it "
                                     "with lic train --stage diffusion")
        return cls.load(path, device=device)

    def weights_id(self) -> bytes:
        """8-byte identity of the weights (same hash as the codec's, lic_core.weights)."""
        from ...weights import weights_hash

        return weights_hash(self.state_dict())


def config_for_codec(codec_model: nn.Module, **overrides: Any) -> DiffusionConfig:
    """DiffusionConfig whose contexts match a LicModel: probe g_s with a dummy ŷ."""
    cfg = getattr(codec_model, "config", None)
    m = int(cfg.M)
    g_s = codec_model.g_s
    p = next(codec_model.parameters())
    with torch.no_grad():
        y = torch.zeros(1, m, 4, 4, device=p.device, dtype=p.dtype)
        x_mse, feats = _split_features(g_s.forward_features(y))
    hh = 4 * 16
    channels = ([3] if x_mse is not None else []) + [f.shape[1] for f in feats] + [m]
    scales = ([1] if x_mse is not None else []) + [hh // f.shape[-2] for f in feats] + [16]
    base = dict(cond_channels=tuple(channels), cond_scales=tuple(scales),
                use_x_mse=x_mse is not None, use_y_hat=True, codec=str(getattr(cfg, "name", "")))
    base.update(overrides)
    if "dim" not in overrides and getattr(cfg, "name", "").endswith("-tiny"):
        # a tiny codec gets a tiny decoder: the full-resolution one unless "lite" is asked for
        preset = (DiffusionConfig.tiny_lite() if overrides.get("arch") == "lite"
                  else DiffusionConfig.tiny()).to_dict()
        for k in ARCH_FIELDS:
            base.setdefault(k, preset[k])
    return DiffusionConfig(**base)


def decode_latent(decoder: DiffusionDecoder, g_s: nn.Module, y_hat_gained: Tensor, gains: dict,
                  steps: int, seed: int,
                  callback: Optional[DecodeCallback] = None) -> Tensor:
    """Float diffusion decode of a latent: x ~ p(x | ŷ) conditioned on ŷ and g_s's features
    (docs/methods.md §7.3); ``y_hat_gained`` is ŷ⊙G, un-gained here with G'.  A reference for
    training and benchmarks — the codec decodes files with :mod:`.exact`."""
    y_hat = y_hat_gained * gains["G_inv"]
    feats = g_s.forward_features(y_hat)
    return decoder.decode(y_hat, feats, steps=steps, seed=seed, callback=callback, device=None)
