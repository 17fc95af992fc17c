"""HiFiC codec: real .lic bitstreams, exact round trip with fresh objects, refusal of foreign
weights, availability without trained weights (docs/methods.md §8, §6.3–6.5;
§11 items 16–19)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lic_core.bitstream.format import unpack
from lic_core.codecs import get_codec, list_codecs
from lic_core.codecs.base import EncodeParams
from lic_core.codecs.hific import UNAVAILABLE_REASON, HificCodec, load_hific
from lic_core.errors import LicError, LicFormatError, ModelNotFoundError
from lic_core.models.hific import build_hific


def _image(h: int = 70, w: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 9.0), 128 + 90 * np.cos(yy / 7.0),
                     128 + 60 * np.sin((xx + yy) / 13.0)], axis=-1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    model = build_hific("hific-tiny").eval()
    model.entropy_bottleneck.update_tables()
    return model


def _fresh_copy(model):
    other = build_hific("hific-tiny")
    other.load_state_dict(model.state_dict())
    return other


@pytest.fixture(scope="module")
def tiny_model():
    return _tiny(0)


def test_registered_with_the_codec_interface():
    assert "hific-small" in list_codecs()
    codec = get_codec("hific-small")
    assert isinstance(codec, HificCodec)
    assert codec.family == "learned" and codec.decoders == ("gan",)
    assert codec.quantizers == ("round",) and codec.rate_range == (0.0, 1.0)
    assert codec.file_extension == ".lic"


def test_unavailable_without_trained_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(tmp_path))
    codec = HificCodec()
    assert codec.available() == (False, UNAVAILABLE_REASON)
    assert codec.describe()["available"] is False
    with pytest.raises(ModelNotFoundError):
        codec.encode(_image(), EncodeParams(rate=0.5, decoder="gan"))
    with pytest.raises(ModelNotFoundError):
        load_hific()


@pytest.mark.parametrize("rate", [0.0, 0.37, 1.0])
def test_round_trip_with_fresh_objects_is_bit_exact(tiny_model, rate):
    img = _image()
    res = HificCodec(model=tiny_model).encode(img, EncodeParams(rate=rate, decoder="gan"))
    assert res.reconstruction.shape == img.shape and res.reconstruction.dtype == np.uint8
    assert res.bpp == pytest.approx(8 * len(res.data) / (70 * 100))
    header, sections = unpack(res.data)
    assert header.model == "hific-small" and header.decoder == "gan"
    assert header.quantizer == "round" and len(sections) == 2
    assert (header.padded_height, header.padded_width) == (128, 128)
    dec = HificCodec(model=_fresh_copy(tiny_model)).decode(res.data)
    assert np.array_equal(dec.reconstruction, res.reconstruction)
    assert dec.info["rate"] == pytest.approx(rate, abs=1 / 65535)


def test_encoding_is_deterministic_and_estimated_bits_match(tiny_model):
    codec = HificCodec(model=tiny_model)
    img = _image(64, 64, seed=3)
    a = codec.encode(img, EncodeParams(rate=0.6, decoder="gan"))
    b = codec.encode(img, EncodeParams(rate=0.6, decoder="gan"))
    assert a.data == b.data
    ins = a.inspection
    assert ins.y_hat.shape == ins.means.shape == ins.scales.shape == ins.bits_y.shape
    assert ins.y_hat.shape == (tiny_model.config.C_y, 4, 4)
    # range coder output within a word (32 bits) per stream of the ideal code length
    assert 8 * ins.y_bytes >= ins.bits_y.sum() - 1
    assert 8 * ins.y_bytes <= ins.bits_y.sum() * 1.01 + 64
    assert 8 * (ins.y_bytes + ins.z_bytes) <= ins.estimated_bits * 1.01 + 128


def test_other_weights_are_refused(tiny_model):
    res = HificCodec(model=tiny_model).encode(_image(), EncodeParams(rate=0.5, decoder="gan"))
    with pytest.raises(LicFormatError, match="different HiFiC weights"):
        HificCodec(model=_tiny(1)).decode(res.data)


def test_corruption_is_detected(tiny_model):
    res = HificCodec(model=tiny_model).encode(_image(), EncodeParams(rate=0.5, decoder="gan"))
    bad = bytearray(res.data)
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(LicFormatError):
        HificCodec(model=tiny_model).decode(bytes(bad))


def test_bad_parameters_are_user_errors(tiny_model):
    codec = HificCodec(model=tiny_model)
    with pytest.raises(LicError):
        codec.encode(_image(), EncodeParams(rate=0.5, decoder="mse"))
    with pytest.raises(LicError):
        codec.encode(_image(), EncodeParams(rate=0.5, decoder="gan", quantizer="tcq"))
    with pytest.raises(LicError):
        codec.encode(_image(), EncodeParams(rate=1.5, decoder="gan"))


def test_weights_file_loads_and_codes(tmp_path, monkeypatch, tiny_model):
    from lic_core.weights import save_weights

    save_weights(tiny_model, tmp_path / "hific-small.safetensors", {"test": True})
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(tmp_path))
    codec = HificCodec()
    assert codec.available() == (True, "")
    img = _image(64, 80, seed=5)
    res = codec.encode(img, EncodeParams(rate=0.25, decoder="gan"))
    assert HificCodec().decode(res.data).reconstruction.tobytes() == res.reconstruction.tobytes()
    desc = codec.describe()
    assert desc["config"]["name"] == "hific-tiny" and desc["card"]["test"] is True


def test_codec_reconstruction_equals_the_eval_forward_pass(tiny_model):
    """One quantization path: the codec's ŷ/x̂ are those of ``model.eval()(x, u)`` (docs/methods.md
    §10), up to the exact path's grids (the codec decodes with exact arithmetic, format v2): within
    two grey levels, and equal almost everywhere."""
    from lic_core.image.tensor import crop, pad_to_multiple, to_tensor, to_uint8
    from lic_core.rate.gain import quantize_slider

    img = _image(70, 100, seed=7)
    res = HificCodec(model=tiny_model).encode(img, EncodeParams(rate=0.5, decoder="gan"))
    _, u = quantize_slider(0.5)
    xp, (h, w) = pad_to_multiple(to_tensor(img), 64)
    with torch.no_grad():
        out = tiny_model.eval()(xp, u)
    ref = to_uint8(crop(out["x_hat"], h, w)).astype(int)
    diff = np.abs(ref - res.reconstruction.astype(int))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.02
    # the eval-mode rate estimate is the codec's ideal code length
    est = float(out["bpp_quantized"][0]) * xp.shape[-2] * xp.shape[-1]
    assert est == pytest.approx(res.inspection.estimated_bits, rel=0.02)


def test_lic_compress_codec_hific_small_round_trips(tmp_path, monkeypatch, tiny_model, capsys):
    """`lic compress --codec hific-small` and `lic decompress` with (tiny) weights from
    $LIC_WEIGHTS_DIR: the decoded PNG is the encoder's reconstruction, bit for bit."""
    from PIL import Image

    from lic_core.cli import main
    from lic_core.codecs import registry
    from lic_core.weights import save_weights

    wdir = tmp_path / "weights"
    save_weights(tiny_model, wdir / "hific-small.safetensors", {"test": True})
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))
    monkeypatch.setitem(registry._CACHE, "hific-small", HificCodec())  # fresh: reads wdir
    img = _image(64, 80, seed=3)
    src = tmp_path / "in.png"
    Image.fromarray(img).save(src)
    out = tmp_path / "out.lic"
    assert main(["compress", str(src), str(out), "--codec", "hific-small", "--rate", "0.4"]) == 0
    header, _ = unpack(out.read_bytes())
    assert header.model == "hific-small" and header.decoder == "gan"
    png = tmp_path / "back.png"
    assert main(["decompress", str(out), str(png)]) == 0
    back = np.asarray(Image.open(png).convert("RGB"))
    ref = HificCodec().encode(img, EncodeParams(rate=0.4, decoder="gan")).reconstruction
    assert back.shape == img.shape and np.array_equal(back, ref)
    assert "hific-small" in capsys.readouterr().out
