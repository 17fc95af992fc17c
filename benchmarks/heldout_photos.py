"""Held-out photos (issue 27): does ``lic eval`` on photos that are neither Kodak nor training
data give the same codec ordering as Kodak?

The photos are four lossless natural colour photographs that ship inside the scikit-image wheel
on PyPI (``skimage/data/``), so nothing is downloaded at run time and nothing is committed here:

* ``astronaut.png`` (512×512): Eileen Collins, NASA Great Images; public domain;
* ``chelsea.png`` (451×300): Chelsea the cat, CC0 by the photographer (Stefan van der Walt);
* ``coffee.png`` (600×400): a coffee cup, CC0 by the photographer (Rachel Michetti);
* ``motorcycle_left.png`` (741×500): the left view of the Middlebury 2014 stereo benchmark's
  Motorcycle scene, down-sampled ×4 by scikit-image.

(licences as the docstrings of ``skimage/data/_fetchers.py`` state them; ``skimage/data/README.txt``
has none.)

    python benchmarks/heldout_photos.py extract [--wheel scikit_image-*.whl] [--out DIR] [--force]
    nice -n 19 python benchmarks/heldout_photos.py run [--threads 1]

``extract`` copies the four PNGs, byte for byte when they are 8-bit RGB (a photo in another mode
is converted to RGB and the manifest says so), into ``runs/heldout/photos`` (git-ignored) with a
manifest ``heldout_source.json`` (scikit-image version, file names, sizes, SHA-256), from an
installed scikit-image or, with ``--wheel``, straight from a wheel file (zipfile; nothing is
installed). A file already there with other content is never overwritten without ``--force``.

``run`` checks the photos against the manifest, calls ``lic eval`` (its Python entry point,
``lic_core.cli.main``) with ``lic-lgem-cpu,jpeg,webp,avif,jxl`` at their default rate points and
``psnr,ms-ssim`` into ``runs/heldout/eval`` (one CompressAI-format JSON per codec), and writes
``benchmarks/results/heldout_photos.json``: the photos and their source, each codec's mean RD
points, the BD-rates (pchip, PSNR and MS-SSIM in dB) of the learned codec against every classical
codec over the quality range both curves cover — computed exactly as the model card's Kodak
BD-rates are (``campaign.learning_curve.reference_curve`` / ``rd_against`` over
``lic_core.evaluation.bdrate``) — per photo too, the codec ordering they imply, the same figures
on Kodak from the card's points and ``benchmarks/results/classical/*.json``, and the learned
codec's weights hash.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png")
LICENSES = {
    "astronaut.png": "NASA Great Images (Eileen Collins); no known copyright restrictions, "
                     "public domain",
    "chelsea.png": "CC0 by the photographer (Stefan van der Walt)",
    "coffee.png": "CC0 by the photographer (Rachel Michetti), courtesy of Pikolo Espresso Bar",
    "motorcycle_left.png": "Middlebury 2014 stereo benchmark (Scharstein et al., GCPR 2014), "
                           "down-sampled x4 by scikit-image; the wheel states no licence",
}
MANIFEST = "heldout_source.json"
DEFAULT_PHOTOS = ROOT / "runs" / "heldout" / "photos"
DEFAULT_EVAL = ROOT / "runs" / "heldout" / "eval"
DEFAULT_SUMMARY = ROOT / "benchmarks" / "results" / "heldout_photos.json"
KODAK_CLASSICAL = ROOT / "benchmarks" / "results" / "classical"
DEFAULT_CODECS = "lic-lgem-cpu,jpeg,webp,avif,jxl"
METRICS = ("psnr", "ms-ssim")
LIBRARIES = ("torch", "pillow", "pillow-avif-plugin", "pillow-jxl-plugin", "numpy", "scipy")


class HeldoutError(Exception):
    """A user error: one line on stderr, exit status 2."""


# ----------------------------------------------------------------------------- sources

def find_source(wheel: Optional[str]) -> dict:
    """Where the photos come from: ``{"kind": "wheel"|"installed", "version", "read": f(name)
    -> bytes, "where"}``. ``--wheel`` wins; else an installed scikit-image (found without
    importing it); else :class:`HeldoutError` with the install hint."""
    if wheel:
        return _wheel_source(Path(wheel))
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.origin:
        data = Path(spec.origin).parent / "data"
        if all((data / n).is_file() for n in PHOTOS):
            from importlib.metadata import PackageNotFoundError, version

            try:
                ver = version("scikit-image")
            except PackageNotFoundError:
                ver = None
            return {"kind": "installed", "where": str(data), "version": ver,
                    "read": lambda n: (data / n).read_bytes()}
    raise HeldoutError("no scikit-image photos: pip install scikit-image (or give --wheel PATH "
                       "to a scikit-image wheel file)")


def _wheel_source(path: Path) -> dict:
    if not path.is_file():
        raise HeldoutError(f"--wheel: no such file: '{path}'")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HeldoutError(f"--wheel: '{path}' is not a wheel (zip) file: {exc}") from None
    names = set(z.namelist())
    missing = [n for n in PHOTOS if f"skimage/data/{n}" not in names]
    if missing:
        raise HeldoutError(f"--wheel: '{path.name}' has no skimage/data/{missing[0]} "
                           "(not a scikit-image wheel with its sample data?)")
    ver = None
    for n in names:  # <name>-<version>.dist-info/METADATA
        if n.endswith(".dist-info/METADATA"):
            for line in z.read(n).decode("utf-8", "replace").splitlines():
                if line.startswith("Version:"):
                    ver = line.split(":", 1)[1].strip()
                    break
    return {"kind": "wheel", "where": str(path.resolve()), "wheel": path.name, "version": ver,
            "read": lambda n: z.read(f"skimage/data/{n}")}


def as_rgb_png(data: bytes) -> tuple[bytes, dict]:
    """The photo as an 8-bit RGB PNG: the same bytes when it already is one, else converted
    (``info["converted_from"]`` names the mode it had)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        info = {"width": im.width, "height": im.height, "mode": im.mode, "format": im.format}
        if im.mode == "RGB" and im.format == "PNG":
            return data, info
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "PNG")
    info["converted_from"] = f"{info['format']} {info['mode']}"
    info["mode"], info["format"] = "RGB", "PNG"
    return buf.getvalue(), info


