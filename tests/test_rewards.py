"""SEIF's two rewards on crafted outputs (SEIF.md, "Rewards (exact)").

    Follower:    0 if the reply fails the format gate, else the mean of the Judger's 0/1
                 verdicts over the instruction's constraints
    Instructor:  0 if its reply fails the format gate or the JSON check, or the Filter rejects
                 the set, or the frozen helper's answer is empty; else 1 - followed/n for the
                 helper's answer

The helper's answers and the Judger's and Filter's replies are canned (`fake_roles`, or
conftest.fake_generate for one reply to every chat). Every reward here is computed with the
default settings, SEIF's code, except in test_filter_checks_reject_gives_zero, which turns on the
Filter's cheap checks (a departure). The rewards with the echo guard or rule checks are tested in
beyond_seif/tests/ (test_echo_guard.py, test_rules.py).
"""

import json

from types import SimpleNamespace

import pytest

import follower
import instructor
import reply_format
import rollout
from conftest import fake_generate
from filter import FilterConfig
from instructor import InstructorConfig
from judger import JudgerConfig, judge_messages
from settings import BeyondSEIF

# three verifiable constraints; the answer below breaks only the first
CONSTRAINTS = ["Do not use any commas in your response.",
               "Write your entire response in lowercase letters.",
               "Include the keyword 'river' in your response."]
ANSWER = "the river is calm, and the boats are still"
TWO_OF_THREE = ["It has a comma. Verdict: [[0]]", "All lowercase. Verdict: [[1]]", "It says river. Verdict: [[1]]"]
SEED = "Describe a quiet morning."
NO_LLM_FILTER = FilterConfig(llm=False)


def instructor_reply(answer_json):
    return f"<think> three checkable constraints </think><answer>{answer_json}</answer>"


def three_constraints_reply(constraints=CONSTRAINTS):
    return instructor_reply(json.dumps({f"c{i}": c for i, c in enumerate(constraints, 1)}))


def verifiable_item():
    return {"seed": SEED, "mode": "verifiable", "expected_count": 3, "messages": []}


def fake_roles(monkeypatch, replies):
    """Make rollout.generate answer each role with its own canned replies, one per chat:
    `replies` maps a call's desc ("helper answers", "judge", "filter") to a list of texts.
    Returns the calls made, as (desc, chats)."""
    calls = []

    def generate(model, tokenizer, messages_list, **kwargs):
        calls.append((kwargs["desc"], messages_list))
        return SimpleNamespace(texts=replies[kwargs["desc"]][: len(messages_list)])

    monkeypatch.setattr(rollout, "generate", generate)
    return calls


@pytest.fixture
def helper_answers(monkeypatch):
    """The frozen helper's one answer per evolved instruction, canned; returns the calls made."""
    return fake_generate(monkeypatch, [f"<think> ok </think><answer>{ANSWER}</answer>"] * 8)


def instruction_row(constraints=CONSTRAINTS, departures=None):
    """A row of a round's instructions file: the seed with its constraints (with rules on, as a
    `rules` run writes it, each constraint also carries the IFEval rule it maps to)."""
    return instructor.instruction_row(1, "verifiable", SEED,
                                      instructor.constraint_dicts(constraints, "verifiable", SEED, departures), 3)


def instructor_rewards(texts, filter_cfg=NO_LLM_FILTER, departures=None):
    items = [verifiable_item() for _ in texts]
    return instructor.rewards(None, None, items, texts, InstructorConfig(), JudgerConfig(), filter_cfg, departures)


# --- the Instructor's reward -----------------------------------------------------------------

