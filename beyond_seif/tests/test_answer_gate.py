"""The answer gate: thresholds from the helper's own answers, zero pay for salad and stuffing,
full pay for a fluent genuine answer, and SEIF's rewards when it is off."""

import json
from pathlib import Path

import pytest
import torch
from conftest import fake_generate

import follower
import judger
import settings as settings_module
from beyond_seif import answer_gate
from data import UserError
from settings import BeyondSEIF

HACKS = Path(__file__).resolve().parents[2] / "bench" / "hacks.jsonl"
ON = BeyondSEIF(rules=True, echo_guard=True, answer_gate=True)


def formatted(answer):
    return f"<think>I will answer.</think><answer>{answer}</answer>"


def hack_rows(count):
    return [json.loads(line) for line in HACKS.read_text().splitlines()[:count]]


def test_thresholds_are_quantiles_of_the_helpers_own_answers(monkeypatch):
    rows = [{"instruction": f"Describe a {animal}.\nUse lowercase.", "seed": f"Describe a {animal}."}
            for animal in ("cat", "dog", "fish", "bird", "cow")]
    helper_texts = ["a cat", "a dog", "", "a bird", "a cow"]  # one empty answer: not a reference
    calls = fake_generate(monkeypatch, helper_texts)
    seen = []

    def features(model, tokenizer, rows_, answers, batch_size=16):
        seen.append(([row["seed"] for row in rows_], list(answers)))
        return [(float(i), 10.0 * i, 100.0 * i) for i in range(len(answers))]  # order 0..3, topic 0..30, lift 0..300

    monkeypatch.setattr(answer_gate, "features", features)
    gate = answer_gate.fit(None, None, rows, 0.25, max_new_tokens=32, lift_fence=0)
    # the helper answered exactly these instructions, once each, as a plain user turn
    assert [chat[0]["content"] for chat in calls[0][0]] == [row["instruction"] for row in rows]
    assert all(len(chat) == 1 and chat[0]["role"] == "user" for chat in calls[0][0])
    # and only its non-empty answers were scored, each with its own row
    assert seen == [(["Describe a cat.", "Describe a dog.", "Describe a bird.", "Describe a cow."],
                     ["a cat", "a dog", "a bird", "a cow"])]
    assert gate.references == 4
    # the low quantile for order and topic, the high one for lift
    assert (gate.order_min, gate.topic_min, gate.lift_max) == (1.0, 10.0, 200.0)


def test_the_lift_bound_is_a_fence_that_a_few_copies_do_not_move(monkeypatch):
    """With the default fence, lift_max = upper quartile + 1.5 x IQR of the helper's lifts. Two of
    twenty answers that copy their request (lift 9) put the 0.95 quantile at 9, where a restated
    request is paid; the fence stays by the other answers."""
    lifts = [0.5 + 0.05 * i for i in range(18)] + [9.0, 9.0]  # 0.50 .. 1.35, then two copies
    rows = [{"instruction": f"Task {i}"} for i in range(len(lifts))]
    fake_generate(monkeypatch, [f"answer {i}" for i in range(len(lifts))])
    monkeypatch.setattr(answer_gate, "features", lambda m, t, r, a, b=16: [(5.0, 1.0, lift) for lift in lifts])
    by_quantile = answer_gate.fit(None, None, rows, 0.05, max_new_tokens=16, lift_fence=0)
    fenced = answer_gate.fit(None, None, rows, 0.05, max_new_tokens=16)  # the setting's default, 1.5
    assert by_quantile.lift_max == 9.0
    upper, lower = sorted(lifts)[round(0.75 * 19)], sorted(lifts)[round(0.25 * 19)]
    assert fenced.lift_max == pytest.approx(upper + 1.5 * (upper - lower))
    assert 1.35 < fenced.lift_max < 3.0  # every non-copy passes, the copies do not
    assert fenced.passes([(5.0, 1.0, 1.35), (5.0, 1.0, 9.0)]) == [True, False]
    # the low bounds are quantiles either way
    assert (fenced.order_min, fenced.topic_min) == (by_quantile.order_min, by_quantile.topic_min)


def test_fit_for_rows_answers_distinct_instructions_up_to_the_cap(monkeypatch):
    calls = fake_generate(monkeypatch, ["answer one two", "answer three four", "answer five six"])
    monkeypatch.setattr(answer_gate, "features", lambda m, t, r, a, b=16: [(1.0, 1.0, 1.0)] * len(a))
    rows = [{"instruction": f"Task {i % 4}"} for i in range(12)]  # 4 distinct instructions
    answer_gate.fit_for_rows(None, None, rows, BeyondSEIF(answer_gate=True, answer_gate_references=3), 16)
    asked = [chat[0]["content"] for chat in calls[0][0]]
    assert len(asked) == 3 and len(set(asked)) == 3 and set(asked) <= {f"Task {i}" for i in range(4)}


