"""Decoders bound to the codec weights they learned on (lic_core.decoder.bound): a diffusion
decoder conditioned on other weights of the same codec name is not offered for new files, and
the codec says which file it ignored; one that names these weights is (issue 27, release train)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.decoder.bound import BoundDecoderFile, diffusion_trained_on
from lic_core.decoder.diffusion import DiffusionDecoder
from lic_core.errors import LicError
from lic_core.models import build_model
from lic_core.paths import diffusion_weights_path

NAME = "lic-lgem-tiny"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model(NAME).eval()
    m.prior.update_tables()
    return m


def _write(model, folder, codec_hash: str) -> None:
    dec = DiffusionDecoder.for_codec(model, mults=(1, 2))
    dec.save(diffusion_weights_path(NAME, folder), card={"codec_weights_hash": codec_hash})


def test_a_diffusion_decoder_of_other_weights_is_not_offered(model, tmp_path):
    own = LearnedCodec(NAME, model=model).weights_hash.hex()
    _write(model, tmp_path, "0" * 16)
    codec = LearnedCodec(NAME, model=model, folder=tmp_path)
    assert codec.decoders == ("mse",)
    assert codec.describe()["stale_diffusion_decoder"] == f"{NAME}-diffusion.safetensors"
    img = (np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)
    with pytest.raises(LicError, match="diffusion.safetensors was trained on other"):
        codec.encode(img, EncodeParams(rate=0.5, decoder="diffusion"))

    _write(model, tmp_path, own)  # re-derived on these weights: offered again, nothing stale
    assert diffusion_trained_on(diffusion_weights_path(NAME, tmp_path)) == own
    assert codec.decoders == ("mse", "diffusion")
    assert "stale_diffusion_decoder" not in codec.describe()


def test_bound_file_is_reread_only_when_it_changes(tmp_path):
    reads = []
    f = tmp_path / "d.safetensors"
    bound = BoundDecoderFile(lambda p: reads.append(p) or p.read_text())
    assert not bound.usable(f, "aa") and bound.stale == ""             # no file
    f.write_text("aa")
    assert bound.usable(f, "aa") and bound.changed and len(reads) == 1
    assert bound.usable(f, "aa") and not bound.changed and len(reads) == 1  # cached
    assert not bound.usable(f, "bb") and bound.stale == "d.safetensors"  # other weights now
    f.unlink()
    assert not bound.usable(f, "bb") and bound.changed and bound.stale == ""
