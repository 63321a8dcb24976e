"""SEIF's two rewards on crafted outputs (SEIF.md, "Rewards (exact)")."""

import json

from types import SimpleNamespace

import pytest

import follower
import instructor
import rollout
from conftest import fake_generate
from filter import FilterConfig
from instructor import InstructorConfig
from judger import JudgerConfig

# three verifiable constraints, each mapped to an IFEval rule; the answer below breaks only the first
CONSTRAINTS = ["Do not use any commas in your response.",
               "Write your entire response in lowercase letters.",
               "Include the keyword 'river' in your response."]
ANSWER = "the river is calm, and the boats are still"
SEED = "Describe a quiet morning."
NO_LLM_FILTER = FilterConfig(llm=False)


def instructor_reply(answer_json):
    return f"<think> three checkable constraints </think><answer>{answer_json}</answer>"


def verifiable_item():
    return {"seed": SEED, "mode": "verifiable", "expected_count": 3, "messages": []}


@pytest.fixture
def helper_answers(monkeypatch):
    """The frozen helper's one answer per evolved instruction, canned; returns the calls made."""
    return fake_generate(monkeypatch, [f"<think> ok </think><answer>{ANSWER}</answer>"] * 8)


def instruction_row(constraints=CONSTRAINTS):
    """A row of a round's instructions file: the seed with three rule-checked constraints."""
    return instructor.instruction_row(1, "verifiable", SEED, instructor.constraint_dicts(constraints, "verifiable", SEED), 3)


def instructor_rewards(texts, filter_cfg=NO_LLM_FILTER):
    items = [verifiable_item() for _ in texts]
    return instructor.rewards(None, None, items, texts, InstructorConfig(), JudgerConfig(), filter_cfg)


def test_instructor_gets_one_third_and_follower_two_thirds(helper_answers, monkeypatch):
    reply = instructor_reply(json.dumps({f"c{i}": c for i, c in enumerate(CONSTRAINTS, 1)}))
    rewards, info = instructor_rewards([reply])
    assert rewards == [pytest.approx(1 / 3)]  # 1 - 2 followed / 3
    assert info["format_pass"] == 1.0 and info["filter_pass"] == 1.0 and info["mapped_fraction"] == 1.0
    # the helper saw exactly one evolved instruction (the seed, a newline, the constraints) as a
    # plain user turn, with no system prompt, as in SEIF's reward code
    (chats, _), = helper_answers
    assert chats == [[{"role": "user", "content": SEED + "\n" + "\n".join(CONSTRAINTS)}]]

    fake_generate(monkeypatch, ["It answers the request. Verdict: [[1]]"])  # the echo guard's verdict
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
    fake_generate(monkeypatch, [helper_answer])
    reply = instructor_reply(json.dumps({f"c{i}": c for i, c in enumerate(CONSTRAINTS, 1)}))
    rewards, info = instructor_rewards([reply])
    assert rewards == [0.0]  # every verdict on it would be 0, which once paid the maximum 1
    assert info["filter_pass"] == 1.0 and info["empty_answers"] == 1.0


def test_a_plain_answer_without_the_format_is_judged(monkeypatch):
    fake_generate(monkeypatch, [ANSWER])  # the helper has no system prompt, so no think/answer
    reply = instructor_reply(json.dumps({f"c{i}": c for i, c in enumerate(CONSTRAINTS, 1)}))
    rewards, info = instructor_rewards([reply])
    assert rewards == [pytest.approx(1 / 3)] and info["empty_answers"] == 0.0


def test_filter_reject_gives_zero(helper_answers):
    duplicate = instructor_reply(json.dumps({"c1": CONSTRAINTS[0], "c2": CONSTRAINTS[0], "c3": CONSTRAINTS[1]}))
    fifty = instructor_reply(json.dumps({f"c{i}": f"Mention the number {i}." for i in range(50)}))
    too_long = instructor_reply(json.dumps({"c1": "a" * 5000, "c2": CONSTRAINTS[1], "c3": CONSTRAINTS[2]}))
    rewards, info = instructor_rewards([duplicate, fifty, too_long])
    assert rewards == [0.0, 0.0, 0.0]
    assert info["format_pass"] == 1.0 and info["filter_pass"] == 0.0


