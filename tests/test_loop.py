"""loop.py end to end on a tiny random model: 2 rounds, 1 Instructor step and 1 Follower step each.

A random model never writes a valid Instructor reply, so the round's instructions are canned
(`instructor.generate` is replaced); everything else runs for real: Instructor GRPO with its
reward, the Filter, Follower GRPO judged by IFEval rules, checkpoints, metrics and the helper
schedule H_1 = base, H_2 = F_1.
"""

import json

import pytest

import instructor
import loop
from data import UserError, read_jsonl

CANNED_CONSTRAINTS = ["Do not use any commas in your response.",
                      "Write your entire response in lowercase letters.",
                      "Include the keyword 'river' in your response."]


def canned_generate(model, tokenizer, seeds, round_index, cfg, rng, max_new_tokens=512, batch_size=64):
    rows = [{"round": round_index, "mode": "verifiable", "seed": seed, "expected_count": 3,
             "constraints": instructor.constraint_dicts(CANNED_CONSTRAINTS, "verifiable", seed),
             "instruction": instructor.evolved_instruction(
                 seed, [{"text": text} for text in CANNED_CONSTRAINTS])}
            for seed in seeds]
    rows.append({**rows[0], "seed": "duplicated constraints", "constraints": rows[0]["constraints"][:1] * 3})
    return rows, {"sampled": len(seeds) + 1, "unparsed": 0, "wrong_count": 0}


def tiny_settings(model_dir, tmp_path):
    args = loop.argparse.Namespace(preset=None, model=model_dir, helper=None, seeds=None, name="tiny", set=[
        "loop.rounds=2", "loop.max_seeds=4", "loop.instructor_steps=1", "loop.follower_steps=1",
        "loop.eval_limit=0", f"loop.runs_dir={tmp_path}", "loop.instruction_max_new_tokens=8",
        "instructor_grpo.group_size=2", "instructor_grpo.prompts_per_step=2",
        "instructor_grpo.prompts_per_update=1", "instructor_grpo.max_new_tokens=8",
        "follower_grpo.group_size=2", "follower_grpo.prompts_per_step=2",
        "follower_grpo.prompts_per_update=1", "follower_grpo.max_new_tokens=8",
        "instructor.answer_max_new_tokens=8", "judger.llm=score", "filter.llm=false",
    ])
    return loop.settings_from(args)


def test_two_rounds_end_to_end(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(loop.instructor, "generate", canned_generate)
    helpers = []
    load_stage = loop.load_stage
    monkeypatch.setattr(loop, "load_stage", lambda s, cfg, start, helper: helpers.append(helper) or load_stage(s, cfg, start, helper))

    run_dir = loop.run(tiny_settings(tiny_model_dir, tmp_path))

    for round_index in (1, 2):
        round_dir = run_dir / f"round_{round_index}"
        for name in ("instructor/config.json", "instructor/model.safetensors", "follower/config.json",
                     "instructions.jsonl", "filter_report.json"):
            assert (round_dir / name).exists(), name
        report = json.loads((round_dir / "filter_report.json").read_text())
        assert report["total"] == 5 and report["kept"] == 4 and report["removed"]["duplicate"] == 1
        assert len(read_jsonl(round_dir / "instructions.jsonl")) == 4
    # stages: I_1 and F_1 are judged by the base model, I_2 and F_2 by F_1
    assert helpers == [tiny_model_dir, tiny_model_dir, str(run_dir / "round_1" / "follower"),
                       str(run_dir / "round_1" / "follower")]
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    steps = [(m["role"], m["round"]) for m in metrics if "step" in m]
    assert steps == [("instructor", 1), ("follower", 1), ("instructor", 2), ("follower", 2)]
    follower_row = next(m for m in metrics if m["role"] == "follower")
    for key in ("reward_mean", "reward_std", "zero_std_groups", "format_pass", "kl", "clip_low",
                "clip_high", "completion_len_mean", "rollout_tokens_per_s", "step_time"):
        assert key in follower_row, key


def test_rerun_skips_finished_stages(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop.instructor, "generate", canned_generate)
    settings = tiny_settings(tiny_model_dir, tmp_path)
    settings.loop.rounds = 1
    run_dir = loop.run(settings)
    before = (run_dir / "metrics.jsonl").read_text()
    loop.run(settings)
    assert "already done" in capsys.readouterr().out
    assert (run_dir / "metrics.jsonl").read_text() == before  # nothing redone, nothing duplicated


@pytest.mark.parametrize("assignment, message", [
    ("follower_grpo.group_size=1", "at least 2"),
    ("nosuch.field=1", "SECTION.FIELD=VALUE"),
    ("loop.rounds=many", "not a valid int"),
    ("follower_grpo.share_prompts=maybe", "not a valid bool"),
])
def test_bad_settings_are_one_line_errors(assignment, message):
    args = loop.argparse.Namespace(preset=None, model=None, helper=None, seeds=None, name=None, set=[assignment])
    with pytest.raises(UserError, match=message):
        loop.settings_from(args)


def test_settings_parse_booleans_both_ways():
    args = loop.argparse.Namespace(preset=None, model=None, helper=None, seeds=None, name=None,
                                   set=["follower_grpo.share_prompts=false", "follower_grpo.ref_on_cpu=Yes"])
    settings = loop.settings_from(args)
    assert settings.follower_grpo.share_prompts is False and settings.follower_grpo.ref_on_cpu is True


def test_evaluation_is_skipped_when_the_hub_cannot_be_reached(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import evaluate

    def no_network():
        raise UserError("cannot download google/IFEval from the hub; pass --data")

    monkeypatch.setattr(evaluate, "_download_ifeval", no_network)
    settings = tiny_settings(tiny_model_dir, tmp_path)
    settings.loop.eval_limit = 3
    loop.evaluate_into(settings, tiny_model_dir, tmp_path / "round_0", log=print)
    assert "IFEval skipped" in capsys.readouterr().out
    assert not (tmp_path / "round_0" / "ifeval.json").exists()
    settings.loop.eval_data = str(tmp_path / "missing.jsonl")  # a file the user named must exist
    with pytest.raises(UserError):
        loop.evaluate_into(settings, tiny_model_dir, tmp_path / "round_0", log=print)


def test_evaluation_writes_its_row(tiny_model_dir, tmp_path):
    """The loop's pre-round evaluation on a tiny model with 5 IFEval prompts writes its files."""
    from conftest import SHARED

    settings = tiny_settings(tiny_model_dir, tmp_path)
    settings.loop.eval_limit, settings.loop.eval_max_new_tokens = 5, 8
    settings.loop.eval_data = str(SHARED / "ifeval" / "input_data.jsonl")
    rows = []
    loop.evaluate_into(settings, tiny_model_dir, tmp_path / "round_0", log=rows.append)
    result = json.loads((tmp_path / "round_0" / "ifeval.json").read_text())
    assert result["prompts"] == 5 and 0.0 <= result["prompt_strict"] <= 1.0
    assert rows and set(rows[0]) >= {"prompt_strict", "inst_strict", "prompt_loose", "inst_loose"}
    assert len(read_jsonl(tmp_path / "round_0" / "ifeval_results.jsonl")) == 5
