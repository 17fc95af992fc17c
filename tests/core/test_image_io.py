"""Image loading conversions, pixel limit, atomic saving (lic_core.image)."""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lic_core.errors import ImageError, LicError
from lic_core.fileio import write_bytes_atomic
from lic_core.image import load_image, sample_image_path, save_image_atomic, save_png_atomic


def _save(im: Image.Image, path: Path, **kw) -> Path:
    im.save(path, **kw)
    return path


def test_rgb_png_exact(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    out = load_image(_save(Image.fromarray(a), tmp_path / "a.png"))
    np.testing.assert_array_equal(out, a)
    assert out.flags.writeable and out.dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((10, 20, 3), np.uint8)
    a[0, 0] = (255, 0, 0)  # red marker at stored top-left
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° CW to display"
    path = tmp_path / "o.png"
    im.save(path, exif=exif.tobytes())
    out = load_image(path)
    assert out.shape == (20, 10, 3)
    # rotating 90° clockwise moves the stored top-left to the displayed top-right
    np.testing.assert_array_equal(out[0, -1], (255, 0, 0))
    assert out[0, 0].sum() == 0


def test_rgba_composited_on_white(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0] = 200
    a[0, 0, 3] = 0      # fully transparent -> white
    a[0, 1, 3] = 255    # opaque -> the colour
    a[0, 2, 3] = 128    # half -> blend
    out = load_image(_save(Image.fromarray(a, "RGBA"), tmp_path / "a.png"))
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(out[0, 1], (200, 0, 0))
    assert abs(int(out[0, 2, 0]) - round(200 * 128 / 255 + 255 * 127 / 255)) <= 1
    assert abs(int(out[0, 2, 1]) - round(255 * 127 / 255)) <= 1


def test_greyscale_and_la(tmp_path):
    g = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    out = load_image(_save(Image.fromarray(g, "L"), tmp_path / "g.png"))
    assert out.shape == (5, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)
    la = Image.merge("LA", [Image.fromarray(g, "L"), Image.fromarray(np.zeros_like(g), "L")])
    out = load_image(_save(la, tmp_path / "la.png"))
    assert (out == 255).all()


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (4, 3), 0)
    im.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.info["transparency"] = 0
    path = _save(im, tmp_path / "p.png", transparency=0)
    out = load_image(path)
    np.testing.assert_array_equal(out[1, 1], (200, 100, 50))
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))  # transparent index -> white
    im2 = Image.new("P", (2, 2), 1)
    im2.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    out = load_image(_save(im2, tmp_path / "p2.gif"))
    np.testing.assert_array_equal(out[0, 0], (200, 100, 50))


def test_16bit_greyscale_scaled(tmp_path):
    v = np.array([[0, 257, 32768, 65535, 1000, 65000]], dtype=np.uint16)
    expected = np.rint(v / 257.0).astype(np.uint8)
    for mode, dt in (("I;16", "<u2"), ("I;16B", ">u2")):
        im = Image.frombytes(mode, (6, 1), v.astype(dt).tobytes())
        out = load_image(im)
        np.testing.assert_array_equal(out[..., 1], expected)
        out = load_image(_save(im, tmp_path / f"{mode[-1]}.png"))
        np.testing.assert_array_equal(out[..., 0], expected)


def _png_rgb16(arr: np.ndarray) -> bytes:
    """A minimal 16-bit RGB PNG (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def test_16bit_rgb_png(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 65536, (6, 7, 3)).astype(np.uint16)
    arr[0, 0] = (65535, 0, 32768)
    p = tmp_path / "rgb16.png"
    p.write_bytes(_png_rgb16(arr))
    out = load_image(p)
    exact = arr / 257.0
    assert np.abs(out - exact).max() < 1.0  # never clipped, within one level of exact
    np.testing.assert_array_equal(out[0, 0, :2], (255, 0))


def test_cmyk_jpeg(tmp_path):
    im = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(_save(im, tmp_path / "c.jpg", quality=100))
    r, g, b = out[4, 4].astype(int)
    assert r > 230 and g < 25 and b < 25


def test_refusals(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    txt = tmp_path / "notes.png"
    txt.write_text("hello, I am not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_image(txt)
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)
    good = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good, "PNG")
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(good.getvalue()[:60])
    with pytest.raises(ImageError):
        load_image(trunc)
    with pytest.raises(ImageError, match="zero size"):
        load_image(Image.new("RGB", (0, 5)))
    with pytest.raises(ImageError, match="float"):
        load_image(Image.new("F", (3, 3)))


def test_animated_refused_but_first_frame_of_tiff_used(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(ImageError, match="animated"):
        load_image(gif)
    apng = tmp_path / "anim.png"
    frames[0].save(apng, save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ImageError, match="animated"):
        load_image(apng)
    tif = tmp_path / "pages.tif"
    frames[0].save(tif, save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(load_image(tif)[0, 0], (255, 0, 0))


def test_pixel_limit(tmp_path):
    p = _save(Image.new("RGB", (300, 200)), tmp_path / "big.png")
    with pytest.raises(ImageError) as ei:
        load_image(p, max_pixels=50_000)
    msg = str(ei.value)
    assert "300×200" in msg and "--max-pixels" in msg and "0.1 Mpx" in msg
    assert load_image(p, max_pixels=60_000).shape == (200, 300, 3)
    assert load_image(p, max_pixels=None).shape == (200, 300, 3)


def test_pillow_bomb_limit_lifted_when_ours_is_higher(tmp_path, monkeypatch):
    p = _save(Image.new("RGB", (100, 100)), tmp_path / "x.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow would refuse at 2000 px
    assert load_image(p, max_pixels=20_000).shape == (100, 100, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    with pytest.raises(ImageError, match="--max-pixels"):
        load_image(p, max_pixels=500)


def test_save_atomic_round_trip_and_no_overwrite(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    for ext in (".png", ".bmp", ".tif", ".ppm", ".webp"):
        p = tmp_path / f"out{ext}"
        save_image_atomic(a, p)
        np.testing.assert_array_equal(load_image(p), a)
    p = tmp_path / "out.png"
    with pytest.raises(LicError, match="--force"):
        save_png_atomic(a, p)
    b = 255 - a
    save_png_atomic(b, p, overwrite=True)
    np.testing.assert_array_equal(load_image(p), b)
    with pytest.raises(ImageError, match="lossless"):
        save_image_atomic(a, tmp_path / "out.jpg")
    assert sorted(os.listdir(tmp_path)) == sorted(f"out{e}" for e in
                                                  (".png", ".bmp", ".tif", ".ppm", ".webp"))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    from lic_core.fileio import write_atomic

    def boom(fh):
        fh.write(b"partial data")
        raise OSError(28, "No space left on device")

    with pytest.raises(LicError, match="No space left"):
        write_atomic(tmp_path / "x.lic", boom)
    assert os.listdir(tmp_path) == []
    target = tmp_path / "keep.lic"
    target.write_bytes(b"original")
    with pytest.raises(LicError):
        write_atomic(target, boom, overwrite=True)
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["keep.lic"]
    with pytest.raises(LicError, match="--force"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"original"
    write_bytes_atomic(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    with pytest.raises(LicError, match="does not exist"):
        write_bytes_atomic(tmp_path / "nope" / "x.lic", b"1")


def test_sample_image():
    p = sample_image_path()
    assert p.is_file() and p.stat().st_size < 500_000
    a = load_image(p)
    assert max(a.shape[:2]) == 768 and a.shape[2] == 3
    assert (p.parent / "CREDITS.md").is_file()
