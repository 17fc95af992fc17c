"""Tiles with exact halos (issue 28; docs/methods.md §2.1, §6.4; lic_core/transform/tiling.py).

* the margins are the layers' receptive fields (checked against enumerated index sets);
* the exact g_s — base, fine-tuned and GAN decoders all run :class:`ExactSynthesis` — gives the
  same picture, accumulator and features at any tile size down to one latent;
* the float g_a gives the same y in tiles (windows kept on oneDNN's kernels), at 1 and 2 threads;
* every committed v2 fixture decodes to the same pixels and re-encodes to the same bytes with
  tiles of a few latents, and a GAN file decodes to its checked picture in small tiles;
* the cache-blocked kernels with their fused epilogues equal the reference composition.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from lic_core.codecs.learned import exact_synthesis
from lic_core.exact import fixed, kernels
from lic_core.exact.fixed import ExactLinear, Grid, picture_from_real, snap
from lic_core.models import build_model, load_model, weights_path
from lic_core.transform.tiling import (
    _conv_margin,
    _deconv_margin,
    input_margin,
    spans,
    tile_grid,
)

needs_cpu_weights = pytest.mark.skipif(not weights_path("lic-lgem-cpu").is_file(),
                                       reason="lic-lgem-cpu weights absent")


def _sha(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a.numpy() if isinstance(a, torch.Tensor) else a).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------ the plan


@pytest.mark.parametrize("n,tile,margin,min_window", [(1, 4, 2, 0), (13, 4, 3, 0), (52, 35, 4, 0),
                                                      (30, 7, 1, 16), (9, 2, 0, 0)])
def test_spans_partition_the_axis_and_reach_the_margin(n, tile, margin, min_window):
    sp = spans(n, tile, margin, min_window)
    assert sp[0].core[0] == 0 and sp[-1].core[1] == n
    for a, b in zip(sp, sp[1:]):
        assert a.core[1] == b.core[0]
    for s in sp:
        c0, c1 = s.core
        w0, w1 = s.window
        assert 0 < c1 - c0 <= tile
        assert w0 <= max(0, c0 - margin) and w1 >= min(n, c1 + margin) and 0 <= w0 and w1 <= n
        assert w1 - w0 >= min(n, min_window)
    assert len(tile_grid(n, n + 1, tile, margin)) == len(sp) * len(spans(n + 1, tile, margin))


def _needed(kind: str, k: int, s: int, p: int, m: int, a: int = 5, b: int = 8) -> tuple[int, int]:
    """(left, right) input margin found by enumerating which inputs feed the outputs within m of
    an aligned core (conv: input core [s·a, s·b); deconv: input core [a, b))."""
    if kind == "conv":
        outs = range(a - m, b + m)
        ins = [s * o - p + j for o in outs for j in range(k)]
        return s * a - min(ins), max(ins) + 1 - s * b
    outs = range(s * a - m, s * b + m)
    ins = [i for o in outs for i in range(-50, 100) if 0 <= o - (s * i - p) < k]
    return a - min(ins), max(ins) + 1 - b


@pytest.mark.parametrize("k,s,p", [(1, 1, 0), (3, 1, 1), (5, 1, 2), (5, 2, 2), (3, 2, 1),
                                   (4, 2, 1)])
@pytest.mark.parametrize("m", [0, 1, 2, 5])
def test_margins_are_the_receptive_fields(k, s, p, m):
    left, right = _needed("conv", k, s, p, m)
    assert _conv_margin(k, s, p, m) == max(0, left, right)
    if s > 1 or k > 1:
        left, right = _needed("deconv", k, s, p, m)
        assert _deconv_margin(k, s, p, m) == max(0, left, right)


def test_input_margin_of_the_transforms():
    m = build_model("lic-lgem-tiny")
    assert input_margin(m.g_a.net) > 0
    synth = exact_synthesis(m)
    assert synth.margins[-1] == 0 and all(x >= 0 for x in synth.margins)
    with pytest.raises(NotImplementedError):
        input_margin(torch.nn.Upsample(scale_factor=2))


# --------------------------------------------------------------------------- exact g_s in tiles


def _latents(h: int, w: int, seed: int = 0, channels: int = 320) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.randn(1, channels, h, w, generator=g, dtype=torch.float64) * 4.0)


def _synth_digest(synth, y, code, tile):
    pic = synth.picture(y, code, tile=tile)
    acc, feats = synth.run(y, code, keep_features=True, tile=tile)
    return _sha(pic, acc, *feats)


@needs_cpu_weights
@pytest.mark.parametrize("which", ["base", "finetuned"])
def test_exact_synthesis_is_bit_identical_in_tiles(which):
    model = load_model("lic-lgem-cpu")
    if which == "base":
        synth = exact_synthesis(model)
    else:
        from lic_core.decoder.finetuned import load_finetuned_synthesis
        from lic_core.paths import finetuned_path

        shipped = [finetuned_path("lic-lgem-cpu", q) for q in ("round", "tcq", "rdoq")]
        shipped = [p for p in shipped if p.is_file()]
        assert shipped, "no fine-tuned decoder ships for lic-lgem-cpu"
        path = shipped[0]
        synth = load_finetuned_synthesis(model, path, b"\0" * 8)[0]
    y = _latents(11, 17)
    whole = _synth_digest(synth, y, 40000, tile=64)
    for tile in (1, 2, 3, 5):
        assert _synth_digest(synth, y, 40000, tile=tile) == whole, tile
    # the budget's tile (here one tile) and the picture as the accumulator's
    acc, _ = synth.run(y, 40000)
    assert torch.equal(picture_from_real(synth.real_output(acc)), synth.picture(y, 40000))


def test_exact_synthesis_tiles_on_the_tiny_model():
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    synth = exact_synthesis(m)
    y = _latents(7, 9, seed=3, channels=m.config.M) * 8.0
    whole = _synth_digest(synth, y, 30000, tile=64)
    assert all(_synth_digest(synth, y, 30000, tile=t) == whole for t in (1, 2, 4))


def _tile_threads(synth, monkeypatch) -> set:
    """Spy on the threads that run ``synth``'s tiles (their ``_stages``); returns the set."""
    import threading

    seen: set = set()
    stages = synth._stages

    def spy(*args, **kwargs):
        seen.add(threading.get_ident())
        if len(seen) > 1:  # a tile thread: its torch calls single-threaded
            assert torch.get_num_threads() == 1
        return stages(*args, **kwargs)

    monkeypatch.setattr(synth, "_stages", spy)
    return seen


