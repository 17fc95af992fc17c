"""Thread policy, weights provenance line and the small CLI fixes of issue 14 item 11.

``lic_core.threads`` is the one place that decides how many torch threads run; ``lic --threads``
and the studio's setting both go through it.  ``lic_core.weights.provenance_line`` turns whatever a
model card records into one human line (used by ``lic models``, the About card and the codec
chooser).
"""
from __future__ import annotations

import io
import os
import stat
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from lic_core.cli import main as lic_main
from lic_core.errors import LicError
from lic_core.threads import apply_threads, default_threads
from lic_core.weights import is_preview, provenance_line

# ---------------------------------------------------------------------------- threads

def test_default_threads_leaves_busy_cpus_alone():
    assert default_threads(cpus=2, load=1.0, env={}) == 1      # training job on a 2-core box
    assert default_threads(cpus=8, load=0.1, env={}) == 8      # idle laptop: all of them
    assert default_threads(cpus=8, load=5.2, env={}) == 3
    assert default_threads(cpus=4, load=40.0, env={}) == 1     # never below one
    assert default_threads(cpus=4, load=0.0, env={}) == 4      # never above the CPUs


def test_default_threads_honours_explicit_environment():
    assert default_threads(cpus=8, load=0.0, env={"LIC_THREADS": "3"}) == 3
    assert default_threads(cpus=8, load=0.0, env={"OMP_NUM_THREADS": "2"}) == 2
    assert default_threads(cpus=8, load=0.0, env={"LIC_THREADS": "5", "OMP_NUM_THREADS": "2"}) == 5
    assert default_threads(cpus=8, load=0.0, env={"LIC_THREADS": "zero"}) == 8  # ignored


def test_apply_threads_sets_torch_and_rejects_nonsense():
    import torch

    assert apply_threads(2) == 2 and torch.get_num_threads() == 2
    assert apply_threads(None) == torch.get_num_threads() >= 1
    with pytest.raises(LicError):
        apply_threads(-1)


def _tiny_png(tmp_path: Path) -> Path:
    from lic_core.image import save_png_atomic

    rng = np.random.default_rng(0)
    p = tmp_path / "tiny.png"
    save_png_atomic(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8), p)
    return p


