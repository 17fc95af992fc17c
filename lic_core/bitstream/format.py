"""The ``.lic`` container, format v2 (docs/methods.md §6.5; exact byte layout in docs/bitstream.md).

A file is a small self-describing header, a list of opaque sections (the codec decides what they
hold: z stream first, then y, docs/methods.md §6.3) and a CRC32 over everything before it::

    magic "LIC1" | u8 version | u8 flags | header fields | check values |
    varint n | n × varint len | section bytes ... | u32 CRC32 (little-endian)

Version 2 (issue 11) decodes with the exact arithmetic of :mod:`lic_core.exact` and adds the
check values of :mod:`lic_core.bitstream.checks` (a CRC32 of the symbols of every coding step and
of the encoder's picture per decoder).  A version-1 file is refused with a one-line message that
names its version and says to re-encode.

Version 3 (issue 28) is version 2 plus one field, written only by files whose diffusion picture
check was made by the **tiled sampler** (a picture larger than one sampler tile,
:mod:`lic_core.decoder.diffusion.tiles`): the tile side T and overlap O after the diffusion seed.
Every other file is still written as version 2, byte for byte; a reader of version 2 only
refuses a version-3 file with its one-line "made by a newer LIC Studio (format v3)" instead of
sampling another picture than the one the file's check value describes.

Parsing is defensive: every malformed input raises :class:`~lic_core.errors.LicFormatError` with a
one-line message, never another exception; every length read from the file is checked against the
bytes that are actually left before anything is allocated, so a hostile file cannot make us hang
or allocate much.
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Union

from ..errors import LicFormatError

MAGIC = b"LIC1"
FORMAT_VERSION = 2
#: the version of files that record the diffusion decoder's tiled sampler (T, O) — issue 28
TILED_SAMPLER_VERSION = 3
#: the newest version this reader decodes
MAX_FORMAT_VERSION = TILED_SAMPLER_VERSION
#: the oldest version this reader decodes (v1 decoded with machine-dependent float arithmetic)
MIN_FORMAT_VERSION = 2

#: decoder kind <-> 2-bit code in the flags byte (docs/methods.md §6.5: 0 MSE, 1 GAN, 2 diffusion)
DECODER_CODES = {"mse": 0, "gan": 1, "diffusion": 2}
_DECODER_NAMES = {v: k for k, v in DECODER_CODES.items()}

#: limits that keep hostile files cheap to reject
MAX_SIDE = 1 << 16  # original and padded sides, pixels
MAX_MODEL_NAME = 128
MAX_VERSION_STR = 64
MAX_QUANTIZER_NAME = 64
MAX_PARAM_KEY = 64
MAX_PARAMS = 64
MAX_SECTIONS = 255
MAX_STEPS = 100_000
MAX_SYMBOL_CHECKS = 1024
MAX_PICTURE_CHECKS = 16
U64_MAX = (1 << 64) - 1
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
_MIN_FILE = len(MAGIC) + 2 + 4


def sampler_tiling_error(tile: int, overlap: int) -> str:
    """Why (tile, overlap) is not a valid tiling of the diffusion decoder's sampler ("" if it is).

    T a multiple of 64 (≥ 128), O a multiple of 16 (≥ 16), and 16·⌊(T − O)/32⌋ ≥ O: the tiles of
    any side then step by at least O, so the blend ramps (width O, centred in each overlap) never
    meet (docs/diffusion.md "Big pictures: the tiled sampler")."""
    for v in (tile, overlap):
        if isinstance(v, bool) or not isinstance(v, int):
            return f"tile and overlap must be integers, got {tile!r}, {overlap!r}"
    if not 128 <= tile <= MAX_SIDE or tile % 64:
        return f"sampler tile {tile} is not a multiple of 64 in [128, {MAX_SIDE}]"
    if overlap < 16 or overlap % 16:
        return f"sampler overlap {overlap} is not a positive multiple of 16"
    if 16 * ((tile - overlap) // 32) < overlap:
        return f"sampler overlap {overlap} too large for tiles of {tile} (at most about T/3)"
    return ""

ParamValue = Union[int, float]


@dataclass(frozen=True)
class PictureCheck:
    """CRC32 of the uint8 picture the encoder's ``decoder`` made (``steps``/``seed``: the
    diffusion sampler's; 0 for the other decoders)."""

    decoder: str
    steps: int
    seed: int
    crc: int


