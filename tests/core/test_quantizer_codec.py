"""Every quantizer inside the learned codec: .lic round trip and rate estimate (docs/methods.md §4.4
"Streams inside the context model", §11 items 5, 8, 16). Uses the tiny model with
its random initialisation: the invariants do not depend on training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lic_core.codecs.base import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.models import build_model


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    model = build_model("lic-lgem-tiny").eval()
    model.prior.update_tables()  # what `lic export` stores: coding never recomputes them
    yield LearnedCodec("lic-lgem-tiny", model=model)


@pytest.mark.parametrize("name", ["round", "deadzone", "rdoq", "tcq"])
def test_lic_round_trip_and_bits(codec, name):
    rng = np.random.default_rng(1)
    img = (rng.random((64, 128, 3)) * 255).astype(np.uint8)
    res = codec.encode(img, EncodeParams(rate=0.5, quantizer=name))
    dec = codec.decode(res.data)
    # the decoder replays the same (group, pass) steps, TCQ states included: identical image
    assert np.array_equal(dec.reconstruction, res.reconstruction)
    ins = res.inspection
    assert ins.clamped_symbols == 0
    actual = 8 * (ins.y_bytes + ins.z_bytes)
    # ideal bits vs range-coder output: within 2 % plus one 32-bit word per stream
    assert abs(actual - ins.estimated_bits) <= 0.02 * ins.estimated_bits + 64