@pytest.mark.parametrize("threads", [2, 3])
def test_tiles_in_threads_are_the_same_bytes(threads, monkeypatch):
    """With several torch threads the tiles run in as many Python threads (each single-threaded,
    issue 28 item 2): picture, accumulator, features and the cropped HWC picture are the bytes
    of the tiles one after the other; the thread count is restored afterwards."""
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    synth = exact_synthesis(m)
    y = _latents(13, 19, seed=5, channels=m.config.M) * 8.0
    assert torch.get_num_threads() == 1 and synth._workers() == 1
    serial = _synth_digest(synth, y, 30000, tile=3)
    hwc = synth.picture_hwc(y, 30000, (199, 290), tile=2)
    seen = _tile_threads(synth, monkeypatch)
    torch.set_num_threads(threads)  # the autouse fixture sets 1 again after the test
    assert synth._workers() == threads
    assert _synth_digest(synth, y, 30000, tile=3) == serial
    assert np.array_equal(synth.picture_hwc(y, 30000, (199, 290), tile=2), hwc)
    assert len(seen) > 1 and torch.get_num_threads() == threads


@needs_cpu_weights
def test_cpu_model_tiles_in_threads_are_the_same_bytes(monkeypatch):
    synth = exact_synthesis(load_model("lic-lgem-cpu"))
    y = _latents(11, 17, seed=2)
    serial = _synth_digest(synth, y, 40000, tile=4)
    seen = _tile_threads(synth, monkeypatch)
    torch.set_num_threads(2)
    assert _synth_digest(synth, y, 40000, tile=4) == serial and len(seen) > 1


def test_tiles_under_a_function_mode_stay_in_the_calling_thread(monkeypatch):
    """The exact-op guard sees only its own thread: under it the tiles are not spread."""
    from lic_core.exact.guard import ExactOpGuard

    m = build_model("lic-lgem-tiny").eval()
    synth = exact_synthesis(m)
    y = _latents(9, 9, seed=6, channels=m.config.M)
    seen = _tile_threads(synth, monkeypatch)
    torch.set_num_threads(2)
    with ExactOpGuard() as guard:
        synth.picture(y, 30000, tile=2)
    assert len(seen) == 1 and guard.violations == [] and guard.calls > 1000


