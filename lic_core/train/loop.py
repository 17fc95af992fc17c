"""Stage-1 training of the learned codec: variable-rate rate–distortion loss (docs/methods.md §5.1,
§4.1).

Each optimizer step draws one rate level ``s`` uniformly (the same on every DDP rank), runs the
model at ``u = s/(n−1)`` and minimizes the CompressAI objective ``λ_s·255²·MSE + bpp`` with
``λ_s = model.config.lambdas[s]``. The factorized prior's quantiles are trained by the auxiliary
loss with their own Adam optimizer (CompressAI convention). Everything that changes from step to
step (level, noise, data crops) is a pure function of ``(seed, step, rank)``, so a run resumed from
a checkpoint reproduces the uninterrupted run exactly on the CPU reference path.

The step is plugged into :class:`.runner.Runner` (budgets, signals, timed checkpoints, threads,
the JSONL log). Entry points: :func:`train` (Python), ``lic train codec`` / ``python -m
lic_core.train codec`` (CLI, see :func:`add_arguments`), ``torchrun --nproc_per_node=K -m
lic_core.train codec`` (multi-GPU).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import importlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LicError, ModelNotFoundError
from . import distributed as D
from .checkpoint import init_source, load_checkpoint, save_checkpoint
from .data import ImageFolderCrops, StepBatches, data_description, step_level, step_seed
from .ema import EMA
from .runner import Runner, RunSettings
from .schedules import lr_factor
from .validate import evaluate, format_points

#: parameter-name fragments that get no weight decay (besides every tensor with < 2 dims).
NO_DECAY_KEYS = ("gain", "norm", "bias", "gdn", "beta", "gamma", "prior", "bottleneck",
                 "quantiles", "pos_bias", "laplac")


class TrainError(LicError):
    """A training run cannot start (bad arguments, missing data or weights)."""


@dataclass
class TrainConfig:
    """Every knob of a codec training run (the CLI flags, one-to-one)."""

    data: str
    out: str
    model: str = "lic-lgem"
    steps: int = 1000
    batch: int = 8
    crop: int = 256
    lr: float = 1e-4
    aux_lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 500
    decay: str = "cosine"
    final_lr: float = 0.1
    decay_from: Optional[int] = None
    clip: float = 1.0
    ema: float = 0.0
    amp: bool = False
    channels_last: bool = False
    seed: int = 0
    resume: Optional[str] = None
    init: Optional[str] = None
    lambdas: Optional[List[float]] = None
    downscale: Tuple[float, float] = (0.75, 1.0)
    cache_images: bool = True
    workers: int = 0
    device: str = "auto"
    log_every: int = 25
    ckpt_every: int = 500
    ckpt_minutes: Optional[float] = None
    keep: int = 2
    val_every: int = 0
    val_dir: Optional[str] = None
    val_limit: Optional[int] = None
    val_u: List[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    time_budget_min: Optional[float] = None
    cpu_budget_min: Optional[float] = None
    model_config: Optional[List[str]] = None
    val_cpu_minutes: Optional[float] = None
    continue_schedule: bool = False
    find_unused: bool = True
    threads: Optional[int] = None

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> "TrainConfig":
        """Build from parsed flags; flags left at None take the dataclass default."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in vars(ns).items() if k in names and v is not None}
        if "downscale" in kw:
            kw["downscale"] = tuple(kw["downscale"])
        if "data" not in kw or "out" not in kw:
            raise TrainError("--data and --out are required")
        return cls(**kw)


# ----------------------------------------------------------------------------------------------
# model plumbing


def resolve_model(name: str, **overrides) -> nn.Module:
    """Build a fresh (untrained) model: a registry name (``lic_core.models.build_model``) or a
    ``"package.module:factory"`` spec (custom configs, test stand-ins)."""
    if ":" in name:
        mod_name, attr = name.split(":", 1)
        try:
            factory = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ModelNotFoundError(f"cannot import model factory {name!r}: {exc}") from None
        return factory(**overrides)
    try:
        models = importlib.import_module("lic_core.models")
    except ImportError as exc:
        raise ModelNotFoundError(f"lic_core.models is not available: {exc}") from None
    return models.build_model(name, **overrides)


