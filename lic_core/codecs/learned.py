"""The LGEM learned codec behind the common :class:`~lic_core.codecs.base.Codec` interface.

Pipeline (METHODS §6.3, docs/bitstream.md)::

    image ─► pad to 64 ─► g_a ─► y ──────────────────────────────► 10 (group, pass) steps
                              └► h_a ⊙H ─► round around medians ─► z section (Categorical/channel)
                                             └► ⊙H' ─► h_s ─► Φ_h ─┘        │ quantizer.quantize
                                                                            ▼ quantizer.encode
                                                                 y section (one RangeEncoder)
    .lic = header (model, weights hash, decoder, quantizer+params, rate u16, sizes) + [z, y] + CRC

Decoding runs the very same :meth:`LicModel.latent_passes` with a step that *decodes* instead of
quantizing, so the decoder's ŷ — and hence the image — equals the encoder's bit for bit on the
same machine (tests/test_codec_learned_*.py; separate processes in benchmarks/kodak_roundtrip.py).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..bitstream.format import LicHeader, pack, unpack
from ..entropy_coder import bytes_to_words, decode_z, encode_z, words_to_bytes, z_bits
from ..entropy_model.checkerboard import anchor_mask, scatter
from ..errors import CancelledError, LicError, LicFormatError, ModelNotFoundError
from ..image.tensor import crop, pad_to_multiple, to_tensor, to_uint8
from ..model import LicModel
from ..quantizer import build_quantizer
from ..quantizer.base import Quantizer
from ..rate.gain import quantize_slider, slider_from_code
from .base import Codec, DecodeResult, EncodeParams, EncodeResult, Inspection, ProgressFn
from .registry import register_codec

PAD_MULTIPLE = 64


def _report(progress: Optional[ProgressFn], frac: float, msg: str) -> None:
    if progress is not None:
        progress(frac, msg)


class _Timer:
    def __init__(self) -> None:
        self.t = {}

    def __call__(self, key: str):
        timer = self

        class _Ctx:
            def __enter__(self_inner):
                self_inner.t0 = time.perf_counter()

            def __exit__(self_inner, *exc):
                timer.t[key] = timer.t.get(key, 0.0) + time.perf_counter() - self_inner.t0

        return _Ctx()


def _z_symbols(model: LicModel, z_gained: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Integer z symbols relative to the medians, clamped to each channel's table support."""
    _, offset, length = model.prior.tables()
    med = model.prior.medians()[None, :, None, None]
    sym = torch.round(z_gained - med).to(torch.int64)
    lo = torch.as_tensor(offset)[None, :, None, None]
    hi = lo + torch.as_tensor(length)[None, :, None, None] - 1
    clamped = int(((sym < lo) | (sym > hi)).sum())
    return torch.maximum(torch.minimum(sym, hi), lo), clamped


def quantized_latents(model: LicModel, x: torch.Tensor, u: float, quantizer: Quantizer,
                      step_hook: Optional[Callable] = None) -> dict[str, Any]:
    """The real inference quantization of an image batch (no entropy coding).

    This is the one function ``compress()`` (through :meth:`LearnedCodec.encode`) and decoder
    fine-tuning (METHODS §1.5) share: z rounded around the medians, then the 10 sequential
    (group, pass) steps with ``quantizer``.  ``x`` must be padded to a multiple of 64.
    Returns ``{"y", "y_hat_gained", "y_hat", "means", "scales", "gains", "z_symbols", ...}``.
    """
    _, u = quantize_slider(u)
    with torch.no_grad():
        B = x.shape[0]
        gains = model._gains(u, B, x.device)
        y = model.g_a(x)
        z = model.h_a(y) * gains["H"]
        z_sym, z_clamped = _z_symbols(model, z)
        z_hat = z_sym.to(z.dtype) + model.prior.medians()[None, :, None, None]
        phi = model.hyper_features(z_hat, gains)

        def step(g, p, res, scale):
            idx = quantizer.quantize(res, scale)
            if step_hook is not None:
                step_hook(g, p, idx, scale)
            return quantizer.dequantize(idx)

        out = model.latent_passes(phi, gains, step, y=y)
    out.update({"y": y, "gains": gains, "z_symbols": z_sym, "z_clamped": z_clamped, "u": u,
                "y_hat": out["y_hat_gained"] / gains["G"]})
    return out


