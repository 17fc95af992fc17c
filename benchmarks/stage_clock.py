"""Per-stage wall and CPU seconds of one `lic decompress`-like decode (issue 28 item 2).

:class:`StageClock` wraps named functions of lic_core for the duration of a ``with`` block and
charges every interval to the innermost stage running (exclusive time: a stage called inside
another is not counted twice; what runs outside every stage is "other").  CPU seconds are
``time.process_time`` of the whole process (every torch thread: with OpenMP's default wait
policy an idle worker spins, so on 2 threads CPU seconds include some spinning); wall seconds
are ``time.perf_counter``.  On a machine shared with another job, wall seconds are inflated and
CPU seconds are the steadier measure of the work done.

:data:`DECODE_STAGES` names the decode's stages: building the exact networks (weights quantized
once per weights), the z section and h_s, per group the channel/inter context features, the
anchor and non-anchor entropy parameters, the range decoder (symbol plans, decode, dequantize,
CRC), the exact g_s and the PNG write.
"""
from __future__ import annotations

import importlib
import time
from collections import defaultdict
from typing import Callable

#: (stage, "module:Class.attr" or "module:function") — the functions a decode's stages run in
DECODE_STAGES = (
    ("load weights", "lic_core.models:load_model"),
    ("build g_s", "lic_core.models.lgem_exact.synthesis:ExactSynthesis.__init__"),
    ("build entropy", "lic_core.models.lgem_exact.entropy:ExactEntropyParameters.__init__"),
    ("z section", "lic_core.latent_codecs.hyperprior:FactorizedZCodec.decode"),
    ("h_s", "lic_core.models.lgem_exact.entropy_tiles:TiledEntropy.hyper"),
    ("group features", "lic_core.models.lgem_exact.entropy_tiles:TiledEntropy.group_features"),
    ("anchor params", "lic_core.models.lgem_exact.entropy_tiles:TiledEntropy.anchor"),
    ("non-anchor params", "lic_core.models.lgem_exact.entropy_tiles:TiledEntropy.nonanchor"),
    ("range decoder", "lic_core.latent_codecs.base:DecodeSteps.__call__"),
    ("g_s", "lic_core.models.lgem_exact.synthesis:ExactSynthesis._tiled"),
    ("png write", "lic_core.image.io:save_image_atomic"),
)


def _resolve(target: str):
    mod_name, _, path = target.partition(":")
    owner = importlib.import_module(mod_name)
    parts = path.split(".")
    for p in parts[:-1]:
        owner = getattr(owner, p)
    return owner, parts[-1]


class StageClock:
    """Exclusive wall/CPU seconds per stage while active (``with clock: ...``)."""

    def __init__(self, stages=DECODE_STAGES) -> None:
        self.stages = stages
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[str] = []
        self._mark = (0.0, 0.0)
        self._patches: list = []

    def _charge(self) -> None:
        now = (time.perf_counter(), time.process_time())
        name = self._stack[-1] if self._stack else "other"
        self.wall[name] += now[0] - self._mark[0]
        self.cpu[name] += now[1] - self._mark[1]
        self._mark = now

    def _wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            self._charge()
            self._stack.append(name)
            self.calls[name] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._charge()
                self._stack.pop()
        timed.__wrapped__ = fn
        return timed

    def __enter__(self) -> "StageClock":
        for name, target in self.stages:
            owner, attr = _resolve(target)
            raw = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
            if isinstance(raw, staticmethod):
                new = staticmethod(self._wrap(name, raw.__func__))
            else:
                new = self._wrap(name, raw)
            setattr(owner, attr, new)
            self._patches.append((owner, attr, raw))
        self._mark = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self._charge()
        for owner, attr, raw in reversed(self._patches):
            setattr(owner, attr, raw)
        self._patches.clear()

    def result(self) -> dict:
        """{stage: {"wall_s", "cpu_s", "calls"}} in the order of :attr:`stages`, then "other"."""
        names = [n for n, _ in self.stages if n in self.wall] + ["other"]
        return {n: {"wall_s": self.wall.get(n, 0.0), "cpu_s": self.cpu.get(n, 0.0),
                    "calls": self.calls.get(n, 0)} for n in names}
