"""The demo preset's departures from SEIF (beyond_seif.demo_prompt, lenient_instructor,
lenient_follower, rules_only): each is on in the demo and does what it says. And under the demo's
settings the echo guard still holds: an echoed constraint earns nothing, a real answer that
satisfies the constraints earns full credit. (That they are off by default: tests/test_demo.py.)"""

import argparse
import json
import random
import re
from dataclasses import replace

import pytest

import follower
import instructor
import loop
import reply_format
from beyond_seif import demo_prompt
from beyond_seif.constraint_mapping import map_constraint
from beyond_seif.filter_checks import reason
from conftest import fake_generate
from settings import BeyondSEIF

SEED = "Describe a quiet morning."
CONSTRAINTS = ["Do not use any commas.", "Write the whole reply in lowercase letters.", 'Include the word "today".']
GOOD_ANSWER = "the morning is quiet today and the river is still"  # no commas, lowercase, has "today"


def settings_for(preset):
    return loop.settings_from(argparse.Namespace(preset=preset, model=None, helper=None, seeds=None, name=None, set=[]))


DEMO = settings_for("demo").beyond_seif  # rules, echo_guard, filter_checks, score_judge, demo_prompt, ...


def instruction_row(constraints=CONSTRAINTS):
    """A verifiable row as the demo writes it: its constraints mapped to IFEval rules."""
    return instructor.instruction_row(1, "verifiable", SEED,
                                      instructor.constraint_dicts(constraints, "verifiable", SEED, DEMO),
                                      len(constraints))


def test_the_demo_turns_on_its_departures():
    demo = settings_for("demo")
    assert demo.beyond_seif.demo_prompt and demo.instructor.verifiable_fraction == 1.0
    assert not demo.beyond_seif.lenient_instructor  # the demo keeps SEIF's format gate for the Instructor
    assert demo.beyond_seif.lenient_follower
    assert not demo.filter.llm and demo.beyond_seif.rules_only
    assert not hasattr(demo.loop, "template_fallback")  # no fallback that bypasses the Instructor


# --- the Instructor: a short prompt after worked examples --------------------------------------

def test_the_short_prompt_puts_two_worked_examples_before_the_seed():
    short = BeyondSEIF(demo_prompt=True)
    messages = instructor.prompt_messages(SEED, "verifiable", random.Random(0), short)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == reply_format.SYSTEM_PROMPT
    assert messages[-1]["content"] == demo_prompt.SHORT_VERIFIABLE.format(seed=SEED)
    for asked, replied in zip(messages[1:-1:2], messages[2::2]):
        assert asked["content"] in [demo_prompt.SHORT_VERIFIABLE.format(seed=request)
                                    for request in demo_prompt.EXAMPLE_REQUESTS]
        # each worked reply passes SEIF's strict gate and JSON check, with three rules of the list
        rules = instructor.parse_constraints(replied["content"])
        assert len(set(rules)) == 3 and set(rules) <= set(demo_prompt.RULES)


def test_worked_replies_draw_their_rules_from_the_whole_list():
    """SmolLM2 copies a worked reply's rules: fixed replies would make a round's instructions a few
    rule sets. Over a round's seeds, the worked replies offer every rule, in many sets, each set
    one the demo's Filter keeps."""
    short = BeyondSEIF(demo_prompt=True)
    sets = []
    for seed in range(24):
        messages = instructor.prompt_messages(SEED, "verifiable", random.Random(seed), short)
        sets += [tuple(sorted(instructor.parse_constraints(m["content"]))) for m in messages[2::2]]
    assert {rule for rules in sets for rule in rules} == set(demo_prompt.RULES)
    assert len(set(sets)) >= 40  # of 48 worked replies
    for rules in set(sets):
        assert reason(instructor.constraint_dicts(list(rules), "verifiable", SEED, DEMO), 3, DEMO) is None, rules


def test_every_constraint_the_short_prompt_offers_is_rule_checked():
    offered = re.findall(r"^- (.+)$", demo_prompt.SHORT_VERIFIABLE, flags=re.M)
    assert offered == demo_prompt.RULES and len(offered) == 18
    mapped = [map_constraint(text, request=SEED) for text in offered]
    assert all(mapped), offered
    assert len({rule_id for rule_id, _ in mapped}) == 18  # 18 rules, none twice
    # the pairs the worked replies avoid are the ones the demo's Filter removes
    for pair in demo_prompt.CONFLICTS:
        assert reason(instructor.constraint_dicts(sorted(pair) + ["Include the word \"today\"."], "verifiable",
                                                  SEED, DEMO), 3, DEMO) == "known_conflict", pair


def test_open_ended_mode_never_uses_the_short_prompt():
    assert instructor.prompt_messages(SEED, "open-ended", random.Random(0), BeyondSEIF(demo_prompt=True)) == (
        reply_format.messages(instructor.OPEN_ENDED.format(seed=SEED)))


def test_the_demo_instructor_is_paid_only_for_rule_checked_sets_the_helper_fails(monkeypatch):
    settings = settings_for("demo")
    # the helper's one answer per evolved instruction: lowercase, no commas, but no "today"
    fake_generate(monkeypatch, ["the morning is quiet and the river is still"] * 2)
    rule_checked = json.dumps({f"c{i}": text for i, text in enumerate(CONSTRAINTS, 1)})
    free_text = json.dumps({"c1": CONSTRAINTS[0], "c2": CONSTRAINTS[1], "c3": "Sound cheerful."})
    replies = [f"<think> three rules </think><answer>{answer}</answer>" for answer in (rule_checked, free_text)]
    items = instructor.training_items([SEED, SEED], settings.instructor, random.Random(0), settings.beyond_seif)
    rewards, info = instructor.rewards(None, None, items, replies, settings.instructor, settings.judger,
                                       settings.filter, settings.beyond_seif)  # no model: rules only
    assert rewards == [pytest.approx(1 / 3), 0.0]  # 1 - 2/3 followed; a free-text constraint: removed
    assert info["format_pass"] == 1.0 and info["filter_pass"] == 0.5