def parse_model_config(items: Optional[Sequence[str]]) -> dict:
    """``["N=48", "res_blocks=2"]`` → ``{"N": 48, "res_blocks": 2}`` (ints, floats, bools)."""
    out: dict = {}
    for it in items or []:
        if "=" not in it:
            raise TrainError(f"--model-config expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def model_lambdas(model: nn.Module, override: Optional[Sequence[float]] = None) -> List[float]:
    if override:
        return [float(v) for v in override]
    cfg = getattr(model, "config", None)
    lams = getattr(cfg, "lambdas", None)
    if not lams:
        raise TrainError("the model has no config.lambdas; pass --lambdas")
    return [float(v) for v in lams]


def split_parameters(model: nn.Module) -> Tuple[List[Tuple[str, nn.Parameter]],
                                                 List[Tuple[str, nn.Parameter]]]:
    """(main, aux) named parameters. Uses ``model.main_parameters()/aux_parameters()`` when the
    model defines them (docs/methods.md §2.2), else treats ``*quantiles`` as the aux parameters."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if callable(getattr(model, "aux_parameters", None)):
        aux_ids = {id(p) for p in model.aux_parameters()}
    else:
        aux_ids = {id(p) for n, p in named if n.endswith("quantiles")}
    main = [(n, p) for n, p in named if id(p) not in aux_ids]
    aux = [(n, p) for n, p in named if id(p) in aux_ids]
    return main, aux


def no_decay(name: str, p: torch.Tensor) -> bool:
    """Gains, biases, norms, density-model and positional-bias parameters keep weight decay 0."""
    low = name.lower()
    return p.ndim < 2 or any(k in low for k in NO_DECAY_KEYS)


def build_optimizers(model: nn.Module, cfg: TrainConfig) -> Tuple[torch.optim.Optimizer,
                                                                  Optional[torch.optim.Optimizer]]:
    main, aux = split_parameters(model)
    decay = [p for n, p in main if not no_decay(n, p)]
    plain = [p for n, p in main if no_decay(n, p)]
    groups = [g for g in ({"params": decay, "weight_decay": cfg.weight_decay},
                          {"params": plain, "weight_decay": 0.0}) if g["params"]]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))
    aux_opt = torch.optim.Adam([p for _, p in aux], lr=cfg.aux_lr) if aux else None
    return opt, aux_opt


def aux_loss(model: nn.Module) -> Optional[torch.Tensor]:
    fn = getattr(model, "aux_loss", None)
    return fn() if callable(fn) else None


def rd_terms(out: dict, x: torch.Tensor, lam: float) -> Dict[str, torch.Tensor]:
    """CompressAI RD loss: ``λ·255²·MSE + bpp`` (computed in float32 even under autocast)."""
    n_pix = x.shape[0] * x.shape[-2] * x.shape[-1]
    bits = sum((-torch.log2(lk.float())).sum() for lk in out["likelihoods"].values())
    bpp = bits / n_pix
    mse = F.mse_loss(out["x_hat"].float(), x.float())
    loss = lam * (255.0 ** 2) * mse + bpp
    return {"loss": loss, "bpp": bpp, "mse": mse}


def state_hash(model: nn.Module) -> str:
    """SHA-256 over the model's state_dict (names, dtypes, shapes and bytes), hex."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# running statistics


class LevelStats:
    """Per-λ running sums between two log lines (loss, bpp, MSE→PSNR)."""

    def __init__(self, lambdas: Sequence[float]) -> None:
        self.lambdas = list(lambdas)
        self.reset()

    def reset(self) -> None:
        self.sums = {s: [0.0, 0.0, 0.0, 0.0, 0] for s in range(len(self.lambdas))}
        self.aux = 0.0
        self.n = 0

    def add(self, s: int, loss: float, bpp: float, mse: float, aux: float) -> None:
        a = self.sums[s]
        a[0] += loss
        a[1] += bpp
        a[2] += mse
        a[3] += 10.0 * math.log10(1.0 / max(mse, 1e-12))
        a[4] += 1
        self.aux += aux
        self.n += 1

    def summary(self) -> dict:
        levels = {}
        tot = 0.0
        for s, (l, b, _m, p, k) in self.sums.items():
            tot += l
            if k:
                levels[str(s)] = {"lambda": self.lambdas[s], "loss": l / k, "bpp": b / k,
                                  "psnr": p / k, "n": k}
        return {"loss": tot / max(1, self.n), "aux": self.aux / max(1, self.n), "levels": levels}


# ----------------------------------------------------------------------------------------------
# the loop


def _device(cfg: TrainConfig, info: D.DistInfo) -> torch.device:
    if cfg.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", info.local_rank)
        return torch.device("cpu")
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", info.local_rank)
    return dev


def device_description(device: torch.device, world: int = 1) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{world}× {name}" if world > 1 else name
    return f"CPU, {torch.get_num_threads()} threads" + (f" × {world} processes" if world > 1 else "")


def follow_parameter_layout(model: nn.Module, optimizers, ema: Optional[EMA]) -> None:
    """Give Adam's moments and the EMA shadow loaded from a checkpoint the memory layout of the
    parameters they follow (a channels_last run resumed from a contiguous checkpoint, or the
    other way round): the same values, but elementwise updates between tensors of one layout
    stay on the fast kernels.  Nothing changes where the layouts already match."""
    for opt in optimizers:
        if opt is None:
            continue
        for group in opt.param_groups:
            for p in group["params"]:
                state = opt.state.get(p, {})
                for k, v in state.items():
                    if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                        state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)
    if ema is not None:
        current = model.state_dict()
        for k, v in ema.shadow.items():
            ref = current.get(k)
            if ref is not None and v.shape == ref.shape and v.stride() != ref.stride():
                ema.shadow[k] = torch.empty_like(ref, dtype=v.dtype).copy_(v)


