"""Tests for lic_core.train.data (augmentation determinism, shapes, padding, copying)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lic_core.train.data import (
    ImageFolderCrops,
    KodakEval,
    copy_training_data,
    list_images,
    pad_to_multiple,
)


def _make_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(root / "a.png")
    Image.fromarray(rng.integers(0, 256, (200, 150, 3), dtype=np.uint8)).save(root / "sub" / "b.jpg")
    Image.fromarray(rng.integers(0, 256, (90, 100, 3), dtype=np.uint8)).save(root / "c.webp")
    (root / "notes.txt").write_text("not an image")
    return root


def test_list_images_recursive_sorted(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    names = [p.relative_to(root).as_posix() for p in list_images(root)]
    assert names == ["a.png", "c.webp", "sub/b.jpg"]


def test_crops_shape_range_and_determinism(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    ds = ImageFolderCrops(root, crop=128, seed=3, vflip=True)
    for i in range(len(ds)):  # includes c.webp, smaller than the crop: upscaled
        x = ds[i]
        assert x.shape == (3, 128, 128) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    a = ds[0]
    assert torch.equal(a, ImageFolderCrops(root, crop=128, seed=3, vflip=True)[0])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[0])           # new epoch, new crop
    assert not torch.equal(a, ImageFolderCrops(root, crop=128, seed=4, vflip=True)[0])


def test_crop_equals_resize_then_crop_without_scaling(tmp_path):
    # With downscale (1, 1) and no flips the crop must be an exact window of the original.
    root = _make_folder(tmp_path / "imgs")
    ds = ImageFolderCrops(root, crop=64, downscale=(1.0, 1.0), hflip=False, seed=0)
    x = ds[0]
    full = np.asarray(Image.open(root / "a.png").convert("RGB"))
    crop = (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    # candidates: positions whose pixel equals the crop's top-left pixel, then compare windows
    ys, xs = np.nonzero((full == crop[0, 0]).all(axis=2))
    found = any(np.array_equal(full[y:y + 64, x0:x0 + 64], crop)
                for y, x0 in zip(ys, xs) if y + 64 <= full.shape[0] and x0 + 64 <= full.shape[1])
    assert found


def test_kodak_eval_padding(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    ev = KodakEval(root)
    item = ev[0]
    assert item["size"] == (300, 400)
    assert item["x"].shape == (3, 320, 448)
    # Replicate padding: the padded rows repeat the last original row.
    assert torch.equal(item["x"][:, 300:, :400], item["x"][:, 299:300, :400].expand(-1, 20, -1))
    assert pad_to_multiple(torch.zeros(1, 3, 64, 128)).shape == (1, 3, 64, 128)


def test_copy_training_data(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    dst = tmp_path / "copy"
    assert copy_training_data(root, dst) == 3
    assert (dst / "sub" / "b.jpg").read_bytes() == (root / "sub" / "b.jpg").read_bytes()
    assert copy_training_data(root, dst) == 3    # idempotent
    small = tmp_path / "small"
    copy_training_data(root, small, max_side=100)
    assert max(Image.open(small / "a.jpg").size) == 100


def test_copy_training_data_within_a_byte_budget(tmp_path):
    from lic_core.train.data import DataError, copy_training_data_within

    root = _make_folder(tmp_path / "imgs")
    dst = tmp_path / "fit"
    full = copy_training_data_within(root, dst, 10**9)
    assert full[0] == 3 and full[1] is None  # room enough: the originals
    n, side, used = copy_training_data_within(root, dst, full[2] - 1, sides=(None, 200, 50))
    assert n == 3 and side in (200, 50) and used <= full[2] - 1
    assert all(max(Image.open(f).size) <= side for f in dst.rglob("*.jpg"))
    with pytest.raises(DataError, match="do not fit"):
        copy_training_data_within(root, dst, 10, sides=(None, 50))
    assert not dst.exists()


def test_cache_gives_the_same_crops_and_keeps_to_its_budget(tmp_path, monkeypatch):
    """The decoded-photo cache changes nothing but the decode count: the same crops with and
    without it, and no more decoded bytes held than the budget (photos beyond it are decoded
    each time they are drawn)."""
    from lic_core.train import data as D

    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(D, "CACHE_BUDGET_BYTES", 2 * 80 * 100 * 4 + 5)  # room for two photos
    plain = D.ImageFolderCrops(tmp_path, crop=64, seed=3)
    cached = D.ImageFolderCrops(tmp_path, crop=64, seed=3, cache=True)
    decodes = []
    real = D.load_rgb
    monkeypatch.setattr(D, "load_rgb", lambda p: decodes.append(p) or real(p))
    for epoch in range(3):
        for i in range(4):
            assert torch.equal(plain.get(i, epoch), cached.get(i, epoch))
    assert len(cached._cache) == 2 and cached._cached_bytes <= D.CACHE_BUDGET_BYTES
    # plain decodes 12 times; cached: 4 the first epoch, then only the 2 uncached photos
    assert len(decodes) == 12 + 4 + 2 * 2
