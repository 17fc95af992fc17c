"""Build a network whose weights are about to be loaded without first drawing random ones.

Why: constructing ``LicModel`` spends about half its time (≈ 0.02 of 0.04 s on this machine)
in ``torch.nn.init``'s random fills, which ``load_state_dict(strict=True)`` then overwrites
entirely — a cost every ``lic decompress`` process paid before it decoded a symbol (issue 28
item 2, the 1-MP exact decode's "load weights" stage).

Inside :func:`init_fills_skipped`, on the calling thread only, every in-place fill of
``torch.nn.init`` (``kaiming_uniform_``, ``uniform_``, ``zeros_``, …) returns its tensor
untouched, so parameters keep the uninitialised memory ``torch.empty`` gave them.  Other threads
(a studio worker training while another loads) still get their random weights: the wrappers are
installed only while some thread is inside the block, and each consults a thread-local flag.

Only use it when every parameter is loaded afterwards (``strict=True``).  What a constructor
computes without ``torch.nn.init`` — non-persistent buffers such as the checkerboard masks and
the attention distance tables — is built as usual; ``tests/core/test_load_model.py`` checks that
every tensor of a loaded model equals the one built the slow way.
"""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_local = threading.local()
_lock = threading.Lock()
_depth = 0
_originals: dict[str, Callable] = {}


def _fill_names(init) -> list[str]:
    """The public in-place fills of ``torch.nn.init`` (``calculate_gain`` is not one)."""
    return [n for n in dir(init) if n.endswith("_") and not n.startswith("_")
            and callable(getattr(init, n))]


def _skippable(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def fill(tensor, *args, **kwargs):
        if getattr(_local, "skip", False):
            return tensor
        return fn(tensor, *args, **kwargs)
    return fill


@contextmanager
def init_fills_skipped() -> Iterator[None]:
    """On this thread, ``torch.nn.init``'s fills do nothing until the block ends."""
    global _depth
    from torch.nn import init

    with _lock:
        if _depth == 0:
            for name in _fill_names(init):
                _originals[name] = getattr(init, name)
                setattr(init, name, _skippable(_originals[name]))
        _depth += 1
    outer = getattr(_local, "skip", False)
    try:
        _local.skip = True
        yield
    finally:
        _local.skip = outer
        with _lock:
            _depth -= 1
            if _depth == 0:
                for name, fn in _originals.items():
                    setattr(init, name, fn)
                _originals.clear()
