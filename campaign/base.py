"""What every stage of the training campaign shares: where it lives, one stage's files and
process, how a stage is launched in the background, and the :class:`Stage` interface
(start / status / stop / export / release / seed) each stage implements.

The campaign is a tool of this repository (beside ``tools/`` and ``benchmarks/``), not part of
the installed package: it knows the checkout (``runs/``, ``benchmarks/results/``, the committed
seeds in ``campaign/seeds/``) and launches ``lic_core``'s trainers (``python -m lic_core.train
STAGE``, :mod:`lic_core.train.stages`) as niced background processes.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional, Sequence

from lic_core.errors import LicError
from lic_core.paths import shared_dir
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

from .learning_curve import read_log, render_xy

#: the checkout this package lives in (its runs/ and benchmarks/results/)
ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_dir() or Path(os.environ.get("LIC_SHARED_DIR") or ROOT.parent / "shared")
DEFAULT_DIR = ROOT / "runs" / "campaign"
CKPT_MINUTES = 8.0
#: default slider points of the decoder stages' Kodak measurements
EVAL_US = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: the files an export writes and an install copies, beside ``NAME.safetensors``
EXPORT_SUFFIXES = (".safetensors", ".json", ".md", ".curve.png")
#: the shipped weights folder's size budget (brief and issue 27: "at most 64 MiB"; a device run
#: uploads only the weights it trains, so the whole folder no longer has to fit one upload)
WEIGHTS_BUDGET_BYTES = 64 * 2 ** 20


class CampaignError(LicError):
    """The campaign cannot do what was asked (no checkpoint to export, already running...)."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Campaign:
    """Paths and state of one stage of a campaign folder (the codec's files keep their names
    from before the stages existed: ``campaign.json``, ``pid``, ``train.out``)."""

    def __init__(self, root: Path | str = DEFAULT_DIR, stage: str = "codec") -> None:
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
        return _alive(self.pid_file, self.run_dir)

    def log(self) -> list[dict]:
        return read_log(self.run_dir / "log.jsonl")

    def running_stages(self) -> list[tuple[str, int]]:
        """(stage, pid) of every *other* stage of this campaign folder whose process is alive
        (found by their pid files: ``pid`` for the codec, ``<stage>.pid`` for the others)."""
        if not self.root.is_dir():
            return []
        out = []
        for f in sorted(self.root.glob("*.pid")) + [self.root / "pid"]:
            stage = "codec" if f.name == "pid" else f.stem
            if stage == self.stage or not f.is_file():
                continue
            pid = _alive(f, self.root / stage)
            if pid and not (stage == "cycle" and str(pid) == os.environ.get(CYCLE_ENV)):
                out.append((stage, pid))  # (the cycle's own steps do not count it: .cycle)
        if self.stage != "release" and not any(s == "release" for s, _ in out):
            for f in sorted((self.root / "release").glob("*.pid")):  # a release's own stage
                pid = _alive(f, self.root / "release" / f.stem)  # (its driver may be gone)
                if pid:
                    out.append(("release", pid))
        return out

    def refuse_if_another_runs(self) -> None:
        """Only one stage trains at a time (they share the CPUs and book CPU-hours); the release
        train (:mod:`.release`) and the cycle (:mod:`.cycle`) count as one: they run the other
        stages themselves."""
        for stage, pid in self.running_stages():
            how = (f"{stage} stop" if stage in ("release", "cycle")
                   else f"--stage {stage} stop")
            raise CampaignError(
                f"the {stage} stage is running (pid {pid}); only one stage trains at a "
                f"time: stop it first (tools/campaign.sh {how})")


#: what names a campaign process on its command line: a trainer, or the release train's driver
PROCESS_MARKERS = ("lic_core.train", "campaign.release", "campaign.cycle")
#: names the running cycle driver's pid to the steps it starts (:mod:`.cycle`), which do not
#: count it as another job
CYCLE_ENV = "LIC_CAMPAIGN_CYCLE"


def _command_line(pid: int) -> Optional[str]:
    """The command line of live process ``pid``; None when it is gone or a zombie.

    While a process is inside ``execve`` (here: ``nice`` exec-ing the interpreter) the kernel
    has swapped in the new address space before it writes the arguments into it, so
    ``/proc/PID/cmdline`` reads empty for a moment; a stage polled in that window would look
    stopped. An empty command line of a process that is not a zombie is therefore read again
    (for up to half a second) rather than taken as "not ours"."""
    for _ in range(50):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        if state == "Z":
            return None
        if cmd:
            return cmd.replace(b"\0", b" ").decode(errors="replace")
        time.sleep(0.01)
    return None


def _alive(pid_file: Path, run_dir: Path) -> Optional[int]:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    cmd = _command_line(pid)
    if cmd is None:
        return None
    return pid if any(m in cmd for m in PROCESS_MARKERS) and str(run_dir) in cmd else None


