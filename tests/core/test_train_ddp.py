"""Multi-process training (torchrun + DistributedDataParallel, gloo on CPU): after a few steps the
parameter replicas of both ranks must be bit-identical (hashes written by each rank)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lic_core.train.checkpoint import load_checkpoint
from lic_core.train.loop import state_hash
from test_train_loop import STANDIN, build_standin, make_images

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parents[1]


@pytest.mark.slow
def test_ddp_two_ranks_keep_identical_replicas(tmp_path):
    data = make_images(tmp_path / "data", n=5)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]),
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lic_core.train", "--model", STANDIN, "--data", str(data), "--out", str(out),
           "--steps", "3", "--batch", "1", "--crop", "64", "--lr", "1e-3", "--warmup", "1",
           "--ema", "0.9", "--threads", "1", "--device", "cpu", "--log-every", "1"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    h0 = (out / "replicas" / "rank0.sha256").read_text().strip()
    h1 = (out / "replicas" / "rank1.sha256").read_text().strip()
    assert h0 == h1
    ck = load_checkpoint(out)
    assert ck["step"] == 3 and "2 processes" in ck["device"]
    model = build_standin()
    initial = state_hash(model)
    model.load_state_dict(ck["model"])
    assert state_hash(model) == h0 != initial   # the checkpoint is the (trained) replica
    assert "step 3/3" in proc.stdout
