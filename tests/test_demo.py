"""The demo preset's departures from SEIF: each is off by default, on in the demo, and does what
it says. And under the demo's settings the echo guard still holds: an echoed constraint earns
nothing, a real answer that satisfies the constraints earns full credit."""

import json
import random
import re
from dataclasses import replace

import pytest

import follower
import instructor
import judger
import loop
from conftest import fake_generate
from beyond_seif.constraint_mapping import map_constraint
from filter import FilterConfig, deterministic_reason

SEED = "Describe a quiet morning."
CONSTRAINTS = ["Do not use any commas.", "Write the whole reply in lowercase letters.", 'Include the word "today".']
GOOD_ANSWER = "the morning is quiet today and the river is still"  # no commas, lowercase, has "today"


def settings_for(preset):
    return loop.settings_from(loop.argparse.Namespace(preset=preset, model=None, helper=None, seeds=None,
                                                      name=None, set=[]))


def instruction_row(constraints=CONSTRAINTS):
    return instructor.instruction_row(1, "verifiable", SEED,
                                      instructor.constraint_dicts(constraints, "verifiable", SEED), len(constraints))


@pytest.fixture
def fooled_judge(monkeypatch):
    """The LLM judge says "yes" to everything, as SmolLM2 in score mode nearly always does; so
    only the rule checks and the echo guard's verbatim cut stand between a reply and its reward."""
    asked = []

    def llm_verdicts(model, tokenizer, answer_constraint_texts, cfg, missing=0.0):
        asked.extend(answer_constraint_texts)
        return [1.0] * len(answer_constraint_texts)

    monkeypatch.setattr(judger, "llm_verdicts", llm_verdicts)
    return asked


def test_each_departure_is_off_by_default_and_on_only_in_the_demo():
    seif, demo, qwen = settings_for(None), settings_for("demo"), settings_for("qwen0.5b")
    for settings in (seif, qwen):
        assert settings.instructor.verifiable_prompt == "seif" and settings.instructor.verifiable_fraction == 0.5
        assert settings.instructor.strict_format and settings.follower.strict_format
        assert settings.filter.llm and not settings.filter.rules_only
    assert demo.instructor.verifiable_prompt == "short" and demo.instructor.verifiable_fraction == 1.0
    assert demo.instructor.strict_format  # the demo keeps SEIF's format gate for the Instructor
    assert not demo.follower.strict_format
    assert not demo.filter.llm and demo.filter.rules_only
    assert not hasattr(demo.loop, "template_fallback")  # no fallback that bypasses the Instructor


# --- the Instructor: a short prompt after worked examples --------------------------------------

def test_the_short_prompt_puts_two_worked_examples_before_the_seed():
    short = instructor.InstructorConfig(verifiable_prompt="short")
    messages = instructor.prompt_messages(SEED, "verifiable", short, random.Random(0))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == follower.SYSTEM_PROMPT
    assert messages[-1]["content"] == instructor.SHORT_VERIFIABLE.format(seed=SEED)
    examples = dict(instructor.WORKED_EXAMPLES)
    for asked, replied in zip(messages[1:-1:2], messages[2::2]):
        (request,) = [request for request in examples if asked["content"] == instructor.SHORT_VERIFIABLE.format(seed=request)]
        # each worked reply passes SEIF's strict gate and JSON check
        assert instructor.parse_constraints(replied["content"], strict_format=True) == examples[request]
    # seeds get different pairs of examples, so that copying one does not give every seed the same set
    drawn = {tuple(m["content"] for m in instructor.prompt_messages(SEED, "verifiable", short, random.Random(seed)))
             for seed in range(10)}
    assert len(drawn) > 1


def test_every_constraint_the_short_prompt_offers_is_rule_checked_and_in_one_worked_example():
    offered = re.findall(r"^- (.+)$", instructor.SHORT_VERIFIABLE, flags=re.M)
    assert len(offered) == 12
    assert all(map_constraint(text, request=SEED) for text in offered), offered
    in_examples = [text for _, constraints in instructor.WORKED_EXAMPLES for text in constraints]
    assert sorted(in_examples) == sorted(offered)
    for request, constraints in instructor.WORKED_EXAMPLES:  # a worked example the Filter would keep
        dicts = instructor.constraint_dicts(constraints, "verifiable", request)
        assert deterministic_reason(dicts, 3, FilterConfig(rules_only=True)) is None