def test_fit_for_rows_answers_few_instructions_more_than_once(monkeypatch):
    calls = fake_generate(monkeypatch, [f"answer {i}" for i in range(10)])
    monkeypatch.setattr(answer_gate, "features", lambda m, t, r, a, b=16: [(1.0, 1.0, 1.0)] * len(a))
    rows = [{"instruction": f"Task {i % 3}"} for i in range(6)]  # 3 distinct instructions
    gate = answer_gate.fit_for_rows(None, None, rows, BeyondSEIF(answer_gate=True, answer_gate_references=7), 16)
    asked = [chat[0]["content"] for chat in calls[0][0]]
    assert len(asked) == 7 and gate.references == 7
    assert sorted(asked.count(f"Task {i}") for i in range(3)) == [2, 2, 3]  # as even as it can be


def test_too_few_helper_answers_let_everything_through(monkeypatch):
    fake_generate(monkeypatch, ["", "only one"])
    monkeypatch.setattr(answer_gate, "features", lambda m, t, r, a, b=16: [(0.0, 0.0, 0.0)] * len(a))
    gate = answer_gate.fit(None, None, [{"instruction": "a"}, {"instruction": "b"}], 0.05, 16)
    assert gate.passes([(-100.0, -100.0, 100.0), (100.0, 100.0, -100.0)]) == [True, True]


def test_gate_passes_only_inside_its_bounds():
    gate = answer_gate.Gate(order_min=2.0, topic_min=0.2, lift_max=1.5, references=10)
    # (order, topic, lift): fluent and on topic; word order does not matter; off topic; a copy; at the bounds
    assert gate.passes([(2.5, 0.5, 0.5), (1.0, 0.5, 0.5), (2.5, 0.1, 0.5), (2.5, 0.5, 3.0), (2.0, 0.2, 1.5)]) == [
        True, False, False, False, True]