@dataclass
class LicHeader:
    """Everything a decoder needs besides the sections (docs/methods.md §6.5).

    ``rate_u16`` is the rate slider in fixed point, ``round(u·65535)``; the encoder and decoder
    both use the dequantized value (docs/ARCHITECTURE.md).  ``weights_hash`` is the 8-byte model
    id (``lic_core.weights.weights_hash``).  ``diffusion_steps``/``diffusion_seed`` are always
    stored (2 bytes when small), so ``lic decompress --decoder diffusion`` can use them even for a
    file encoded for the MSE decoder.
    """

    model: str
    weights_hash: bytes
    decoder: str
    quantizer: str
    quantizer_params: dict[str, ParamValue] = field(default_factory=dict)
    rate_u16: int = 0
    height: int = 1
    width: int = 1
    padded_height: int = 64
    padded_width: int = 64
    diffusion_steps: int = 0
    diffusion_seed: int = 0
    #: the diffusion sampler's tile side and overlap (pixels) when the file's diffusion picture
    #: was made by the tiled sampler (format v3); 0, 0: the whole-picture sampler (format v2)
    diffusion_tile: int = 0
    diffusion_overlap: int = 0
    lic_version: str = ""
    #: CRC32 of the decoded symbols of each coding step: z, then y in bitstream order (format v2)
    symbol_crcs: list[int] = field(default_factory=list)
    #: CRC32 of the encoder's final picture per decoder it ran (format v2)
    picture_crcs: list[PictureCheck] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lic_version:
            from .. import __version__

            self.lic_version = __version__

    @property
    def format_version(self) -> int:
        """The version this header is written with: 3 when it records a tiled sampler, else 2."""
        return TILED_SAMPLER_VERSION if self.diffusion_tile else FORMAT_VERSION

    @property
    def rate(self) -> float:
        """The dequantized rate slider u = rate_u16 / 65535."""
        return self.rate_u16 / 65535.0

    def picture_check(self, decoder: str, steps: int = 0, seed: int = 0) -> "PictureCheck | None":
        """The stored picture CRC for this decoder (and, for diffusion, these steps and seed)."""
        if decoder != "diffusion":
            steps = seed = 0
        for c in self.picture_crcs:
            if (c.decoder, c.steps, c.seed) == (decoder, int(steps), int(seed)):
                return c
        return None


@dataclass
class FileLayout:
    """Byte accounting of one file (``lic info``, the studio's inspector)."""

    total_bytes: int
    header_bytes: int  # magic .. section lengths (everything before the first section)
    section_bytes: list[int]
    crc_bytes: int = 4


# ----------------------------------------------------------------------------------- writing


def _fail_write(msg: str) -> LicFormatError:
    return LicFormatError(f"cannot write .lic header: {msg}")


