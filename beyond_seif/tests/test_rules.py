"""Rule checks (beyond_seif.rules): a constraint that states one IFEval rule is checked by that rule.

Not SEIF, where the frozen helper judges every constraint. With `BeyondSEIF(rules=True)`:

    instructor.constraint_dicts   maps each verifiable-mode sentence to an IFEval id and kwargs
                                  (None where no rule means exactly the same)
    judger.judge                  checks the mapped constraints by rule and asks the LLM about
                                  the rest only, so `model` may be None when rules check them all
    rules.mapping_report          how many constraints a rule checks (the Instructor's reward
                                  logs it as info["mapped_fraction"])

How a sentence maps to a rule is tested in test_constraint_mapping.py.
"""

import json

import pytest

import ifeval_checks
import instructor
from beyond_seif import rules
from conftest import fake_generate
from data import UserError
from filter import FilterConfig
from instructor import InstructorConfig
from judger import JudgerConfig, judge
from settings import BeyondSEIF

RULES = BeyondSEIF(rules=True)

LOWERCASE = {"text": "Write in lowercase only.", "ifeval_id": "change_case:english_lowercase", "kwargs": {}}
NO_COMMA = {"text": "Do not use commas.", "ifeval_id": "punctuation:no_comma", "kwargs": {}}
BULLETS = {"text": "Use at least 3 bullet points.", "ifeval_id": "detectable_format:number_bullet_lists",
           "kwargs": {"num_bullets": 3}}
PIRATE = {"text": "Sound like a pirate.", "ifeval_id": None, "kwargs": None}  # no rule says this

# the Instructor's verifiable constraints, each of which a rule checks exactly
CONSTRAINTS = ["Do not use any commas in your response.",
               "Write your entire response in lowercase letters.",
               "Include the keyword 'river' in your response."]
SEED = "Describe a quiet morning."
ANSWER = "the river is calm, and the boats are still"  # breaks only the first


# --- one rule verdict ------------------------------------------------------------------------

def test_rule_verdict_is_ifevals_exact_check():
    assert rules.rule_verdict(NO_COMMA, "no commas here") == 1.0
    assert rules.rule_verdict(NO_COMMA, "one, comma") == 0.0
    assert rules.rule_verdict({**LOWERCASE, "kwargs": None}, "all lowercase") == 1.0  # no kwargs: {}


def test_rule_verdicts_answer_only_the_constraints_a_rule_checks():
    triples = [(0, "has, a comma", NO_COMMA), (3, "ahoy matey", PIRATE), (5, "the morning is quiet and still", LOWERCASE)]
    assert rules.rule_verdicts(triples) == {0: 0.0, 5: 1.0}  # index 3 is left to the LLM


# --- the Judger with rules on ---------------------------------------------------------------

def test_rule_checks_give_one_verdict_per_constraint():
    answer = "plain words here\nall of them lowercase and with no commas"
    verdicts = judge(None, None, [(answer, c) for c in (LOWERCASE, NO_COMMA, BULLETS)], departures=RULES)
    assert verdicts == [1.0, 1.0, 0.0]
    assert sum(verdicts) / len(verdicts) == pytest.approx(2 / 3)  # the Follower's reward


def test_rule_check_sees_the_answer_without_its_reasoning():
    # The <think> part has capitals; only the text after </think> is checked.
    answer = "<think>Plan: Keep It Lowercase.</think>all lowercase here"
    assert judge(None, None, [(answer, LOWERCASE)], departures=RULES) == [1.0]


def test_a_rule_decides_without_asking_the_llm(monkeypatch):
    calls = fake_generate(monkeypatch, ["Verdict: [[1]]"])
    # The LLM would say [[1]]; the rule says 0 (capital W), and the LLM is never asked.
    assert judge(None, None, [("With Capitals", LOWERCASE)], JudgerConfig(), RULES) == [0.0]
    assert calls == []


def test_rules_and_llm_mix_keeps_the_order(monkeypatch):
    calls = fake_generate(monkeypatch, ["[[1]]"])
    pairs = [("has, a comma", NO_COMMA), ("ahoy matey", PIRATE)]
    assert judge(None, None, pairs, departures=RULES) == [0.0, 1.0]
    (chats, _), = calls
    assert len(chats) == 1 and "Sound like a pirate." in chats[0][0]["content"]  # only the unmapped one


def test_a_crashing_rule_check_counts_as_not_followed(monkeypatch):
    def broken_check(*args, **kwargs):
        raise KeyError("num_bullets")

    monkeypatch.setattr(ifeval_checks, "check", broken_check)
    with pytest.warns(UserWarning, match="verdict 0"):
        assert judge(None, None, [("* one\n* two\n* three", BULLETS)], departures=RULES) == [0.0]


def test_a_missing_rule_setup_is_an_error_not_a_zero(monkeypatch):
    """Without lm-eval, or NLTK's punkt_tab for a sentence count, every such rule verdict would
    silently be 0. Rules that need no NLTK data still work without it."""
    from lm_eval.tasks.ifeval import instructions_util  # its sentence tokenizer is cached once loaded

    def no_punkt():
        raise LookupError("Resource punkt_tab not found.")

    monkeypatch.setattr(instructions_util, "_get_sentence_tokenizer", no_punkt)
    sentences = {"text": "Use fewer than 3 sentences.", "ifeval_id": "length_constraints:number_sentences",
                 "kwargs": {"num_sentences": 3, "relation": "less than"}}
    assert judge(None, None, [("no commas here", NO_COMMA)], departures=RULES) == [1.0]
    with pytest.raises(UserError, match="punkt_tab"):
        judge(None, None, [("One sentence. Two.", sentences)], departures=RULES)

    def no_lm_eval():
        raise UserError("IFEval rule checks need lm-eval: pip install -r requirements-extra.txt")

    monkeypatch.setattr(ifeval_checks, "registry", no_lm_eval)
    with pytest.raises(UserError, match="need lm-eval"):
        judge(None, None, [("no commas here", NO_COMMA)], departures=RULES)


