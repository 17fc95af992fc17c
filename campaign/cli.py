"""``tools/campaign.sh [--stage NAME] start|status|stop|export|seed|handoff|adopt``,
``tools/campaign.sh decay``, ``tools/campaign.sh release start|status|stop|install|abort`` and
``tools/campaign.sh cycle start|status|stop`` (=
``python -m campaign ...`` from the checkout); docs/training.md "The campaign", "Decay branch" and
"Release train"."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence

from lic_core.errors import LicError

from .base import DEFAULT_DIR, CampaignError
from .codec import DEFAULT_NAME, MIN_GAIN_PCT
from .stages import REGISTRY, open_stage


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/campaign.sh",
                                description="The CPU training campaign (docs/training.md).")
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="campaign folder (runs/campaign)")
    p.add_argument("--stage", choices=list(REGISTRY), default="codec",
                   help="codec (default) | diffusion (the diffusion decoder on frozen codec "
                        "latents) | hific (hific-small) | gan (the GAN decoder on frozen codec "
                        "latents) | finetune-<quantizer> (the decoder on that quantizer's real "
                        "latents); one stage trains at a time")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start or resume training in the background (niced)")
    s.add_argument("--data", help="training folders joined by ':' (default train:train_extra)")
    s.add_argument("--kodak", help="validation folder (default ../shared/data/kodak)")
    s.add_argument("--init", help="weights to start from when there is no checkpoint "
                                  "(default: the shipped weights; 'none' = from scratch)")
    s.add_argument("--recipe", help="replace the recipe: `lic train` flags in one string")
    s.add_argument("--nice", type=int, default=19)
    s.add_argument("--no-val", action="store_true", help="no periodic validation")
    s.add_argument("extra", nargs=argparse.REMAINDER, help="more `lic train` flags after --")
    sub.add_parser("status", help="one line: steps, CPU-hours, last validation")
    t = sub.add_parser("stop", help="checkpoint and stop")
    t.add_argument("--timeout", type=float, default=600.0)
    e = sub.add_parser("export", help="evaluate on Kodak and write weights + card + curve")
    e.add_argument("--name", default=None,
                   help=f"weights name (codec: {DEFAULT_NAME}; diffusion: <codec>-diffusion; "
                        "hific: the config's, hific-small)")
    e.add_argument("--eval-dir")
    e.add_argument("--eval-limit", type=int)
    e.add_argument("--install", action="store_true",
                   help="copy into the weights folder (and the RD JSON into "
                        "benchmarks/results/classical/) if it beats the shipped weights by "
                        f"≥ {MIN_GAIN_PCT} %% (diffusion, gan: if its LPIPS is below the MSE "
                        "decoder's at every slider point; hific: once the GAN stage began)")
    e.add_argument("--rates", default=None,
                   help="slider points of the decoder stages' Kodak table "
                        "(default 0,0.2,0.4,0.6,0.8,1)")
    e.add_argument("--force-install", action="store_true", help="install even if not better")
    e.add_argument("--weights-dir", help="where shipped weights live (default "
                                         "lic_core/assets/weights, or $LIC_WEIGHTS_DIR)")
    sd = sub.add_parser("seed", help="write the newest checkpoint as the committed "
                                     "seed (campaign/seeds/) that `start` continues when runs/ "
                                     "is lost")
    sd.add_argument("--to", help="seeds folder (default campaign/seeds, $LIC_CAMPAIGN_SEEDS_DIR)")
    h = sub.add_parser("handoff", help="write the newest weights as a small file for a device")
    h.add_argument("--from", dest="src", help="run folder or checkpoint (default the campaign's)")
    h.add_argument("--to", required=True)
    d = sub.add_parser("adopt", help="continue from weights trained on a device (handoff file)")
    d.add_argument("path")
    add_release_parser(sub)
    from .decay import DEFAULT_CPU_MIN, DEFAULT_FINAL_LR

    dc = sub.add_parser("decay", help="fork the codec's newest checkpoint into a learning-rate "
                                      "decay branch for this phase's export (--stage "
                                      "codec-decay status|stop|export follow it)")
    dc.add_argument("--cpu-min", type=float, default=DEFAULT_CPU_MIN,
                    help=f"training CPU-minutes of the branch ({DEFAULT_CPU_MIN:g})")
    dc.add_argument("--final-lr", type=float, default=DEFAULT_FINAL_LR,
                    help=f"the cosine's floor, a fraction of the peak ({DEFAULT_FINAL_LR:g})")
    dc.add_argument("--nice", type=int, default=19)
    add_cycle_parser(sub, DEFAULT_CPU_MIN, DEFAULT_FINAL_LR)
    return p


def add_cycle_parser(sub, decay_min: float, final_lr: float) -> None:
    """``cycle start|status|stop`` (campaign/cycle.py)."""
    c = sub.add_parser("cycle", help="end a phase unattended: stop the main line, decay "
                                     "branch, export, release when earned, resume the main line")
    cs = c.add_subparsers(dest="cycle_cmd", required=True)
    st = cs.add_parser("start", help="begin a cycle (or continue a stopped or failed one) in "
                                     "the background, niced")
    st.add_argument("--decay-min", type=float,
                    help=f"training CPU-minutes of the decay branch ({decay_min:g}; a continued "
                         "cycle keeps its own)")
    st.add_argument("--final-lr", type=float,
                    help=f"the decay's floor, a fraction of the peak ({final_lr:g})")
    st.add_argument("--no-release", action="store_true",
                    help="measure the decayed branch but do not release it")
    st.add_argument("--fresh", action="store_true",
                    help="begin a new cycle instead of continuing a stopped or failed one")
    st.add_argument("--nice", type=int, default=19)
    cs.add_parser("status", help="the cycle's phase and its running step")
    t = cs.add_parser("stop", help="stop the running step and the driver (resumable)")
    t.add_argument("--timeout", type=float, default=900.0)


def cycle_main(a) -> str:
    from .cycle import CycleDriver

    cycle = CycleDriver(a.dir)
    if a.cycle_cmd == "start":
        return cycle.start(a.decay_min, a.final_lr, release=not a.no_release, nice=a.nice,
                           fresh=a.fresh)
    if a.cycle_cmd == "status":
        return cycle.status()
    return cycle.stop(a.timeout)


def add_release_parser(sub) -> None:
    """``release start|status|stop|install|abort`` (campaign/release.py)."""
    from .release import BUDGETS, ORDER

    r = sub.add_parser("release", help="install new codec weights and re-derive every decoder "
                                       "that depends on them (docs/training.md, Release train)")
    rs = r.add_subparsers(dest="release_cmd", required=True)
    st = rs.add_parser("start", help="begin a release (or continue the one under way) in the "
                                     "background, niced")
    st.add_argument("--export", help="codec export to release (default runs/campaign/export/"
                                     "<name>.safetensors, written by `export`)")
    st.add_argument("--name", help=f"codec (default {DEFAULT_NAME})")
    st.add_argument("--force", action="store_true",
                    help="release an export that did not earn its install")
    st.add_argument("--budget", action="append", default=[], metavar="STAGE=MIN",
                    help="training CPU-minutes of a stage (defaults: " + ", ".join(
                        f"{k} {v:g}" for k, v in BUDGETS.items() if v) + ")")
    st.add_argument("--add", action="append", default=[], choices=ORDER,
                    help="re-derive a dependent that does not ship yet (finetune-deadzone)")
    st.add_argument("--skip", action="append", default=[], choices=ORDER,
                    help="do not re-derive a dependent (it is dropped, never left stale)")
    st.add_argument("--data", help="training folders joined by ':' (default train:train_extra)")
    st.add_argument("--kodak", help="measurement folder (default ../shared/data/kodak)")
    st.add_argument("--eval-limit", type=int, help="measure on the first N images only")
    st.add_argument("--rates", help="slider points of the measurements (default 0,0.2,…,1)")
    st.add_argument("--hold", action="store_true",
                    help="do not install at the end: wait for `release install`")
    st.add_argument("--weights-dir", help="the shipped weights folder (default "
                                          "lic_core/assets/weights, or $LIC_WEIGHTS_DIR)")
    st.add_argument("--max-steps", type=int, help="cap every stage's steps (smoke runs)")
    st.add_argument("--nice", type=int, default=19)
    rs.add_parser("status", help="the release's phase and every stage's")
    t = rs.add_parser("stop", help="checkpoint the running stage and stop (resumable)")
    t.add_argument("--timeout", type=float, default=900.0)
    i = rs.add_parser("install", help="install a measured release (all or nothing)")
    i.add_argument("--drop-unearned", action="store_true",
                   help="install without the dependents that did not earn their install")
    i.add_argument("--force", action="store_true",
                   help="install although the shipped folder changed since the release began")
    rs.add_parser("abort", help="discard a release that was not installed")


def release_main(a) -> str:
    from .release import ReleaseTrain

    train = ReleaseTrain(a.dir)
    if a.release_cmd == "start":
        budgets = {}
        for kv in a.budget:
            k, _, v = kv.partition("=")
            try:
                budgets[k] = float(v)
            except ValueError:
                raise CampaignError(f"--budget expects STAGE=MINUTES, got {kv!r}") from None
        return train.start(a.export, a.force, budgets, a.add, a.skip, a.name, a.data, a.kodak,
                           a.eval_limit, [float(u) for u in a.rates.split(",")] if a.rates
                           else None, a.hold, Path(a.weights_dir) if a.weights_dir else None,
                           nice=a.nice, max_steps=a.max_steps)
    if a.release_cmd == "status":
        return train.status()
    if a.release_cmd == "stop":
        return train.stop(a.timeout)
    if a.release_cmd == "install":
        return train.install(a.drop_unearned, a.force)
    return train.abort()


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        if a.cmd == "release":
            print(release_main(a))
            return 0
        if a.cmd == "cycle":
            print(cycle_main(a))
            return 0
        if a.cmd == "decay":
            branch = open_stage("codec-decay", a.dir)
            branch.cpu_min, branch.final_lr = a.cpu_min, a.final_lr
            print(branch.start(nice=a.nice, val=False))
            return 0
        stage = open_stage(a.stage, a.dir)
        if a.cmd == "start":
            extra = [x for x in (a.extra or []) if x != "--"]
            print(stage.start(a.data, a.kodak, a.init,
                              shlex.split(a.recipe) if a.recipe else None, extra, nice=a.nice,
                              val=not a.no_val))
        elif a.cmd == "status":
            print(stage.status())
        elif a.cmd == "stop":
            print(stage.stop(a.timeout))
        elif a.cmd == "seed":
            r = stage.seed(Path(a.to) if a.to else None)
            if r["installed"]:
                print(f"the installed {Path(r['path']).name} is the {stage.stage} seed (step "
                      f"{r['step']}, {r['cpu_hours']:.2f} CPU-h, {r['checkpoint']}); wrote its "
                      f"log {r['log']}: commit both")
            else:
                print(f"wrote the {stage.stage} seed {r['path']}: step {r['step']}, "
                      f"{r['cpu_hours']:.2f} CPU-h, {r['bytes'] / 1e6:.1f} MB (from "
                      f"{r['checkpoint']}); commit it with {Path(r['log']).name}")
        elif a.cmd in ("handoff", "adopt") and not hasattr(stage, a.cmd):
            raise CampaignError(f"{a.cmd} moves the codec's weights to and from a device; "
                                "the other stages do not have it yet")
        elif a.cmd == "handoff":
            r = stage.handoff(a.src, a.to)
            print(f"wrote {a.to}: step {r['step']}, {r['bytes'] / 1e6:.1f} MB")
        elif a.cmd == "adopt":
            print(stage.adopt(a.path))
        elif a.cmd == "export":
            us = [float(v) for v in a.rates.split(",")] if a.rates else None
            s = stage.export(a.name, a.eval_dir, a.eval_limit, us, a.install, a.force_install,
                             Path(a.weights_dir) if a.weights_dir else None)
            print("\n".join(stage.summary_lines(s)))
        return 0
    except LicError as exc:
        print(f"campaign: error: {exc}", file=sys.stderr)
        return 2
