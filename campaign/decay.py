"""The codec's decay branch: each phase's export gets a learning-rate decay, the main line does not
(issue 27 item 4). ``tools/campaign.sh decay [--cpu-min M]``, then ``--stage codec-decay
status|stop|export``.

The codec stage trains at a constant learning rate for as long as the campaign lives, because it
never knows when it ends. A decay at the end of training is worth several per cent of BD-rate,
but decaying the main line would have to be undone (re-warmed) by the next phase. So, as in the
"warmup–stable–decay" schedule (Hu et al., MiniCPM, 2024, §4; Hägele et al., "Scaling Laws and
Compute-Optimal Training Beyond Fixed Training Durations", 2024, §3), a phase ends by *forking*:

* ``decay`` stops nothing itself (stop the codec stage first: one training job at a time), copies
  the main line's newest checkpoint into ``runs/campaign/codec-decay/`` and trains it on with the
  same recipe for ``M`` CPU-minutes, the learning rate falling as a cosine from its constant peak
  to ``--final-lr`` of it (``lic train codec --decay cosine --decay-from S --steps S+K``; K from
  the main line's measured CPU-seconds per step);
* ``--stage codec-decay export`` measures the decayed weights exactly as the codec's ``export``
  measures the main line (same card, learning curve of the main line's validations, install
  verdict; the release train takes it from ``runs/campaign/export``);
* the next ``tools/campaign.sh start`` resumes the main line where it forked, at its constant
  rate. A new ``decay`` forks afresh from the main line's newest checkpoint; a stopped branch of
  the same fork resumes.
"""
from __future__ import annotations

import shutil
import statistics
import sys
from pathlib import Path
from typing import Optional

from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

from .base import CKPT_MINUTES, CampaignError, set_flag, training_inputs
from .codec import RECIPE, CodecStage

__all__ = ["DecayBranchStage", "DEFAULT_CPU_MIN", "DEFAULT_FINAL_LR", "decay_recipe",
           "cpu_s_per_step"]

#: the branch's default length: about a tenth of a session's training, long enough for the
#: cosine to settle (the main line's EMA of 0.999 averages ~1000 steps; 25 CPU-min ≈ 1500 steps)
DEFAULT_CPU_MIN = 25.0
#: the cosine's floor, a fraction of the peak (the loop's default)
DEFAULT_FINAL_LR = 0.1


def cpu_s_per_step(log: list[dict], last: int = 20) -> Optional[float]:
    """Median booked CPU-seconds per step over the main line's last ``last`` train records."""
    recs = [r for r in log if r.get("type") == "train" and "cpu_s" in r]
    recs = recs[-(last + 1):]
    rates = [(b["cpu_s"] - a["cpu_s"]) / (b["step"] - a["step"])
             for a, b in zip(recs, recs[1:]) if b["step"] > a["step"] and b["cpu_s"] > a["cpu_s"]]
    return statistics.median(rates) if rates else None


def decay_recipe(recipe: list[str], fork_step: int, steps: int, final_lr: float) -> list[str]:
    """The main line's recipe with the decay window ``fork_step → steps``."""
    out = set_flag(recipe, "--decay", "cosine")
    out = set_flag(out, "--decay-from", str(int(fork_step)))
    out = set_flag(out, "--steps", str(int(steps)))
    return set_flag(out, "--final-lr", repr(float(final_lr)))