def test_cli_threads_option_before_and_after_the_subcommand(tmp_path):
    import torch

    src = _tiny_png(tmp_path)
    assert lic_main(["--threads", "2", "compress", str(src), str(tmp_path / "a.jpg"),
                     "--codec", "jpeg", "--quiet"]) == 0
    assert torch.get_num_threads() == 2
    assert lic_main(["compress", str(src), str(tmp_path / "b.jpg"), "--codec", "jpeg",
                     "--quiet", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    assert lic_main(["--threads", "-3", "info", str(tmp_path / "a.jpg")]) == 2


def test_the_lic_process_reuses_freed_memory_a_caller_of_main_keeps_its_policy(tmp_path,
                                                                             monkeypatch):
    """`lic compress|decompress` itself (main() reading sys.argv) asks glibc to keep freed blocks
    for reuse (lic_core.memory.reuse_freed_memory, issue 28 item 2); a program calling main(argv)
    — these tests, a benchmark — keeps its own allocator policy."""
    import platform
    import subprocess
    import sys

    import lic_core.memory as memory

    calls = []
    monkeypatch.setattr(memory, "reuse_freed_memory", lambda *a: calls.append(a) or True)
    src = _tiny_png(tmp_path)
    assert lic_main(["compress", str(src), str(tmp_path / "a.jpg"), "--codec", "jpeg",
                     "--quiet"]) == 0
    assert not calls
    monkeypatch.setattr(sys, "argv", ["lic", "compress", str(src), str(tmp_path / "b.jpg"),
                                      "--codec", "jpeg", "--quiet"])
    assert lic_main() == 0
    assert len(calls) == 1
    if platform.libc_ver()[0] == "glibc":  # applied, in a child (this process keeps its policy)
        out = subprocess.run([sys.executable, "-c", "from lic_core.memory import "
                              "reuse_freed_memory as r; print(r())"], capture_output=True, text=True)
        assert out.stdout.strip() == "True", out.stderr


# ---------------------------------------------------------------------------- provenance

CARD = {"preview": True, "status": "PREVIEW — briefly trained", "parameters": 2_891_167,
        "steps": 1490, "total_steps": 3102, "cpu_hours": 1.38, "device": "CPU, 2 threads",
        "bd_rate": {"jpeg": 5.31, "webp": 243.4, "avif": 409.0},
        "eval": {"points": [{"u": 0.0, "bpp": 0.18, "psnr": 25.1},
                            {"u": 1.0, "bpp": 0.62, "psnr": 26.5}]}}


def test_provenance_line_uses_every_recorded_key():
    line = provenance_line({"card": CARD})  # load_weights' meta shape
    assert line == ("PREVIEW · 2.9 M params · 3102 steps on CPU (1.4 h) · "
                    "Kodak BD-rate vs JPEG +5.3 %, WebP +243 %, AVIF +409 %")
    assert provenance_line(CARD) == line  # a card (or describe()) directly
    other = dict(CARD, bd_rate={"webp": -12.25}, total_steps=500_000, cpu_hours=None,
                 gpu_hours=30.0, preview=False, status="trained")
    assert provenance_line(other) == ("trained · 2.9 M params · 500000 steps on GPU (30.0 h) · "
                                      "Kodak BD-rate vs WebP -12 %")


def test_provenance_line_falls_back_on_what_exists():
    old = {k: v for k, v in CARD.items() if k not in ("total_steps", "cpu_hours", "bd_rate")}
    old["wall_time_s"] = 2277.0
    line = provenance_line(old)
    assert line == ("PREVIEW · 2.9 M params · 1490 steps on CPU (38 min) · "
                    "Kodak 0.18–0.62 bpp at 25.1–26.5 dB")
    assert provenance_line({"label": "N=64 narrow variant"}) == "N=64 narrow variant"
    # a generative card (HiFiC): its Kodak range is its own decoder's row, not the MSE reference
    gen = {"preview": False, "total_steps": 10, "cpu_hours": 3.3,
           "eval": {"rows": {"lic-lgem-cpu MSE decoder": [{"bpp": 0.19, "psnr": 28.0}],
                             "hific-small (GAN decoder)": [{"bpp": 0.12, "psnr": 22.0},
                                                           {"bpp": 0.6, "psnr": 25.0}]}}}
    assert provenance_line(gen) == ("trained · 10 steps on CPU (3.3 h) · "
                                    "Kodak 0.12–0.60 bpp at 22.0–25.0 dB")
    assert provenance_line({}) == "provenance not recorded"
    assert is_preview({"status": "PREVIEW — x"}) and not is_preview({"preview": False})


def test_weights_provenance_is_the_one_description_of_cli_and_studio():
    """``weights_provenance`` says preview / trained / not stated, in the words both ``lic
    models`` and the studio's About card print; a preview wins over "trained briefly"."""
    from lic_core.cli.cmd_models import describe_block
    from lic_core.weights import PROVENANCE_WORDS, weights_provenance

    prev = weights_provenance({"card": CARD})
    assert prev.status == "preview" and prev.preview and prev.line == provenance_line(CARD)
    assert prev.words == PROVENANCE_WORDS["preview"] and "NOT representative" in prev.words
    said = weights_provenance({"provenance": "PREVIEW — trained briefly on CPU"})
    assert said.status == "preview"  # the describe() words count, and a preview wins
    trained = weights_provenance(dict(CARD, preview=False, status="trained"))
    assert trained.status == "trained" and not trained.preview
    assert weights_provenance({"provenance": "trained"}).status == "trained"
    unknown = weights_provenance({"label": "N=64 narrow variant"})
    assert unknown.status == "" and "not stated" in unknown.words
    # `lic models` prints exactly these: the weights line and, for a preview, the words
    row = {"name": "x", "family": "learned", "available": True, "reason": "",
           "describe": dict(CARD)}
    block = "\n".join(describe_block(row))
    assert prev.line in block and prev.words in block
    row["describe"] = dict(CARD, preview=False, status="trained")
    assert PROVENANCE_WORDS["preview"] not in "\n".join(describe_block(row))


def test_lic_models_prints_readable_blocks_not_dicts():
    out = io.StringIO()
    with redirect_stdout(out):
        assert lic_main(["models"]) == 0
    text = out.getvalue()
    assert "{'" not in text and "[{" not in text  # no raw Python dict dumps
    from lic_core.codecs import get_codec, list_codecs

    for name in list_codecs():
        c = get_codec(name)
        if c.family == "learned" and c.available()[0]:
            assert provenance_line(c.describe()) in text
    out = io.StringIO()
    with redirect_stdout(out):
        assert lic_main(["models", "--json"]) == 0
    import json

    assert {r["name"] for r in json.loads(out.getvalue())} == set(list_codecs())


# ---------------------------------------------------------------------------- small CLI fixes

def test_decompress_of_an_image_says_not_a_lic_file(tmp_path, capsys):
    src = _tiny_png(tmp_path)
    before = src.read_bytes()
    assert lic_main(["decompress", str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a .lic file" in err and "already exists" not in err and "\n" not in err
    assert src.read_bytes() == before


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_saved_files_follow_the_umask(tmp_path, mask):
    from lic_core.fileio import write_atomic_via_path, write_bytes_atomic

    old = os.umask(mask)
    try:
        p = write_bytes_atomic(tmp_path / f"x{mask:o}.lic", b"LIC1data")
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
        src = _tiny_png(tmp_path)
        assert lic_main(["compress", str(src), str(tmp_path / f"y{mask:o}.jpg"), "--codec",
                         "jpeg", "--quiet"]) == 0
        assert stat.S_IMODE((tmp_path / f"y{mask:o}.jpg").stat().st_mode) == 0o666 & ~mask
        # writers that need a file name (safetensors, plot exporters) follow the same rule
        q = write_atomic_via_path(tmp_path / f"z{mask:o}.bin", lambda t: t.write_bytes(b"z"))
        assert stat.S_IMODE(q.stat().st_mode) == 0o666 & ~mask and q.read_bytes() == b"z"
        assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temp left
    finally:
        os.umask(old)


def test_plot_draws_published_references_by_default(tmp_path, capsys):
    import json

    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"name": "mine", "results": {"bpp": [0.2, 0.5, 1.0],
                                                          "psnr-rgb": [28.0, 31.0, 34.0]}}))
    assert lic_main(["plot", str(f), "-o", str(tmp_path / "a.png")]) == 0
    n_default = int(capsys.readouterr().out.split("(")[1].split()[0])
    assert lic_main(["plot", str(f), "--anchors", "none", "-o", str(tmp_path / "b.png")]) == 0
    assert "(1 curves)" in capsys.readouterr().out
    assert n_default > 1
