"""The Filter: deterministic checks, the LLM conflict check (canned outputs), the report, the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fake_generate
from filter import FilterConfig, conflict_messages, deterministic_reason, filter_sets, report

REPO = Path(__file__).resolve().parents[1]


def constraint(text, ifeval_id=None, kwargs=None):
    return {"text": text, "ifeval_id": ifeval_id, "kwargs": kwargs}


def constraints(*texts):
    return [constraint(text) for text in texts]


# --- deterministic checks --------------------------------------------------------------------

def test_a_fine_set_passes_the_deterministic_checks():
    good = constraints("Use at least 3 bullet points.", "End with the word Done.")
    assert deterministic_reason(good) is None
    assert deterministic_reason(good, expected_count=2) is None


def test_each_deterministic_reason():
    assert deterministic_reason([]) == "empty"
    assert deterministic_reason(constraints("Be brief.", "   ")) == "empty"
    assert deterministic_reason(constraints("Be brief.", "  be   BRIEF. ")) == "duplicate"
    assert deterministic_reason([constraint("Do not use any commas.", "punctuation:no_comma", {}),
                                 constraint("Avoid commas.", "punctuation:no_comma", None)]) == "duplicate"
    assert deterministic_reason([constraint("Use the word 'sun'.", "keywords:existence", {"keywords": ["sun"]}),
                                 constraint("Use the word 'moon'.", "keywords:existence", {"keywords": ["moon"]})
                                 ]) is None  # one rule, two different checks
    assert deterministic_reason(constraints("Be brief.", "No commas."), expected_count=3) == "wrong_count"
    assert deterministic_reason(constraints("Be brief.", "x" * 301)) == "too_long"
    assert deterministic_reason(constraints("Be brief.", "x" * 50),
                                cfg=FilterConfig(max_constraint_chars=40)) == "too_long"


def rule(text, ifeval_id, **kwargs):
    return constraint(text, ifeval_id, kwargs)


GERMAN = rule("Answer in German.", "language:response_language", language="de")
CAPITALS = rule("Write in capital letters only.", "change_case:english_capital")
LOWERCASE = rule("Write in lowercase letters only.", "change_case:english_lowercase")
NO_COMMAS = rule("Do not use any commas.", "punctuation:no_comma")


PROVABLE_CONFLICTS = [
    [CAPITALS, LOWERCASE],
    [GERMAN, CAPITALS],  # both case rules demand English
    [GERMAN, rule("Answer in French.", "language:response_language", language="fr")],
    [LOWERCASE, rule("Use at least 2 words in all capitals.", "change_case:capital_word_frequency",
                     capital_frequency=2, capital_relation="at least")],
    [NO_COMMAS, rule('Include the phrase "yes, indeed".', "keywords:existence", keywords=["yes, indeed"])],
    [rule("Use at least 200 words.", "length_constraints:number_words", num_words=200, relation="at least"),
     rule("Use fewer than 80 words.", "length_constraints:number_words", num_words=80, relation="less than")],
    [rule("Use the letter z at least 5 times.", "keywords:letter_frequency", letter="z",
          let_frequency=5, let_relation="at least"),
     rule("Use the letter Z fewer than 3 times.", "keywords:letter_frequency", letter="Z",
          let_frequency=3, let_relation="less than")],
    [rule("Use exactly 3 bullet points.", "detectable_format:number_bullet_lists", num_bullets=3),
     rule("Use exactly 4 bullet points.", "detectable_format:number_bullet_lists", num_bullets=4)],
    [rule('End with "Bye."', "startend:end_checker", end_phrase="Bye."),
     rule('End with "See you."', "startend:end_checker", end_phrase="See you.")],
    [rule('Never use the word "cat".', "keywords:forbidden_words", forbidden_words=["cat"]),
     rule('Include the word "Cat".', "keywords:existence", keywords=["Cat"])],
]

SATISFIABLE = [
    # IFEval never combines these two types, yet a French answer can name both places
    [rule("Respond only in French.", "language:response_language", language="fr"),
     rule("Include the keywords 'paris' and 'seine'.", "keywords:existence", keywords=["paris", "seine"]),
     rule("Use at least 5 sentences.", "length_constraints:number_sentences", num_sentences=5,
          relation="at least")],
    [rule("Answer in English.", "language:response_language", language="en"), CAPITALS],
    [rule("Use at least 50 words.", "length_constraints:number_words", num_words=50, relation="at least"),
     rule("Use fewer than 51 words.", "length_constraints:number_words", num_words=51, relation="less than")],
    [rule("Use the letter z at least 5 times.", "keywords:letter_frequency", letter="z",
          let_frequency=5, let_relation="at least"),
     rule("Use the letter q fewer than 3 times.", "keywords:letter_frequency", letter="q",
          let_frequency=3, let_relation="less than")],
    [rule('End with "see you."', "startend:end_checker", end_phrase="see you."),
     rule('End with "you."', "startend:end_checker", end_phrase="you.")],
    [NO_COMMAS, rule('Include the word "river".', "keywords:existence", keywords=["river"])],
    [rule("Wrap your reply in double quotes.", "startend:quotation"),
     rule('End with "Bye."', "startend:end_checker", end_phrase="Bye.")],  # the end check ignores quotes
    [rule("Include the word cat.", "keywords:existence", keywords=["cat"]),
     rule("Include the word dog.", "keywords:existence", keywords=["dog"])],
]


@pytest.mark.parametrize("pair", PROVABLE_CONFLICTS, ids=lambda pair: pair[0]["ifeval_id"])
def test_provable_contradictions_are_removed_in_either_order(pair):
    assert deterministic_reason(pair) == "known_conflict"
    assert deterministic_reason(list(reversed(pair))) == "known_conflict"


@pytest.mark.parametrize("rules", SATISFIABLE, ids=lambda rules: rules[0]["ifeval_id"])
def test_satisfiable_sets_are_left_to_the_llm(rules):
    assert deterministic_reason(rules) is None
    assert deterministic_reason(list(reversed(rules))) is None


def test_constraints_without_a_rule_are_left_to_the_llm():
    assert deterministic_reason(constraints("Answer in German.", "Write in capital letters only.")) is None


# --- the LLM check (canned outputs) ---------------------------------------------------------

def test_llm_check_keeps_only_a_clear_no_conflict(monkeypatch):
    calls = fake_generate(monkeypatch, ["Compatible. Verdict: [[1]]", "Verdict: [[0]]", "", "maybe"])
    sets = [constraints("Be brief.", f"Mention the number {n}.") for n in range(4)]
    keep, reasons = filter_sets(None, None, sets)
    assert keep == [True, False, False, False]
    assert reasons == [None, "llm_conflict", "llm_conflict", "llm_conflict"]
    assert len(calls) == 1 and calls[0][1]["greedy"] is True and calls[0][1]["desc"] == "filter"


def test_llm_check_runs_only_on_sets_that_pass_the_cheap_checks(monkeypatch):
    calls = fake_generate(monkeypatch, ["[[1]]"])
    sets = [constraints("Be brief.", "No commas."), [], constraints("Be brief.", "be brief.")]
    keep, reasons = filter_sets(None, None, sets, expected_counts=[2, 2, 2])
    assert keep == [True, False, False]
    assert reasons == [None, "empty", "duplicate"]
    assert len(calls[0][0]) == 1  # only the surviving set was sent to the model


def test_no_llm_means_no_model_needed():
    keep, reasons = filter_sets(None, None, [constraints("Be brief.")], FilterConfig(llm=False))
    assert keep == [True] and reasons == [None]


def test_filter_prompt_shows_the_seed_and_the_constraints():
    content = conflict_messages("Describe a cat.", ["Be brief.", "No commas."])[0]["content"]
    assert ("Now check this set.\nINSTRUCTION: Describe a cat.\nCONSTRAINTS:\n1. Be brief.\n"
            "2. No commas.\nCould one") in content


def test_filter_sets_sends_each_set_with_its_own_seed(monkeypatch):
    calls = fake_generate(monkeypatch, ["[[1]]", "[[1]]"])
    sets = [constraints("Be brief."), constraints("No commas.")]
    filter_sets(None, None, sets, seeds=["Describe a cat.", "Describe a dog."])
    (chats, _), = calls
    assert "INSTRUCTION: Describe a cat.\nCONSTRAINTS:\n1. Be brief." in chats[0][0]["content"]
    assert "INSTRUCTION: Describe a dog.\nCONSTRAINTS:\n1. No commas." in chats[1][0]["content"]


# --- the report ------------------------------------------------------------------------------

def test_report_counts_by_reason():
    summary = report([None, "empty", None, "llm_conflict", "llm_conflict", "known_conflict"])
    assert summary["total"] == 6 and summary["kept"] == 2
    assert summary["removed"] == {"empty": 1, "duplicate": 0, "wrong_count": 0, "too_long": 0, "not_rule_checked": 0,
                                  "known_conflict": 1, "llm_conflict": 2}
    assert set(summary["why"]) == set(summary["removed"])


# --- command line ----------------------------------------------------------------------------

def run_filter_cli(tmp_path, rows, *flags):
    """filter.py --no-llm on `rows`; returns (kept rows, report)."""
    instructions = tmp_path / "in.jsonl"
    instructions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out, report_path = tmp_path / "kept.jsonl", tmp_path / "filter_report.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "filter.py"), "--instructions", str(instructions),
         "--out", str(out), "--report", str(report_path), "--no-llm", *flags],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in out.read_text().splitlines()], json.loads(report_path.read_text())


def test_command_line_without_llm(tmp_path):
    rows = [{"prompt": "Describe a cat.", "constraints": constraints("Be brief.", "No commas."),
             "expected_count": 2},
            {"prompt": "Describe a dog.", "constraints": constraints("Be brief."), "expected_count": 3}]
    kept, summary = run_filter_cli(tmp_path, rows)
    assert [row["prompt"] for row in kept] == ["Describe a cat."]
    assert summary["kept"] == 1 and summary["removed"]["wrong_count"] == 1


def test_command_line_rules_only_keeps_only_rule_checked_sets(tmp_path):
    rows = [{"prompt": "Describe a cat.", "constraints": constraints("Be brief.")},
            {"prompt": "Describe a dog.", "constraints": [constraint("Do not use any commas.",
                                                                     "punctuation:no_comma", {})]}]
    kept, summary = run_filter_cli(tmp_path, rows, "--rules-only")
    assert [row["prompt"] for row in kept] == ["Describe a dog."]
    assert summary["removed"]["not_rule_checked"] == 1


def test_command_line_needs_a_model_for_the_llm_check(tmp_path):
    instructions = tmp_path / "in.jsonl"
    instructions.write_text(json.dumps({"constraints": constraints("Be brief.")}) + "\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "filter.py"), "--instructions", str(instructions),
         "--out", str(tmp_path / "kept.jsonl")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: --model is required")
