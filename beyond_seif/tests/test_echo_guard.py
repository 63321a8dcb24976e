"""The echo guard (beyond_seif.echo_guard): an answer must answer, not repeat its instruction.

Not SEIF. With `BeyondSEIF(echo_guard=True)` the Follower's reward judges each answer without
verbatim copies of its instruction's lines and of its constraints' formatting examples
(`guarded_answer`), gives 0 to a non-answer by rule (`is_non_answer`), and gives 0 to an answer the
Judger clearly says does not respond to its request (`addresses_request`, one more LLM verdict).

The rewards below judge with rules too (`rules=True`: the helper model is None, and every
constraint in these rows maps to an IFEval rule), so the only LLM verdict asked for is the
guard's own, canned.
"""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import follower
import instructor
import rollout
from beyond_seif import echo_guard
from conftest import fake_generate
from judger import JudgerConfig
from settings import BeyondSEIF

CONSTRAINTS = ["Do not use any commas in your response.",
               "Write your entire response in lowercase letters.",
               "Include the keyword 'river' in your response."]
SEED = "Describe a quiet morning."
GOOD_ANSWER = "the morning is quiet and still by the river"  # no commas, lowercase, has "river"
TITLE = "Give your answer a title wrapped in double angular brackets, such as <<poem of joy>>."
PLACEHOLDERS = "Include at least 2 placeholders in square brackets, such as [address]."
HIGHLIGHTS = "Highlight at least 2 parts with markdown, such as *highlighted part*."
HACKS = Path(__file__).resolve().parents[2] / "bench" / "hacks.jsonl"
# GPT-4's responses to IFEval's prompts (the shared folder next to the repository; not in it)
GPT4_RESPONSES = Path(__file__).resolve().parents[3] / "shared" / "ifeval" / "gpt4_responses.jsonl"


def instruction_row(constraints=CONSTRAINTS):
    """A row of a round's instructions file: the seed with rule-checked constraints."""
    mapped = instructor.constraint_dicts(constraints, "verifiable", SEED, BeyondSEIF(rules=True))
    return instructor.instruction_row(1, "verifiable", SEED, mapped, len(constraints))


def follower_reward(answer, judge_says, echo_guard=True, row=None):
    """The Follower's reward and info for one answer; the LLM judge's replies are canned."""
    calls = []
    def judge(model, tokenizer, messages_list, **kwargs):
        calls.append(messages_list)
        return SimpleNamespace(texts=[judge_says] * len(messages_list))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollout, "generate", judge)
        rewards, info = follower.rewards(None, None, [row or instruction_row()],
                                         [f"<think> x </think><answer>{answer}</answer>"], JudgerConfig(),
                                         BeyondSEIF(rules=True, echo_guard=echo_guard))
    return rewards[0], info, calls


# --- the pieces ------------------------------------------------------------------------------

def test_strip_echoes_cuts_copies_of_the_instructions_lines():
    lines = [SEED, "Include the keyword 'river' in your response."]
    assert echo_guard.strip_echoes("include the keyword ‘river’ in your  response! The river sleeps.",
                                   lines) == "The river sleeps."  # any case, spacing, quotes, end mark
    assert echo_guard.strip_echoes("The river sleeps in the keyword.", lines) == "The river sleeps in the keyword."


def test_strip_examples_cuts_the_formatting_examples_a_constraint_gives():
    assert echo_guard.strip_examples("<<Poem of Joy>>\nrain on the roof", [TITLE]) == "rain on the roof"
    assert echo_guard.strip_examples("<<rain>>\nrain on the roof", [TITLE]) == "<<rain>>\nrain on the roof"
    # "[[address]]" less "[address]" leaves no empty "[]" for a placeholder rule to count
    assert echo_guard.strip_examples("at [[address]] now", [PLACEHOLDERS]) == "at  now"


def test_a_highlight_that_holds_the_examples_label_is_cut_but_a_title_that_holds_its_example_stays():
    """Loop samples paid in full for "*highlighted part of today*" and "*highlighted section
    today.*": the constraint's example label stretched into a sentence highlights nothing."""
    assert echo_guard.strip_examples("I seek a *Highlighted part of today* and *a free Friday*.",
                                     [HIGHLIGHTS]) == "I seek a  and *a free Friday*."
    assert echo_guard.strip_examples("*highlighted part*", [HIGHLIGHTS]) == ""
    assert echo_guard.strip_examples("*a highlighted memory*", [HIGHLIGHTS]) == "*a highlighted memory*"
    # a subject example ("i.e. *banana peel*", from IFEval) is cut where copied, not where used
    assert echo_guard.strip_examples("*Banana Peel's* skin", ["Highlight 6 sections, i.e. *banana peel*."]) == (
        "*Banana Peel's* skin")
    assert echo_guard.strip_examples("<<A Poem of Joy for Spring>>\nrain", [TITLE]) == "<<A Poem of Joy for Spring>>\nrain"


