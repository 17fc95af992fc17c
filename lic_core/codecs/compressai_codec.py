"""Added CompressAI models behind the common :class:`~lic_core.codecs.base.Codec` interface.

Each model the user added (:mod:`.user_models`) is a codec named as the user named it.  Its rate
knob is the checkpoint (rate point 1 = fewest bits; an integer knob, like a classical codec's
quality).  The picture is the one CompressAI decodes: the image padded as its ``eval_model``
pads (centred zeros to a multiple of 64), the latents quantized as its ``compress`` quantizes,
``g_s(ŷ)`` clamped, cropped back and rounded to 8 bits.

Files are ``.lic`` (docs/bitstream.md): the header names the path and the architecture and
carries the weights hash of the checkpoint; section 0 holds z, section 1 y, coded by our range
coder under CompressAI's tables (:mod:`lic_core.entropy_coder.tables`); the check values are the
CRC32 of z's and y's symbols and of the picture.  Two paths (issue 25, docs/compressai.md):

* **exact** (``compressai-exact:<arch>``; the codec ``NAME`` of ``bmshj2018-hyperprior``,
  ``mbt2018-mean`` and ``mbt2018``): everything the decoder reproduces runs on the exact path of
  docs/bitstream.md (:mod:`lic_core.models.compressai_compat.google_exact`), so a file decodes
  to the identical picture on every machine, thread count and CPU;
* **float** (``compressai:<arch>``; the codec ``NAME:float`` of those three, ``NAME`` of every
  other architecture): the networks run in float32 as CompressAI's do and the picture is the one
  CompressAI decodes — **not guaranteed to decode on another machine**.

On either path a machine that computes other entropy parameters or another picture stops with
the mismatch message instead of showing a wrong picture.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager, nullcontext
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
EXACT_PATH_NOTE = ("exact path: files decode to the identical picture on every machine, thread "
                   "count and CPU (docs/bitstream.md, docs/compressai.md)")
#: header model prefix of files coded on the exact path (the float path's is ``compressai:``)
EXACT_PREFIX = "compressai-exact:"
#: suffix of the float-path codec of a model that has an exact path
FLOAT_SUFFIX = ":float"
#: float-path coding runs one at a time on one torch thread (see :func:`_one_thread`)
_FLOAT_LOCK = threading.Lock()


@contextmanager
def _one_thread():
    """Float-path networks on one torch thread, one coding at a time.

    A float32 convolution's sums are ordered by how the library splits the work among threads,
    so the same file decoded with 1 and 2 threads can differ in a few pixels by one level (and,
    rarely, in a scale index). With one thread on both sides a file decodes to its encoder's
    picture on the same machine and library whatever the user's thread setting; another CPU or
    library still may not (the float path's limit; the exact path has none). The lock keeps a
    concurrent float-path job from restoring the thread count under this one."""
    with _FLOAT_LOCK:
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(n)


def has_exact_path(arch: str) -> bool:
    """Whether ``arch`` has the exact path (issue 25)."""
    from ..models.compressai_compat.google_exact import has_exact_path as has

    return has(arch)


def codec_names_of(model: UserModel) -> dict[str, bool]:
    """The codecs of an added model: name → exact path?  ``NAME`` (exact) and ``NAME:float``
    for the architectures with an exact path, ``NAME`` (float) otherwise."""
    if has_exact_path(model.arch):
        return {model.name: True, model.name + FLOAT_SUFFIX: False}
    return {model.name: False}


class _SplitCoder:
    """Routes ``code()`` calls: z to one stream (section 0), everything else to another."""

    def __init__(self, z, y) -> None:
        self.z, self.y = z, y

    def code(self, label, tables, index, symbols=None):
        return (self.z if label == "z" else self.y).code(label, tables, index, symbols)


class CompressAICodec(Codec):
    """One added model on one path (see the module docstring)."""

    family = "learned"
    integer_rate = True
    quantizers = ("round",)
    decoders = ("mse",)
    file_extension = ".lic"
    rate_increasing = True

    def __init__(self, model: UserModel, exact: bool = False) -> None:
        if exact and not has_exact_path(model.arch):
            raise LicError(f"{model.arch} has no exact path")
        self.user = model
        self.exact = bool(exact)
        self.name = next(n for n, e in codec_names_of(model).items() if e == self.exact)
        self.header_model = (EXACT_PREFIX if self.exact else SPEC_PREFIX) + model.arch
        self.note = EXACT_PATH_NOTE if self.exact else FLOAT_PATH_NOTE
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

    def engine(self, point: int):
        """What codes rate point ``point``: the float model, or its exact engine (built once
        per weights: the quantization happens there)."""
        model = self.model(point)
        if not self.exact:
            return model
        from ..models.compressai_compat.google_exact import exact_engine

        return exact_engine(model)

    def _picture(self, engine, y_hat: torch.Tensor, padding) -> np.ndarray:
        """The uint8 H×W×3 picture of ŷ: the exact g_s, or CompressAI's float one."""
        from ..models.compressai_compat.base import crop

        if self.exact:
            pic = crop(engine.picture(y_hat), padding)[0]
            return np.ascontiguousarray(pic.permute(1, 2, 0).numpy())
        return to_uint8(crop(engine.synthesize(y_hat), padding))

    def available(self) -> tuple[bool, str]:
        missing = [p.path for p in self.user.points if not Path(p.path).is_file()]
        if missing:
            return False, f"checkpoint missing: {missing[0]}"
        return True, ""

    def describe(self) -> dict[str, Any]:
        from ..models.compressai_compat import architecture_label

        u = self.user
        names = codec_names_of(u)
        path = ("exact path, decodes identically everywhere" if self.exact else
                "float path, CompressAI's picture, machine-dependent")
        other = next((n for n in names if n != self.name), "")
        return {"name": self.name, "family": self.family, "kind": "added model",
                "added_model": u.name,
                "label": f"your CompressAI {u.arch} ({len(u.points)} checkpoint"
                         f"{'s' if len(u.points) != 1 else ''}; {path})",
                "architecture": u.arch, "paper": architecture_label(u.arch),
                "parameters": u.parameters, "added": u.added, "guessed": u.guessed,
                "path": "exact" if self.exact else "float",
                "determinism": self.note,
                **({"other_path": other} if other else {}),
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
        from ..models.compressai_compat.base import pad

        if params.quantizer != "round" or params.decoder != "mse":
            raise LicError(f"{self.name} codes with rounding and its own decoder only "
                           f"(got quantizer '{params.quantizer}', decoder '{params.decoder}')")
        point = self._point(params.rate)
        t0 = time.perf_counter()
        report(progress, 0.0, "loading checkpoint")
        engine = self.engine(point)
        h, w = image.shape[:2]
        xp, padding = pad(to_tensor(image))
        report(progress, 0.1, "analysis and coding")
        coder = _SplitCoder(TableEncoder(), TableEncoder())
        with torch.no_grad(), self._threads():
            coded = engine.code(coder, xp, tuple(xp.shape[-2:]))
            report(progress, 0.7, "synthesis")
            recon = self._picture(engine, coded.y_hat, padding)
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
                            inspection=self._inspection(coded, sections, len(data), point,
                                                        padding))

    def _threads(self):
        """One torch thread for the float path (:func:`_one_thread`); the exact path's result
        does not depend on threads, so it keeps the user's setting."""
        return nullcontext() if self.exact else _one_thread()

    def _float_mismatch(self) -> str:
        """The one line when a float-path picture differs from its encoder's here."""
        exact = self.name[: -len(FLOAT_SUFFIX)] if self.name.endswith(FLOAT_SUFFIX) else ""
        better = (f"; files of '{exact}' (the exact path) decode identically everywhere" if exact
                  else "")
        return ("this file was coded on the float path (as CompressAI decodes), which does not "
                "promise the same picture on another machine or library: this machine's "
                "picture differs from its encoder's, so it is not shown" + better)

    def _header(self, point: int, h: int, w: int, xp: torch.Tensor, crcs: list[int],
                recon: np.ndarray) -> LicHeader:
        return LicHeader(model=self.header_model,
                         weights_hash=bytes.fromhex(self.user.points[point].model_hash),
                         decoder="mse", quantizer="round", rate_u16=point, height=h, width=w,
                         padded_height=int(xp.shape[-2]), padded_width=int(xp.shape[-1]),
                         symbol_crcs=list(crcs),
                         picture_crcs=[PictureCheck("mse", 0, 0, picture_crc(recon))])

    def decode(self, data: bytes, progress: Optional[ProgressFn] = None) -> DecodeResult:
        from ..models.compressai_compat.base import centred_padding

        header, sections = unpack(data)
        if header.model != self.header_model:
            raise LicFormatError(f"this file was made by '{header.model}', not by "
                                 f"{self.name} ({self.header_model})")
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
        engine = self.engine(point)
        H, W = header.padded_height, header.padded_width
        padding = centred_padding(header.height, header.width)
        if (H, W) != (header.height + padding[2] + padding[3],
                      header.width + padding[0] + padding[1]):
            raise LicFormatError("corrupted .lic file (inconsistent image and padded sizes)")
        coder = _SplitCoder(TableDecoder(sections[0], "z stream"),
                            TableDecoder(sections[1], "y stream"))
        report(progress, 0.1, "decoding")
        try:
            with torch.no_grad(), self._threads():
                coded = engine.code(coder, None, (H, W))
        except LicFormatError as exc:  # the container CRC held: this machine disagrees
            raise symbols_mismatch("decoding", f"{exc}; {self.note}") from None
        crcs = coder.z.crcs + coder.y.crcs
        if crcs != list(header.symbol_crcs):
            labels = coder.z.labels + coder.y.labels
            bad = next((labels[i] for i, (a, b) in enumerate(zip(crcs, header.symbol_crcs))
                        if a != b), "the streams")
            raise symbols_mismatch(f"{bad} ({self.note})")
        try:  # checked after the symbols: a CRC-verified stream that ends elsewhere disagrees
            for dec in (coder.z, coder.y):
                dec.finish()
        except LicFormatError as exc:
            raise symbols_mismatch("the streams' ends", f"{exc}; {self.note}") from None
        report(progress, 0.7, "synthesis")
        with torch.no_grad(), self._threads():
            recon = self._picture(engine, coded.y_hat, padding)
        check = header.picture_check("mse")
        if check is not None and picture_crc(recon) != check.crc:
            if self.exact:
                raise LicMismatchError(f"{picture_mismatch('mse')} ({self.note})")
            raise LicMismatchError(self._float_mismatch())
        report(progress, 1.0, "done")
        info = {"model": header.model, "model_id": header.weights_hash.hex(),
                "added_model": self.name, "rate_point": point + 1, "decoder": "mse",
                "quantizer": "round", "size": [header.height, header.width],
                "bytes": len(data), "lic_version": header.lic_version,
                "symbols_checked": True, "picture_checked": check is not None,
                "path": "exact" if self.exact else "float", "determinism": self.note}
        return DecodeResult(reconstruction=recon, codec=self.name, info=info,
                            timings={"decode": time.perf_counter() - t0},
                            inspection=self._inspection(coded, sections, len(data), point,
                                                        padding))

    # ------------------------------------------------------------------ inspection
    def _likelihoods(self, coded, point: int) -> dict:
        """The model's own p(ŷ), p(ẑ) (float32, for display only): the float path's come with
        ``code()``; the exact path's are evaluated by the float model on the exact values."""
        if coded.likelihoods or not self.exact:
            return coded.likelihoods
        model = self.model(point)
        f = (lambda t: None if t is None else t.float())
        with torch.no_grad():
            return {"y": model.gaussian_conditional.likelihood(f(coded.y_hat), f(coded.scales),
                                                               f(coded.means)),
                    "z": model.entropy_bottleneck.likelihood(f(coded.z_hat))}

    def _inspection(self, coded, sections: list[bytes], total: int, point: int,
                    padding: tuple[int, int, int, int]) -> Inspection:
        """ŷ (and μ, σ where Gaussian), bits per element from the model's own likelihoods, and
        the rate breakdown (estimated vs real bytes of z and y).  ``extras["padding"]``: the
        centred padding (left, right, top, bottom), so the bits heatmap lines up with the
        picture (:func:`lic_core.rate.accounting.heatmap_for_image`)."""
        y_hat = coded.y_hat[0].float().cpu().numpy()
        lk = self._likelihoods(coded, point)
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
                                  "padding": tuple(int(v) for v in padding),
                                  "gaussian": coded.means is not None or
                                  coded.scales is not None,
                                  "path": "exact" if self.exact else "float",
                                  "determinism": self.note})