def test_llm_filter_saying_conflict_gives_zero(helper_answers, monkeypatch):
    fake_generate(monkeypatch, ["These cannot all hold. [[0]]"])
    reply = instructor_reply(json.dumps({f"c{i}": c for i, c in enumerate(CONSTRAINTS, 1)}))
    rewards, info = instructor_rewards([reply], FilterConfig(llm=True))
    assert rewards == [0.0] and info["filter_pass"] == 0.0


def test_follower_format_gate_and_unparseable_judge(monkeypatch):
    open_ended = {"constraints": [{"text": "Sound cheerful.", "ifeval_id": None, "kwargs": None}]}
    fake_generate(monkeypatch, ["It seems cheerful enough, I suppose."])
    rewards, info = follower.rewards(None, None, [open_ended, open_ended],
                                     ["Great day!", "<think> x </think><answer>Great day!</answer>"],
                                     JudgerConfig(llm="generate", echo_guard=False))
    assert rewards == [0.0, 0.0]  # no format; then a judge reply with no [[d]] = not followed
    assert info["format_pass"] == 0.5


def test_extract_answer_follows_the_seif_regex():
    assert follower.extract_answer("<think>a\nb</think>\n<answer> hi </answer>") == "hi"
    assert follower.extract_answer("  <think></think><answer>x</answer>\n") == "x"
    assert follower.extract_answer("<answer>x</answer>") is None
    assert follower.extract_answer("<think>a</think><answer>x</answer> extra") is None


# --- the echo guard (not SEIF): an answer must answer, not repeat its instruction -----------

GOOD_ANSWER = "the morning is quiet and still by the river"  # no commas, lowercase, has "river"


def follower_reward(answer, judge_says, echo_guard=True, row=None):
    """The Follower's reward and info for one answer; the LLM judge's replies are canned."""
    calls = []
    def judge(model, tokenizer, messages_list, **kwargs):
        calls.append(messages_list)
        return SimpleNamespace(texts=[judge_says] * len(messages_list))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollout, "generate", judge)
        rewards, info = follower.rewards(None, None, [row or instruction_row()],
                                         [f"<think> x </think><answer>{answer}</answer>"],
                                         JudgerConfig(echo_guard=echo_guard))
    return rewards[0], info, calls


@pytest.mark.parametrize("echo", [
    "Include the keyword 'river' in your response.",  # a copied constraint passes the keyword rule
    "include the keyword ‘river’ in your response",  # copied with other case and quotes
    SEED + "\nInclude the keyword 'river' in your response.\nWrite your entire response in lowercase letters.",
])
def test_an_echoed_constraint_earns_nothing(echo):
    unguarded, _, _ = follower_reward(echo.lower(), "Verdict: [[1]]", echo_guard=False)
    assert unguarded > 0  # the hole: rules pay for copying the constraint
    reward, info, _ = follower_reward(echo, "Verdict: [[1]]")  # even if the judge is fooled
    assert reward == 0.0 and info["echo_or_off_topic"] == 1.0


def test_a_real_answer_that_satisfies_the_constraints_keeps_full_credit():
    reward, info, calls = follower_reward(GOOD_ANSWER, "It describes the morning. Verdict: [[1]]")
    assert reward == 1.0 and info["echo_or_off_topic"] == 0.0
    (chats,) = calls  # one LLM verdict: does the answer address the seed?
    assert SEED in chats[0][0]["content"] and GOOD_ANSWER in chats[0][0]["content"]


def test_an_answer_to_another_request_earns_nothing():
    reward, info, _ = follower_reward(GOOD_ANSWER, "It is about something else. Verdict: [[0]]")
    assert reward == 0.0 and info["echo_or_off_topic"] == 1.0
    assert follower_reward(GOOD_ANSWER, "Verdict: [[0]]", echo_guard=False)[0] == 1.0


