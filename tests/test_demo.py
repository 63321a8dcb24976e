"""Without its switches the CPU demo changes nothing: the demo preset's departures (beyond_seif/,
tested in beyond_seif/tests/test_demo_prompt.py) are off by default and in the seif and qwen0.5b
presets, so the Instructor gets SEIF's prompts and must write SEIF's format, and a Follower reply
without SEIF's format earns 0 however the judge would rate it."""

import argparse
import random

import follower
import instructor
import loop
import reply_format
from settings import BeyondSEIF

SEED = "Describe a quiet morning."
CONSTRAINTS = ["Do not use any commas.", "Write the whole reply in lowercase letters.", 'Include the word "today".']
GOOD_ANSWER = "the morning is quiet today and the river is still"  # no commas, lowercase, has "today"


def settings_for(preset):
    return loop.settings_from(argparse.Namespace(preset=preset, model=None, helper=None, seeds=None, name=None, set=[]))


def test_the_demo_departures_are_off_outside_the_demo():
    assert settings_for(None).beyond_seif == settings_for("seif").beyond_seif == BeyondSEIF()  # all off
    for settings in (settings_for(None), settings_for("seif"), settings_for("qwen0.5b")):
        departures = settings.beyond_seif
        assert not departures.demo_prompt and settings.instructor.verifiable_fraction == 0.5
        assert not departures.lenient_instructor and not departures.lenient_follower
        assert not departures.score_judge
        assert settings.filter.llm and not departures.rules_only


def test_seif_prompts_without_the_switch():
    for mode, prompt in (("verifiable", instructor.VERIFIABLE), ("open-ended", instructor.OPEN_ENDED)):
        assert instructor.prompt_messages(SEED, mode, random.Random(0)) == reply_format.messages(
            prompt.format(seed=SEED))
        assert instructor.prompt_messages(SEED, mode, random.Random(0), BeyondSEIF()) == reply_format.messages(
            prompt.format(seed=SEED))


def test_an_instructor_reply_without_the_format_is_not_read():
    bare = '{"c1": "Do not use any commas."}'
    assert instructor.parse_constraints(bare) is None
    assert instructor.parse_constraints(f"<think> one rule </think><answer>{bare}</answer>") == [
        "Do not use any commas."]


def test_a_follower_reply_without_the_format_earns_nothing(fooled_judge):
    row = instructor.instruction_row(1, "verifiable", SEED, instructor.constraint_dicts(CONSTRAINTS, "verifiable", SEED),
                                     len(CONSTRAINTS))
    formatted = f"<think> plan </think><answer>{GOOD_ANSWER}</answer>"
    rewards, info = follower.rewards(None, None, [row, row], [GOOD_ANSWER, formatted], settings_for(None).judger)
    assert rewards == [0.0, 1.0]  # the same answer, judged only inside SEIF's format
    assert info["format_pass"] == 0.5
    assert [answer for answer, _ in fooled_judge] == [GOOD_ANSWER] * len(CONSTRAINTS)
