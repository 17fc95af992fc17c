""""Same file" (issue 26, item 2): one bitstream of our learned codec, three pictures.

The open image is encoded **once** with our codec (at a slider value, or searched to a target
bpp with the cheap MSE decoder — the bits do not depend on the decoder); the very same bytes are
then decoded with each of the codec's decoders — ``mse`` (g_s), ``gan`` (g_s retrained with
HiFiC's objective, docs/gan.md) and ``diffusion`` (docs/diffusion.md) — exactly as
``lic decompress --decoder …`` would (:meth:`lic_core.codecs.learned.LearnedCodec.decode`).
Each picture gets PSNR, MS-SSIM and LPIPS against the original; the bpp is the file's, so it is
the same for all three.

A decoder this install does not have is not decoded: :func:`decoder_status` says which one is
missing and why (file missing, or trained on other codec weights) and the campaign stage that
makes it. :func:`difference_map` is the per-pixel difference of any two pictures (or one and the
original). :func:`run_same_file` runs in a worker thread; the request's token cancels it through
the codec's progress callbacks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from lic_core.codecs import EncodeParams
from lic_core.paths import diffusion_weights_path, gan_weights_path

from . import services
from .generative_demo import METRICS, DemoSide, ProgressSink, _phase, _progress
from .session import CancelToken

#: the decoders of one file, in the order the window shows them
DECODERS = ("mse", "gan", "diffusion")
DECODER_LABELS = {"mse": "MSE decoder", "gan": "GAN decoder", "diffusion": "diffusion decoder",
                  "original": "original"}
#: the share of the progress bar each step takes (the diffusion decode is the long one)
_SPANS = {"encode": 0.25, "mse": 0.08, "gan": 0.1, "diffusion": 0.45}
METRIC_SPAN = 0.05


def decoder_status(codec: Any) -> dict[str, str]:
    """``{decoder: why}`` for :data:`DECODERS`: ``""`` when ``codec`` can decode with it here,
    else one line naming the missing (or unusable) weights file and the campaign stage that
    makes it. Asked again before every run: a campaign install is picked up."""
    name = str(getattr(codec, "name", "?"))
    try:
        have = tuple(getattr(codec, "decoders", ("mse",)))
    except Exception:  # noqa: BLE001 - a broken decoder lookup: say so, do not crash the window
        have = ("mse",)
    out = {}
    for dec in DECODERS:
        if dec in have:
            out[dec] = ""
        elif dec == "gan":
            stale = str(getattr(codec, "stale_gan", "") or "")
            if stale:
                out[dec] = (f"{stale} was trained on other {name} weights, so {name} does not use "
                            "it — retrain it: `tools/campaign.sh --stage gan start`, later "
                            "`… --stage gan export --install`")
            else:
                out[dec] = (f"{gan_weights_path(name).name} is not installed — the GAN decoder is "
                            "not trained yet: `tools/campaign.sh --stage gan start`, later "
                            "`… --stage gan export --install` (installed when its LPIPS beats "
                            "the MSE decoder's)")
        elif dec == "diffusion":
            out[dec] = (f"{diffusion_weights_path(name).name} is missing: `tools/campaign.sh "
                        "--stage diffusion start`, later `… --stage diffusion export --install`")
        else:
            out[dec] = f"{name} has no '{dec}' decoder"
    return out


@dataclass
class SameFileRequest:
    image: np.ndarray
    codec: Any  # our LearnedCodec
    rate: Optional[float] = 0.5  # slider u; None: search target_bpp
    target_bpp: Optional[float] = None
    seed: int = 0
    steps: Optional[int] = None  # diffusion steps stored in the file (None: the decoder's)
    token: CancelToken = field(default_factory=CancelToken)


@dataclass
class SameFileResult:
    data: bytes  # the one file
    bpp: float
    rate: float
    quantizer: str
    steps: int
    seed: int
    pictures: dict[str, DemoSide]  # decoder → its picture of ``data`` (DECODERS order)
    missing: dict[str, str]  # decoder → why it was not decoded
    target_bpp: Optional[float] = None
    elapsed: float = 0.0

    def picture(self, key: str, original: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """The picture of decoder ``key``; ``"original"`` gives ``original``."""
        if key == "original":
            return original
        side = self.pictures.get(key)
        return None if side is None else side.reconstruction


def _decode_steps(codec: Any, params: EncodeParams) -> int:
    try:
        return int(codec.diffusion_steps(params))
    except Exception:  # noqa: BLE001 - no diffusion decoder here: the file stores the default
        from lic_core.codecs.base import DEFAULT_DIFFUSION_STEPS

        return int(params.diffusion_steps or DEFAULT_DIFFUSION_STEPS)


def run_same_file(req: SameFileRequest, sink: Optional[ProgressSink] = None) -> SameFileResult:
    """Encode ``req.image`` once, decode the same bytes with every decoder this install has
    (module docstring). Worker thread."""
    t0 = time.perf_counter()
    progress = _progress(req.token, sink)
    codec = req.codec
    status = decoder_status(codec)
    todo = [d for d in DECODERS if not status[d]]
    template = EncodeParams(rate=0.5 if req.rate is None else float(req.rate), decoder="mse",
                            diffusion_steps=int(req.steps or 0), seed=int(req.seed))
    steps = _decode_steps(codec, template)
    template = EncodeParams(rate=template.rate, decoder="mse", diffusion_steps=steps,
                            seed=int(req.seed))
    progress(0.0, "starting")
    enc_end = _SPANS["encode"]
    if req.rate is None:
        if req.target_bpp is None:
            raise ValueError("a same-file run needs a slider value or a target bpp")
        enc = services.encode_at_target(codec, req.image, template, float(req.target_bpp),
                                        _phase(progress, 0.0, enc_end,
                                               f"encoding at {req.target_bpp:.3f} bpp"))
    else:
        enc = codec.encode(req.image, template, _phase(progress, 0.0, enc_end, "encoding"))
    data = enc.data
    bpp = 8.0 * len(data) / (req.image.shape[0] * req.image.shape[1])
    weights = [_SPANS[d] + METRIC_SPAN for d in todo]
    lo, scale = enc_end, (1.0 - enc_end) / max(sum(weights), 1e-9)
    pictures: dict[str, DemoSide] = {}
    for dec, w in zip(todo, weights):
        hi = lo + scale * w
        mid = lo + scale * _SPANS[dec]
        label = DECODER_LABELS[dec]
        res = codec.decode(data, _phase(progress, lo, mid, label), decoder=dec,
                           seed=int(req.seed) if dec == "diffusion" else None)
        progress(mid, f"metrics: {label}")
        info = dict(res.info or {})
        pictures[dec] = DemoSide(label=_caption_label(dec, info), codec=codec.name, decoder=dec,
                                 reconstruction=res.reconstruction, bpp=bpp,
                                 rate=float(info.get("rate", enc.params.rate)),
                                 metrics=services.compute_metrics(req.image, res.reconstruction,
                                                                  METRICS), data=data)
        lo = hi
    progress(1.0, "done")
    return SameFileResult(data=data, bpp=bpp, rate=float(enc.params.rate),
                          quantizer=str(enc.params.quantizer), steps=steps, seed=int(req.seed),
                          pictures=pictures, missing={d: w for d, w in status.items() if w},
                          target_bpp=float(req.target_bpp) if req.rate is None else None,
                          elapsed=time.perf_counter() - t0)


def _caption_label(dec: str, info: dict) -> str:
    label = DECODER_LABELS[dec]
    if dec == "mse" and info.get("finetuned_for"):
        label += f" (g_s tuned for {info['finetuned_for']})"
    if dec == "diffusion":
        label += f" ({info.get('diffusion_steps', '?')} steps, seed {info.get('decoded_seed', '?')})"
    return label


# ---------------------------------------------------------------------------- differences

def difference_choices(result: Optional[SameFileResult]) -> list[tuple[str, str, str]]:
    """``(a, b, label)`` for every pair of decoded pictures, then each picture vs the original
    (``b == "original"``); pairs with a decoder that was not decoded are left out."""
    have = [d for d in DECODERS if result is not None and d in result.pictures]
    out = []
    for i, a in enumerate(have):
        for b in have[:i]:
            out.append((a, b, f"{DECODER_LABELS[a]} vs {DECODER_LABELS[b]}"))
    for a in have:
        out.append((a, "original", f"{DECODER_LABELS[a]} vs original"))
    return out


def difference_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| per pixel, mean over RGB, in 8-bit units (``H×W`` float32)."""
    if a.shape != b.shape:
        raise ValueError(f"pictures differ in size: {a.shape} vs {b.shape}")
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=-1).astype(np.float32)


#: the colour scale of a difference map ends at this percentile (a few outliers would wash the
#: rest out); the caption gives the maximum too
DIFF_PERCENTILE = 99.5


def difference_stats(d: np.ndarray) -> dict[str, float]:
    """mean, the :data:`DIFF_PERCENTILE` percentile (``"hi"``: the colour scale's top, at least
    1) and max of a difference map."""
    if d.size == 0:
        return {"mean": 0.0, "hi": 1.0, "max": 0.0}
    return {"mean": float(d.mean()),
            "hi": max(float(np.percentile(d, DIFF_PERCENTILE)), 1.0),
            "max": float(d.max())}
