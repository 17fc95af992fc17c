"""The release train (issue 27 item 3), its parts without training: which dependents a release
re-derives and what it refuses, one campaign job at a time beside it, the warm starts, and the
install — all or nothing, nothing in the shipped folder changed before it, the outgoing weights
frozen so their files keep decoding, within the folder's budget."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from campaign import release_install
from campaign.base import CampaignError
from campaign.codec import eval_image_names
from campaign.release import BUDGETS, ORDER, ReleaseTrain, shipped_plan, stage_recipe
from campaign.stages import open_stage
from campaign.warmstart import choose, decoder_tensors, previous_decoder, transplant
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.decoder.finetuned import finetuned_base_hash
from lic_core.models import load_model
from lic_core.quantizer.tcq_designed import read_table_file
from lic_core.weights import read_weights_hash, weights_hash
from synthetic_photos import striped_photos
from test_release_frozen import TINY, ship_dependents, ship_tiny


def write_export(root: Path, seed: int, bpp_scale: float = 1.0) -> Path:
    """A codec export of tiny weights in ``root/export`` with a card (Kodak points) and RD JSON."""
    out = root / "export"
    out.mkdir(parents=True, exist_ok=True)
    ship_tiny(out, seed)
    card = {"total_steps": 10, "cpu_hours": 0.5, "eval": {"images": ["a.png", "b.png"], "points": [
        {"u": u, "bpp": b * bpp_scale, "psnr": p} for u, b, p in
        ((0.0, 0.2, 25.0), (0.5, 0.35, 27.0), (1.0, 0.5, 28.5))]}}
    (out / f"{TINY}.json").write_text(json.dumps(card))
    (out / f"{TINY}.rd.json").write_text(json.dumps({"name": TINY}))
    return out / f"{TINY}.safetensors"


def tree(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.fixture()
def wdir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(d))
    ship_tiny(d, 0)
    return d


def test_a_release_plans_the_shipped_dependents_and_refuses_what_it_must(tmp_path, wdir):
    ship_dependents(wdir, 0)
    (wdir / f"{TINY}-diffusion.safetensors").write_bytes(b"")
    # the diffusion decoder is staged before the GAN decoder, whose card states its CPU budget
    # against the staged diffusion card's
    assert shipped_plan(wdir, TINY) == ["tcq-tables", "finetune-tcq", "diffusion", "gan"]
    assert shipped_plan(wdir, TINY, add=["finetune-deadzone"], skip=["gan"]) == [
        "tcq-tables", "finetune-deadzone", "finetune-tcq", "diffusion"]
    with pytest.raises(CampaignError, match="unknown dependent stage"):
        shipped_plan(wdir, TINY, add=["codec"])
    # the defaults keep a release of today's shipped dependents within 2 CPU-hours (the TCQ
    # tables' design is ≈ 6 CPU-minutes, not capped)
    shipped = ("finetune-round", "finetune-rdoq", "finetune-tcq", "gan", "diffusion")
    assert sum(BUDGETS[s] for s in shipped) + 6 <= 120 and set(BUDGETS) == set(ORDER)
    gan = stage_recipe("gan", TINY, warm=True)
    assert gan[gan.index("--gan-start") + 1] == "250" and "250" not in stage_recipe("gan", TINY)
    assert stage_recipe("finetune-tcq", "x")[:2] == ["--model", "x"]

    root = tmp_path / "campaign"
    train = ReleaseTrain(root)
    with pytest.raises(CampaignError, match="no codec export"):
        train.new_release(None, False, (), (), TINY, wdir, tmp_path / "results")
    # an export that does not beat the shipped card by 2 % (BD-rate) is refused
    write_export(root, 1)
    shipped_card = json.loads((root / "export" / f"{TINY}.json").read_text())
    for p in shipped_card["eval"]["points"]:
        p["bpp"] *= 0.9  # the shipped weights need 10 % fewer bits
    (wdir / f"{TINY}.json").write_text(json.dumps(shipped_card))
    with pytest.raises(CampaignError, match="did not earn its install.*--force"):
        train.new_release(None, False, (), (), TINY, wdir, tmp_path / "results")
    st = train.new_release(None, True, (), ("gan",), TINY, wdir, tmp_path / "results")
    assert st["export"]["forced"] and st["export"]["gain_vs_shipped_pct"] < -5
    assert [it["stage"] for it in st["plan"]] == ["tcq-tables", "finetune-tcq", "diffusion"]
    assert st["outgoing"]["weights_hash"] == read_weights_hash(wdir / f"{TINY}.safetensors")
    assert train.state()["phase"] == "new" and "phase new" in train.status()
    # the export is what ships already
    with pytest.raises(CampaignError, match="is the shipped"):
        train.new_release(str(wdir / f"{TINY}.safetensors"), True, (), (), TINY, wdir, None)
    with pytest.raises(CampaignError, match="no stage gan"):
        train.set_budgets(st, {"gan": 5})
    with pytest.raises(CampaignError, match="no CPU budget"):
        train.set_budgets(st, {"tcq-tables": 5})
    # a stage of the release still training (its driver gone) keeps its folder from an abort
    ft = _sleeper("lic_core.train", str(train.run_dir / "finetune-tcq"))
    try:
        train.run_dir.mkdir(exist_ok=True)
        (train.run_dir / "finetune-tcq.pid").write_text(f"{ft.pid}\n")
        t0 = time.monotonic()
        while open_stage("finetune-tcq", train.run_dir).pid() is None and \
                time.monotonic() - t0 < 10:
            time.sleep(0.05)
        with pytest.raises(CampaignError, match="finetune-tcq stage is running"):
            train.abort()
    finally:
        ft.kill()
        ft.wait()
    assert "discarded" in train.abort() and not train.state()
    # a bad budget is refused before a new release is saved
    with pytest.raises(CampaignError, match="no stage gan"):
        train.new_release(None, True, (), ("gan",), TINY, wdir, None, {"gan": 5})
    assert not train.state()

    # the codec stage's own `export --install` sends a replacement through the release train
    from campaign.codec import CodecStage

    s = CodecStage(root).release({"name": TINY, "earned": True, "files": str(root / "export"),
                                  "why_not_earned": ""}, wdir)
    assert not s["installed"] and "release start" in s["why_not"] and "gan" in s["why_not"]

    # the old way (--force-install) leaves nothing stale either: a diffusion decoder conditioned
    # on other weights goes with the tuned decoders
    from safetensors.torch import save_file

    from campaign.finetune import retire_finetuned

    save_file({"w": torch.zeros(1)}, str(wdir / f"{TINY}-diffusion.safetensors"),
              metadata={"card": json.dumps({"codec_weights_hash": "00" * 8})})
    ship_tiny(wdir, 2)
    assert retire_finetuned(wdir, TINY) == ["tcq", "gan", "diffusion", "tcq rate tables"]
    assert not (wdir / f"{TINY}-diffusion.safetensors").exists()


def _sleeper(*marks: str) -> subprocess.Popen:
    """A process whose command line names ``marks`` (what the campaign's pid check reads)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *marks])


def test_a_release_reads_an_export_card_that_records_only_its_image_count(tmp_path, wdir):
    """Real exports record ``eval.images`` as a count beside the Kodak folder (the release of
    2026-12-07 stopped on it): the names are read back from the folder, and a count that does
    not match the folder reads as no names rather than the wrong ones."""
    kodak = striped_photos(tmp_path / "kodak", n=2, size=32)
    root = tmp_path / "campaign"
    write_export(root, 1, bpp_scale=0.5)
    card_file = root / "export" / f"{TINY}.json"
    card = json.loads(card_file.read_text())
    card["eval"].update(images=2, folder=str(kodak))
    card_file.write_text(json.dumps(card))
    assert eval_image_names(card) == ["img0.png", "img1.png"]
    assert eval_image_names({"eval": {"images": 3, "folder": str(kodak)}}) == []
    assert eval_image_names({"eval": {"images": ["x.png"]}}) == ["x.png"]
    shipped = dict(card, eval=dict(card["eval"], points=[
        dict(p, bpp=p["bpp"] * 2) for p in card["eval"]["points"]]))
    (wdir / f"{TINY}.json").write_text(json.dumps(shipped))
    st = ReleaseTrain(root).new_release(None, False, (), (), TINY, wdir, tmp_path / "results")
    assert st["export"]["images"] == 2 and st["export"]["gain_vs_shipped_pct"] > 40


def test_one_campaign_job_at_a_time_beside_a_release(tmp_path):
    root = tmp_path / "campaign"
    root.mkdir()
    train = ReleaseTrain(root)
    procs = [_sleeper("campaign.release", str(train.run_dir))]
    try:
        train.pid_file.write_text(f"{procs[0].pid}\n")
        t0 = time.monotonic()
        while train.pid() is None and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        assert train.pid() == procs[0].pid
        with pytest.raises(CampaignError, match=r"release stage is running.*release stop"):
            open_stage("finetune-tcq", root).start(data=str(tmp_path), nice=5)
        assert "already running" in train.start()
        procs[0].kill()
        procs[0].wait()
        # a release's stage whose driver is gone still counts as the release
        (train.run_dir).mkdir()
        procs.append(_sleeper("lic_core.train", str(train.run_dir / "gan")))
        (train.run_dir / "gan.pid").write_text(f"{procs[-1].pid}\n")
        t0 = time.monotonic()
        while open_stage("gan", train.run_dir).pid() is None and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        with pytest.raises(CampaignError, match=r"release stage is running"):
            open_stage("codec", root).start(data=str(tmp_path), nice=5)
        procs.append(_sleeper("lic_core.train", str(root / "gan")))
        (root / "gan.pid").write_text(f"{procs[-1].pid}\n")
        t0 = time.monotonic()
        while open_stage("gan", root).pid() is None and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        with pytest.raises(CampaignError, match="the gan stage is running"):
            train.start()
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_warm_starts_transplant_the_tuning_and_probe_it(tmp_path, wdir):
    ship_dependents(wdir, 0, quantizers=("tcq",))
    out = tmp_path / "outgoing"
    out.mkdir()
    for f in wdir.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    staging = tmp_path / "staging"
    staging.mkdir()
    ship_tiny(staging, 1)
    assert previous_decoder("finetune-tcq", TINY, out) == out / f"{TINY}-ft-tcq.safetensors"
    assert previous_decoder("finetune-round", TINY, out) is None
    assert previous_decoder("gan", TINY, staging) is None  # none for the new weights

    t = transplant(out / f"{TINY}.safetensors", out / f"{TINY}-ft-tcq.safetensors",
                   staging / f"{TINY}.safetensors", tmp_path / "t.safetensors")
    ob, od, nb = (decoder_tensors(p) for p in (out / f"{TINY}.safetensors",
                                               out / f"{TINY}-ft-tcq.safetensors",
                                               staging / f"{TINY}.safetensors"))
    tt = decoder_tensors(t)
    assert set(tt) == set(nb) and all(torch.equal(tt[k], nb[k] + (od[k] - ob[k])) for k in nb)
    assert read_weights_hash(t) == weights_hash(tt).hex()  # it names itself, and its base
    assert finetuned_base_hash(t) == read_weights_hash(staging / f"{TINY}.safetensors")

    photos = striped_photos(tmp_path / "photos", n=2, size=64)
    from campaign.warmstart import probe_crops

    ws = choose("finetune-tcq", TINY, out, staging, tmp_path / "init",
                lambda: probe_crops([str(photos)], 2, 64), log=lambda s: None)
    assert ws["from"] in ("base", "transplant") and set(ws["probe"]) == {"metric", "base",
                                                                         "transplant"}
    assert ws["probe"]["metric"] == "psnr" and (ws["file"] is None) == (ws["from"] == "base")
    assert choose("finetune-round", TINY, out, staging, tmp_path / "init", list)["from"] == "base"


def test_a_transplant_across_more_rate_levels_keeps_the_g_s_tuning_and_the_new_g_prime(
        tmp_path, wdir):
    """The first real release (2026-12-07) went from 6 to 11 rate levels: the old tuning's G'
    table has another shape, so the transplant takes g_s's tuning and the new weights' own G'
    (it stopped on it before); anything else of another shape is still refused, and the warm
    start then falls back to the new base g_s instead of stopping the release."""
    from safetensors.torch import save_file

    from lic_core.config import tiny_config
    from lic_core.models import build_model
    from lic_core.weights import save_weights

    ship_dependents(wdir, 0, quantizers=("tcq",))
    lambdas = list(tiny_config().lambdas)
    more = sorted(set(lambdas) | {lambdas[0] / 2, lambdas[-1] * 2})
    torch.manual_seed(1)
    wider = build_model(TINY, lambdas=tuple(more)).eval()
    staging = tmp_path / "staging"
    staging.mkdir()
    save_weights(wider, staging / f"{TINY}.safetensors", {"model": TINY, "preview": True})
    old_base, old_dec = wdir / f"{TINY}.safetensors", wdir / f"{TINY}-ft-tcq.safetensors"
    t = transplant(old_base, old_dec, staging / f"{TINY}.safetensors", tmp_path / "t.safetensors")
    ob, od, nb, tt = (decoder_tensors(p) for p in (old_base, old_dec,
                                                   staging / f"{TINY}.safetensors", t))
    regained = [k for k in nb if ob[k].shape != nb[k].shape]
    assert regained and all(k.startswith("gains.inv_gain.") for k in regained)
    assert all(torch.equal(tt[k], nb[k]) for k in regained)
    assert all(torch.equal(tt[k], nb[k] + (od[k] - ob[k])) for k in nb if k not in regained)
    save_file({k: (v[:1].contiguous() if k.startswith("g_s.") else v) for k, v in nb.items()},
              str(tmp_path / "odd.safetensors"))
    with pytest.raises(ValueError, match="does not fit"):
        transplant(old_base, old_dec, tmp_path / "odd.safetensors", tmp_path / "t2.safetensors")


def _measured(train: ReleaseTrain, st: dict) -> None:
    """Stand-ins for the stages: a decoder tuned and tables designed on the staged weights."""
    from lic_core.quantizer import tcq_designed as td
    from lic_core.train.finetune import save_finetuned

    m = load_model(TINY, train.staging / f"{TINY}.safetensors")
    save_finetuned(m, train.staging / f"{TINY}-ft-tcq.safetensors", {"base_model": TINY})
    counts = [[[9, 3, 1] + [0] * 14, [7, 2, 1] + [0] * 14] for _ in range(64)]
    (train.staging / f"{TINY}{td.SUFFIX}").write_text(json.dumps(td.table_document(
        0.561, 15, 64, counts, {"base_model": TINY, "order": 1, "base_weights_hash":
                                m.weights_meta["weights_hash_bytes"].hex()})))
    for it in st["plan"]:
        it.update(status="measured", cpu_h=0.01, result={"earned": True, "installs": True,
                                                          "line": "stand-in"})
    st["phase"] = "measured"
    train.save_state(st)


def test_install_is_all_or_nothing_and_freezes_the_outgoing_weights(tmp_path, wdir, monkeypatch):
    photo = np.asarray(Image.open(striped_photos(tmp_path / "photos", n=1, size=80) / "img0.png"))
    ship_dependents(wdir, 0, quantizers=("tcq", "round"))
    old_hash = read_weights_hash(wdir / f"{TINY}.safetensors")
    codec = LearnedCodec(TINY)
    old_files = [codec.encode(photo, EncodeParams(rate=0.5, quantizer=q, decoder=d))
                 for q, d in (("tcq", "mse"), ("round", "gan"), ("rdoq", "mse"))]
    root = tmp_path / "campaign"
    write_export(root, 1)
    train = ReleaseTrain(root)
    st = train.new_release(None, True, (), ("gan", "finetune-round"), TINY, wdir,
                           tmp_path / "results")
    train.prepare(st)
    assert not (train.staging / f"{TINY}-gan.safetensors").exists()  # dependents are out
    assert (train.outgoing / f"{TINY}-gan.safetensors").is_file()  # kept to freeze
    before = tree(wdir)
    with pytest.raises(CampaignError, match="not re-derived and measured yet"):
        train.install()
    _measured(train, st)
    st = train.state()

    # a copy fails midway (the first into the new frozen generation, after the new top-level
    # files): nothing in the shipped folder changed, no temporary file or new folder is left
    real_copy, calls = release_install.shutil.copyfile, []

    def failing_copy(src, dst, *a, **k):
        calls.append(dst)
        if "frozen" in str(dst):
            raise OSError("disk full (test)")
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr(release_install.shutil, "copyfile", failing_copy)
    with pytest.raises(CampaignError, match="before anything changed"):
        train.install()
    monkeypatch.setattr(release_install.shutil, "copyfile", real_copy)
    assert tree(wdir) == before and not list(wdir.rglob("*.release-tmp")) and len(calls) > 3
    assert not (wdir / "frozen").exists()

    # somebody changed the shipped folder meanwhile: the staged copy would undo it
    (wdir / "extra.md").write_text("x")
    with pytest.raises(CampaignError, match="changed since the release began"):
        train.install()
    (wdir / "extra.md").unlink()

    # cut short after the journal and two renames: the next install finishes it
    real_replace, n = release_install.os.replace, []

    def failing_replace(a, b):
        n.append(b)
        if len(n) == 4:  # the state file, the journal, one rename, then the failure
            raise OSError("killed (test)")
        return real_replace(a, b)

    monkeypatch.setattr(release_install.os, "replace", failing_replace)
    with pytest.raises(OSError, match="killed"):
        train.install()
    monkeypatch.setattr(release_install.os, "replace", real_replace)
    assert train.journal.is_file()
    with pytest.raises(CampaignError, match="cut short"):
        train.start()
    assert "finished the install that was cut short" in train.install()
    assert not train.journal.is_file() and train.state()["phase"] == "installed"

    new_hash = read_weights_hash(wdir / f"{TINY}.safetensors")
    assert new_hash == st["export"]["weights_hash"] != old_hash
    assert finetuned_base_hash(wdir / f"{TINY}-ft-tcq.safetensors") == new_hash
    assert read_table_file(wdir / f"{TINY}.tcq-tables.json")["base_weights_hash"] == new_hash
    for gone in ("-gan.safetensors", "-ft-round.safetensors"):  # skipped: dropped, not stale
        assert not (wdir / f"{TINY}{gone}").exists()
    assert json.loads((wdir / f"{TINY}.json").read_text())["total_steps"] == 10  # the export's
    frozen = wdir / "frozen" / f"{TINY}-{old_hash}"
    assert {f.name for f in frozen.iterdir()} == {
        f"{TINY}.safetensors", f"{TINY}-ft-tcq.safetensors", f"{TINY}-ft-round.safetensors",
        f"{TINY}-gan.safetensors", f"{TINY}.tcq-tables.json", "FROZEN.json"}
    man = json.loads((wdir / f"{TINY}.release.json").read_text())
    assert man["replaces"] == old_hash and man["weights_hash"] == new_hash
    assert [s["stage"] for s in man["stages"]] == ["tcq-tables", "finetune-tcq"]
    assert (tmp_path / "results" / f"{TINY}.json").is_file()
    fresh = LearnedCodec(TINY)  # every file of the outgoing weights still decodes, the same
    for r in old_files:
        assert np.array_equal(fresh.decode(r.data).reconstruction, r.reconstruction)
    assert "installed already" in train.install()


def test_an_install_lets_go_of_the_oldest_frozen_generation_before_breaking_the_budget(tmp_path):
    wdir, staging, outgoing = (tmp_path / d for d in ("w", "s", "o"))
    for d in (wdir, staging, outgoing):
        d.mkdir()
    (wdir / "c.safetensors").write_bytes(b"o" * 100)
    (staging / "c.safetensors").write_bytes(b"n" * 100)
    (outgoing / "c.safetensors").write_bytes(b"o" * 100)
    for i, h in enumerate(("a" * 16, "b" * 16)):
        g = wdir / "frozen" / f"c-{h}"
        g.mkdir(parents=True)
        (g / "c.safetensors").write_bytes(b"x" * 100)
        (g / "FROZEN.json").write_text(json.dumps({"frozen": f"2026-0{i + 1}"}))
    note = {"frozen": "2026-12"}
    todo = release_install.plan(wdir, staging, outgoing, "c", "c" * 16, note, budget=10 ** 6)
    assert todo["evict"] == [] and set(todo["writes"]) == {
        "c.safetensors", f"frozen/c-{'c' * 16}/c.safetensors", f"frozen/c-{'c' * 16}/FROZEN.json"}
    todo = release_install.plan(wdir, staging, outgoing, "c", "c" * 16, note, budget=360)
    assert todo["evict"] == [f"frozen/c-{'a' * 16}"]  # the oldest goes first
    with pytest.raises(CampaignError, match="over its"):
        release_install.plan(wdir, staging, outgoing, "c", "c" * 16, note, budget=150)


def test_the_decoder_trainers_start_from_a_decoder_file(tmp_path, wdir):
    from safetensors.torch import save_file

    from lic_core.errors import LicError
    from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
    from lic_core.train.finetune import finetune
    from lic_core.train.gan_decoder import build_discriminator, train_gan_decoder

    ship_dependents(wdir, 0, quantizers=("tcq",))
    data = striped_photos(tmp_path / "photos", n=2, size=64)
    init = wdir / f"{TINY}-ft-tcq.safetensors"
    want = decoder_tensors(init)
    finetune(load_model(TINY), data, "round", steps=0, batch=1, crop=64, log=lambda s: None,
             run_dir=tmp_path / "ft", threads=1, init_decoder=init)
    ck = load_checkpoint(latest_checkpoint(tmp_path / "ft"))
    assert ck["init"]["file"] == init.name and ck["init"]["weights_hash"]
    assert all(torch.equal(ck["model"][k], want[k]) for k in want)
    m = load_model(TINY)
    train_gan_decoder(m, data, steps=0, batch=1, crop=64, run_dir=tmp_path / "gan", threads=1,
                      disc=build_discriminator(m, 4, (8, 8, 16, 16)), init_decoder=init,
                      log=lambda s: None)
    ck = load_checkpoint(latest_checkpoint(tmp_path / "gan"))
    assert ck["init"]["file"] == init.name and all(torch.equal(ck["model"][k], want[k])
                                                   for k in want)
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad), metadata={"weights_hash": "00" * 8})
    with pytest.raises(LicError, match="is not a decoder of"):
        finetune(load_model(TINY), data, "round", steps=0, batch=1, crop=64,
                 log=lambda s: None, run_dir=tmp_path / "ft2", threads=1, init_decoder=bad)