def user_codecs() -> dict[str, UserModel]:
    """The added models (name → record); read on every call, cached by file time."""
    try:
        return load_registry()
    except LicError:
        return {}


def is_added_model_header(model: str) -> bool:
    """Whether a header's model names an added model's path (``compressai:``,
    ``compressai-exact:``)."""
    return model.startswith((SPEC_PREFIX, EXACT_PREFIX))


def added_model_for(model: str, weights_hash: bytes) -> str:
    """The name of the codec that decodes a file whose header names ``model``
    (``compressai:ARCH``: the float path, ``compressai-exact:ARCH``: the exact path) and
    ``weights_hash``; a one-line error naming both when none does."""
    exact = model.startswith(EXACT_PREFIX)
    arch = model.split(":", 1)[1]
    if exact and not has_exact_path(arch):
        raise LicFormatError(f"corrupted .lic file (model '{model}': {arch} has no exact path)")
    hit = find_by_hash(arch, weights_hash.hex())
    if hit is not None:
        return next(n for n, e in codec_names_of(hit[0]).items() if e == exact)
    same = [m for m in user_codecs().values() if m.arch == arch]
    have = "; ".join(f"{m.name}: {', '.join(p.model_hash for p in m.points)}" for m in same)
    raise ModelNotFoundError(
        f"this file needs the CompressAI {arch} checkpoint with weights {weights_hash.hex()}, "
        f"which no added model has ({have or 'no ' + arch + ' model added'}); add it with "
        f"`lic models add NAME {SPEC_PREFIX}{arch} CHECKPOINT`")
