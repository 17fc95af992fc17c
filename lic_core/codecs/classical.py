"""Classical codecs (JPEG, WebP, AVIF, JPEG XL, JPEG 2000, HEVC intra through Pillow) behind the
common :class:`~lic_core.codecs.base.Codec` interface.

All of them go through Pillow (and its plugins), encode into an in-memory buffer and decode the
exact bytes they produced, so ``EncodeResult.reconstruction`` is what any decoder of the file
shows and ``bpp`` comes from the real byte count (CompressAI's ``utils/bench/codecs.py`` does the
same for its Pillow JPEG/WebP anchors).

Rate knobs (``Codec.rate_range``; all increase the rate as they increase, so the target-bpp
bisection of :mod:`lic_core.evaluation.target_bpp` can use them):

=========  =======================  =========================================================
codec      knob                     notes
=========  =======================  =========================================================
jpeg       quality 1..95 (int)      libjpeg quality, 4:2:0 chroma subsampling
jpeg-444   quality 1..95 (int)      same, 4:4:4 (no chroma subsampling)
webp       quality 0..100 (int)     lossy VP8, method 4 (Pillow default)
avif       quality 0..100 (int)     libavif/aom, speed 6, 4:4:4 (``extra["subsampling"]``)
jxl        quality 0..99 (int)      libjxl quality → butteraugli distance, effort 7
j2k        quality 0..100 (float)   OpenJPEG 9/7 irreversible + MCT; quality q maps to the
                                    compression ratio ``10**(3*(100-q)/100)`` (q=100: 1:1,
                                    q=50: ≈32:1 ≈ 0.76 bpp, q=0: 1000:1 ≈ 0.024 bpp)
hevc       quality 10..60 (int)     HEVC intra (the BPG anchor) in a HEIF file: libheif's x265,
                                    4:4:4, 8 bits; libheif's quality, so x265 CRF =
                                    ⌊(100 − q)/2⌋ (two q values per CRF step): Kodak q=10 ≈
                                    0.11 bpp, q=34 ≈ 0.68, q=58 ≈ 2.4 (see :class:`HevcCodec`)
=========  =======================  =========================================================

``extra`` in :class:`EncodeParams` can override codec options (e.g. ``{"speed": 4}`` for AVIF,
``{"effort": 9}`` for JPEG XL, ``{"method": 6}`` for WebP, ``{"preset": "medium"}`` or
``{"x265:psy-rd": "1.0"}`` for HEVC).
"""
from __future__ import annotations

import importlib
import io
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import PIL
import PIL.features
from PIL import Image

from ..errors import CodecUnavailableError, ImageError, LicFormatError
from .base import Codec, DecodeResult, EncodeParams, EncodeResult, ProgressFn
from .registry import register_codec


def _has_feature(feature: str) -> bool:
    """Whether Pillow was built with ``feature`` (a seam for tests to simulate a missing one)."""
    try:
        return bool(PIL.features.check(feature))
    except Exception:  # pragma: no cover - unknown feature name on an old Pillow
        return False


