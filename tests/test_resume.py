"""Restarting a run: what it skips, what it redoes, and which setting changes it refuses.

Kill -9 the loop during Follower training, start it again, and compare with a clean run.
Finished stages (recorded in progress.json) are skipped. An interrupted training stage resumes
from its last step checkpoint (policy, optimizer and RNG state, saved every step here), after
the rows it logged past that step are dropped from metrics.jsonl. So the resumed run must
produce the same checkpoint bytes, the same instructions and the same metrics as an
uninterrupted one; only wall-clock fields (times and tokens/s) may differ.

A restart may change a setting only where no finished (or checkpointed) stage depends on it;
an evaluation that was skipped (no network) is not finished, so the next start runs it.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import evaluate
import loop
import rollout
from conftest import SHARED
from data import UserError, read_jsonl, write_json
from settings import apply_override, flat_settings
from test_loop import DEPARTURES, canned_generate, no_network, tiny_settings

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
                "instructor.answer_max_new_tokens=8", "filter.llm=false", *DEPARTURES]
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
                 "round_1/instructions.jsonl", "round_1/filter_report.json",
                 "round_1/instructor_samples.jsonl", "round_1/follower_samples.jsonl"):  # no step twice
        assert (clean / "run" / name).read_bytes() == (resumed / "run" / name).read_bytes(), name
    assert comparable_metrics(clean / "run" / "metrics.jsonl") == comparable_metrics(resumed / "run" / "metrics.jsonl")


def test_a_skipped_evaluation_runs_at_the_next_start(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(loop.instructor, "generate", canned_generate)
    monkeypatch.setattr(evaluate, "_download_ifeval", no_network)  # the first start is offline
    settings = tiny_settings(tiny_model_dir, tmp_path)
    settings.loop.rounds, settings.loop.eval_limit, settings.loop.eval_max_new_tokens = 1, 2, 8
    run_dir = loop.run(settings)
    done = json.loads((run_dir / "progress.json").read_text())["done"]
    assert done == ["round_1/instructor", "round_1/instructions", "round_1/follower"]  # no eval
    trained = (run_dir / "metrics.jsonl").read_text()

    settings.loop.eval_data = str(SHARED / "ifeval" / "input_data.jsonl")
    loop.run(settings)
    done = json.loads((run_dir / "progress.json").read_text())["done"]
    assert done[-2:] == ["round_0/eval", "round_1/eval"]
    for round_dir in ("round_0", "round_1"):
        result = json.loads((run_dir / round_dir / "ifeval.json").read_text())
        assert result["prompts"] == 2 and {"plain", "seif"} <= set(result)
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    assert (run_dir / "metrics.jsonl").read_text().startswith(trained)  # training was not redone
    assert [(m["round"], "plain_prompt_strict" in m, "seif_prompt_strict" in m)
            for m in metrics if m["role"] == "eval"] == [(0, True, True), (1, True, True)]
    changes = read_jsonl(run_dir / "settings_changes.jsonl")
    assert [row["changed"] for row in changes] == [{"loop.eval_data": ["", settings.loop.eval_data]}]


class Loaded(Exception):
    """Raised instead of loading a model: the start got past its settings check."""


def fake_run_folder(tmp_path, done, checkpoints=()):
    """A run folder as a first start leaves it after finishing `done`, without training anything."""
    settings = tiny_settings("tiny/base", tmp_path)
    settings.loop.rounds = 1
    run_dir = tmp_path / "tiny"
    write_json(run_dir / "settings.json", dataclasses.asdict(settings))
    write_json(run_dir / "progress.json", {"done": done})
    (run_dir / "round_1").mkdir()
    (run_dir / "round_1" / "instructions.jsonl").write_text("")
    for stage in checkpoints:
        (run_dir / f"{stage}_checkpoints").mkdir()
        (run_dir / f"{stage}_checkpoints" / "step_000000.pt").write_bytes(b"")
    return settings, run_dir


def files(run_dir):
    return {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}


ROUND_1 = ["round_0/eval", "round_1/instructor", "round_1/instructions", "round_1/follower", "round_1/eval"]


@pytest.mark.parametrize("done, change, refused", [
    (["round_0/eval"], "loop.model=other/model", "loop.model"),
    (["round_0/eval"], "loop.eval_limit=50", "loop.eval_limit"),
    (["round_0/eval"], "follower_grpo.lr=2e-6", None),  # nothing is trained yet
    (["round_1/instructor"], "instructor_grpo.lr=2e-6", "instructor_grpo.lr"),
    (["round_1/instructor"], "loop.seed=1", "loop.seed"),
    (["round_1/instructor"], "loop.eval_limit=50", None),  # no evaluation finished yet
    (["round_1/instructor"], "instructor_grpo.micro_batch_size=1", None),  # a memory knob
    (ROUND_1, "beyond_seif.score_judge=false", "beyond_seif.score_judge"),
    (ROUND_1, "beyond_seif.rules=false", "beyond_seif.rules"),
    (ROUND_1, "loop.rounds=2", None),  # more rounds continue a finished run
])
def test_a_restart_refuses_changes_to_finished_stages(tmp_path, monkeypatch, done, change, refused):
    settings, run_dir = fake_run_folder(tmp_path, done)
    before = files(run_dir)
    name = change.split("=")[0]
    old = flat_settings(dataclasses.asdict(settings))[name]
    apply_override(settings, change)
    monkeypatch.setattr(rollout, "load", lambda *args, **kwargs: (_ for _ in ()).throw(Loaded()))
    monkeypatch.setattr(evaluate, "_download_ifeval", no_network)
    if refused:
        with pytest.raises(UserError, match=f"stages made with other settings \\({refused} was ") as error:
            loop.run(settings)
        assert "\n" not in str(error.value)
        assert f"to resume it add --set {refused}=" in str(error.value)  # names the value to go back to
        assert files(run_dir) == before  # refused before anything is written
    else:
        with pytest.raises(Loaded):
            loop.run(settings)
        assert files(run_dir)[run_dir / "settings.json"] == before[run_dir / "settings.json"]  # kept
        [row] = read_jsonl(run_dir / "settings_changes.jsonl")
        assert row["changed"] == {name: [old, flat_settings(dataclasses.asdict(settings))[name]]}


def test_a_checkpointed_stage_counts_as_started(tmp_path):
    settings, run_dir = fake_run_folder(tmp_path, ["round_1/instructor", "round_1/instructions"],
                                        checkpoints=["round_1/follower"])
    settings.follower_grpo.lr = 2e-6
    with pytest.raises(UserError, match="follower_grpo.lr was 1e-06, now 2e-06"):
        loop.run(settings)


def test_a_restart_with_the_same_settings_records_nothing(tmp_path):
    settings, run_dir = fake_run_folder(tmp_path, ROUND_1)
    loop.run(settings)
    assert not (run_dir / "settings_changes.jsonl").exists()


def test_a_resumed_stage_forgets_the_samples_of_the_steps_it_redoes(tmp_path):
    import training

    path = tmp_path / "follower_samples.jsonl"
    items = [{"messages": [{"role": "user", "content": "Say hi."}]}] * 2
    for step in range(3):
        training.log_samples(path, step, items, ["hi", "hello"], [1.0, 0.0])
    training.forget_samples(path, first_step=1)  # resuming after step 0's checkpoint: 1 and 2 run again
    assert [(row["step"], row["completion"], row["reward"]) for row in read_jsonl(path)] == [(0, "hi", 1.0), (0, "hello", 0.0)]
    assert read_jsonl(path)[0]["prompt"] == "Say hi."
    training.forget_samples(tmp_path / "none.jsonl", first_step=0)  # nothing logged yet: nothing to do