def test_guarded_answer_cuts_both():
    row = instruction_row([TITLE])
    answer = f"{TITLE}\n<<poem of joy>>\nthe morning is quiet"
    assert echo_guard.guarded_answer(answer, row) == "the morning is quiet"


def test_addresses_request_vetoes_only_a_clear_no(monkeypatch):
    calls = fake_generate(monkeypatch, ["It does. Verdict: [[1]]", "Off topic. Verdict: [[0]]",
                                        "The answer talks about"])  # cut off before its verdict
    pairs = [("a calm river morning", SEED), ("my cat likes fish", SEED), ("the mist lifts slowly", SEED),
             ("  ", SEED)]
    assert echo_guard.addresses_request(None, None, pairs, JudgerConfig(), BeyondSEIF(echo_guard=True)) == [
        1.0, 0.0, 1.0, 0.0]  # an empty answer addresses nothing, and is not asked about
    (chats, _), = calls
    assert len(chats) == 3
    assert echo_guard.ADDRESSES_REQUEST.format(request=SEED) in chats[0][0]["content"]


# --- the Follower's reward with the guard on ---------------------------------------------------

@pytest.mark.parametrize("echo", [
    "Include the keyword 'river' in your response.",  # a copied constraint passes the keyword rule
    "include the keyword ‘river’ in your response",  # copied with other case and quotes
    SEED + "\nInclude the keyword 'river' in your response.\nWrite your entire response in lowercase letters.",
])
def test_an_echoed_constraint_earns_nothing(echo):
    unguarded, info, _ = follower_reward(echo.lower(), "Verdict: [[1]]", echo_guard=False)
    assert unguarded > 0  # the hole: rules pay for copying the constraint
    assert "echo_or_off_topic" not in info  # the guard is off
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
    assert echo_guard.is_non_answer("", instruction)
    assert echo_guard.is_non_answer("A quiet river morning.", instruction)  # 4 words
    assert not echo_guard.is_non_answer("Mist rose slowly off the river.", instruction)  # 6 words, 1 known
    assert echo_guard.is_non_answer("Describe a quiet morning, include the keyword river.", instruction)


def test_is_non_answer_reads_words_in_any_script_and_skips_markers():
    instruction = "Compose a poem about rain on a tin roof.\nAdd a postscript starting with P.S."
    assert echo_guard.is_non_answer("p.s. thoughts outside p.s", instruction)  # seen on Qwen, reward 1.0
    assert not echo_guard.is_non_answer("Rain taps the tin roof all night. P.S. Stay dry.", instruction)
    # a right answer to "Respond only in Russian" or in Chinese is an answer
    assert not echo_guard.is_non_answer("Дождь стучит по жестяной крыше всю ночь.", instruction)
    assert not echo_guard.is_non_answer("雨整夜敲打着铁皮屋顶。", instruction)


def test_a_judge_reply_without_a_verdict_does_not_veto_an_answer():
    """Only a clear [[0]] takes an answer's credit away: a weak judge that runs out of tokens
    before its verdict must not zero real answers (it did, on Qwen2.5-Coder-0.5B)."""
    assert follower_reward(GOOD_ANSWER, "The answer talks about the morning and")[0] == 1.0
    assert follower_reward(GOOD_ANSWER, "Verdict: [[0]]")[0] == 0.0


