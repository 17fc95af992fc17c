"""The diffusion decoder's tiled sampler (issue 28, docs/diffusion.md "Big pictures: the tiled
sampler"): tiles define the picture of a picture larger than one tile.

Tiny random models and small tiles (``$LIC_DIFFUSION_TILE`` = 128,32) stand in for the product's
768/64 tiles: the grid, blend, noise keying and file field are the same code.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lic_core.bitstream import pack, unpack
from lic_core.bitstream.format import LicHeader
from lic_core.codecs import EncodeParams
from lic_core.errors import LicError, LicFormatError, LicMismatchError

REPO = Path(__file__).resolve().parents[2]
SMALL = "128,32"


def _models():
    from lic_core.decoder.diffusion import DiffusionDecoder
    from lic_core.models import build_model

    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    with torch.no_grad():  # a random g_a is nearly flat: spread the latents so symbols vary
        m.gains.gain.weight.mul_(6.0)
    dec = DiffusionDecoder.for_codec(m, arch="lite")  # the product's (CPU-sized) architecture
    with torch.no_grad():
        for p in dec.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m, dec.eval()


@pytest.fixture(scope="module")
def models():
    return _models()


@pytest.fixture(scope="module")
def codec(models):
    from lic_core.codecs.learned import LearnedCodec

    m, dec = models
    return LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec, use_finetuned=False)


def _image(h: int, w: int, seed: int = 1) -> np.ndarray:
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 90 * np.sin(xx / (4 + c) + seed) * np.cos(yy / (6 + c)) for c in range(3)],
                   -1) + rng.randn(h, w, 3) * 8
    return np.clip(img, 0, 255).astype(np.uint8)


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


PARAMS = EncodeParams(rate=0.5, decoder="diffusion", diffusion_steps=2, seed=2 ** 33 + 5)


# ----------------------------------------------------------------------------- grid and blend


@pytest.mark.parametrize("tile,overlap", [(128, 32), (128, 16), (192, 48), (256, 64),
                                          (1024, 64), (1024, 256)])
def test_blend_weights_partition_unity_exactly(tile, overlap):
    """Per axis the integer weights of the tiles covering a pixel sum to 2^B, at every pixel of
    every side (multiples of 64 up to 8192, and a few big ones); tiles start on the 16-pixel
    lattice, the first at 0, the last ending at the side, neighbours overlapping by ≥ O."""
    from lic_core.decoder.diffusion.tiles import BLEND_BITS, axis_starts, axis_weights

    sides = list(range(64, 8193, 64)) + [24000, 65536]
    for n in sides:
        starts = axis_starts(n, tile, overlap)
        size = min(n, tile)
        total = torch.zeros(n, dtype=torch.int64)
        for a, w in zip(starts, axis_weights(n, tile, overlap)):
            assert w.shape == (size,) and int(w.min()) >= 0
            total[a:a + size] += w
        assert bool((total == 1 << BLEND_BITS).all()), n
        assert starts[0] == 0 and starts[-1] + size == n
        assert all(a % 16 == 0 for a in starts)
        assert all(0 < b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
        if n > tile:  # no fewer tiles would do
            assert (len(starts) - 2) * (tile - overlap) + tile < n


def test_2d_weights_partition_unity_and_grid_is_a_function_of_the_sizes():
    from lic_core.decoder.diffusion.tiles import BLEND_BITS, TileGrid

    grid = TileGrid(448, 320, 128, 32)
    tiles = grid.tiles()
    assert [t.index for t in tiles] == list(range(len(tiles))) == list(range(len(grid)))
    assert [t.stream for t in tiles] == [t.index + 1 for t in tiles]  # stream 0: whole picture
    total = torch.zeros(448, 320, dtype=torch.float64)
    for t in tiles:
        total[t.r0:t.r0 + t.h, t.c0:t.c0 + t.w] += t.weights()
    assert bool((total == float(1 << (2 * BLEND_BITS))).all())
    again = TileGrid(448, 320, 128, 32).tiles()
    assert [(t.r0, t.c0) for t in again] == [(t.r0, t.c0) for t in tiles]
    # a side that fits one tile is one tile of that side (a 100-row strip: full-height tiles)
    strip = TileGrid(64, 1000 // 16 * 16, 128, 32)
    assert strip.tile_size == (64, 128) and strip.row_starts == [0]


def test_invalid_tilings_are_refused(monkeypatch):
    from lic_core.decoder.diffusion.tiles import TileGrid, sampler_tiling

    for tile, overlap in ((100, 32), (64, 16), (128, 0), (128, 24), (128, 48), (1024, 512)):
        with pytest.raises(LicError):
            TileGrid(512, 512, tile, overlap)
    monkeypatch.setenv("LIC_DIFFUSION_TILE", "1000")
    with pytest.raises(LicError, match="multiple of 64"):
        sampler_tiling()
    monkeypatch.setenv("LIC_DIFFUSION_TILE", "256")
    assert sampler_tiling() == (256, 64)
    monkeypatch.delenv("LIC_DIFFUSION_TILE")
    assert sampler_tiling() == (768, 64)  # the product's (memory at 48 MP, issue 28)


# ------------------------------------------------------------------------------------ format


def _header(**kw) -> LicHeader:
    base = dict(model="lic-lgem-tiny", weights_hash=b"\x01" * 8, decoder="diffusion",
                quantizer="round", height=300, width=500, padded_height=320, padded_width=512,
                diffusion_steps=6, diffusion_seed=9, lic_version="0.1.0")
    base.update(kw)
    return LicHeader(**base)


def test_file_field_v3_only_when_tiled(monkeypatch):
    """A header without a tiling is written as format v2 (the same bytes as before issue 28); a
    tiling makes a v3 file that reads back; invalid tilings are refused both ways; a reader of
    v2 only refuses a v3 file with one line."""
    from lic_core.bitstream import format as fmt

    plain = pack(_header(), [b"ab"])
    assert plain[4] == 2 and unpack(plain)[0].diffusion_tile == 0
    tiled = pack(_header(diffusion_tile=1024, diffusion_overlap=64), [b"ab"])
    assert tiled[4] == 3 and len(tiled) == len(plain) + 3  # varints: 1024 (2 B), 64 (1 B)
    h, secs = unpack(tiled)
    assert (h.diffusion_tile, h.diffusion_overlap, h.format_version, secs) == (1024, 64, 3, [b"ab"])
    assert pack(h, secs) == tiled
    with pytest.raises(LicFormatError, match="cannot write"):
        pack(_header(diffusion_tile=1000, diffusion_overlap=64), [])
    with pytest.raises(LicFormatError, match="cannot write"):
        pack(_header(diffusion_tile=0, diffusion_overlap=64), [])
    # a v3 header whose tiling is invalid (container CRC recomputed): corrupted, one line
    good = pack(_header(diffusion_tile=1024, diffusion_overlap=48), [b"ab"])
    i = good.index(bytes([0x80, 0x08, 48]))  # 1024 as a varint, then 48
    bad = bytearray(good[:-4])
    bad[i + 2] = 40  # not a multiple of 16
    import zlib
    bad += zlib.crc32(bytes(bad)).to_bytes(4, "little")
    with pytest.raises(LicFormatError, match="corrupted .*overlap 40"):
        unpack(bytes(bad))
    monkeypatch.setattr(fmt, "MAX_FORMAT_VERSION", 2)  # a reader from before issue 28
    with pytest.raises(LicFormatError, match=r"newer LIC Studio \(format v3\)") as e:
        unpack(tiled)
    assert "\n" not in str(e.value)
    assert unpack(plain)[0].diffusion_tile == 0


# ------------------------------------------------------------------------------ the sampler


def test_region_contexts_equal_the_whole_pictures(models):
    """A tile's contexts (x̂_mse, the g_s features, ŷ) are the whole picture's, cut out."""
    from lic_core.codecs.learned import exact_synthesis
    from lic_core.decoder.diffusion.exact import exact_diffusion

    m, dec = models
    synth, ex = exact_synthesis(m), exact_diffusion(dec)
    torch.manual_seed(3)
    y = torch.randn(1, m.config.M, 16, 20, dtype=torch.float64).round() * 8.0
    ctx, x_init, mse = ex.contexts(synth, y, 30000)
    for (r0, r1), (c0, c1) in (((0, 128), (96, 224)), ((128, 256), (192, 320)),
                               ((64, 192), (0, 128))):
        rc, rx, rm = ex.region_contexts(synth, y, 30000, ((r0, r1), (c0, c1)))
        for whole, part, scale in zip(ctx, rc, dec.config.cond_scales):
            assert torch.equal(part, whole[..., r0 // scale:r1 // scale, c0 // scale:c1 // scale])
        assert torch.equal(rx, x_init[..., r0:r1, c0:c1])
        assert torch.equal(rm, mse[..., r0:r1, c0:c1])


def test_one_tile_picture_is_todays_global_picture(codec, monkeypatch):
    """A picture whose padded size fits one tile is sampled by the whole-picture sampler: the
    file (format v2) and picture are the same bytes with small tiles, product tiles, or the
    direct global decode; and the frozen v2 diffusion fixture decodes as before."""
    from lic_core.codecs.learned import exact_synthesis
    from lic_core.decoder.diffusion.exact import exact_diffusion
    from lic_core.image.tensor import crop_hwc

    img = _image(120, 100)
    monkeypatch.setenv("LIC_DIFFUSION_TILE", SMALL)
    small = codec.encode(img, PARAMS)
    monkeypatch.delenv("LIC_DIFFUSION_TILE")
    product = codec.encode(img, PARAMS)
    assert small.data == product.data and unpack(small.data)[0].format_version == 2
    header, sections = unpack(small.data)
    y = codec.decode(small.data)
    assert y.info["picture_checked"] and y.info["diffusion_sampler"] == "whole"
    assert np.array_equal(y.reconstruction, small.reconstruction)
    # the global sampler called directly on the same latents
    from lic_core.codecs.learned import latent_codec
    from lic_core.codecs.lic_file import check_geometry, header_quantizer

    engine = codec.engine()
    gains = engine.gains_for_code(header.rate_u16)
    coding = latent_codec(codec.model, engine).decompress(
        sections, check_geometry(header), gains, header_quantizer(header))
    pic, _ = exact_diffusion(codec.diffusion_decoder()).decode(
        exact_synthesis(codec.model), coding.y_hat_gained, header.rate_u16, header.diffusion_steps,
        header.diffusion_seed)
    assert np.array_equal(crop_hwc(pic, 120, 100), small.reconstruction)


def test_frozen_diffusion_fixture_unchanged_with_small_tiles(monkeypatch):
    from test_format_fixtures import CASES, V2, _codec

    case = next(c for c in CASES if c["decoder"] == "diffusion")
    monkeypatch.setenv("LIC_DIFFUSION_TILE", SMALL)
    r = _codec(case).decode((V2 / case["file"]).read_bytes())
    assert r.info["picture_checked"]
    assert _sha(r.reconstruction) == case["pixels_sha256"]


_WORKER = r"""
import hashlib, json, sys, zlib
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, sys.argv[3])
from test_diffusion_tiles import _models
from lic_core.codecs.learned import LearnedCodec
m, dec = _models()
codec = LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec, use_finetuned=False)
r = codec.decode(Path(sys.argv[2]).read_bytes())
assert r.info["picture_checked"] and r.info["diffusion_sampler"] == "tiled 128/32"
pic = np.ascontiguousarray(r.reconstruction)
print(json.dumps({"threads": torch.get_num_threads(), "crc": zlib.crc32(pic.tobytes()),
                  "sha": hashlib.sha256(pic.tobytes()).hexdigest()}))
