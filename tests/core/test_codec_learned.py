"""The learned codec end to end on a tiny random-initialised model (no weights needed).

Invariants: decode(encode(x)) reproduces the encoder's reconstruction exactly for every quantizer;
the file size matches the estimated −log2 p bits; the single quantization path is shared with
fine-tuning; the training forward predicts the same μ, σ as the sequential coder; the decoder
never crashes or hangs on mutated/truncated files; weights mismatch and unknown models refuse.
"""
from __future__ import annotations

import random
import zlib

import numpy as np
import pytest
import torch

from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec, quantized_latents
from lic_core.errors import LicError, LicFormatError
from lic_core.image.tensor import pad_to_multiple, to_tensor
from lic_core.models import build_model
from lic_core.quantizer import build_quantizer


def _smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(xx / 9.0 + c) * np.cos(yy / 13.0 - c) for c in range(3)], -1)
    img += rng.randn(h, w, 3) * 6
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny")
    m.eval()
    m.prior.update_tables()
    return LearnedCodec("lic-lgem-tiny", model=m)


@pytest.mark.parametrize("quantizer", ["round", "deadzone", "rdoq", "tcq"])
@pytest.mark.parametrize("rate", [0.0, 0.37, 1.0])
def test_round_trip_is_exact(codec, quantizer, rate):
    img = _smooth_image(70, 131, seed=3)
    r = codec.encode(img, EncodeParams(rate=rate, quantizer=quantizer))
    fresh = LearnedCodec("lic-lgem-tiny", model=codec.model)  # new object, same weights
    d = fresh.decode(r.data)
    assert d.reconstruction.shape == img.shape
    assert np.array_equal(d.reconstruction, r.reconstruction)
    assert np.array_equal(d.inspection.y_hat, r.inspection.y_hat)
    assert r.bpp == pytest.approx(8 * len(r.data) / (70 * 131))


def test_file_size_matches_estimated_bits(codec):
    img = _smooth_image(256, 320, seed=1)
    r = codec.encode(img, EncodeParams(rate=0.8, quantizer="round"))
    ins = r.inspection
    coded = 8 * (ins.z_bytes + ins.y_bytes)
    # within 1 % (+ 64 bits of coder flush per stream) of Σ −log2 p
    assert abs(coded - ins.estimated_bits) <= 0.01 * ins.estimated_bits + 2 * 64
    assert ins.bits_y.shape == ins.y_hat.shape == ins.means.shape == ins.scales.shape
    assert ins.bits_y.shape[0] == sum(ins.channel_groups)
    assert ins.header_bytes + ins.z_bytes + ins.y_bytes == len(r.data)


def test_rate_is_monotone_in_slider(codec):
    """More slider, more bits (gain units initialised as a ladder; docs/methods.md §11.3)."""
    img = _smooth_image(128, 128, seed=2)
    sizes = [len(codec.encode(img, EncodeParams(rate=u)).data) for u in (0.0, 0.5, 1.0)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_fine_tuning_path_equals_compress(codec):
    """quantized_latents (used for fine-tuning) gives the ŷ that compress() codes."""
    img = _smooth_image(64, 128, seed=4)
    for qname in ("round", "tcq"):
        r = codec.encode(img, EncodeParams(rate=0.6, quantizer=qname))
        x, _ = pad_to_multiple(to_tensor(img), 64)
        q = quantized_latents(codec.model, x, 0.6, build_quantizer(qname))
        assert np.array_equal(q["y_hat_gained"][0].numpy().astype(np.float32), r.inspection.y_hat)


def test_training_forward_predicts_sequential_parameters(codec):
    """Two-pass STE training forward ≈ sequential coder (docs/methods.md §3.3, §11 item 3): exactly
    with the float engine, within the exact path's grid error with the exact engine the coder
    uses."""
    from lic_core.latent_codecs import LgemFloatParameters

    m = codec.model
    img = _smooth_image(128, 192, seed=5)
    x, _ = pad_to_multiple(to_tensor(img), 64)
    with torch.no_grad():
        out = m(x, 0.4)
    q = quantized_latents(m, x, 0.4, build_quantizer("round"), engine=LgemFloatParameters(m))
    assert torch.allclose(out["means"], q["means"], atol=1e-4)
    assert torch.allclose(out["scales"], q["scales"], atol=1e-4)
    e = quantized_latents(m, x, 0.4, build_quantizer("round"))
    assert e["means"].dtype == torch.float64
    assert torch.allclose(out["means"].double(), e["means"], atol=2e-3)
    assert torch.allclose(out["scales"].double(), e["scales"], rtol=1e-3, atol=1e-3)


def test_weights_mismatch_and_wrong_model_are_refused(codec):
    img = _smooth_image(64, 64)
    data = codec.encode(img, EncodeParams(rate=0.5)).data
    torch.manual_seed(123)
    other = build_model("lic-lgem-tiny")
    other.eval()
    other.prior.update_tables()
    with pytest.raises(LicFormatError, match="weights mismatch"):
        LearnedCodec("lic-lgem-tiny", model=other).decode(data)
    with pytest.raises(LicFormatError, match="not 'lic-lgem-x'"):
        LearnedCodec("lic-lgem-x", model=codec.model).decode(data)


def _recrc(buf: bytearray) -> bytes:
    body = bytes(buf[:-4])
    return body + zlib.crc32(body).to_bytes(4, "little")


@pytest.mark.slow
def test_decoder_survives_mutated_and_truncated_files(codec):
    """≥ 1000 damaged files: each gives a clean LicError or a valid image (no crash, no hang)."""
    img = _smooth_image(64, 96, seed=7)
    files = [codec.encode(img, EncodeParams(rate=u, quantizer=q)).data
             for u, q in ((0.2, "round"), (0.9, "tcq"), (0.5, "rdoq"))]
    rng = random.Random(0)
    outcomes = {"error": 0, "image": 0}
    for i in range(1200):
        data = bytearray(rng.choice(files))
        kind = i % 4
        if kind == 0:  # truncation
            data = data[: rng.randrange(len(data))]
        elif kind == 1:  # random byte flips (CRC catches them)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= rng.randint(1, 255)
        else:  # payload flips with a recomputed CRC: the entropy decoder itself must cope
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(max(1, len(data) - 4))
                data[pos] ^= rng.randint(1, 255)
            data = bytearray(_recrc(data))
        try:
            out = codec.decode(bytes(data))
        except LicError:
            outcomes["error"] += 1
        else:
            assert out.reconstruction.dtype == np.uint8 and out.reconstruction.ndim == 3
            outcomes["image"] += 1
    assert outcomes["error"] + outcomes["image"] == 1200
    assert outcomes["error"] > 300