def _write(path: Path, data: bytes, force: bool) -> str:
    """Atomic write; "unchanged" when the same bytes are already there; refuses other content
    without ``force``."""
    from lic_core.fileio import write_bytes_atomic

    if path.is_file() and path.read_bytes() == data:
        return "unchanged"
    if path.exists() and not force:
        raise HeldoutError(f"'{path}' exists with other content; --force overwrites it")
    write_bytes_atomic(path, data, overwrite=force)
    return "written"


def extract(out: Path, wheel: Optional[str] = None, force: bool = False,
            say=print) -> dict:
    """Put the four photos and the manifest into ``out``; returns the manifest."""
    src = find_source(wheel)
    out.mkdir(parents=True, exist_ok=True)
    photos = []
    for name in PHOTOS:
        raw = src["read"](name)
        data, info = as_rgb_png(raw)
        state = _write(out / name, data, force)
        rec = {"name": name, "source_file": f"skimage/data/{name}", "source_bytes": len(raw),
               "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
               "width": info["width"], "height": info["height"],
               "pixels": info["width"] * info["height"], "license": LICENSES[name]}
        if "converted_from" in info:
            rec["converted_from"] = info["converted_from"]
            say(f"{name}: converted from {info['converted_from']} to 8-bit RGB PNG")
        photos.append(rec)
        say(f"{name:20s} {info['width']}x{info['height']}  {len(data):7d} bytes  {state}")
    manifest = {"source": {"package": "scikit-image", "version": src["version"],
                           "kind": src["kind"], "where": src["where"],
                           **({"wheel": src["wheel"]} if "wheel" in src else {})},
                "photos": photos}
    text = json.dumps(manifest, indent=2) + "\n"
    mpath = out / MANIFEST
    # ours when it has our keys (then brought up to date); any other file there is the user's
    old = None
    if mpath.is_file():
        try:
            old = json.loads(mpath.read_text())
        except ValueError:
            old = None
        if not (isinstance(old, dict) and {"source", "photos"} <= set(old)) and not force:
            raise HeldoutError(f"'{mpath}' exists and is not this script's manifest; "
                               "--force overwrites it")
    if old != manifest:
        from lic_core.fileio import write_bytes_atomic

        write_bytes_atomic(mpath, text.encode(), overwrite=True)
    say(f"scikit-image {src['version']} ({src['kind']}: {src['where']}) -> {out}")
    return manifest


# ----------------------------------------------------------------------------- BD-rates

