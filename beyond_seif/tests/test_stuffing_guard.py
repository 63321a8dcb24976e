"""The stuffing guard: the Judger reads a run of one letter or word once and a title or P.S. only
where it opens its line; genuine text reads as written; off, rewards are SEIF's."""

import json
from pathlib import Path

import pytest

import follower
import ifeval_checks
import judger
from beyond_seif import rules
from beyond_seif.stuffing_guard import counted_text
from settings import BeyondSEIF

HACKS = Path(__file__).resolve().parents[2] / "bench" / "hacks.jsonl"
IFEVAL = Path(__file__).resolve().parents[3] / "shared" / "ifeval"


def rule(ifeval_id, **kwargs):
    return {"text": "(checked by a rule)", "ifeval_id": ifeval_id, "kwargs": kwargs}


@pytest.mark.parametrize("answer, counted", [
    ("I chose kkkk in special.", "I chose k in special."),
    ("KKkk and Sooo", "K and So"),
    ("a new new NEW day", "a new day"),
    ("k k k k", "k"),
    ("a company named <<<kappe kamika>> sells tea", "a company named kappe kamika sells tea"),
    ("The tap is fixed.\n<my title <<Michael>>", "The tap is fixed.\n<my title Michael"),
    ("The tap is fixed, based on P.S.", "The tap is fixed, based on PS"),
    ("I said p.p.s. call me", "I said pps call me"),
])
def test_runs_count_once_and_a_title_inside_a_line_is_no_title(answer, counted):
    assert counted_text(answer) == counted


@pytest.mark.parametrize("answer", [
    "<<My Day>>\nThe bookkeeper's letter arrived at 1000 hours.",
    "## **<<My Day>>**: a short account\nKnock, knock. Who is there?",
    "The keeper trims the wick,\n\nand the keeper lights the lamp.",
    "The keeper trims the wick.\nP.S. Call me.\n**P.P.S.** Bring oil.",
])
def test_genuine_text_reads_as_written(answer):
    assert counted_text(answer) == answer


def test_stuffed_letters_words_and_hidden_titles_fail_their_rules():
    letter = rule("keywords:letter_frequency", letter="k", let_frequency=3, let_relation="at least")
    word = rule("keywords:frequency", keyword="new", frequency=3, relation="at least")
    title = rule("detectable_format:title")
    postscript = rule("detectable_content:postscript", postscript_marker="P.S.")
    cases = [(letter, "I chose kkkk in special.", "The kind keeper kept a kite."),
             (word, "Our new new new shop opens.", "A new shop, a new sign and a new street."),
             (title, "We met a company named <<<kappe kamika>> today.", "<<Kappe Kamika>>\nWe met a company today."),
             (postscript, "The tap was fixed, based on P.S. notes.", "The tap was fixed.\nP.S. Thank you.")]
    for constraint, stuffed, genuine in cases:
        assert rules.rule_verdict(constraint, stuffed) == 1.0  # IFEval's rule pays the stuffed text
        assert rules.rule_verdict(constraint, counted_text(stuffed)) == 0.0
        assert rules.rule_verdict(constraint, counted_text(genuine)) == 1.0


def test_no_genuine_hack_set_answer_changes_a_rule_verdict():
    rows = [json.loads(line) for line in HACKS.read_text().splitlines()]
    changed = [(row["id"], c["ifeval_id"]) for row in rows for c in row["constraints"] if c.get("ifeval_id")
               and rules.rule_verdict(c, row["answers"]["genuine"])
               != rules.rule_verdict(c, counted_text(row["answers"]["genuine"]))]
    assert changed == []


def test_gpt4s_ifeval_responses_keep_their_verdicts_but_for_repeating_the_request():
    """Held-out text: GPT-4's 541 IFEval responses. A reply that repeats its request word for
    word repeats its runs and inline titles too ("La La Land", "such as <<title>>"); the guard
    reads both once, so only those verdicts may change (the echo guard cuts such copies anyway)."""
    if not (IFEVAL / "gpt4_responses.jsonl").exists():
        pytest.skip("../shared/ifeval is not on this machine")
    prompts = {row["prompt"]: row for row in map(json.loads, (IFEVAL / "input_data.jsonl").open())}
    changed, checked = set(), 0
    for response in map(json.loads, (IFEVAL / "gpt4_responses.jsonl").open()):
        row = prompts[response["prompt"]]
        for rule_id, kwargs in zip(row["instruction_id_list"], row["kwargs"]):
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
            if not ifeval_checks.runs_here(rule_id, kwargs):
                continue
            checked += 1
            text = response["response"]
            if ifeval_checks.check(rule_id, kwargs, text, row["prompt"]) != ifeval_checks.check(
                    rule_id, kwargs, counted_text(text), row["prompt"]):
                changed.add(rule_id)
    assert checked > 500
    assert changed <= {"combination:repeat_prompt"}


def test_follower_reward_reads_the_counted_text_only_with_the_guard_on(tiny_model, fooled_judge):
    model, tokenizer = tiny_model
    letter = rule("keywords:letter_frequency", letter="k", let_frequency=3, let_relation="at least")
    row = {"seed": "Describe a kite.", "instruction": "Describe a kite.", "constraints": [letter]}
    texts = [f"<think>ok</think><answer>{answer}</answer>" for answer in
             ("I chose kkkk in special for the sky.", "The kind keeper kept a kite in the sky.")]
    cfg = judger.JudgerConfig()
    off, _ = follower.rewards(model, tokenizer, [row, row], texts, cfg, BeyondSEIF(rules=True))
    on, _ = follower.rewards(model, tokenizer, [row, row], texts, cfg, BeyondSEIF(rules=True, stuffing_guard=True))
    assert off == [1.0, 1.0]
    assert on == [0.0, 1.0]