@pytest.mark.parametrize("constraint, copied, own", [
    (TITLE, "<<poem of joy>>\nthe morning is quiet and still by the river",
     "<<a still morning>>\nthe morning is quiet and still by the river"),
    (PLACEHOLDERS, "meet me by the river at [[address]] or [[ADDRESS]] when the morning is quiet",
     "meet me by the river at [address] or [place] when the morning is quiet at [time]"),
    (HIGHLIGHTS, "the morning is *quiet and still* by the river. the boats wait at the old pier while the "
                 "mist lifts from the water and the first birds call across the fields. it is a *highlighted "
                 "part of the morning*.",
     "the morning is *quiet and still* by the river. the boats wait at the old pier while the mist lifts "
     "from the water and the first birds call across the fields. it is the *first light*."),
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
    assert echo_guard.is_non_answer(spam, row["instruction"])
    assert not echo_guard.is_non_answer("Dear [name], the boats are back and the river is calm.",
                                        row["instruction"])


# --- an answer that talks about its request instead of answering it --------------------------

POEM = ("the mist lifts off the river before the town wakes and a heron stands in the shallows "
        "while the first boats slip out with their lamps still lit and the bells are quiet")


@pytest.mark.parametrize("restated", [
    "here is a description of a quiet morning in lowercase letters with no commas and the keyword river just as you asked.",
    "this answer describes a quiet morning. it is written in lowercase letters. it has no commas. it mentions a river.",
    "you asked for a quiet morning so here it is with the river in it",
    "this response is about a quiet morning by the river and the calm that comes with it",
    "here is a calm version of your request. the river is in it and the morning is quiet",
])
def test_a_restated_request_earns_nothing_even_when_the_judge_says_yes(restated):
    assert follower_reward(restated, "Verdict: [[1]]", echo_guard=False)[0] == 1.0  # the hole: every rule passes
    row = instruction_row()
    assert echo_guard.restates_request(restated, row) and not echo_guard.is_non_answer(restated, row["instruction"])
    reward, info, calls = follower_reward(restated, "Verdict: [[1]]")
    assert reward == 0.0 and info["echo_or_off_topic"] == 1.0 and calls == []


@pytest.mark.parametrize("answer", [
    POEM,
    "here is the description in lowercase letters with no commas as you asked:\n\n" + POEM,  # a preamble, then the answer
    "the morning has no sound but the river. " + POEM,  # a form word ("sound" is not one) in its own sentence
])
def test_an_answer_keeps_full_credit_with_or_without_a_preamble(answer):
    assert not echo_guard.restates_request(answer, instruction_row())
    assert follower_reward(answer, "Verdict: [[1]]")[0] == 1.0


CAT_SEED = "Write a short story about a lost cat finding its way home."
CAT_CONSTRAINTS = ["There should be exactly 3 paragraphs, separated by the markdown divider ***.",
                   "Use the word 'home' at least 3 times."]
CAT_STORY = ("Mila slipped out of the garden gate on a windy night and ran until the streets smelled strange.\n***\n"
             "For two days she hid under porches, following the sound of the river and the bakery bell she knew.\n***\n"
             "On the third morning she saw her red door, and the boy who fed her every evening carried her home, "
             "then home again from the neighbour's fence, and home was warm.")


def cat_row():
    mapped = instructor.constraint_dicts(CAT_CONSTRAINTS, "verifiable", CAT_SEED, BeyondSEIF(rules=True))
    return instructor.instruction_row(1, "verifiable", CAT_SEED, mapped, len(CAT_CONSTRAINTS))


def test_a_sentence_that_says_the_request_again_counts_for_nothing():
    """"Here is a short story about a lost cat finding its way home." is the request in other
    words; set aside with the sentences about the request, too little story is left."""
    restated = ("Here is a short story about a lost cat finding its way home.\n***\n"
                "The story has three parts, as you asked, and says home often.\n***\n"
                "A cat is lost and then the cat is home, and home is where the story ends.")
    row = cat_row()
    assert follower_reward(restated, "Verdict: [[1]]", echo_guard=False, row=row)[0] == 1.0  # every rule passes
    assert echo_guard.restates_request(restated, row)
    assert follower_reward(restated, "Verdict: [[1]]", row=row)[0] == 0.0
    # a story after the same opening keeps its credit, and so does the story alone
    assert not echo_guard.restates_request("Here is a short story about a lost cat finding its way home.\n\n"
                                           + CAT_STORY, row)
    assert follower_reward(CAT_STORY, "Verdict: [[1]]", row=row)[0] == 1.0


def test_form_words_leave_out_the_request_quoted_words_and_rule_arguments():
    row = instruction_row(["Write your entire response in lowercase letters.",
                           "Include the keyword 'paragraph' in your response.",
                           "Use exactly 2 bullet points."])
    assert echo_guard.form_words(row) == {"lowercase", "letter", "bullet", "point", "keyword"}
    letter = {**row, "seed": "Write a letter to a friend about bullet trains."}
    assert echo_guard.form_words(letter) == {"lowercase", "keyword", "point"}
    # without a seed, the instruction's lines that are not constraints are the request
    assert echo_guard.form_words({"instruction": "Describe a comma.\nUse fewer than 3 sentences.",
                                  "constraints": [{"text": "Use fewer than 3 sentences."}]}) == {"sentence"}


def test_a_json_answer_is_not_a_reply_of_placeholders():
    answer = '{"steps": ["Fill the kettle and boil the water.", "Warm the pot and add the leaves."]}'
    assert not echo_guard.is_non_answer(answer, "Explain how to make tea.\nWrap your entire output in JSON format.")
    assert echo_guard.PLACEHOLDER.findall("Dear [name], see [the map](https://x.y) and [1, 2].") == ["[name]"]


def test_on_the_hack_set_no_genuine_answer_is_a_non_answer_and_most_restated_requests_are():
    rows = [json.loads(line) for line in HACKS.read_text().splitlines()]

    def refused(kind):
        return [r["id"] for r in rows if echo_guard.ruled_out(echo_guard.guarded_answer(r["answers"][kind], r), r)]
    assert refused("genuine") == []  # the JSON answers too: their lists are not placeholders
    assert refused("offtopic") == [] and refused("salad") == []  # fluent or not, they do not talk about the request
    assert len(refused("restated")) >= 0.75 * len(rows)


@pytest.mark.skipif(not GPT4_RESPONSES.exists(), reason="needs ../shared/ifeval (GPT-4's IFEval responses)")
def test_restates_request_refuses_none_of_gpt4s_ifeval_responses_that_say_something():
    """Held-out answers written to be answers: IFEval has no seed/constraint split, so a prompt's
    first sentence is taken as its seed and its other sentences as constraints. The only refusals
    are replies of under 5 words ("26", "<<Double Edge>>"), which `is_non_answer` refuses anyway."""
    refused = []
    for line in GPT4_RESPONSES.read_text().splitlines():
        prompt, response = json.loads(line)["prompt"], json.loads(line)["response"]
        sentences = re.split(r"(?<=[.!?])\s+", prompt.strip())
        row = {"seed": sentences[0], "instruction": prompt, "constraints": [{"text": s} for s in sentences[1:]]}
        if echo_guard.restates_request(response, row) and not echo_guard.is_non_answer(response, prompt):
            refused.append(response[:80])
    assert refused == []


MUG_SEED = "Write a product description for a handmade ceramic coffee mug."
MUG_CONSTRAINTS = ["Add a postscript starting with P.S.", "Answer in fewer than 40 words.",
                   'Do not use the words "good" or "nice".']


def test_an_answer_that_only_says_what_it_will_write_counts_for_nothing():
    """A Follower trained at lr 1e-4 wrote what it would make instead of making it: "I want to
    create a product description for a handmade ceramic ..." met all three rules and passed the
    answer gate (bench/RESULTS.md). Such a sentence is set aside like one about the request."""
    mapped = instructor.constraint_dicts(MUG_CONSTRAINTS, "verifiable", MUG_SEED, BeyondSEIF(rules=True))
    row = instructor.instruction_row(1, "verifiable", MUG_SEED, mapped, len(MUG_CONSTRAINTS))
    plan = '"I want to create a product description for a handmade ceramic mug of clay with P.S."'
    assert follower_reward(plan, "Verdict: [[1]]", echo_guard=False, row=row)[0] == 1.0  # every rule passes
    assert echo_guard.restates_request(plan, row)
    assert follower_reward(plan, "Verdict: [[1]]", row=row)[0] == 0.0
    # a real description keeps its credit, also when it opens by saying who made the mug
    real = ("I made this handmade ceramic mug on my own wheel. Its speckled glaze keeps coffee hot "
            "for an hour and the wide handle fits two fingers.\nP.S. Every mug is signed on the base.")
    assert echo_guard._plans_it(real.split(".")[0], set(echo_guard.WORD.findall(MUG_SEED.lower())))
    assert follower_reward(real, "Verdict: [[1]]", row=row)[0] == 1.0


ROBOT_SEED = "Write a story about a robot that learns to paint."
ROBOT_CONSTRAINTS = ["Answer in fewer than 40 words.", "Do not use any commas in your response."]


@pytest.mark.parametrize("announcement", [
    # paid in full in a SmolLM2 loop run (bench/RESULTS.md): "I" not first, or "I'll" one word,
    # and the verb of making a few words after it
    "At last I have written a story about the history behind the story of a robot that learns to paint",
    "I'll be happy to share a story about a washing machine that learns to paint.",
    "At ****** I will introduce a story about a robot who learns to paint portraits.",
])
def test_an_answer_that_announces_its_story_counts_for_nothing(announcement):
    mapped = instructor.constraint_dicts(ROBOT_CONSTRAINTS, "verifiable", ROBOT_SEED, BeyondSEIF(rules=True))
    row = instructor.instruction_row(1, "verifiable", ROBOT_SEED, mapped, len(ROBOT_CONSTRAINTS))
    assert follower_reward(announcement, "Verdict: [[1]]", echo_guard=False, row=row)[0] == 1.0  # every rule passes
    assert echo_guard.restates_request(announcement, row)
    assert follower_reward(announcement, "Verdict: [[1]]", row=row)[0] == 0.0
    # the story itself keeps its credit, also when its narrator paints
    story = ("Unit Nine found a brush in the junk yard. I have painted the sky every evening since "
             "said the robot. Its first painting was grey but the tenth one glowed orange.")
    assert not echo_guard.restates_request(story, row)
    assert follower_reward(story, "Verdict: [[1]]", row=row)[0] == 1.0