def curve_points(result_json: Path, images: Optional[Sequence[str]] = None) -> list[dict]:
    """A ``lic eval`` result file as a card's points ``[{bpp, psnr, ms_ssim}]``: the means over
    ``images`` per rate point when given (as ``reference_curve`` averages them), else the
    file's own means."""
    from campaign.learning_curve import METRIC_KEYS

    d = json.loads(Path(result_json).read_text())
    if images:
        rows = [d["per_image"][n] for n in images]
        res = {k: [sum(r[k][i] for r in rows) / len(rows) for i in range(len(rows[0]["bpp"]))]
               for k in rows[0]}
    else:
        res = d["results"]
    pts = []
    for i, b in enumerate(res["bpp"]):
        p = {"bpp": b}
        for m in METRICS:
            src, dst = METRIC_KEYS[m]
            if src in res:
                p[dst] = res[src][i]
        pts.append(p)
    return pts


def bd(points: Sequence[dict], ref: Sequence[dict], metric: str) -> dict:
    """``{"bd_rate", "bd_quality", "overlap_db"}`` of the curve ``points`` against the curve
    ``ref`` (both ``[{bpp, psnr, ms_ssim}]``) on ``metric`` (PSNR dB, or MS-SSIM in dB): the
    campaign's model-card computation (``campaign.learning_curve.rd_against`` over
    ``lic_core.evaluation.bdrate``); ``overlap_db`` is the quality range both curves cover,
    the range BD-rate integrates over."""
    from campaign.learning_curve import METRIC_KEYS, quality_axis, rd_against

    key = METRIC_KEYS[metric][1]
    rq = quality_axis(metric, [p[key] for p in ref])
    out = rd_against(points, ([p["bpp"] for p in ref], rq), metric)
    q = quality_axis(metric, [p[key] for p in points])
    lo, hi = max(min(q), min(rq)), min(max(q), max(rq))
    return {"bd_rate": out["bd_rate"], "bd_quality": out["bd_psnr"],
            "overlap_db": [lo, hi] if hi > lo else None}


def ordering(bd_rates: dict, test: str) -> list[str]:
    """Codecs best first, by the test codec's BD-rate against each: a reference ``r`` with
    BD-rate ``b`` (test vs r) needs about 1/(1 + b/100) of the test codec's bits at equal
    quality, so a higher ``b`` ranks ``r`` higher; the test codec sits at 0. References
    without a BD-rate are left out. (Two references are ranked against each other through the
    test codec, each over its own overlap: ``pairwise`` compares them directly.)"""
    rows = [(0.0, test)] + [(float(v), k) for k, v in bd_rates.items() if v is not None]
    return [name for _, name in sorted(rows, key=lambda t: -t[0])]


def position(bd_rates: dict) -> dict:
    """Which references beat the test codec (BD-rate > 0) and which it beats (< 0)."""
    return {"better_than_test": sorted(k for k, v in bd_rates.items() if v is not None and v > 0),
            "worse_than_test": sorted(k for k, v in bd_rates.items()
                                      if v is not None and v <= 0)}


def pairwise(curves: dict[str, list[dict]], metric: str) -> dict:
    """``{a: {b: BD-rate of a vs b}}`` for every pair of curves (None where undefined)."""
    return {a: {b: bd(pa, pb, metric)["bd_rate"] for b, pb in curves.items() if b != a}
            for a, pa in curves.items()}


def analyse(curves: dict[str, list[dict]], test: str) -> dict:
    """BD-rates of ``test`` vs every other curve, the ordering and position they imply, and
    every pair's BD-rate, on both metrics."""
    refs = [c for c in curves if c != test]
    res = {m: {r: bd(curves[test], curves[r], m) for r in refs} for m in METRICS}
    out = {"bd_rate": {m: {r: v["bd_rate"] for r, v in res[m].items()} for m in METRICS},
           "bd_quality_db": {m: {r: v["bd_quality"] for r, v in res[m].items()}
                             for m in METRICS},
           "overlap_db": {m: {r: v["overlap_db"] for r, v in res[m].items()} for m in METRICS}}
    out["ordering"] = {m: ordering(out["bd_rate"][m], test) for m in METRICS}
    out["position"] = {m: position(out["bd_rate"][m]) for m in METRICS}
    out["pairwise_bd_rate"] = {m: pairwise(curves, m) for m in METRICS}
    return out


