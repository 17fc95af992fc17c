"""What a release measured, its manifest and its install (issue 27 item 3; :mod:`.release`).

The manifest ``<codec>.release.json`` ships beside the weights: the codec export's Kodak numbers
and gain over the weights it replaces, and per re-derived dependent its training CPU-hours and
budget, the CPU time of its warm-start probe and of its Kodak measurement, where it started
from and why, and what it measured (BD-rate saving of a fine-tuned decoder over the base decoder;
bpp, PSNR, LPIPS of the GAN and diffusion decoders beside the MSE decoder on the same files) —
what a session note quotes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from .base import CampaignError, now


def _point(p: dict) -> dict:
    return {k: (round(float(v), 5) if isinstance(v, float) else v) for k, v in p.items()
            if k in ("u", "bpp", "psnr", "ms_ssim", "lpips")}


def _count(images) -> int:
    """How many images a card was measured on (cards record the names or just their count)."""
    return images if isinstance(images, int) else len(images or [])


def summarize(stage: str, s: dict) -> dict:
    """The record of one measured dependent (``s``: its stage's ``measure`` summary)."""
    card = s["card"]
    out = {"earned": bool(s["earned"]), "name": s["name"], "steps": card.get("total_steps"),
           "status": card.get("status")}
    ev = card.get("eval") or {}
    if stage.startswith("finetune-"):
        saving = s.get("saving_pct")
        out.update(saving_pct=saving, bd_vs_round_percent=ev.get("bd_vs_round_percent"),
                   curves={k: {"bpp": c["bpp"], "psnr": c["psnr"]}
                           for k, c in (ev.get("curves") or {}).items()},
                   images=_count(ev.get("images")), us=ev.get("us"))
        out["line"] = ("n/a" if saving is None else f"{saving:+.2f} %") + \
            " BD-rate saving over the base decoder" + ("" if s["earned"] else " (not enough)")
    else:
        rows = {label: [_point(p) for p in pts] for label, pts in (ev.get("rows") or {}).items()}
        out.update(rows=rows, lpips_below_mse=card.get("lpips_below_mse"),
                   images=_count(ev.get("images")))
        lp = {label: [p.get("lpips") for p in pts] for label, pts in rows.items()}
        out["line"] = "LPIPS " + "; ".join(
            f"{label} {min(v):.3f}–{max(v):.3f}" for label, v in lp.items()
            if v and None not in v) + (" — below the MSE decoder at every point" if s["earned"]
                                       else " — NOT below the MSE decoder everywhere")
    return out


def manifest(st: dict, dropped: list[str]) -> dict:
    """The release manifest (see the module)."""
    plan = st["plan"]
    train_h = sum(float(it.get("cpu_h") or 0.0) for it in plan)
    other_s = sum(float(it.get("measure_cpu_s") or 0.0) + float(it.get("probe_cpu_s") or 0.0)
                  for it in plan)
    return {"kind": "lic release manifest (tools/campaign.sh release, docs/training.md)",
            "codec": st["codec"], "released": now(), "weights_hash": st["export"]["weights_hash"],
            "replaces": st["outgoing"]["weights_hash"],
            "frozen": (f"frozen/{st['codec']}-{st['outgoing']['weights_hash']}"
                       if st["outgoing"]["weights_hash"] else None),
            "export": st["export"], "training_cpu_hours": round(train_h, 4),
            "measure_and_probe_cpu_hours": round(other_s / 3600.0, 4),
            "stages": [{k: it.get(k) for k in ("stage", "budget_min", "cpu_h", "probe_cpu_s",
                                               "measure_cpu_s", "warm_start", "result")}
                       for it in plan],
            "dropped": dropped}


def install_release(train, drop_unearned: bool = False, force: bool = False) -> str:
    """Install a measured release into the real weights folder (``release install``); one line."""
    from .release_install import changed_since, finish, install, plan

    st = train.state()
    if not st:
        raise CampaignError("no release under way (tools/campaign.sh release start)")
    wdir = Path(st["outgoing"]["weights_dir"])
    if train.journal.is_file():  # an install cut short: finish it
        finish(train.journal)
        return _installed(train, st, wdir, "finished the install that was cut short")
    if st.get("phase") == "installed":
        return f"the release of {st['export']['weights_hash']} is installed already"
    pending = [it["stage"] for it in st["plan"] if it["status"] != "measured"]
    if pending:
        raise CampaignError(f"not re-derived and measured yet: {', '.join(pending)} "
                            "(`release start` continues the release)")
    unearned = [it["stage"] for it in st["plan"] if not it["result"]["installs"]]
    if unearned and not drop_unearned:
        raise CampaignError(f"{', '.join(unearned)} did not earn its install: --drop-unearned "
                            "installs the rest without it (nothing stale ships), or `release "
                            f"start --budget {unearned[0]}=MIN` trains it on")
    changed = changed_since(wdir, st["snapshot"])
    if changed and not force:
        raise CampaignError(f"{wdir} changed since the release began ({', '.join(changed[:3])}"
                            f"{' …' if len(changed) > 3 else ''}): installing the staged copy "
                            "would undo that; `release abort` and start again (or --force)")
    name, old = st["codec"], st["outgoing"]["weights_hash"]
    doc = manifest(st, unearned)
    (train.staging / f"{name}.release.json").write_text(json.dumps(doc, indent=1) + "\n")
    note = {"model": name, "weights_hash": old, "frozen": now(),
            "replaced_by": st["export"]["weights_hash"],
            "why": "files written with these weights keep decoding (lic_core.codecs.frozen)"}
    todo = plan(wdir, train.staging, train.outgoing, name, old, note)
    st["install_plan"] = todo
    st["dropped"] = unearned
    train.save_state(st)
    install(wdir, todo, train.journal)
    return _installed(train, st, wdir, f"installed into {wdir}: {len(todo['writes'])} files "
                      f"written, {len(todo['deletes'])} removed"
                      + (f", {name} {old} frozen" if old else "")
                      + (f", let go of {', '.join(todo['evict'])}" if todo["evict"] else "")
                      + f"; {todo['mib_after']} MiB")


def _installed(train, st: dict, wdir: Path, line: str) -> str:
    """After the files: the RD JSON into the results folder, the state says installed."""
    export = Path(st["export"]["path"])
    rd = export.with_name(export.stem + ".rd.json")
    if rd.is_file():
        results = Path(st["results_dir"])
        results.mkdir(parents=True, exist_ok=True)
        tmp = results / f".{st['codec']}.json.tmp"
        shutil.copyfile(rd, tmp)
        tmp.replace(results / f"{st['codec']}.json")
    st.update(phase="installed", installed=now(), current=None)
    train.save_state(st)
    m = json.loads((wdir / f"{st['codec']}.release.json").read_text())
    return (f"{line}; {m['training_cpu_hours']:.2f} CPU-h of training "
            f"(+{m['measure_and_probe_cpu_hours']:.2f} measuring); manifest "
            f"{st['codec']}.release.json")
