"""loop.py end to end on a tiny random model: 2 rounds, 1 Instructor step and 1 Follower step each.

A random model never writes a valid Instructor reply, so the round's instructions are canned
(`instructor.generate` is replaced); everything else runs for real: Instructor GRPO with its
reward, the Filter, Follower GRPO judged by IFEval rules, checkpoints, metrics and the helper
schedule H_1 = base, H_2 = F_1. The run turns on the departures this test was written for
(beyond_seif: rule checks, the echo guard, the score judge and the Filter's cheap checks), so the
canned constraints carry IFEval ids and the duplicated set is removed by the cheap checks;
tests/test_seif_preset.py runs the loop with every departure off.
"""

import json

import pytest

import instructor
import loop
from data import UserError, read_jsonl
from settings import BeyondSEIF

CANNED_CONSTRAINTS = ["Do not use any commas in your response.",
                      "Write your entire response in lowercase letters.",
                      "Include the keyword 'river' in your response."]


def canned_generate(model, tokenizer, seeds, round_index, cfg, rng, max_new_tokens=512, batch_size=64,
                    departures=None):
    rows = [{"round": round_index, "mode": "verifiable", "seed": seed, "expected_count": 3,
             "constraints": instructor.constraint_dicts(CANNED_CONSTRAINTS, "verifiable", seed,
                                                        departures=BeyondSEIF(rules=True)),
             "instruction": instructor.evolved_instruction(
                 seed, [{"text": text} for text in CANNED_CONSTRAINTS])}
            for seed in seeds]
    rows.append({**rows[0], "seed": "duplicated constraints", "constraints": rows[0]["constraints"][:1] * 3})
    return rows, {"sampled": len(seeds) + 1, "unparsed": 0, "wrong_count": 0}


# the departures from SEIF's code these tests were written with (all were on by default before
# they moved into beyond_seif/, the score judge was asked for): rule checks, the echo guard, the
# one-pass score judge and the Filter's cheap checks
DEPARTURES = ["beyond_seif.rules=true", "beyond_seif.echo_guard=true", "beyond_seif.score_judge=true",
              "beyond_seif.filter_checks=true"]


def tiny_settings(model_dir, tmp_path):
    args = loop.argparse.Namespace(preset=None, model=model_dir, helper=None, seeds=None, name="tiny", set=[
        "loop.rounds=2", "loop.max_seeds=4", "loop.instructor_steps=1", "loop.follower_steps=1",
        "loop.eval_limit=0", f"loop.runs_dir={tmp_path}", "loop.instruction_max_new_tokens=8",
        "instructor_grpo.group_size=2", "instructor_grpo.prompts_per_step=2",
        "instructor_grpo.prompts_per_update=1", "instructor_grpo.max_new_tokens=8",
        "follower_grpo.group_size=2", "follower_grpo.prompts_per_step=2",
        "follower_grpo.prompts_per_update=1", "follower_grpo.max_new_tokens=8",
        "instructor.answer_max_new_tokens=8", "filter.llm=false",
        *DEPARTURES,
    ])
    return loop.settings_from(args)


