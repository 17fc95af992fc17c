""""HiFiC vs ours" (issue 13): the work behind the studio's demo, Qt-free and testable.

One request puts HiFiC and our blur-dissipated diffusion decoder side by side **at matched bpp**:

1. HiFiC's rate slider is searched until its real file size meets the target bpp
   (:func:`lic_core.evaluation.target_bpp.encode_at_target_bpp`, with progress);
2. our codec is searched the same way with the cheap MSE decoder (the bits do not depend on the
   decoder), then encoded once more at the rate found with the diffusion decoder — the real file
   a user would save — collecting the x̂0 estimate of every sampler step (the step scrubber);
3. bpp, PSNR, MS-SSIM and LPIPS of HiFiC, of our diffusion decode and of our MSE decode of the
   same bits.

:func:`run_seed_variance` decodes our file again with a few seeds and returns the per-pixel
standard deviation (where the decoder invents detail, and where ŷ pins it down).  Both run in a
worker thread; the request's token cancels them through the codecs' progress callbacks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np

from lic_core.codecs import PREFERRED_LEARNED, Codec, EncodeParams, get_codec
from lic_core.decoder.diffusion.tiles import TILE as SAMPLER_TILE  # noqa: F401 (the view's text)
from lic_core.errors import CancelledError
from lic_core.paths import diffusion_weights_path, weights_path

from . import services
from .session import CancelToken

ProgressSink = Callable[[float, str], None]
#: our learned codecs in order of preference (the product, then the shipped preview)
OURS = PREFERRED_LEARNED
HIFIC = "hific-small"
METRICS = ("psnr", "ms_ssim", "lpips")
DEFAULT_TARGET_BPP = 0.35  # HiFiC's published "Mi" point on Kodak (0.351 bpp)


@dataclass
class DemoCodecs:
    """The two codecs of the demo: HiFiC and one of ours with a diffusion decoder."""

    hific: Codec
    ours: Codec

    @property
    def default_steps(self) -> int:
        return int(self.ours.diffusion_decoder().config.steps)  # type: ignore[attr-defined]

    def cards(self) -> tuple[Optional[dict], Optional[dict]]:
        """The model cards of HiFiC and of our diffusion decoder (None where there is none)."""
        from lic_core.weights import read_weights_card

        hific = (self.hific.describe() or {}).get("card")
        try:
            ours = read_weights_card(diffusion_weights_path(self.ours.name))
        except Exception:  # noqa: BLE001 - an injected decoder (tests): no card
            ours = None
        return (hific if isinstance(hific, dict) else None), (ours or None)

    def default_target(self) -> float:
        """The target bpp the window opens with: HiFiC's published Mi point (0.35 bpp) when both
        cards' Kodak tables reach it, else the middle of the bpp range the two share — so that a
        first Run lands both codecs on it (:func:`shared_bpp_range`)."""
        return default_target(*self.cards())

    def budget(self) -> tuple[bool, str]:
        """``(same, line)``: were the two trained on the same CPU budget (issue 13's fairness
        condition)? From the two model cards; "unknown" for in-memory models (tests)."""
        from lic_core.evaluation.generative import budget_line
        from lic_core.paths import weights_path
        from lic_core.weights import read_weights_card

        hific, ours = self.cards()
        try:
            codec = read_weights_card(weights_path(self.ours.name))
        except Exception:  # noqa: BLE001 - an in-memory codec (tests): no card
            codec = None
        return budget_line(hific, ours, codec)


def find_demo_codecs() -> tuple[Optional[DemoCodecs], str]:
    """``(codecs, "")`` when HiFiC and our diffusion decoder have weights here; else
    ``(None, why)`` — one line naming what is missing and the campaign stage that makes it."""
    missing = []
    hific = None
    try:
        hific = get_codec(HIFIC)
        if not hific.available()[0]:
            hific = None
    except Exception:  # noqa: BLE001 - a broken provider disables the demo, not the studio
        hific = None
    if hific is None:
        missing.append(f"HiFiC weights ({weights_path(HIFIC).name}: `tools/campaign.sh --stage "
                       "hific start`, later `... --stage hific export --install`)")
    ours = None
    for name in OURS:
        try:
            c = get_codec(name)
        except Exception:  # noqa: BLE001
            continue
        if c.available()[0] and "diffusion" in c.decoders:
            ours = c
            break
    if ours is None:
        shipped = next((n for n in OURS if services.codec_availability(n)[0]), OURS[-1])
        missing.append(f"a trained diffusion decoder ({diffusion_weights_path(shipped).name}: "
                       "`tools/campaign.sh --stage diffusion start`, later `... --stage "
                       "diffusion export --install`)")
    if missing:
        return None, "HiFiC vs ours needs " + " and ".join(missing)
    return DemoCodecs(hific=hific, ours=ours), ""


def _kodak_bpp(card: Optional[dict], row_suffix: str) -> Optional[tuple[float, float]]:
    rows = ((card or {}).get("eval") or {}).get("rows") or {}
    for label, pts in rows.items():
        if str(label).endswith(row_suffix):
            bpp = [float(p["bpp"]) for p in pts if p.get("bpp") is not None]
            if bpp:
                return min(bpp), max(bpp)
    return None


def shared_bpp_range(hific_card: Optional[dict],
                     diffusion_card: Optional[dict]) -> Optional[tuple[float, float]]:
    """The Kodak bpp range both generative decoders' cards cover (mean bpp at their slider
    ends), or None when a card has no table or the ranges do not meet."""
    a = _kodak_bpp(hific_card, "(GAN decoder)")
    b = _kodak_bpp(diffusion_card, "diffusion decoder")
    if a is None or b is None:
        return None
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo < hi else None


def default_target(hific_card: Optional[dict], diffusion_card: Optional[dict]) -> float:
    """:data:`DEFAULT_TARGET_BPP` when inside :func:`shared_bpp_range` (or nothing is known),
    else the middle of the shared range (rounded to 0.01 bpp)."""
    shared = shared_bpp_range(hific_card, diffusion_card)
    if shared is None or shared[0] <= DEFAULT_TARGET_BPP <= shared[1]:
        return DEFAULT_TARGET_BPP
    return round((shared[0] + shared[1]) / 2, 2)


@dataclass
class DemoSide:
    """One decoded picture of the demo and its numbers."""

    label: str
    codec: str
    decoder: str
    reconstruction: np.ndarray
    bpp: float
    rate: float
    metrics: dict[str, float]
    data: bytes = b""

    def summary(self) -> str:
        m = self.metrics
        parts = [f"{self.bpp:.3f} bpp"]
        if "psnr" in m:
            parts.append(f"PSNR {m['psnr']:.2f} dB")
        if "ms_ssim" in m:
            parts.append(f"MS-SSIM {m['ms_ssim']:.4f}")
        if "lpips" in m:
            parts.append(f"LPIPS {m['lpips']:.4f}")
        return " · ".join(parts)


@dataclass
class DemoRequest:
    image: np.ndarray
    codecs: DemoCodecs
    target_bpp: float = DEFAULT_TARGET_BPP
    seed: int = 0
    steps: Optional[int] = None
    token: CancelToken = field(default_factory=CancelToken)


@dataclass
class DemoResult:
    target_bpp: float
    hific: DemoSide
    ours: DemoSide
    mse: DemoSide
    frames: list[np.ndarray]  # x̂0 of every sampler step (uint8 H×W×3), the last is the picture
    steps: int
    seed: int
    elapsed: float = 0.0

    def bpp_gap(self) -> float:
        """Relative difference of the two generative files' bpp (matched bpp: small)."""
        return abs(self.ours.bpp - self.hific.bpp) / max(self.hific.bpp, 1e-12)


