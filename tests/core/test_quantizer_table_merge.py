"""benchmarks/quantizer_table.py: fine-tuning export cards merge into issue 16's Kodak table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_benchmark

US = [0.0, 0.5, 1.0]
IMAGES = ["a.png", "b.png"]


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("quantizer_table")


def _curve(scale: float, db: float = 0.0) -> dict:
    return {"u": US, "bpp": [0.2 * scale, 0.4 * scale, 0.8 * scale],
            "psnr": [28.0 + db, 30.0 + db, 32.0 + db], "encode_s": [1.0, 1.0, 1.0]}


def _card(tmp: Path, q: str, curves: dict, base: str = "ab" * 8, images=IMAGES) -> Path:
    card = {"base_model": "toy", "base_weights_hash": base, "quantizer": q,
            "quantizer_params": {"c": 0.03} if q != "round" else {}, "total_steps": 123,
            "cpu_hours": 0.5, "exported": "2026-01-01T00:00:00Z", "status": "helps",
            "eval": {"us": US, "images": images, "curves": curves,
                     "bd_vs_own_base_decoder_percent": -3.0}}
    p = tmp / f"toy-ft-{q}.json"
    p.write_text(json.dumps(card))
    return p


def test_cards_merge_into_one_table_with_bd_rates_and_sources(tmp_path, bench):
    table = tmp_path / "table.json"
    rnd = _card(tmp_path, "round", {"round/before": _curve(1.0), "round/after": _curve(0.9)})
    rdoq = _card(tmp_path, "rdoq", {"rdoq/before": _curve(1.05), "rdoq/after": _curve(0.95),
                                    # a re-measured rounding curve that must not replace the first
                                    "round/before": _curve(2.0)})
    assert bench.main([str(rnd), str(rdoq), "--table", str(table)]) == 0
    t = json.loads(table.read_text())
    bd = t["bd_vs_round_percent"]
    assert bd["round/before"] == pytest.approx(0.0, abs=1e-9)
    assert bd["round/after"] == pytest.approx(-10.0, abs=1e-6)  # 10 % fewer bits at equal PSNR
    assert bd["rdoq/before"] == pytest.approx(5.0, abs=1e-6)
    assert bd["rdoq/after"] == pytest.approx(-5.0, abs=1e-6)
    fair = t["bd_vs_round_after_percent"]  # against rounding with its own tuned decoder
    assert fair["round/after"] == pytest.approx(0.0, abs=1e-9)
    assert fair["rdoq/after"] == pytest.approx(100 * (0.95 / 0.9 - 1), abs=1e-6)
    assert set(t["finetuned"]) == {"round", "rdoq"} and t["finetuned"]["rdoq"]["steps"] == 123
    assert any("finetune-rdoq" in v for v in t["sources"].values())
    assert t["quantizer_params"]["rdoq"] == {"c": 0.03}


def test_a_card_of_other_weights_or_images_is_refused_and_the_table_kept(tmp_path, bench, capsys):
    table = tmp_path / "table.json"
    rnd = _card(tmp_path, "round", {"round/before": _curve(1.0), "round/after": _curve(0.9)})
    assert bench.main([str(rnd), "--table", str(table)]) == 0
    before = table.read_bytes()
    other = _card(tmp_path, "rdoq", {"rdoq/before": _curve(1.0)}, base="cd" * 8)
    assert bench.main([str(other), "--table", str(table)]) == 2
    assert "base_weights_hash" in capsys.readouterr().err
    fewer = _card(tmp_path, "tcq", {"tcq/before": _curve(1.0)}, images=IMAGES[:1])
    assert bench.main([str(fewer), "--table", str(table)]) == 2
    assert table.read_bytes() == before
    for bad in ("{}", "[1, 2]", "not json", '{"quantizer": "rdoq", "eval": {"curves": {}}}'):
        not_a_card = tmp_path / "x.json"
        not_a_card.write_text(bad)
        assert bench.main([str(not_a_card), "--table", str(table)]) == 2
        assert "error:" in capsys.readouterr().err
    assert table.read_bytes() == before
    # a table file that is not a quantizer table is named in the error and left alone
    junk = tmp_path / "junk.json"
    junk.write_text('{"weights_hash": "x"}')
    assert bench.main([str(rnd), "--table", str(junk)]) == 2
    assert "junk.json" in capsys.readouterr().err and junk.read_text() == '{"weights_hash": "x"}'


def test_a_round_card_keeps_the_tables_reference_and_sources_move_with_their_rows(tmp_path, bench):
    table = tmp_path / "table.json"
    first = _card(tmp_path, "rdoq", {"rdoq/before": _curve(1.05), "round/before": _curve(1.0)})
    assert bench.main([str(first), "--table", str(table)]) == 0
    assert set(json.loads(table.read_text())["sources"]) == {"rdoq/before, round/before"}
    # a round card re-measures round/before (here: differently): the table keeps its own
    rnd = _card(tmp_path, "round", {"round/before": _curve(2.0), "round/after": _curve(0.9)})
    assert bench.main([str(rnd), "--table", str(table)]) == 0
    t = json.loads(table.read_text())
    assert t["curves"]["round/before"] == _curve(1.0)
    assert t["bd_vs_round_percent"]["round/after"] == pytest.approx(-10.0, abs=1e-6)
    # a newer rdoq card takes the credit for the rdoq row from the first source
    again = _card(tmp_path, "rdoq", {"rdoq/before": _curve(1.05), "rdoq/after": _curve(1.0)})
    assert bench.main([str(again), "--table", str(table)]) == 0
    src = json.loads(table.read_text())["sources"]
    assert set(src) == {"round/before", "round/after", "rdoq/after, rdoq/before"}, src