def test_two_rounds_end_to_end(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop.instructor, "generate", canned_generate)
    helpers = []
    load_stage = loop.training.load_stage
    monkeypatch.setattr(loop.training, "load_stage", lambda cfg, start, helper: helpers.append(helper) or load_stage(cfg, start, helper))

    run_dir = loop.run(tiny_settings(tiny_model_dir, tmp_path))

    for round_index in (1, 2):
        round_dir = run_dir / f"round_{round_index}"
        for name in ("instructor/config.json", "instructor/model.safetensors", "follower/config.json",
                     "instructions.jsonl", "filter_report.json"):
            assert (round_dir / name).exists(), name
        report = json.loads((round_dir / "filter_report.json").read_text())
        assert report["total"] == 5 and report["kept"] == 4 and report["removed"]["duplicate"] == 1
        # with rule checks on, every canned constraint is one an IFEval rule checks
        assert report["mapped_to_ifeval"] == {"verifiable_constraints": 15, "mapped": 15, "mapped_fraction": 1.0}
        assert len(read_jsonl(round_dir / "instructions.jsonl")) == 4
    # stages: I_1 and F_1 are judged by the base model, I_2 and F_2 by F_1
    assert helpers == [tiny_model_dir, tiny_model_dir, str(run_dir / "round_1" / "follower"),
                       str(run_dir / "round_1" / "follower")]
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    steps = [(m["role"], m["round"]) for m in metrics if "step" in m]
    assert steps == [("instructor", 1), ("follower", 1), ("instructor", 2), ("follower", 2)]
    follower_row = next(m for m in metrics if m["role"] == "follower")
    for key in ("reward_mean", "reward_std", "zero_std_groups", "format_pass", "kl", "clip_low",
                "clip_high", "completion_len_mean", "rollout_tokens_per_s", "step_time",
                "echo_or_off_topic"):  # the echo guard's count, logged only with beyond_seif.echo_guard
        assert key in follower_row, key
    # every sample of every GRPO step is kept with its reward, to read what the reward paid for
    samples = read_jsonl(run_dir / "round_1" / "follower_samples.jsonl")
    assert len(samples) == 2 * 2 and {row["step"] for row in samples} == {0}
    assert set(samples[0]) == {"step", "prompt", "completion", "reward"}
    instructions = {row["instruction"] for row in read_jsonl(run_dir / "round_1" / "instructions.jsonl")}
    assert all(row["prompt"] in instructions and 0.0 <= row["reward"] <= 1.0 for row in samples)
    # at its end the run draws its figures and says where they are
    assert (run_dir / "plots" / "rewards.png").exists() and (run_dir / "plots" / "constraints.png").exists()
    assert f"plots are in {run_dir / 'plots'}/" in capsys.readouterr().out


def test_rerun_skips_finished_stages(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop.instructor, "generate", canned_generate)
    settings = tiny_settings(tiny_model_dir, tmp_path)
    settings.loop.rounds = 1
    run_dir = loop.run(settings)
    before = (run_dir / "metrics.jsonl").read_text()
    loop.run(settings)
    assert "already done" in capsys.readouterr().out
    assert (run_dir / "metrics.jsonl").read_text() == before  # nothing redone, nothing duplicated


def no_network():
    raise UserError("cannot download google/IFEval from the hub; pass --data")


