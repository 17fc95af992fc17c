"""Bring your own model (issue 32): CompressAI checkpoints added, coded and decoded like any codec.

Checkpoints are made with CompressAI itself (tests/compressai_checkpoints.py), saved as its
``examples/train.py`` saves them and as ``update_model`` saves them, added with ``lic models
add``, encoded in one process and decoded in another: the picture is the one CompressAI's own
``compress``/``decompress`` gives and the file is at most 5 % larger than CompressAI's strings.
These are the float path: for the three architectures with an exact path (issue 25,
tests/core/test_byom_exact.py) the codec ``NAME:float``, for the others ``NAME``.
"""
from __future__ import annotations

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

from compressai_checkpoints import TINY, compressai_picture, make_checkpoint  # noqa: E402
from lic_core.bitstream import layout  # noqa: E402
from lic_core.cli import main as lic_main  # noqa: E402
from lic_core.image import load_image  # noqa: E402
from lic_core.paths import sample_image_path  # noqa: E402

ARCHS = list(TINY)
#: architectures whose codec NAME is the exact path (the float path is NAME:float)
EXACT = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018")


def _float_codec(name: str, arch: str) -> str:
    return f"{name}:float" if arch in EXACT else name


#: bytes of a compressai .lic besides its two streams (header, check values, container CRC)
MAX_HEADER = 140  # ELIC: 11 symbol CRC32s (z, 5 groups × 2 passes)


def _env(cfg: Path) -> dict:
    env = dict(os.environ, LIC_CONFIG_DIR=str(cfg), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                         env.get("PYTHONPATH", "")])
    return env


def _lic_script(calls: list[list[str]]) -> str:
    """A Python program that runs several `lic` command lines in one process (fails on the first
    non-zero status)."""
    return ("import sys\nfrom lic_core.cli import main\n"
            f"for argv in {calls!r}:\n"
            "    rc = main(argv)\n"
            "    if rc: sys.exit(rc)\n")


def _run(calls: list[list[str]], cfg: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _lic_script(calls)], env=_env(cfg),
                          capture_output=True, text=True, timeout=600)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


@pytest.fixture(scope="module")
def photo() -> Path:
    """The bundled 768×432 photo (432 is not a multiple of 64: CompressAI's padding shows)."""
    return sample_image_path()


@pytest.fixture(scope="module")
def roundtrips(tmp_path_factory, photo):
    """Every architecture: two checkpoints (train.py-style and update_model-style) added as one
    model in one process, each rate point encoded in a second process and decoded in a third."""
    root = tmp_path_factory.mktemp("byom")
    cfg = root / "config"
    nets, adds, encs, decs = {}, [], [], []
    for arch in ARCHS:
        cks = [root / f"{arch}-train.pth.tar", root / f"{arch}-update.pth.tar"]
        nets[str(cks[0])] = make_checkpoint(arch, cks[0], "train", seed=0)
        nets[str(cks[1])] = make_checkpoint(arch, cks[1], "update", seed=1)
        adds.append(["models", "add", f"my-{arch}", f"compressai:{arch}", *map(str, cks)])
        for r in (1, 2):
            out = root / f"{arch}-{r}.lic"
            encs.append(["compress", str(photo), str(out), "--codec",
                         _float_codec(f"my-{arch}", arch),
                         "--rate", str(r), "--quiet"])
            decs.append(["decompress", str(out), str(root / f"{arch}-{r}.png"), "--quiet"])
    procs = [_run(calls, cfg) for calls in (adds, encs, decs)]
    registry = json.loads((cfg / "models.json").read_text()) if procs[0].returncode == 0 else {}
    return {"root": root, "cfg": cfg, "nets": nets, "procs": procs, "registry": registry}