def test_topic_and_lift_are_gains_over_an_empty_request_whatever_the_batch(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    row, answer = {"instruction": "name a colour\nuse four words", "seed": "name a colour"}, "blue is a colour"
    sums, counts = answer_gate.answer_logprob_sums(
        model, tokenizer, [(row["instruction"], answer), ("", answer), (row["seed"], answer)])
    alone = answer_gate.features(model, tokenizer, [row], [answer])[0]
    in_batch = answer_gate.features(model, tokenizer, [{"instruction": "write a poem"}, row, {"instruction": "count"}],
                                    ["roses are red", answer, "one two three"])[1]
    assert alone[1] == pytest.approx((sums[2] - sums[1]) / counts[0], abs=1e-4)  # topic: the seed alone
    assert alone[2] == pytest.approx((sums[0] - sums[1]) / counts[0], abs=1e-4)  # lift: the whole instruction
    assert in_batch == pytest.approx(alone, abs=1e-4)
    # a row without a seed: its instruction is the bare request, so topic and lift agree
    no_seed = answer_gate.features(model, tokenizer, [{"instruction": row["instruction"]}], [answer])[0]
    assert no_seed[1] == pytest.approx(no_seed[2], abs=1e-4) == pytest.approx(alone[2], abs=1e-4)


def test_an_answer_in_capitals_is_read_in_lower_case(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    request = "Explain rainbows in capital letters."
    capitals, mixed = "RAINBOWS FORM IN FALLING RAIN.", "Rainbows form in FALLING rain."
    found = answer_gate.features(model, tokenizer, [{"instruction": request}] * 3, [capitals, capitals.lower(), mixed])
    assert found[0] == pytest.approx(found[1], abs=1e-4)
    assert answer_gate.as_read(mixed) == mixed and answer_gate.as_read("42 + 1") == "42 + 1"


def test_shuffled_words_keeps_the_words_and_is_seeded():
    text = "the quick brown fox jumps over the lazy dog"
    assert sorted(answer_gate.shuffled_words(text).split()) == sorted(text.split())
    assert answer_gate.shuffled_words(text) == answer_gate.shuffled_words(text)
    assert answer_gate.shuffled_words(text) != text


def test_a_failed_answer_earns_zero_and_the_rest_are_unchanged(tiny_model, fooled_judge, monkeypatch):
    model, tokenizer = tiny_model
    rows = hack_rows(2)
    items = [rows[0], rows[0], rows[1]]
    texts = [formatted(rows[0]["answers"]["genuine"]), formatted(rows[0]["answers"]["salad"]),
             formatted(rows[1]["answers"]["genuine"])]
    # canned features: the second answer's word order does not matter, the others' does
    monkeypatch.setattr(answer_gate, "features", lambda m, t, rows_, answers, b=16:
                        [(0.5, 0.5, 0.5) if "beam sea dark" in a else (3.0, 0.5, 0.5) for a in answers])
    gate = answer_gate.Gate(order_min=2.0, topic_min=0.2, lift_max=1.5, references=10)
    cfg = judger.JudgerConfig()
    off, _ = follower.rewards(model, tokenizer, items, texts, cfg, BeyondSEIF(rules=True, echo_guard=True))
    on, info = follower.rewards(model, tokenizer, items, texts, cfg, ON, gate)
    assert off[1] > 0  # the salad meets both rules, and the judge says yes
    assert on == [off[0], 0.0, off[2]]
    assert info["answer_gate_failed"] == pytest.approx(1 / 3)
    assert info["answer_gate_time"] >= 0 and "answer_gate_time" not in follower.rewards(
        model, tokenizer, items, texts, cfg, BeyondSEIF(rules=True, echo_guard=True))[1]


def test_with_the_gate_off_rewards_are_as_before(tiny_model, fooled_judge, monkeypatch):
    model, tokenizer = tiny_model
    rows = hack_rows(3)
    items = [row for row in rows for _ in range(3)]
    texts = [formatted(row["answers"][kind]) for row in rows for kind in ("genuine", "salad", "stuffing")]
    monkeypatch.setattr(answer_gate, "features", lambda *a, **k: pytest.fail("the gate is off: no forward pass"))
    refusing = answer_gate.Gate(order_min=99.0, topic_min=99.0, lift_max=-99.0, references=10)
    departures = BeyondSEIF(rules=True, echo_guard=True)
    before, before_info = follower.rewards(model, tokenizer, items, texts, judger.JudgerConfig(), departures)
    after, after_info = follower.rewards(model, tokenizer, items, texts, judger.JudgerConfig(), departures,
                                         refusing)
    assert after == before and after_info == before_info and "answer_gate_failed" not in after_info


def test_settings_check_the_gate_fields():
    for field, value in (("answer_gate_quantile", 0.5), ("answer_gate_quantile", -0.1),
                         ("answer_gate_references", 0), ("answer_gate_lift_fence", -1.0)):
        holder = type("Holder", (), {"beyond_seif": BeyondSEIF(**{field: value})})()
        with pytest.raises(UserError, match=field):
            settings_module.check(holder)
    settings_module.check(type("Holder", (), {"beyond_seif": BeyondSEIF(answer_gate=True)})())


@pytest.mark.xfail(strict=True, reason=(
    "issue 21's target, not met yet: a gate fitted on 8 of SmolLM2's own answers has their extremes "
    "as bounds and refuses 2 of these 3 genuine answers, r01 and r05 (fitted on 48 answers, it refuses 1 "
    "of the 48 genuine ones: bench/RESULTS.md). strict: this test fails the suite once it passes"))
def test_real_helper_pays_a_genuine_answer_and_nothing_for_salad_or_stuffing(smollm2, fooled_judge):
    """SmolLM2 as the frozen helper: the gate, fitted on its own answers to 8 requests, keeps a
    fluent genuine answer's full reward and zeroes word salad and keyword stuffing that meet
    every rule (with a judge that says yes to everything)."""
    model, tokenizer = smollm2
    rows = hack_rows(8)
    torch.manual_seed(0)
    gate = answer_gate.fit(model, tokenizer, rows, 0.05, max_new_tokens=128)
    assert gate.references >= 6
    chosen = [row for row in rows if row["id"] in ("r01", "r04", "r05")]
    kinds = ("genuine", "salad", "stuffing")
    items = [row for row in chosen for _ in kinds]
    texts = [formatted(row["answers"][kind]) for row in chosen for kind in kinds]
    cfg = judger.JudgerConfig()
    off, _ = follower.rewards(model, tokenizer, items, texts, cfg, BeyondSEIF(rules=True, echo_guard=True))
    on, _ = follower.rewards(model, tokenizer, items, texts, cfg, ON, gate)
    by_kind = {kind: on[i::len(kinds)] for i, kind in enumerate(kinds)}
    assert by_kind["genuine"] == [1.0] * len(chosen)
    assert by_kind["salad"] == [0.0] * len(chosen) and by_kind["stuffing"] == [0.0] * len(chosen)
    assert sum(off[1::len(kinds)]) > 0  # without the gate the salad is paid


def test_logprob_sums_match_one_unbatched_forward_pass_each(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    # repeated requests (and the empty one) share one prefill of their prompt within a batch
    pairs = [("hello there", "the cat sat on the mat"), ("a b c", "dog"),
             ("x", "a much longer answer with many words in it here"), ("hello there", "mat the on cat"),
             ("", "the cat sat on the mat"), ("", "dog"), ("hello there", "hi"), ("", "a much longer answer")]
    for batch_size in (2, 3, 16):
        check_logprob_sums(model, tokenizer, pairs, batch_size)


def check_logprob_sums(model, tokenizer, pairs, batch_size):
    import rollout

    sums, counts = answer_gate.answer_logprob_sums(model, tokenizer, pairs, batch_size=batch_size)
    for (request, answer), total, count in zip(pairs, sums, counts):
        prompt = tokenizer(rollout.chat_text(tokenizer, [{"role": "user", "content": request}]),
                                add_special_tokens=False).input_ids
        answer_ids = tokenizer(answer, add_special_tokens=False).input_ids
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt + answer_ids])).logits[0, len(prompt) - 1 : -1]
        expected = logits.float().log_softmax(-1).gather(1, torch.tensor(answer_ids)[:, None]).sum().item()
        assert count == len(answer_ids) and total == pytest.approx(expected, abs=1e-3)