def test_evaluation_is_skipped_when_the_hub_cannot_be_reached(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import evaluate

    monkeypatch.setattr(evaluate, "_download_ifeval", no_network)
    settings = tiny_settings(tiny_model_dir, tmp_path)
    settings.loop.eval_limit = 3
    assert loop.evaluate_into(settings, tiny_model_dir, tmp_path / "round_0", log=print) is False
    assert "IFEval skipped" in capsys.readouterr().out
    assert not (tmp_path / "round_0" / "ifeval.json").exists()
    settings.loop.eval_data = str(tmp_path / "missing.jsonl")  # a file the user named must exist
    with pytest.raises(UserError):
        loop.evaluate_into(settings, tiny_model_dir, tmp_path / "round_0", log=print)


def test_evaluation_writes_its_row(tiny_model_dir, tmp_path):
    """The loop's pre-round evaluation on a tiny model with 5 IFEval prompts writes its files, both formats."""
    from conftest import SHARED

    settings = tiny_settings(tiny_model_dir, tmp_path)
    settings.loop.eval_limit, settings.loop.eval_max_new_tokens = 5, 8
    settings.loop.eval_data = str(SHARED / "ifeval" / "input_data.jsonl")
    rows = []
    assert loop.evaluate_into(settings, tiny_model_dir, tmp_path / "round_0", log=rows.append) is True
    result = json.loads((tmp_path / "round_0" / "ifeval.json").read_text())
    assert result["prompts"] == 5 and 0.0 <= result["plain"]["prompt_strict"] <= 1.0
    assert result["seif"]["format_pass"] == 0.0  # a random model never writes <think>/<answer>
    assert rows and set(rows[0]) >= {"plain_prompt_strict", "plain_inst_strict", "plain_prompt_loose",
                                     "plain_inst_loose", "seif_prompt_strict", "seif_format_pass"}
    for fmt in ("plain", "seif"):
        assert len(read_jsonl(tmp_path / "round_0" / f"ifeval_results_{fmt}.jsonl")) == 5


def test_evaluation_reports_both_formats(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """Canned replies: one in SEIF's format (its thinking breaks the rules, its answer does not),
    one plain reply. Plain scores whole replies; seif scores the answer, and fails the plain reply."""
    from conftest import fake_generate

    eval_data = tmp_path / "ifeval.jsonl"
    rules = {"instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"], "kwargs": [{}, {}]}
    eval_data.write_text("".join(json.dumps({"key": key, "prompt": prompt, **rules}) + "\n"
                                 for key, prompt in ((1, "Describe a river."), (2, "Describe a lake."))))
    calls = fake_generate(monkeypatch, ["<think>Lowercase, NO commas.</think><answer>a river runs on</answer>",
                                        "A lake is still"])
    settings = tiny_settings(tiny_model_dir, tmp_path)
    settings.loop.eval_limit, settings.loop.eval_data = 2, str(eval_data)
    rows = []
    loop.evaluate_into(settings, tiny_model_dir, tmp_path / "round_1", log=rows.append)

    assert [call[0][0][0]["role"] for call in calls] == ["user", "system"]  # plain, then seif
    result = json.loads((tmp_path / "round_1" / "ifeval.json").read_text())
    assert result["plain"] == {"prompt_strict": 0.0, "inst_strict": 0.25, "prompt_loose": 0.0, "inst_loose": 0.25}
    assert result["seif"] == {"prompt_strict": 0.5, "inst_strict": 0.5, "prompt_loose": 0.5, "inst_loose": 0.5,
                              "format_pass": 0.5}
    assert rows[0]["plain_inst_strict"] == 0.25 and rows[0]["seif_prompt_strict"] == 0.5
    seif_results = read_jsonl(tmp_path / "round_1" / "ifeval_results_seif.jsonl")
    assert [r["strict"] for r in seif_results] == [[True, True], [False, False]]
    printed = capsys.readouterr().out
    assert "plain prompt_strict 0.000" in printed and "seif prompt_strict 0.500" in printed


def test_the_follower_script_samples_the_same_replies_on_every_run(tiny_model_dir, tmp_path):
    """`python follower.py train` seeds sampling with loop.seed: a rerun with the same settings
    trains on the same replies (the loop seeds each stage itself, run_folder.begin_stage)."""
    import cli

    instructions = tmp_path / "instructions.jsonl"
    instructions.write_text(json.dumps({"seed": "Describe a cat.", "instruction": "Describe a cat.\nBe brief.",
                                        "constraints": [{"text": "Be brief."}]}) + "\n")
    overrides = ["follower_grpo.group_size=2", "follower_grpo.prompts_per_step=1", "follower_grpo.prompts_per_update=1",
                 "follower_grpo.max_new_tokens=8", "judger.max_new_tokens=4", "loop.follower_steps=1"]
    completions = []
    for run in ("a", "b"):
        cli.main("follower", ["train", "--instructions", str(instructions), "--out", str(tmp_path / run),
                              "--model", tiny_model_dir, *[arg for o in overrides for arg in ("--set", o)]])
        completions.append([row["completion"] for row in read_jsonl(tmp_path / f"{run}_samples.jsonl")])
    assert len(completions[0]) == 2 and completions[0] == completions[1]
