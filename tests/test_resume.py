"""Kill -9 the loop during Follower training, start it again, and compare with a clean run.

Finished stages (recorded in progress.json) are skipped. An interrupted training stage resumes
from its last step checkpoint (policy, optimizer and RNG state, saved every step here), after
the rows it logged past that step are dropped from metrics.jsonl. So the resumed run must
produce the same checkpoint bytes, the same instructions and the same metrics as an
uninterrupted one; only wall-clock fields (times and tokens/s) may differ.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from data import read_jsonl

WORKER = Path(__file__).resolve().parent / "loop_worker.py"
TIMING_KEYS = {"step_time", "rollout_time", "update_time", "rollout_tokens_per_s", "update_tokens_per_s"}


def loop_command(model_dir, runs_dir):
    settings = ["loop.rounds=1", "loop.max_seeds=4", "loop.instructor_steps=1", "loop.follower_steps=4",
                "loop.follower_epochs_first=2", "loop.eval_limit=0", f"loop.runs_dir={runs_dir}",
                "instructor_grpo.group_size=2", "instructor_grpo.prompts_per_step=2",
                "instructor_grpo.prompts_per_update=1", "instructor_grpo.max_new_tokens=8",
                "follower_grpo.group_size=2", "follower_grpo.prompts_per_step=2",
                "follower_grpo.prompts_per_update=1", "follower_grpo.max_new_tokens=24",
                "follower_grpo.checkpoint_every=1",
                "instructor.answer_max_new_tokens=8", "judger.llm=score", "filter.llm=false"]
    return [sys.executable, str(WORKER), "--model", model_dir, "--name", "run"] + [
        part for s in settings for part in ("--set", s)]


def comparable_metrics(path):
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in read_jsonl(path)]


def test_kill_during_follower_training_then_resume(tiny_model_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    subprocess.run(loop_command(tiny_model_dir, clean), check=True, env=env, capture_output=True, timeout=300)

    process = subprocess.Popen(loop_command(tiny_model_dir, resumed), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_checkpoint = resumed / "run" / "round_1" / "follower_checkpoints" / "step_000000.pt"
    deadline = time.time() + 240
    while time.time() < deadline and not first_checkpoint.exists():  # kill after step 0's checkpoint
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = json.loads((resumed / "run" / "progress.json").read_text())["done"]
    assert "round_1/instructor" in done and "round_1/follower" not in done  # killed mid-stage

    restarted = subprocess.run(loop_command(tiny_model_dir, resumed), check=True, env=env,
                               capture_output=True, text=True, timeout=300)
    assert "role=follower round=1 step=0 " not in restarted.stdout  # resumed after step 0
    assert "role=follower round=1 step=1 " in restarted.stdout
    assert not (resumed / "run" / "round_1" / "follower_checkpoints").exists()  # cleaned up
    for name in ("round_1/follower/model.safetensors", "round_1/instructor/model.safetensors",
                 "round_1/instructions.jsonl", "round_1/filter_report.json"):
        assert (clean / "run" / name).read_bytes() == (resumed / "run" / name).read_bytes(), name
    assert comparable_metrics(clean / "run" / "metrics.jsonl") == comparable_metrics(resumed / "run" / "metrics.jsonl")
