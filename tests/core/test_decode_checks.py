"""Never silently wrong (issue 11 item 2): a decoder that computes other entropy parameters or
another picture than the encoder stops with its own one-line error (LicMismatchError, "this file
is intact but …"), distinct from a corrupt file (LicFormatError, "corrupted .lic file"); payload
damage with a repaired container CRC ends in one of the two — never in a wrong picture."""
from __future__ import annotations

import random
import zlib

import numpy as np
import pytest
import torch

from lic_core.bitstream import layout, unpack
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.errors import LicError, LicFormatError, LicMismatchError
from lic_core.latent_codecs import LgemExactParameters
from lic_core.models import build_model
from lic_core.models.lgem_exact import ExactSynthesis


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    with torch.no_grad():
        m.gains.gain.weight.mul_(6.0)  # spread the latents of the random model
    return LearnedCodec("lic-lgem-tiny", model=m, use_finetuned=False)


def _img() -> np.ndarray:
    rng = np.random.RandomState(3)
    yy, xx = np.mgrid[0:64, 0:96]
    img = np.stack([128 + 90 * np.sin(xx / (5 + c)) * np.cos(yy / 7.0) for c in range(3)], -1)
    return np.clip(img + rng.randn(64, 96, 3) * 6, 0, 255).astype(np.uint8)


def _recrc(data: bytes) -> bytes:
    body = bytes(data[:-4])
    return body + (zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "little")


def test_other_entropy_parameters_stop_with_the_mismatch_error(codec, monkeypatch):
    enc = codec.encode(_img(), EncodeParams(rate=0.7, quantizer="round"))
    original = LgemExactParameters.anchor

    def perturbed(self, g, ctx, gains, **kw):  # a machine whose arithmetic moves one scale index
        prm = original(self, g, ctx, gains, **kw)
        if g == 2:
            prm.index = prm.index.clone()
            first = (0,) * prm.index.dim()
            prm.index[first] = (prm.index[first] + 7) % 64
        return prm

    monkeypatch.setattr(LgemExactParameters, "anchor", perturbed)
    with pytest.raises(LicMismatchError) as exc:
        codec.decode(enc.data)
    msg = str(exc.value)
    assert "\n" not in msg and "intact" in msg and "g2/anchor" in msg and "report" in msg
    assert "corrupted" not in msg


def test_another_picture_stops_with_the_mismatch_error(codec, monkeypatch):
    enc = codec.encode(_img(), EncodeParams(rate=0.5, quantizer="tcq"))
    original = ExactSynthesis.picture_hwc

    def off_by_one(self, y_hat_gained, code, size):  # a machine whose g_s differs in one pixel
        pic = original(self, y_hat_gained, code, size).copy()
        pic[5, 7, 1] ^= 1
        return pic

    monkeypatch.setattr(ExactSynthesis, "picture_hwc", off_by_one)
    with pytest.raises(LicMismatchError, match="different 'mse' picture") as exc:
        codec.decode(enc.data)
    assert "intact" in str(exc.value) and "corrupted" not in str(exc.value)


def test_corrupt_and_mismatch_are_different_errors_and_messages(codec):
    assert not issubclass(LicMismatchError, LicFormatError)
    assert not issubclass(LicFormatError, LicMismatchError)
    data = bytearray(codec.encode(_img(), EncodeParams(rate=0.5)).data)
    data[-10] ^= 0x20  # payload byte, container CRC left as it is
    with pytest.raises(LicFormatError, match="corrupted .lic file") as exc:
        codec.decode(bytes(data))
    assert "intact" not in str(exc.value)


@pytest.mark.slow
@pytest.mark.parametrize("quantizer", ["round", "tcq"])
def test_payload_damage_with_a_repaired_crc_never_gives_a_wrong_picture(codec, quantizer):
    enc = codec.encode(_img(), EncodeParams(rate=0.8, quantizer=quantizer))
    start = layout(enc.data).header_bytes
    rng = random.Random(1)
    outcomes = {"mismatch": 0, "format": 0, "same picture": 0}
    for _ in range(60):
        data = bytearray(enc.data)
        pos = rng.randrange(start, len(data) - 4)  # inside the z or y section
        data[pos] ^= 1 << rng.randrange(8)
        try:
            out = codec.decode(_recrc(bytes(data)))
        except LicMismatchError:
            outcomes["mismatch"] += 1
        except LicFormatError:
            outcomes["format"] += 1
        else:  # only possible when the damage did not change a single decoded symbol
            assert np.array_equal(out.reconstruction, enc.reconstruction)
            outcomes["same picture"] += 1
    assert outcomes["mismatch"] > 30, outcomes


def test_damaged_check_values_are_caught_too(codec):
    enc = codec.encode(_img(), EncodeParams(rate=0.5))
    header, _ = unpack(enc.data)
    raw = bytearray(enc.data)
    crc_bytes = header.symbol_crcs[3].to_bytes(4, "little")
    at = bytes(raw).index(crc_bytes)
    raw[at] ^= 0xFF
    with pytest.raises(LicMismatchError, match="g1/anchor"):  # checks: z, g0 ×2, g1 anchor
        codec.decode(_recrc(bytes(raw)))
    pic = header.picture_crcs[0].crc.to_bytes(4, "little")
    raw = bytearray(enc.data)
    raw[bytes(raw).index(pic)] ^= 0x01
    with pytest.raises(LicMismatchError, match="picture"):
        codec.decode(_recrc(bytes(raw)))


def test_cli_exit_codes_differ_and_no_picture_is_written(codec, tmp_path, monkeypatch, capsys):
    from lic_core.cli import main

    monkeypatch.setattr("lic_core.codecs.registry.get_codec", lambda name: codec)
    monkeypatch.setattr("lic_core.codecs.get_codec", lambda name: codec)
    enc = codec.encode(_img(), EncodeParams(rate=0.5))
    good = tmp_path / "good.lic"
    good.write_bytes(enc.data)
    original = ExactSynthesis.picture_hwc
    monkeypatch.setattr(ExactSynthesis, "picture_hwc",
                        lambda self, y, c, size: original(self, y, c, size) + 1)
    rc = main(["decompress", str(good), str(tmp_path / "a.png"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 3 and "intact" in err and not (tmp_path / "a.png").exists()
    monkeypatch.setattr(ExactSynthesis, "picture_hwc", original)
    bad = bytearray(enc.data)
    bad[-9] ^= 1
    (tmp_path / "bad.lic").write_bytes(bytes(bad))
    rc = main(["decompress", str(tmp_path / "bad.lic"), str(tmp_path / "b.png"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "corrupted" in err and not (tmp_path / "b.png").exists()
    assert isinstance(LicMismatchError("x"), LicError)


def test_concurrent_decodes_in_worker_threads_are_exact(codec):
    """The studio decodes in worker threads: the exact path keeps no global state (no cuDNN or
    determinism flag) and its caches tolerate concurrent use."""
    from concurrent.futures import ThreadPoolExecutor

    encs = [codec.encode(_img(), EncodeParams(rate=u, quantizer=q))
            for u, q in ((0.3, "round"), (0.8, "tcq"), (0.55, "rdoq"))]
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda e: codec.decode(e.data).reconstruction, encs * 2))
    for e, o in zip(encs * 2, outs):
        assert np.array_equal(e.reconstruction, o)
    assert not torch.are_deterministic_algorithms_enabled()
