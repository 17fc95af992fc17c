"""The LGEM learned codec behind the common :class:`~lic_core.codecs.base.Codec` interface.

A thin adapter (docs/methods.md §6.3, docs/bitstream.md)::

    image ─► pad to 64 ─► g_a ─► y ─► ⊙G ─► ȳ ──┐
                              └► h_a ⊙H ─► z̄ ───┴► HyperpriorLatentCodec (lic_core.latent_codecs)
                                                    z section, y section (10 group/pass steps)
    ŷ⊙G ─► g_s (or a fine-tuned g_s, the GAN decoder, the diffusion decoder) ─► crop ─► image
    .lic = header (model, weights hash, decoder, quantizer+params, rate u16, sizes,
           check values) + [z, y] + CRC

Everything about coding latents lives in :mod:`lic_core.latent_codecs`; this module adds the
network's transforms, the header, the weights-hash check and the choice of decoder.

Both sides run the exact arithmetic (format v2, :mod:`lic_core.exact`): the entropy parameters
through :class:`~lic_core.latent_codecs.LgemExactParameters`, the MSE picture (the model's g_s or
a fine-tuned one) and the GAN picture (:mod:`lic_core.decoder.gan`: g_s retrained with HiFiC's
objective) through :class:`~lic_core.models.lgem_exact.ExactSynthesis`, the diffusion picture
through :mod:`lic_core.decoder.diffusion.exact` — the encoder's reconstruction is the very
function the decoder runs, and the file records CRC32s of every step's symbols and of the pictures
it made, which the decoder checks (:class:`~lic_core.errors.LicMismatchError` on a difference).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from ..bitstream.checks import picture_crc, picture_mismatch
from ..bitstream.format import LicHeader, PictureCheck, pack, unpack
from ..decoder.bound import BoundDecoderFile, diffusion_trained_on
from ..decoder.gan import gan_base_hash
from ..devices import coding_device
from ..errors import LicError, LicFormatError, ModelNotFoundError
from ..exact.cache import cached
from ..image.tensor import PaddedImage, crop_hwc
from ..latent_codecs import (
    CheckerboardGroupedCodec,
    FactorizedZCodec,
    GainedLatent,
    GroupedEntropyParameters,
    HyperpriorLatentCodec,
    LatentCoding,
    LgemExactParameters,
)
from ..memory import release_free_memory
from ..models.lgem import LicModel
from ..models.lgem_exact import ExactSynthesis
from ..paths import diffusion_weights_path, finetuned_path, gan_weights_path, weights_path
from ..quantizer import Quantizer, build_quantizer
from ..rate.gain import quantize_slider
from ..transform.tiling import analysis_tiled
from ..weights import read_weights_hash
from .base import DEFAULT_DIFFUSION_STEPS, DecodeResult, EncodeParams, EncodeResult, ProgressFn
from .frozen import frozen_for
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
from .registry import PREFERRED_LEARNED, register_codec

#: ``on_x0(step_index, total_steps, x0_picture)`` with an H×W×3 uint8 picture
X0Fn = Callable[[int, int, np.ndarray], None]


def latent_codec(model: LicModel,
                 engine: Optional[GroupedEntropyParameters] = None) -> HyperpriorLatentCodec:
    """The LGEM latent pipeline: factorized z, then y in 5 groups × 2 checkerboard passes with
    parameters from ``engine`` (default: the exact engine, :class:`LgemExactParameters`; the
    float engine is for training-time analysis and benchmarks only)."""
    return HyperpriorLatentCodec(FactorizedZCodec(model.prior),
                                 CheckerboardGroupedCodec(engine or LgemExactParameters(model)))


def _analyse(model: LicModel, x: Union[torch.Tensor, PaddedImage],
             gains: dict) -> tuple[GainedLatent, torch.Tensor]:
    """(ȳ = g_a(x)⊙G, z̄ = h_a(y)⊙H) — encoder-side float work (the file carries its result).

    ``x`` is the padded float image or a :class:`~lic_core.image.tensor.PaddedImage` (the uint8
    photo, read window by window).  g_a runs in tiles with receptive-field halos
    (:func:`lic_core.transform.tiling.analysis_tiled`: bounded memory for any photo, the same y as
    one call on the whole image); ȳ stays y (float32) and G until each step gathers its part
    (:class:`~lic_core.latent_codecs.GainedLatent`: the same products, no float64 copy)."""
    net = getattr(model.g_a, "net", None)
    if isinstance(net, torch.nn.Sequential):
        y = analysis_tiled(net, x)
    else:
        y = model.g_a(x.full() if isinstance(x, PaddedImage) else x)
    release_free_memory(y.numel() * 8)  # g_a's tile temporaries (a big photo's)
    G, H = gains["G"].to(y.device), gains["H"].to(y.device)
    return GainedLatent(y, G), model.h_a(y).to(H.dtype) * H


def exact_synthesis(model: LicModel, device="cpu") -> ExactSynthesis:
    """The model's own g_s on the exact path, built once per weights and device."""
    dev = torch.device(device)
    return cached(model, f"synthesis:{dev}", (model.g_s, model.gains.inv_gain),
                  lambda: ExactSynthesis.from_model(model, device=dev))


