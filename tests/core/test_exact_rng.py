"""The diffusion decoder's noise (lic_core.exact.rng): Philox4x32-10 reproduces Random123's
known-answer vectors, and its Box–Muller normals are a pure, well-distributed function of
(seed, draw, element)."""
from __future__ import annotations

import pytest
import torch

from lic_core.exact.rng import normal, philox4x32

KAT = [  # Random123 tests/kat_vectors, philox4x32 10: counter, key → output
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,out", KAT)
def test_philox_known_answers(ctr, key, out):
    words = philox4x32(*(torch.tensor([c], dtype=torch.int64) for c in ctr), *key)
    assert tuple(int(w) for w in words) == out


def test_normals_are_a_pure_function_of_seed_draw_and_element():
    a = normal((2, 3, 17, 19), seed=7, draw=3)
    assert torch.equal(a, normal((2, 3, 17, 19), seed=7, draw=3))
    flat = normal((2 * 3 * 17 * 19,), seed=7, draw=3)
    assert torch.equal(a.reshape(-1), flat)  # element n does not depend on the shape
    assert not torch.equal(a, normal((2, 3, 17, 19), seed=8, draw=3))
    assert not torch.equal(a, normal((2, 3, 17, 19), seed=7, draw=4))
    big = normal((400_000,), seed=1 << 40, draw=0)
    assert abs(float(big.mean())) < 0.01 and abs(float(big.std()) - 1.0) < 0.01
    assert abs(float((big ** 4).mean()) - 3.0) < 0.05  # Gaussian kurtosis
    assert float((big.abs() > 3).double().mean()) == pytest.approx(0.0027, abs=0.0006)


def test_numpy_and_torch_philox_give_the_same_words():
    """CPU noise runs through numpy uint64 (one product per word pair), other devices through
    int64 torch ops in 16-bit halves: the same integer function, so the same words."""
    from lic_core.exact.rng import _philox_numpy, _philox_torch

    g = torch.Generator().manual_seed(0)
    ctr = [torch.randint(0, 2 ** 32, (5000,), generator=g, dtype=torch.int64) for _ in range(4)]
    ctr[0][:3] = torch.tensor([0, 2 ** 32 - 1, 2 ** 31])
    for key in ((0, 0), (2 ** 32 - 1, 2 ** 32 - 1), (0x243F6A88, 7)):
        a = _philox_numpy(*ctr, *key)
        b = _philox_torch(*ctr, *key)
        assert all(torch.equal(x, y) for x, y in zip(a, b))