def _has_module(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        raise ImageError("classical codecs take an H×W×3 uint8 RGB array")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError("empty image")
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class Needs:
    """Any one of these Pillow ``features`` or plugin ``modules`` provides a format; else
    ``reason`` says what is missing."""

    reason: str
    features: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()


class PillowCodec(Codec):
    """Shared machinery: encode with ``Image.save(buf, format, **options)``, decode with Pillow."""

    family = "classical"
    rate_label = "quality"
    rate_range = (0.0, 100.0)
    default_rate = 75.0
    rate_increasing = True
    #: True: the knob only takes integer values (bisection works over integers)
    integer_rate = True
    pil_format = ""
    label = ""
    #: what provides the format in this install (None: always available)
    needs: Optional[Needs] = None
    #: Pillow save options besides the quality knob
    save_options: dict[str, Any] = {}

    def available(self) -> tuple[bool, str]:
        n = self.needs
        if n is None or any(map(_has_feature, n.features)) or any(map(_has_module, n.modules)):
            return True, ""
        return False, n.reason

    def _options(self, params: EncodeParams) -> dict[str, Any]:
        """Pillow save options for the rate knob (``params.extra`` is merged in by encode)."""
        return {"quality": self._rate_value(params.rate), **self.save_options}

    def _rate_value(self, rate: float) -> float:
        lo, hi = self.rate_range
        r = min(max(float(rate), lo), hi)
        return int(round(r)) if self.integer_rate else r

    def _require(self) -> None:
        ok, why = self.available()
        if not ok:
            raise CodecUnavailableError(f"{self.name}: {why}")

    def _save_options(self, params: EncodeParams) -> dict[str, Any]:
        """Everything ``Image.save`` gets: the knob's options, then the user's ``extra``."""
        return {**self._options(params), **params.extra}  # user extras override the defaults

    def encode(self, image: np.ndarray, params: EncodeParams,
               progress: Optional[ProgressFn] = None) -> EncodeResult:
        self._require()
        img = _check_image(image)
        pil = Image.fromarray(img, "RGB")
        opts = self._save_options(params)
        buf = io.BytesIO()
        t0 = time.perf_counter()
        pil.save(buf, format=self.pil_format, **opts)
        t_enc = time.perf_counter() - t0
        data = buf.getvalue()
        if progress:
            progress(0.5, "encoded")
        dec = self.decode(data)
        if dec.reconstruction.shape != img.shape:
            raise LicFormatError(f"{self.name}: decoded size {dec.reconstruction.shape} "
                                 f"differs from input {img.shape}")
        if progress:
            progress(1.0, "decoded")
        used = EncodeParams(**{**params.__dict__, "rate": float(self._rate_value(params.rate))})
        h, w = img.shape[:2]
        return EncodeResult(
            data=data, reconstruction=dec.reconstruction, bpp=8.0 * len(data) / (h * w),
            params=used, codec=self.name, file_extension=self.file_extension,
            timings={"encode": t_enc, "decode": dec.timings["decode"]})

    def decode(self, data: bytes, progress: Optional[ProgressFn] = None) -> DecodeResult:
        self._require()
        t0 = time.perf_counter()
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                fmt = im.format
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except (OSError, SyntaxError, ValueError) as exc:
            raise LicFormatError(f"{self.name}: cannot decode data "
                                 f"({' '.join(str(exc).split())})") from None
        t_dec = time.perf_counter() - t0
        return DecodeResult(reconstruction=rgb, codec=self.name,
                            info={"format": fmt, "bytes": len(data)},
                            timings={"decode": t_dec})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "label": self.label,
                "rate_label": self.rate_label, "rate_range": list(self.rate_range),
                "pillow": PIL.__version__}


class _JpegBase(PillowCodec):
    pil_format = "JPEG"
    file_extension = ".jpg"
    rate_range = (1.0, 95.0)  # libjpeg: >95 mostly disables quantisation savings
    default_rate = 75.0
    subsampling = 2  # Pillow: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
    needs = Needs("Pillow was built without libjpeg", features=("jpg",))

    def _options(self, params: EncodeParams) -> dict[str, Any]:
        return {"quality": self._rate_value(params.rate), "subsampling": self.subsampling,
                "optimize": False}


@register_codec("jpeg")
class JpegCodec(_JpegBase):
    name = "jpeg"
    label = "JPEG (libjpeg, 4:2:0)"
    subsampling = 2


@register_codec("jpeg-444")
class Jpeg444Codec(_JpegBase):
    name = "jpeg-444"
    label = "JPEG (libjpeg, 4:4:4)"
    subsampling = 0


@register_codec("webp")
class WebPCodec(PillowCodec):
    name = "webp"
    label = "WebP (libwebp, lossy)"
    pil_format = "WEBP"
    file_extension = ".webp"
    needs = Needs("Pillow was built without libwebp", features=("webp",))
    save_options = {"lossless": False, "method": 4}


