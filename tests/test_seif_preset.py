"""SEIF and nothing else: `python loop.py --preset seif` on a tiny model, with every departure off.

A random tiny model never writes a valid Instructor reply, so the round's instructions are
canned (the worker below replaces `instructor.generate`); the Filter's LLM check is off
(`filter.llm=false`, so the Follower has instructions to train on); everything else is SEIF's
code: the Instructor's GRPO stage with its reward, the Follower's GRPO stage judged by the
helper's generated verdicts. The run must import nothing from beyond_seif/, and must run the
same from a copy of the project without that folder, as a fork that deleted it would.
"""

import shutil
import subprocess
import sys

from conftest import REPO

from data import read_jsonl

WORKER = '''
import importlib.util
import sys

import instructor
import loop

CANNED = ["Do not use any commas.", "Write in lowercase letters.", "Mention a river."]


def canned_generate(model, tokenizer, seeds, round_index, cfg, rng, max_new_tokens=512, batch_size=64,
                    departures=None):
    rows = [instructor.instruction_row(round_index, "verifiable", seed,
                                       instructor.constraint_dicts(CANNED, "verifiable", seed, departures), 3)
            for seed in seeds]
    return rows, {"sampled": len(seeds), "unparsed": 0, "wrong_count": 0}


instructor.generate = canned_generate
loop.main(sys.argv[1:])
print("layer modules:", sorted(name for name in sys.modules if name.split(".")[0] == "beyond_seif"))
print("layer on the path:", importlib.util.find_spec("beyond_seif") is not None)
'''


def run_seif_preset(project, model_dir, runs_dir):
    (project / "seif_worker.py").write_text(WORKER)
    args = ["--preset", "seif", "--model", model_dir, "--name", "seif", "--set", f"loop.runs_dir={runs_dir}",
            "--set", "loop.rounds=1", "--set", "loop.max_seeds=4", "--set", "loop.instructor_steps=1",
            "--set", "loop.follower_steps=1", "--set", "loop.eval_limit=0",
            "--set", "loop.instruction_max_new_tokens=8", "--set", "instructor.answer_max_new_tokens=8",
            "--set", "instructor_grpo.max_new_tokens=8", "--set", "follower_grpo.max_new_tokens=8",
            "--set", "instructor_grpo.group_size=2", "--set", "follower_grpo.group_size=2",
            "--set", "judger.max_new_tokens=8", "--set", "filter.llm=false"]
    result = subprocess.run([sys.executable, "seif_worker.py", *args], cwd=project, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, runs_dir / "seif"


def check_run(stdout, run_dir):
    assert "layer modules: []" in stdout  # with every departure off, nothing of beyond_seif is imported
    steps = [(row["role"], row["step"]) for row in read_jsonl(run_dir / "metrics.jsonl") if "step" in row]
    assert steps == [("instructor", 0), ("follower", 0)]
    follower_row = next(row for row in read_jsonl(run_dir / "metrics.jsonl") if row.get("role") == "follower")
    assert "echo_or_off_topic" not in follower_row and "format_pass" in follower_row  # SEIF's reward only
    assert (run_dir / "round_1" / "follower" / "config.json").exists()
    constraints = read_jsonl(run_dir / "round_1" / "instructions.jsonl")[0]["constraints"]
    assert constraints == [{"text": text} for text in ("Do not use any commas.", "Write in lowercase letters.",
                                                        "Mention a river.")]  # no rule ids: the LLM judges


def test_the_seif_preset_imports_nothing_from_the_departures(tiny_model_dir, tmp_path):
    try:
        stdout, run_dir = run_seif_preset(REPO, tiny_model_dir, tmp_path / "runs")
    finally:
        (REPO / "seif_worker.py").unlink(missing_ok=True)
    check_run(stdout, run_dir)
    assert "layer on the path: True" in stdout


def test_the_seif_preset_runs_without_the_departures_folder(tiny_model_dir, tmp_path):
    fork = tmp_path / "fork"
    fork.mkdir()
    for path in REPO.glob("*.py"):
        if path.name != "seif_worker.py":
            shutil.copy(path, fork)
    shutil.copytree(REPO / "data", fork / "data")
    assert not (fork / "beyond_seif").exists()
    stdout, run_dir = run_seif_preset(fork, tiny_model_dir, tmp_path / "runs")
    check_run(stdout, run_dir)
    assert "layer on the path: False" in stdout