def test_instructor_gets_one_third_and_follower_two_thirds(monkeypatch):
    calls = fake_roles(monkeypatch, {"helper answers": [f"<think> ok </think><answer>{ANSWER}</answer>"],
                                     "judge": TWO_OF_THREE})
    rewards, info = instructor_rewards([three_constraints_reply()])
    assert rewards == [pytest.approx(1 / 3)]  # 1 - 2 followed / 3
    assert info == {"format_pass": 1.0, "filter_pass": 1.0, "empty_answers": 0.0}  # no mapped_fraction: no rules
    # the helper saw exactly one evolved instruction (the seed, a newline, the constraints) as a
    # plain user turn, with no system prompt, as in SEIF's reward code; the Judger then saw its
    # answer with one constraint at a time
    (_, chats), (desc, judged) = calls
    assert chats == [[{"role": "user", "content": SEED + "\n" + "\n".join(CONSTRAINTS)}]]
    assert desc == "judge" and judged == [judge_messages(ANSWER, c) for c in CONSTRAINTS]

    follower_rewards, _ = follower.rewards(None, None, [instruction_row()],
                                           [f"<think> hm </think><answer>{ANSWER}</answer>"], JudgerConfig())
    assert follower_rewards == [pytest.approx(2 / 3)]


@pytest.mark.parametrize("reply", [
    '<answer>{"c1": "Use no commas."}</answer>',  # no <think> block
    '<think> a </think><answer>{"c1": "x"}</answer> trailing text',  # text after </answer>
    "<think> a </think><answer>use no commas; be brief</answer>",  # not JSON
    "<think> a </think><answer>[1, 2, 3]</answer>",  # a JSON list of numbers
    "<think> a </think><answer>{}</answer>",  # an empty set
    "",  # an empty completion
])
def test_instructor_reward_is_zero_for_bad_format_or_json(reply, helper_answers):
    rewards, info = instructor_rewards([reply])
    assert rewards == [0.0] and info["format_pass"] == 0.0
    assert helper_answers == []  # nothing to answer: no helper call


@pytest.mark.parametrize("helper_answer", [
    "",  # an immediate EOS
    "  \n ",  # whitespace
    "<think> x </think><answer></answer>",  # an empty answer in the format
    "<think> x </think><answer>   </answer>",
    "<think> x </think>",  # nothing after the reasoning
    "<think> the helper is still thinking when the token budget runs out",  # cut off early
])
def test_an_empty_helper_answer_pays_the_instructor_nothing(helper_answer, monkeypatch):
    calls = fake_roles(monkeypatch, {"helper answers": [helper_answer], "judge": ["Verdict: [[0]]"] * 3})
    rewards, info = instructor_rewards([three_constraints_reply()])
    assert rewards == [0.0]  # every verdict on it would be 0, which once paid the maximum 1
    assert info["filter_pass"] == 1.0 and info["empty_answers"] == 1.0
    assert [desc for desc, _ in calls] == ["helper answers"]  # nothing to judge


def test_a_plain_answer_without_the_format_is_judged(monkeypatch):
    # the helper has no system prompt, so no think/answer
    calls = fake_roles(monkeypatch, {"helper answers": [ANSWER], "judge": TWO_OF_THREE})
    rewards, info = instructor_rewards([three_constraints_reply()])
    assert rewards == [pytest.approx(1 / 3)] and info["empty_answers"] == 0.0
    assert calls[1][1] == [judge_messages(ANSWER, c) for c in CONSTRAINTS]


def test_llm_filter_saying_conflict_gives_zero(monkeypatch):
    calls = fake_roles(monkeypatch, {"filter": ["These cannot all hold. [[0]]"]})
    rewards, info = instructor_rewards([three_constraints_reply()], FilterConfig(llm=True))
    assert rewards == [0.0] and info["filter_pass"] == 0.0
    assert [desc for desc, _ in calls] == ["filter"]  # a rejected set is not answered or judged