# --- constraints mapped into dicts, and the mapping report ------------------------------------

def test_constraint_dicts_carry_a_rule_only_with_rules_on():
    assert instructor.constraint_dicts(CONSTRAINTS[:1], "verifiable", SEED) == [{"text": CONSTRAINTS[0]}]
    mapped = instructor.constraint_dicts(CONSTRAINTS + ["Sound cheerful."], "verifiable", SEED, RULES)
    assert [c["text"] for c in mapped] == CONSTRAINTS + ["Sound cheerful."]
    assert [c["ifeval_id"] for c in mapped] == ["punctuation:no_comma", "change_case:english_lowercase",
                                                "keywords:existence", None]
    assert mapped[2]["kwargs"] == {"keywords": ["river"]} and mapped[3]["kwargs"] is None


def test_open_ended_constraints_are_never_mapped():
    mapped = rules.map_constraints([{"text": CONSTRAINTS[0]}], "open-ended", SEED)
    assert mapped == [{"text": CONSTRAINTS[0], "ifeval_id": None, "kwargs": None}]


def test_mapping_report_counts_the_rule_checked_constraints():
    assert rules.mapping_report([NO_COMMA, PIRATE, LOWERCASE, {"text": "Be brief."}]) == {
        "verifiable_constraints": 4, "mapped": 2, "mapped_fraction": 0.5}
    assert rules.mapping_report([])["mapped_fraction"] == 0.0


def test_the_instructor_reward_judged_by_rules_logs_the_mapped_fraction(monkeypatch):
    helper_calls = fake_generate(monkeypatch, [f"<think> ok </think><answer>{ANSWER}</answer>"])
    reply = "<think> three checkable constraints </think><answer>" + json.dumps(
        {f"c{i}": c for i, c in enumerate(CONSTRAINTS, 1)}) + "</answer>"
    item = {"seed": SEED, "mode": "verifiable", "expected_count": 3, "messages": []}
    rewards, info = instructor.rewards(None, None, [item], [reply], InstructorConfig(), JudgerConfig(),
                                       FilterConfig(llm=False), RULES)
    assert rewards == [pytest.approx(1 / 3)]  # 1 - 2 followed / 3, every verdict by rule
    assert info["format_pass"] == 1.0 and info["filter_pass"] == 1.0 and info["mapped_fraction"] == 1.0
    assert len(helper_calls) == 1  # the helper answered; no LLM verdict was asked for


# -----------------------------------------------------------------------------
# restrictions_deduct: a limit a do-nothing reply meets only takes reward away

RIVER = {"text": "Include the word river.", "ifeval_id": "keywords:existence", "kwargs": {"keywords": ["river"]}}
SHORT = {"text": "Answer in fewer than 20 words.", "ifeval_id": "length_constraints:number_words",
         "kwargs": {"num_words": 20, "relation": "less than"}}
LONG = {"text": "Answer in at least 20 words.", "ifeval_id": "length_constraints:number_words",
        "kwargs": {"num_words": 20, "relation": "at least"}}
DEDUCT = BeyondSEIF(rules=True, restrictions_deduct=True)


def test_a_restriction_is_a_rule_a_reply_doing_nothing_meets():
    assert [rules.is_restriction(c) for c in (NO_COMMA, SHORT, RIVER, LONG, BULLETS, PIRATE)] == [
        True, True, False, False, False, False]


def follower_rewards(constraints, answers, departures):
    import follower

    items = [{"constraints": constraints}] * len(answers)
    return follower.rewards(None, None, items, [f"<think> x </think><answer>{a}</answer>" for a in answers],
                            JudgerConfig(), departures)[0]


def test_limits_alone_earn_nothing_and_only_take_away_with_restrictions_deduct():
    constraints = [RIVER, NO_COMMA, SHORT]
    answers = ["The river runs slow under the old stone bridge",   # meets all three
               "Thanks for asking",                                # meets only the two limits
               "The river, wide and slow, runs under the bridge"]  # the word, but a comma
    assert follower_rewards(constraints, answers, RULES) == pytest.approx([1.0, 2 / 3, 2 / 3])  # SEIF's mean
    assert follower_rewards(constraints, answers, DEDUCT) == pytest.approx([1.0, 0.0, 0.5])


def test_a_set_of_limits_only_keeps_seifs_mean():
    answers = ["Thanks for asking", "Thanks, friend"]
    assert follower_rewards([NO_COMMA, SHORT], answers, DEDUCT) == follower_rewards([NO_COMMA, SHORT], answers, RULES)
    assert follower_rewards([NO_COMMA, SHORT], answers, DEDUCT) == pytest.approx([1.0, 0.5])


def test_restrictions_deduct_needs_the_rules():
    from settings import check

    class Settings:
        beyond_seif = BeyondSEIF(restrictions_deduct=True)
    with pytest.raises(UserError, match="restrictions_deduct needs beyond_seif.rules"):
        check(Settings())


def test_restrictions_deduct_never_pays_more_than_seifs_mean_and_the_same_for_a_full_answer():
    import itertools

    constraints = [RIVER, LONG, NO_COMMA, SHORT]
    for verdicts in itertools.product([0.0, 1.0], repeat=4):
        (deducted,) = rules.deduct_restrictions([constraints], list(verdicts))
        assert deducted <= sum(verdicts) / 4 + 1e-12
        assert (deducted == 1.0) == all(verdicts)
        assert (deducted == 0.0) == (verdicts[:2] == (0.0, 0.0) or verdicts[2:] == (0.0, 0.0))
