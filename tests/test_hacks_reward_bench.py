"""bench/hacks_reward.py --gate-from: a bad results file gets a one-line error before any model
loads, and the stored helper answers round-trip to the hack set's rows."""

import json
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "bench" / "hacks_reward.py"


def gate_from(path, model="smollm2-135m"):
    return subprocess.run([sys.executable, str(SCRIPT), "--model", model, "--gate-from", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_a_file_without_the_helpers_answers_is_refused_by_name(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"model": "smollm2-135m", "gate_fit_s": 1.0, "gate": {}}))
    result = gate_from(old)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "with the helper's answers" in result.stderr and "helper_answers" in result.stderr
    missing = gate_from(tmp_path / "nowhere.json")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr and "nowhere.json" in missing.stderr


def test_another_models_answers_are_refused(tmp_path):
    other = tmp_path / "qwen.json"
    other.write_text(json.dumps({"model": "qwen2.5-coder-0.5b", "gate_fit_s": 1.0,
                                 "helper_answers": [["Describe a lighthouse at night.", "It glows."]]}))
    result = gate_from(other)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "'qwen2.5-coder-0.5b', not 'smollm2-135m'" in result.stderr


def test_the_stored_answers_belong_to_the_hack_sets_requests():
    """The committed results keep the helper's answers as (instruction, answer), each instruction one
    of bench/hacks.jsonl's, so --gate-from can find every answer's row (and its seed) again."""
    instructions = {json.loads(line)["instruction"] for line in (REPO / "bench" / "hacks.jsonl").read_text().splitlines()}
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b"):
        stored = json.loads((REPO / "bench" / "results" / f"hacks_reward_{name}.json").read_text())["helper_answers"]
        assert len(stored) >= 40 and all(instruction in instructions and answer.strip() for instruction, answer in stored)


def test_the_helpers_verdicts_are_asked_once_per_pair_and_returned_in_order():
    """Five settings ask the judge about the same answers; the cache asks each new pair once, in
    one batch, and hands every caller its verdicts in its own order."""
    sys.path.insert(0, str(REPO / "bench"))
    import hacks_reward

    asked = []

    def judge(model, tokenizer, pairs, cfg, departures=None, missing=0.0):
        asked.append(list(pairs))
        return [float(len(answer) > 3) for answer, _ in pairs]

    verdicts = hacks_reward.cached_verdicts(judge)
    first = verdicts(None, None, [("a long answer", "c1"), ("no", "c1"), ("a long answer", "c1")], cfg=None)
    second = verdicts(None, None, [["no", "c1"], ("a long answer", "c2"), ("a long answer", "c1")], cfg=None)
    assert first == [1.0, 0.0, 1.0] and second == [0.0, 1.0, 1.0]
    assert asked == [[("a long answer", "c1"), ("no", "c1")], [("a long answer", "c2")]]
    # what a reply without a verdict counts as is part of the question
    assert verdicts(None, None, [("no", "c1")], cfg=None, missing=1.0) == [0.0] and len(asked) == 3


def test_the_gates_features_are_computed_once_per_instruction_and_answer():
    sys.path.insert(0, str(REPO / "bench"))
    import hacks_reward

    asked = []

    def features(model, tokenizer, rows, answers, batch_size=16):
        asked.append([(row["id"], answer) for row, answer in zip(rows, answers)])
        return [len(answer) for answer in answers]

    cached = hacks_reward.cached(features)
    one, two = {"id": 1, "instruction": "Describe rain."}, {"id": 2, "instruction": "Describe snow."}
    assert cached(None, None, [one, two, one], ["wet", "cold", "wet"]) == [3, 4, 3]
    assert cached(None, None, [two, one], ["cold", "soft and wet"]) == [4, 12]
    assert asked == [[(1, "wet"), (2, "cold")], [(1, "soft and wet")]]
    assert cached.memory == {("Describe rain.", "wet"): 3, ("Describe snow.", "cold"): 4, ("Describe rain.", "soft and wet"): 12}