@register_codec("avif")
class AvifCodec(PillowCodec):
    name = "avif"
    label = "AVIF (libavif, 4:4:4)"
    pil_format = "AVIF"
    file_extension = ".avif"
    default_rate = 60.0
    # Older Pillow: the pillow-avif-plugin registers the format on import.
    needs = Needs("no AVIF encoder (needs Pillow >= 11.3 with libavif or pillow-avif-plugin)",
                  features=("avif",), modules=("pillow_avif",))
    save_options = {"speed": 6, "subsampling": "4:4:4"}


@register_codec("jxl")
class JxlCodec(PillowCodec):
    name = "jxl"
    label = "JPEG XL (libjxl)"
    pil_format = "JXL"
    file_extension = ".jxl"
    rate_range = (0.0, 99.0)  # 100 switches libjxl to distance 0 (lossless): a rate cliff
    needs = Needs("JPEG XL needs the pillow-jxl-plugin package (import pillow_jxl)",
                  modules=("pillow_jxl",))
    save_options = {"lossless": False, "effort": 7}


def j2k_ratio(quality: float) -> float:
    """Compression ratio the ``j2k`` codec asks OpenJPEG for at ``quality`` q in [0, 100].

    ``10**(3*(100-q)/100)``: log-linear, so equal steps of q are equal rate ratios (q=100 → 1:1,
    q=0 → 1000:1); monotone increasing rate in q, which the target-bpp bisection relies on.
    """
    q = min(max(float(quality), 0.0), 100.0)
    return float(10.0 ** (3.0 * (100.0 - q) / 100.0))


@register_codec("j2k")
class J2kCodec(PillowCodec):
    name = "j2k"
    label = "JPEG 2000 (OpenJPEG, 9/7)"
    pil_format = "JPEG2000"
    file_extension = ".j2k"
    rate_label = "quality (log ratio)"
    rate_range = (0.0, 100.0)
    default_rate = 50.0
    integer_rate = False  # the ratio is continuous
    needs = Needs("Pillow was built without OpenJPEG", features=("jpg_2000",))

    def _options(self, params: EncodeParams) -> dict[str, Any]:
        ratio = j2k_ratio(self._rate_value(params.rate))
        opts: dict[str, Any] = {"irreversible": True, "mct": 1, "no_jp2": True}
        if ratio > 1.0:
            opts.update(quality_mode="rates", quality_layers=[ratio])
        return opts


#: x265 settings of the ``hevc`` codec on top of libheif's (preset slow, tune ssim, then psy-rd 1,
#: psy-rdoq 1 and aq-mode 1 forced for visual quality): BPG's own x265 set-up (``bpgenc``'s
#: default ``-m 8`` is preset veryslow with tune ssim, which turns psycho-visual RD off), so the
#: curve is the PSNR anchor papers compare with.  Psycho-visual RD off is worth −11 % BD-rate
#: (PSNR) against libheif's defaults on 5 Kodak images; preset and AQ mode move it by < 0.5 %.
HEVC_X265_PARAMS = {"preset": "veryslow", "tune": "ssim", "x265:psy-rd": "0",
                    "x265:psy-rdoq": "0", "x265:aq-mode": "2"}
#: libheif's own x265 parameter names (anything ``x265:NAME`` goes to x265 itself)
_LIBHEIF_X265_KEYS = ("preset", "tune", "tu-intra-depth", "complexity")
_HEIF_OPENER: list[bool] = []  # registered once per process