def load_init_weights(model: nn.Module, path: str) -> dict:
    """Load weights only (``--init``): a ``.safetensors`` export or a training checkpoint (its
    EMA weights when present). Returns the file's metadata (may be empty)."""
    p = Path(path)
    if not p.exists():
        raise TrainError(f"--init weights not found: {p}")
    if p.suffix == ".safetensors":
        try:
            from ..weights import load_weights
            state, meta = load_weights(p)
        except ImportError:
            from safetensors.torch import load_file
            state, meta = load_file(str(p)), {}
    else:
        ck = load_checkpoint(p)
        state = ck["ema"]["shadow"] if ck.get("ema") else ck["model"]
        meta = {"from_checkpoint": str(p), "step": ck["step"], "cpu_s": ck.get("cpu_s", 0.0)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith(("pmf", "pmf_offset", "pmf_length"))]:
        raise TrainError(f"--init {p.name} does not fit the model: missing {list(missing)[:3]}, "
                         f"unexpected {list(unexpected)[:3]}")
    # the start record is JSON: keep what JSON can carry (weights_hash_bytes is raw bytes)
    return {k: (v.hex() if isinstance(v, (bytes, bytearray)) else v)
            for k, v in dict(meta or {}).items()}


def train(cfg: TrainConfig, model: Optional[nn.Module] = None,
          log: Optional[Callable[[str], None]] = None) -> dict:
    """Run (or continue) a codec training run; returns a summary dict
    ``{"step", "reason", "checkpoint", "last": {...stats}, "wall_s", "device"}``."""
    t_start = time.monotonic()
    info = D.init_distributed("cuda" if (cfg.device == "auto" and torch.cuda.is_available())
                              or cfg.device.startswith("cuda") else "cpu")
    device = _device(cfg, info)
    out_dir = Path(cfg.out)
    runner = Runner(RunSettings(cfg.steps, out_dir, cfg.log_every, cfg.ckpt_every,
                                cfg.ckpt_minutes, cfg.keep, cfg.cpu_budget_min,
                                cfg.time_budget_min, cfg.threads),
                    device.type, log=log or (lambda s: print(s, flush=True)),
                    is_main=info.is_main, book_cpu=device.type == "cpu", started=t_start)
    if device.type == "cuda":  # TF32 matmuls/convs: ~2× on Ampere+/Hopper, harmless for RD training
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    say = runner.say
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    ck = load_checkpoint(cfg.resume) if cfg.resume else None
    if cfg.resume and cfg.init:
        raise TrainError("use either --resume (full checkpoint) or --init (weights), not both")
    model_name = ck.get("model_name", cfg.model) if ck else cfg.model
    if model is None:
        model, model_name = _build_model(cfg, ck, model_name)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    lambdas = model_lambdas(model, cfg.lambdas or (ck["train"].get("lambdas") if ck else None))
    init_meta = load_init_weights(model, cfg.init) if cfg.init else {}

    opt, aux_opt = build_optimizers(model, cfg)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    start, wall_prev, cpu_prev = 0, 0.0, 0.0
    rewarm_from: Optional[int] = None   # --continue-schedule: fresh Adam, re-warm from this step
    prev_device = ""
    if cfg.init:
        card = init_meta.get("card") if isinstance(init_meta.get("card"), dict) else {}
        prev_device = str(card.get("device", ""))
        wall_prev = float(card.get("wall_time_s", 0.0) or 0.0)
        # the lineage's CPU time: a card's hours; a checkpoint's seconds only when the run
        # continues it (--continue-schedule) — else whoever starts it books them (the campaign)
        cpu_prev = 3600.0 * float(card.get("cpu_hours", 0.0) or 0.0) or (
            float(init_meta.get("cpu_s", 0.0) or 0.0) if cfg.continue_schedule else 0.0)
        if cfg.continue_schedule:
            start = rewarm_from = int(card.get("steps") or init_meta.get("step") or 0)
    if ck:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if aux_opt is not None and ck.get("aux_optimizer"):
            aux_opt.load_state_dict(ck["aux_optimizer"])
        if ema is not None:
            if ck.get("ema"):
                ema.load_state_dict(ck["ema"])
            else:
                ema = EMA(model, cfg.ema)
        start, wall_prev = int(ck["step"]), float(ck.get("wall_s", 0.0))
        cpu_prev = float(ck.get("cpu_s", 0.0))
        rewarm_from = ck["train"].get("rewarm_from")
        prev_device = ck["train"].get("prev_device", "")
        say(f"resumed {ck['_path']} at step {start}")
        follow_parameter_layout(model, (opt, aux_opt), ema)  # either way between layouts
    runner.resume(start, cpu_prev)

    _, aux_named = split_parameters(model)
    fwd: nn.Module = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP
        DDP._set_params_and_buffers_to_ignore_for_model(model, [n for n, _ in aux_named])
        fwd = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                  find_unused_parameters=cfg.find_unused)

    ds = ImageFolderCrops(cfg.data, crop=cfg.crop, downscale=cfg.downscale, hflip=True,
                          vflip=False, seed=cfg.seed, cache=cfg.cache_images)
    stream = StepBatches(ds, cfg.batch, info.rank, info.world, cfg.seed, start, cfg.steps)
    if cfg.workers > 0:
        it = iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=cfg.workers,
                                              pin_memory=device.type == "cuda",
                                              prefetch_factor=4))
    else:
        it = iter(stream)

    # bf16 autocast: CUDA, and CPUs with native bf16 (AVX-512 BF16 / AMX); docs/training.md
    amp = bool(cfg.amp)
    dev_desc = device_description(device, info.world)
    full_desc = dev_desc if prev_device in ("", dev_desc) else f"{prev_device}, then {dev_desc}"
    runner.open_log()
    runner.record({"type": "start", "step": start, "model": model_name, "device": dev_desc,
                   "world": info.world, "images": len(ds), "lambdas": lambdas,
                   "config": dataclasses.asdict(cfg), "init": init_meta, "time": time.time()})
    say(f"training {model_name} on {dev_desc}: {len(ds)} images, steps {start}→{cfg.steps}, "
        f"batch {cfg.batch}×{info.world}, crop {cfg.crop}, λ {lambdas}")
    # first guess of a checkpoint's cost (weights + 2 Adam moments + EMA at ~200 MB/s)
    state_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    runner.ckpt_time = 0.5 + 4 * state_bytes / 200e6

    def save(step: int) -> Optional[Path]:
        path = None
        if info.is_main:
            mcfg = getattr(model, "config", None)
            if dataclasses.is_dataclass(mcfg):
                mcfg = dataclasses.asdict(mcfg)
            path = save_checkpoint(
                {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "aux_optimizer": aux_opt.state_dict() if aux_opt is not None else None,
                 "ema": ema.state_dict() if ema is not None else None, "step": step,
                 "model_name": model_name, "config": mcfg,
                 "train": {**dataclasses.asdict(cfg), "lambdas": lambdas,
                           "rewarm_from": rewarm_from, "prev_device": prev_device},
                 "data": {"folder": data_description(cfg.data), "images": len(ds)},
                 "wall_s": wall_prev + (time.monotonic() - t_start), "device": full_desc,
                 "cpu_s": runner.clock(),
                 "torch": str(torch.__version__)},  # a plain str: weights_only loading
                out_dir, keep=cfg.keep)
            runner.record({"type": "checkpoint", "step": step, "path": str(path)})
        D.barrier(info)
        return path

    validated = [-1]
    next_val_cpu = [runner.clock() + 60.0 * (cfg.val_cpu_minutes or 0.0)]

    def validate(step: int, force: bool = False) -> bool:
        due = force or (bool(cfg.val_every) and step % cfg.val_every == 0)
        if cfg.val_cpu_minutes and runner.clock() >= next_val_cpu[0]:
            due = True
            next_val_cpu[0] = runner.clock() + 60.0 * cfg.val_cpu_minutes
        if not (due and cfg.val_dir):
            return False
        if info.is_main:
            m = model
            if ema is not None:
                m = copy.deepcopy(model)
                ema.copy_to(m)
            res = evaluate(m, cfg.val_dir, cfg.val_u, limit=cfg.val_limit, device=device,
                           with_msssim=False)
            runner.record({"type": "val", "step": step, "cpu_s": runner.clock(),
                           "wall_s": wall_prev + (time.monotonic() - t_start), **res})
            say(f"val @ {step} {format_points(res)}  ({res['note']})")
        D.barrier(info)
        validated[0] = step
        return True

    stats = LevelStats(lambdas)
    n_levels = len(lambdas)

    def step(i: int) -> dict:
        got, x = next(it)
        assert got == i, (got, i)
        x = x.to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        s = step_level(cfg.seed, i, n_levels)
        u = s / (n_levels - 1) if n_levels > 1 else 1.0
        lam = lambdas[s]
        f = lr_factor(i, cfg.steps, cfg.warmup, cfg.final_lr, cfg.decay, cfg.decay_from)
        if rewarm_from is not None and cfg.warmup > 0:  # fresh Adam moments: ramp up again
            f *= min(1.0, (i - rewarm_from + 1) / cfg.warmup)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * f
        torch.manual_seed(step_seed(cfg.seed, i, info.rank))
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            out = fwd(x, u)
        terms = rd_terms(out, x, lam)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if cfg.clip and cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                           cfg.clip)
        opt.step()
        a_val = 0.0
        if aux_opt is not None:
            aux_opt.zero_grad(set_to_none=True)
            a = aux_loss(model)
            if a is not None:
                a.backward()
                D.all_reduce_mean_([p.grad for _, p in aux_named if p.grad is not None], info)
                aux_opt.step()
                a_val = float(a.detach())
        if ema is not None:
            ema.update(model)
        loss_v = float(terms["loss"].detach())
        if not math.isfinite(loss_v):
            raise TrainError(f"loss is {loss_v} at step {i} (λ={lam}); lower --lr or "
                             f"disable --amp")
        stats.add(s, loss_v, float(terms["bpp"].detach()), float(terms["mse"].detach()), a_val)
        return {}

    def report(i: int, _window: list, timing: dict) -> tuple[dict, str]:
        summ = stats.summary()
        its = timing["it_s"]
        lr_now = opt.param_groups[0]["lr"]
        lv = " | ".join(f"λ{k} {v['bpp']:.3f}bpp {v['psnr']:.2f}dB"
                        for k, v in summ["levels"].items())
        stats.reset()
        return ({"type": "train", "step": i, "lr": lr_now, "it_s": its,
                 "elapsed_s": timing["elapsed_s"], "cpu_s": timing["cpu_s"],
                 "threads": timing["threads"], **summ},
                f"step {i}/{cfg.steps} lr {lr_now:.2e} loss {summ['loss']:.4f} "
                f"aux {summ['aux']:.1f} | {lv} | {its:.2f} it/s")

    def finish(step: int, reason: str) -> dict:
        if info.enabled:  # replica check: every rank writes the hash of its parameters
            rep = out_dir / "replicas"
            rep.mkdir(parents=True, exist_ok=True)
            (rep / f"rank{info.rank}.sha256").write_text(state_hash(model) + "\n")
            D.barrier(info)
        if (reason == "done" or cfg.cpu_budget_min) and validated[0] != step:
            runner.validate(lambda st: validate(st, force=True))
        return {"wall_s": wall_prev + (time.monotonic() - t_start),
                "checkpoint": str(runner.last_checkpoint) if runner.last_checkpoint else None}

    model.train()
    reason = runner.run(step, save, report, validate, finish,
                        sync=lambda flag: D.any_flag(flag, info, device))
    summary = {"step": runner.step, "reason": reason,
               "checkpoint": str(runner.last_checkpoint) if runner.last_checkpoint else None,
               "wall_s": wall_prev + (time.monotonic() - t_start), "cpu_s": runner.clock(),
               "device": dev_desc}
    D.cleanup(info)
    return summary