class DecayBranchStage(CodecStage):
    """``--stage codec-decay``: the decayed fork of the codec's main line (module docstring)."""

    name = "codec-decay"
    label = "decay branch"
    #: set by ``tools/campaign.sh decay`` before :meth:`start`
    cpu_min: float = DEFAULT_CPU_MIN
    final_lr: float = DEFAULT_FINAL_LR
    #: a branch shorter than this is not a decay (the EMA would not follow it)
    min_steps: int = 50

    @property
    def main(self) -> CodecStage:
        return CodecStage(self.root)

    def state(self) -> dict:
        """The main line's state (its lineage: init steps and CPU-hours, created, init — what the
        export card books) under the branch's own (the fork, its recipe, data and sessions)."""
        return {**self.main.state(), **self.own_state()}

    def own_state(self) -> dict:
        return super().state()

    def curve_log(self) -> Path:
        """The learning curve is the main line's: the branch does not validate."""
        return self.main.run_dir / "log.jsonl"

    def launch_command(self, st: dict, *, data, kodak, init, recipe, extra,
                       val) -> tuple[list[str], str]:
        main_ck = latest_checkpoint(self.main.run_dir)
        if main_ck is None:
            raise CampaignError(f"no codec checkpoint in {self.main.run_dir} to fork: "
                                "`tools/campaign.sh start` first")
        own = self.own_state()
        mine = latest_checkpoint(self.run_dir)
        same_fork = own.get("forked_from") == str(main_ck) and mine is not None
        if same_fork and int(load_checkpoint(mine)["step"]) >= int(own["steps"]):
            raise CampaignError(f"the decay branch of {main_ck.name} is complete (step "
                                f"{own['steps']}): `--stage codec-decay export` measures it")
        if same_fork:
            how = f"resuming the decay branch of {main_ck.name} at {mine.name}"
            fork = {k: own[k] for k in ("forked_from", "fork_step", "steps", "cpu_min",
                                        "final_lr", "recipe")}
        else:
            ck = load_checkpoint(main_ck)
            fork_step = int(ck["step"])
            per_step = cpu_s_per_step(self.main.log())
            if per_step is None:
                raise CampaignError("the codec's log has no CPU time per step yet: train the "
                                    "main line a little first")
            k = max(self.min_steps, int(round(self.cpu_min * 60.0 / per_step)))
            base = list(recipe or self.main.state().get("recipe") or RECIPE)
            fork = {"forked_from": str(main_ck), "fork_step": fork_step,
                    "steps": fork_step + k, "cpu_min": float(self.cpu_min),
                    "final_lr": float(self.final_lr), "cpu_s_per_step": round(per_step, 4),
                    "recipe": decay_recipe(base, fork_step, fork_step + k, self.final_lr)}
            if self.run_dir.exists():  # an older branch: its export (if any) is in export/
                shutil.rmtree(self.run_dir)
            self.run_dir.mkdir(parents=True)
            shutil.copy2(main_ck, self.run_dir / main_ck.name)
            how = (f"forking {main_ck.name}: cosine decay over {k} steps ({fork_step} → "
                   f"{fork_step + k}, ≈ {self.cpu_min:g} CPU-min) to {self.final_lr:g} of the "
                   "peak learning rate")
        data, kodak = training_inputs(self.main.state(), data, kodak)
        cmd = [sys.executable, "-m", "lic_core.train", "codec", "--data", data, "--out",
               str(self.run_dir), *fork["recipe"], "--ckpt-minutes", str(CKPT_MINUTES),
               "--ckpt-every", "0", "--keep", "2", "--resume", str(self.run_dir), *extra]
        st.clear()  # the branch's file keeps only the fork (the lineage stays the main line's)
        st.update(fork, data=data, kodak=kodak, sessions=own.get("sessions", []) if same_fork
                  else [])
        return cmd, how

    def seed(self, folder: Optional[Path] = None) -> dict:
        """Refused: the codec's committed seed continues the constant-rate main line."""
        raise CampaignError("the decay branch has no seed: the codec's seed is the main line's "
                            "(tools/campaign.sh --stage codec seed)")

    def handoff(self, src, dst) -> dict:
        raise CampaignError("a device continues the main line: tools/campaign.sh --stage codec "
                            "handoff")

    def adopt(self, path) -> str:
        raise CampaignError("weights from a device continue the main line: tools/campaign.sh "
                            "--stage codec adopt")

    def status(self) -> str:
        own = self.own_state()
        if not own.get("forked_from"):
            return "decay branch: none yet (`tools/campaign.sh decay` forks the codec's newest " \
                   "checkpoint)"
        recs = [r for r in self.log() if r.get("type") == "train"]
        step = recs[-1]["step"] if recs else own["fork_step"]
        done = " — complete: `--stage codec-decay export`" if step >= own["steps"] else ""
        lr = f", lr {recs[-1]['lr']:.2e}" if recs and "lr" in recs[-1] else ""
        return (f"decay branch {self.state_word()}: step {step} of {own['fork_step']} → "
                f"{own['steps']} (forked from {Path(own['forked_from']).name}){lr}{done}")