def test_single_threaded_ops_nests_and_restores():
    """Overlapping holders in two threads share the setting; the last one out restores the
    count the first one found, also after an exception."""
    import threading

    from lic_core.threads import single_threaded_ops

    torch.set_num_threads(3)
    inside, release = threading.Event(), threading.Event()

    def other():
        with single_threaded_ops():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    with single_threaded_ops():
        pass
    release.set()
    t.join(10)
    assert torch.get_num_threads() == 3
    with pytest.raises(ValueError):
        with single_threaded_ops():
            raise ValueError("a failed tile")
    assert torch.get_num_threads() == 3


def test_a_thread_born_during_another_decodes_tiles_gets_the_users_thread_count():
    """While one decode's tiles run single-threaded in Python threads, a thread started meanwhile
    (the studio's worker pool) would inherit their 1 for its life: it asks for the count the user
    set; a count set meanwhile (Settings → Compute threads) is what the last holder restores."""
    import threading

    from lic_core.threads import (
        apply_threads,
        intended_threads,
        single_threaded_ops,
        use_intended_threads,
    )

    torch.set_num_threads(2)
    inside, release, seen = threading.Event(), threading.Event(), {}

    def decode_a():
        with single_threaded_ops():
            torch.set_num_threads(1)  # what a tile worker does
            inside.set()
            release.wait(10)

    def decode_b():
        seen["intended"] = intended_threads()
        seen["used"] = use_intended_threads()
        seen["after"] = torch.get_num_threads()

    a = threading.Thread(target=decode_a)
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=decode_b)
    b.start()
    b.join(10)
    apply_threads(3)  # the user changes the setting during the decode
    release.set()
    a.join(10)
    assert seen == {"intended": 2, "used": 2, "after": 2}
    fresh = {}
    c = threading.Thread(target=lambda: fresh.setdefault("n", torch.get_num_threads()))
    c.start()
    c.join(10)
    assert torch.get_num_threads() == 3 and fresh["n"] == 3 and intended_threads() == 3
    torch.set_num_threads(2)


def test_tile_workers_env_is_checked(monkeypatch):
    from lic_core.errors import LicError
    from lic_core.models.lgem_exact.synthesis import ExactSynthesis

    monkeypatch.setenv("LIC_TILE_WORKERS", "two")
    with pytest.raises(LicError, match="LIC_TILE_WORKERS"):
        ExactSynthesis.max_tile_workers()
    monkeypatch.setenv("LIC_TILE_WORKERS", "1")
    assert ExactSynthesis.max_tile_workers() == 1


def test_cropped_picture_computes_only_its_pixels_the_same_bytes(monkeypatch):
    """picture_hwc stops every window at the picture's margin instead of the padded size: the
    bytes are the whole picture's, cropped, for picture sizes that cut latents and tiles
    anywhere, at fixed tile sizes and with the budget's plan (tile 0)."""
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    synth = exact_synthesis(m)
    y = _latents(13, 19, seed=4, channels=m.config.M) * 8.0
    whole = synth.picture(y, 30000, tile=64)[0].permute(1, 2, 0).numpy()
    monkeypatch.setenv("LIC_TILE_MB", "0.001")  # the budget's plan: tiles of a few latents
    assert len(synth._plan(13, 19, 13, 19, 0)[1]) > 1
    for size in ((208, 304), (199, 290), (49, 17), (1, 1)):
        for tile in (0, 2, 5):
            pic = synth.picture_hwc(y, 30000, size, tile=tile)
            assert np.array_equal(pic, whole[:size[0], :size[1]]), (size, tile)


def test_the_budget_plan_fits_the_window_and_covers_the_needed_latents():
    """Every tile of the budget's plan fits the budget's window and the cores cover the latents
    the picture needs (not the padded latent's last row and column) once each."""
    synth = exact_synthesis(build_model("lic-lgem-tiny").eval())
    side = synth.tile_size() + 2 * synth.margins[0]
    for hl, wl, hn, wn in ((52, 80, 51, 77), (13, 13, 13, 13), (187, 250, 187, 250), (3, 90, 2, 88)):
        rows, cols = synth._plan(hl, wl, hn, wn, 0)
        for spans_, n, need in ((rows, hl, hn), (cols, wl, wn)):
            assert spans_[0].core[0] == 0 and spans_[-1].core[1] == need
            assert all(a.core[1] == b.core[0] for a, b in zip(spans_, spans_[1:]))
            assert all(0 <= s.window[0] <= s.core[0] and s.core[1] <= s.window[1] <= n
                       and s.window[1] - s.window[0] <= side for s in spans_)


