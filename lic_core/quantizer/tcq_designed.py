"""Designed (trained) TCQ rate tables: the entropy code of entropy-constrained TCQ fitted to the
indices the trellis really emits (docs/methods.md §4.4 "Rate model"; Fischer & Wang 1992, Marcellin
& Fischer 1990: ECTCQ codebooks and codes are designed iteratively on training data).

**Why.** §4.4 codes index k of quantizer j with the Gaussian mass of its midpoint cell. The
trellis does not quantize to the nearest level — it steers the state — so the real index
distribution differs from that model. On held-back photos the empirical distribution of k given
(scale index i, quantizer j) codes TCQ's indices 2.5–3 % shorter, rounding's only 0.4–1 %
(docs/quantizers.md, "The rate model of the trellis").

**What a table file holds.** Integer counts ``n[i][j][m]`` of |k| = m for m = 0..M and one tail
count for |k| > M, gathered by running the real trellis on training photos (``lic_core.train.
tcq_design``), plus a prior weight w. The coded half-pmf is the Gaussian cell model updated with
the counts, as w pseudo-observations of the Gaussian:

    p_m = (c_m + w·g_m) / (N + w),   c_0 = n_0,  c_m = n_m / 2 (each sign),
    c_m = (n_tail / 2)·g_m / T for m > M,  T = Σ_{m>M} g_m,

then floored and renormalized exactly as §4.4's tables. Every step is a single IEEE float64
operation in a fixed order on integers and the deterministic Gaussian tables, so every machine
builds the same rows (the coded pmfs). Contexts with few samples stay at the Gaussian model.

**Identity.** A table set's id is the first 63 bits of SHA-256 over its canonical content
(Δ_u, M, w, counts). The ``.lic`` header stores it as the TCQ parameter ``tables``; 0 (absent)
means §4.4's Gaussian tables, so every older file decodes as before. Table files ship beside the
codec weights as ``<model>.tcq-tables.json``; a file naming an id no shipped table has is refused
with a clear error, never decoded with other tables.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import torch

from ..errors import LicError
from ..paths import weights_dir
from .tcq_rate import PMF_FLOOR, TcqTables, gaussian_half_pmf, normalize_half, tables_from_half

SUFFIX = ".tcq-tables.json"
KIND = "lic TCQ rate tables (designed ECTCQ code, docs/methods.md §4.4)"


def canonical_content(delta_u: float, m_design: int, prior_weight: int,
                      counts: list) -> bytes:
    """The bytes a table set's id hashes: what decides its pmfs, nothing else."""
    return json.dumps({"delta_u": float(delta_u).hex(), "m": int(m_design),
                       "w": int(prior_weight), "counts": counts},
                      separators=(",", ":"), sort_keys=True).encode()


def table_id(delta_u: float, m_design: int, prior_weight: int, counts: list) -> int:
    """63-bit id (never 0) of a designed table set."""
    h = hashlib.sha256(canonical_content(delta_u, m_design, prior_weight, counts)).digest()
    return (int.from_bytes(h[:8], "little") & ((1 << 63) - 1)) or 1


def check_counts(counts: Any, m_design: int) -> None:
    """64 × 2 × (M+2) non-negative ints, or a one-line error."""
    ok = (isinstance(counts, list) and len(counts) == 64
          and all(isinstance(r, list) and len(r) == 2 for r in counts)
          and all(isinstance(c, list) and len(c) == m_design + 2
                  and all(isinstance(v, int) and v >= 0 for v in c)
                  for r in counts for c in r))
    if not ok:
        raise LicError(f"TCQ tables: counts must be 64 × 2 × {m_design + 2} non-negative ints")


