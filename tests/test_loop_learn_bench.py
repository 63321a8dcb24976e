"""What bench/loop_learn.py counts as an echo, a non-answer, a rule pass and a type mix, on
hand-written replies: no model runs here."""

import importlib.util

from beyond_seif import echo_guard
from conftest import REPO

spec = importlib.util.spec_from_file_location("loop_learn_bench", REPO / "bench" / "loop_learn.py")
loop_learn = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loop_learn)

INSTRUCTION = ("Give advice to a new student about the river near the campus.\n"
               'End your reply with the exact phrase "That is all."')
ROW = {"instruction": INSTRUCTION, "constraints": [
    {"text": 'End your reply with the exact phrase "That is all."', "ifeval_id": "startend:end_checker",
     "kwargs": {"end_phrase": "That is all."}},
    {"text": "Be friendly.", "ifeval_id": None, "kwargs": None}]}


def test_a_copied_instruction_line_is_an_echo_and_an_answer_is_not():
    assert loop_learn.is_echo('Sure. End your reply with the exact phrase "That is all."', INSTRUCTION)
    assert not loop_learn.is_echo("Walk along the bank in the morning and never swim alone. That is all.",
                                  INSTRUCTION)


def test_non_answers_are_short_or_restate_the_request():
    assert echo_guard.is_non_answer("That is all.", INSTRUCTION)  # two words
    assert echo_guard.is_non_answer('End your reply with the exact phrase "That is all."', INSTRUCTION)
    assert echo_guard.is_non_answer("The new student wants advice about the river near the campus.", INSTRUCTION)
    assert not echo_guard.is_non_answer(
        "Walk along the bank in the morning, watch for fast currents after rain, and never swim alone. "
        "That is all.", INSTRUCTION)


def test_rule_verdicts_check_only_mapped_constraints():
    assert loop_learn.rule_verdicts(ROW, "Stay on the marked path. That is all.") == [True]
    assert loop_learn.rule_verdicts(ROW, "That is all. Stay on the marked path.") == [False]


def test_type_mix_counts_families_and_llm_judged_constraints():
    rows = [ROW, {"constraints": [{"ifeval_id": "startend:quotation"}, {"ifeval_id": "punctuation:no_comma"}]}]
    assert loop_learn.type_mix(rows) == {"startend": 2, "llm-judged": 1, "punctuation": 1}


def test_a_round_whose_filter_kept_nothing_has_no_instructions(tmp_path):
    (tmp_path / "instructions.jsonl").write_text("")
    assert loop_learn.kept_instructions(tmp_path) == []
    assert loop_learn.type_mix([]) == {}
    assert loop_learn.base_failures("unused", [], 8) == {"mapped_constraints": 0, "base_failure_rate": None}
    (tmp_path / "instructions.jsonl").write_text('{"instruction": "x", "constraints": []}\n')
    assert loop_learn.kept_instructions(tmp_path) == [{"instruction": "x", "constraints": []}]