def _varint(n: int) -> bytes:
    """Unsigned LEB128."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) if n >= 0 else ((-n << 1) - 1)


def _unzigzag(n: int) -> int:
    return (n >> 1) if not n & 1 else -((n + 1) >> 1)


def _str(s: str, what: str, limit: int, allow_empty: bool = False) -> bytes:
    if not isinstance(s, str):
        raise _fail_write(f"{what} must be a string")
    b = s.encode("utf-8")
    if not b and not allow_empty:
        raise _fail_write(f"{what} is empty")
    if len(b) > limit:
        raise _fail_write(f"{what} longer than {limit} bytes")
    return _varint(len(b)) + b


def _check_int(v: object, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _fail_write(f"{what} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _header_bytes(h: LicHeader) -> bytes:
    if h.decoder not in DECODER_CODES:
        raise _fail_write(f"unknown decoder '{h.decoder}' (known: {', '.join(DECODER_CODES)})")
    if not isinstance(h.weights_hash, (bytes, bytearray)) or len(h.weights_hash) != 8:
        raise _fail_write("weights_hash must be exactly 8 bytes")
    tiled = bool(h.diffusion_tile or h.diffusion_overlap)
    if tiled:
        why = sampler_tiling_error(h.diffusion_tile, h.diffusion_overlap)
        if why:
            raise _fail_write(why)
    out = bytearray(MAGIC)
    out.append(TILED_SAMPLER_VERSION if tiled else FORMAT_VERSION)
    out.append(DECODER_CODES[h.decoder])  # flags: bits 0-1 decoder kind, bits 2-7 reserved (0)
    out += _str(h.lic_version, "lic_version", MAX_VERSION_STR)
    out += _str(h.model, "model name", MAX_MODEL_NAME)
    out += bytes(h.weights_hash)
    for what, v in (("height", h.height), ("width", h.width),
                    ("padded_height", h.padded_height), ("padded_width", h.padded_width)):
        _check_int(v, what, 1, MAX_SIDE)
    if h.padded_height < h.height or h.padded_width < h.width:
        raise _fail_write("padded size smaller than the image")
    for v in (h.height, h.width, h.padded_height, h.padded_width):
        out += _varint(v)
    out += struct.pack("<H", _check_int(h.rate_u16, "rate_u16", 0, 0xFFFF))
    out += _str(h.quantizer, "quantizer name", MAX_QUANTIZER_NAME)
    params = h.quantizer_params or {}
    if not isinstance(params, dict) or len(params) > MAX_PARAMS:
        raise _fail_write(f"quantizer_params must be a dict of at most {MAX_PARAMS} entries")
    out += _varint(len(params))
    for key in sorted(params):  # sorted: one byte string per header
        val = params[key]
        out += _str(key, "quantizer parameter name", MAX_PARAM_KEY)
        if isinstance(val, bool) or (isinstance(val, int) and I64_MIN <= val <= I64_MAX):
            out.append(0)  # type 0: signed integer, zig-zag varint (bools are stored as 0/1)
            out += _varint(_zigzag(int(val)))
        elif isinstance(val, float) and math.isfinite(val):
            out.append(1)  # type 1: float64
            out += struct.pack("<d", val)
        else:
            raise _fail_write(f"quantizer parameter '{key}' must be a finite float or a 64-bit int")
    out += _varint(_check_int(h.diffusion_steps, "diffusion_steps", 0, MAX_STEPS))
    out += _varint(_check_int(h.diffusion_seed, "diffusion_seed", 0, U64_MAX))
    if tiled:  # format v3: the tiled sampler that made the diffusion picture check
        out += _varint(h.diffusion_tile) + _varint(h.diffusion_overlap)
    crcs = list(h.symbol_crcs or [])
    if len(crcs) > MAX_SYMBOL_CHECKS:
        raise _fail_write(f"more than {MAX_SYMBOL_CHECKS} symbol checks")
    out += _varint(len(crcs))
    for c in crcs:
        out += struct.pack("<I", _check_int(c, "symbol check", 0, 0xFFFFFFFF))
    pics = list(h.picture_crcs or [])
    if len(pics) > MAX_PICTURE_CHECKS:
        raise _fail_write(f"more than {MAX_PICTURE_CHECKS} picture checks")
    out += _varint(len(pics))
    for p in pics:
        if p.decoder not in DECODER_CODES:
            raise _fail_write(f"unknown decoder '{p.decoder}' in a picture check")
        out.append(DECODER_CODES[p.decoder])
        out += _varint(_check_int(p.steps, "picture check steps", 0, MAX_STEPS))
        out += _varint(_check_int(p.seed, "picture check seed", 0, U64_MAX))
        out += struct.pack("<I", _check_int(p.crc, "picture check", 0, 0xFFFFFFFF))
    return bytes(out)


def pack(header: LicHeader, sections: list[bytes]) -> bytes:
    """Serialize a header and its sections into a complete ``.lic`` file (CRC32 appended)."""
    if len(sections) > MAX_SECTIONS:
        raise _fail_write(f"more than {MAX_SECTIONS} sections")
    out = bytearray(_header_bytes(header))
    out += _varint(len(sections))
    for s in sections:
        out += _varint(len(s))
    for s in sections:
        out += bytes(s)
    out += struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)
    return bytes(out)


# ----------------------------------------------------------------------------------- reading


class _Reader:
    """Bounds-checked cursor; every read failure is a LicFormatError."""

    def __init__(self, data: bytes, end: int):
        self.data = data
        self.pos = 0
        self.end = end

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise LicFormatError(f"truncated .lic file (ends inside the {what})")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str, limit: int) -> int:
        result = shift = 0
        for i in range(10):  # u64 needs at most 10 LEB128 bytes
            b = self.u8(what)
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if b == 0 and i > 0:
                    raise LicFormatError(f"corrupted .lic file (non-minimal number in the {what})")
                if result > limit:
                    raise LicFormatError(f"corrupted .lic file ({what} {result} exceeds {limit})")
                return result
            shift += 7
        raise LicFormatError(f"corrupted .lic file (number too long in the {what})")

    def string(self, what: str, limit: int, allow_empty: bool = False) -> str:
        n = self.varint(f"{what} length", limit)
        if n == 0 and not allow_empty:
            raise LicFormatError(f"corrupted .lic file (empty {what})")
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise LicFormatError(f"corrupted .lic file ({what} is not valid UTF-8)") from None


def _check_magic_version(data: bytes) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise LicFormatError("not a .lic file (expected bytes)")
    if len(data) < len(MAGIC) or bytes(data[:4]) != MAGIC:
        if len(data) < len(MAGIC) and MAGIC.startswith(bytes(data)) and data:
            raise LicFormatError(f"truncated .lic file ({len(data)} bytes)")
        raise LicFormatError("not a .lic file (wrong magic bytes)")
    if len(data) < 5:
        raise LicFormatError(f"truncated .lic file ({len(data)} bytes)")
    version = data[4]
    if version > MAX_FORMAT_VERSION:
        raise LicFormatError(f"this file was made by a newer LIC Studio (format v{version}); "
                             f"this version reads formats v{MIN_FORMAT_VERSION}–"
                             f"v{MAX_FORMAT_VERSION}")
    if version < 1:
        raise LicFormatError("corrupted .lic file (format version 0)")
    if version < MIN_FORMAT_VERSION:
        raise LicFormatError(f"this .lic file is format v{version}{_writer(data)}; this LIC Studio "
                             f"reads formats v{MIN_FORMAT_VERSION}–v{MAX_FORMAT_VERSION} only (they "
                             f"decode identically on every machine) — re-encode the image with "
                             f"this version")


def _writer(data: bytes) -> str:
    """" (written by LIC Studio X)" read from an old header's version string, if readable."""
    try:
        r = _Reader(bytes(data[:256]), min(len(data), 256))
        r.take(6, "magic")
        return f" (written by LIC Studio {r.string('software version', MAX_VERSION_STR)})"
    except LicFormatError:
        return ""