def _build_model(cfg: TrainConfig, ck: Optional[dict], model_name: str) -> tuple[nn.Module, str]:
    """The model a run trains: a checkpoint's own architecture (``--resume``, or ``--init`` from
    a checkpoint or an export with its config), else the registry's (``--model-config``)."""
    src = ck
    if src is None and cfg.init and not cfg.model_config:  # a checkpoint's or an export's own
        src = init_source(cfg.init)
        model_name = src.get("model_name", model_name)
    if src and isinstance(src.get("config"), dict) and ":" not in model_name:
        # the checkpoint's own architecture (it may differ from the registry default)
        return resolve_model(model_name, **{k: v for k, v in src["config"].items()
                                            if k != "name"}), model_name
    return resolve_model(model_name, **parse_model_config(cfg.model_config)), model_name


# ----------------------------------------------------------------------------------------------
# CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``lic train codec``; those left out take :class:`TrainConfig`'s defaults."""
    p.add_argument("--model", default=None,
                   help="registry name (lic-lgem, lic-lgem-tiny) or module:factory")
    p.add_argument("--model-config", nargs="+", default=None, metavar="KEY=VALUE",
                   help="architecture overrides of the registry config, e.g. N=48 res_blocks=2")
    p.add_argument("--data", default=None,
                   help="folder of training photos (jpg/png/webp); several joined by ':'")
    p.add_argument("--out", default=None, help="run folder (checkpoints, log.jsonl)")
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps (absolute)")
    p.add_argument("--batch", type=int, default=None, help="crops per step per process")
    p.add_argument("--crop", type=int, default=None, help="crop size (multiple of 64)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (codec: 1e-4)")
    p.add_argument("--aux-lr", type=float, default=None, help="aux (quantile) Adam lr (1e-3)")
    p.add_argument("--weight-decay", type=float, default=None, help="AdamW decay of matrices")
    p.add_argument("--warmup", type=int, default=None, help="linear warm-up steps")
    p.add_argument("--decay", choices=("cosine", "constant"), default=None,
                   help="after warm-up: cosine to --final-lr × lr, or constant")
    p.add_argument("--final-lr", type=float, default=None, help="cosine floor (fraction, 0.1)")
    p.add_argument("--decay-from", type=int, default=None,
                   help="with --decay cosine: constant lr up to this step, then the cosine to "
                        "--steps (a decay branch at the end of a phase)")
    p.add_argument("--clip", type=float, default=None, help="gradient-norm clip (1.0; 0 = off)")
    p.add_argument("--ema", type=float, default=None, help="EMA decay, e.g. 0.999 (0 = off)")
    p.add_argument("--amp", action="store_true", default=None,
                   help="bf16 autocast (CUDA, or a CPU with native bf16)")
    p.add_argument("--channels-last", action="store_true", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", default=None, help="full checkpoint (file or run folder)")
    p.add_argument("--init", default=None, help="weights only (.safetensors or checkpoint)")
    p.add_argument("--lambdas", type=float, nargs="+", default=None,
                   help="override the model's λ per rate level")
    p.add_argument("--downscale", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (0 = inline)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; 0 = adapt to the machine's load while training "
                        "(all cores when idle, fewer when others need them)")
    p.add_argument("--log-every", type=int, default=None)
    p.add_argument("--ckpt-every", type=int, default=None)
    p.add_argument("--ckpt-minutes", type=float, default=None,
                   help="also checkpoint whenever this many wall minutes passed since the last")
    p.add_argument("--keep", type=int, default=None, help="checkpoints kept (2)")
    p.add_argument("--val-every", type=int, default=None, help="validate every N steps")
    p.add_argument("--val-dir", default=None, help="validation folder (Kodak)")
    p.add_argument("--val-limit", type=int, default=None, help="first N validation images")
    p.add_argument("--val-u", type=float, nargs="+", default=None, help="slider values")
    p.add_argument("--time-budget-min", type=float, default=None,
                   help="stop and checkpoint before this many minutes have passed")
    p.add_argument("--cpu-budget-min", type=float, default=None,
                   help="stop and checkpoint once training has used this many CPU-minutes "
                        "(all threads; resumed runs count their earlier CPU time)")
    p.add_argument("--val-cpu-minutes", type=float, default=None,
                   help="validate every this many training CPU-minutes (besides --val-every)")
    p.add_argument("--continue-schedule", action="store_true", default=None,
                   help="with --init: continue the step count / lr schedule of the weights' card "
                        "(re-warming the fresh optimizer over --warmup steps)")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``lic train codec``."""
    summary = train(TrainConfig.from_args(args))
    return 0 if summary["reason"] in ("done", "time budget", "cpu budget", "signal") else 1
