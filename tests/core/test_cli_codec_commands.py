"""``lic compress / decompress / info / models`` through lic_core.cli.main (exit codes, files).

A throw-away learned codec ("test-raw", registered only inside these tests) stores coarsened
pixels in a real .lic container, so the full compress -> info -> decompress path is exercised
without the learned model.
"""
from __future__ import annotations

import json
import sys
import weakref
import zlib

import numpy as np
import pytest
from PIL import Image

from lic_core.bitstream import LicHeader, pack, unpack
from lic_core.cli import main
from lic_core.codecs import Codec, DecodeResult, EncodeParams, EncodeResult, registry
from lic_core.image import load_image


class RawTestCodec(Codec):
    name = "test-raw"
    family = "learned"
    rate_label = "slider"
    rate_range = (0.0, 1.0)
    default_rate = 0.5
    quantizers = ("round", "deadzone")
    decoders = ("mse", "gan")
    file_extension = ".lic"

    def encode(self, image, params: EncodeParams, progress=None) -> EncodeResult:
        h, w = image.shape[:2]
        step = 1 + int(round((1 - params.rate) * 31))  # lower rate -> coarser pixels
        q = (image // step).astype(np.uint8)
        hdr = LicHeader(model=self.name, weights_hash=b"testtest", decoder=params.decoder,
                        quantizer=params.quantizer, quantizer_params=params.quantizer_params,
                        rate_u16=round(params.rate * 65535), height=h, width=w,
                        padded_height=-(-h // 64) * 64, padded_width=-(-w // 64) * 64,
                        diffusion_steps=params.diffusion_steps, diffusion_seed=params.seed)
        data = pack(hdr, [bytes([step]), zlib.compress(q.tobytes())])
        return EncodeResult(data=data, reconstruction=self.decode(data).reconstruction,
                            bpp=8 * len(data) / (h * w), params=params, codec=self.name,
                            file_extension=".lic")

    def decode(self, data, progress=None) -> DecodeResult:
        hdr, (step, payload) = unpack(data)
        q = np.frombuffer(zlib.decompress(payload), np.uint8).reshape(hdr.height, hdr.width, 3)
        rec = (q.astype(np.int32) * step[0] + step[0] // 2).clip(0, 255).astype(np.uint8)
        if hdr.decoder == "gan":  # a visibly different "decoder" so overrides can be checked
            rec = 255 - rec
        return DecodeResult(reconstruction=rec, codec=self.name, info={"decoder": hdr.decoder})


@pytest.fixture
def test_codec(monkeypatch):
    registry.list_codecs()  # import the real providers into the real registry first
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    monkeypatch.setattr(registry, "_CACHE", dict(registry._CACHE))
    registry.register_codec("test-raw")(RawTestCodec)
    return "test-raw"


@pytest.fixture
def image_file(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    p = tmp_path / "in.png"
    Image.fromarray(a).save(p)
    return p, a


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("lic: error: ") and "Traceback" not in err
    return lines[0]


def test_full_round_trip(test_codec, image_file, tmp_path, capsys):
    src, a = image_file
    out = tmp_path / "x.lic"
    rc = main(["compress", str(src), str(out), "--codec", test_codec, "--rate", "1",
               "--quantizer", "deadzone", "--quantizer-param", "offset=0.25",
               "--quantizer-param", "k=7", "--seed", "9"])
    assert rc == 0
    assert "bpp" in capsys.readouterr().out
    hdr, _ = unpack(out.read_bytes())
    assert hdr.model == "test-raw" and hdr.rate_u16 == 65535 and hdr.quantizer == "deadzone"
    assert hdr.quantizer_params == {"offset": 0.25, "k": 7} and hdr.diffusion_seed == 9
    assert (hdr.height, hdr.width) == (37, 53)

    png = tmp_path / "x.png"
    assert main(["decompress", str(out), str(png)]) == 0
    np.testing.assert_array_equal(load_image(png), a)  # step 1 at rate 1: lossless
    assert "x.png" in capsys.readouterr().out

    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["header"]["model"] == "test-raw" and info["total_bytes"] == out.stat().st_size
    assert info["header_bytes"] + sum(info["section_bytes"]) + 4 == info["total_bytes"]
    assert info["bpp"] == pytest.approx(8 * out.stat().st_size / (37 * 53))
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    for word in ("test-raw", "deadzone", "offset=0.25", "53×37", "bpp", "section 1"):
        assert word in text


@pytest.mark.skipif(sys.version_info < (3, 11),
                    reason="before 3.11 the caller's argument stack holds the photo during a call")
def test_compress_hands_the_photo_over(test_codec, image_file, tmp_path, monkeypatch):
    """`lic compress` keeps no reference to the photo while the codec encodes it, so a codec
    can free it once read (the learned codec does, before its decoder: issue 28)."""
    seen, orig = [], RawTestCodec.encode

    def encode(self, image, params, progress=None):
        ref = weakref.ref(image)
        kept = image.copy()
        del image
        seen.append(ref() is None)
        return orig(self, kept, params, progress)

    monkeypatch.setattr(registry, "_CACHE", {})
    monkeypatch.setattr(RawTestCodec, "encode", encode)
    out = tmp_path / "x.lic"
    assert main(["compress", str(image_file[0]), str(out), "--codec", test_codec]) == 0
    assert seen == [True] and out.is_file()


def test_decoder_override_and_default_output_names(test_codec, image_file, tmp_path):
    src, a = image_file
    assert main(["compress", str(src), "--codec", test_codec, "--rate", "1", "--quiet"]) == 0
    lic = src.with_suffix(".lic")
    assert lic.exists()
    gan = tmp_path / "gan.png"
    assert main(["decompress", str(lic), str(gan), "--decoder", "gan", "--quiet"]) == 0
    np.testing.assert_array_equal(load_image(gan), 255 - a)
    # the default output name in.png is the input itself: refused, the input is intact
    assert main(["decompress", str(lic), "--quiet"]) == 2
    np.testing.assert_array_equal(load_image(src), a)
    other = lic.rename(tmp_path / "other.lic")
    assert main(["decompress", str(other), "--quiet"]) == 0
    np.testing.assert_array_equal(load_image(tmp_path / "other.png"), a)


def test_existing_output_not_overwritten_without_force(test_codec, image_file, tmp_path, capsys):
    src, _ = image_file
    out = tmp_path / "y.lic"
    out.write_bytes(b"precious")
    assert main(["compress", str(src), str(out), "--codec", test_codec]) == 2
    assert "--force" in _one_line_error(capsys)
    assert out.read_bytes() == b"precious"
    assert main(["compress", str(src), str(out), "--codec", test_codec, "--force",
                 "--quiet"]) == 0
    assert out.read_bytes()[:4] == b"LIC1"
    png = tmp_path / "y.png"
    png.write_bytes(b"precious")
    assert main(["decompress", str(out), str(png)]) == 2
    assert "--force" in _one_line_error(capsys)
    assert png.read_bytes() == b"precious"


@pytest.mark.parametrize("case", ["missing", "not_image", "text_lic", "truncated_lic",
                                  "corrupt_lic", "bad_rate", "bad_quantizer", "bad_param",
                                  "unknown_codec", "pixel_limit", "unknown_model"])
def test_bad_inputs_exit_2_with_one_line(case, test_codec, image_file, tmp_path, capsys):
    src, _ = image_file
    good = tmp_path / "good.lic"
    assert main(["compress", str(src), str(good), "--codec", test_codec, "--quiet"]) == 0
    out = tmp_path / "out.any"
    if case == "missing":
        argv = ["compress", str(tmp_path / "nope.png"), str(out), "--codec", test_codec]
    elif case == "not_image":
        t = tmp_path / "notes.txt"
        t.write_text("not an image")
        argv = ["compress", str(t), str(out), "--codec", test_codec]
    elif case == "text_lic":
        t = tmp_path / "text.lic"
        t.write_text("hello")
        argv = ["decompress", str(t), str(tmp_path / "o.png")]
    elif case == "truncated_lic":
        t = tmp_path / "trunc.lic"
        t.write_bytes(good.read_bytes()[:-7])
        argv = ["decompress", str(t), str(tmp_path / "o.png")]
    elif case == "corrupt_lic":
        b = bytearray(good.read_bytes())
        b[len(b) // 2] ^= 0x40
        t = tmp_path / "corrupt.lic"
        t.write_bytes(bytes(b))
        argv = ["info", str(t)]
    elif case == "bad_rate":
        argv = ["compress", str(src), str(out), "--codec", test_codec, "--rate", "3"]
    elif case == "bad_quantizer":
        argv = ["compress", str(src), str(out), "--codec", test_codec, "--quantizer", "zzz"]
    elif case == "bad_param":
        argv = ["compress", str(src), str(out), "--codec", test_codec,
                "--quantizer-param", "offset"]
    elif case == "unknown_codec":
        argv = ["compress", str(src), str(out), "--codec", "no-such-codec"]
    elif case == "pixel_limit":
        argv = ["compress", str(src), str(out), "--codec", test_codec, "--max-pixels", "100"]
    else:  # a valid file naming a model nobody registered
        hdr, secs = unpack(good.read_bytes())
        hdr.model = "ghost-model"
        t = tmp_path / "ghost.lic"
        t.write_bytes(pack(hdr, secs))
        argv = ["decompress", str(t), str(tmp_path / "o.png")]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    expect = {"missing": "no such file", "not_image": "not an image", "text_lic": "not a .lic",
              "truncated_lic": "truncated", "corrupt_lic": "corrupted", "bad_rate": "range",
              "bad_quantizer": "quantizer", "bad_param": "key=value",
              "unknown_codec": "unknown codec", "pixel_limit": "--max-pixels",
              "unknown_model": "ghost-model"}[case]
    assert expect in line
    assert not out.exists() and not (tmp_path / "o.png").exists()


def test_models_lists_codecs(test_codec, capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["name"] == "test-raw")
    assert row["available"] and row["family"] == "learned" and row["decoders"] == ["mse", "gan"]
    assert main(["models"]) == 0
    assert "test-raw" in capsys.readouterr().out


def test_classical_codec_through_the_same_command(image_file, tmp_path):
    from lic_core.codecs import get_codec, list_codecs

    if "jpeg" not in list_codecs() or not get_codec("jpeg").available()[0]:
        pytest.fail("the jpeg codec should always be available with Pillow")
    src, a = image_file
    out = tmp_path / "x.jpg"
    assert main(["compress", str(src), str(out), "--codec", "jpeg", "--rate", "90",
                 "--quiet"]) == 0
    dec = load_image(out)
    assert dec.shape == a.shape


def test_default_codec_prefers_available_learned(monkeypatch, image_file, tmp_path):
    from lic_core.cli.cmd_compress import default_codec_name
    from lic_core.errors import LicError

    registry.list_codecs()
    jpeg = registry._FACTORIES["jpeg"]

    class Unavailable(RawTestCodec):
        name = "lic-lgem"

        def available(self):
            return False, "weights missing"

    class Preferred(RawTestCodec):
        name = "lic-lgem"

    monkeypatch.setattr(registry, "_CACHE", {})
    monkeypatch.setattr(registry, "_FACTORIES", {"jpeg": jpeg})
    with pytest.raises(LicError, match="no learned codec"):
        default_codec_name()
    monkeypatch.setattr(registry, "_FACTORIES", {"jpeg": jpeg, "test-raw": RawTestCodec,
                                                 "lic-lgem": Unavailable})
    assert default_codec_name() == "test-raw"
    src, _ = image_file
    assert main(["compress", str(src), str(tmp_path / "d.lic"), "--quiet"]) == 0
    assert unpack((tmp_path / "d.lic").read_bytes())[0].model == "test-raw"
    monkeypatch.setattr(registry, "_CACHE", {})
    monkeypatch.setattr(registry, "_FACTORIES", {"jpeg": jpeg, "test-raw": RawTestCodec,
                                                 "lic-lgem": Preferred})
    assert default_codec_name() == "lic-lgem"
