"""The LGEM learned codec behind the common :class:`~lic_core.codecs.base.Codec` interface.

A thin adapter (METHODS §6.3, docs/bitstream.md)::

    image ─► pad to 64 ─► g_a ─► y ─► ⊙G ─► ȳ ──┐
                              └► h_a ⊙H ─► z̄ ───┴► HyperpriorLatentCodec (lic_core.latent_codecs)
                                                    z section, y section (10 group/pass steps)
    ŷ⊙G ─► g_s (or a fine-tuned g_s, or the diffusion decoder) ─► crop ─► image
    .lic = header (model, weights hash, decoder, quantizer+params, rate u16, sizes) + [z, y] + CRC

Everything about coding latents lives in :mod:`lic_core.latent_codecs`; this module adds the
network's transforms, the header, the weights-hash check and the choice of decoder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..bitstream.format import LicHeader, pack, unpack
from ..errors import LicError, LicFormatError, ModelNotFoundError
from ..image.tensor import crop, pad_to_multiple, to_tensor, to_uint8
from ..latent_codecs import (
    CheckerboardGroupedCodec,
    FactorizedZCodec,
    GroupedEntropyParameters,
    HyperpriorLatentCodec,
    LatentCoding,
    LgemFloatParameters,
)
from ..models.lgem import LicModel
from ..paths import diffusion_weights_path, finetuned_path, weights_path
from ..quantizer import Quantizer, build_quantizer
from ..rate.gain import quantize_slider, slider_from_code
from .base import DecodeResult, EncodeParams, EncodeResult, ProgressFn
from .lic_file import (
    PAD_MULTIPLE,
    LicCodec,
    Timer,
    check_geometry,
    header_quantizer,
    inspection,
    report,
    step_progress,
)
from .registry import register_codec

#: builds the entropy-parameter engine of a model (the one replaceable source of μ and the index)
EngineFactory = Callable[[LicModel], GroupedEntropyParameters]


def latent_codec(model: LicModel,
                 engine: Optional[GroupedEntropyParameters] = None) -> HyperpriorLatentCodec:
    """The LGEM latent pipeline: factorized z, then y in 5 groups × 2 checkerboard passes with
    parameters from ``engine`` (default: the model's float outputs, :class:`LgemFloatParameters`)."""
    return HyperpriorLatentCodec(FactorizedZCodec(model.prior),
                                 CheckerboardGroupedCodec(engine or LgemFloatParameters(model)))


def _analyse(model: LicModel, x: torch.Tensor, u: float) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(ȳ = g_a(x)⊙G, z̄ = h_a(y)⊙H, gains) at the u16-dequantized slider u."""
    gains = model._gains(u, x.shape[0], x.device)
    y = model.g_a(x)
    return y * gains["G"], model.h_a(y) * gains["H"], gains


def quantized_latents(model: LicModel, x: torch.Tensor, u: float, quantizer: Quantizer,
                      engine: Optional[GroupedEntropyParameters] = None) -> dict[str, Any]:
    """The real inference quantization of an image batch (no entropy coding).

    The one path ``compress()`` and decoder fine-tuning (METHODS §1.5) share: the latent codec's
    steps with ``code=False``.  ``x`` must be padded to a multiple of 64.
    Returns ``{"y_hat_gained", "y_hat", "means", "scales", "gains", "z_symbols", "u", ...}``.
    """
    _, u = quantize_slider(u)
    with torch.no_grad():
        y_bar, z_bar, gains = _analyse(model, x, u)
        c = latent_codec(model, engine).compress(y_bar, z_bar, gains, quantizer, code=False)
    return {"y_hat_gained": c.y.y_hat_gained, "y_hat": c.y.y_hat_gained / gains["G"],
            "means": c.y.means, "scales": c.y.scales, "gains": gains, "z_symbols": c.z_symbols,
            "clamped": c.clamped, "u": u}


class LearnedCodec(LicCodec):
    """A :class:`LicModel` with weights, as a codec producing real ``.lic`` files."""

    rate_label = "rate (slider u)"
    quantizers = ("round", "deadzone", "rdoq", "tcq")

    def __init__(self, name: str, model: Optional[LicModel] = None,
                 weights_path: Optional[Path] = None, use_finetuned: bool = True,
                 finetuned_dir: Optional[Path] = None, diffusion: Any = None,
                 engine: EngineFactory = LgemFloatParameters) -> None:
        """``engine`` builds the entropy-parameter engine both sides use (default: the float
        path, index = ``scale_index(σ·G)``); ``diffusion`` injects a diffusion decoder."""
        self.name = name
        self.engine = engine
        self._model = model
        self._weights_path = weights_path
        self._hash: Optional[bytes] = None
        self.use_finetuned = use_finetuned
        self._ft_dir = finetuned_dir
        self._ft_cache: dict[str, Any] = {}
        self._diffusion = diffusion  # a DiffusionDecoder (tests inject one); else loaded lazily
        self._meta: dict[str, Any] = getattr(model, "weights_meta", {}) if model else {}

    # -- decoders ---------------------------------------------------------------------------
    @property
    def decoders(self) -> tuple[str, ...]:  # type: ignore[override]
        """"mse" always; "diffusion" when a trained diffusion decoder for this model exists."""
        if self._diffusion is not None or diffusion_weights_path(self.name).is_file():
            return ("mse", "diffusion")
        return ("mse",)

    def diffusion_decoder(self):
        if self._diffusion is None:
            from ..decoder.diffusion import DiffusionDecoder

            self._diffusion = DiffusionDecoder.load(diffusion_weights_path(self.name))
        return self._diffusion

    def _synthesize(self, decoder: str, synth, y_hat_gained: torch.Tensor, gains: dict, u: float,
                    steps: int, seed: int, progress: Optional[ProgressFn]) -> torch.Tensor:
        """x̂ from ŷ⊙G: the (fine-tuned) g_s, or blur-dissipated diffusion (METHODS §3.3)."""
        if decoder == "diffusion":
            from ..decoder.diffusion import decode_latent

            def cb(i, total, x0):
                report(progress, 0.85 + 0.14 * i / max(total, 1), f"diffusion step {i + 1}/{total}")

            return decode_latent(self.diffusion_decoder(), self.model.g_s, y_hat_gained, gains,
                                 steps, seed, cb)
        return synth(y_hat_gained, dict(gains, u=torch.tensor([u])))

    # -- model ------------------------------------------------------------------------------
    @property
    def model(self) -> LicModel:
        if self._model is None:
            from ..models import load_model

            self._model = load_model(self.name, self._weights_path)
            self._meta = getattr(self._model, "weights_meta", {})
        return self._model

    @property
    def weights_hash(self) -> bytes:
        if self._hash is None:
            h = self._meta.get("weights_hash_bytes") if self._meta else None
            if h is None:
                from ..weights import weights_hash

                h = weights_hash(self.model.state_dict())
            self._hash = h
        return self._hash

    def _decoder(self, quantizer: str):
        """(synthesis function (ŷ_G, gains) → x̂, weights hash for the header) for a quantizer:
        a decoder fine-tuned on this quantizer's latents when one exists (METHODS §1.5)."""
        if not self.use_finetuned:
            return self.model.synthesize, self.weights_hash
        if quantizer not in self._ft_cache:
            path = finetuned_path(self.name, quantizer, self._ft_dir)
            entry = None
            if path.is_file():
                from ..decoder.finetuned import load_finetuned_synthesis

                entry = load_finetuned_synthesis(self.model, path, self.weights_hash)
            self._ft_cache[quantizer] = entry
        entry = self._ft_cache[quantizer]
        return entry if entry is not None else (self.model.synthesize, self.weights_hash)

    def available(self) -> tuple[bool, str]:
        if self._model is not None:
            return True, ""
        p = self._weights_path or weights_path(self.name)
        if not Path(p).is_file():
            return False, f"no weights for {self.name} ({Path(p).name} is missing)"
        return True, ""

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "family": self.family}
        ok, why = self.available()
        if not ok:
            info.update(status="unavailable", reason=why)
            return info
        m = self.model
        card = dict(self._meta.get("card", {}))
        info.update(card)
        info["parameters"] = m.num_parameters()
        info["preview"] = bool(card.get("preview", m.config.preview))
        info["provenance"] = ("PREVIEW — trained briefly on CPU; not the product codec"
                              if info["preview"] else "trained")
        info["weights_hash"] = self.weights_hash.hex()
        info["decoders"] = list(self.decoders)
        if self.use_finetuned:  # decoders fine-tuned per quantizer change reconstructions
            hashes = {q: self._decoder(q)[1] for q in self.quantizers}
            ft = {q: h.hex() for q, h in hashes.items() if h != self.weights_hash}
            if ft:
                info["finetuned_decoders"] = ft
        return info

    # -- encode -----------------------------------------------------------------------------
    def encode(self, image: np.ndarray, params: EncodeParams,
               progress: Optional[ProgressFn] = None) -> EncodeResult:
        if params.decoder not in self.decoders:
            raise LicError(f"{self.name} has no '{params.decoder}' decoder "
                           f"(available: {', '.join(self.decoders)})")
        model = self.model
        timer = Timer()
        code, u = quantize_slider(params.rate)
        quantizer = build_quantizer(params.quantizer, **params.quantizer_params)
        H, W = image.shape[:2]
        report(progress, 0.0, "analysis transform")
        with torch.no_grad(), timer("encode"):
            x, _ = pad_to_multiple(to_tensor(image), PAD_MULTIPLE)
            y_bar, z_bar, gains = _analyse(model, x, u)
            coding: LatentCoding = latent_codec(model, self.engine(model)).compress(
                y_bar, z_bar, gains, quantizer, on_step=step_progress(progress, 0.1, 0.8, "coded"))
        report(progress, 0.85, "synthesis transform")
        synth, w_hash = self._decoder(quantizer.name)
        with torch.no_grad(), timer("decode"):
            # the encoder-side reconstruction is what the decoder will produce (same seed)
            x_hat = self._synthesize(params.decoder, synth, coding.y_hat_gained, gains, u,
                                     int(params.diffusion_steps), int(params.seed), progress)
            recon = to_uint8(crop(x_hat, H, W))
        header = LicHeader(model=self.name, weights_hash=w_hash, decoder=params.decoder,
                           quantizer=quantizer.name, quantizer_params=quantizer.params(),
                           rate_u16=code, height=H, width=W,
                           padded_height=x.shape[-2], padded_width=x.shape[-1],
                           diffusion_steps=int(params.diffusion_steps), diffusion_seed=int(params.seed))
        data = pack(header, coding.sections)
        report(progress, 1.0, "done")
        return EncodeResult(data=data, reconstruction=recon, bpp=8.0 * len(data) / (H * W),
                            params=params, codec=self.name, file_extension=self.file_extension,
                            timings=timer.t,
                            inspection=inspection(coding, list(model.config.groups), len(data)))

    # -- decode -----------------------------------------------------------------------------
    def decode(self, data: bytes, progress: Optional[ProgressFn] = None,
               decoder: Optional[str] = None) -> DecodeResult:
        """Decode a .lic file; ``decoder`` overrides the header's decoder kind ("mse" decodes a
        diffusion-marked file with the MSE synthesis transform)."""
        header, sections = unpack(data)
        if header.model != self.name:
            raise LicFormatError(f"file is for model '{header.model}', not '{self.name}'")
        ok, why = self.available()
        if not ok:
            raise ModelNotFoundError(why)
        synth, w_hash = self._decoder(header.quantizer) if header.quantizer in self.quantizers \
            else (None, self.weights_hash)
        if header.weights_hash != w_hash:
            raise LicFormatError(
                f"weights mismatch: file made with {self.name} weights {header.weights_hash.hex()}, "
                f"installed weights are {w_hash.hex()}")
        if len(sections) != 2:
            raise LicFormatError(f"corrupted .lic file (expected 2 sections, found {len(sections)})")
        dec_kind = decoder or header.decoder
        if dec_kind not in self.decoders:
            raise LicError(f"this file asks for the '{dec_kind}' decoder, which {self.name} does "
                           f"not have here (available: {', '.join(self.decoders)}); "
                           f"decode with --decoder mse")
        model = self.model
        latent_size = check_geometry(header)
        quantizer = header_quantizer(header)
        u = slider_from_code(header.rate_u16)
        timer = Timer()
        report(progress, 0.0, "decoding hyper-latent")
        with torch.no_grad(), timer("decode"):
            gains = model._gains(u, 1, "cpu")
            coding = latent_codec(model, self.engine(model)).decompress(
                sections, latent_size, gains, quantizer,
                on_step=step_progress(progress, 0.1, 0.8, "decoded"))
            report(progress, 0.85, "synthesis transform")
            x_hat = self._synthesize(dec_kind, synth, coding.y_hat_gained, gains, u,
                                     header.diffusion_steps or 25, header.diffusion_seed, progress)
            recon = to_uint8(crop(x_hat, header.height, header.width))
        report(progress, 1.0, "done")
        info = {f: getattr(header, f) for f in ("model", "decoder", "quantizer", "quantizer_params",
                                                  "height", "width", "diffusion_steps",
                                                  "diffusion_seed", "lic_version")}
        info.update(rate=u, weights_hash=header.weights_hash.hex(),
                    bpp=8.0 * len(data) / (header.height * header.width), bytes=len(data))
        return DecodeResult(reconstruction=recon, codec=self.name, info=info, timings=timer.t,
                            inspection=inspection(coding, list(model.config.groups), len(data)))


def _register_shipped() -> None:
    """Register the product codec and any shipped preview (available() says which can run)."""
    for name in ("lic-lgem", "lic-lgem-preview"):
        register_codec(name)(lambda name=name: LearnedCodec(name))


_register_shipped()