def test_filter_checks_reject_gives_zero(helper_answers):
    """Not SEIF: with beyond_seif.filter_checks the Filter's cheap checks reject a set first."""
    duplicate = three_constraints_reply([CONSTRAINTS[0], CONSTRAINTS[0], CONSTRAINTS[1]])
    fifty = instructor_reply(json.dumps({f"c{i}": f"Mention the number {i}." for i in range(50)}))
    too_long = three_constraints_reply(["a" * 5000, CONSTRAINTS[1], CONSTRAINTS[2]])
    rewards, info = instructor_rewards([duplicate, fifty, too_long], departures=BeyondSEIF(filter_checks=True))
    assert rewards == [0.0, 0.0, 0.0]
    assert info["format_pass"] == 1.0 and info["filter_pass"] == 0.0
    assert helper_answers == []


# --- the Follower's reward -------------------------------------------------------------------

def test_follower_format_gate_and_unparseable_judge(monkeypatch):
    open_ended = {"constraints": [{"text": "Sound cheerful.", "ifeval_id": None, "kwargs": None}]}
    fake_generate(monkeypatch, ["It seems cheerful enough, I suppose."])
    rewards, info = follower.rewards(None, None, [open_ended, open_ended],
                                     ["Great day!", "<think> x </think><answer>Great day!</answer>"],
                                     JudgerConfig())
    assert rewards == [0.0, 0.0]  # no format; then a judge reply with no [[d]] = not followed
    assert info["format_pass"] == 0.5


def test_seif_follower_reward_is_the_mean_llm_verdict_even_where_a_rule_could_check(monkeypatch):
    """By default (no departures) the LLM judges every constraint, one a rule could check too."""
    row = instruction_row(departures=BeyondSEIF(rules=True))  # a row as a `rules` run writes it
    assert all(c["ifeval_id"] for c in row["constraints"])  # every constraint maps to a rule
    # The rules would say [0, 1, 1] (the answer has a comma); the LLM's canned verdicts decide.
    calls = fake_generate(monkeypatch, ["Verdict: [[1]]", "Verdict: [[0]]", "Verdict: [[0]]"])
    rewards, info = follower.rewards(None, None, [row, row],
                                     [f"<think> x </think><answer>{ANSWER}</answer>", ANSWER],
                                     JudgerConfig())
    assert rewards == [pytest.approx(1 / 3), 0.0]  # the second fails the format gate: not judged
    (judged, _), = calls
    assert judged == [judge_messages(ANSWER, c) for c in CONSTRAINTS]
    assert info == {"format_pass": 0.5, "constraints_followed": pytest.approx(1 / 3)}
    assert "echo_or_off_topic" not in info  # no echo guard


def test_a_reply_cut_off_by_its_budget_earns_nothing_with_unfinished_unpaid(fooled_judge):
    """The same reply pays when it ended and pays 0 when the rollout cut it off, only with the
    departure on; off, a cut-off reply is judged as SEIF's code judges it."""
    row = {"constraints": [{"text": "Sound cheerful.", "ifeval_id": None, "kwargs": None}]}
    reply = "<think> x </think><answer>Great day!</answer>"
    items = [{**row, "finished": True}, {**row, "finished": False}, row]  # the last: no rollout flag
    on = BeyondSEIF(unfinished_unpaid=True)
    rewards, info = follower.rewards(None, None, items, [reply] * 3, JudgerConfig(), on)
    assert rewards == [1.0, 0.0, 1.0] and info["unfinished"] == pytest.approx(1 / 3)
    assert follower.rewards(None, None, items, [reply] * 3, JudgerConfig())[0] == [1.0, 1.0, 1.0]
    lenient = BeyondSEIF(unfinished_unpaid=True, lenient_follower=True)
    assert follower.rewards(None, None, items, ["Great day!"] * 3, JudgerConfig(), lenient)[0] == [1.0, 0.0, 1.0]


def test_extract_answer_follows_the_seif_regex():
    assert reply_format.extract_answer("<think>a\nb</think>\n<answer> hi </answer>") == "hi"
    assert reply_format.extract_answer("  <think></think><answer>x</answer>\n") == "x"
    assert reply_format.extract_answer("<answer>x</answer>") is None
    assert reply_format.extract_answer("<think>a</think><answer>x</answer> extra") is None
