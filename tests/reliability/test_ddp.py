"""Distributed training through the documented entry point: ``torchrun -m aprior train``.

Two CPU processes (gloo) train DACNO2 phase 1 for an epoch on the tiny world, whose
validation split has fewer samples than processes: a rank with no validation batch must not
hang the job (it used to).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import dacno2_tiny_world

from aprior.models.checkpoint import load_checkpoint


def _torchrun() -> list[str]:
    exe = shutil.which("torchrun")
    return [exe] if exe else [sys.executable, "-m", "torch.distributed.run"]


def test_torchrun_two_processes_train_and_agree(tmp_path_factory, tmp_path):
    world = dacno2_tiny_world(tmp_path_factory)
    out = tmp_path / "run"
    cmd = [*_torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "aprior",
           "train", "--phase", "1", "--data", str(world), "--out", str(out), "--preset", "tiny",
           "--device", "cpu", "--epochs", "2", "--max-batches", "2", "--micro-batch", "1",
           "--batch-size", "2", "--cache-dir", str(tmp_path / "cache"), "--threads", "1", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("the 2-process job hung")
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert (out / "weights.pt").is_file() and (out / "metrics.jsonl").is_file()
    assert not [p for p in out.iterdir() if ".aprior-" in p.name or p.name.endswith(".tmp")]