def test_lenient_instructor_reads_the_first_json_object_format_or_not():
    bare = 'Here are my rules: {"c1": "Do not use any commas.", "c2": "Answer in fewer than 40 words."} Done.'
    assert instructor.parse_constraints(bare) is None  # SEIF's gate
    lenient = BeyondSEIF(lenient_instructor=True)
    assert instructor.parse_constraints(bare, lenient) == ["Do not use any commas.", "Answer in fewer than 40 words."]
    assert demo_prompt.first_json_object("no object here") is None


# --- the Follower: lenient format ---------------------------------------------------------------

@pytest.mark.parametrize("reply, judged", [
    ("<think> plan </think><answer> the reply </answer>", "the reply"),  # the format: its <answer>
    ("<think> plan </think> the reply", "the reply"),  # no <answer>: what follows the reasoning
    ("the reply", "the reply"),  # no tags at all: the whole reply
    ("<think> still planning when the budget ran out", ""),  # nothing said yet
    ("<think> plan </think>\n<answer>the reply, cut off", "the reply, cut off"),  # no </answer>: no tags
    ("<think> plan </think><answer>the reply</answer> and more", "the reply and more"),
    ("", ""),
])
def test_lenient_answer(reply, judged):
    assert reply_format.helper_answer(reply) == judged
    assert demo_prompt.follower_answers([reply]) == [judged or None]  # nothing to judge: None


def test_a_reply_without_the_format_is_judged_only_when_the_switch_is_on(fooled_judge):
    row = instruction_row()
    judger_cfg = settings_for(None).judger
    strict, strict_info = follower.rewards(None, None, [row], [GOOD_ANSWER], judger_cfg)
    lenient, lenient_info = follower.rewards(None, None, [row], [GOOD_ANSWER], judger_cfg,
                                             BeyondSEIF(lenient_follower=True))
    assert strict == [0.0] and lenient == [1.0]
    assert strict_info["format_pass"] == lenient_info["format_pass"] == 0.0  # still SEIF's gate


@pytest.mark.parametrize("echo", [
    'Include the word "today".',  # a copied constraint passes the keyword rule
    'include the word “today”',  # copied with other case and quotes
    SEED + "\n" + "\n".join(CONSTRAINTS),  # the whole instruction
])
def test_under_the_demo_settings_an_echo_earns_nothing_and_a_real_answer_full_credit(echo, fooled_judge):
    settings = settings_for("demo")
    row = instruction_row()
    unguarded, _ = follower.rewards(None, None, [row], [echo.lower()], settings.judger,
                                    replace(settings.beyond_seif, echo_guard=False))
    assert unguarded[0] > 0  # the hole the guard closes: rules pay for copying the constraint
    rewards, info = follower.rewards(None, None, [row, row], [echo, GOOD_ANSWER], settings.judger,
                                     settings.beyond_seif)
    assert rewards == [0.0, 1.0]
    assert info["echo_or_off_topic"] == 0.5 and info["format_pass"] == 0.0


# --- the Filter: rule-checked sets only ---------------------------------------------------------

def test_rules_only_removes_a_set_that_a_rule_cannot_check():
    rule_checked = instructor.constraint_dicts(CONSTRAINTS, "verifiable", SEED, DEMO)
    with_free_text = instructor.constraint_dicts(CONSTRAINTS[:2] + ["Sound cheerful."], "verifiable", SEED, DEMO)
    rules_only = BeyondSEIF(filter_checks=True, rules_only=True)
    assert reason(rule_checked, 3, rules_only) is None
    assert reason(with_free_text, 3, rules_only) == "not_rule_checked"
    assert reason(with_free_text, 3, BeyondSEIF(rules_only=True)) == "not_rule_checked"  # without the other checks
    assert reason(with_free_text, 3, BeyondSEIF(filter_checks=True)) is None  # off: left to the LLM Filter


def test_rules_only_removes_a_rule_this_machine_cannot_run(monkeypatch):
    """Without NLTK's punkt_tab (a fresh offline install) a sentence count cannot be checked;
    the demo drops such a set instead of stopping with an error in the middle of a round."""
    from lm_eval.tasks.ifeval import instructions_util  # its sentence tokenizer is cached once loaded

    sentences = instructor.constraint_dicts(["Answer in fewer than 3 sentences.", *CONSTRAINTS[:2]], "verifiable",
                                            SEED, DEMO)
    assert sentences[0]["ifeval_id"] == "length_constraints:number_sentences"
    assert reason(sentences, 3, DEMO) is None

    def no_punkt():
        raise LookupError("Resource punkt_tab not found.")

    monkeypatch.setattr(instructions_util, "_get_sentence_tokenizer", no_punkt)
    assert reason(sentences, 3, DEMO) == "not_rule_checked"
    rule_checked = instructor.constraint_dicts(CONSTRAINTS, "verifiable", SEED, DEMO)
    assert reason(rule_checked, 3, DEMO) is None