def test_seif_prompts_are_unchanged_without_the_switch():
    cfg = instructor.InstructorConfig()
    assert instructor.prompt_messages(SEED, "verifiable", cfg, random.Random(0)) == follower.messages(
        instructor.VERIFIABLE.format(seed=SEED))
    short = instructor.InstructorConfig(verifiable_prompt="short")
    for config in (cfg, short):  # open-ended mode never uses the short prompt
        assert instructor.prompt_messages(SEED, "open-ended", config, random.Random(0)) == follower.messages(
            instructor.OPEN_ENDED.format(seed=SEED))


def test_the_demo_instructor_is_paid_only_for_rule_checked_sets_the_helper_fails(monkeypatch):
    settings = settings_for("demo")
    # the helper's one answer per evolved instruction: lowercase, no commas, but no "today"
    fake_generate(monkeypatch, ["the morning is quiet and the river is still"] * 2)
    rule_checked = json.dumps({f"c{i}": text for i, text in enumerate(CONSTRAINTS, 1)})
    free_text = json.dumps({"c1": CONSTRAINTS[0], "c2": CONSTRAINTS[1], "c3": "Sound cheerful."})
    replies = [f"<think> three rules </think><answer>{answer}</answer>" for answer in (rule_checked, free_text)]
    items = instructor.training_items([SEED, SEED], settings.instructor, random.Random(0))
    rewards, info = instructor.rewards(None, None, items, replies, settings.instructor, settings.judger,
                                       settings.filter)  # no model: the Filter and the Judger use rules only
    assert rewards == [pytest.approx(1 / 3), 0.0]  # 1 - 2/3 followed; a free-text constraint: removed
    assert info["format_pass"] == 1.0 and info["filter_pass"] == 0.5


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
    assert follower.lenient_answer(reply) == judged


def test_a_reply_without_the_format_is_judged_only_when_the_switch_is_on(fooled_judge):
    row = instruction_row()
    strict, strict_info = follower.rewards(None, None, [row], [GOOD_ANSWER], settings_for(None).judger)
    lenient, lenient_info = follower.rewards(None, None, [row], [GOOD_ANSWER], settings_for(None).judger,
                                             follower.FollowerConfig(strict_format=False))
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
    unguarded, _ = follower.rewards(None, None, [row], [echo.lower()], replace(settings.judger, echo_guard=False),
                                    settings.follower)
    assert unguarded[0] > 0  # the hole the guard closes: rules pay for copying the constraint
    rewards, info = follower.rewards(None, None, [row, row], [echo, GOOD_ANSWER], settings.judger, settings.follower)
    assert rewards == [0.0, 1.0]
    assert info["echo_or_off_topic"] == 0.5 and info["format_pass"] == 0.0


# --- the Filter: rule-checked sets only ---------------------------------------------------------

def test_rules_only_removes_a_set_that_a_rule_cannot_check():
    rule_checked = instructor.constraint_dicts(CONSTRAINTS, "verifiable", SEED)
    with_free_text = instructor.constraint_dicts(CONSTRAINTS[:2] + ["Sound cheerful."], "verifiable", SEED)
    rules_only = FilterConfig(rules_only=True)
    assert deterministic_reason(rule_checked, 3, rules_only) is None
    assert deterministic_reason(with_free_text, 3, rules_only) == "not_rule_checked"
    assert deterministic_reason(with_free_text, 3, FilterConfig()) is None  # off: left to the LLM Filter


def test_rules_only_removes_a_rule_this_machine_cannot_run(monkeypatch):
    """Without NLTK's punkt_tab (a fresh offline install) a sentence count cannot be checked;
    the demo drops such a set instead of stopping with an error in the middle of a round."""
    from lm_eval.tasks.ifeval import instructions_util  # its sentence tokenizer is cached once loaded

    sentences = instructor.constraint_dicts(["Answer in fewer than 3 sentences.", *CONSTRAINTS[:2]], "verifiable", SEED)
    assert sentences[0]["ifeval_id"] == "length_constraints:number_sentences"
    assert deterministic_reason(sentences, 3, FilterConfig(rules_only=True)) is None

    def no_punkt():
        raise LookupError("Resource punkt_tab not found.")

    monkeypatch.setattr(instructions_util, "_get_sentence_tokenizer", no_punkt)
    assert deterministic_reason(sentences, 3, FilterConfig(rules_only=True)) == "not_rule_checked"
    rule_checked = instructor.constraint_dicts(CONSTRAINTS, "verifiable", SEED)
    assert deterministic_reason(rule_checked, 3, FilterConfig(rules_only=True)) is None
