"""The Filter (SEIF): the LLM conflict check (canned outputs), the prompt it sees, the report, the CLI.

With the default settings every constraint set goes to the LLM, which keeps only a clear [[1]].
The cheap deterministic checks that can run first (beyond_seif.filter_checks, rules_only) are
tested in beyond_seif/tests/test_filter_checks.py; here they appear only as the CLI's switches.
"""

import json
import subprocess
import sys
from pathlib import Path

from conftest import fake_generate
from filter import REASONS, FilterConfig, conflict_messages, filter_sets, report

REPO = Path(__file__).resolve().parents[1]


def constraint(text, ifeval_id=None, kwargs=None):
    return {"text": text, "ifeval_id": ifeval_id, "kwargs": kwargs}


def constraints(*texts):
    return [constraint(text) for text in texts]


# --- the LLM check (canned outputs) ---------------------------------------------------------

def test_llm_check_keeps_only_a_clear_no_conflict(monkeypatch):
    calls = fake_generate(monkeypatch, ["Compatible. Verdict: [[1]]", "Verdict: [[0]]", "", "maybe"])
    sets = [constraints("Be brief.", f"Mention the number {n}.") for n in range(4)]
    keep, reasons = filter_sets(None, None, sets)
    assert keep == [True, False, False, False]
    assert reasons == [None, "llm_conflict", "llm_conflict", "llm_conflict"]
    assert len(calls) == 1 and calls[0][1]["greedy"] is True and calls[0][1]["desc"] == "filter"


def test_by_default_every_set_goes_to_the_llm(monkeypatch):
    """No departures, no cheap checks: an empty set, a duplicate, the wrong count, an overlong
    constraint and a provable clash are all the LLM's to judge, and a [[1]] keeps them."""
    sets = [[], constraints("Be brief.", "be brief."), constraints("Be brief."), constraints("x" * 301),
            [constraint("Write in capital letters only.", "change_case:english_capital", {}),
             constraint("Write in lowercase letters only.", "change_case:english_lowercase", {})]]
    calls = fake_generate(monkeypatch, ["Verdict: [[1]]"] * len(sets))
    keep, reasons = filter_sets(None, None, sets, expected_counts=[2] * len(sets))
    assert keep == [True] * len(sets) and reasons == [None] * len(sets)
    (chats, _), = calls
    assert len(chats) == len(sets)  # every set was sent to the model
    assert "CONSTRAINTS:\n1. Be brief.\n2. be brief.\n" in chats[1][0]["content"]


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
    summary = report([None, "llm_conflict", None, "llm_conflict", "llm_conflict"])
    assert summary["total"] == 5 and summary["kept"] == 2
    assert summary["removed"] == {"llm_conflict": 3}  # by default the LLM is the only reason
    assert summary["why"] == REASONS and set(summary["why"]) == set(summary["removed"])


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


ROWS = [{"prompt": "Describe a cat.", "constraints": constraints("Be brief.", "No commas."), "expected_count": 2},
        {"prompt": "Describe a dog.", "constraints": constraints("Be brief."), "expected_count": 3}]


def test_command_line_without_llm_keeps_every_set(tmp_path):
    kept, summary = run_filter_cli(tmp_path, ROWS)
    assert [row["prompt"] for row in kept] == ["Describe a cat.", "Describe a dog."]
    assert summary["kept"] == 2 and summary["removed"] == {"llm_conflict": 0}


def test_command_line_checks_run_the_cheap_checks(tmp_path):
    kept, summary = run_filter_cli(tmp_path, ROWS, "--checks")
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