def _parse_header(r: _Reader) -> LicHeader:
    version = r.take(5, "magic")[4]
    flags = r.u8("flags")
    if flags & ~0x03:
        raise LicFormatError(f"corrupted .lic file (reserved flag bits set: 0x{flags:02x})")
    code = flags & 0x03
    if code not in _DECODER_NAMES:
        raise LicFormatError(f"corrupted .lic file (unknown decoder kind {code})")
    lic_version = r.string("software version", MAX_VERSION_STR)
    model = r.string("model name", MAX_MODEL_NAME)
    whash = bytes(r.take(8, "model hash"))
    h, w = r.varint("height", MAX_SIDE), r.varint("width", MAX_SIDE)
    ph, pw = r.varint("padded height", MAX_SIDE), r.varint("padded width", MAX_SIDE)
    if min(h, w, ph, pw) < 1:
        raise LicFormatError("corrupted .lic file (zero image size)")
    if ph < h or pw < w:
        raise LicFormatError("corrupted .lic file (padded size smaller than the image)")
    (rate_u16,) = struct.unpack("<H", r.take(2, "rate"))
    quantizer = r.string("quantizer name", MAX_QUANTIZER_NAME)
    n_params = r.varint("quantizer parameter count", MAX_PARAMS)
    params: dict[str, ParamValue] = {}
    for _ in range(n_params):
        key = r.string("quantizer parameter name", MAX_PARAM_KEY)
        if key in params:
            raise LicFormatError(f"corrupted .lic file (quantizer parameter '{key}' twice)")
        kind = r.u8("quantizer parameter type")
        if kind == 0:
            params[key] = _unzigzag(r.varint("quantizer parameter", U64_MAX))
        elif kind == 1:
            (val,) = struct.unpack("<d", r.take(8, "quantizer parameter"))
            if not math.isfinite(val):
                raise LicFormatError(f"corrupted .lic file (quantizer parameter '{key}' not finite)")
            params[key] = val
        else:
            raise LicFormatError(f"corrupted .lic file (unknown parameter type {kind})")
    steps = r.varint("diffusion steps", MAX_STEPS)
    seed = r.varint("diffusion seed", U64_MAX)
    tile = overlap = 0
    if version >= TILED_SAMPLER_VERSION:
        tile = r.varint("diffusion sampler tile", MAX_SIDE)
        overlap = r.varint("diffusion sampler overlap", MAX_SIDE)
        why = sampler_tiling_error(tile, overlap)
        if why:
            raise LicFormatError(f"corrupted .lic file ({why})")
    n_sym = r.varint("symbol check count", MAX_SYMBOL_CHECKS)
    crcs = [struct.unpack("<I", r.take(4, "symbol checks"))[0] for _ in range(n_sym)]
    n_pic = r.varint("picture check count", MAX_PICTURE_CHECKS)
    pics = []
    for _ in range(n_pic):
        dcode = r.u8("picture check decoder")
        if dcode not in _DECODER_NAMES:
            raise LicFormatError(f"corrupted .lic file (unknown decoder kind {dcode} in a "
                                 "picture check)")
        p_steps = r.varint("picture check steps", MAX_STEPS)
        p_seed = r.varint("picture check seed", U64_MAX)
        (p_crc,) = struct.unpack("<I", r.take(4, "picture check"))
        pics.append(PictureCheck(_DECODER_NAMES[dcode], p_steps, p_seed, p_crc))
    return LicHeader(model=model, weights_hash=whash, decoder=_DECODER_NAMES[code],
                     quantizer=quantizer, quantizer_params=params, rate_u16=rate_u16,
                     height=h, width=w, padded_height=ph, padded_width=pw,
                     diffusion_steps=steps, diffusion_seed=seed, diffusion_tile=tile,
                     diffusion_overlap=overlap, lic_version=lic_version,
                     symbol_crcs=crcs, picture_crcs=pics)


