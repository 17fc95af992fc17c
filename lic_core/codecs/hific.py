"""HiFiC ("hific-small") behind the :class:`~lic_core.codecs.base.Codec` interface.

The GAN baseline the studio compares against (Mentzer et al. 2020, METHODS §4, small variant of
§4.4 with gain units for the rate slider, §5.1).  Real bitstreams in the ``.lic`` container:

* section 0 — z: ``v = round(z̄ − median_c)`` coded with the factorized prior's per-channel
  categorical tables (:func:`lic_core.entropy_coder.encode_z`; tables stored in the weights);
* section 1 — y: ``q = round(ȳ − μ)`` coded by the ``round`` quantizer with zero-mean Gaussian
  tables at the table scale of σ (:class:`lic_core.quantizer.scalar.RoundQuantizer`, §6.3).

The header carries the model name, the 8-byte weights hash (decoding with other weights is
refused), decoder kind ``gan``, the u16 slider and the sizes.  Encoding and decoding run on CPU in
float32 with deterministic algorithms; the encoder's reconstruction is computed from the same
indices and tables the decoder sees, so ``decode(encode(x).data)`` reproduces it bit-exactly
(on the same machine and library versions, §6.4).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch

from ..bitstream.format import LicHeader, layout, pack, unpack
from ..entropy_coder import bytes_to_words, decode_z, encode_z, words_to_bytes, z_bits
from ..errors import CancelledError, LicError, LicFormatError, ModelNotFoundError
from ..image.tensor import crop, pad_to_multiple, to_tensor, to_uint8
from ..quantizer.base import build_quantizer
from ..rate.gain import quantize_slider
from ..transform.hific import PAD_MULTIPLE, HificConfig, HificModel, count_parameters, get_config
from .base import Codec, DecodeResult, EncodeParams, EncodeResult, Inspection, ProgressFn
from .registry import register_codec

MODEL_NAME = "hific-small"
_REPO_ROOT = Path(__file__).resolve().parents[2]
UNAVAILABLE_REASON = "no trained HiFiC weights in weights/ (GPU training pending)"


def weights_dir() -> Path:
    """``$LIC_WEIGHTS_DIR`` or ``<repo>/weights``."""
    env = os.environ.get("LIC_WEIGHTS_DIR")
    return Path(env) if env else _REPO_ROOT / "weights"


def weights_path(name: str = MODEL_NAME) -> Path:
    return weights_dir() / f"{name}.safetensors"


def state_hash(state_dict: dict) -> bytes:
    """8-byte model id (``lic_core.weights.weights_hash`` when available, same idea otherwise)."""
    try:
        from ..weights import weights_hash  # type: ignore

        return bytes(weights_hash(state_dict))[:8]
    except ImportError:
        h = hashlib.sha256()
        for k in sorted(state_dict):
            t = state_dict[k].detach().cpu().contiguous()
            h.update(k.encode())
            h.update(str(t.dtype).encode())
            h.update(t.numpy().tobytes())
        return h.digest()[:8]


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    try:
        from ..weights import load_weights  # type: ignore

        return load_weights(path)
    except ImportError:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
        return sd, meta


def load_hific(name: str = MODEL_NAME, path: Optional[Path] = None) -> HificModel:
    """A trained HiFiC model from ``weights/<name>.safetensors`` (ModelNotFoundError if missing).

    The config is read from the file's metadata (``"config"`` JSON) when present.  fp16 tensors
    are widened to fp32; float64 coding tables (z pmfs) are kept as stored.
    """
    path = Path(path) if path else weights_path(name)
    if not path.is_file():
        raise ModelNotFoundError(f"HiFiC weights not found: {path} (GPU training pending)")
    sd, meta = _read_safetensors(path)
    cfg_raw = meta.get("config") if isinstance(meta, dict) else None
    if isinstance(cfg_raw, str):
        cfg_raw = json.loads(cfg_raw)
    config = HificConfig.from_dict(cfg_raw) if isinstance(cfg_raw, dict) else get_config(name)
    model = HificModel(config)
    card = meta.get("card") if isinstance(meta, dict) else None
    if isinstance(card, str):
        card = json.loads(card)
    model.card = card if isinstance(card, dict) else {}  # model card (provenance) for describe()
    sd = {k: (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v) for k, v in sd.items()}
    try:
        model.load_state_dict(sd)
    except RuntimeError as exc:
        raise ModelNotFoundError(f"HiFiC weights {path.name} do not match the model: "
                                 f"{str(exc).splitlines()[0]}") from None
    return model.eval()


@contextmanager
def _reference_mode() -> Iterator[None]:
    """CPU float32 with deterministic kernels (METHODS §6.4 "reference mode"); restored after."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.no_grad():
            yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def _progress(progress: Optional[ProgressFn], f: float, msg: str) -> None:
    if progress is not None and progress(f, msg) is False:
        raise CancelledError("cancelled")


