"""HiFiC ("hific-small") behind the :class:`~lic_core.codecs.base.Codec` interface.

The GAN baseline the studio compares against (Mentzer et al. 2020, docs/methods.md §8, small variant
of §8.4 with gain units for the rate slider, §5.1).  A thin adapter over the same latent pipeline as
the LGEM codec (:mod:`lic_core.latent_codecs`): section 0 is z under the factorized prior,
section 1 is y in one step under the mean-scale hyperprior (``round`` quantizer, zero-mean
Gaussian tables at the scale-table index of σ, §6.3).

The header carries the model name, the 8-byte weights hash (decoding with other weights is
refused), decoder kind ``gan``, the u16 slider, the sizes and the check values.  The hyperprior's
μ and scale index and the generator's picture run on the exact path (format v2,
:mod:`lic_core.exact`, :mod:`lic_core.models.hific_exact`), so ``decode(encode(x).data)``
reproduces the encoder's reconstruction bit-exactly on any machine, thread count or device.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np
import torch

from ..bitstream.checks import picture_crc, picture_mismatch
from ..bitstream.format import LicHeader, PictureCheck, pack, unpack
from ..devices import coding_device
from ..errors import LicError, LicFormatError, ModelNotFoundError
from ..exact.cache import cached
from ..image.tensor import crop_hwc, pad_to_multiple, to_tensor
from ..latent_codecs import (
    FactorizedZCodec,
    GaussianConditionalCodec,
    HyperpriorEntropyParameters,
    HyperpriorLatentCodec,
    ScaleHyperpriorExactParameters,
)
from ..models.hific import PAD_MULTIPLE, HificModel, count_parameters, load_hific
from ..models.hific_exact import ExactHificGenerator
from ..models.registry import shipped_models
from ..paths import weights_path
from ..quantizer import build_quantizer
from ..rate.gain import quantize_slider
from ..weights import read_weights_card, weights_hash
from .base import DecodeResult, EncodeParams, EncodeResult, ProgressFn
from .lic_file import LicCodec, check_geometry, header_quantizer, inspection, report, step_progress
from .registry import register_codec

MODEL_NAME = "hific-small"
UNAVAILABLE_REASON = "no trained HiFiC weights yet (tools/campaign.sh --stage hific trains them)"


def latent_codec(model: HificModel,
                 engine: Optional[HyperpriorEntropyParameters] = None) -> HyperpriorLatentCodec:
    """HiFiC's latent pipeline: factorized z, then all of y in one mean-scale step (exact engine
    unless ``engine`` says otherwise — the float engine is for benchmarks only)."""
    return HyperpriorLatentCodec(
        FactorizedZCodec(model.entropy_bottleneck),
        GaussianConditionalCodec(engine or ScaleHyperpriorExactParameters(model)))


def exact_generator(model: HificModel, device="cpu") -> ExactHificGenerator:
    """G on the exact path, built once per weights and device."""
    dev = torch.device(device)
    return cached(model, f"generator:{dev}", (model.generator,),
                  lambda: ExactHificGenerator(model.generator, device=dev))


class HificCodec(LicCodec):
    """HiFiC with one model for all rates (slider u in [0, 1]); GAN decoder; round quantizer."""

    name = MODEL_NAME
    rate_label = "rate slider u"
    quantizers = ("round",)
    decoders = ("gan",)

    def __init__(self, model: Optional[HificModel] = None, model_name: str = MODEL_NAME,
                 device: Optional[str] = None) -> None:
        """``model`` injects an in-memory model (tests: a random tiny model); otherwise the
        trained weights are loaded from ``<weights dir>/<model_name>.safetensors`` on first use.
        ``device`` ("cpu" default, "cuda") is where the exact arithmetic runs (same bits)."""
        self.model_name = model_name
        self.device = coding_device(device)
        self._model: Optional[HificModel] = None
        self._hash: Optional[bytes] = None
        self._injected = model is not None
        if model is not None:
            self._set_model(model)

    # ------------------------------------------------------------------------------ model
    def _set_model(self, model: HificModel) -> None:
        # device only: a dtype cast would also turn the float64 z pmf tables into float32
        model = model.to(device="cpu").eval()
        model.entropy_bottleneck.tables()  # stored z tables are required (never recomputed)
        self._model = model
        self._hash = weights_hash(model.state_dict())

    def _require(self) -> HificModel:
        if self._model is None:
            ok, why = self.available()
            if not ok:
                raise ModelNotFoundError(why)
            self._set_model(load_hific(self.model_name))
        return self._model

    def available(self) -> tuple[bool, str]:
        if self._injected or self._model is not None:
            return True, ""
        if not weights_path(self.model_name).is_file():
            return False, UNAVAILABLE_REASON
        return True, ""

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "family": self.family,
                             "label": "HiFiC small (GAN decoder)",
                             "paper": "Mentzer et al., High-Fidelity Generative Image "
                                      "Compression, NeurIPS 2020",
                             "variant": "small HiFiC (docs/methods.md §8.4), gain units for "
                                        "the slider",
                             "decoders": list(self.decoders), "quantizers": list(self.quantizers),
                             "weights": str(weights_path(self.model_name))}
        ok, why = self.available()
        d["available"] = ok
        if not ok:
            d["reason"] = why
        if self._model is not None:
            d["config"] = self._model.config.to_dict()
            d["parameters"] = count_parameters(self._model)
            d["model_id"] = self._hash.hex()
            card = getattr(self._model, "card", None)
            if card:
                d["card"] = dict(card)
            d["provenance"] = ("trained" if card else "in-memory model (not a weights file)")
        elif ok:
            # not loaded yet: the card from the file's header (milliseconds), so that `lic
            # models` and the studio label HiFiC before anyone encodes with it
            try:
                card = read_weights_card(weights_path(self.model_name))
            except Exception:  # noqa: BLE001 - an unreadable card is "not recorded"
                card = {}
            if card:
                d["card"] = card
        return d

    # ------------------------------------------------------------------------------ pictures
    def _picture(self, model: HificModel, y_hat_gained: torch.Tensor, g: dict, h: int,
                 w: int) -> np.ndarray:
        """The exact generator's H×W×3 uint8 picture of ŷ⊙G."""
        pic = exact_generator(model, self.device).picture(y_hat_gained, g["G_inv"])
        return crop_hwc(pic, h, w)

    # ------------------------------------------------------------------------------ encode
    def _check_params(self, params: EncodeParams):
        if params.decoder not in self.decoders:
            raise LicError(f"{self.name} has only the GAN decoder (got '{params.decoder}')")
        if params.quantizer not in self.quantizers:
            raise LicError(f"{self.name} supports only the round quantizer "
                           f"(got '{params.quantizer}')")
        if not 0.0 <= float(params.rate) <= 1.0:
            raise LicError(f"{self.name}: rate must be a slider value in [0, 1], got {params.rate}")
        return build_quantizer(params.quantizer, **(params.quantizer_params or {}))

    def encode(self, image: np.ndarray, params: EncodeParams,
               progress: Optional[ProgressFn] = None) -> EncodeResult:
        model = self._require()
        quant = self._check_params(params)
        code, u = quantize_slider(params.rate)
        t0 = time.perf_counter()
        report(progress, 0.0, "analysis")
        x = to_tensor(image)
        xp, (h, w) = pad_to_multiple(x, PAD_MULTIPLE)
        engine = ScaleHyperpriorExactParameters(model, self.device)
        with torch.no_grad():
            g = engine.gains_for_code(code)
            y_bar = model.encoder(xp).double() * g["G"].cpu()
            z_bar = model.h_a(y_bar.float()).double() * g["H"].cpu()
            coding = latent_codec(model, engine).compress(
                y_bar.to(self.device), z_bar, g, quant,
                on_step=step_progress(progress, 0.3, 0.6, "coded"))
            report(progress, 0.7, "GAN synthesis")
            recon = self._picture(model, coding.y_hat_gained, g, h, w)
        header = LicHeader(model=self.model_name, weights_hash=self._hash, decoder="gan",
                           quantizer=quant.name, quantizer_params=quant.params(), rate_u16=code,
                           height=h, width=w, padded_height=int(xp.shape[-2]),
                           padded_width=int(xp.shape[-1]), symbol_crcs=coding.symbol_crcs,
                           picture_crcs=[PictureCheck("gan", 0, 0, picture_crc(recon))])
        data = pack(header, coding.sections)
        t_enc = time.perf_counter() - t0
        report(progress, 1.0, "done")
        used = EncodeParams(rate=u, quantizer=quant.name, quantizer_params=quant.params(),
                            decoder="gan", seed=params.seed, extra=dict(params.extra))
        return EncodeResult(data=data, reconstruction=recon, bpp=8.0 * len(data) / (h * w),
                            params=used, codec=self.name, file_extension=self.file_extension,
                            timings={"encode": t_enc},
                            inspection=inspection(coding, [model.config.C_y], len(data),
                                                  {"u": u}))

    # ------------------------------------------------------------------------------ decode
    def decode(self, data: bytes, progress: Optional[ProgressFn] = None) -> DecodeResult:
        header, sections = unpack(data)
        if header.model != self.model_name:
            raise LicFormatError(f"this file was made by model '{header.model}', "
                                 f"not '{self.model_name}'")
        if header.decoder != "gan":
            raise LicFormatError(f"{self.name} files use the GAN decoder (header says "
                                 f"'{header.decoder}')")
        if len(sections) != 2:
            raise LicFormatError(f"corrupted .lic file ({len(sections)} sections, HiFiC has 2)")
        model = self._require()
        if header.weights_hash != self._hash:
            raise LicFormatError("this file was made with different HiFiC weights "
                                 f"(file {header.weights_hash.hex()}, "
                                 f"installed {self._hash.hex()})")
        latent_size = check_geometry(header)
        quant = header_quantizer(header)
        t0 = time.perf_counter()
        report(progress, 0.0, "decoding z")
        engine = ScaleHyperpriorExactParameters(model, self.device)
        with torch.no_grad():
            g = engine.gains_for_code(header.rate_u16)
            coding = latent_codec(model, engine).decompress(
                sections, latent_size, g, quant,
                on_step=step_progress(progress, 0.3, 0.6, "decoded"),
                expected_crcs=header.symbol_crcs)
            report(progress, 0.6, "GAN synthesis")
            recon = self._picture(model, coding.y_hat_gained, g, header.height, header.width)
        check = header.picture_check("gan")
        if check is not None and picture_crc(recon) != check.crc:
            raise picture_mismatch("gan")
        report(progress, 1.0, "done")
        info = {"model": header.model, "model_id": header.weights_hash.hex(), "decoder": "gan",
                "quantizer": header.quantizer, "rate": header.rate,
                "size": [header.height, header.width], "bytes": len(data),
                "lic_version": header.lic_version, "symbols_checked": True,
                "picture_checked": check is not None}
        return DecodeResult(reconstruction=recon, codec=self.name, info=info,
                            timings={"decode": time.perf_counter() - t0},
                            inspection=inspection(coding, [model.config.C_y], len(data)))


def _register_shipped() -> None:
    """A codec for each shipped ``hific`` model of the model registry (``hific-small``)."""
    for name in shipped_models("hific"):
        register_codec(name)(lambda name=name: HificCodec(model_name=name))


_register_shipped()
