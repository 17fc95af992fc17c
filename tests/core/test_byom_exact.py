"""The exact path for added CompressAI models (issue 25): files of ``bmshj2018-hyperprior``,
``mbt2018-mean`` and ``mbt2018`` decode to the identical picture in other processes, thread
counts and CPU instruction sets; the float path stays CompressAI's picture under ``NAME:float``.

Checkpoints are made with CompressAI itself (tests/compressai_checkpoints.py) at tiny widths.
One process (this one) adds the three models and encodes; five fresh processes (side by side)
decode every exact file — 1, 2 and 4 threads, ATen and oneDNN held to AVX2, and ATen's scalar kernels — and
report the SHA-256 of every picture (each decode also passes the file's symbol and picture
checks).  The exact networks are compared with the float ones layer by layer, the decode path
runs under :class:`~lic_core.exact.guard.ExactOpGuard`, and a file whose decoder computes other
parameters (or a tampered one) ends in the mismatch message.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("compressai")

from compressai_checkpoints import compressai_picture, make_checkpoint, smooth_image  # noqa: E402
from lic_core.bitstream import pack, unpack  # noqa: E402
from lic_core.cli import main as lic_main  # noqa: E402
from lic_core.codecs import EncodeParams, get_codec  # noqa: E402
from lic_core.codecs.registry import builtin_codecs, codec_for_file  # noqa: E402
from lic_core.codecs.user_models import add_model  # noqa: E402
from lic_core.errors import LicMismatchError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXACT_ARCHS = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018")
#: a picture that is not a multiple of 64 (CompressAI's centred padding shows)
H, W = 80, 120

_WORKER = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from lic_core.codecs.registry import codec_for_file
out = {"threads": torch.get_num_threads(),
       "capability": torch.backends.cpu.get_cpu_capability()}
for f in sorted(Path(sys.argv[2]).glob("*.lic")):
    data = f.read_bytes()
    codec = codec_for_file(data, f)
    r = codec.decode(data)
    assert r.info["symbols_checked"] and r.info["picture_checked"], f.name
    out[f.name] = [codec.name, r.info["path"],
                   hashlib.sha256(np.ascontiguousarray(r.reconstruction).tobytes()).hexdigest()]
print(json.dumps(out))
"""


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def _env(cfg: Path, **extra: str) -> dict:
    env = {**os.environ, "LIC_CONFIG_DIR": str(cfg), "OMP_WAIT_POLICY": "passive", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """The three models added (one checkpoint each), a picture encoded by each on both paths in
    this process; exact files in ``exact/``, float files in ``float/``."""
    root = tmp_path_factory.mktemp("byom_exact")
    cfg = root / "config"
    old = os.environ.get("LIC_CONFIG_DIR")
    os.environ["LIC_CONFIG_DIR"] = str(cfg)
    try:
        x = smooth_image(H, W, seed=5)
        img = (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        nets, expected, results = {}, {}, {}
        for d in ("exact", "float"):
            (root / d).mkdir()
        for arch in EXACT_ARCHS:
            ck = root / f"{arch}.pth.tar"
            nets[arch] = make_checkpoint(arch, ck, "train", seed=2, steps=4)
            add_model(f"x-{arch}", f"compressai:{arch}", [ck], reserved=builtin_codecs())
            for path, name in (("exact", f"x-{arch}"), ("float", f"x-{arch}:float")):
                r = get_codec(name).encode(img, EncodeParams(rate=1))
                f = root / path / f"{arch}.lic"
                f.write_bytes(r.data)
                expected[f.name if path == "exact" else f"float/{f.name}"] = _sha(r.reconstruction)
                results[(arch, path)] = r
        yield {"root": root, "cfg": cfg, "img": img, "x": x, "nets": nets,
               "expected": expected, "results": results}
    finally:
        if old is None:
            os.environ.pop("LIC_CONFIG_DIR", None)
        else:
            os.environ["LIC_CONFIG_DIR"] = old


@pytest.mark.slow
def test_exact_files_decode_identically_in_other_processes_threads_and_isas(coded):
    """Encoded here (1 thread); decoded by fresh processes with 1, 2, 4 threads, with ATen and
    oneDNN held to AVX2, and with ATen's scalar kernels: the same picture, bit for bit."""
    cfg, d = coded["cfg"], coded["root"] / "exact"
    want = {k: v for k, v in coded["expected"].items() if not k.startswith("float/")}
    assert len(set(want.values())) == len(want) == 3
    runs = [(1, {}), (2, {}), (4, {}),
            (2, {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
            (1, {"ATEN_CPU_CAPABILITY": "default"})]
    native = torch.backends.cpu.get_cpu_capability()
    # the processes run side by side (start-up, mostly importing torch, is most of their time)
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(threads), str(d)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(cfg, **extra)) for threads, extra in runs]
    outs = [p.communicate(timeout=300) for p in procs]
    for (threads, extra), p, (stdout, stderr) in zip(runs, procs, outs):
        assert p.returncode == 0, (threads, extra, stderr[-3000:])
        got = json.loads(stdout.strip().splitlines()[-1])
        assert got.pop("threads") == threads
        cap = got.pop("capability")
        if extra.get("ATEN_CPU_CAPABILITY") == "avx2" and native in ("AVX2", "AVX512"):
            assert cap == "AVX2"
        if extra.get("ATEN_CPU_CAPABILITY") == "default":
            assert cap == "DEFAULT"
        for name, sha in want.items():
            codec, path, picture = got[name]
            assert (codec, path) == (f"x-{Path(name).stem}", "exact"), got[name]
            assert picture == sha, (name, threads, extra)


@pytest.mark.parametrize("arch", EXACT_ARCHS)
def test_float_codec_is_compressai_and_exact_is_close(coded, arch):
    """``NAME:float`` decodes (routed by its header) to CompressAI's own picture; the exact
    path's picture and file are close to it."""
    f = coded["root"] / "float" / f"{arch}.lic"
    data = f.read_bytes()
    codec = codec_for_file(data, f)
    assert codec.name == f"x-{arch}:float"
    dec = codec.decode(data)
    assert dec.info["path"] == "float"
    ref, ref_bytes = compressai_picture(coded["nets"][arch], coded["x"])
    img = coded["img"]
    assert abs(_psnr(img, dec.reconstruction) - _psnr(img, ref.numpy())) <= 0.01
    exact = coded["results"][(arch, "exact")]
    flt = coded["results"][(arch, "float")]
    assert np.array_equal(dec.reconstruction, flt.reconstruction)
    # the arithmetic moves σ, μ and the picture in their last bits only
    assert abs(_psnr(img, exact.reconstruction) - _psnr(img, flt.reconstruction)) <= 0.05
    assert _psnr(exact.reconstruction, flt.reconstruction) >= 40.0
    assert abs(len(exact.data) - len(flt.data)) <= 0.02 * len(flt.data) + 8


@pytest.mark.parametrize("arch", EXACT_ARCHS)
def test_exact_networks_match_the_float_ones(coded, arch):
    """Layer by layer, the exact path computes the float networks' values within a few grid
    steps (2^−16): h_s, g_s with IGDN, GDN, mbt2018's context and entropy parameters, and z's and
    y's tables."""
    from lic_core.exact.fixed import to_grid
    from lic_core.models.compressai_compat.exact_layers import ExactGDN, ExactStack

    model = get_codec(f"x-{arch}").model(0)
    eng = get_codec(f"x-{arch}").engine(0)
    g = torch.Generator().manual_seed(3)
    step = eng.grid.step
    z = torch.round(torch.randn(1, model.N, 3, 4, generator=g) * 3) + \
        model.entropy_bottleneck.medians().reshape(1, -1, 1, 1)
    y = torch.round(torch.randn(1, model.M, 6, 8, generator=g) * 4)
    with torch.no_grad():
        assert (eng.hyper(z.double()) - model.h_s(z).double()).abs().max() < 1e-3
        x_e = eng.g_s(to_grid(y.double(), eng.grid)) * step
        assert (x_e - model.g_s(y).double()).abs().max() < 1e-3
        for gdn in (model.g_a[1], model.g_s[1]):  # GDN and IGDN
            a = torch.randn(1, model.N, 5, 7, generator=g) * 2
            out = ExactGDN(gdn, eng.grid)(to_grid(a.double(), eng.grid)) * step
            assert (out - gdn(a).double()).abs().max() < 1e-3
        if arch == "mbt2018":
            ctx_f = model.context_prediction(y)
            params = model.h_s(z)[..., :6, :8]
            gp_f = model.entropy_parameters(torch.cat([params, ctx_f], 1)).double()
            ctx_e = ExactStack.activate(eng.context(to_grid(y.double(), eng.grid)), None,
                                        eng.grid)
            gp_e = eng.entropy_parameters(torch.cat([to_grid(params.double(), eng.grid),
                                                     ctx_e], 1)) * step
            assert (gp_e - gp_f).abs().max() < 1e-3
    tf, te = model.entropy_bottleneck.tables(), eng.z.tables
    assert np.array_equal(tf.offsets, te.offsets) and np.array_equal(tf.lengths, te.lengths)
    assert np.abs(tf.pmfs - te.pmfs).max() < 1e-9
    gf, ge = model.gaussian_conditional.tables(), eng.y.tables
    assert np.array_equal(gf.offsets, ge.offsets) and np.array_equal(gf.lengths, ge.lengths)
    assert np.abs(gf.pmfs - ge.pmfs).max() < 1e-9
    # CompressAI's build_indexes, by comparisons
    s = torch.rand(1000, generator=g).double() * 300
    assert torch.equal(eng.y.index(s), model.gaussian_conditional.index(s.float()))


@pytest.mark.parametrize("arch", EXACT_ARCHS)
def test_decode_path_passes_the_guard(coded, arch):
    """Everything the decoder reproduces — tables, ẑ, h_s, context, σ → index, μ, ŷ, g_s and
    the picture — uses only exact sums, single IEEE operations and lookups."""
    from lic_core.codecs.compressai_codec import _SplitCoder
    from lic_core.entropy_coder.tables import TableDecoder
    from lic_core.exact.guard import ExactOpGuard
    from lic_core.models.compressai_compat.google_exact import exact_engine

    codec = get_codec(f"x-{arch}")
    header, sections = unpack((coded["root"] / "exact" / f"{arch}.lic").read_bytes())
    model = codec.model(0)
    model.__dict__.pop("_lic_exact_cache", None)
    coder = _SplitCoder(TableDecoder(sections[0]), TableDecoder(sections[1]))
    hw = (header.padded_height, header.padded_width)
    with torch.no_grad(), ExactOpGuard(strict=True) as guard:
        eng = exact_engine(model)  # built under the guard too: quantization, tables
        out = eng.code(coder, None, hw)
        pic = eng.picture(out.y_hat)
    assert guard.calls > 100 and not guard.violations
    assert coder.z.crcs + coder.y.crcs == list(header.symbol_crcs)
    assert pic.dtype == torch.uint8


def test_wavefronts_give_the_values_of_raster_order(coded):
    """mbt2018's positions batched along wavefronts get the σ, μ and ŷ that one position at a
    time in raster order gives (every position's context is complete; exact sums)."""
    from lic_core.codecs.compressai_codec import _SplitCoder
    from lic_core.entropy_coder.tables import TableEncoder
    from lic_core.models.compressai_compat.base import pad
    from lic_core.models.compressai_compat.google_exact import ExactJointAutoregressive

    eng = get_codec("x-mbt2018").engine(0)
    xp, _ = pad(coded["x"])
    hw = tuple(xp.shape[-2:])

    class Raster(ExactJointAutoregressive):
        def wavefronts(self, h, w):
            return [(torch.tensor([r]), torch.tensor([c])) for r in range(h) for c in range(w)]

    raster = Raster(eng.model, eng.cfg)
    with torch.no_grad():
        a = eng.code(_SplitCoder(TableEncoder(), TableEncoder()), xp, hw)
        b = raster.code(_SplitCoder(TableEncoder(), TableEncoder()), xp, hw)
    assert len(eng.wavefronts(*a.y_hat.shape[-2:])) < a.y_hat.shape[-2] * a.y_hat.shape[-1]
    for u, v in ((a.y_hat, b.y_hat), (a.means, b.means), (a.scales, b.scales)):
        assert torch.equal(u, v)


def test_a_disagreeing_decoder_or_tampered_file_ends_in_the_mismatch_message(coded):
    arch = "mbt2018-mean"
    codec = get_codec(f"x-{arch}")
    data = (coded["root"] / "exact" / f"{arch}.lic").read_bytes()
    model = codec.model(0)
    try:
        eng = codec.engine(0)
        last = eng.h_s.ops[-1][0]  # σ of every latent moves by a quarter
        last.bias[:eng.M] += 0.25 * eng.grid.scale
        last._taps = None  # the per-tap GEMM weights carry the bias: rebuild them
        with pytest.raises(LicMismatchError, match="different entropy parameters"):
            codec.decode(data)
        model.__dict__.pop("_lic_exact_cache", None)
        eng = codec.engine(0)
        eng.g_s.ops[-1][0].bias += 0.02 * eng.grid.scale  # another picture
        with pytest.raises(LicMismatchError, match="different 'mse' picture"):
            codec.decode(data)
    finally:
        model.__dict__.pop("_lic_exact_cache", None)
    header, sections = unpack(data)
    y = bytearray(sections[1])
    y[len(y) // 2] ^= 0x5A
    tampered = pack(header, [sections[0], bytes(y)])  # a valid container CRC
    with pytest.raises(LicMismatchError, match="intact"):
        codec.decode(tampered)
    assert np.array_equal(codec.decode(data).reconstruction,
                          coded["results"][(arch, "exact")].reconstruction)


def test_models_and_info_say_which_promise(coded, capsys):
    assert lic_main(["models"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split("  ", 1)[0]: b for b in out.split("\n\n")}
    for arch in EXACT_ARCHS:
        assert "identical picture on every machine" in blocks[f"x-{arch}"]
        assert "not guaranteed to decode on another machine" in blocks[f"x-{arch}:float"]
    assert lic_main(["info", str(coded["root"] / "exact" / "mbt2018.lic")]) == 0
    info = capsys.readouterr().out
    assert "compressai-exact:mbt2018" in info and "identical picture" in info
    assert "decoded by codec 'x-mbt2018'" in info
    assert lic_main(["info", str(coded["root"] / "float" / "mbt2018.lic")]) == 0
    info = capsys.readouterr().out
    assert "not guaranteed" in info and "decoded by codec 'x-mbt2018:float'" in info
    desc = get_codec("x-mbt2018").describe()
    assert desc["path"] == "exact" and desc["other_path"] == "x-mbt2018:float"
    assert "exact path" in desc["label"]


@pytest.mark.slow
def test_determinism_benchmark_takes_an_added_model(coded, tmp_path):
    """benchmarks/determinism.py --model NAME: encode in one process, decode in others."""
    from PIL import Image

    kodak = tmp_path / "kodak"
    kodak.mkdir()
    Image.fromarray(coded["img"]).save(kodak / "kodim01.png")
    out = tmp_path / "det.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "determinism.py"),
                        "--model", "x-mbt2018", "--kodak", str(kodak), "--limit", "1",
                        "--encode-threads", "1", "--decode-threads", "2",
                        "--decode-isa", "avx2", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=_env(coded["cfg"]))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["summary"]["files"] == 1 and res["summary"]["bit_exact_pct"] == 100.0
    assert res["summary"]["added_model"]["architecture"] == "mbt2018"
    assert set(res["rows"][0]["outcomes"]) == {"2", "avx2:2"}


def test_frozen_constants():
    """The frozen tail quantile is scipy's; the frozen default scale table is CompressAI's
    ``get_scale_table()`` as torch's vectorized kernels compute it; dmath's tanh is libm's
    within a few ulp."""
    from scipy.special import ndtri

    from lic_core.exact import dmath
    from lic_core.models.compressai_compat.entropy import default_scale_table
    from lic_core.models.compressai_compat.exact_entropy import TAIL_QUANTILE

    assert TAIL_QUANTILE[1e-9] == float(-ndtri(1e-9 / 2))
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        ref = torch.exp(torch.linspace(math.log(0.11), math.log(256), 64))
        assert torch.equal(default_scale_table(), ref)
    x = torch.linspace(-25, 25, 20001, dtype=torch.float64)
    rel = (dmath.tanh(x) - torch.tanh(x)).abs() / torch.tanh(x).abs().clamp_min(1e-300)
    assert float(rel.max()) < 1e-14
