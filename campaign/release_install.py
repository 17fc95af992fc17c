"""The release train's folders and its install (issue 27 item 3; :mod:`.release` drives them).

* :func:`shipped_plan` — the dependents a release re-derives: those shipped for the outgoing
  weights, in :data:`ORDER`.
* :func:`prepare` — the **staging** folder ``runs/campaign/release/weights``: a copy of the shipped
  weights folder with the new codec files in it and the dependents of the outgoing weights out of
  it (every stage of the train runs with ``$LIC_WEIGHTS_DIR`` pointing there), the outgoing
  weights and their decoders copied to ``runs/campaign/release/outgoing`` (warm starts, and what is
  frozen), and a content hash of every shipped file.
* :func:`install` — shipped folder := staging folder, plus the outgoing weights frozen by hash
  (:mod:`lic_core.codecs.frozen`), all or nothing: every new file is first written beside its
  destination under a temporary name; a failure there removes them and leaves the shipped folder
  untouched. Then a journal lists the renames (each ``os.replace`` is atomic) and deletions, so
  an install cut short is finished by the next ``release install``. It refuses when the shipped
  folder changed since the release began (someone installed something: the staging copy would
  undo it) and when the result would exceed the weights folder's budget after letting go of the
  oldest frozen generations of the same codec.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence

from lic_core.fileio import sha256_file

from .base import WEIGHTS_BUDGET_BYTES, CampaignError, now

#: a file of the shipped folder that belongs to codec ``name``'s dependents (never to others)
DEPENDENT_PATTERNS = ("{n}-ft-*", "{n}-gan.*", "{n}-diffusion.*", "{n}.tcq-tables.json",
                      "{n}.quantizers.json")
#: the codec export's files that ship (``NAME.rd.json`` goes to the results folder instead)
CODEC_SUFFIXES = (".safetensors", ".json", ".md", ".curve.png")
TMP = ".release-tmp"
#: the order a release re-derives dependents in (tables before the TCQ decoder, which trains on
#: what compress() codes; the fine-tuned decoders before the GAN decoder, measured beside them)
#: the diffusion decoder before the GAN decoder: the GAN card states its CPU budget against the
#: diffusion decoder's (issue 26), which it reads from the staged diffusion card (the second
#: release, GAN first, found none there and wrote "unknown")
ORDER = ("tcq-tables", "finetune-round", "finetune-deadzone", "finetune-rdoq", "finetune-tcq",
         "diffusion", "gan")


def shipped_plan(wdir: Path, name: str, add: Sequence[str] = (),
                 skip: Sequence[str] = ()) -> list[str]:
    """The dependents shipped for ``name`` in ``wdir`` (+ ``add`` − ``skip``), in :data:`ORDER`."""
    from lic_core.paths import diffusion_weights_path, finetuned_path, gan_weights_path
    from lic_core.quantizer.tcq_designed import SUFFIX

    have = {"tcq-tables": (wdir / f"{name}{SUFFIX}").is_file(),
            "gan": gan_weights_path(name, wdir).is_file(),
            "diffusion": diffusion_weights_path(name, wdir).is_file()}
    for s in ORDER:
        if s.startswith("finetune-"):
            have[s] = finetuned_path(name, s.split("-", 1)[1], wdir).is_file()
    bad = [s for s in (*add, *skip) if s not in ORDER]
    if bad:
        raise CampaignError(f"unknown dependent stage '{bad[0]}' (choose {', '.join(ORDER)})")
    return [s for s in ORDER if (have[s] or s in add) and s not in skip]




def top_files(folder: Path) -> dict[str, Path]:
    """name → path of the plain files directly in ``folder``."""
    return {f.name: f for f in sorted(Path(folder).iterdir()) if f.is_file()} \
        if Path(folder).is_dir() else {}


def dependents(folder: Path, name: str) -> list[Path]:
    """The files of ``name``'s dependents (decoders, tables, their cards) in ``folder``."""
    out: list[Path] = []
    for pat in DEPENDENT_PATTERNS:
        out += sorted(p for p in Path(folder).glob(pat.format(n=name)) if p.is_file())
    return out


def prepare(shipped: Path, staging: Path, outgoing: Path, name: str, export: Path) -> dict:
    """Make the staging and outgoing folders (afresh); returns ``{relative name: sha256}`` of the
    shipped folder's top-level files (what :func:`install` checks nothing else changed)."""
    from lic_core.codecs.frozen import decoding_files

    for d in (staging, outgoing):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    snapshot = {}
    for rel, f in top_files(shipped).items():
        snapshot[rel] = sha256_file(f)
        shutil.copy2(f, staging / rel)
    for f in dependents(staging, name) + [staging / f"{name}{x}" for x in CODEC_SUFFIXES]:
        f.unlink(missing_ok=True)  # the export's files replace the codec's own
    if (shipped / f"{name}.safetensors").is_file():
        for f in decoding_files(shipped, name):
            shutil.copy2(f, outgoing / f.name)
    for suffix in CODEC_SUFFIXES:
        src = export.with_suffix(suffix) if suffix != ".curve.png" else \
            export.with_name(export.stem + suffix)
        if src.is_file():
            shutil.copy2(src, staging / f"{name}{suffix}")
    return snapshot