class Stage(Campaign):
    """One stage of the campaign. Subclasses set :attr:`name` (or pass it) and implement
    :meth:`launch_command` (what ``start`` runs), :meth:`status`, :meth:`measure` (the export)
    and, when they can, :meth:`seed`; :meth:`export` = :meth:`measure` then, with ``install``,
    :meth:`release`."""

    name = ""
    #: what ``status``/``stop`` call it
    label = ""
    #: an install is refused when it would take the weights folder over its budget
    budget_checked = True

    def __init__(self, root: Path | str = DEFAULT_DIR, name: Optional[str] = None) -> None:
        super().__init__(root, name or self.name)
        self.label = self.label or f"{self.stage} stage"

    # -- start / stop ---------------------------------------------------------------------
    def start(self, data: Optional[str] = None, kodak: Optional[str] = None,
              init: Optional[str] = None, recipe: Optional[Sequence[str]] = None,
              extra: Sequence[str] = (), nice: int = 19, val: bool = True) -> str:
        """Start (or resume) the stage in the background; returns a one-line message."""
        pid = self.pid()
        if pid:
            return f"{self.label} already running (pid {pid}); `status` to follow it"
        self.refuse_if_another_runs()
        st = self.state()
        cmd, how = self.launch_command(st, data=data, kodak=kodak, init=init, recipe=recipe,
                                       extra=list(extra), val=val)
        return launch(self, st, cmd, how, nice)

    def launch_command(self, st: dict, *, data, kodak, init, recipe, extra,
                       val) -> tuple[list[str], str]:
        """(the trainer's command line, how it starts) — ``st`` (the state) is updated in place
        and saved by :func:`launch`."""
        raise NotImplementedError

    def stop(self, timeout: float = 600.0) -> str:
        """SIGTERM the training process and wait until it has checkpointed and exited."""
        pid = self.pid()
        if not pid:
            return f"{self.label} not running"
        os.kill(pid, signal.SIGTERM)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.pid() is None:
                break
            time.sleep(0.5)
        else:
            raise CampaignError(f"training process {pid} did not stop within {timeout:.0f} s")
        ck = latest_checkpoint(self.run_dir)
        return f"{self.label} stopped; newest checkpoint {ck.name if ck else 'none'}"

    def status(self) -> str:
        raise NotImplementedError

    def state_word(self) -> str:
        pid = self.pid()
        return f"running (pid {pid})" if pid else "stopped"

    # -- export / release / seed ----------------------------------------------------------
    def newest_checkpoint(self, kind: Optional[str] = None, what: str = "") -> tuple[Path, dict]:
        """(path, contents) of the run's newest checkpoint; refuses none, or one of another
        ``kind``."""
        path = latest_checkpoint(self.run_dir)
        if path is None:
            raise CampaignError(f"no checkpoint in {self.run_dir}; "
                                f"`--stage {self.stage} start` first")
        ck = load_checkpoint(path)
        if kind is not None and ck.get("kind") != kind:
            raise CampaignError(f"{path} is not a {what or kind} checkpoint")
        return path, ck

    def kodak(self, eval_dir: Optional[str] = None) -> str:
        d = eval_dir or self.state().get("kodak") or str(SHARED / "data" / "kodak")
        if not Path(d).is_dir():
            raise CampaignError(f"Kodak folder not found: {d}")
        return d

    def measure(self, name: Optional[str] = None, eval_dir: Optional[str] = None,
                eval_limit: Optional[int] = None, us: Optional[Sequence[float]] = None,
                progress=None) -> dict:
        """Export the newest checkpoint into ``export/`` and measure it on Kodak; returns a
        summary with ``earned`` (whether it may be installed) and ``why_not_earned``."""
        raise NotImplementedError

    def release(self, s: dict, weights_dir: Optional[Path] = None,
                force: bool = False) -> dict:
        """Install an export (``s`` from :meth:`measure`) into the weights folder when it
        earned it (``force``: anyway) and the folder's budget allows; updates and returns
        ``s`` (``installed``, ``installed_into`` or ``why_not``)."""
        from lic_core.paths import weights_dir as default_weights_dir

        wdir = Path(weights_dir) if weights_dir else default_weights_dir()
        files = [Path(s["files"]) / f"{s['name']}{x}" for x in EXPORT_SUFFIXES]
        over = over_weights_budget(wdir, [f for f in files if f.is_file()]) \
            if self.budget_checked else None
        if not (s["earned"] or force):
            s.update(installed=False, why_not=s["why_not_earned"])
        elif over:
            s.update(installed=False, why_not=over)
        else:
            wdir.mkdir(parents=True, exist_ok=True)
            for f in files:
                if f.is_file():
                    shutil.copy2(f, wdir / f.name)
            s.update(installed=True, installed_into=str(wdir))
            self.installed(s, wdir)
        return s

    def installed(self, s: dict, wdir: Path) -> None:
        """What else an install does (the codec: results JSON, retiring stale decoders)."""

    def export(self, name: Optional[str] = None, eval_dir: Optional[str] = None,
               eval_limit: Optional[int] = None, us: Optional[Sequence[float]] = None,
               install: bool = False, force_install: bool = False,
               weights_dir: Optional[Path] = None, progress=None) -> dict:
        """``measure`` the newest checkpoint, then with ``install`` :meth:`release` it."""
        s = self.measure(name, eval_dir, eval_limit, us, progress)
        if install:
            self.release(s, weights_dir, force_install)
        return s

    def summary_lines(self, s: dict) -> list[str]:
        """What ``export`` prints."""
        card = s["card"]
        lines = [f"exported {s['name']} ({card['total_steps']} steps, "
                 f"{card['cpu_hours']:.2f} CPU-h) → {s['files']}", f"  {card['status']}"]
        return lines + self.more_summary(s) + install_lines(s)

    def more_summary(self, s: dict) -> list[str]:
        return []

    def seed(self, folder: Optional[Path] = None) -> dict:
        """Write the newest checkpoint as the committed seed ``start`` continues when ``runs/``
        is lost (:mod:`.seeds`; the stages that have one override this)."""
        raise CampaignError(f"the {self.stage} stage has no seed yet; its progress lives in "
                            "runs/ only")