class LearnedCodec(Codec):
    """A :class:`LicModel` with weights, as a codec producing real ``.lic`` files."""

    family = "learned"
    rate_label = "rate (slider u)"
    rate_range = (0.0, 1.0)
    default_rate = 0.5
    rate_increasing = True
    quantizers = ("round", "deadzone", "rdoq", "tcq")
    file_extension = ".lic"

    def __init__(self, name: str, model: Optional[LicModel] = None,
                 weights_path: Optional[Path] = None, use_finetuned: bool = True,
                 finetuned_dir: Optional[Path] = None, diffusion: Any = None) -> None:
        self.name = name
        self._model = model
        self._weights_path = weights_path
        self._hash: Optional[bytes] = None
        self.use_finetuned = use_finetuned
        self._ft_dir = finetuned_dir
        self._ft_cache: dict[str, Any] = {}
        self._diffusion = diffusion  # a DiffusionDecoder (tests inject one); else loaded lazily
        self._meta: dict[str, Any] = getattr(model, "weights_meta", {}) if model else {}

    # -- decoders ---------------------------------------------------------------------------
    def _diffusion_path(self) -> Path:
        from ..models import weights_path

        return weights_path(self.name).with_name(f"{self.name}-diffusion.safetensors")

    @property
    def decoders(self) -> tuple[str, ...]:  # type: ignore[override]
        """"mse" always; "diffusion" when a trained diffusion decoder for this model exists."""
        if self._diffusion is not None or self._diffusion_path().is_file():
            return ("mse", "diffusion")
        return ("mse",)

    def diffusion_decoder(self):
        if self._diffusion is None:
            from ..decoder.diffusion import DiffusionDecoder

            self._diffusion = DiffusionDecoder.load(self._diffusion_path())
        return self._diffusion

    def _diffusion_decode(self, y_hat_gained: torch.Tensor, gains: dict, steps: int, seed: int,
                          progress: Optional[ProgressFn], lo: float, hi: float) -> torch.Tensor:
        """Blur-dissipated diffusion decode conditioned on ŷ and g_s's features (METHODS §3.3)."""
        dec = self.diffusion_decoder()
        y_hat = y_hat_gained * gains["G_inv"]
        feats = self.model.g_s.forward_features(y_hat)

        def cb(i, total, x0):
            _report(progress, lo + (hi - lo) * i / max(total, 1), f"diffusion step {i + 1}/{total}")

        return dec.decode(y_hat, feats, steps=steps, seed=seed, callback=cb, device=None)

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
        """(synthesis function (ŷ_G, gains) → x̂, weights hash for the header) for a quantizer.

        A decoder fine-tuned on this quantizer's real latents (``lic finetune``) replaces g_s and
        G' on both sides; its hash is mixed into the header hash (METHODS §1.5 pitfalls).
        """
        if not self.use_finetuned:
            return self.model.synthesize, self.weights_hash
        if quantizer not in self._ft_cache:
            from ..train.finetune import finetuned_path

            path = finetuned_path(self.name, quantizer, self._ft_dir)
            entry = None
            if path.is_file():
                import copy
                import hashlib

                from ..weights import load_weights

                state, meta = load_weights(path)
                g_s = copy.deepcopy(self.model.g_s)
                inv = copy.deepcopy(self.model.gains.inv_gain)
                g_s.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("g_s.")})
                inv.load_state_dict({k[len("gains.inv_gain."):]: v for k, v in state.items()
                                     if k.startswith("gains.inv_gain.")})
                g_s.eval()
                digest = hashlib.sha256(self.weights_hash + meta["weights_hash_bytes"]).digest()[:8]

                def synth(y_hat_gained, gains, g_s=g_s, inv=inv):
                    return g_s(y_hat_gained * inv(gains["u"]))

                entry = (synth, digest, path.name)
            self._ft_cache[quantizer] = entry
        entry = self._ft_cache[quantizer]
        if entry is None:
            return self.model.synthesize, self.weights_hash
        return entry[0], entry[1]

    def available(self) -> tuple[bool, str]:
        if self._model is not None:
            return True, ""
        from ..models import weights_path

        p = self._weights_path or weights_path(self.name)
        if not Path(p).is_file():
            return False, f"no weights for {self.name} (weights/{Path(p).name} is missing)"
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
        timer = _Timer()
        code, u = quantize_slider(params.rate)
        quantizer = build_quantizer(params.quantizer, **params.quantizer_params)
        H, W = image.shape[:2]
        _report(progress, 0.0, "analysis transform")
        import constriction

        with torch.no_grad(), timer("encode"):
            x, _ = pad_to_multiple(to_tensor(image), PAD_MULTIPLE)
            encoder = constriction.stream.queue.RangeEncoder()
            bits_steps: dict[tuple[int, int], torch.Tensor] = {}
            group_bits: dict[str, float] = {}
            clamped = [0]
            n_steps = 2 * len(model.config.groups)

            def hook(g, p, idx, scale):
                clamped[0] += quantizer.encode(encoder, idx, scale)
                b = quantizer.bits(idx, scale)
                bits_steps[(g, p)] = b
                group_bits[f"g{g}/{'anchor' if p == 0 else 'non-anchor'}"] = float(b.sum())
                _report(progress, 0.1 + 0.7 * (len(bits_steps) / n_steps),
                        f"coding group {g} {'anchors' if p == 0 else 'non-anchors'}")

            q = quantized_latents(model, x, u, quantizer, step_hook=hook)
            pmf, offset, length = model.prior.tables()
            z_np = q["z_symbols"][0].cpu().numpy()
            z_bytes, _ = encode_z(z_np, pmf, offset, length)
            y_bytes = words_to_bytes(encoder.get_compressed())
        _report(progress, 0.85, "synthesis transform")
        synth, w_hash = self._decoder(quantizer.name)
        with torch.no_grad(), timer("decode"):
            if params.decoder == "diffusion":
                # the encoder-side reconstruction is what the decoder will sample (same seed)
                x_hat = self._diffusion_decode(q["y_hat_gained"], q["gains"],
                                               int(params.diffusion_steps), int(params.seed),
                                               progress, 0.85, 0.99)
            else:
                x_hat = synth(q["y_hat_gained"], dict(q["gains"], u=torch.tensor([u])))
            recon = to_uint8(crop(x_hat, H, W))
        header = LicHeader(model=self.name, weights_hash=w_hash, decoder=params.decoder,
                           quantizer=quantizer.name, quantizer_params=quantizer.params(),
                           rate_u16=code, height=H, width=W,
                           padded_height=x.shape[-2], padded_width=x.shape[-1],
                           diffusion_steps=int(params.diffusion_steps), diffusion_seed=int(params.seed))
        data = pack(header, [z_bytes, y_bytes])
        header_bytes = len(data) - len(z_bytes) - len(y_bytes)
        inspection = self._inspection(q, bits_steps, group_bits, z_np, header_bytes,
                                      len(z_bytes), len(y_bytes), clamped[0] + q["z_clamped"])
        _report(progress, 1.0, "done")
        return EncodeResult(data=data, reconstruction=recon, bpp=8.0 * len(data) / (H * W),
                            params=params, codec=self.name, file_extension=self.file_extension,
                            timings=timer.t, inspection=inspection)

    def _inspection(self, q, bits_steps, group_bits, z_np, header_bytes, z_bytes, y_bytes,
                    clamped) -> Inspection:
        model = self.model
        y_hat = q["y_hat_gained"]
        B, M, h, w = y_hat.shape
        amask = anchor_mask(h, w)
        bits_y = torch.zeros(M, h, w, dtype=torch.float64)
        for (g, p), b in bits_steps.items():
            sl = model.context.group_slice(g)
            full = scatter(b.to(torch.float64), amask if p == 0 else ~amask,
                           shape=(1, sl.stop - sl.start, h, w))
            bits_y[sl] += full[0]
        pmf, offset, length = model.prior.tables()
        bz = z_bits(z_np, pmf, offset, length)
        est = float(bits_y.sum()) + float(bz.sum())
        group_bits = dict(group_bits)
        group_bits["z"] = float(bz.sum())
        return Inspection(
            y_hat=y_hat[0].cpu().numpy().astype(np.float32),
            means=q["means"][0].cpu().numpy().astype(np.float32),
            scales=q["scales"][0].cpu().numpy().astype(np.float32),
            bits_y=bits_y.numpy().astype(np.float32), bits_z=bz.astype(np.float32),
            channel_groups=list(model.config.groups), group_bits=group_bits,
            header_bytes=header_bytes, z_bytes=z_bytes, y_bytes=y_bytes,
            estimated_bits=est, clamped_symbols=clamped)

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
        cfg = model.config
        Hp, Wp = header.padded_height, header.padded_width
        if Hp % PAD_MULTIPLE or Wp % PAD_MULTIPLE or Hp < header.height or Wp < header.width \
                or Hp - header.height >= PAD_MULTIPLE or Wp - header.width >= PAD_MULTIPLE:
            raise LicFormatError("corrupted .lic file (inconsistent image and padded sizes)")
        try:
            quantizer = build_quantizer(header.quantizer, **header.quantizer_params)
        except LicError as exc:
            raise LicFormatError(f"corrupted .lic file ({exc})") from None
        u = slider_from_code(header.rate_u16)
        timer = _Timer()
        import constriction

        _report(progress, 0.0, "decoding hyper-latent")
        with torch.no_grad(), timer("decode"):
            gains = model._gains(u, 1, "cpu")
            pmf, offset, length = model.prior.tables()
            hz, wz = Hp // 64, Wp // 64
            z_sym = decode_z(sections[0], pmf, offset, (cfg.hyper_N, hz, wz), length)
            z_hat = torch.from_numpy(z_sym)[None].to(torch.float32) + \
                model.prior.medians()[None, :, None, None]
            phi = model.hyper_features(z_hat, gains)
            words = bytes_to_words(sections[1], what="y stream")
            try:
                ydec = constriction.stream.queue.RangeDecoder(words)
            except Exception as exc:  # noqa: BLE001 — constriction raises several types
                raise LicFormatError(f"corrupted .lic file (y stream: {exc})") from None
            n_steps = 2 * len(cfg.groups)
            done = [0]

            def step(g, p, res, scale):
                try:
                    idx = quantizer.decode(ydec, scale)
                except (LicError, CancelledError):
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise LicFormatError(f"corrupted .lic file (y stream: {exc})") from None
                done[0] += 1
                _report(progress, 0.1 + 0.7 * done[0] / n_steps, f"decoded group {g}")
                return quantizer.dequantize(idx)

            out = model.latent_passes(phi, gains, step)
            try:
                exhausted = ydec.maybe_exhausted()
            except Exception:  # noqa: BLE001
                exhausted = False
            if not exhausted:
                raise LicFormatError("corrupted .lic file (y stream does not end where the model says)")
            _report(progress, 0.85, "synthesis transform")
            if dec_kind == "diffusion":
                x_hat = self._diffusion_decode(out["y_hat_gained"], gains,
                                               header.diffusion_steps or 25, header.diffusion_seed,
                                               progress, 0.85, 0.99)
            else:
                x_hat = synth(out["y_hat_gained"], dict(gains, u=torch.tensor([u])))
            recon = to_uint8(crop(x_hat, header.height, header.width))
        _report(progress, 1.0, "done")
        info = {f: getattr(header, f) for f in ("model", "decoder", "quantizer", "quantizer_params",
                                                  "height", "width", "diffusion_steps",
                                                  "diffusion_seed", "lic_version")}
        info.update(rate=u, weights_hash=header.weights_hash.hex(),
                    bpp=8.0 * len(data) / (header.height * header.width), bytes=len(data))
        insp = Inspection(
            y_hat=out["y_hat_gained"][0].numpy(), means=out["means"][0].numpy(),
            scales=out["scales"][0].numpy(), bits_y=np.zeros(0, np.float32),
            bits_z=np.zeros(0, np.float32), channel_groups=list(cfg.groups), group_bits={},
            header_bytes=len(data) - len(sections[0]) - len(sections[1]),
            z_bytes=len(sections[0]), y_bytes=len(sections[1]), estimated_bits=float("nan"))
        return DecodeResult(reconstruction=recon, codec=self.name, info=info, timings=timer.t,
                            inspection=insp)


def evaluate_model(model: LicModel, images: list[np.ndarray], u_values: list[float],
                   quantizer: str = "round") -> list[dict[str, float]]:
    """Real-entropy-coded bpp and PSNR of an in-memory model (training validation)."""
    from ..metrics.psnr import psnr

    codec = LearnedCodec(model.config.name, model=model)
    was_training = model.training
    model.eval()
    model.prior.update_tables()
    rows = []
    try:
        for u in u_values:
            bpps, psnrs = [], []
            for img in images:
                r = codec.encode(img, EncodeParams(rate=u, quantizer=quantizer))
                bpps.append(r.bpp)
                psnrs.append(psnr(img, r.reconstruction))
            rows.append({"u": u, "bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))})
    finally:
        model.train(was_training)
    return rows


def _register_shipped() -> None:
    """Register the product codec and any shipped preview (available() says which can run)."""
    for name in ("lic-lgem", "lic-lgem-preview"):
        register_codec(name)(lambda name=name: LearnedCodec(name))


_register_shipped()