def build_designed(delta_u: float, m_design: int, prior_weight: int, counts: list) -> TcqTables:
    """The coded tables of a designed set (see module docstring for the formula)."""
    check_counts(counts, m_design)
    if prior_weight < 1:
        raise LicError("TCQ tables: the prior weight must be ≥ 1")
    K, g = gaussian_half_pmf(delta_u)
    k_max = g.shape[-1] - 1
    n = torch.tensor(counts, dtype=torch.float64)  # 64×2×(M+2), exact (integers < 2⁵³)
    M = min(int(m_design), k_max)
    head = n[:, :, : M + 1].clone()
    head[:, :, 1:] = head[:, :, 1:] / 2.0
    tail_n = n[:, :, m_design + 1] / 2.0
    c = torch.zeros_like(g)
    c[:, :, : M + 1] = head
    T = torch.zeros(64, 2, dtype=torch.float64)
    for m in range(M + 1, k_max + 1):  # fixed order
        T = T + g[:, :, m]
    has_tail = T > 0
    share = torch.where(has_tail, tail_n / torch.where(has_tail, T, torch.ones_like(T)),
                        torch.zeros_like(T))
    c[:, :, M + 1:] = share[:, :, None] * g[:, :, M + 1:]
    N = n[:, :, 0]
    for m in range(1, m_design + 2):  # fixed order: N = n_0 + n_1 + … + n_tail
        N = N + n[:, :, m]
    w = float(prior_weight)
    p = (c + w * g) / (N + w)[:, :, None]
    inside = g > 0  # the support K_i of §4.4 is kept: same clamp, same candidates
    p = torch.where(inside, p.clamp_min(PMF_FLOOR), torch.zeros_like(p))
    return tables_from_half(delta_u, K, normalize_half(p))


def table_document(delta_u: float, m_design: int, prior_weight: int, counts: list,
                   about: Optional[dict] = None) -> dict:
    """The JSON document of a table file (id included, for people and `lic models`)."""
    check_counts(counts, m_design)
    return {"kind": KIND, "id": table_id(delta_u, m_design, prior_weight, counts),
            "delta_u": float(delta_u), "m": int(m_design), "w": int(prior_weight),
            "counts": counts, **(about or {})}


def read_table_file(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
        delta_u, m, w, counts = float(doc["delta_u"]), int(doc["m"]), int(doc["w"]), doc["counts"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LicError(f"unreadable TCQ table file {Path(path).name}: {exc}") from None
    check_counts(counts, m)
    doc["id"] = table_id(delta_u, m, w, counts)  # recomputed: the content is the identity
    return doc


def table_files(folder: Optional[Path] = None) -> list[Path]:
    """The table files of the weights folder, and of the weights frozen in it by a release
    (``frozen/<model>-<hash>/``, :mod:`lic_core.codecs.frozen`): an id names its content, so a
    file coded with the tables of replaced weights finds them there."""
    d = Path(folder or weights_dir())
    return sorted(d.glob(f"*{SUFFIX}")) + sorted(d.glob(f"frozen/*/*{SUFFIX}"))


def shipped_table_for(model_name: str, weights_hash_hex: str,
                      folder: Optional[Path] = None) -> Optional[dict]:
    """The designed table document for these codec weights, or None (none shipped, or designed
    on other weights of this codec: the campaign moved on and the tables are stale)."""
    path = Path(folder or weights_dir()) / f"{model_name}{SUFFIX}"
    if not path.is_file():
        return None
    doc = read_table_file(path)
    return doc if doc.get("base_weights_hash") == weights_hash_hex else None


@functools.lru_cache(maxsize=8)
def _designed_by_id(tid: int, folder: str) -> TcqTables:
    for path in table_files(Path(folder)):
        doc = read_table_file(path)
        if doc["id"] == tid:
            return build_designed(doc["delta_u"], doc["m"], doc["w"], doc["counts"])
    raise LicError(f"this file was coded with designed TCQ rate tables {tid:016x}, which this "
                   f"installation does not have (no *{SUFFIX} with that id in {folder})")


def designed_tables(tid: int, delta_u: float, folder: Optional[Path] = None) -> TcqTables:
    """The tables of id ``tid`` from the shipped table files (cached), for step Δ_u."""
    tab = _designed_by_id(int(tid), str(folder or weights_dir()))
    if tab.delta_u != float(delta_u):
        raise LicError(f"TCQ tables {tid:016x} were designed for delta_u {tab.delta_u}, "
                       f"not {delta_u}")
    return tab
