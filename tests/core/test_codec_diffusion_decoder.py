"""The learned codec with the diffusion decoder (issue 'blur-dissipated diffusion decoder').

A .lic file marked for the diffusion decoder decodes identically twice (same device and seed),
differently with another seed, and the same bits also decode with the MSE decoder.
"""
import numpy as np
import pytest
import torch

from lic_core.bitstream import pack, unpack
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.decoder.diffusion import DiffusionDecoder
from lic_core.models import build_model


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    dec = DiffusionDecoder.for_codec(m, mults=(1, 2))
    return LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec)


def _img():
    rng = np.random.RandomState(0)
    return (rng.rand(64, 80, 3) * 255).astype(np.uint8)


def test_diffusion_file_decodes_identically_and_depends_on_seed(codec):
    assert "diffusion" in codec.decoders
    r = codec.encode(_img(), EncodeParams(rate=0.5, decoder="diffusion", diffusion_steps=3, seed=7))
    header, sections = unpack(r.data)
    assert header.decoder == "diffusion" and header.diffusion_steps == 3 and header.diffusion_seed == 7
    a = codec.decode(r.data).reconstruction
    b = codec.decode(r.data).reconstruction
    assert np.array_equal(a, b) and np.array_equal(a, r.reconstruction)
    header.diffusion_seed = 8
    c = codec.decode(pack(header, sections)).reconstruction
    assert not np.array_equal(a, c)
    # the same bits decode with the MSE decoder too
    mse = codec.decode(r.data, decoder="mse").reconstruction
    ref = codec.encode(_img(), EncodeParams(rate=0.5, decoder="mse")).reconstruction
    assert np.array_equal(mse, ref)


def test_without_diffusion_weights_only_mse_is_offered():
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    plain = LearnedCodec("lic-lgem-tiny", model=m)
    assert plain.decoders == ("mse",)
    with pytest.raises(Exception, match="diffusion"):
        plain.encode(_img(), EncodeParams(rate=0.5, decoder="diffusion"))
