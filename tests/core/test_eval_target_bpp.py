"""Target-bpp search: reaches the target within tolerance, integer and continuous knobs."""
from __future__ import annotations

import numpy as np
import pytest

from lic_core.codecs.base import Codec, EncodeParams, EncodeResult
from lic_core.codecs.registry import get_codec
from lic_core.errors import LicError
from lic_core.evaluation.target_bpp import encode_at_target_bpp


def photo_like(h=128, w=160, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 128 + 80 * np.sin(x / 7.0 + y / 11.0)
    img = np.stack([base, base[::-1], 255 * x / w], -1) + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


class FakeLearned(Codec):
    """Continuous slider u ∈ [0,1]; bpp = 0.05 + 1.95·u² exactly (bytes faked)."""

    name = "fake-learned"
    family = "learned"
    rate_range = (0.0, 1.0)
    default_rate = 0.5
    calls = 0

    def __init__(self, increasing: bool = True):
        self.rate_increasing = increasing

    def encode(self, image, params, progress=None):
        self.calls += 1
        u = params.rate if self.rate_increasing else 1.0 - params.rate
        bpp = 0.05 + 1.95 * u * u
        return EncodeResult(data=b"", reconstruction=image, bpp=bpp, params=params,
                            codec=self.name, file_extension=".lic")

    def decode(self, data, progress=None):  # pragma: no cover - unused
        raise NotImplementedError


@pytest.mark.parametrize("name,target", [("webp", 1.0), ("j2k", 0.5), ("jxl", 1.5),
                                         ("avif", 0.8), ("hevc", 1.0)])
def test_reaches_target_within_2_percent(name, target):
    codec = get_codec(name)
    if not codec.available()[0]:
        pytest.skip(codec.available()[1])
    img = photo_like()
    hist = []
    res, reached = encode_at_target_bpp(codec, img, target, history=hist)
    assert reached == res.bpp
    # knob was monotone along the search path: sort by knob → bpp non-decreasing
    pts = sorted(hist)
    assert all(b2 >= b1 for (_, b1), (_, b2) in zip(pts, pts[1:])), pts
    if abs(reached - target) > 0.02 * target:
        # integer knob: then no neighbouring knob value may come closer
        assert getattr(codec, "integer_rate", False)
        q = res.params.rate
        for nb in (q - 1, q + 1):
            if codec.rate_range[0] <= nb <= codec.rate_range[1]:
                other = codec.encode(img, EncodeParams(rate=nb)).bpp
                assert abs(other - target) >= abs(reached - target) - 1e-12
    np.testing.assert_array_equal(codec.decode(res.data).reconstruction, res.reconstruction)


def test_integer_knob_returns_closest_achievable():
    codec = get_codec("jpeg")
    img = photo_like(seed=3)
    table = {q: codec.encode(img, EncodeParams(rate=q)).bpp for q in range(1, 96)}
    for target in (0.9, 1.7, 2.6):
        res, reached = encode_at_target_bpp(codec, img, target, tol=1e-9)
        best = min(abs(b - target) for b in table.values())
        assert abs(reached - target) == pytest.approx(best, abs=1e-12)
        assert float(res.params.rate).is_integer()


@pytest.mark.parametrize("increasing", [True, False])
def test_continuous_knob_learned_style(increasing):
    codec = FakeLearned(increasing)
    img = np.zeros((16, 16, 3), np.uint8)
    for target in (0.1, 0.5, 1.9):
        res, reached = encode_at_target_bpp(codec, img, target, tol=0.005)
        assert abs(reached - target) <= 0.005 * target
        u = res.params.rate if increasing else 1 - res.params.rate
        assert u == pytest.approx(np.sqrt((target - 0.05) / 1.95), abs=2e-3)
    assert codec.calls < 3 * 30


def test_out_of_range_targets_return_end_points():
    codec = FakeLearned()
    img = np.zeros((4, 4, 3), np.uint8)
    res, reached = encode_at_target_bpp(codec, img, 0.01)
    assert res.params.rate == 0.0 and reached == pytest.approx(0.05)
    res, reached = encode_at_target_bpp(codec, img, 50.0)
    assert res.params.rate == 1.0 and reached == pytest.approx(2.0)
    with pytest.raises(LicError):
        encode_at_target_bpp(codec, img, -1.0)


def test_template_params_are_kept():
    codec = FakeLearned()
    tmpl = EncodeParams(rate=0.3, quantizer="rdoq", decoder="gan", extra={"k": 1})
    res, _ = encode_at_target_bpp(codec, np.zeros((4, 4, 3), np.uint8), 1.0, tmpl)
    assert res.params.quantizer == "rdoq" and res.params.decoder == "gan"
    assert res.params.extra == {"k": 1}


class _ReportingLearned(FakeLearned):
    """FakeLearned that reports progress inside every encode, like the real codecs."""

    def encode(self, image, params, progress=None):
        if progress is not None:
            progress(0.5, "coding")
        return super().encode(image, params, progress)


def test_progress_reaches_every_trial_and_cancels_the_search():
    from lic_core.errors import CancelledError

    codec = _ReportingLearned()
    seen: list[tuple[float, str]] = []
    encode_at_target_bpp(codec, photo_like(16, 16), 0.7, progress=lambda f, m: seen.append((f, m)))
    steps = {m.split(":")[0] for _, m in seen}
    assert len(steps) == codec.calls >= 3  # one step per trial encode
    assert any(m.endswith("coding") for _, m in seen)  # the codec's own progress is relayed
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and 0.0 <= fracs[0] and fracs[-1] <= 0.95

    def cancel_after_two(f, m):
        if m.startswith("search step 3"):
            raise CancelledError("cancelled")

    other = _ReportingLearned()
    with pytest.raises(CancelledError):
        encode_at_target_bpp(other, photo_like(16, 16), 0.7, progress=cancel_after_two)
    assert other.calls == 2