def _parse_all(data: bytes, end: int, claimed: bool = False
               ) -> tuple[LicHeader, list[int], int]:
    """Header, section lengths and the offset of the first section, reading up to ``end``.

    ``claimed``: accept section lengths past ``end`` (what the section table *says*; used only
    to tell a cut-short file from a corrupted one, nothing is read from them)."""
    _check_magic_version(data)
    r = _Reader(data, end)
    header = _parse_header(r)
    n = r.varint("section count", MAX_SECTIONS)
    lengths = []
    remaining = end - r.pos
    for _ in range(n):
        # a section can never be longer than what is left of the file (no huge allocations)
        ln = r.varint("section length", U64_MAX if claimed else max(0, remaining))
        lengths.append(ln)
    return header, lengths, r.pos


def peek_header(data: bytes) -> LicHeader:
    """Parse only the header (no CRC check); works on a prefix of a file (e.g. its first 4 KiB).

    For display before a full decode.  Use :func:`unpack` before trusting the contents.
    """
    _check_magic_version(data)
    return _parse_header(_Reader(data, len(data)))


def layout(data: bytes) -> FileLayout:
    """Byte accounting of a complete file (validated like :func:`unpack`)."""
    unpack(data)
    _, lengths, start = _parse_all(data, len(data) - 4)
    return FileLayout(total_bytes=len(data), header_bytes=start, section_bytes=lengths)


def unpack(data: bytes) -> tuple[LicHeader, list[bytes]]:
    """Parse and verify a complete ``.lic`` file; inverse of :func:`pack`.

    Raises :class:`LicFormatError` on any problem: "not a .lic file", a newer format version,
    "truncated", "corrupted" (CRC mismatch or impossible field values), trailing bytes.
    """
    _check_magic_version(data)
    data = bytes(data)
    if len(data) < _MIN_FILE:
        raise LicFormatError(f"truncated .lic file ({len(data)} bytes)")
    crc_stored = struct.unpack("<I", data[-4:])[0]
    crc_ok = (zlib.crc32(data[:-4]) & 0xFFFFFFFF) == crc_stored
    if not crc_ok:
        # Give the more useful message when the structure says the file is simply cut short.
        try:
            _, lengths, start = _parse_all(data, len(data), claimed=True)
            expected = start + sum(lengths) + 4
        except LicFormatError as exc:
            if str(exc).startswith("truncated"):
                raise
            expected = None
        if expected is not None and expected > len(data):
            raise LicFormatError(f"truncated .lic file ({len(data)} of {expected} bytes)")
        raise LicFormatError("corrupted .lic file (CRC mismatch)")
    header, lengths, start = _parse_all(data, len(data) - 4)
    expected = start + sum(lengths) + 4
    if expected != len(data):
        raise LicFormatError(f"corrupted .lic file (sections hold {expected - 4 - start} bytes, "
                             f"file has {len(data) - 4 - start})")
    sections, pos = [], start
    for ln in lengths:
        sections.append(data[pos:pos + ln])
        pos += ln
    return header, sections
