"""to_tensor / to_uint8 / pad_to_multiple / crop (lic_core.image.tensor)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lic_core.image import crop, pad_to_multiple, padded_size, to_tensor, to_uint8


def test_tensor_round_trip_exact():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (13, 7, 3), dtype=np.uint8)
    t = to_tensor(a)
    assert t.shape == (1, 3, 13, 7) and t.dtype == torch.float32
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    np.testing.assert_array_equal(to_uint8(t), a)
    np.testing.assert_array_equal(to_uint8(t[0]), a)


def test_to_uint8_rounds_and_clamps():
    t = torch.tensor([[-0.5, 0.0, 0.3 / 255], [0.7 / 255, 1.0, 7.0]]).expand(3, 2, 3)
    out = to_uint8(t)
    np.testing.assert_array_equal(out[..., 0], [[0, 0, 0], [1, 255, 255]])


@pytest.mark.parametrize("hw", [(1, 1), (63, 65), (64, 64), (100, 37), (129, 200)])
def test_pad_crop_round_trip_odd_sizes(hw):
    h, w = hw
    x = torch.rand(1, 3, h, w)
    xp, size = pad_to_multiple(x, 64)
    assert size == (h, w)
    assert xp.shape[-2] % 64 == 0 and xp.shape[-1] % 64 == 0
    assert (xp.shape[-2], xp.shape[-1]) == padded_size(h, w)
    assert xp.shape[-2] - h < 64 and xp.shape[-1] - w < 64
    assert torch.equal(crop(xp, *size), x)
    # replicate padding: the padded area repeats the last row/column
    assert torch.equal(xp[..., h:, :w], x[..., -1:, :].expand(-1, -1, xp.shape[-2] - h, -1))
    assert torch.equal(xp[..., :h, w:], x[..., :, -1:].expand(-1, -1, -1, xp.shape[-1] - w))
    assert torch.equal(xp[..., h:, w:], x[..., -1:, -1:].expand_as(xp[..., h:, w:]))


def test_bad_inputs():
    with pytest.raises(ValueError):
        to_tensor(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        to_uint8(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError):
        crop(torch.zeros(1, 3, 4, 4), 5, 4)