@pytest.mark.parametrize("non_answer", [
    "the river",  # too short to answer anything, though lowercase, comma-free and has "river"
    "sure: a quiet morning, the keyword river, in lowercase, no commas",  # the request, restated
    "Include the keyword 'river' in your response. ok river",  # an echo plus a scrap
])
def test_a_non_answer_earns_nothing_even_when_the_judge_says_yes(non_answer):
    """The rule half of the guard: it does not depend on the judge model, which on SmolLM2 says
    yes to every "does this answer the request?" question."""
    assert follower_reward(non_answer.lower(), "Verdict: [[1]]", echo_guard=False)[0] > 0
    reward, info, calls = follower_reward(non_answer, "Verdict: [[1]]")
    assert reward == 0.0 and info["echo_or_off_topic"] == 1.0
    assert calls == []  # ruled out before any LLM verdict is asked for


def test_is_non_answer_on_answers_of_every_length():
    instruction = SEED + "\nInclude the keyword 'river' in your response."
    assert follower.is_non_answer("", instruction)
    assert follower.is_non_answer("A quiet river morning.", instruction)  # 4 words
    assert not follower.is_non_answer("Mist rose slowly off the river.", instruction)  # 6 words, 1 known
    assert follower.is_non_answer("Describe a quiet morning, include the keyword river.", instruction)


def test_is_non_answer_reads_words_in_any_script_and_skips_markers():
    instruction = "Compose a poem about rain on a tin roof.\nAdd a postscript starting with P.S."
    assert follower.is_non_answer("p.s. thoughts outside p.s", instruction)  # seen on Qwen, reward 1.0
    assert not follower.is_non_answer("Rain taps the tin roof all night. P.S. Stay dry.", instruction)
    # a right answer to "Respond only in Russian" or in Chinese is an answer
    assert not follower.is_non_answer("Дождь стучит по жестяной крыше всю ночь.", instruction)
    assert not follower.is_non_answer("雨整夜敲打着铁皮屋顶。", instruction)


def test_a_judge_reply_without_a_verdict_does_not_veto_an_answer():
    """Only a clear [[0]] takes an answer's credit away: a weak judge that runs out of tokens
    before its verdict must not zero real answers (it did, on Qwen2.5-Coder-0.5B)."""
    assert follower_reward(GOOD_ANSWER, "The answer talks about the morning and")[0] == 1.0
    assert follower_reward(GOOD_ANSWER, "Verdict: [[0]]")[0] == 0.0


TITLE = "Give your answer a title wrapped in double angular brackets, such as <<poem of joy>>."
PLACEHOLDERS = "Include at least 2 placeholders in square brackets, such as [address]."


@pytest.mark.parametrize("constraint, copied, own", [
    (TITLE, "<<poem of joy>>\nthe morning is quiet and still by the river",
     "<<a still morning>>\nthe morning is quiet and still by the river"),
    (PLACEHOLDERS, "meet me by the river at [[address]] or [[ADDRESS]] when the morning is quiet",
     "meet me by the river at [address] or [place] when the morning is quiet at [time]"),
])
def test_a_constraints_own_example_copied_into_the_answer_does_not_count(constraint, copied, own):
    row = instruction_row([constraint])
    assert row["constraints"][0]["ifeval_id"]  # rule-checked
    assert follower_reward(copied, "Verdict: [[1]]", echo_guard=False, row=row)[0] == 1.0  # the hole
    assert follower_reward(copied, "Verdict: [[1]]", row=row)[0] == 0.0
    assert follower_reward(own, "Verdict: [[1]]", row=row)[0] == 1.0


def test_a_reply_of_placeholders_is_a_non_answer():
    row = instruction_row([PLACEHOLDERS])
    spam = "[customer's name] [date] [customer's name] thanks [address] [phone] [email] [name]"
    assert follower_reward(spam, "Verdict: [[1]]", echo_guard=False, row=row)[0] == 1.0
    reward, info, calls = follower_reward(spam, "Verdict: [[1]]", row=row)
    assert reward == 0.0 and info["echo_or_off_topic"] == 1.0 and calls == []
    assert follower.is_non_answer(spam, row["instruction"])
    assert not follower.is_non_answer("Dear [name], the boats are back and the river is calm.",
                                      row["instruction"])
