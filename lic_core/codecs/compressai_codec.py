"""Added CompressAI models behind the common :class:`~lic_core.codecs.base.Codec` interface.

Each model the user added (:mod:`.user_models`) is a codec named as the user named it.  Its rate
knob is the checkpoint (rate point 1 = fewest bits; an integer knob, like a classical codec's
quality).  The picture is the one CompressAI decodes: the image padded as its ``eval_model``
pads (centred zeros to a multiple of 64), the latents quantized as its ``compress`` quantizes,
``g_s(ŷ)`` clamped, cropped back and rounded to 8 bits.

Files are ``.lic`` (docs/bitstream.md): the header names the architecture
(``compressai:<arch>``) and the weights hash of the checkpoint; section 0 holds z, section 1 y,
coded by our range coder under CompressAI's tables (:mod:`lic_core.entropy_coder.tables`); the
check values are the CRC32 of z's and y's symbols and of the picture.  The networks run in float32
as CompressAI's do, so — unlike our own codecs — these files are **not guaranteed to decode on
another machine**: a machine that computes other entropy parameters or another picture stops
with the mismatch message instead of showing a wrong picture.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..bitstream.checks import picture_crc, picture_mismatch, symbols_mismatch
from ..bitstream.format import LicHeader, PictureCheck, pack, unpack
from ..entropy_coder.tables import TableDecoder, TableEncoder
from ..errors import CheckpointError, LicError, LicFormatError, LicMismatchError, ModelNotFoundError
from ..image.tensor import to_tensor, to_uint8
from .base import Codec, DecodeResult, EncodeParams, EncodeResult, Inspection, ProgressFn
from .lic_file import report
from .user_models import SPEC_PREFIX, UserModel, find_by_hash, load_registry

#: what `lic info`, `lic models` and the studio say about these files
FLOAT_PATH_NOTE = ("float path as CompressAI decodes: files are not guaranteed to decode on "
                   "another machine (our own codecs' files are)")


class _SplitCoder:
    """Routes ``code()`` calls: z to one stream (section 0), everything else to another."""

    def __init__(self, z, y) -> None:
        self.z, self.y = z, y

    def code(self, label, tables, index, symbols=None):
        return (self.z if label == "z" else self.y).code(label, tables, index, symbols)


class CompressAICodec(Codec):
    """One added model (see the module docstring)."""

    family = "learned"
    integer_rate = True
    quantizers = ("round",)
    decoders = ("mse",)
    file_extension = ".lic"
    rate_increasing = True

    def __init__(self, model: UserModel) -> None:
        self.user = model
        self.name = model.name
        n = len(model.points)
        self.rate_range = (1.0, float(n))
        self.default_rate = float((n + 1) // 2)
        self.rate_label = "checkpoint (rate point 1 = fewest bits)"
        self._models: dict[int, Any] = {}

    # ------------------------------------------------------------------ models
    def model(self, point: int):
        """The network of rate point ``point`` (0-based), loaded once and checked against the
        hash recorded when it was added."""
        rp = self.user.points[point]
        try:
            st = Path(rp.path).stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        cached = self._models.get(point)
        if cached is not None and cached[0] != stamp:  # the file changed on disk: read it again
            del self._models[point]
            cached = None
        if cached is None:
            from ..models.compressai_compat import build_from_state_dict
            from ..models.compressai_compat.checkpoint import model_hash, read_checkpoint

            try:
                ck = read_checkpoint(rp.path)
            except CheckpointError as exc:
                raise ModelNotFoundError(f"model '{self.name}': {exc}") from None
            m = build_from_state_dict(self.user.arch, ck.state_dict)
            h = model_hash(m)
            if h != rp.model_hash:
                raise CheckpointError(
                    f"model '{self.name}': checkpoint {rp.path} changed since it was added "
                    f"(added {rp.model_hash}, now {h}); remove and add the model again")
            self._models[point] = (stamp, m)
        return self._models[point][1]

    def available(self) -> tuple[bool, str]:
        missing = [p.path for p in self.user.points if not Path(p.path).is_file()]
        if missing:
            return False, f"checkpoint missing: {missing[0]}"
        return True, ""

    def describe(self) -> dict[str, Any]:
        from ..models.compressai_compat import architecture_label

        u = self.user
        return {"name": self.name, "family": self.family, "kind": "added model",
                "label": f"your CompressAI {u.arch} ({len(u.points)} checkpoint"
                         f"{'s' if len(u.points) != 1 else ''})",
                "architecture": u.arch, "paper": architecture_label(u.arch),
                "parameters": u.parameters, "added": u.added, "guessed": u.guessed,
                "determinism": FLOAT_PATH_NOTE,
                "checkpoints": [{"path": p.path, "hash": p.model_hash, "bpp_sample": p.bpp,
                                 "kind": p.kind, "zoo": p.zoo} for p in u.points],
                "provenance": "added by the user (not trained by LIC Studio)"}

    def _point(self, rate: float) -> int:
        n = len(self.user.points)
        r = int(round(float(rate)))
        if not 1 <= r <= n:
            raise LicError(f"{self.name}: rate point must be 1…{n} (one per checkpoint), got "
                           f"{rate:g}")
        return r - 1

    # ------------------------------------------------------------------ coding
    def encode(self, image: np.ndarray, params: EncodeParams,
               progress: Optional[ProgressFn] = None) -> EncodeResult:
        from ..models.compressai_compat.base import crop, pad

        if params.quantizer != "round" or params.decoder != "mse":
            raise LicError(f"{self.name} codes with rounding and its own decoder only "
                           f"(got quantizer '{params.quantizer}', decoder '{params.decoder}')")
        point = self._point(params.rate)
        t0 = time.perf_counter()
        report(progress, 0.0, "loading checkpoint")
        model = self.model(point)
        h, w = image.shape[:2]
        xp, padding = pad(to_tensor(image))
        report(progress, 0.1, "analysis and coding")
        coder = _SplitCoder(TableEncoder(), TableEncoder())
        with torch.no_grad():
            coded = model.code(coder, xp, tuple(xp.shape[-2:]))
            report(progress, 0.7, "synthesis")
            recon = to_uint8(crop(model.synthesize(coded.y_hat), padding))
        sections = [coder.z.to_bytes(), coder.y.to_bytes()]
        header = self._header(point, h, w, xp, coder.z.crcs + coder.y.crcs, recon)
        data = pack(header, sections)
        t_enc = time.perf_counter() - t0
        report(progress, 1.0, "done")
        used = EncodeParams(rate=float(point + 1), quantizer="round", decoder="mse",
                            extra=dict(params.extra))
        return EncodeResult(data=data, reconstruction=recon, bpp=8.0 * len(data) / (h * w),
                            params=used, codec=self.name, file_extension=".lic",
                            timings={"encode": t_enc},
                            inspection=self._inspection(coded, sections, len(data), point))

    def _header(self, point: int, h: int, w: int, xp: torch.Tensor, crcs: list[int],
                recon: np.ndarray) -> LicHeader:
        return LicHeader(model=SPEC_PREFIX + self.user.arch,
                         weights_hash=bytes.fromhex(self.user.points[point].model_hash),
                         decoder="mse", quantizer="round", rate_u16=point, height=h, width=w,
                         padded_height=int(xp.shape[-2]), padded_width=int(xp.shape[-1]),
                         symbol_crcs=list(crcs),
                         picture_crcs=[PictureCheck("mse", 0, 0, picture_crc(recon))])

    def decode(self, data: bytes, progress: Optional[ProgressFn] = None) -> DecodeResult:
        from ..models.compressai_compat.base import centred_padding, crop

        header, sections = unpack(data)
        if header.model != SPEC_PREFIX + self.user.arch:
            raise LicFormatError(f"this file was made by '{header.model}', not by "
                                 f"{self.name} ({SPEC_PREFIX}{self.user.arch})")
        hashes = [p.model_hash for p in self.user.points]
        if header.weights_hash.hex() not in hashes:
            raise ModelNotFoundError(
                f"this file was made by a {header.model} checkpoint with weights "
                f"{header.weights_hash.hex()}; model '{self.name}' has "
                f"{', '.join(hashes)}")
        if len(sections) != 2:
            raise LicFormatError(f"corrupted .lic file ({len(sections)} sections, expected 2)")
        point = hashes.index(header.weights_hash.hex())
        t0 = time.perf_counter()
        report(progress, 0.0, "loading checkpoint")
        model = self.model(point)
        H, W = header.padded_height, header.padded_width
        padding = centred_padding(header.height, header.width)
        if (H, W) != (header.height + padding[2] + padding[3],
                      header.width + padding[0] + padding[1]):
            raise LicFormatError("corrupted .lic file (inconsistent image and padded sizes)")
        coder = _SplitCoder(TableDecoder(sections[0], "z stream"),
                            TableDecoder(sections[1], "y stream"))
        report(progress, 0.1, "decoding")
        try:
            with torch.no_grad():
                coded = model.code(coder, None, (H, W))
        except LicFormatError as exc:  # the container CRC held: this machine disagrees
            raise symbols_mismatch("decoding", str(exc)) from None
        for dec in (coder.z, coder.y):
            dec.finish()
        crcs = coder.z.crcs + coder.y.crcs
        if crcs != list(header.symbol_crcs):
            labels = coder.z.labels + coder.y.labels
            bad = next((labels[i] for i, (a, b) in enumerate(zip(crcs, header.symbol_crcs))
                        if a != b), "the streams")
            raise symbols_mismatch(f"{bad} ({FLOAT_PATH_NOTE})")
        report(progress, 0.7, "synthesis")
        with torch.no_grad():
            recon = to_uint8(crop(model.synthesize(coded.y_hat), padding))
        check = header.picture_check("mse")
        if check is not None and picture_crc(recon) != check.crc:
            err = picture_mismatch("mse")
            raise LicMismatchError(f"{err} ({FLOAT_PATH_NOTE})")
        report(progress, 1.0, "done")
        info = {"model": header.model, "model_id": header.weights_hash.hex(),
                "added_model": self.name, "rate_point": point + 1, "decoder": "mse",
                "quantizer": "round", "size": [header.height, header.width],
                "bytes": len(data), "lic_version": header.lic_version,
                "symbols_checked": True, "picture_checked": check is not None,
                "determinism": FLOAT_PATH_NOTE}
        return DecodeResult(reconstruction=recon, codec=self.name, info=info,
                            timings={"decode": time.perf_counter() - t0},
                            inspection=self._inspection(coded, sections, len(data), point))

    # ------------------------------------------------------------------ inspection
    def _inspection(self, coded, sections: list[bytes], total: int, point: int) -> Inspection:
        """ŷ (and μ, σ where Gaussian), bits per element from the model's own likelihoods, and
        the rate breakdown (estimated vs real bytes of z and y)."""
        y_hat = coded.y_hat[0].float().cpu().numpy()
        lk = coded.likelihoods
        bits_y = (-torch.log2(lk["y"][0].double())).float().cpu().numpy() if "y" in lk \
            else np.zeros_like(y_hat)
        bits_z = (-torch.log2(lk["z"][0].double())).float().cpu().numpy() if "z" in lk \
            else np.zeros((0, 0, 0), np.float32)
        means = coded.means[0].float().cpu().numpy() if coded.means is not None \
            else np.zeros_like(y_hat)
        scales = coded.scales[0].float().cpu().numpy() if coded.scales is not None \
            else np.full_like(y_hat, np.nan)
        groups = list(coded.groups or [y_hat.shape[0]])
        group_bits: dict[str, float] = {}
        start = 0
        for g, n in enumerate(groups):
            group_bits[f"y{g}" if len(groups) > 1 else "y"] = float(bits_y[start:start + n].sum())
            start += n
        if bits_z.size:
            group_bits["z"] = float(bits_z.sum())
        z_bytes, y_bytes = len(sections[0]), len(sections[1])
        return Inspection(y_hat=y_hat, means=means, scales=scales, bits_y=bits_y, bits_z=bits_z,
                          channel_groups=groups, group_bits=group_bits,
                          header_bytes=total - z_bytes - y_bytes, z_bytes=z_bytes,
                          y_bytes=y_bytes, estimated_bits=float(bits_y.sum() + bits_z.sum()),
                          extras={"rate_point": point + 1, "architecture": self.user.arch,
                                  "gaussian": coded.means is not None or
                                  coded.scales is not None,
                                  "determinism": FLOAT_PATH_NOTE})


def user_codecs() -> dict[str, UserModel]:
    """The added models (name → record); read on every call, cached by file time."""
    try:
        return load_registry()
    except LicError:
        return {}


def added_model_for(model: str, weights_hash: bytes) -> str:
    """The name of the added model that decodes a file whose header names ``model``
    (compressai:ARCH) and ``weights_hash``; a one-line error naming both when none does."""
    arch = model[len(SPEC_PREFIX):]
    hit = find_by_hash(arch, weights_hash.hex())
    if hit is not None:
        return hit[0].name
    same = [m for m in user_codecs().values() if m.arch == arch]
    have = "; ".join(f"{m.name}: {', '.join(p.model_hash for p in m.points)}" for m in same)
    raise ModelNotFoundError(
        f"this file needs the CompressAI {arch} checkpoint with weights {weights_hash.hex()}, "
        f"which no added model has ({have or 'no ' + arch + ' model added'}); add it with "
        f"`lic models add NAME {model} CHECKPOINT`")
