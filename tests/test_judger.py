"""The Judger as SEIF has it: the frozen helper model reads an answer and ONE constraint, writes a
short analysis and ends with [[1]] or [[0]]; anything unclear, and any empty answer, is 0.

The LLM's replies are canned here (conftest.fake_generate); one test runs the real SmolLM2. The
departures that plug into the Judger are tested in beyond_seif/tests/: rule checks
(test_rules.py) and the score judge (test_score_judge.py).
"""

import pytest

from conftest import fake_generate
from judger import JudgerConfig, judge, judge_messages
from reply_format import parse_verdict, strip_think


def constraint(text, ifeval_id=None, kwargs=None):
    return {"text": text, "ifeval_id": ifeval_id, "kwargs": kwargs}


# --- reading a verdict -----------------------------------------------------------------------

def test_parse_verdict_reads_the_last_clear_digit():
    assert parse_verdict("Looks fine. Verdict: [[1]]") == 1
    assert parse_verdict("Too few bullets. Verdict: [[0]]") == 0
    assert parse_verdict("At first I thought [[0]], but on a recount: [[1]]") == 1
    assert parse_verdict("At first I thought [[1]], but on a recount: [[0]]") == 0


def test_parse_verdict_treats_anything_unclear_as_not_followed():
    assert parse_verdict("The answer seems to satisfy it.") == 0
    assert parse_verdict("Verdict: [[2]]") == 0
    assert parse_verdict("") == 0


def test_parse_verdict_can_tell_no_verdict_from_a_no():
    assert parse_verdict("The answer seems to", missing=1) == 1  # cut off before any verdict
    assert parse_verdict("Verdict: [[0]]", missing=1) == 0
    assert parse_verdict("Verdict: [[2]]", missing=1) == 0  # a verdict, if not a clear yes


def test_strip_think_drops_the_reasoning():
    assert strip_think("<think>maybe [[1]]</think><answer>no</answer>") == "<answer>no</answer>"
    assert strip_think("no think tags at all") == "no think tags at all"
    assert parse_verdict("<think>I lean to [[1]]</think> undecided") == 0


def test_judge_prompt_shows_the_answer_and_one_constraint_only():
    content = judge_messages("a short answer", "Use no commas.")[0]["content"]
    assert content.count("a short answer") == 1 and content.count("Use no commas.") == 1
    assert "CONSTRAINT: Use no commas.\nDoes the ANSWER satisfy the CONSTRAINT?" in content
    assert "[[1]]" in content and "[[0]]" in content


# --- the LLM judge, generate mode (canned outputs) ------------------------------------------

def test_llm_judge_reads_verdicts_and_batches_once(monkeypatch):
    calls = fake_generate(monkeypatch, ["Polite. Verdict: [[1]]", "I am not sure.", "[[0]]"])
    pairs = [
        ("Thank you kindly.", constraint("Be polite.")),
        ("Some answer.", constraint("Sound like a pirate.")),  # no [[d]] in its verdict
        ("Rude words.", constraint("Be polite.")),
    ]
    assert judge(None, None, pairs) == [1.0, 0.0, 0.0]
    assert len(calls) == 1 and len(calls[0][0]) == 3
    assert calls[0][0][0] == judge_messages("Thank you kindly.", "Be polite.")
    assert calls[0][1]["greedy"] is True and calls[0][1]["desc"] == "judge"


def test_empty_answer_is_zero_without_asking_the_model(monkeypatch):
    calls = fake_generate(monkeypatch, ["[[1]]"])
    pairs = [("", constraint("Be polite.")), ("<think>thinking only</think>  ", constraint("Be brief."))]
    assert judge(None, None, pairs) == [0.0, 0.0]
    assert calls == []


def test_the_llm_judges_the_answer_without_its_reasoning(monkeypatch):
    calls = fake_generate(monkeypatch, ["Verdict: [[1]]"])
    assert judge(None, None, [("<think>Plan: Keep It Lowercase.</think> all lowercase here",
                               constraint("Write in lowercase only."))]) == [1.0]
    (chats, _), = calls
    assert chats == [judge_messages("all lowercase here", "Write in lowercase only.")]


def test_by_default_every_constraint_goes_to_the_llm(monkeypatch):
    """SEIF has no rule checks: a constraint that names an IFEval rule is judged by the LLM too
    (with beyond_seif.rules on, the rule decides: beyond_seif/tests/test_rules.py)."""
    calls = fake_generate(monkeypatch, ["Verdict: [[1]]"])
    lowercase = constraint("Write in lowercase only.", "change_case:english_lowercase", {})
    # The rule would say 0 (capital W); the LLM's canned [[1]] wins because no rule is used.
    assert judge(None, None, [("With Capitals", lowercase)], JudgerConfig()) == [1.0]
    assert len(calls) == 1


# --- the real model, generate mode ----------------------------------------------------------

def test_real_model_judges_in_generate_mode(smollm2):
    model, tokenizer = smollm2
    pairs = [("hello there, friend", constraint("Write the whole answer in lowercase letters.")),
             ("HELLO THERE", constraint("Write the whole answer in lowercase letters."))]
    verdicts = judge(model, tokenizer, pairs, JudgerConfig(max_new_tokens=32))
    assert len(verdicts) == 2 and set(verdicts) <= {0.0, 1.0}