def _phase(progress: ProgressSink, lo: float, hi: float, label: str) -> ProgressSink:
    def inner(f: float, msg: str = "") -> None:
        progress(lo + (hi - lo) * min(max(float(f), 0.0), 1.0), f"{label}: {msg}")

    return inner


def _progress(token: CancelToken, sink: Optional[ProgressSink]) -> ProgressSink:
    def progress(fraction: float, message: str = "") -> None:
        if token.cancelled:
            raise CancelledError("cancelled")
        if sink is not None:
            sink(float(fraction), str(message))

    return progress


def run_demo(req: DemoRequest, sink: Optional[ProgressSink] = None) -> DemoResult:
    """HiFiC vs our diffusion decoder at matched bpp (see the module docstring). Worker thread."""
    t0 = time.perf_counter()
    progress = _progress(req.token, sink)
    hific, ours = req.codecs.hific, req.codecs.ours
    steps = int(req.steps or req.codecs.default_steps)
    progress(0.0, "starting")
    h_res = services.encode_at_target(hific, req.image, EncodeParams(rate=0.5, decoder="gan"),
                                      req.target_bpp, _phase(progress, 0.0, 0.3, "HiFiC bpp search"))
    template = EncodeParams(rate=0.5, decoder="mse", diffusion_steps=steps, seed=int(req.seed))
    m_res = services.encode_at_target(ours, req.image, template, req.target_bpp,
                                      _phase(progress, 0.3, 0.45, "our bpp search"))
    frames: list[np.ndarray] = []

    def on_x0(i: int, total: int, pic: np.ndarray) -> None:
        frames.append(pic)

    d_res = ours.encode(req.image, replace(template, rate=m_res.params.rate, decoder="diffusion"),  # type: ignore[call-arg]
                        _phase(progress, 0.45, 0.9, "diffusion decode"), on_x0=on_x0)
    progress(0.9, "metrics")
    sides = []
    for label, codec, dec, res in ((f"HiFiC ({hific.name})", hific, "gan", h_res),
                                   (f"ours ({ours.name}, diffusion decoder)", ours, "diffusion",
                                    d_res),
                                   (f"ours ({ours.name}, MSE decoder, same bits)", ours, "mse",
                                    m_res)):
        progress(0.9 + 0.03 * len(sides), f"metrics: {label}")
        sides.append(DemoSide(label=label, codec=codec.name, decoder=dec,
                              reconstruction=res.reconstruction, bpp=res.bpp,
                              rate=float(res.params.rate),
                              metrics=services.compute_metrics(req.image, res.reconstruction,
                                                               METRICS), data=res.data))
    progress(1.0, "done")
    return DemoResult(target_bpp=req.target_bpp, hific=sides[0], ours=sides[1], mse=sides[2],
                      frames=frames + [d_res.reconstruction], steps=steps, seed=int(req.seed),
                      elapsed=time.perf_counter() - t0)


@dataclass
class VarianceRequest:
    codec: Any  # our LearnedCodec
    data: bytes  # a diffusion-decoded file
    seeds: Sequence[int] = (0, 1, 2, 3)
    token: CancelToken = field(default_factory=CancelToken)


def run_seed_variance(req: VarianceRequest, sink: Optional[ProgressSink] = None) -> np.ndarray:
    """Per-pixel standard deviation (mean over RGB, 8-bit units, ``H×W`` float32) of the
    diffusion decodes of one file with ``seeds`` (same bits, same steps). Worker thread."""
    if len(req.seeds) < 2:
        raise ValueError("a seed-variance map needs at least two seeds")
    progress = _progress(req.token, sink)
    pics = []
    n = len(req.seeds)
    for k, s in enumerate(req.seeds):
        res = req.codec.decode(req.data, _phase(progress, k / n, (k + 1) / n, f"seed {s}"),
                               decoder="diffusion", seed=int(s))
        pics.append(res.reconstruction.astype(np.float32))
    progress(1.0, "done")
    return np.std(np.stack(pics), axis=0).mean(axis=-1).astype(np.float32)