def _sizes(folder: Path) -> dict[str, int]:
    return {str(f.relative_to(folder)): f.stat().st_size for f in Path(folder).rglob("*")
            if f.is_file()} if Path(folder).is_dir() else {}


def plan(wdir: Path, staging: Path, outgoing: Path, name: str, old_hash: Optional[str],
         note: dict, budget: int = WEIGHTS_BUDGET_BYTES) -> dict:
    """What the install writes (``{relative destination: source}``), deletes and lets go of
    (older frozen generations), and the folder's size after; refuses one over ``budget``."""
    from lic_core.codecs.frozen import NOTE, frozen_folder, generations

    shipped, staged = top_files(wdir), top_files(staging)
    writes = {rel: src for rel, src in staged.items()
              if rel not in shipped or sha256_file(shipped[rel]) != sha256_file(src)}
    deletes = sorted(rel for rel in shipped if rel not in staged)
    evict: list[str] = []
    if old_hash and (outgoing / f"{name}.safetensors").is_file():
        dest = frozen_folder(name, old_hash, wdir)
        for f in sorted(outgoing.iterdir()):
            rel = str((dest / f.name).relative_to(wdir))
            if not (wdir / rel).is_file() or sha256_file(wdir / rel) != sha256_file(f):
                writes[rel] = f
        note_file = outgoing.parent / NOTE
        note_file.write_text(json.dumps(note, indent=1, sort_keys=True) + "\n")
        writes[str((dest / NOTE).relative_to(wdir))] = note_file
    sizes = _sizes(wdir)
    for rel in deletes:
        sizes.pop(rel, None)
    sizes.update({rel: src.stat().st_size for rel, src in writes.items()})
    old = [g for g in generations(name, wdir) if not old_hash or not g.name.endswith(old_hash)]
    while sum(sizes.values()) > budget and old:
        gone = old.pop(0)  # the oldest generation: its files are refused again, never misread
        evict.append(str(gone.relative_to(wdir)))
        for rel in [r for r in sizes if r.startswith(evict[-1] + os.sep)]:
            sizes.pop(rel)
    total = sum(sizes.values())
    if total > budget:
        raise CampaignError(f"installing the release would take {wdir} to {total / 2 ** 20:.2f} "
                            f"MiB, over its {budget / 2 ** 20:.0f} MiB budget")
    return {"writes": {k: str(v) for k, v in writes.items()}, "deletes": deletes,
            "evict": evict, "mib_after": round(total / 2 ** 20, 2)}


def changed_since(wdir: Path, snapshot: dict[str, str]) -> list[str]:
    """Top-level files of ``wdir`` added, changed or removed since ``snapshot``."""
    now_files = top_files(wdir)
    out = [rel for rel, h in snapshot.items()
           if rel not in now_files or sha256_file(now_files[rel]) != h]
    return sorted(out + [rel for rel in now_files if rel not in snapshot])


def _copy_durably(src: Path, dst: Path, made: list[Path]) -> None:
    """Copy and fsync ``src`` to ``dst``; folders it had to create go into ``made`` (deepest
    first), for a failed install to remove."""
    made += [d for d in (dst.parent, *dst.parent.parents) if not d.exists()]
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())


def install(wdir: Path, todo: dict, journal: Path) -> dict:
    """Carry out a :func:`plan` in ``wdir`` all or nothing (see the module); returns it."""
    temps: list[tuple[str, str]] = []
    made: list[Path] = []
    try:
        for rel, src in todo["writes"].items():
            dest = wdir / rel
            tmp = dest.with_name(f".{dest.name}{TMP}")
            _copy_durably(Path(src), tmp, made)
            temps.append((str(tmp), str(dest)))
    except BaseException as exc:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        for rel in todo["writes"]:  # the one being copied when it failed
            (wdir / rel).with_name(f".{Path(rel).name}{TMP}").unlink(missing_ok=True)
        for d in made:  # the new frozen generation's folders
            try:
                d.rmdir()
            except OSError:
                pass
        if isinstance(exc, Exception):
            raise CampaignError(f"install failed before anything changed in {wdir}: {exc}") \
                from exc
        raise
    doc = {"renames": temps, "deletes": [str(wdir / r) for r in todo["deletes"]],
           "evict": [str(wdir / r) for r in todo["evict"]], "started": now()}
    tmp_journal = journal.with_name(journal.name + ".tmp")
    tmp_journal.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp_journal, journal)
    return finish(journal)


def finish(journal: Path) -> dict:
    """Apply (or finish applying) the journal of an install; removes it when done."""
    doc = json.loads(journal.read_text())
    for tmp, dest in doc["renames"]:
        if Path(tmp).is_file():
            os.replace(tmp, dest)
        elif not Path(dest).is_file():
            raise CampaignError(f"install journal {journal}: neither {tmp} nor {dest} exists")
    for f in doc["deletes"]:
        Path(f).unlink(missing_ok=True)
    for d in doc["evict"]:
        shutil.rmtree(d, ignore_errors=True)
    journal.unlink()
    return doc
