"""bench/judge_agreement.py: which pairs of a loop round it measures, that the calibrated cut is
never fitted on the pairs it is measured on, and a whole run on a tiny model."""

import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import REPO
from data import UserError

spec = importlib.util.spec_from_file_location("judge_agreement", REPO / "bench" / "judge_agreement.py")
judge_agreement = importlib.util.module_from_spec(spec)
spec.loader.exec_module(judge_agreement)

LOWER = {"text": "Write the whole reply in lowercase letters.", "ifeval_id": "change_case:english_lowercase",
         "kwargs": {}}
TONE = {"text": "Sound cheerful.", "ifeval_id": None, "kwargs": None}
END = {"text": 'End with the exact phrase "Bye."', "ifeval_id": "startend:end_checker", "kwargs": {"end_phrase": "Bye."}}


def write_run(tmp_path, samples, lenient=True):
    """A loop run folder with round 1's instructions and Follower samples."""
    rows = [{"seed": "Describe your street.", "constraints": [LOWER, TONE],
             "instruction": "Describe your street.\nWrite the whole reply in lowercase letters.\nSound cheerful."},
            {"seed": "Greet a neighbour.", "constraints": [END],
             "instruction": 'Greet a neighbour.\nEnd with the exact phrase "Bye."'}]
    round_dir = tmp_path / "round_1"
    round_dir.mkdir(parents=True)
    (tmp_path / "settings.json").write_text(json.dumps({"loop": {"model": "m", "helper": ""},
                                                        "beyond_seif": {"lenient_follower": lenient}}))
    (round_dir / "instructions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (round_dir / "follower_samples.jsonl").write_text("".join(
        json.dumps({"step": 0, "prompt": rows[row]["instruction"], "completion": text, "reward": 0.0}) + "\n"
        for row, text in samples))
    return tmp_path


def test_only_rule_checked_constraints_of_answered_samples_are_paired_once_each(tmp_path):
    run = write_run(tmp_path, [(0, "a quiet street with old trees."), (0, "A Quiet Street."),
                               (0, "a quiet street with old trees."), (1, "Hello there, see you. Bye."),
                               (1, "   ")])
    pairs, settings = judge_agreement.round_pairs(run, 1)
    assert settings["loop"]["model"] == "m"
    by_answer = {pair["answer"]: pair for pair in pairs}
    assert len(pairs) == 3  # the tone constraint has no rule; the repeated answer counts once; blank: none
    assert by_answer["a quiet street with old trees."]["rule"] == 1
    assert by_answer["a quiet street with old trees."]["samples"] == [0, 2]
    assert by_answer["A Quiet Street."]["rule"] == 0
    assert by_answer["Hello there, see you. Bye."]["rule"] == 1
    assert by_answer["Hello there, see you. Bye."]["seed"] == "Greet a neighbour."


def test_strict_format_judges_the_answer_inside_the_tags_and_drops_the_rest(tmp_path):
    run = write_run(tmp_path, [(0, "<think>Plan It</think><answer>a street.</answer>"), (0, "a street, no tags.")],
                    lenient=False)
    pairs, _ = judge_agreement.round_pairs(run, 1)
    assert [(pair["answer"], pair["rule"]) for pair in pairs] == [("a street.", 1)]


def test_a_sample_of_another_instruction_set_is_named(tmp_path):
    run = write_run(tmp_path, [(0, "fine.")])
    with (run / "round_1" / "follower_samples.jsonl").open("a") as f:
        f.write(json.dumps({"prompt": "Something else", "completion": "x"}) + "\n")
    with pytest.raises(UserError, match="sample 2's prompt"):
        judge_agreement.round_pairs(run, 1)


def test_each_half_is_judged_with_the_cut_fitted_on_the_other_half():
    """Changing the rule verdicts of one half moves that half's cut-fitting for the OTHER half only."""
    pairs = [{"instruction": f"i{n}", "rule": int(n % 2 == 0), "samples": [n]} for n in range(16)]
    probabilities = [0.9 if pair["rule"] else 0.6 for pair in pairs]
    verdicts, cuts = judge_agreement.two_fold_verdicts(pairs, probabilities, seed=0)
    assert verdicts == [pair["rule"] for pair in pairs]  # the cut lands between 0.6 and 0.9, not at 0.5
    assert all(0.6 <= cut < 0.9 for cut in cuts)
    # flip the verdicts of every pair the first fold holds: only the other fold's verdicts may change
    instructions = sorted(pair["instruction"] for pair in pairs)
    import random
    random.Random(0).shuffle(instructions)
    first = set(instructions[:8])
    flipped = [{**pair, "rule": 1 - pair["rule"]} if pair["instruction"] in first else pair for pair in pairs]
    again, _ = judge_agreement.two_fold_verdicts(flipped, probabilities, seed=0)
    for pair, before, after in zip(pairs, verdicts, again):
        if pair["instruction"] in first:
            assert after == before
    assert any(before != after for pair, before, after in zip(pairs, verdicts, again) if pair["instruction"] not in first)