# ----------------------------------------------------------------------------- float g_a in tiles


_ANALYSIS_WORKER = r"""
import sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from lic_core.image.io import load_image, sample_image_path
from lic_core.image.tensor import pad_to_multiple, to_tensor
from lic_core.models import load_model
from lic_core.transform.tiling import analysis_tiled
m = load_model("lic-lgem-cpu")
x, _ = pad_to_multiple(to_tensor(np.ascontiguousarray(load_image(sample_image_path()))), 64)
with torch.no_grad():
    y = m.g_a(x)
    same = [bool(torch.equal(analysis_tiled(m.g_a.net, x, tile=t), y)) for t in (64, 128, 320)]
print(same)
"""


@needs_cpu_weights
@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_analysis_in_tiles_gives_the_same_y(threads):
    """In its own process: ATen's kernel choices depend on the thread count (1×1 convolutions
    run on oneDNN with more than one thread); OMP_WAIT_POLICY=passive keeps 2 threads usable
    beside a busy core and changes no result."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_WAIT_POLICY": "passive"}
    r = subprocess.run([sys.executable, "-c", _ANALYSIS_WORKER, str(threads)], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[True, True, True]"


# -------------------------------------------------------------------- files in tiles of a few latents


def _fixture_cases():
    from test_format_fixtures import CASES

    return CASES


@pytest.mark.parametrize("case", _fixture_cases(), ids=[c["file"] for c in _fixture_cases()])
def test_v2_fixtures_are_the_same_in_small_tiles(case, monkeypatch):
    from PIL import Image

    from lic_core.codecs import EncodeParams
    from test_format_fixtures import V2, _codec

    monkeypatch.setenv("LIC_TILE_MB", "0.01")  # g_s tiles of 4 latents, g_a tiles of 64 pixels
    # (entropy tiles of 8 latents) and steps coded in slices of a channel or two
    monkeypatch.setattr("lic_core.latent_codecs.base.STEP_SLICE_ELEMENTS", 40)
    codec = _codec(case)
    rec = codec.decode((V2 / case["file"]).read_bytes()).reconstruction
    assert _sha(rec) == case["pixels_sha256"]
    if case["decoder"] != "diffusion":  # (its encode runs the same tiled g_s; decode checks it)
        img = np.asarray(Image.open(V2 / case["source"]).convert("RGB"))
        res = codec.encode(img, EncodeParams(rate=case["rate"], quantizer=case["quantizer"],
                                             quantizer_params=case["quantizer_params"],
                                             decoder=case["decoder"], seed=case["seed"],
                                             diffusion_steps=case["diffusion_steps"]))
        assert hashlib.sha256(res.data).hexdigest() == case["lic_sha256"]


@pytest.mark.parametrize("case", _fixture_cases(), ids=[c["file"] for c in _fixture_cases()])
def test_v2_fixtures_decode_the_same_with_tiles_in_threads(case, monkeypatch):
    """Every committed v2 file decodes to its pixels with g_s's small tiles spread over two
    threads (issue 28 item 2) — the whole decode on 2 torch threads."""
    from lic_core.models.lgem_exact import ExactSynthesis
    from test_format_fixtures import V2, _codec

    monkeypatch.setenv("LIC_TILE_MB", "0.01")
    import threading

    seen: list = []
    stages = ExactSynthesis._stages

    def spy(self, *args, **kwargs):
        seen.append(threading.get_ident())
        return stages(self, *args, **kwargs)

    monkeypatch.setattr(ExactSynthesis, "_stages", spy)
    torch.set_num_threads(2)  # the autouse fixture sets 1 again
    codec = _codec(case)
    rec = codec.decode((V2 / case["file"]).read_bytes()).reconstruction
    assert _sha(rec) == case["pixels_sha256"] and torch.get_num_threads() == 2
    # a picture of several tiles ran them in two threads (HiFiC has no ExactSynthesis; a small
    # picture is one tile even here)
    assert len(set(seen)) == (2 if len(seen) > 3 else len(set(seen)))


def test_gan_files_decode_to_their_picture_in_small_tiles(tmp_path, monkeypatch):
    from lic_core.codecs import EncodeParams
    from lic_core.codecs.learned import LearnedCodec
    from test_gan_decoder import TINY, _ship_gan, _ship_tiny

    wdir = tmp_path / "weights"
    wdir.mkdir()
    _ship_tiny(wdir, 0)
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))
    _ship_gan(wdir)
    rng = np.random.RandomState(1)
    img = (rng.rand(120, 200, 3) * 255).astype(np.uint8)
    codec = LearnedCodec(TINY)
    gan = codec.encode(img, EncodeParams(rate=0.5, decoder="gan"))
    monkeypatch.setenv("LIC_TILE_MB", "0.001")
    assert codec.gan_decoder()[0].tile_size() == 4  # 2×4 tiles of 4 latents
    d = codec.decode(gan.data)
    assert d.info["picture_checked"] and np.array_equal(d.reconstruction, gan.reconstruction)


# ---------------------------------------------------------------------- cache-blocked kernels


def _layer(kind: str) -> torch.nn.Module:
    torch.manual_seed(2)
    return {"conv3": torch.nn.Conv2d(6, 20, 3, padding=1),
            "conv5_narrow": torch.nn.Conv2d(6, 3, 5, padding=2),
            "pointwise": torch.nn.Conv2d(6, 20, 1),
            "pointwise_nobias": torch.nn.Conv2d(6, 20, 1, bias=False),
            "deconv": torch.nn.ConvTranspose2d(6, 20, 5, stride=2, padding=2, output_padding=1),
            "deconv_narrow": torch.nn.ConvTranspose2d(6, 3, 5, stride=2, padding=2,
                                                      output_padding=1),
            "deconv3": torch.nn.ConvTranspose2d(6, 20, 3, stride=2, padding=1, output_padding=1),
            }[kind]


@pytest.mark.parametrize("kind", ["conv3", "conv5_narrow", "pointwise", "pointwise_nobias",
                                  "deconv", "deconv_narrow", "deconv3"])
def test_blocked_kernels_equal_the_reference(kind, monkeypatch):
    grid = Grid(16, 12)
    lin = ExactLinear(_layer(kind), grid)
    g = torch.Generator().manual_seed(0)
    x = torch.round(torch.randn(2, 6, 13, 17, generator=g, dtype=torch.float64) * 2.0 ** 16)
    monkeypatch.setattr(kernels, "CHUNK_BYTES", 4096)  # many chunks, a partial last one
    acc = lin(x)
    out_shape = acc.shape
    res = torch.round(torch.randn(out_shape, generator=g, dtype=torch.float64) * 2.0 ** 27)
    got = (acc, lin.snapped(x, grid), lin.snapped(x, grid, relu=True),
           lin.snapped(x, grid, residual=res), lin.picture(x, grid))
    monkeypatch.setattr(fixed, "FORCE_IM2COL", True)  # the reference: unfold/fold + matmul
    ref_acc = lin(x)
    lim = float(grid.max_int)
    ref = (ref_acc, snap(ref_acc, grid), snap(ref_acc, grid, relu=True),
           torch.add(res, snap(ref_acc, grid)).clamp_(-lim, lim),
           picture_from_real(ref_acc * grid.step))
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype and torch.equal(a, b)


# ------------------------------------------------------------- entropy parameters in tiles


@pytest.mark.parametrize("h,w,parity", [(5, 7, 0), (5, 7, 1), (8, 6, 0), (9, 4, 1), (1, 1, 0)])
def test_tile_rows_land_where_gather_puts_them(h, w, parity):
    """Every core's pass positions, written row by row, are the whole grid's gather."""
    from lic_core.entropy_model.checkerboard import anchor_mask, gather
    from lic_core.models.lgem_exact import TiledEntropy

    x = torch.arange(h * w, dtype=torch.float64).reshape(1, 1, h, w)
    mask = anchor_mask(h, w) if parity == 0 else ~anchor_mask(h, w)
    want = gather(x, mask)
    assert want.shape[-1] == TiledEntropy.pass_size(h, w, parity)
    got = torch.full_like(want, -1.0)
    for r0 in range(0, h, 2):
        for c0 in range(0, w, 4):
            rows, cols = (r0, min(h, r0 + 2)), (c0, min(w, c0 + 4))
            m = anchor_mask(rows[1] - r0, cols[1] - c0)
            part = x[..., rows[0]:rows[1], cols[0]:cols[1]][:, :, m if parity == 0 else ~m]
            TiledEntropy._place([got], (part,), rows, cols, w, parity)
    assert torch.equal(got, want)


@pytest.mark.parametrize("h,w", [(h, w) for h in range(1, 6) for w in range(1, 6)])
def test_gather_parity_is_gather(h, w):
    """The strided gather of a pass is :func:`gather` with its mask (any shape, strides, dtype);
    mask_parity recognises exactly the two checkerboard masks."""
    from lic_core.entropy_model.checkerboard import anchor_mask, gather, gather_parity, mask_parity

    x = torch.arange(2 * 3 * (h + 2) * (w + 3), dtype=torch.int32).reshape(2, 3, h + 2, w + 3)
    core = x[..., 1:1 + h, 2:2 + w]  # a window: not contiguous
    for parity, mask in ((0, anchor_mask(h, w)), (1, ~anchor_mask(h, w))):
        assert torch.equal(gather_parity(core, parity), gather(core, mask))
        assert torch.equal(gather_parity(core.double(), parity), gather(core.double(), mask))
        assert mask_parity(mask) == parity
    if h * w > 1:
        other = anchor_mask(h, w).clone()
        other[-1, -1] = ~other[-1, -1]
        assert mask_parity(other) is None


def _coded(model, img, tile, quantizer="round"):
    """(file sections, ŷ⊙G, symbol CRCs) of one image with the exact engine in tiles."""
    from lic_core.codecs.learned import _analyse, latent_codec
    from lic_core.image.tensor import pad_to_multiple, to_tensor
    from lic_core.latent_codecs import LgemExactParameters
    from lic_core.quantizer import build_quantizer

    eng = LgemExactParameters(model, tile=tile)
    gains = eng.gains_for_code(30000)
    x, _ = pad_to_multiple(to_tensor(img), 64)
    with torch.no_grad():
        y_bar, z_bar = _analyse(model, x, gains)
        c = latent_codec(model, eng).compress(y_bar, z_bar, gains, build_quantizer(quantizer))
        d = latent_codec(model, eng).decompress(c.sections, (x.shape[-2] // 64, x.shape[-1] // 64),
                                                gains, build_quantizer(quantizer),
                                                expected_crcs=c.symbol_crcs, maps=False)
    assert torch.equal(d.y_hat_gained, c.y_hat_gained)
    return c.sections, _sha(c.y_hat_gained, c.y.means, c.y.scales, c.y.bits), c.symbol_crcs


def test_entropy_parameters_tiles_on_the_tiny_model():
    """Window 4 (tiles aligned to 4): tiles of 4 latents give the whole latent's bits (the
    fast run's check; the CPU model's, window 8, below is slow)."""
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    with torch.no_grad():  # a random g_a is nearly flat: spread the latents so symbols vary
        m.gains.gain.weight.mul_(6.0)
    img = (np.random.RandomState(2).rand(320, 448, 3) * 255).astype(np.uint8)  # 20×28 latents
    assert _coded(m, img, tile=4) == _coded(m, img, tile=4096)  # 5×7 tiles of 4 latents


@needs_cpu_weights
@pytest.mark.slow
@pytest.mark.parametrize("quantizer", ["round", "tcq"])
def test_entropy_parameters_tiles_on_the_cpu_model(quantizer):
    """Window 8, shifted intra blocks, margins of 8 and 16 latents: a 24×32-latent photo in tiles
    of 8 and 16 codes the same bytes, ŷ, means, scales and bits as in one tile."""
    from lic_core.image.io import load_image, sample_image_path

    m = load_model("lic-lgem-cpu")
    img = np.ascontiguousarray(load_image(sample_image_path())[:384, :512])
    whole = _coded(m, img, tile=4096, quantizer=quantizer)
    for tile in (8, 16):
        assert _coded(m, img, tile=tile, quantizer=quantizer) == whole, tile


def test_padded_image_windows_are_the_padded_tensor():
    """g_a reads the uint8 photo window by window: the same floats as the padded tensor."""
    from lic_core.image.tensor import PaddedImage, pad_to_multiple, to_tensor

    img = (np.random.RandomState(0).rand(70, 100, 3) * 255).astype(np.uint8)
    whole = pad_to_multiple(to_tensor(img), 64)[0]
    p = PaddedImage(img, 64)
    assert p.shape == tuple(whole.shape) and torch.equal(p.full(), whole)
    for r0, r1, c0, c1 in [(0, 64, 0, 64), (32, 128, 40, 128), (0, 128, 0, 128), (69, 71, 99, 101)]:
        assert torch.equal(p.window(r0, r1, c0, c1), whole[..., r0:r1, c0:c1])


def test_gained_latent_split_and_release():
    from lic_core.latent_codecs import GainedLatent

    y = torch.randn(1, 10, 3, 4)
    G = torch.rand(1, 10, 1, 1, dtype=torch.float64) + 0.5
    gl = GainedLatent(y, G)
    want = y.to(torch.float64) * G
    gl.split([3, 7])
    assert torch.equal(gl.channels(slice(3, 10)), want[:, 3:]) and torch.equal(gl.full(), want)
    gl.release(slice(0, 3))
    assert torch.equal(gl.channels(slice(4, 6)), want[:, 4:6])
    with pytest.raises(KeyError):
        gl.channels(slice(0, 2))


@pytest.mark.parametrize("order", [0, 1])
def test_tcq_search_in_chunks_of_streams(order, monkeypatch):
    """A big step's trellis runs in chunks of streams: the same indices as in one search."""
    from lic_core.quantizer.tcq import TcqQuantizer

    g = torch.Generator().manual_seed(order)
    res = torch.randn(1, 12, 300, generator=g, dtype=torch.float64) * 3
    index = torch.randint(0, 40, (1, 12, 300), generator=g)
    q = TcqQuantizer(order=order)
    whole = q.quantize(res, index)
    monkeypatch.setattr(TcqQuantizer, "VITERBI_CHUNK", 12 * 7)  # 7 streams a chunk
    assert torch.equal(q.quantize(res, index), whole)