@pytest.mark.slow
def test_add_encode_decode_processes_succeed(roundtrips):
    for p in roundtrips["procs"]:
        assert p.returncode == 0, p.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_picture_is_compressai_picture_and_file_is_small(roundtrips, photo, arch):
    """Separate processes: our decoded picture equals CompressAI's within 0.01 dB PSNR (it is in
    fact identical), our streams are at most 5 % larger than CompressAI's strings and the rest
    of the file is at most MAX_HEADER bytes (tiny test models spend only 1–100 KB on the photo;
    benchmarks/byom_exact.py measures whole files of trained models on Kodak)."""
    if any(p.returncode for p in roundtrips["procs"]):
        pytest.fail("the add/encode/decode processes failed (see the test above)")
    model = next(m for m in roundtrips["registry"]["models"] if m["name"] == f"my-{arch}")
    assert len(model["points"]) == 2
    assert model["points"][0]["bpp"] <= model["points"][1]["bpp"]  # rate points by bpp
    original = load_image(photo)
    x = torch.from_numpy(original).permute(2, 0, 1)[None].float() / 255
    for r, point in enumerate(model["points"], 1):
        net = roundtrips["nets"][point["path"]]
        ref, ref_bytes = compressai_picture(net, x)
        ours = load_image(roundtrips["root"] / f"{arch}-{r}.png")
        lic = (roundtrips["root"] / f"{arch}-{r}.lic").read_bytes()
        assert abs(_psnr(original, ours) - _psnr(original, ref.numpy())) <= 0.01
        # the coded streams against CompressAI's strings; the header (architecture, weights
        # hash, sizes, check values) is a fixed cost on top, < 1 % of a real photo's file
        lay = layout(lic)
        assert sum(lay.section_bytes) <= 1.05 * ref_bytes, (lay.section_bytes, ref_bytes)
        assert lay.header_bytes + lay.crc_bytes <= MAX_HEADER, lay


def _registry(cfg: Path) -> str:
    p = cfg / "models.json"
    return p.read_text() if p.exists() else ""


@pytest.fixture()
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("LIC_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def _lic(argv, capsys) -> tuple[int, str]:
    rc = lic_main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


class _NotATensor:
    """Anything a weights-only loader must refuse to unpickle."""

    def __init__(self) -> None:
        self.payload = 1


def test_five_kinds_of_bad_checkpoint_are_one_line_errors(tmp_path, cfg, capsys):
    good = tmp_path / "good.pth.tar"
    make_checkpoint("mbt2018-mean", good, "train")
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    not_ckpt = tmp_path / "numbers.pth"
    torch.save({"epoch": 3, "loss": 0.5, "note": "no weights here"}, not_ckpt)
    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict": _NotATensor()}, pickled)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.weight": torch.zeros(10, 8)}, other)
    cases = [
        (["models", "add", "m1", "compressai:mbt2018-mean", str(tmp_path / "missing.pth")],
         "not found"),
        (["models", "add", "m2", "compressai:mbt2018-mean", str(truncated)], "truncated"),
        (["models", "add", "m3", "compressai:auto", str(not_ckpt)], "not a CompressAI checkpoint"),
        (["models", "add", "m4", "compressai:mbt2018-mean", str(pickled)], "refused"),
        (["models", "add", "m5", "compressai:bmshj2018-factorized", str(good)],
         "bmshj2018-factorized"),
        (["models", "add", "m6", "compressai:auto", str(other)], "not a CompressAI image model"),
        # one good checkpoint and one bad: nothing of the model is recorded
        (["models", "add", "m7", "compressai:mbt2018-mean", str(good), str(truncated)],
         "truncated"),
    ]
    for argv, words in cases:
        rc, err = _lic(argv, capsys)
        assert rc == 2, (argv, err)
        assert len(err.splitlines()) == 1 and words in err, (argv, err)
        assert "Traceback" not in err
        assert _registry(cfg) == ""  # nothing half-registered
    rc, err = _lic(["models", "add", "fine", "compressai:auto", str(good)], capsys)
    assert rc == 0, err