def _heif_info() -> Optional[dict[str, Any]]:
    """pillow-heif's libheif build (versions, encoders, decoders) with its HEIF opener registered
    in Pillow, or None when the plugin is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return None
    if not _HEIF_OPENER:
        pillow_heif.register_heif_opener()  # Image.open / Image.save(format="HEIF")
        _HEIF_OPENER.append(True)
    info = dict(pillow_heif.libheif_info())
    info["pillow_heif"] = str(getattr(pillow_heif, "__version__", "?"))
    return info


@register_codec("hevc")
class HevcCodec(PillowCodec):
    """HEVC intra, the encoder of BPG (the anchor learned-codec papers report BD-rates against),
    in a HEIF file: libheif with x265 and libde265 as bundled by ``pillow-heif``.

    4:4:4 chroma, 8 bits, YCbCr BT.601 full range (BPG's ``-f 444 -c ycbcr``), one picture (no
    grid tiles, no thumbnail), x265 as :data:`HEVC_X265_PARAMS`.  The knob is libheif's quality
    (the same number ``pillow_heif`` takes), which x265 gets as CRF ⌊(100 − q)/2⌋: q and q + 1
    (q odd) give the same file.  Its range is 10..60 (CRF 45..20); on Kodak the default points
    q = 10..58 span 0.113 bpp / 27.4 dB .. 2.41 bpp / 42.9 dB (benchmarks/results/classical/
    hevc.json; +1.7 % BD-rate against the published BPG 4:4:4 curve, all of it the 378 bytes of
    HEIF boxes and parameter sets per file).
    """

    name = "hevc"
    label = "HEVC intra (x265, HEIF, 4:4:4)"
    pil_format = "HEIF"
    file_extension = ".heic"
    rate_range = (10.0, 60.0)
    default_rate = 30.0

    def available(self) -> tuple[bool, str]:
        info = _heif_info()
        if info is None:
            return False, ("HEVC needs the pillow-heif package (pip install pillow-heif: "
                           "libheif with x265 and libde265)")
        if "x265" not in (info.get("encoders") or {}):
            return False, (f"pillow-heif {info['pillow_heif']} has no x265 encoder (libheif "
                           f"{info.get('libheif', '?')} was built without it)")
        if not info.get("decoders"):
            return False, f"pillow-heif {info['pillow_heif']} has no HEVC decoder"
        return True, ""

    def _options(self, params: EncodeParams) -> dict[str, Any]:
        return {"quality": self._rate_value(params.rate), "chroma": "444", "tile_size": 0,
                "save_nclx_profile": True}

    def _save_options(self, params: EncodeParams) -> dict[str, Any]:
        """x265/libheif parameters in ``extra`` (``preset``, ``x265:psy-rd``... or a whole
        ``enc_params`` dict) go to the encoder on top of :data:`HEVC_X265_PARAMS`."""
        opts = self._options(params)
        enc = dict(HEVC_X265_PARAMS)  # a fresh dict: pillow-heif writes "chroma" into it
        for key, value in params.extra.items():
            if key == "enc_params":
                enc.update({str(k): str(v) for k, v in dict(value).items()})
            elif key in _LIBHEIF_X265_KEYS or str(key).startswith("x265:"):
                enc[str(key)] = str(value)
            else:
                opts[key] = value
        opts["enc_params"] = enc
        return opts

    def decode(self, data: bytes, progress: Optional[ProgressFn] = None) -> DecodeResult:
        res = super().decode(data, progress)
        try:  # what the file says it holds (decode() already proved it is a HEIF picture)
            with Image.open(io.BytesIO(data)) as im:
                res.info.update(chroma=im.info.get("chroma"), bit_depth=im.info.get("bit_depth"))
        except Exception:  # noqa: BLE001 - informative only
            pass
        return res

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        info = _heif_info()
        if info is not None:
            enc = (info.get("encoders") or {}).get("x265") or info.get("HEIF") or "none"
            d["encoder"] = (f"{enc}, libheif {info.get('libheif', '?')}, pillow-heif "
                            f"{info['pillow_heif']}")
            d["decoder"] = ", ".join((info.get("decoders") or {}).values()) or "none"
        d["settings"] = ("HEIF, 4:4:4 YCbCr BT.601 full range, 8 bits, one picture; x265 CRF "
                         "⌊(100 − quality)/2⌋, preset veryslow, tune ssim, psy-rd 0, "
                         "psy-rdoq 0, aq-mode 2 (BPG's set-up)")
        return d
