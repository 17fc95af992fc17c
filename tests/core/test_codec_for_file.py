"""One rule picks the codec of a compressed file for ``lic decompress`` and the studio
(:func:`lic_core.codecs.codec_for_file`; the studio side: tests/studio/test_session_model.py)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lic_core.bitstream import pack, unpack
from lic_core.codecs import codec_for_file
from lic_core.errors import LicFormatError, ModelNotFoundError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "lic_v2" / "preview_round.lic"


def test_lic_header_names_the_codec(tmp_path):
    from lic_core.cli import main

    data = FIXTURE.read_bytes()
    assert codec_for_file(data, "renamed.bin").name == "lic-lgem-preview"  # magic, not the name
    assert codec_for_file(data).name == "lic-lgem-preview"
    # a header naming a codec this install does not have: refused, also by lic decompress
    header, sections = unpack(data)
    foreign = pack(dataclasses.replace(header, model="lic-lgem-xl"), sections)
    with pytest.raises(ModelNotFoundError, match="unknown codec 'lic-lgem-xl'"):
        codec_for_file(foreign, "f.lic")
    (tmp_path / "f.lic").write_bytes(foreign)
    assert main(["decompress", str(tmp_path / "f.lic"), str(tmp_path / "f.png"), "--quiet"]) == 2
    assert not (tmp_path / "f.png").exists()


def test_other_files_go_by_extension():
    assert codec_for_file(b"\xff\xd8\xff", "photo.jpg").name == "jpeg"
    with pytest.raises(LicFormatError, match="unknown format '.xyz'"):
        codec_for_file(b"abc", "thing.xyz")
    with pytest.raises(LicFormatError):
        codec_for_file(b"LIC1 but broken", "broken.lic")


def test_best_shipped_learned_codec_comes_first():
    """lic compress and the studio start with the best shipped learned codec: the product, then
    the CPU campaign's weights, then the frozen preview (not alphabetical order)."""
    from lic_core.codecs import PREFERRED_LEARNED, best_first

    assert PREFERRED_LEARNED[:3] == ("lic-lgem", "lic-lgem-cpu", "lic-lgem-preview")
    assert best_first(["jpeg", "lic-lgem-preview", "avif", "lic-lgem-cpu"]) == \
        ["lic-lgem-cpu", "lic-lgem-preview", "jpeg", "avif"]
