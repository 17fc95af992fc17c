"""Rate accounting (lic_core.rate.accounting): bit maps, bits per pixel, the rate breakdown —
on a synthetic Inspection and on a real encoding of the tiny model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lic_core.codecs import EncodeParams, Inspection
from lic_core.rate import accounting as acc


def _fake_inspection(m: int = 8, h: int = 4, w: int = 8, seed: int = 0) -> Inspection:
    rng = np.random.default_rng(seed)
    y_hat = np.round(rng.normal(0, 3, (m, h, w))).astype(np.float32)
    bits_y = rng.uniform(0, 3, (m, h, w)).astype(np.float32)
    bits_y[2] += 10  # channel 2 is the most expensive
    bits_z = rng.uniform(0, 1, (4, h // 4, w // 4)).astype(np.float32)
    return Inspection(y_hat=y_hat, means=np.zeros_like(y_hat), scales=np.ones_like(y_hat),
                      bits_y=bits_y, bits_z=bits_z, channel_groups=[2, 2, 4],
                      group_bits={"g0/anchor": 1.0, "g0/non-anchor": 2.0, "z": 3.0},
                      header_bytes=20, z_bytes=5, y_bytes=40,
                      estimated_bits=float(bits_y.sum() + bits_z.sum()))


def test_maps_strides_and_breakdown():
    insp = _fake_inspection()
    order = acc.channel_order(insp.bits_y)
    assert order[0] == 2 and sorted(order.tolist()) == list(range(8))
    # image 60×120 → latent grid 4×8 with stride 16 (padded to 64): the heatmap is H×W
    assert acc.latent_stride((4, 8), (60, 120)) == acc.Y_STRIDE
    assert acc.latent_stride((1, 2), (60, 120)) == acc.Z_STRIDE
    hm = acc.heatmap_for_image(insp, 60, 120, "bits_y")
    assert hm.shape == (60, 120)
    full = acc.upsample_to_image(insp.bits_y.sum(0), 64, 128, 16)
    assert full.sum() == pytest.approx(insp.bits_y.sum(), rel=1e-5)  # bits are conserved
    assert acc.heatmap_for_image(insp, 60, 120, "bits_z").shape == (60, 120)
    assert np.array_equal(acc.bits_map(insp, "bits_y", 2), insp.bits_y[2].astype(np.float64))
    rows = acc.rate_breakdown(insp, total_bytes=65)
    assert rows[0]["real_bits"] == 160 and rows[-1]["real_bits"] == 520
    # one row per coding step; the z total is not repeated as a "y" row
    assert [r["part"] for r in rows] == ["header", "z (side info)", "y g0/anchor",
                                         "y g0/non-anchor", "y (all)", "total"]


def test_heatmap_follows_a_centred_padding():
    """CompressAI's models (added models, issue 32) pad the picture *centred* (eval_model): the
    heatmap must be cut from the padded grid at the codec's offset, not from its top-left
    corner, or every bit is drawn up to 31 px away from where it was spent."""
    insp = _fake_inspection(m=4, h=4, w=8)
    insp.bits_y[:] = 0.0
    insp.bits_y[:, 0, 0] = 1.0  # all bits in the top-left latent: padded pixels 0…15 × 0…15
    # a 40×100 picture padded centred to 64×128: 12 rows above, 14 columns left of it
    insp.extras["padding"] = (14, 14, 12, 12)  # (left, right, top, bottom)
    hm = acc.heatmap_for_image(insp, 40, 100, "bits_y")
    assert hm.shape == (40, 100)
    hot = np.argwhere(hm > 0)
    assert hot.min(0).tolist() == [0, 0] and hot.max(0).tolist() == [15 - 12, 15 - 14]
    # without a recorded padding the codec padded bottom/right, as lic_core's codecs do
    del insp.extras["padding"]
    assert np.argwhere(acc.heatmap_for_image(insp, 40, 100) > 0).max(0).tolist() == [15, 15]


def test_real_encoding_adds_up():
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.models import build_model

    torch.manual_seed(0)
    model = build_model("lic-lgem-tiny").eval()
    model.prior.update_tables()  # what `lic export` stores: coding never recomputes them
    img = (np.random.default_rng(3).random((70, 100, 3)) * 255).astype(np.uint8)
    res = LearnedCodec("lic-lgem-tiny", model=model).encode(img, EncodeParams(rate=0.5))
    insp = res.inspection
    rows = {r["part"]: r for r in acc.rate_breakdown(insp, len(res.data))}
    steps = [k for k in rows if k.startswith("y g")]
    assert len(steps) == 2 * len(insp.channel_groups)  # every (group, pass) step
    assert sum(rows[k]["estimated_bits"] for k in steps) == pytest.approx(
        rows["y (all)"]["estimated_bits"], rel=1e-6)  # bits_y is float32
    assert rows["total"]["real_bits"] == 8 * len(res.data)
    hm = acc.heatmap_for_image(insp, 70, 100)
    assert hm.shape == (70, 100) and (hm >= 0).all()
