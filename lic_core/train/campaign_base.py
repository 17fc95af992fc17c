"""The parts of the training campaign every stage shares (:mod:`.campaign` for the codec,
:mod:`.generative_campaign` for the diffusion and HiFiC stages): where it lives, one stage's files
and process, and how a stage is launched in the background."""
from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Optional

from ..errors import LicError
from ..paths import shared_dir, source_checkout

#: the campaign lives in a source checkout (its runs/ and benchmarks/results/), else here
ROOT = source_checkout() or Path.cwd()
SHARED = shared_dir() or Path(os.environ.get("LIC_SHARED_DIR") or ROOT.parent / "shared")
DEFAULT_DIR = ROOT / "runs" / "campaign"
CKPT_MINUTES = 8.0


class CampaignError(LicError):
    """The campaign cannot do what was asked (no checkpoint to export, already running...)."""


#: the stages of the campaign (one run folder each under the campaign folder): the codec, the
#: generative decoders (:mod:`.generative_campaign`; the GAN decoder, :mod:`.gan_campaign`) and
#: the decoder fine-tuned on each quantizer's real latents (:mod:`.finetune_campaign`)
FINETUNE_STAGES = ("finetune-round", "finetune-deadzone", "finetune-rdoq", "finetune-tcq")
STAGES = ("codec", "diffusion", "hific", "gan", *FINETUNE_STAGES)


class Campaign:
    """Paths and state of one stage of a campaign folder (the codec's files keep their names
    from before the stages existed: ``campaign.json``, ``pid``, ``train.out``)."""

    def __init__(self, root: Path | str = DEFAULT_DIR, stage: str = "codec") -> None:
        if stage not in STAGES:
            raise CampaignError(f"unknown campaign stage '{stage}' (choose {', '.join(STAGES)})")
        self.root = Path(root)
        self.stage = stage
        self.run_dir = self.root / stage
        if stage == "codec":
            self.state_file = self.root / "campaign.json"
            self.pid_file = self.root / "pid"
            self.out_file = self.root / "train.out"
        else:
            self.state_file = self.root / f"{stage}.json"
            self.pid_file = self.root / f"{stage}.pid"
            self.out_file = self.root / f"{stage}.out"
        self.export_dir = self.root / "export"

    def other_stages(self) -> list["Campaign"]:
        return [Campaign(self.root, s) for s in STAGES if s != self.stage]

    def refuse_if_another_runs(self) -> None:
        """Only one stage trains at a time (they share the CPUs and book CPU-hours)."""
        for o in self.other_stages():
            pid = o.pid()
            if pid:
                raise CampaignError(
                    f"the {o.stage} stage is running (pid {pid}); only one stage trains at a "
                    f"time: stop it first (tools/campaign.sh --stage {o.stage} stop)")

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict:
        if self.state_file.is_file():
            return json.loads(self.state_file.read_text())
        return {}

    def save_state(self, st: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(st, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def pid(self) -> Optional[int]:
        """The training process id when it is alive (and really ours), else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return None
        return pid if "lic_core.train" in cmd and str(self.run_dir) in cmd else None

    def log(self) -> list[dict]:
        from .learning_curve import read_log

        return read_log(self.run_dir / "log.jsonl")


#: the shipped weights folder's size budget (brief and issue 27: "at most 64 MiB"; a device run
#: uploads only the weights it trains, so the whole folder no longer has to fit one upload)
WEIGHTS_BUDGET_BYTES = 64 * 2 ** 20


def over_weights_budget(weights_dir: Path, incoming: list[Path],
                        budget: int = WEIGHTS_BUDGET_BYTES) -> Optional[str]:
    """None when copying ``incoming`` into ``weights_dir`` (replacing files of the same names)
    keeps the folder within ``budget`` bytes, else a one-line reason."""
    wdir = Path(weights_dir)
    now = {f.name: f.stat().st_size for f in wdir.iterdir() if f.is_file()} if wdir.is_dir() else {}
    after = dict(now)
    after.update({f.name: f.stat().st_size for f in incoming})
    total = sum(after.values())
    if total <= budget:
        return None
    return (f"installing would take {wdir} to {total / 2 ** 20:.2f} MiB, over its "
            f"{budget / 2 ** 20:.0f} MiB budget")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def training_inputs(st: dict, data: Optional[str],
                    kodak: Optional[str]) -> tuple[str, str]:
    """(training folders joined by os.pathsep, Kodak folder): the arguments, else the stage's
    saved state, else ../shared (train + train_extra, kodak); every training folder must exist."""
    data = data or st.get("data") or os.pathsep.join(
        str(SHARED / "data" / d) for d in ("train", "train_extra"))
    kodak = kodak or st.get("kodak") or str(SHARED / "data" / "kodak")
    for part in data.split(os.pathsep):
        if not Path(part).is_dir():
            raise CampaignError(f"training data folder not found: {part}")
    return data, kodak


def lower_autogroup(pid: int, nice: int) -> bool:
    """Give the process's scheduler autogroup the same nice value; True if it took.

    With ``kernel.sched_autogroup_enabled`` (the default on desktop and many server kernels)
    the CPU is shared fairly between *sessions* first and nice values only count inside a
    session. The campaign runs in its own session, so ``nice -n 19`` alone does not make it
    yield: measured here, a niced campaign kept a full core beside a foreground 2-thread job.
    Setting the autogroup's nice (``/proc/PID/autogroup``, sched(7)) restores the intent.
    """
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
        return True
    except OSError:  # no autogroups (other OS, kernel without it) or not permitted
        return False


def launch(c: Campaign, st: dict, cmd: list[str], how: str, nice: int) -> str:
    """Record the session in the state file and start ``cmd`` niced, in its own session, with
    its output appended to the stage's log; returns the one-line message."""
    sessions = st.setdefault("sessions", [])
    sessions.append({"started": _now(), "how": how, "host": os.uname().nodename})
    c.save_state(st)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    out = open(c.out_file, "ab")
    out.write(f"\n== {_now()} {how}\n$ {shlex.join(cmd)}\n".encode())
    out.flush()
    proc = subprocess.Popen(["nice", "-n", str(nice), *cmd], stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=ROOT, env=env, start_new_session=True)
    out.close()
    c.pid_file.write_text(f"{proc.pid}\n")
    lower_autogroup(proc.pid, nice)
    t0 = time.monotonic()  # until exec has happened, /proc shows the parent's command line
    while c.pid() is None and proc.poll() is None and time.monotonic() - t0 < 10.0:
        time.sleep(0.05)
    # `nice` execs the interpreter, so the pid is the training process itself
    name = "campaign" if c.stage == "codec" else f"{c.stage} stage"
    return f"{name} started (pid {proc.pid}, nice {nice}): {how}; log {c.out_file}"