def test_a_cancel_at_any_progress_call_records_nothing(tmp_path, cfg):
    """The studio cancels an add by raising from the progress callback: wherever that happens
    (the last call included), nothing is recorded — a cancelled add never shows up later."""
    from lic_core.codecs.user_models import add_model, remove_model
    from lic_core.errors import CancelledError

    ck = tmp_path / "c.pth.tar"
    make_checkpoint("bmshj2018-hyperprior", ck, "update")
    calls: list[float] = []
    add_model("count", "compressai:bmshj2018-hyperprior", [ck],
              progress=lambda f, m: calls.append(f))
    remove_model("count")
    assert calls and calls[-1] == 1.0
    for k in range(len(calls)):
        seen = []

        def progress(f, msg, k=k, seen=seen):
            seen.append(f)
            if len(seen) > k:
                raise CancelledError("cancelled")

        with pytest.raises(CancelledError):
            add_model(f"c{k}", "compressai:bmshj2018-hyperprior", [ck], progress=progress)
        assert f'"c{k}"' not in _registry(cfg), (k, _registry(cfg))


def test_auto_guesses_and_says_so(tmp_path, cfg, capsys):
    ck = tmp_path / "m.pth.tar"
    make_checkpoint("mbt2018", ck, "dataparallel")
    assert lic_main(["models", "add", "guess", "compressai:auto", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "guessed" in out and "mbt2018" in out
    assert lic_main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "guess" in listing and "compressai:mbt2018" in listing and str(ck) in listing
    assert "not guaranteed to decode on another machine" in listing
    assert lic_main(["models", "remove", "guess"]) == 0
    capsys.readouterr()
    assert lic_main(["models"]) == 0  # the listing after the removal (not an empty buffer)
    after = capsys.readouterr().out
    assert str(ck) not in after and "compressai:mbt2018" not in after


def test_decoding_needs_the_same_checkpoint(tmp_path, cfg, capsys, photo):
    """A file made by an added model: removed model → one line naming architecture and hash;
    checkpoint changed on disk → one line naming both hashes."""
    ck = tmp_path / "a.pth.tar"
    make_checkpoint("bmshj2018-hyperprior", ck, "update")
    assert lic_main(["models", "add", "hp", "compressai:bmshj2018-hyperprior", str(ck)]) == 0
    out = tmp_path / "x.lic"
    assert lic_main(["compress", str(photo), str(out), "--codec", "hp", "--rate", "1",
                     "--quiet"]) == 0
    capsys.readouterr()
    assert lic_main(["info", str(out)]) == 0
    # bmshj2018-hyperprior codes on the exact path (issue 25)
    assert "identical picture on every machine" in capsys.readouterr().out
    make_checkpoint("bmshj2018-hyperprior", ck, "update", seed=7)  # the file on disk changes
    rc, err = _lic(["decompress", str(out), str(tmp_path / "x.png")], capsys)
    assert rc == 2 and "changed since it was added" in err and len(err.splitlines()) == 1
    assert lic_main(["models", "remove", "hp"]) == 0
    capsys.readouterr()
    rc, err = _lic(["decompress", str(out), str(tmp_path / "y.png")], capsys)
    assert rc == 2 and "bmshj2018-hyperprior" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "y.png").exists()


@pytest.mark.slow
def test_inside_the_codec_and_target_bpp(tmp_path, cfg, photo):
    """ŷ, μ, σ, a bits map from the model's own likelihoods, and the z/y breakdown; a target bpp
    picks the checkpoint whose file is closest."""
    from lic_core.codecs import EncodeParams, get_codec
    from lic_core.codecs.registry import builtin_codecs
    from lic_core.codecs.user_models import add_model
    from lic_core.evaluation.target_bpp import encode_at_target_bpp

    cks = []
    for s in range(3):
        cks.append(tmp_path / f"q{s}.pth.tar")
        make_checkpoint("mbt2018-mean", cks[-1], "train", seed=s, steps=2 + 2 * s)
    add_model("three", "compressai:mbt2018-mean", cks, reserved=builtin_codecs())
    codec = get_codec("three")
    img = load_image(photo)
    res = [codec.encode(img, EncodeParams(rate=r)) for r in (1, 2, 3)]
    assert [r.bpp for r in res] == sorted(r.bpp for r in res)
    ins = res[0].inspection
    M = 24
    assert ins.y_hat.shape[0] == M and ins.means.shape == ins.y_hat.shape
    assert ins.scales.shape == ins.y_hat.shape and np.isfinite(ins.scales).all()
    assert ins.bits_y.shape == ins.y_hat.shape and (ins.bits_y >= 0).all()
    assert ins.z_bytes > 0 and ins.y_bytes > 0
    # 768×432 is padded centred to 768×448 (CompressAI's eval_model): the heatmap needs that
    assert ins.extras["padding"] == (0, 0, 8, 8)
    real = 8 * (ins.z_bytes + ins.y_bytes)
    assert abs(ins.estimated_bits - real) <= 0.1 * real + 64
    dec = codec.decode(res[0].data)
    assert dec.inspection.extras["padding"] == (0, 0, 8, 8)
    assert np.array_equal(dec.reconstruction, res[0].reconstruction)
    assert np.array_equal(dec.inspection.y_hat, ins.y_hat)
    best, _ = encode_at_target_bpp(codec, img, res[1].bpp * 1.01)
    assert best.params.rate == 2.0


def test_zoo_weights_come_from_the_torch_hub_cache_never_downloaded(tmp_path, cfg, capsys,
                                                                     monkeypatch):
    from lic_core.models.compressai_compat.checkpoint import zoo_file_names

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = zoo_file_names()["mbt2018-mean"]["mse"]["3"]
    rc, err = _lic(["models", "add", "zoo3", "compressai:mbt2018-mean", "--zoo-quality", "3"],
                   capsys)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert rc == 2 and name in err and str(folder) in err and len(err.splitlines()) == 1
    assert _registry(cfg) == ""
    folder.mkdir(parents=True)
    make_checkpoint("mbt2018-mean", folder / name, "update")  # stands in for the zoo file
    rc, err = _lic(["models", "add", "zoo3", "compressai:mbt2018-mean", "--zoo-quality", "3"],
                   capsys)
    assert rc == 0, err
    point = json.loads(_registry(cfg))["models"][0]["points"][0]
    assert point["zoo"] == "mse quality 3" and point["path"].endswith(name)
    rc, err = _lic(["models", "add", "zoo9", "compressai:mbt2018-mean", "--zoo-quality", "9"],
                   capsys)
    assert rc == 2 and "qualities 1, 2" in err


@pytest.mark.slow
def test_float_path_files_decode_the_same_with_any_thread_count_here(tmp_path, cfg, photo):
    """The float path cannot promise other machines, but on this one a file decodes to its
    encoder's picture whatever the thread setting (its networks run on one torch thread on both
    sides: float32 sums otherwise depend on how threads split them)."""
    names = {"cheng2020-anchor": "fl-cheng", "mbt2018-mean": "fl-mean"}
    calls = []
    for arch, name in names.items():
        ck = tmp_path / f"{arch}.pth.tar"
        make_checkpoint(arch, ck, "update")
        assert lic_main(["models", "add", name, f"compressai:{arch}", str(ck)]) == 0
        codec = name if arch == "cheng2020-anchor" else f"{name}:float"
        out = tmp_path / f"{name}.lic"
        torch.set_num_threads(2)  # the encoder's setting differs from every decoder's below
        assert lic_main(["compress", str(photo), str(out), "--codec", codec, "--rate", "1",
                         "--quiet"]) == 0
        torch.set_num_threads(1)
        for n in (1, 2, 4):
            calls.append(["--threads", str(n), "decompress", str(out),
                          str(tmp_path / f"{name}-{n}.png"), "--quiet"])
    p = subprocess.run([sys.executable, "-c", _lic_script(calls)], capture_output=True,
                       text=True, timeout=600,
                       env={**_env(cfg), "OMP_NUM_THREADS": "4"})
    assert p.returncode == 0, p.stderr[-2000:]
    for name in names.values():
        pics = [load_image(tmp_path / f"{name}-{n}.png") for n in (1, 2, 4)]
        assert all(np.array_equal(pics[0], q) for q in pics[1:])
