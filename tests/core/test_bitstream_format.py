"""The .lic container v2 (docs/methods.md §6.5, §11.4): round trips, CRC, check values, hostile
inputs, the one-line refusal of format-v1 files."""
from __future__ import annotations

import random
import struct
import time
import zlib

import pytest

from lic_core.bitstream import (
    MAX_FORMAT_VERSION,
    LicHeader,
    PictureCheck,
    layout,
    pack,
    peek_header,
    unpack,
)
from lic_core.errors import LicFormatError


def _random_header(rng: random.Random) -> LicHeader:
    def name(n):
        alphabet = "abcdefghijklmnopqrstuvwxyz-0123456789_éλ"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, n)))

    h = rng.randint(1, 1 << 16)
    w = rng.randint(1, 1 << 16)
    params = {}
    for _ in range(rng.randint(0, 5)):
        key = name(12)
        params[key] = (rng.randint(-(1 << 63), (1 << 63) - 1) if rng.random() < 0.5
                       else rng.uniform(-1e6, 1e6))
    return LicHeader(
        model=name(40), weights_hash=bytes(rng.getrandbits(8) for _ in range(8)),
        decoder=rng.choice(["mse", "gan", "diffusion"]), quantizer=name(10),
        quantizer_params=params, rate_u16=rng.randint(0, 65535), height=h, width=w,
        padded_height=rng.randint(h, 1 << 16), padded_width=rng.randint(w, 1 << 16),
        diffusion_steps=rng.randint(0, 1000), diffusion_seed=rng.randint(0, (1 << 64) - 1),
        lic_version=name(10),
        symbol_crcs=[rng.getrandbits(32) for _ in range(rng.randint(0, 12))],
        picture_crcs=[PictureCheck(rng.choice(["mse", "gan", "diffusion"]), rng.randint(0, 99),
                                   rng.randint(0, (1 << 64) - 1), rng.getrandbits(32))
                      for _ in range(rng.randint(0, 3))])


def _small_file(seed: int = 0) -> bytes:
    rng = random.Random(seed)
    h = LicHeader(model="lic-lgem-preview", weights_hash=b"\x01\x02\x03\x04\x05\x06\x07\x08",
                  decoder="mse", quantizer="deadzone", quantizer_params={"offset": 0.3, "k": 4096},
                  rate_u16=32768, height=512, width=768, padded_height=512, padded_width=768,
                  diffusion_steps=25, diffusion_seed=7, symbol_crcs=[1, 2, 0xFFFFFFFF],
                  picture_crcs=[PictureCheck("mse", 0, 0, 0x12345678)])
    sections = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (12, 40)]
    return pack(h, sections)


def test_random_headers_round_trip():
    rng = random.Random(1234)
    for _ in range(300):
        h = _random_header(rng)
        sections = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 50)))
                    for _ in range(rng.randint(0, 4))]
        data = pack(h, sections)
        h2, s2 = unpack(data)
        assert h2 == h
        assert s2 == sections
        assert peek_header(data) == h
        lay = layout(data)
        assert lay.total_bytes == len(data)
        assert lay.header_bytes + sum(lay.section_bytes) + 4 == len(data)
        assert lay.section_bytes == [len(s) for s in sections]


def test_header_is_small_and_sorted_params_are_canonical():
    h1 = LicHeader(model="m", weights_hash=bytes(8), decoder="mse", quantizer="round",
                   quantizer_params={"a": 1, "b": 2.0})
    h2 = LicHeader(model="m", weights_hash=bytes(8), decoder="mse", quantizer="round",
                   quantizer_params={"b": 2.0, "a": 1})
    assert pack(h1, []) == pack(h2, [])
    data = _small_file()
    assert layout(data).header_bytes < 120


def test_peek_header_works_on_a_prefix():
    data = _small_file()
    hdr = peek_header(data[: layout(data).header_bytes])
    assert hdr.model == "lic-lgem-preview" and hdr.width == 768 and hdr.rate_u16 == 32768


def test_crc_catches_every_single_byte_corruption():
    data = _small_file()
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(LicFormatError):
                unpack(bytes(bad))


