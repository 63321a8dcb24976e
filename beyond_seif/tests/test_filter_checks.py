"""The Filter's cheap checks (beyond_seif.filter_checks): what they remove before the LLM is asked.

Not SEIF, and off by default: with BeyondSEIF(filter_checks=True) `filter_checks.reason` names
the first cheap check a set fails (empty, duplicate, wrong_count, too_long, known_conflict), and
`filter.filter_sets` sends only the sets it keeps to the LLM. Provable contradictions between
rule-mapped constraints are removed; sets that are merely unusual are left to the LLM.
"""

import pytest

from beyond_seif.filter_checks import REASONS, reason
from conftest import fake_generate
from filter import filter_sets, report
from settings import BeyondSEIF

CHECKS = BeyondSEIF(filter_checks=True)


def constraint(text, ifeval_id=None, kwargs=None):
    return {"text": text, "ifeval_id": ifeval_id, "kwargs": kwargs}


def constraints(*texts):
    return [constraint(text) for text in texts]


def rule(text, ifeval_id, **kwargs):
    return constraint(text, ifeval_id, kwargs)


# --- the cheap checks ------------------------------------------------------------------------

def test_a_fine_set_passes_the_cheap_checks():
    good = constraints("Use at least 3 bullet points.", "End with the word Done.")
    assert reason(good, None, CHECKS) is None
    assert reason(good, 2, CHECKS) is None


def test_each_cheap_reason():
    assert reason([], None, CHECKS) == "empty"
    assert reason(constraints("Be brief.", "   "), None, CHECKS) == "empty"
    assert reason(constraints("Be brief.", "  be   BRIEF. "), None, CHECKS) == "duplicate"
    assert reason([constraint("Do not use any commas.", "punctuation:no_comma", {}),
                   constraint("Avoid commas.", "punctuation:no_comma", None)], None, CHECKS) == "duplicate"
    assert reason([constraint("Use the word 'sun'.", "keywords:existence", {"keywords": ["sun"]}),
                   constraint("Use the word 'moon'.", "keywords:existence", {"keywords": ["moon"]})],
                  None, CHECKS) is None  # one rule, two different checks
    assert reason(constraints("Be brief.", "No commas."), 3, CHECKS) == "wrong_count"
    assert reason(constraints("Be brief.", "x" * 301), None, CHECKS) == "too_long"
    assert reason(constraints("Be brief.", "x" * 50), None,
                  BeyondSEIF(filter_checks=True, max_constraint_chars=40)) == "too_long"


def test_the_checks_are_off_by_default():
    for broken in ([], constraints("Be brief.", "be brief."), constraints("x" * 301)):
        assert reason(broken, 3, BeyondSEIF()) is None


# --- provable contradictions -----------------------------------------------------------------

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
    assert reason(pair, None, CHECKS) == "known_conflict"
    assert reason(list(reversed(pair)), None, CHECKS) == "known_conflict"


@pytest.mark.parametrize("rules", SATISFIABLE, ids=lambda rules: rules[0]["ifeval_id"])
def test_satisfiable_sets_are_left_to_the_llm(rules):
    assert reason(rules, None, CHECKS) is None
    assert reason(list(reversed(rules)), None, CHECKS) is None


def test_constraints_without_a_rule_are_left_to_the_llm():
    assert reason(constraints("Answer in German.", "Write in capital letters only."), None, CHECKS) is None


# --- in the Filter -----------------------------------------------------------------------------

def test_llm_check_runs_only_on_sets_that_pass_the_cheap_checks(monkeypatch):
    calls = fake_generate(monkeypatch, ["[[1]]"])
    sets = [constraints("Be brief.", "No commas."), [], constraints("Be brief.", "be brief.")]
    keep, reasons = filter_sets(None, None, sets, departures=CHECKS, expected_counts=[2, 2, 2])
    assert keep == [True, False, False]
    assert reasons == [None, "empty", "duplicate"]
    assert len(calls[0][0]) == 1  # only the surviving set was sent to the model


def test_report_counts_by_reason():
    summary = report([None, "empty", None, "llm_conflict", "llm_conflict", "known_conflict"], CHECKS)
    assert summary["total"] == 6 and summary["kept"] == 2
    assert summary["removed"] == {"empty": 1, "duplicate": 0, "wrong_count": 0, "too_long": 0, "not_rule_checked": 0,
                                  "known_conflict": 1, "llm_conflict": 2}
    assert set(summary["why"]) == set(summary["removed"]) == {*REASONS, "llm_conflict"}