def test_reward_agreement_compares_each_samples_mean_verdict():
    pairs = [{"rule": 1, "samples": [0, 1]}, {"rule": 0, "samples": [0]}, {"rule": 1, "samples": [2]}]
    assert judge_agreement.reward_agreement(pairs, [1, 0, 1]) == 1.0
    # sample 0 gets 1/2 either way (two verdicts swapped), sample 1 gets 0 instead of 1, sample 2 agrees
    assert judge_agreement.reward_agreement(pairs, [0, 1, 1]) == pytest.approx(2 / 3, abs=1e-4)
    assert judge_agreement.reward_agreement(pairs, [0, 0, 0]) == 0.0


def test_a_whole_run_on_a_tiny_model_writes_every_decision(tmp_path, tiny_model_dir):
    run = write_run(tmp_path / "run", [(0, "a quiet street with old trees."), (0, "A Quiet Street."), (1, "Hi. Bye."),
                                       (1, "Hi, bye then"), (0, "an old street with trees."), (1, "So long. Bye.")])
    out = tmp_path / "agreement.json"
    judge_agreement.main(["--run", str(run), "--model", tiny_model_dir, "--out", str(out), "--generate", "2",
                          "--batch-size", "4"])
    results = json.loads(out.read_text())
    assert results["pairs"] == 6 and results["rule_followed"] == 4
    names = [d["decision"] for d in results["decisions"]]
    assert names[0].startswith("before: LLM, P([[1]]) > 0.5") and names[5].startswith("before: LLM, generated")
    assert names[3].startswith("after: PMI > the cut fitted") and len(results["decisions"][3]["cuts"]) == 2
    assert "same step" in names[4] and results["decisions"][4]["pairs_with_a_fitted_cut"] == 0  # 6 pairs: too few
    p1 = [r["p1"] for r in results["records"]]
    assert results["decisions"][0]["share_said_1"] == pytest.approx(sum(p > 0.5 for p in p1) / 6, abs=1e-4)
    assert all(0 <= d["agreement"] <= 1 for d in results["decisions"])
    assert out.with_suffix(".txt").read_text().count("agreement") >= 8


def test_a_folder_that_is_not_a_run_gets_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "bench" / "judge_agreement.py"), "--run", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "settings.json: not found" in result.stderr


def test_the_per_step_cut_comes_from_the_same_step_and_other_instructions_only():
    # two steps of three instructions, two pairs each: followed pairs have PMI 0.4, the others 0.2
    pairs = [{"instruction": f"s{step}i{n}", "step": step, "rule": rule, "samples": [step * 6 + n * 2 + rule]}
             for step in (0, 1) for n in range(3) for rule in (1, 0)]
    values = [0.4 if pair["rule"] else 0.2 for pair in pairs]
    verdicts, fitted = judge_agreement.per_step_verdicts(pairs, values)
    assert fitted == 0 and verdicts == [1] * 12  # 2 of each kind left per pair: too few, so PMI > 0
    pairs = pairs * 2  # now 4 of each kind remain beside each pair's own instruction
    values = values * 2
    verdicts, fitted = judge_agreement.per_step_verdicts(pairs, values)
    assert fitted == 24 and verdicts == [pair["rule"] for pair in pairs]  # cut between 0.2 and 0.4
    # another step's verdicts, or the pair's own instruction's, never move its cut
    flipped = [dict(pair, rule=1 - pair["rule"]) if pair["step"] == 1 or pair["instruction"] == "s0i0" else pair
               for pair in pairs]
    again, _ = judge_agreement.per_step_verdicts(flipped, values)
    assert [v for v, p in zip(again, pairs) if p["instruction"] == "s0i0"] == [1, 0, 1, 0]