class HificCodec(Codec):
    """HiFiC with one model for all rates (slider u in [0, 1]); GAN decoder; round quantizer."""

    name = MODEL_NAME
    family = "learned"
    rate_label = "rate slider u"
    rate_range = (0.0, 1.0)
    default_rate = 0.5
    rate_increasing = True
    quantizers = ("round",)
    decoders = ("gan",)
    file_extension = ".lic"

    def __init__(self, model: Optional[HificModel] = None, model_name: str = MODEL_NAME) -> None:
        """``model`` injects an in-memory model (tests: a random tiny model); otherwise the
        trained weights are loaded from ``weights/<model_name>.safetensors`` on first use."""
        self.model_name = model_name
        self._model: Optional[HificModel] = None
        self._hash: Optional[bytes] = None
        self._injected = model is not None
        if model is not None:
            self._set_model(model)

    # ------------------------------------------------------------------------------ model
    def _set_model(self, model: HificModel) -> None:
        # device only: a dtype cast would also turn the float64 z pmf tables into float32
        model = model.to(device="cpu").eval()
        model.entropy_bottleneck.tables()  # make sure the z tables exist before hashing
        self._model = model
        self._hash = state_hash(model.state_dict())
        self._tables = model.entropy_bottleneck.tables()

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
                             "variant": "small HiFiC (METHODS §4.4), gain units for the slider",
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
        return d

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
        _progress(progress, 0.0, "analysis")
        x = to_tensor(image)
        xp, (h, w) = pad_to_multiple(x, PAD_MULTIPLE)
        pmf, off, length = self._tables
        eb = model.entropy_bottleneck
        with _reference_mode():
            g = model.gain_vectors(torch.tensor([u], dtype=torch.float32))
            y_bar = model.encoder(xp) * g["G"]
            z_bar = model.h_a(y_bar) * g["H"]
            med = eb.medians().view(1, -1, 1, 1)
            v = torch.round(z_bar - med).to(torch.int64)
            lo = torch.as_tensor(off).view(1, -1, 1, 1)
            hi = lo + torch.as_tensor(length).view(1, -1, 1, 1) - 1
            v = torch.maximum(torch.minimum(v, hi), lo)  # what the z decoder will return
            _progress(progress, 0.3, "coding z")
            z_data, z_clamped = encode_z(v[0].numpy(), pmf, off, length)
            z_hat = v.to(torch.float32) + med
            means, scales = model.entropy_parameters(z_hat, g["H_inv"])
            B, C, hy, wy = means.shape
            sc = scales.reshape(1, C, -1)
            idx = quant.quantize((y_bar - means).reshape(1, C, -1), sc)
            _progress(progress, 0.5, "coding y")
            import constriction

            enc = constriction.stream.queue.RangeEncoder()
            y_clamped = quant.encode(enc, idx, sc)
            y_data = words_to_bytes(enc.get_compressed())
            y_hat_bar = means + quant.dequantize(idx).reshape(means.shape)
            _progress(progress, 0.7, "GAN synthesis")
            x_hat = model.generator(y_hat_bar * g["G_inv"])
            recon = to_uint8(crop(x_hat, h, w))
        header = LicHeader(model=self.model_name, weights_hash=self._hash, decoder="gan",
                           quantizer=quant.name, quantizer_params=quant.params(), rate_u16=code,
                           height=h, width=w, padded_height=int(xp.shape[-2]),
                           padded_width=int(xp.shape[-1]))
        data = pack(header, [z_data, y_data])
        t_enc = time.perf_counter() - t0
        bits_y = quant.bits(idx, sc).reshape(C, hy, wy).numpy()
        bits_z = z_bits(v[0].numpy(), pmf, off, length)
        lay = layout(data)
        insp = Inspection(
            y_hat=y_hat_bar[0].numpy(), means=means[0].numpy(), scales=scales[0].numpy(),
            bits_y=bits_y, bits_z=bits_z, channel_groups=[C],
            group_bits={"y": float(bits_y.sum()), "z": float(bits_z.sum())},
            header_bytes=lay.header_bytes, z_bytes=len(z_data), y_bytes=len(y_data),
            estimated_bits=float(bits_y.sum() + bits_z.sum()),
            clamped_symbols=int(z_clamped + y_clamped), extras={"u": u})
        _progress(progress, 1.0, "done")
        used = EncodeParams(rate=u, quantizer=quant.name, quantizer_params=quant.params(),
                            decoder="gan", seed=params.seed, extra=dict(params.extra))
        return EncodeResult(data=data, reconstruction=recon, bpp=8.0 * len(data) / (h * w),
                            params=used, codec=self.name, file_extension=self.file_extension,
                            timings={"encode": t_enc}, inspection=insp)

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
        ph, pw = header.padded_height, header.padded_width
        if ph % PAD_MULTIPLE or pw % PAD_MULTIPLE or ph - header.height >= PAD_MULTIPLE \
                or pw - header.width >= PAD_MULTIPLE:
            raise LicFormatError("corrupted .lic file (padded size is not the 64-grid of the image)")
        try:
            quant = build_quantizer(header.quantizer, **header.quantizer_params)
        except LicError as exc:
            raise LicFormatError(f"corrupted .lic file ({exc})") from None
        t0 = time.perf_counter()
        _progress(progress, 0.0, "decoding z")
        pmf, off, length = self._tables
        cfg = model.config
        eb = model.entropy_bottleneck
        import constriction

        with _reference_mode():
            g = model.gain_vectors(torch.tensor([header.rate], dtype=torch.float32))
            v = decode_z(sections[0], pmf, off, (cfg.N, ph // 64, pw // 64), length)
            z_hat = torch.from_numpy(v)[None].to(torch.float32) + eb.medians().view(1, -1, 1, 1)
            means, scales = model.entropy_parameters(z_hat, g["H_inv"])
            C = means.shape[1]
            sc = scales.reshape(1, C, -1)
            _progress(progress, 0.3, "decoding y")
            try:
                dec = constriction.stream.queue.RangeDecoder(
                    bytes_to_words(sections[1], what="y stream"))
                idx = quant.decode(dec, sc)
            except (AssertionError, ValueError, KeyError, RuntimeError) as exc:
                raise LicFormatError(f"corrupted .lic file (y stream cannot be decoded: {exc})") \
                    from None
            y_hat_bar = means + quant.dequantize(idx).reshape(means.shape)
            _progress(progress, 0.6, "GAN synthesis")
            x_hat = model.generator(y_hat_bar * g["G_inv"])
            recon = to_uint8(crop(x_hat, header.height, header.width))
        _progress(progress, 1.0, "done")
        info = {"model": header.model, "model_id": header.weights_hash.hex(), "decoder": "gan",
                "quantizer": header.quantizer, "rate": header.rate,
                "size": [header.height, header.width], "bytes": len(data),
                "lic_version": header.lic_version}
        return DecodeResult(reconstruction=recon, codec=self.name, info=info,
                            timings={"decode": time.perf_counter() - t0})


@register_codec(MODEL_NAME)
def _make_hific_small() -> HificCodec:
    return HificCodec()