def test_tcq_rows_in_pieces_code_the_same_bits(monkeypatch):
    """The Categorical rows of a channel step are built and coded in pieces: same bytes."""
    from lic_core.entropy_coder.symbols import SymbolDecoder, SymbolEncoder
    from lic_core.quantizer.tcq import TcqQuantizer

    g = torch.Generator().manual_seed(5)
    res = torch.randn(1, 6, 500, generator=g, dtype=torch.float64) * 4
    index = torch.randint(0, 50, (1, 6, 500), generator=g)
    q = TcqQuantizer(order=1)
    k = q.quantize(res, index)

    def coded():
        enc = SymbolEncoder()
        enc.encode(q.symbol_plan(index, k))
        data = enc.to_bytes()
        return data, SymbolDecoder(data).decode(q.symbol_plan(index))

    whole, back = coded()
    monkeypatch.setattr(TcqQuantizer, "ROW_PIECE_ENTRIES", 64)
    pieces, back2 = coded()
    assert pieces == whole and torch.equal(back2, back) and torch.equal(back, k)


def test_diffusion_decoder_in_small_tiles(monkeypatch):
    """The diffusion decoder's conditioning (x̂_mse and the g_s features: the exact g_s with
    features kept, tile by tile) is the same at any tile size, and so is the sampled picture of
    a file; the sampler itself works on the whole picture (its DCT, GroupNorm and linear
    attention are global: docs/methods.md §7.2–7.3)."""
    from lic_core.decoder.diffusion.exact import exact_diffusion
    from test_format_fixtures import V2, _codec

    case = next(c for c in _fixture_cases() if c["decoder"] == "diffusion")
    codec = _codec(case)
    data = (V2 / case["file"]).read_bytes()
    whole = codec.decode(data)
    synth = exact_synthesis(codec.model)
    ex = exact_diffusion(codec.diffusion_decoder())
    y = _latents(12, 20, seed=4, channels=codec.model.config.M) * 8.0
    ctx_whole = ex.contexts(synth, y, 30000)
    monkeypatch.setenv("LIC_TILE_MB", "0.001")
    assert synth.tile_size() == 4  # 3×5 tiles
    ctx_tiles = ex.contexts(synth, y, 30000)
    assert _sha(*ctx_whole[0], ctx_whole[2]) == _sha(*ctx_tiles[0], ctx_tiles[2])
    tiled = codec.decode(data)
    assert tiled.info["picture_checked"] and np.array_equal(tiled.reconstruction,
                                                            whole.reconstruction)
