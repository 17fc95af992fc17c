"""RD dominance of DQ over rounding on the synthetic source (docs/methods.md §4.4, §11 item 10)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("tcq_synthetic")


def test_bd_rate_helper(bench):
    q = np.array([20.0, 25.0, 30.0, 35.0])
    r = np.array([0.5, 1.0, 2.0, 4.0])
    assert abs(bench.bd_rate(r, q, r, q)) < 1e-9
    assert abs(bench.bd_rate(r, q, 0.9 * r, q) - (-10.0)) < 1e-6  # 10 % fewer bits everywhere
    assert abs(bench.bd_rate(r, q, 1.2 * r, q) - 20.0) < 1e-6
    assert abs(bench.bd_rate_poly(r, q, 0.9 * r, q) - (-10.0)) < 1e-6
    # a curve shifted by +1 dB needs fewer bits; both fits agree on the sign and roughly the size
    a, b = bench.bd_rate(r, q, r, q + 1.0), bench.bd_rate_poly(r, q, r, q + 1.0)
    assert a < 0 and b < 0 and abs(a - b) < 2.0


def test_dq_beats_rounding_by_more_than_2_percent(bench):
    res = bench.run(channels=24, positions=384, seed=0, timing=False)
    bd = res["bd_rate_vs_round_percent"]
    assert bd["tcq"] < -2.0, bd
    assert bd["tcq_poly_fit"] < -2.0, bd
    assert bd["tcq_vs_rdoq"] < 0.0, bd
    assert bd["rdoq"] < 0.0, bd
    # DQ also has lower MSE at every step (docs/methods.md §4.4 "What to expect")
    assert all(a < b for a, b in zip(res["curves"]["tcq"]["mse"], res["curves"]["round"]["mse"]))