def install_lines(s: dict) -> list[str]:
    if "installed" not in s:
        return []
    return [f"  installed into {s['installed_into']}" if s["installed"]
            else f"  NOT installed: {s['why_not']}"]


def over_weights_budget(weights_dir: Path, incoming: list[Path],
                        budget: int = WEIGHTS_BUDGET_BYTES) -> Optional[str]:
    """None when copying ``incoming`` into ``weights_dir`` (replacing files of the same names)
    keeps the folder within ``budget`` bytes, else a one-line reason. The folder's size counts
    its sub-folders too (``frozen/``: weights a release replaced, :mod:`lic_core.codecs.frozen`)."""
    wdir = Path(weights_dir)
    current = {str(f.relative_to(wdir)): f.stat().st_size for f in wdir.rglob("*")
               if f.is_file()} if wdir.is_dir() else {}
    after = dict(current)
    after.update({f.name: f.stat().st_size for f in incoming})
    total = sum(after.values())
    if total <= budget:
        return None
    return (f"installing would take {wdir} to {total / 2 ** 20:.2f} MiB, over its "
            f"{budget / 2 ** 20:.0f} MiB budget")


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


def flag(recipe: Sequence[str], name: str, default: Optional[str] = None) -> Optional[str]:
    """The value of the last ``name`` flag in a recipe (None/default when absent)."""
    val = default
    for i, tok in enumerate(recipe[:-1]):
        if tok == name:
            val = recipe[i + 1]
    return val


def set_flag(recipe: Sequence[str], name: str, value: str) -> list[str]:
    """A copy of a recipe with the last ``name`` flag (the one :func:`flag` reads) set to
    ``value``, or ``name value`` appended when it has none."""
    out = list(recipe)
    for i in range(len(out) - 2, -1, -1):
        if out[i] == name:
            out[i + 1] = value
            return out
    return out + [name, value]


def shipped_codec_hash(name: str) -> Optional[str]:
    """The ``weights_hash`` in the metadata of the shipped codec weights ``name`` (read without
    the tensors), or None."""
    from safetensors import safe_open

    from lic_core.paths import weights_path

    p = weights_path(name)
    if not p.is_file():
        return None
    try:
        with safe_open(str(p), framework="pt") as f:
            return (f.metadata() or {}).get("weights_hash")
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the trainer itself
        return None


def stage_cpu_hours(root: Path | str, stage: str) -> float:
    """Training CPU-hours a stage has booked so far (its log's newest ``cpu_s``; 0 if none)."""
    recs = read_log(Path(root) / stage / "log.jsonl")
    return max((float(r.get("cpu_s", 0.0)) for r in recs), default=0.0) / 3600.0


def train_records(c: Campaign) -> list[dict]:
    return [r for r in c.log() if r.get("type") == "train" or ("loss" in r and "type" not in r)]


def loss_curve(c: Campaign, path: Path, title: str) -> Path:
    """Training loss (moving mean of the logged values) over cumulative CPU-hours."""
    xs, ys, window = [], [], []
    for r in train_records(c):
        if "cpu_s" not in r or "loss" not in r:
            continue
        window = (window + [float(r["loss"])])[-10:]
        xs.append(float(r["cpu_s"]) / 3600.0)
        ys.append(sum(window) / len(window))
    return render_xy([("training loss (moving mean of 10 logs)", xs, ys)], path,
                     "training CPU-hours (cumulative)", "loss", title=title)


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


