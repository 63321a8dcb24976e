"""The Filter: deterministic checks, the LLM conflict check (canned outputs), the report, the CLI."""

import json
import subprocess
import sys
from pathlib import Path

from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_CONFLICTS

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
    assert deterministic_reason(constraints("Be brief.", "No commas."), expected_count=3) == "wrong_count"
    assert deterministic_reason(constraints("Be brief.", "x" * 301)) == "too_long"
    assert deterministic_reason(constraints("Be brief.", "x" * 50),
                                cfg=FilterConfig(max_constraint_chars=40)) == "too_long"


def test_known_conflict_uses_the_ifeval_table():
    # lm-eval lists a response language as incompatible with all-capital English.
    assert "change_case:english_capital" in INSTRUCTION_CONFLICTS["language:response_language"]
    pair = [constraint("Answer in German.", "language:response_language", {"language": "de"}),
            constraint("Write in capital letters only.", "change_case:english_capital", {})]
    assert deterministic_reason(pair) == "known_conflict"
    assert deterministic_reason(list(reversed(pair))) == "known_conflict"
    # Two of the same type are not a contradiction ("include cat", "include dog"): left to the LLM.
    keywords = [constraint("Include the word cat.", "keywords:existence", {"keywords": ["cat"]}),
                constraint("Include the word dog.", "keywords:existence", {"keywords": ["dog"]})]
    assert deterministic_reason(keywords) is None
    # Constraints without an ifeval_id are left to the LLM check.
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


def test_filter_prompt_lists_the_constraints_to_check():
    content = conflict_messages(["Be brief.", "No commas."])[0]["content"]
    assert "Now check this set.\nCONSTRAINTS:\n1. Be brief.\n2. No commas.\nCould one" in content


# --- the report ------------------------------------------------------------------------------

def test_report_counts_by_reason():
    summary = report([None, "empty", None, "llm_conflict", "llm_conflict", "known_conflict"])
    assert summary["total"] == 6 and summary["kept"] == 2
    assert summary["removed"] == {"empty": 1, "duplicate": 0, "wrong_count": 0, "too_long": 0,
                                  "known_conflict": 1, "llm_conflict": 2}
    assert set(summary["why"]) == set(summary["removed"])


# --- command line ----------------------------------------------------------------------------

def test_command_line_without_llm(tmp_path):
    rows = [{"prompt": "Describe a cat.", "constraints": constraints("Be brief.", "No commas."),
             "expected_count": 2},
            {"prompt": "Describe a dog.", "constraints": constraints("Be brief."), "expected_count": 3}]
    instructions = tmp_path / "in.jsonl"
    instructions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out, report_path = tmp_path / "kept.jsonl", tmp_path / "filter_report.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "filter.py"), "--instructions", str(instructions),
         "--out", str(out), "--report", str(report_path), "--no-llm"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["prompt"] for row in kept] == ["Describe a cat."]
    summary = json.loads(report_path.read_text())
    assert summary["kept"] == 1 and summary["removed"]["wrong_count"] == 1


def test_command_line_needs_a_model_for_the_llm_check(tmp_path):
    instructions = tmp_path / "in.jsonl"
    instructions.write_text(json.dumps({"constraints": constraints("Be brief.")}) + "\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "filter.py"), "--instructions", str(instructions),
         "--out", str(tmp_path / "kept.jsonl")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: --model is required")
