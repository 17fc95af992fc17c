"""More rate levels for a trained codec (lic_core.train.levels): old levels kept bit for bit, new
ones on the log–log line, and the extended checkpoint trains on (issue 27 item 1)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from lic_core.errors import LicError
from lic_core.models import build_model
from lic_core.train import levels

OLD = (0.0035, 0.013, 0.0483)
NEW = (0.0009, 0.0018, 0.0035, 0.0067, 0.013, 0.0483, 0.0932, 0.18)


def test_old_rows_are_copied_and_an_affine_log_log_table_is_continued_exactly():
    torch.manual_seed(0)
    a, b = torch.rand(5) - 0.5, torch.rand(5) + 0.2   # per channel: log g = a + b·log λ
    table = torch.stack([(a + b * math.log(v)).exp() for v in OLD])
    table[1] *= -1  # tables are used through |·|: the sign must not leak into new rows
    out = levels.extend_table(table, OLD, NEW)
    assert out.shape == (len(NEW), 5)
    for i, lam in enumerate(NEW):
        if lam in OLD:
            assert torch.equal(out[i], table[OLD.index(lam)])        # bit for bit
        else:
            want = (a + b * math.log(lam)).exp()
            assert torch.allclose(out[i], want, rtol=1e-5), lam     # inter- and extrapolated


def test_bad_lists_are_refused():
    t = torch.ones(3, 2)
    with pytest.raises(LicError, match="increasing"):
        levels.extend_table(t, OLD, (0.01, 0.005))
    with pytest.raises(LicError, match="levels"):
        levels.extend_table(torch.ones(4, 2), OLD, NEW)
    with pytest.raises(LicError, match="gain-unit"):
        levels.extend_state({"x": t}, OLD, NEW)


def test_extended_checkpoint_loads_into_the_new_config_and_keeps_old_levels():
    torch.manual_seed(1)
    model = build_model("lic-lgem-tiny", lambdas=OLD)
    with torch.no_grad():
        for k in levels.GAIN_KEYS:  # trained-looking tables: distinct per level and channel
            p = model.get_parameter(k)
            p.copy_(torch.rand_like(p) + 0.5)
    cfg = {k: getattr(model.config, k) for k in ("name", "lambdas")}
    ck = {"model": model.state_dict(), "ema": {"decay": 0.9, "shadow": model.state_dict()},
          "optimizer": {"state": {}}, "config": cfg, "train": {"lambdas": list(OLD)}, "step": 7}
    ext = levels.extend_checkpoint(ck, NEW)
    assert "optimizer" not in ext and ext["config"]["lambdas"] == NEW
    assert ext["train"]["lambdas"] == list(NEW) and ext["levels_extended"]["step"] == 7
    new = build_model("lic-lgem-tiny", lambdas=NEW)
    new.load_state_dict(ext["model"])                                  # shapes fit (strict)
    new.load_state_dict(ext["ema"]["shadow"])
    for i, lam in enumerate(OLD):  # an old level's slider value → the same gains as before
        u_old = torch.tensor([i / (len(OLD) - 1)], dtype=torch.float64)
        u_new = torch.tensor([NEW.index(lam) / (len(NEW) - 1)], dtype=torch.float64)
        g_old, g_new = model.gains(u_old), new.gains(u_new)
        for key in g_old:  # (u·(n−1) lands on the level up to rounding of u itself)
            assert torch.allclose(g_old[key], g_new[key], rtol=1e-5), (lam, key)


def test_a_trained_tiny_run_continues_with_more_levels(tmp_path):
    """extend → ``lic train codec --init <extended> --continue-schedule``: the run trains every
    new level, its checkpoint records the new λ, and the old levels started from their rows."""
    from lic_core.train import loop
    from lic_core.train.checkpoint import load_checkpoint
    from tests.core.test_train_loop import cfg_for, quiet

    first = loop.train(cfg_for(tmp_path, "first", model="lic-lgem-tiny", steps=2), log=quiet)
    ck = load_checkpoint(first["checkpoint"])
    lams = tuple(ck["config"]["lambdas"])
    new = (lams[0] / 2, *lams, lams[-1] * 2)
    args = [first["checkpoint"], str(tmp_path / "ext.pt"), "--lambdas", *map(repr, new)]
    assert levels.main(args) == 0
    assert levels.main(args) == 2                                      # never overwrites unasked
    cont = loop.train(cfg_for(tmp_path, "cont", model="lic-lgem-tiny", steps=4,
                              init=str(tmp_path / "ext.pt"), continue_schedule=True), log=quiet)
    ck2 = load_checkpoint(cont["checkpoint"])
    assert ck2["step"] == 4 and tuple(ck2["config"]["lambdas"]) == new
    assert ck2["train"]["lambdas"] == list(new)
    assert ck2["model"]["gains.gain.weight"].shape[0] == len(new)
    assert ck2["cpu_s"] > ck["cpu_s"] > 0                   # the lineage's CPU time carries on
    # weights only (no --continue-schedule): whoever starts the run books the earlier CPU time
    big = torch.load(tmp_path / "ext.pt", weights_only=False)
    torch.save({**big, "cpu_s": 1e6}, tmp_path / "ext_big.pt")
    plain = loop.train(cfg_for(tmp_path, "plain", model="lic-lgem-tiny", steps=1,
                               init=str(tmp_path / "ext_big.pt")), log=quiet)
    assert load_checkpoint(plain["checkpoint"])["cpu_s"] < 1e5
    recs = [json.loads(ln) for ln in (tmp_path / "cont" / "log.jsonl").read_text().splitlines()]
    start = next(r for r in recs if r["type"] == "start")
    assert start["lambdas"] == list(new) and start["step"] == 2         # schedule continued


def test_an_export_with_more_levels_is_an_init_of_its_own_architecture(tmp_path):
    """Exports and campaign seeds carry their config: ``--init`` from one builds its levels
    (the registry's config has fewer), so a lost runs/ folder continues the extended lineage."""
    from lic_core.train import loop
    from lic_core.train.checkpoint import load_checkpoint
    from lic_core.weights import save_weights
    from tests.core.test_train_loop import cfg_for, quiet

    base = build_model("lic-lgem-tiny")
    lams = tuple(base.config.lambdas)
    new = (lams[0] / 2, *lams, lams[-1] * 2)
    wider = build_model("lic-lgem-tiny", lambdas=new)
    save_weights(wider, tmp_path / "seed.safetensors", {"steps": 5, "cpu_hours": 0.01})
    run = loop.train(cfg_for(tmp_path, "from-seed", model="lic-lgem-tiny", steps=1,
                             init=str(tmp_path / "seed.safetensors")), log=quiet)
    ck = load_checkpoint(run["checkpoint"])
    assert tuple(ck["config"]["lambdas"]) == new
    assert ck["model"]["gains.gain.weight"].shape[0] == len(new)