def summarize(eval_dir: Path, codecs: Sequence[str], test: str, photos: Sequence[str],
              card: Optional[dict] = None, kodak_classical: Path = KODAK_CLASSICAL) -> dict:
    """Everything the summary says about the measured curves (reads only the result files)."""
    files = {c: eval_dir / f"{c}.json" for c in codecs}
    rd = {}
    for c, f in files.items():
        d = json.loads(f.read_text())
        res = d["results"]
        rd[c] = {"rate": res.get("rate"), "bpp": res["bpp"], "psnr": res["psnr-rgb"],
                 "ms_ssim": res.get("ms-ssim-rgb"), "images": d["meta"].get("images")}
    out = {"rd_points": rd, **analyse({c: curve_points(f) for c, f in files.items()}, test)}
    per = {p: analyse({c: curve_points(f, [p]) for c, f in files.items()}, test)
           for p in photos}
    out["per_photo"] = {p: {k: a[k] for k in ("bd_rate", "ordering", "position")}
                        for p, a in per.items()}
    if card is not None and (card.get("eval") or {}).get("points"):
        kc = {test: card["eval"]["points"]}
        kc.update({c: curve_points(kodak_classical / f"{c}.json") for c in codecs
                   if c != test and (kodak_classical / f"{c}.json").is_file()})
        k = {"images": card["eval"].get("images"),
             "source": f"{test}: its model card's points; classical: "
                       "benchmarks/results/classical/<codec>.json (lic eval, all 24 images)",
             **analyse(kc, test),
             "card_bd_rate": {"psnr": card.get("bd_rate"), "ms-ssim": card.get("bd_rate_msssim")}}
        out["kodak"] = k
        out["same_as_kodak"] = {
            m: {"ordering": out["ordering"][m] == k["ordering"][m],
                "position": out["position"][m] == k["position"][m]} for m in METRICS}
    return out


# ----------------------------------------------------------------------------- run

def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in LIBRARIES:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


def check_photos(folder: Path) -> dict:
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise HeldoutError(f"no {MANIFEST} in '{folder}': run `python benchmarks/"
                           "heldout_photos.py extract` first")
    manifest = json.loads(mpath.read_text())
    for p in manifest["photos"]:
        f = folder / p["name"]
        if not f.is_file() or hashlib.sha256(f.read_bytes()).hexdigest() != p["sha256"]:
            raise HeldoutError(f"'{f}' is missing or differs from {MANIFEST}; extract again")
    return manifest


def run(photos_dir: Path, eval_dir: Path, summary_path: Path, codecs: Sequence[str],
        test: str, threads: int, no_cache: bool = False) -> dict:
    manifest = check_photos(photos_dir)
    from lic_core.cli import main as lic_main

    argv = ["--threads", str(threads), "eval", str(photos_dir), "--codecs", ",".join(codecs),
            "--metrics", ",".join(METRICS), "--out", str(eval_dir), "--jobs", "1", "--quiet"]
    if no_cache:
        argv.append("--no-cache")
    print("lic " + " ".join(argv), flush=True)
    t0 = time.perf_counter()
    c0 = time.process_time()
    rc = lic_main(argv)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if rc != 0:
        raise HeldoutError(f"lic eval failed (exit status {rc})")

    from lic_core.codecs.registry import get_codec
    from lic_core.paths import weights_path
    from lic_core.weights import read_weights_hash

    desc = get_codec(test).describe()
    file_hash = read_weights_hash(weights_path(test)) if weights_path(test).is_file() else None
    names = [p["name"] for p in manifest["photos"]]
    body = summarize(eval_dir, codecs, test, names, card=desc)
    doc = {
        "what": "lic eval on held-out photos (neither Kodak nor training data): BD-rate of the "
                "learned codec vs each classical codec, and the ordering it implies (issue 27)",
        "command": "nice -n 19 python benchmarks/heldout_photos.py run --threads "
                   f"{threads}  (runs: lic {' '.join(argv)})",
        "photos": manifest["photos"], "source": manifest["source"],
        "codecs": list(codecs), "test_codec": test,
        "weights_hash": {"card": desc.get("weights_hash"), "weights_file": file_hash},
        "metrics": list(METRICS),
        "bd_method": "pchip over the overlapping quality range (lic_core.evaluation.bdrate via "
                     "campaign.learning_curve.rd_against, as the model card's Kodak BD-rates); "
                     "MS-SSIM in dB (-10 log10(1 - MS-SSIM) of the mean MS-SSIM per point); "
                     "negative = the test codec needs fewer bits",
        "ordering_note": "best first; a codec r ranks above the test codec when BD-rate(test vs "
                         "r) > 0 (the test codec needs more bits than r at equal quality)",
        **body,
        "eval_wall_s": round(wall, 1), "eval_process_cpu_s": round(cpu, 1),
        "threads": threads, "cache": "off" if no_cache else "on (points already measured in "
                                                             "the eval folder were reused)",
        "libraries": _versions(),
        "date": time.strftime("%Y-%m-%d"),
    }
    from lic_core.fileio import write_bytes_atomic

    summary_path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(summary_path, (json.dumps(doc, indent=2) + "\n").encode(), overwrite=True)
    print_table(doc)
    print(f"wrote {summary_path}  (lic eval: {wall:.0f} s wall, {cpu:.0f} s CPU)")
    return doc