def launch(c: Stage, st: dict, cmd: list[str], how: str, nice: int) -> str:
    """Record the session in the state file and start ``cmd`` niced, in its own session, with
    its output appended to the stage's log; returns the one-line message."""
    sessions = st.setdefault("sessions", [])
    sessions.append({"started": now(), "how": how, "host": os.uname().nodename})
    c.save_state(st)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    out = open(c.out_file, "ab")
    out.write(f"\n== {now()} {how}\n$ {shlex.join(cmd)}\n".encode())
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
    return f"{c.label} started (pid {proc.pid}, nice {nice}): {how}; log {c.out_file}"


class BoundStage(Stage):
    """A stage that retrains a decoder on the frozen latents of the **shipped** codec weights
    (``python -m lic_core.train STAGE ... --run-dir``): the fine-tuning stages and the GAN
    decoder stage. A run begun on other codec weights is set aside and the stage starts
    afresh."""

    #: ``lic train`` sub-command of the trainer
    trainer = ""
    #: its flags when the state has no recipe
    recipe: Sequence[str] = ()

    def trainer_args(self) -> list[str]:
        return []

    def launch_command(self, st: dict, *, data, kodak, init, recipe, extra,
                       val) -> tuple[list[str], str]:
        import sys

        recipe = list(recipe or st.get("recipe") or self.recipe)
        data, _ = training_inputs(st, data, None)
        model_name = flag(recipe, "--model", "lic-lgem-cpu") or "lic-lgem-cpu"
        shipped = shipped_codec_hash(model_name)
        if shipped is None:
            raise CampaignError(f"no shipped {model_name} weights to fine-tune")
        ck = latest_checkpoint(self.run_dir)
        how = "starting from the shipped weights' decoder"
        warm = []
        if init:  # a run without a checkpoint starts g_s and G' from this decoder file
            warm = ["--init-decoder", str(init)]
            how = f"warm-starting from {Path(init).name}"
        if ck is not None:
            base = load_checkpoint(ck).get("base_weights_hash")
            if base == shipped:
                how, warm = f"resuming {ck.name}", []
            else:
                aside = self.run_dir.with_name(f"{self.run_dir.name}.stale-"
                                               f"{(base or 'unknown')[:8]}")
                if aside.exists():
                    shutil.rmtree(aside)
                self.run_dir.rename(aside)
                how = (f"the shipped {model_name} weights changed since {ck.name}: "
                       + (f"warm-starting from {Path(init).name}" if init else "starting afresh")
                       + f" (old run set aside in {aside.name})")
        cmd = [sys.executable, "-m", "lic_core.train", self.trainer, "--data", data,
               *self.trainer_args(), "--run-dir", str(self.run_dir), *recipe,
               "--steps", "100000000", "--ckpt-minutes", str(CKPT_MINUTES), "--keep", "2",
               "--no-write", *warm, *extra]
        self.root.mkdir(parents=True, exist_ok=True)
        st.update({"recipe": recipe, "data": data, "stage": self.stage, "codec": model_name,
                   "base_weights_hash": shipped})
        st.setdefault("created", now())
        return cmd, how

    def stale_note(self) -> str:
        """The status line's note when the shipped codec weights moved on since the start."""
        st = self.state()
        shipped = shipped_codec_hash(st.get("codec") or "lic-lgem-cpu")
        if st.get("base_weights_hash") and shipped and shipped != st["base_weights_hash"]:
            return (f"; the shipped {st.get('codec')} weights changed since this stage started "
                    "(`start` begins afresh on them)")
        return ""

    def checkpoint_of_shipped(self, kind: str, what: str) -> tuple[Path, dict, object]:
        """(path, checkpoint, codec model with its decoder loaded) of the newest checkpoint,
        which must have been trained on the codec weights shipped now."""
        from lic_core.models import load_model

        path, ck = self.newest_checkpoint(kind, what)
        codec_name = self.state().get("codec") or "lic-lgem-cpu"
        model = load_model(codec_name)
        base_now = model.weights_meta["weights_hash_bytes"].hex()
        if ck.get("base_weights_hash") != base_now:
            raise CampaignError(f"{path.name} was trained on other {codec_name} weights than "
                                "those shipped now; `start` the stage again (it begins afresh)")
        from lic_core.train.finetune import load_decoder_state, match_decoder_depth

        match_decoder_depth(model, int(ck.get("g_s_extra_blocks") or 0))  # a deeper generator
        load_decoder_state(model, ck["model"], path.name)
        return path, ck, model