"""


def test_multi_tile_picture_decodes_bit_identically_with_1_and_2_threads(codec, tmp_path,
                                                                         monkeypatch):
    """A 200×300 picture (padded 256×320: 3×3 tiles of 128 at T = 128, O = 32) is a v3 file
    recording the tiling; fresh processes with 1 and 2 torch threads decode the encoder's picture
    (the file's check value passes) — and the env var does not steer the decoder."""
    from lic_core.bitstream.checks import picture_crc

    monkeypatch.setenv("LIC_DIFFUSION_TILE", SMALL)
    r = codec.encode(_image(200, 300), PARAMS)
    h, _ = unpack(r.data)
    assert (h.format_version, h.diffusion_tile, h.diffusion_overlap) == (3, 128, 32)
    assert h.picture_check("diffusion", PARAMS.diffusion_steps, PARAMS.seed).crc == \
        picture_crc(r.reconstruction)
    f = tmp_path / "tiled.lic"
    f.write_bytes(r.data)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_WAIT_POLICY": "passive"}
    env.pop("LIC_DIFFUSION_TILE")  # the file's tiling decodes it, not the environment's
    got = []
    for threads in (1, 2):
        p = subprocess.run([sys.executable, "-c", _WORKER, str(threads), str(f),
                            str(Path(__file__).parent)], cwd=REPO, capture_output=True, text=True,
                           timeout=600, env=env)
        assert p.returncode == 0, p.stderr[-3000:]
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out.pop("threads") == threads
        got.append(out)
    assert got[0] == got[1] == {"crc": picture_crc(r.reconstruction), "sha": _sha(r.reconstruction)}


def test_tile_pixels_outside_overlaps_depend_only_on_its_conditioning_region(models):
    """Changing the latents beyond tile 0's conditioning region (its pixels plus the g_s
    receptive margin) changes the picture elsewhere but not tile 0's own pixels (those outside
    every blend ramp); the whole-picture sampler, global, changes them."""
    from lic_core.codecs.learned import exact_synthesis
    from lic_core.decoder.diffusion.exact import exact_diffusion
    from lic_core.decoder.diffusion.tiles import BLEND_BITS, TileGrid

    m, dec = models
    synth, ex = exact_synthesis(m), exact_diffusion(dec)
    torch.manual_seed(5)
    y = torch.randn(1, m.config.M, 16, 20, dtype=torch.float64).round() * 8.0
    t0 = TileGrid(256, 320, 128, 32).tiles()[0]
    w = t0.weights()
    own = w == float(1 << (2 * BLEND_BITS))  # tile 0 alone makes these pixels
    rows, cols = (int(own.any(1).sum()), int(own.any(0).sum()))
    assert own[:rows, :cols].all() and 0 < rows < 128 and 0 < cols < 128
    reach = synth.margins[0]  # latents of ŷ the g_s features of a pixel depend on, around it
    y2 = y.clone()
    y2[..., 128 // 16 + reach:, :] += 24.0  # everything below tile 0's conditioning region
    y2[..., :, 128 // 16 + reach:] -= 16.0  # and to its right
    a, _ = ex.decode_tiled(synth, y, 30000, 2, 7, 128, 32, mse=False)
    b, _ = ex.decode_tiled(synth, y2, 30000, 2, 7, 128, 32, mse=False)
    assert np.array_equal(a[:rows, :cols], b[:rows, :cols])
    assert not np.array_equal(a, b)
    g1, _ = ex.decode(synth, y, 30000, 2, 7)
    g2, _ = ex.decode(synth, y2, 30000, 2, 7)
    assert not torch.equal(g1[..., :rows, :cols], g2[..., :rows, :cols])


def test_old_multi_tile_file_decodes_with_the_global_sampler(codec, monkeypatch):
    """A diffusion file of a picture larger than a tile written without the field (what the
    encoder wrote before issue 28: here, tiles larger than the picture) keeps decoding with the
    whole-picture sampler — its check value passes — and keeps its memory refusal; an MSE file
    decoded with the diffusion decoder (no picture check) uses the product's tiled sampler."""
    from lic_core.decoder.diffusion import fits

    img = _image(200, 300)
    old = codec.encode(img, PARAMS)  # product tiles (768): the picture fits one
    assert unpack(old.data)[0].format_version == 2
    monkeypatch.setenv("LIC_DIFFUSION_TILE", SMALL)  # a decoder whose tiles are smaller
    r = codec.decode(old.data)
    assert r.info["picture_checked"] and r.info["diffusion_sampler"] == "whole"
    assert np.array_equal(r.reconstruction, old.reconstruction)
    monkeypatch.setattr(fits, "available_bytes", lambda: 0.5e9)
    with pytest.raises(LicError, match="holds the whole picture"):
        codec.decode(old.data)
    monkeypatch.undo()
    monkeypatch.setenv("LIC_DIFFUSION_TILE", SMALL)
    mse = codec.encode(img, EncodeParams(rate=0.5, decoder="mse", diffusion_steps=2, seed=4))
    assert unpack(mse.data)[0].format_version == 2
    d = codec.decode(mse.data, decoder="diffusion")
    assert d.info["diffusion_sampler"] == "tiled 128/32" and not d.info["picture_checked"]


def test_picture_check_catches_a_wrong_tiled_picture(codec, monkeypatch):
    """The file's CRC is of the tiled picture: a decoder computing another picture — one tile's
    last values off by one grid step, or the file's overlap changed (container CRC fixed) — is
    refused with LicMismatchError, never shown."""
    from lic_core.decoder.diffusion.exact import ExactDiffusion

    monkeypatch.setenv("LIC_DIFFUSION_TILE", SMALL)
    r = codec.encode(_image(200, 300), PARAMS)
    header, sections = unpack(r.data)
    header.diffusion_overlap = 16
    with pytest.raises(LicMismatchError, match="diffusion"):
        codec.decode(pack(header, sections))
    orig = ExactDiffusion._sample

    def moved(self, adapted, x_init, shape, steps, seed, stream, *a, **k):
        x = orig(self, adapted, x_init, shape, steps, seed, stream, *a, **k)
        if stream == 5:
            x[0, :, 40:44, 50:54] += 0.25  # on the pixel grid: ~30 grey levels
        return x

    monkeypatch.setattr(ExactDiffusion, "_sample", moved)
    with pytest.raises(LicMismatchError, match="diffusion"):
        codec.decode(r.data)


def test_the_cli_and_the_studio_decode_an_mse_file_with_diffusion_alike(monkeypatch):
    """`lic decompress --decoder diffusion` rewrites the header's decoder; the studio passes
    ``decoder=``: the same file and decoder must give the same picture (the sampler is chosen by
    the checks the file carries, not by the header's decoder field)."""
    import dataclasses

    from lic_core.codecs.learned import LearnedCodec

    m, dec = _models()
    codec = LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec, use_finetuned=False)
    monkeypatch.setenv("LIC_DIFFUSION_TILE", "128,32")
    mse = codec.encode(_image(200, 300), EncodeParams(rate=0.5, decoder="mse", diffusion_steps=2,
                                                      seed=4))
    studio = codec.decode(mse.data, decoder="diffusion")
    header, sections = unpack(mse.data)
    cli = codec.decode(pack(dataclasses.replace(header, decoder="diffusion"), sections))
    assert studio.info["diffusion_sampler"] == cli.info["diffusion_sampler"] != "whole"
    assert np.array_equal(studio.reconstruction, cli.reconstruction)


def test_mse_crc_is_the_crc_of_the_mse_picture(models):
    """``mse="crc"`` (what a coder asks for: the file's MSE check value) gives the CRC32 of the
    very MSE picture ``mse=True`` returns, computed band by band without holding it (issue 28),
    and the same diffusion picture; odd sizes crop the last tile row and column."""
    from lic_core.bitstream.checks import picture_crc
    from lic_core.codecs.learned import exact_synthesis
    from lic_core.decoder.diffusion.exact import exact_diffusion

    m, dec = models
    synth, ex = exact_synthesis(m), exact_diffusion(dec)
    torch.manual_seed(7)
    y = torch.randn(1, m.config.M, 20, 12, dtype=torch.float64).round() * 8.0
    for size in ((320, 192), (301, 170)):
        pic, mse = ex.decode_tiled(synth, y, 30000, 1, 3, 128, 32, size=size, mse=True)
        pic2, crc = ex.decode_tiled(synth, y, 30000, 1, 3, 128, 32, size=size, mse="crc")
        assert mse.shape == (*size, 3) and isinstance(crc, int)
        assert crc == picture_crc(mse) and np.array_equal(pic, pic2)
    with pytest.raises(ValueError):
        ex.decode_tiled(synth, y, 30000, 1, 3, 128, 32, mse="picture")


@pytest.mark.skipif(sys.version_info < (3, 11),
                    reason="before 3.11 the caller's argument stack holds the photo during a call")
def test_encoder_lets_go_of_the_photo_before_the_sampler(codec, monkeypatch):
    """A caller that hands the photo over (``lic compress``) gets it freed before the tiled
    sampler runs: the encoder keeps no reference once g_a has read it (issue 28)."""
    import weakref

    from lic_core.decoder.diffusion.exact import ExactDiffusion

    monkeypatch.setenv("LIC_DIFFUSION_TILE", SMALL)
    photo = [_image(200, 300)]
    ref = weakref.ref(photo[0])
    alive = []
    orig = ExactDiffusion.decode_tiled

    def spy(self, *a, **k):
        alive.append(ref() is not None)
        return orig(self, *a, **k)

    monkeypatch.setattr(ExactDiffusion, "decode_tiled", spy)
    r = codec.encode(photo.pop(), EncodeParams(rate=0.5, decoder="diffusion", diffusion_steps=1))
    assert alive == [False] and ref() is None and r.reconstruction.shape == (200, 300, 3)


def test_band_flushed_in_row_chunks_gives_the_same_picture(models, monkeypatch):
    """The band of finished rows is converted to uint8 FLUSH_ROWS rows at a time (memory at
    48 MP); the picture does not depend on the chunk size (the conversion is elementwise)."""
    import lic_core.decoder.diffusion.exact as exact_mod
    from lic_core.codecs.learned import exact_synthesis
    from lic_core.decoder.diffusion.exact import exact_diffusion

    m, dec = models
    synth, ex = exact_synthesis(m), exact_diffusion(dec)
    torch.manual_seed(6)
    y = torch.randn(1, m.config.M, 16, 12, dtype=torch.float64).round() * 8.0
    monkeypatch.setattr(exact_mod, "FLUSH_ROWS", 1 << 16)
    whole, _ = ex.decode_tiled(synth, y, 30000, 1, 3, 128, 32, size=(250, 190), mse=False)
    monkeypatch.setattr(exact_mod, "FLUSH_ROWS", 7)  # chunks that straddle tile rows
    chunked, _ = ex.decode_tiled(synth, y, 30000, 1, 3, 128, 32, size=(250, 190), mse=False)
    assert whole.shape == (250, 190, 3) and np.array_equal(whole, chunked)