def _rng(v) -> str:
    v = [x for x in (v or []) if x is not None]
    return f"{min(v):.3f}-{max(v):.3f}" if v else "n/a"


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:+.1f} %"


def print_table(doc: dict) -> None:
    test = doc["test_codec"]
    print(f"\nheld-out photos: {', '.join(p['name'] for p in doc['photos'])} "
          f"(scikit-image {doc['source']['version']}); {test} weights "
          f"{doc['weights_hash']['card']}")
    print(f"{'codec':14s} {'pts':>3s} {'bpp':>13s} {'PSNR dB':>13s} {'MS-SSIM':>13s}")
    for c, r in doc["rd_points"].items():
        print(f"{c:14s} {len(r['bpp']):3d} {_rng(r['bpp']):>13s} {_rng(r['psnr']):>13s} "
              f"{_rng(r['ms_ssim']):>13s}")
    kodak = doc.get("kodak", {}).get("bd_rate", {})
    print(f"\nBD-rate of {test} vs   {'PSNR':>9s} {'MS-SSIM':>9s}   "
          f"{'Kodak PSNR':>10s} {'Kodak MS-SSIM':>13s}")
    for r in doc["bd_rate"]["psnr"]:
        print(f"{r:22s} {_pct(doc['bd_rate']['psnr'][r]):>9s} "
              f"{_pct(doc['bd_rate']['ms-ssim'][r]):>9s}   "
              f"{_pct(kodak.get('psnr', {}).get(r)):>10s} "
              f"{_pct(kodak.get('ms-ssim', {}).get(r)):>13s}")
    for m in METRICS:
        k = doc.get("kodak", {}).get("ordering", {}).get(m)
        same = doc.get("same_as_kodak", {}).get(m, {})
        print(f"ordering ({m}): {' > '.join(doc['ordering'][m])}"
              + (f"   Kodak: {' > '.join(k)}" if k else ""))
        if same:
            print(f"    vs Kodak: ordering {'same' if same['ordering'] else 'DIFFERENT'}, "
                  f"codecs above/below {test} {'same' if same['position'] else 'DIFFERENT'}")
    for m in METRICS:
        pw = doc["pairwise_bd_rate"][m]
        kpw = doc.get("kodak", {}).get("pairwise_bd_rate", {}).get(m, {})
        names = list(pw)
        print(f"\npairwise BD-rate ({m}) of row vs column, held-out [Kodak]")
        print(" " * 14 + "".join(f"{n:>20s}" for n in names))
        for a in names:
            cells = []
            for b in names:
                if a == b:
                    cells.append("")
                    continue
                kv = kpw.get(a, {}).get(b)
                cells.append(_pct(pw[a][b]) + (f" [{_pct(kv)}]" if kpw else ""))
            print(f"{a:14s}" + "".join(f"{c:>20s}" for c in cells))


# ----------------------------------------------------------------------------- CLI

def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract", help="copy the four photos out of scikit-image")
    ex.add_argument("--wheel", default=None, metavar="PATH",
                    help="a scikit-image wheel file to read them from (no install)")
    ex.add_argument("--out", default=str(DEFAULT_PHOTOS), help="default runs/heldout/photos")
    ex.add_argument("--force", action="store_true", help="overwrite files with other content")
    rn = sub.add_parser("run", help="lic eval on the photos + the summary JSON")
    rn.add_argument("--photos", default=str(DEFAULT_PHOTOS))
    rn.add_argument("--eval-dir", default=str(DEFAULT_EVAL), help="lic eval's --out")
    rn.add_argument("--summary", default=str(DEFAULT_SUMMARY))
    rn.add_argument("--codecs", default=DEFAULT_CODECS)
    rn.add_argument("--test", default=None, help="the codec compared (default: the first)")
    rn.add_argument("--threads", type=int, default=1)
    rn.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "extract":
            extract(Path(args.out), args.wheel, args.force)
        else:
            codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
            test = args.test or codecs[0]
            if test not in codecs or len(codecs) < 2:
                raise HeldoutError("--codecs must name the --test codec and at least one other")
            run(Path(args.photos), Path(args.eval_dir), Path(args.summary), codecs, test,
                args.threads, args.no_cache)
    except HeldoutError as exc:
        print(f"heldout_photos: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # lic_core's one-line user errors (LicError)
        from lic_core.errors import LicError

        if isinstance(exc, LicError):
            print(f"heldout_photos: error: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
