"""Data-parallel GRPO: 2 CPU processes (gloo), 2 steps.

The processes are started by torchrun, which is what `accelerate launch --multi_gpu` runs
underneath; on CPU, Accelerator picks the gloo backend from torchrun's environment.

Each rank samples different completions for its own prompts, so the ranks would drift apart
if gradients were not all-reduced. After training every rank must hold the same weights, and
those weights must differ from the start.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"


def test_two_processes_end_with_identical_weights(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", "29533", str(WORKER), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    start = torch.load(tmp_path / "start.pt")
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys() == start.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between ranks"
    assert any(not torch.equal(rank0[name], start[name]) for name in rank0)
    assert len(torch.load(tmp_path / "metrics.pt")) == 2  # only the main process logged, once a step