def test_specific_messages():
    data = _small_file()
    with pytest.raises(LicFormatError, match="not a .lic file"):
        unpack(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(LicFormatError, match="not a .lic file"):
        unpack(b"")
    with pytest.raises(LicFormatError, match="truncated"):
        unpack(data[:-10])
    with pytest.raises(LicFormatError, match="truncated"):
        unpack(data[:3])
    bad = bytearray(data)
    bad[-20] ^= 0x10  # payload byte
    with pytest.raises(LicFormatError, match="corrupted"):
        unpack(bytes(bad))
    newer = bytearray(data)
    newer[4] = MAX_FORMAT_VERSION + 1  # v3 (issue 28's tiled sampler) is read; v4 is not
    with pytest.raises(LicFormatError,
                       match=rf"newer LIC Studio \(format v{MAX_FORMAT_VERSION + 1}\)"):
        unpack(bytes(newer))
    with pytest.raises(LicFormatError, match="trailing|corrupted"):
        unpack(data + b"\x00")


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def test_hostile_fields_with_valid_crc_are_refused():
    data = _small_file()
    body = bytearray(data[:-4])
    # unknown decoder kind 3 in the flags byte
    b = bytearray(body)
    b[5] = 3
    with pytest.raises(LicFormatError, match="decoder kind"):
        unpack(_recrc(bytes(b)))
    b = bytearray(body)
    b[5] = 0x80
    with pytest.raises(LicFormatError, match="reserved"):
        unpack(_recrc(bytes(b)))
    # bad utf-8 in the software version string (starts at offset 7)
    b = bytearray(body)
    b[7] = 0xFF
    with pytest.raises(LicFormatError, match="UTF-8"):
        unpack(_recrc(bytes(b)))
    # a gigantic section length: must be refused without allocating
    hdr = LicHeader(model="m", weights_hash=bytes(8), decoder="mse", quantizer="round")
    good = pack(hdr, [b"abc"])
    start = layout(good).header_bytes
    body = bytearray(good[: start - 1]) + bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + good[start:-4]
    with pytest.raises(LicFormatError):
        unpack(_recrc(bytes(body)))
    # absurd image size (2^20) with a valid CRC
    hdr_big = pack(hdr, [])
    with pytest.raises(LicFormatError):
        pack(LicHeader(model="m", weights_hash=bytes(8), decoder="mse", quantizer="round",
                       height=1 << 20, width=4, padded_height=1 << 20, padded_width=64), [])
    assert unpack(hdr_big)[0] == hdr


def test_pack_refuses_invalid_headers():
    base = dict(model="m", weights_hash=bytes(8), decoder="mse", quantizer="round")
    for bad in (dict(decoder="vae"), dict(weights_hash=b"123"), dict(model=""),
                dict(rate_u16=70000), dict(height=0), dict(padded_width=0),
                dict(quantizer_params={"x": float("nan")}), dict(quantizer_params={"x": "s"}),
                dict(diffusion_seed=-1)):
        with pytest.raises(LicFormatError):
            pack(LicHeader(**{**base, **bad}), [])


def test_random_mutations_and_truncations_never_escape():
    rng = random.Random(99)
    files = [_small_file(s) for s in range(4)]
    hdr = LicHeader(model="x" * 30, weights_hash=bytes(8), decoder="diffusion", quantizer="tcq",
                    quantizer_params={"lam": 0.5}, diffusion_steps=50, diffusion_seed=1 << 60)
    files.append(pack(hdr, [bytes(range(256)) * 3, b""]))
    t0 = time.perf_counter()
    outcomes = {"error": 0, "ok": 0}
    for _ in range(3000):
        data = bytearray(rng.choice(files))
        op = rng.random()
        if op < 0.3:
            data = data[: rng.randint(0, len(data) - 1)]
        elif op < 0.6:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
        elif op < 0.8:
            pos = rng.randrange(len(data))
            data[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
        else:
            # mutate then fix the CRC, so the field validation itself is exercised
            body = bytearray(data[:-4])
            for _ in range(rng.randint(1, 3)):
                body[rng.randrange(len(body))] = rng.getrandbits(8)
            data = bytearray(_recrc(bytes(body)))
        for fn in (unpack, peek_header):
            try:
                fn(bytes(data))
                outcomes["ok"] += 1
            except LicFormatError as exc:
                assert "\n" not in str(exc)
                outcomes["error"] += 1
    assert outcomes["error"] > 3000
    assert time.perf_counter() - t0 < 20


def test_a_version_1_file_gets_one_line_naming_its_version():
    """v1 files decoded with machine-dependent float arithmetic: refused, with what to do."""
    old = bytearray(_small_file())
    old[4] = 1
    old = _recrc(bytes(old[:-4]))
    for fn in (unpack, peek_header, layout):
        with pytest.raises(LicFormatError) as exc:
            fn(old)
        msg = str(exc.value)
        assert "\n" not in msg and "format v1" in msg and "re-encode" in msg
        assert "written by LIC Studio 0.1.0" in msg and "corrupted" not in msg