def quantized_latents(model: LicModel, x: torch.Tensor, u: float, quantizer: Quantizer,
                      engine: Optional[GroupedEntropyParameters] = None) -> dict[str, Any]:
    """The real inference quantization of an image batch (no entropy coding).

    The one path ``compress()`` and decoder fine-tuning (docs/methods.md §4.5) share: the latent
    codec's steps with ``code=False`` on the exact engine (unless ``engine`` says otherwise).  ``x``
    must be padded to a multiple of 64.  Returns ``{"y_hat_gained", "y_hat", "means", "scales",
    "gains", "z_symbols", "u", ...}`` (float64 on the exact path).
    """
    code, u = quantize_slider(u)
    engine = engine or LgemExactParameters(model)
    with torch.no_grad():
        gains = engine.gains_for_code(code)
        y_bar, z_bar = _analyse(model, x, gains)
        c = latent_codec(model, engine).compress(y_bar, z_bar, gains, quantizer, code=False)
    return {"y_hat_gained": c.y.y_hat_gained, "y_hat": c.y.y_hat_gained / gains["G"],
            "means": c.y.means, "scales": c.y.scales, "gains": gains, "z_symbols": c.z_symbols,
            "clamped": c.clamped, "u": u, "code": code}


class LearnedCodec(LicCodec):
    """A :class:`LicModel` with weights, as a codec producing real ``.lic`` files."""

    rate_label = "rate (slider u)"
    quantizers = ("round", "deadzone", "rdoq", "tcq")

    def __init__(self, name: str, model: Optional[LicModel] = None,
                 weights_path: Optional[Path] = None, use_finetuned: bool = True,
                 finetuned_dir: Optional[Path] = None, diffusion: Any = None,
                 device: Optional[str] = None, use_tcq_tables: bool = True,
                 gan_dir: Optional[Path] = None, folder: Optional[Path] = None) -> None:
        """``diffusion`` injects a diffusion decoder; ``device`` ("cpu" default, "cuda") is where
        the exact arithmetic runs — the bits are the same either way. ``use_tcq_tables=False``
        encodes TCQ with §4.4's Gaussian tables even where designed ones ship (decoding always
        follows the file). ``gan_dir``: where ``<model>-gan.safetensors`` is looked for (default
        the weights folder; the campaign's export measures one in its export folder). ``folder``:
        where all files of these weights are (a frozen codec, :mod:`.frozen`)."""
        self.name = name
        self.device = coding_device(device)
        self._model = model
        self._dir = folder
        self._weights_path = weights_path or (folder and Path(folder) / f"{name}.safetensors")
        self._hash: Optional[bytes] = None
        self.use_finetuned = use_finetuned
        self._ft_dir = finetuned_dir or folder
        self._ft_cache: dict[str, Any] = {}
        self.use_tcq_tables = use_tcq_tables
        self._tcq_doc: Any = False  # not looked up yet
        #: quantizer → fine-tuned decoder file ignored because it was tuned on other weights
        self.stale_finetuned: dict[str, str] = {}
        self._diffusion = diffusion  # a DiffusionDecoder (tests inject one); else loaded lazily
        self._gan_dir = gan_dir or folder
        # (file's mtime, usable) of the GAN decoder file as last looked up; its exact synthesis
        # decoder files bound to the codec weights they learned on (lic_core.decoder.bound)
        self._gan_bound = BoundDecoderFile(gan_base_hash)
        self._diffusion_bound = BoundDecoderFile(diffusion_trained_on)
        self._gan_entry: Optional[tuple[ExactSynthesis, bytes]] = None
        self._meta: dict[str, Any] = getattr(model, "weights_meta", {}) if model else {}

    # -- decoders ---------------------------------------------------------------------------
    @property
    def decoders(self) -> tuple[str, ...]:  # type: ignore[override]
        """"mse" always; "gan" and "diffusion" when such a decoder learned on these codec weights
        is here (one of other weights: :attr:`stale_gan`, ``_diffusion_bound.stale``)."""
        out = ["mse"]
        if self.gan_usable():
            out.append("gan")
        if self._diffusion is not None or self._diffusion_bound.usable(
                diffusion_weights_path(self.name, self._dir), self._base_hash_hex()):
            out.append("diffusion")
        return tuple(out)

    @property
    def stale_gan(self) -> str:
        """The GAN decoder file ignored because it learned on other codec weights ("" if none)."""
        return self._gan_bound.stale

    def _gan_file(self) -> Path:
        return gan_weights_path(self.name, self._gan_dir)

    def _base_hash_hex(self) -> Optional[str]:
        """These codec weights' hash, without loading them when they are not loaded yet."""
        if self._model is not None or self._hash is not None:
            return self.weights_hash.hex()
        p = Path(self._weights_path or weights_path(self.name))
        return read_weights_hash(p) if p.is_file() else None

    def gan_usable(self) -> bool:
        """A GAN decoder file exists and was trained on these codec weights (its metadata names
        them); one trained on other weights is named by :attr:`stale_gan` and never used."""
        ok = self._gan_bound.usable(self._gan_file(), self._base_hash_hex())
        if self._gan_bound.changed:
            self._gan_entry = None
        return ok

    def gan_decoder(self) -> tuple[ExactSynthesis, bytes]:
        """(exact synthesis of the GAN decoder, the header hash its files name)."""
        if not self.gan_usable():
            why = (f"{self.stale_gan} was trained on other weights" if self.stale_gan
                   else f"{self._gan_file().name} is missing")
            raise LicError(f"{self.name} has no GAN decoder for these weights here ({why})")
        if self._gan_entry is None:
            from ..decoder.gan import load_gan_synthesis

            synth, digest = load_gan_synthesis(self.model, self._gan_file(), self.weights_hash)
            self._gan_entry = (synth.to(self.device), digest)
        return self._gan_entry

    def _gan_hash(self) -> Optional[bytes]:
        """The header hash of GAN files here (None without a usable GAN decoder), cheaply."""
        if not self.gan_usable():
            return None
        if self._gan_entry is not None:
            return self._gan_entry[1]
        from ..decoder.gan import gan_header_hash

        return gan_header_hash(self._gan_file(), self.weights_hash)

    def diffusion_steps(self, params: EncodeParams) -> int:
        """The step count a file gets: the user's, else the diffusion decoder's default (its
        config) when it is loaded or asked for, else :data:`DEFAULT_DIFFUSION_STEPS`."""
        if params.diffusion_steps:
            return int(params.diffusion_steps)
        if self._diffusion is not None or params.decoder == "diffusion":
            return int(self.diffusion_decoder().config.steps)
        return DEFAULT_DIFFUSION_STEPS

    def diffusion_decoder(self):
        if self._diffusion is None:
            from ..decoder.diffusion import DiffusionDecoder

            self._diffusion = DiffusionDecoder.load(diffusion_weights_path(self.name, self._dir))
        return self._diffusion

    def _pictures(self, decoder: str, synth: ExactSynthesis, y_hat_gained: torch.Tensor,
                  code: int, steps: int, seed: int, size: tuple[int, int],
                  progress: Optional[ProgressFn], on_x0: Optional[X0Fn] = None,
                  tiling: Optional[tuple[int, int]] = None
                  ) -> tuple[np.ndarray, list[PictureCheck]]:
        """(H×W×3 uint8 picture of ``decoder``, the picture checks of every picture made).

        "mse": the exact g_s (docs/methods.md §2.1); "gan": the same exact path with the GAN
        decoder's g_s (``synth`` is then the GAN decoder's); "diffusion": exact blur-dissipated
        diffusion conditioned on the exact g_s (docs/methods.md §7.3), whose x̂_mse context is the
        MSE picture. ``on_x0(i, steps, picture)`` receives each diffusion step's x̂0 (cropped H×W×3
        uint8). ``tiling`` (T, O): a picture whose padded size exceeds one T×T tile is sampled by
        the tiled sampler (:mod:`lic_core.decoder.diffusion.tiles`; no per-step x̂0 then); None:
        the whole-picture sampler."""
        h, w = size
        if decoder == "diffusion" and tiling is not None and self._tiled(y_hat_gained, tiling):
            from ..decoder.diffusion.exact import exact_diffusion

            def cb_t(i, total):
                report(progress, 0.85 + 0.14 * i / max(total, 1), f"diffusion step {i + 1}/{total}")

            # the MSE picture only as its check value (mse="crc"): the tiled sampler then holds
            # no whole MSE picture beside its own (3 bytes per pixel, issue 28)
            out, mse_crc = exact_diffusion(self.diffusion_decoder(), self.device).decode_tiled(
                synth, y_hat_gained, code, steps, seed, tiling[0], tiling[1], (h, w), cb_t,
                mse="crc")
            checks = [PictureCheck("diffusion", int(steps), int(seed), picture_crc(out)),
                      PictureCheck("mse", 0, 0, mse_crc)]
            return out, checks
        if decoder == "diffusion":
            from ..decoder.diffusion.exact import exact_diffusion

            def cb(i, total):
                report(progress, 0.85 + 0.14 * i / max(total, 1), f"diffusion step {i + 1}/{total}")

            x0_cb = None
            if on_x0 is not None:
                def x0_cb(i, total, pic):
                    on_x0(i, total, crop_hwc(pic, h, w))

            pic, mse = exact_diffusion(self.diffusion_decoder(), self.device).decode(
                synth, y_hat_gained, code, steps, seed, cb, x0_cb)
            out = crop_hwc(pic, h, w)
            checks = [PictureCheck("diffusion", int(steps), int(seed), picture_crc(out))]
            if mse is not None:
                checks.append(PictureCheck("mse", 0, 0, picture_crc(crop_hwc(mse, h, w))))
            return out, checks
        out = synth.picture_hwc(y_hat_gained, code, (h, w))
        return out, [PictureCheck("gan" if decoder == "gan" else "mse", 0, 0, picture_crc(out))]

    @staticmethod
    def _tiled(y_hat_gained: torch.Tensor, tiling: Optional[tuple[int, int]]) -> bool:
        """Whether the diffusion picture of these latents is the tiled sampler's: a tiling is
        given and the padded picture does not fit one tile."""
        from ..decoder.diffusion.tiles import fits_one_tile

        return tiling is not None and not fits_one_tile(
            16 * y_hat_gained.shape[-2], 16 * y_hat_gained.shape[-1], tiling[0])

    @staticmethod
    def _decode_tiling(header: LicHeader, dec_kind: str) -> Optional[tuple[int, int]]:
        """The sampler a file's diffusion picture is decoded with: the tiling the file records
        (format v3); none (the whole-picture sampler, with its memory check) for a file that
        carries a diffusion picture check without one — the check is of that sampler's picture
        (files written before issue 28's tiled sampler, and pictures that fit one tile); a file
        that carries no diffusion picture (MSE, GAN), decoded with the diffusion decoder: the
        product's tiling (nothing pins its picture, and the tiled sampler holds any size).

        Decided by the checks the file carries, not by its header's decoder: ``lic decompress
        --decoder diffusion`` rewrites that field, and the CLI and the studio (which passes
        ``decoder=``) must give the same picture of the same file."""
        from ..decoder.diffusion.tiles import sampler_tiling

        if dec_kind != "diffusion":
            return None
        if header.diffusion_tile:
            return header.diffusion_tile, header.diffusion_overlap
        if any(p.decoder == "diffusion" for p in header.picture_crcs):
            return None
        return sampler_tiling()

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
            model = self.model  # first: loading the weights brings their metadata (_meta)
            # the hash stored in the file is its identity (files and fine-tuned decoders name
            # it); recomputing it could differ (it mixes in the format version of its day)
            h = self._meta.get("weights_hash_bytes") if self._meta else None
            if h is None:
                from ..weights import weights_hash

                h = weights_hash(model.state_dict())
            self._hash = h
        return self._hash

    def engine(self) -> LgemExactParameters:
        """The exact entropy-parameter engine both sides use (built once per weights)."""
        return LgemExactParameters(self.model, self.device)

    def _decoder(self, quantizer: str) -> tuple[ExactSynthesis, bytes]:
        """(exact MSE synthesis, weights hash for the header) for a quantizer: a decoder
        fine-tuned on this quantizer's latents when one exists (docs/methods.md §4.5)."""
        base = (exact_synthesis(self.model, self.device), self.weights_hash)
        if not self.use_finetuned:
            return base
        if quantizer not in self._ft_cache:
            path = finetuned_path(self.name, quantizer, self._ft_dir)
            entry = None
            if path.is_file():
                from ..decoder.finetuned import finetuned_base_hash, load_finetuned_synthesis

                tuned_on = finetuned_base_hash(path)
                if tuned_on is not None and tuned_on != self.weights_hash.hex():
                    # tuned on other weights of this codec (the campaign moved on): its g_s
                    # would decode these latents badly, so the base decoder stays in charge
                    self.stale_finetuned[quantizer] = path.name
                else:
                    synth, digest = load_finetuned_synthesis(self.model, path, self.weights_hash)
                    entry = (synth.to(self.device), digest)
            self._ft_cache[quantizer] = entry
        entry = self._ft_cache[quantizer]
        return entry if entry is not None else base

    def _encoder_synthesis(self, quantizer: str, decoder: str) -> tuple[ExactSynthesis, bytes]:
        """(exact g_s, header hash) a new file is made with: the decoder tuned for the quantizer
        for MSE files; the base g_s for diffusion files, because the diffusion decoder learned
        on the base g_s's features (train/diffusion.py), which a tuned g_s moves; the GAN decoder
        and its hash for GAN files."""
        if decoder == "gan":
            return self.gan_decoder()
        if decoder == "diffusion":
            return exact_synthesis(self.model, self.device), self.weights_hash
        return self._decoder(quantizer)

    def _finetuned_hash(self, quantizer: str) -> bytes:
        """The header hash of an MSE file with this quantizer (diffusion files name the base
        weights), without building any exact network."""
        if not self.use_finetuned:
            return self.weights_hash
        cached_entry = self._ft_cache.get(quantizer)
        if cached_entry is not None:
            return cached_entry[1]
        path = finetuned_path(self.name, quantizer, self._ft_dir)
        if not path.is_file():
            return self.weights_hash
        return self._decoder(quantizer)[1]

    def _named_synthesis(self, header: LicHeader) -> tuple[Optional[ExactSynthesis], str]:
        """(the exact g_s a file's header hash names, which one: "base" | "tuned" | "gan").

        Every one of them implies these codec weights (their hashes mix in the base hash), so
        the latents decode; a hash naming none of them is refused with one line."""
        if header.quantizer not in self.quantizers:
            synth, w_hash = None, self.weights_hash
        else:
            synth, w_hash = self._decoder(header.quantizer)
        named = "tuned" if w_hash != self.weights_hash else "base"
        if header.weights_hash != w_hash and header.weights_hash == self.weights_hash:
            # made with the base g_s (a diffusion file, one written before a decoder tuned for
            # this quantizer was installed, or by an encoder told not to use it): the header
            # names the base weights exactly and they are still here
            synth, w_hash, named = exact_synthesis(self.model, self.device), self.weights_hash, "base"
        elif header.weights_hash != w_hash and header.weights_hash == self._gan_hash():
            synth, w_hash = self.gan_decoder()
            named = "gan"
        elif header.weights_hash != w_hash and header.decoder == "gan":
            here = self._gan_hash()
            raise LicFormatError(
                f"weights mismatch: file made with a {self.name} GAN decoder "
                f"({header.weights_hash.hex()}) on other weights or of another training; here "
                + (f"the GAN decoder's files name {here.hex()}" if here is not None else
                   f"{self.stale_gan} was trained on other weights" if self.stale_gan else
                   f"there is no GAN decoder ({self._gan_file().name})"))
        if header.weights_hash != w_hash:
            raise LicFormatError(
                f"weights mismatch: file made with {self.name} weights {header.weights_hash.hex()}, "
                f"installed weights are {w_hash.hex()}")
        return synth, named

    def available(self) -> tuple[bool, str]:
        p = Path(self._weights_path or weights_path(self.name))
        if self._model is None and not p.is_file():
            return False, f"no weights for {self.name} ({p.name} is missing)"
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
            hashes = {q: self._finetuned_hash(q) for q in self.quantizers}
            ft = {q: h.hex() for q, h in hashes.items() if h != self.weights_hash}
            if ft:
                info["finetuned_decoders"] = ft
            if self.stale_finetuned:
                info["stale_finetuned_decoders"] = dict(self.stale_finetuned)
        if self.gan_usable():
            info["gan_decoder"] = {"file": self._gan_file().name, "hash": self._gan_hash().hex()}
        elif self.stale_gan:
            info["stale_gan_decoder"] = self.stale_gan
        if "diffusion" not in info["decoders"] and self._diffusion_bound.stale:
            info["stale_diffusion_decoder"] = self._diffusion_bound.stale
        return info

    # -- encode -----------------------------------------------------------------------------
    def tcq_rate_tables(self) -> Optional[dict]:
        """The designed TCQ rate tables shipped for these weights (their JSON document without
        the counts), or None: §4.4's Gaussian tables are used (:mod:`~lic_core.quantizer.
        tcq_designed`)."""
        if not self.use_tcq_tables:
            return None
        if self._tcq_doc is False:
            from ..quantizer.tcq_designed import shipped_table_for

            doc = shipped_table_for(self.name, self.weights_hash.hex(), self._dir)
            self._tcq_doc = None if doc is None else {k: v for k, v in doc.items()
                                                      if k != "counts"}
        return self._tcq_doc

    def encode_quantizer(self, name: str, params: Optional[dict] = None) -> Quantizer:
        """The quantizer an encode uses: TCQ without an explicit ``tables`` parameter codes with
        the designed tables shipped for these weights, when there are some, in the stream order
        they were designed for (``tables=0`` asks for §4.4's Gaussian tables in channel order);
        every other choice is built as given."""
        params = dict(params or {})
        if name == "tcq" and "tables" not in params:
            doc = self.tcq_rate_tables()
            if doc is not None and float(params.get("delta_u", doc["delta_u"])) == doc["delta_u"]:
                params["tables"] = int(doc["id"])
                if doc.get("order") and "order" not in params:  # the order they were designed for
                    params["order"] = int(doc["order"])
        return build_quantizer(name, **params)

    def encode(self, image: np.ndarray, params: EncodeParams,
               progress: Optional[ProgressFn] = None,
               on_x0: Optional[X0Fn] = None) -> EncodeResult:
        """``on_x0``: see :meth:`decode` (the diffusion decoder's per-step x̂0)."""
        if params.decoder not in self.decoders:
            stale = {"gan": self.stale_gan, "diffusion": self._diffusion_bound.stale}.get(params.decoder)
            stale = (f"; {stale} was trained on other {self.name} weights (re-derive it: "
                     "tools/campaign.sh release)" if stale else "")
            raise LicError(f"{self.name} has no '{params.decoder}' decoder "
                           f"(available: {', '.join(self.decoders)}){stale}")
        model = self.model
        timer = Timer()
        code, u = quantize_slider(params.rate)
        quantizer = self.encode_quantizer(params.quantizer, params.quantizer_params)
        H, W = image.shape[:2]
        steps, seed = self.diffusion_steps(params), int(params.seed)
        report(progress, 0.0, "analysis transform")
        engine = self.engine()
        maps = params.inspect
        with torch.no_grad(), timer("encode"):
            dev = next(model.parameters()).device
            # the photo stays uint8: g_a reads it window by window (issue 28)
            x = PaddedImage(image, PAD_MULTIPLE, dev)
            gains = engine.gains_for_code(code)
            y_bar, z_bar = _analyse(model, x, gains)
            padded = x.padded
            # the photo is not read again: drop this frame's references, so that a caller that
            # keeps none (`lic compress`) does not hold it beside the decoder (3 bytes per pixel)
            del x, image
            y_bar = y_bar.to(self.device)  # the engine's device; z stays with the prior's tables
            z_bar = z_bar.to(model.prior.medians().device)
            coding: LatentCoding = latent_codec(model, engine).compress(
                y_bar, z_bar, gains, quantizer, on_step=step_progress(progress, 0.1, 0.8, "coded"),
                maps=maps)
            del y_bar, z_bar  # y (float32) is no longer needed: free it before the synthesis
        release_free_memory(coding.y_hat_gained.numel() * 8)
        report(progress, 0.85, "synthesis transform")
        synth, w_hash = self._encoder_synthesis(quantizer.name, params.decoder)
        tiling = None
        if params.decoder == "diffusion":
            from ..decoder.diffusion.tiles import sampler_tiling

            tiling = sampler_tiling()
            if not self._tiled(coding.y_hat_gained, tiling):
                tiling = None  # one tile: the whole-picture sampler, a format-v2 file
        with torch.no_grad(), timer("decode"):
            # the encoder's reconstruction is the decoder's function of the same symbols
            recon, checks = self._pictures(params.decoder, synth, coding.y_hat_gained, code,
                                           steps, seed, (H, W), progress, on_x0, tiling)
        header = LicHeader(model=self.name, weights_hash=w_hash, decoder=params.decoder,
                           quantizer=quantizer.name, quantizer_params=quantizer.params(),
                           rate_u16=code, height=H, width=W,
                           padded_height=padded[0], padded_width=padded[1],
                           diffusion_steps=steps, diffusion_seed=seed,
                           diffusion_tile=tiling[0] if tiling else 0,
                           diffusion_overlap=tiling[1] if tiling else 0,
                           symbol_crcs=coding.symbol_crcs, picture_crcs=checks)
        data = pack(header, coding.sections)
        report(progress, 1.0, "done")
        return EncodeResult(data=data, reconstruction=recon, bpp=8.0 * len(data) / (H * W),
                            params=params, codec=self.name, file_extension=self.file_extension,
                            timings=timer.t,
                            inspection=(inspection(coding, list(model.config.groups), len(data))
                                        if maps else None))

    # -- decode -----------------------------------------------------------------------------
    def decode(self, data: bytes, progress: Optional[ProgressFn] = None,
               decoder: Optional[str] = None, seed: Optional[int] = None,
               on_x0: Optional[X0Fn] = None, inspect: bool = True) -> DecodeResult:
        """Decode a .lic file; ``decoder`` overrides the header's decoder kind ("mse" decodes a
        diffusion-marked file with the MSE synthesis transform), ``seed`` the diffusion seed (the
        studio's seed-variance map; the step count always comes from the header).
        ``on_x0(i, steps, picture)`` receives the diffusion decoder's x̂0 estimate of every step
        as an H×W×3 uint8 picture (the studio's step scrubber); it may raise CancelledError.

        Every y step's symbols and the picture are checked against the file's check values
        (:class:`~lic_core.errors.LicMismatchError`, never a wrong picture); a picture the encoder
        did not make (another decoder, steps or seed) has no check and ``info["picture_checked"]``
        says so.  ``inspect=False`` returns no :class:`~lic_core.codecs.base.Inspection` (and
        keeps no full-size means and scales: a command-line decode of a big photo)."""
        header, sections = unpack(data)
        if header.model != self.name:
            raise LicFormatError(f"file is for model '{header.model}', not '{self.name}'")
        ok, why = self.available()
        if not ok:
            raise ModelNotFoundError(why)
        try:
            synth, named = self._named_synthesis(header)
        except LicFormatError as exc:  # weights a release replaced: their frozen copy decodes it
            old = frozen_for(self, header, exc)
            return old.decode(data, progress, decoder, seed, on_x0, inspect)
        if len(sections) != 2:
            raise LicFormatError(f"corrupted .lic file (expected 2 sections, found {len(sections)})")
        dec_kind = decoder or header.decoder
        if dec_kind not in self.decoders:
            raise LicError(f"this file asks for the '{dec_kind}' decoder, which {self.name} does "
                           f"not have here (available: {', '.join(self.decoders)}); "
                           f"decode with --decoder mse")
        if dec_kind == "gan":  # the GAN picture of these latents, whichever decoder made the file
            synth, tuned = self.gan_decoder()[0], False
        elif dec_kind == "diffusion" and (header.decoder != "diffusion" or named == "gan"):
            # a diffusion picture of an MSE or GAN file (no check value for it): condition on
            # the base g_s, whose features the diffusion decoder learned on, as diffusion files do
            synth, tuned = exact_synthesis(self.model, self.device), False
        elif named == "gan":  # the MSE picture of a GAN file: this quantizer's MSE decoder
            synth, w_hash = self._decoder(header.quantizer)
            tuned = w_hash != self.weights_hash
        else:  # the header names a decoder tuned on this quantizer, and it made the picture
            tuned = named == "tuned"
        model = self.model
        latent_size = check_geometry(header)
        quantizer = header_quantizer(header)
        code = header.rate_u16
        steps = header.diffusion_steps or DEFAULT_DIFFUSION_STEPS
        seed = header.diffusion_seed if seed is None else int(seed)
        timer = Timer()
        report(progress, 0.0, "decoding hyper-latent")
        engine = self.engine()
        with torch.no_grad(), timer("decode"):
            gains = engine.gains_for_code(code)
            coding = latent_codec(model, engine).decompress(
                sections, latent_size, gains, quantizer,
                on_step=step_progress(progress, 0.1, 0.8, "decoded"),
                expected_crcs=header.symbol_crcs, maps=inspect)
            report(progress, 0.85, "synthesis transform")
            release_free_memory(coding.y_hat_gained.numel() * 8)
            tiling = self._decode_tiling(header, dec_kind)
            recon, made = self._pictures(dec_kind, synth, coding.y_hat_gained, code, steps, seed,
                                         (header.height, header.width), progress, on_x0, tiling)
        check = header.picture_check(dec_kind, steps, seed)
        if check is not None and picture_crc(recon) != check.crc:
            raise picture_mismatch(dec_kind)
        report(progress, 1.0, "done")
        info = {f: getattr(header, f) for f in ("model", "decoder", "quantizer", "quantizer_params",
                                                  "height", "width", "diffusion_steps",
                                                  "diffusion_seed", "lic_version")}
        info.update(rate=header.rate, weights_hash=header.weights_hash.hex(),
                    bpp=8.0 * len(data) / (header.height * header.width), bytes=len(data),
                    decoded_with=dec_kind, decoded_seed=seed, symbols_checked=True,
                    picture_checked=check is not None)
        if dec_kind == "diffusion":
            info["diffusion_sampler"] = (
                f"tiled {tiling[0]}/{tiling[1]}"
                if tiling is not None and self._tiled(coding.y_hat_gained, tiling) else "whole")
        if tuned:
            info["finetuned_for"] = header.quantizer
        return DecodeResult(reconstruction=recon, codec=self.name, info=info, timings=timer.t,
                            inspection=(inspection(coding, list(model.config.groups), len(data))
                                        if inspect else None))


#: The learned LGEM codecs, best first (the model registry's shipped ``lgem`` models): the product
#: architecture (GPU-trained weights, none yet), the CPU training campaign's newest weights
#: (replaced when a campaign export beats them), and the frozen first preview (kept so files
#: written with it keep decoding). The campaign's weights have their own name so that installing
#: new ones never breaks a preview file.
LGEM_CODECS = PREFERRED_LEARNED


def _register_shipped() -> None:
    """A codec for each shipped ``lgem`` model (available() says which can run)."""
    for name in LGEM_CODECS:
        register_codec(name)(lambda name=name: LearnedCodec(name))


_register_shipped()
