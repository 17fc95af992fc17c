"""The release train (issue 27 item 3): ``tools/campaign.sh release start|status|stop|install``.

New codec weights make every decoder trained on the old ones stale: the fine-tuned decoders, the
TCQ rate tables, the GAN decoder (all bound to the base weights' hash; the codec ignores them
beside other weights) and the diffusion decoder (conditioned on the old g_s; nothing checked it).
Installing new weights with the codec stage's ``export --install`` deleted the first ones and
left the studio without them until each stage was retrained by hand (~10 CPU-h; it now sends a
replacement here, and ``--force-install`` still does that). A release instead:

1. takes a codec export (default: ``runs/campaign/export/<name>.safetensors``, written and
   measured by ``export``) and refuses one that did not earn its install (``--force``);
2. makes a **staging** copy of the shipped weights folder with the new codec files in it
   (:mod:`.release_install`), and runs every stage below with ``$LIC_WEIGHTS_DIR`` pointing there:
   to each stage the new weights are "the shipped weights", and the real folder does not change;
3. re-derives, in this order, every dependent shipped for the outgoing weights (``--add`` one that
   is not, ``--skip`` one: a skipped dependent is dropped, never left stale), each under its own
   training CPU budget (:data:`BUDGETS`), warm-started as :mod:`.warmstart` decides, and measured
   by its stage's own ``measure`` (the same Kodak tables as ``export``); what earns its install
   goes into the staging folder (the stage's ``release``);
4. installs everything together when all of it earned its install (``--hold``: wait for
   ``release install``): atomically, with the outgoing weights frozen by hash so their files keep
   decoding (:mod:`lic_core.codecs.frozen`), and a manifest ``<name>.release.json`` beside the
   weights with each stage's CPU-hours and Kodak numbers.

==================  ==================================================  =================
stage               starts from                                         training budget
==================  ==================================================  =================
tcq-tables          the previous tables (2 design passes, every 2nd      ≈ 6 CPU-min (no
                    photo, crops 256: 3 passes took 538 s)               cap; measured)
finetune-round      base g_s or transplant (probe)                      15 CPU-min
finetune-deadzone   (only with ``--add``: none ships yet)                15 CPU-min
finetune-rdoq       base g_s or transplant (probe)                      15 CPU-min
finetune-tcq        base g_s or transplant (probe)                      30 CPU-min
gan                 base g_s or transplant (probe); D afresh, GAN term  24 CPU-min
                    after 250 steps from a transplant (500 from g_s)
diffusion           its previous weights, fresh optimizer               30 CPU-min
==================  ==================================================  =================

Total 2.0 CPU-hours of training (the first derivations took 11.1: round 1.97, rdoq 1.16, tcq
4.35, gan 0.38, diffusion 3.27 CPU-h). Where these came from: TCQ's decoder learns most per step
(its 3 889-step, 1.30 CPU-h predecessor already saved ~4 of the shipped 6.6 %) and starts from a
transplant that keeps most of it, so it gets the largest share; rounding's and RDOQ's decoders save
1.5 and 2.7 % after 1.2–2 CPU-h, the smallest gains per CPU-hour; the GAN decoder earned its first
install after 0.38 CPU-h from the base g_s; the diffusion decoder keeps its network and only
follows the new conditioning. ``--budget STAGE=MIN`` changes one; measuring on Kodak (24 images,
6 slider points) is booked apart (``measure_cpu_s``).

State: ``runs/campaign/release.json`` (the plan, each stage's status — pending, training, trained,
measured — its warm start, CPU-hours and measured numbers); ``release start`` runs the train in
the background (``python -m campaign.release``, niced, its own session, one campaign job at a
time: the stages refuse to start beside it and it refuses to start beside them); ``release stop``
checkpoints the running stage and ends; ``release start`` again continues at the stage it was in
(its checkpoint), and may raise a stage's budget (a measured stage that did not earn its install
trains on to the new budget).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .base import (
    DEFAULT_DIR,
    EVAL_US,
    CampaignError,
    Stage,
    launch,
    now,
    set_flag,
    stage_cpu_hours,
)
from .release_install import ORDER, shipped_plan  # noqa: F401 (the release's plan; re-exported)

#: training CPU-minutes of each re-derived dependent (see the module's table)
BUDGETS = {"tcq-tables": None, "finetune-round": 15.0, "finetune-deadzone": 15.0,
           "finetune-rdoq": 15.0, "finetune-tcq": 30.0, "gan": 24.0, "diffusion": 30.0}
#: the GAN decoder's steps without the GAN term when it is warm-started (D starts afresh)
GAN_START_WARM = 250
#: TCQ rate-table design of a release: warm-started passes, photos, crop
TCQ_DESIGN = {"iterations": 2, "every": 2, "crop": 256}


class Stopped(Exception):
    """The release train was asked to stop (SIGTERM)."""


def stage_recipe(stage: str, codec: str, warm: bool = False) -> list[str]:
    """The stage's own recipe for the codec ``codec``; a GAN decoder warm-started from a decoder
    file (``warm``) needs a shorter warm-up without the GAN term (:data:`GAN_START_WARM`)."""
    from .finetune import RECIPE as FT
    from .gan import RECIPE as GAN
    from .generative import RECIPES

    recipe = list(GAN if stage == "gan" else RECIPES["diffusion"] if stage == "diffusion" else FT)
    recipe = set_flag(recipe, "--model", codec)
    return set_flag(recipe, "--gan-start", str(GAN_START_WARM)) if stage == "gan" and warm \
        else recipe


class ReleaseTrain(Stage):
    """``tools/campaign.sh release``: see the module. Its folder is ``runs/campaign/release``
    (staging weights, outgoing weights, warm starts, and the campaign folder of its stages)."""

    name = "release"
    label = "release train"

    def __init__(self, root: Path | str = DEFAULT_DIR) -> None:
        super().__init__(root)
        self.staging = self.run_dir / "weights"
        self.outgoing = self.run_dir / "outgoing"
        self.journal = self.run_dir / "install-journal.json"
        self._stop = False
        self._interruptible = False

    # -- start ------------------------------------------------------------------------------
    def start(self, export: Optional[str] = None, force: bool = False,
              budgets: Optional[dict] = None, add: Sequence[str] = (), skip: Sequence[str] = (),
              name: Optional[str] = None, data: Optional[str] = None, kodak: Optional[str] = None,
              eval_limit: Optional[int] = None, us: Optional[Sequence[float]] = None,
              hold: bool = False, weights_dir: Optional[Path] = None,
              results_dir: Optional[Path] = None, nice: int = 19,
              recipes: Optional[dict] = None, max_steps: Optional[int] = None,
              probe: Optional[dict] = None, tcq_design: Optional[dict] = None,
              force_install: bool = False) -> str:
        """Begin a release (or continue the one under way) in the background; one line back.

        ``recipes`` (stage → trainer flags), ``max_steps`` (a cap on every stage's steps),
        ``probe`` ({"n", "crop"} of the warm-start probe), ``tcq_design`` ({"iterations",
        "every", "crop"}) and ``force_install`` (stage every re-derived dependent, earned or not:
        the stages' ``--force-install``) are for smoke runs and tests."""
        pid = self.pid()
        if pid:
            return f"{self.label} already running (pid {pid}); `release status` to follow it"
        self.refuse_if_another_runs()
        st = self.state()
        if self.journal.is_file():
            raise CampaignError("an install was cut short: `release install` finishes it")
        if st.get("phase") in (None, "installed"):
            st = self.new_release(export, force, add, skip, name, weights_dir, results_dir,
                                  budgets)
            how = (f"release of {st['codec']} {st['export']['weights_hash']} (replacing "
                   f"{st['outgoing']['weights_hash']}): {', '.join(self.plan_names(st))}")
        elif export and Path(export).resolve() != Path(st["export"]["path"]).resolve():
            raise CampaignError(f"a release of {st['export']['path']} is under way: `release "
                                "start` continues it, `release abort` discards it")
        else:
            how = f"continuing the release at {st.get('current') or 'its end'}"
        opts = st.setdefault("options", {})
        for k, v in {"data": data, "kodak": kodak, "eval_limit": eval_limit,
                     "us": list(us) if us else None, "recipes": recipes, "max_steps": max_steps,
                     "probe": probe, "tcq_design": tcq_design, "nice": nice}.items():
            if v is not None:
                opts[k] = v
        st.pop("stopped", None)
        opts["hold"] = bool(hold or opts.get("hold"))
        opts["force_install"] = bool(force_install or opts.get("force_install"))
        self.set_budgets(st, budgets or {})
        cmd = [sys.executable, "-m", "campaign.release", str(self.run_dir)]
        return launch(self, st, cmd, how, nice)

    def new_release(self, export, force, add, skip, name, weights_dir, results_dir,
                    budgets: Optional[dict] = None) -> dict:
        from lic_core.paths import weights_dir as default_weights_dir
        from lic_core.weights import read_weights_hash

        from .codec import CLASSICAL, DEFAULT_NAME, eval_image_names, install_verdict

        name = name or DEFAULT_NAME
        path = Path(export) if export else self.root / "export" / f"{name}.safetensors"
        card_file = path.with_suffix(".json")
        if not path.is_file() or not card_file.is_file():
            raise CampaignError(f"no codec export at {path} (with its card {card_file.name}): "
                                "`tools/campaign.sh export` first")
        wdir = Path(weights_dir) if weights_dir else default_weights_dir()
        card = json.loads(card_file.read_text())
        new_hash, old_hash = read_weights_hash(path), None
        if (wdir / f"{name}.safetensors").is_file():
            old_hash = read_weights_hash(wdir / f"{name}.safetensors")
        if new_hash == old_hash:
            raise CampaignError(f"{path.name} is the shipped {name} already ({new_hash})")
        verdict = install_verdict(card, name, wdir)
        if not (verdict["earned"] or force):
            raise CampaignError(f"{path.name} did not earn its install "
                                f"({verdict['why_not_earned']}); --force releases it anyway")
        plan = shipped_plan(wdir, name, add, skip)
        st = {"codec": name, "created": now(), "phase": "new", "current": None,
              "export": {"path": str(path.resolve()), "weights_hash": new_hash,
                         "forced": bool(force and not verdict["earned"]),
                         "cpu_hours": card.get("cpu_hours"), "steps": card.get("total_steps"),
                         "bd_rate": card.get("bd_rate"),
                         "points": (card.get("eval") or {}).get("points"),
                         "images": len(eval_image_names(card)),
                         **{k: verdict[k] for k in ("gain_vs_shipped_pct", "compared_with",
                                                    "gain_basis")}},
              "outgoing": {"weights_hash": old_hash, "weights_dir": str(wdir.resolve())},
              "results_dir": str(Path(results_dir or CLASSICAL).resolve()),
              "plan": [{"stage": s, "budget_min": BUDGETS[s], "status": "pending"} for s in plan]}
        self.set_budgets(st, budgets or {})  # refused before anything is saved
        if self.run_dir.exists():  # a finished or discarded release's scratch folder
            import shutil

            shutil.rmtree(self.run_dir)
        self.save_state(st)
        return st

    @staticmethod
    def plan_names(st: dict) -> list[str]:
        return [it["stage"] for it in st.get("plan", [])]

    def set_budgets(self, st: dict, budgets: dict) -> None:
        """New budgets (CPU-min); a measured stage that did not earn its install and is given
        more trains on (its checkpoint) and is measured again."""
        unknown = set(budgets) - set(self.plan_names(st))
        if unknown:
            raise CampaignError(f"no stage {sorted(unknown)[0]} in this release "
                                f"({', '.join(self.plan_names(st))})")
        if "tcq-tables" in budgets:
            raise CampaignError("tcq-tables has no CPU budget: its design runs a fixed number "
                                "of passes")
        for item in st.get("plan", []):
            b = budgets.get(item["stage"])
            if b is None:
                continue
            raised = item.get("budget_min") is not None and float(b) > float(item["budget_min"])
            item["budget_min"] = float(b)
            if raised and item["status"] in ("trained", "measured") and \
                    not (item.get("result") or {}).get("installs"):
                item["status"] = "training"
                if st.get("phase") in ("held", "measured"):
                    st["phase"] = "training"

    # -- status / stop / abort ----------------------------------------------------------------
    def status(self) -> str:
        """A line for the release, then one per stage."""
        st = self.state()
        if not st:
            return "no release under way (tools/campaign.sh release start)"
        head = (f"release train {self.state_word()}: {st['codec']} "
                f"{st['outgoing']['weights_hash']} → {st['export']['weights_hash']}, "
                f"phase {st['phase']}")
        total = sum(float(it.get("cpu_h") or 0.0) for it in st["plan"])
        lines = [head + f", {total:.2f} CPU-h of training so far" +
                 (f"; {st['why_held']}" if st.get("phase") == "held" else "") +
                 (f"; failed: {st['error']}" if st.get("error") else "")]
        for it in st["plan"]:
            b = it.get("budget_min")
            bits = [f"  {it['stage']:18s} {it['status']}",
                    f"budget {b:g} CPU-min" if b else "no budget cap"]
            if it["status"] == "training" and it["stage"] != "tcq-tables":
                h = stage_cpu_hours(self.run_dir, it["stage"]) - float(it.get("cpu_start_h", 0))
                bits.append(f"{max(0.0, h) * 60:.1f} CPU-min so far")
            if it.get("cpu_h") is not None:
                bits.append(f"{it['cpu_h']:.3f} CPU-h")
            if it.get("warm_start"):
                bits.append(f"from {it['warm_start']['from']}")
            if it.get("result"):
                bits.append(it["result"].get("line", ""))
            lines.append(", ".join(b for b in bits if b))
        return "\n".join(lines)

    def stop(self, timeout: float = 900.0) -> str:
        """Stop the driver (it checkpoints the running stage first); the release stays resumable."""
        msg = super().stop(timeout)
        if "not running" in msg:
            return msg
        return f"{self.label} stopped at {self.state().get('current') or 'its end'}; " \
               "`release start` continues it"

    def abort(self) -> str:
        """Discard a release that was not installed (its folder and state)."""
        import shutil

        if self.pid():
            raise CampaignError("the release train is running: `release stop` first")
        st = self.state()
        if not st or st.get("phase") == "installed":
            return "no release to abort"
        if self.journal.is_file():
            raise CampaignError("an install was cut short: `release install` finishes it")
        from .stages import open_stage

        for s in self.plan_names(st):  # a stage whose driver died trains on in the folder
            pid = open_stage(s, self.run_dir).pid() if s != "tcq-tables" else None
            if pid:
                raise CampaignError(f"the release's {s} stage is running (pid {pid}): stop it "
                                    f"first (tools/campaign.sh --dir {self.run_dir} --stage {s} "
                                    "stop)")
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.state_file.unlink()
        return f"release of {st['export']['path']} discarded"

    # -- the driver (python -m campaign.release) ---------------------------------------------
    def _on_term(self, signum, frame) -> None:
        self._stop = True
        if self._interruptible:
            self._interruptible = False
            raise Stopped()

    def _check(self) -> None:
        if self._stop:
            raise Stopped()

    def say(self, msg: str) -> None:
        print(f"{now()} {msg}", flush=True)

    def drive(self) -> int:
        """Run the release to its end (or a stop): the background process's body."""
        signal.signal(signal.SIGTERM, self._on_term)
        st = self.state()
        os.environ["LIC_WEIGHTS_DIR"] = str(self.staging)  # the stages' "shipped weights"
        item = None
        try:
            if st["phase"] == "new":
                self.prepare(st)
            for item in st["plan"]:
                self._check()
                if item["status"] != "measured":
                    st["current"] = item["stage"]
                    self.save_state(st)
                    self.run_item(st, item)
            item = None
            st["current"] = None
            unearned = [it["stage"] for it in st["plan"] if not it["result"]["installs"]]
            if unearned or st["options"].get("hold"):
                st["phase"] = "held"
                st["why_held"] = (f"did not earn its install: {', '.join(unearned)} (`release "
                                  "install --drop-unearned`, or `release start --budget "
                                  f"{unearned[0]}=MIN` to train on)" if unearned else
                                  "held (--hold): `release install`")
                self.save_state(st)
                self.say(st["why_held"])
                return 0
            st["phase"] = "measured"
            self.save_state(st)
            self.say(self.install())
            return 0
        except Stopped:
            self.stop_inner(item)
            st["stopped"] = now()  # a stop, not a crash (the cycle tells them apart)
            self.save_state(st)
            self.say(f"stopped at {st.get('current')}: `release start` continues it")
            return 0
        except Exception as exc:  # noqa: BLE001 - recorded for `release status`, then raised
            st["error"] = f"{item['stage'] if item else 'release'}: {exc}"
            self.save_state(st)
            raise

    def stop_inner(self, item: Optional[dict]) -> None:
        if item is not None and item["stage"] != "tcq-tables":
            from .stages import open_stage

            stage = open_stage(item["stage"], self.run_dir)
            if stage.pid():
                self.say(stage.stop())

    def prepare(self, st: dict) -> None:
        from .release_install import prepare

        wdir = Path(st["outgoing"]["weights_dir"])
        st["snapshot"] = prepare(wdir, self.staging, self.outgoing, st["codec"],
                                 Path(st["export"]["path"]))
        st.pop("error", None)
        st["phase"] = "training"
        self.save_state(st)
        self.say(f"staged {self.staging} (the new {st['codec']} weights, the dependents out)")

    def run_item(self, st: dict, item: dict) -> None:
        st.pop("error", None)
        if item["stage"] == "tcq-tables":
            self._interruptible = True
            item.update(self.design_tables(st))
            self._interruptible = False
            item["status"] = "measured"
            self.save_state(st)
            return
        from .stages import open_stage

        stage = open_stage(item["stage"], self.run_dir)
        if item["status"] == "pending":
            self.choose_warm_start(st, item)
        if item["status"] == "training":
            self.train(st, item, stage)
        if item["status"] == "trained":
            self.measure(st, item, stage)

    def choose_warm_start(self, st: dict, item: dict) -> None:
        from .warmstart import choose, probe_crops

        opts = st["options"]
        probe = {"n": 6, "crop": 256, **(opts.get("probe") or {})}
        data = self.data(st)
        t0 = time.process_time()
        self._interruptible = True
        item["warm_start"] = choose(item["stage"], st["codec"], self.outgoing, self.staging,
                                    self.run_dir / "init",
                                    lambda: probe_crops(data.split(os.pathsep), probe["n"],
                                                        probe["crop"]), self.say)
        self._interruptible = False
        item["probe_cpu_s"] = round(time.process_time() - t0, 1)
        start_s = 0.0
        if item["warm_start"]["from"] == "previous":  # the diffusion trainer books on from it
            start_s = float((booked(item["warm_start"]["file"]) or {}).get("cpu_s", 0.0))
        item["cpu_start_h"] = start_s / 3600.0
        item["status"] = "training"
        self.save_state(st)

    def data(self, st: dict) -> str:
        from .base import training_inputs

        return training_inputs({}, st["options"].get("data"), None)[0]

    def train(self, st: dict, item: dict, stage) -> None:
        opts = st["options"]
        budget = float(item["budget_min"]) + 60.0 * float(item.get("cpu_start_h", 0.0))
        extra = ["--cpu-budget-min", f"{budget:.4f}"]
        if opts.get("max_steps"):
            extra += ["--steps", str(int(opts["max_steps"]))]
        init = (item.get("warm_start") or {}).get("file")
        recipe = (opts.get("recipes") or {}).get(item["stage"]) or \
            stage_recipe(item["stage"], st["codec"], warm=init is not None)
        self._check()
        ends_before = len([r for r in stage.log() if r.get("type") == "end"])
        msg = stage.start(data=self.data(st), kodak=opts.get("kodak"),
                          init=init, recipe=recipe,
                          extra=extra, nice=int(opts.get("nice", 19)))
        self.say(msg)
        self._interruptible = True
        while stage.pid() is not None:
            self._check()
            time.sleep(1.0)
        self._interruptible = False
        self._check()
        ends = [r for r in stage.log() if r.get("type") == "end"]
        reason = ends[-1].get("reason") if ends else None
        if len(ends) <= ends_before or reason not in ("cpu budget", "done", "signal"):
            tail = stage.out_file.read_text(errors="replace")[-1500:]
            raise CampaignError(f"the {item['stage']} trainer ended without finishing:\n{tail}")
        if reason == "signal":  # stopped by someone else: the release stops too
            raise Stopped()
        item["cpu_h"] = round(stage_cpu_hours(self.run_dir, item["stage"])
                              - float(item.get("cpu_start_h", 0.0)), 4)
        item["status"] = "trained"
        self.save_state(st)

    def measure(self, st: dict, item: dict, stage) -> None:
        from .release_summary import summarize

        opts = st["options"]
        t0 = time.process_time()
        self._interruptible = True
        s = stage.measure(eval_dir=opts.get("kodak"), eval_limit=opts.get("eval_limit"),
                          us=opts.get("us") or EVAL_US, progress=lambda *a, **k: None)
        self._interruptible = False
        if s["earned"] or opts.get("force_install"):
            stage.release(s, self.staging, force=True)
        item["measure_cpu_s"] = round(time.process_time() - t0, 1)
        item["result"] = summarize(item["stage"], s)
        item["result"]["installs"] = bool(s.get("installed"))
        if s.get("why_not") and s["earned"]:
            item["result"]["line"] += f" — not staged: {s['why_not']}"
        item["status"] = "measured"
        self.save_state(st)
        self.say(f"{item['stage']}: {item['result']['line']}")

    def design_tables(self, st: dict) -> dict:
        """Redesign the TCQ rate tables on the new weights (warm-started from the previous ones)
        into the staging folder; returns the item's record."""
        from lic_core.fileio import write_bytes_atomic
        from lic_core.models import load_model
        from lic_core.quantizer.tcq import DEFAULT_C, DEFAULT_DELTA_U
        from lic_core.quantizer.tcq_designed import (
            SUFFIX,
            build_designed,
            read_table_file,
            table_document,
        )
        from lic_core.train.tcq_design import DEFAULT_M, DEFAULT_US, DEFAULT_W, centre_crops, design

        name, t0 = st["codec"], time.process_time()
        old = self.outgoing / f"{name}{SUFFIX}"
        prev = read_table_file(old) if old.is_file() else None
        init = build_designed(prev["delta_u"], prev["m"], prev["w"], prev["counts"]) \
            if prev and prev["delta_u"] == DEFAULT_DELTA_U else None
        cfg = {**TCQ_DESIGN, **(st["options"].get("tcq_design") or {})}
        order = int(prev.get("order", 1)) if prev else 1
        c = float((prev or {}).get("design", {}).get("c", DEFAULT_C))
        model = load_model(name, self.staging / f"{name}.safetensors")
        crops = centre_crops(self.data(st).split(os.pathsep), cfg["every"], cfg["crop"])
        counts, history = design(model, crops, DEFAULT_US, c, iterations=cfg["iterations"],
                                 log=self.say, order=order, init=init)
        doc = table_document(DEFAULT_DELTA_U, DEFAULT_M, DEFAULT_W, counts, {
            "base_model": name, "base_weights_hash": model.weights_meta["weights_hash_bytes"].hex(),
            "order": order,
            "design": {"photos": self.data(st), "every": cfg["every"], "crops": len(crops),
                       "crop": cfg["crop"], "us": list(DEFAULT_US), "c": c,
                       "iterations": cfg["iterations"], "passes": history, "created": now(),
                       "init": f"{old.name} of {prev.get('base_weights_hash')} (id "
                               f"{prev['id']:016x})" if init is not None else "gaussian"}})
        write_bytes_atomic(self.staging / f"{name}{SUFFIX}",
                           (json.dumps(doc, separators=(",", ":")) + "\n").encode(), True)
        cpu_h = round((time.process_time() - t0) / 3600.0, 4)
        last = history[-1]["y_bpp"]
        start = "the previous tables" if init is not None else "Gaussian"
        return {"cpu_h": cpu_h, "result": {
            "earned": True, "installs": True, "id": f"{doc['id']:016x}", "passes": history,
            "crops": len(crops),
            "line": f"tables {doc['id']:016x}: y {last:.4f} bpp on the training crops after "
                    f"{len(history)} passes (from {start})"}}

    # -- install ------------------------------------------------------------------------------
    def install(self, drop_unearned: bool = False, force: bool = False) -> str:
        """Install the release (see :mod:`.release_install`); one line back."""
        from .release_summary import install_release

        if self.pid() and os.getpid() != self.pid():
            raise CampaignError("the release train is running; it installs by itself at the end "
                                "(`release stop` first to install now what is measured)")
        return install_release(self, drop_unearned, force)


def booked(path: str) -> Optional[dict]:
    """Step and booked CPU seconds of a diffusion decoder file (its metadata), or None."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        return {"step": int(meta.get("step", 0)), "cpu_s": float(meta.get("cpu_s", 0.0))}
    except Exception:  # noqa: BLE001 - a decoder without them books from zero
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m campaign.release RUN_DIR``: the background driver ``release start`` launches."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m campaign.release RUN_DIR (started by tools/campaign.sh release "
              "start)", file=sys.stderr)
        return 2
    return ReleaseTrain(Path(args[0]).resolve().parent).drive()


if __name__ == "__main__":
    raise SystemExit(main())
