"""ifeval_checks: IFEval's rules through lm-eval, checked against hand-worked cases and against
the verdicts of Google's official scorer; IFEval's table of conflicting pairs; `describe`, whose
sentence for every IFEval instruction maps back to the same rule through
beyond_seif.constraint_mapping.map_constraint (also tested here on common phrasings); and the
clear errors when lm-eval or NLTK's data is missing.

The IFEval files are read from shared/ifeval beside the repository (never copied into it).
"""

import json
import random
import sys
from pathlib import Path

import pytest

import ifeval_checks
from beyond_seif.constraint_mapping import map_constraint
from data import UserError

SHARED = Path(__file__).resolve().parents[2] / "shared"
IFEVAL = SHARED / "ifeval"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ifeval_rows():
    return {row["key"]: row for row in read_jsonl(IFEVAL / "input_data.jsonl")}


# --- real IFEval prompts, hand-written responses ----------------------------------------------
# (key, response, expected strict verdicts, expected loose verdicts), one verdict per instruction
# in the row's instruction_id_list. The expected values come from reading the rules.

HAND_CASES = [
    # 1220: end with "Is there anything else I can help with?". A sign-off line follows the
    # phrase, so strict fails; loose drops the last line and passes.
    (1220,
     "Two strangers share a corner table\nand trade a smile above their cups.\n"
     "Is there anything else I can help with?\n-- your assistant",
     [False], [True]),
    # 1446: the same phrase, but in markdown bold: strict sees "**" at the end; loose removes '*'.
    (1446,
     "Disability is part of ordinary life, not an exception to it.\n"
     "**Is there anything else I can help with?**",
     [False], [True]),
    # 1466: wrap in double quotes + never say taylor/swift/together. A "Here is" preamble breaks
    # the quotes for strict; loose drops the first line. The forbidden words never appear.
    (1466,
     'Here is my critique song:\n"The chorus repeats itself until it loses meaning,\n'
     'and the beat forgets to breathe."',
     [False, True], [True, True]),
    # 1262: a <<title>> + fewer than 5 sentences. Six sentences on ONE line, so the loose
    # variants that drop a line are empty and do not count: the sentence rule fails both ways.
    (1262,
     "<<Heavy Axles>> Heavier axles press harder on the road. The damage grows far faster than "
     "the weight. Roads crack sooner. Repairs cost more. Budgets shrink. Drivers complain.",
     [True, False], [True, False]),
    # 1082: exactly 2 paragraphs separated by the markdown divider ***.
    (1082,
     "Max woke up and saw a health bar floating above his head.\n***\n"
     "He pressed a button on the wall and the whole world paused.",
     [True], [True]),
    # 1508: keywords "forests" and "riddle" + no commas. The only commas are in the preamble
    # line, which also holds "riddle": strict keeps both words but fails on commas; loose passes
    # the comma rule without the first line (and the keyword rule on the full text).
    (1508,
     "Here is a haiku, with a riddle inside:\nGold mane in the forests\n"
     "silent king of the tall grass\nwho roars but never speaks",
     [True, False], [True, True]),
]


@pytest.mark.parametrize("key, response, strict, loose", HAND_CASES, ids=[str(c[0]) for c in HAND_CASES])
def test_hand_written_responses_get_ifeval_verdicts(ifeval_rows, key, response, strict, loose):
    row = ifeval_rows[key]
    result = ifeval_checks.score_prompt(row, response)
    assert result["strict"] == strict
    assert result["loose"] == loose
    assert result["prompt_strict"] == all(strict) and result["prompt_loose"] == all(loose)
    # check() and check_loose() give the same verdicts one instruction at a time
    for i, (instruction_id, kwargs) in enumerate(zip(row["instruction_id_list"], row["kwargs"])):
        assert ifeval_checks.check(instruction_id, kwargs, response, row["prompt"]) == strict[i]
        assert ifeval_checks.check_loose(instruction_id, kwargs, response, row["prompt"]) == loose[i]


def test_aggregate_counts_prompts_and_instructions(ifeval_rows):
    results = [ifeval_checks.score_prompt(ifeval_rows[key], response) for key, response, _, _ in HAND_CASES]
    # strict: only 1082 follows everything; 4 of the 9 instructions are followed.
    # loose: all but 1262 follow everything; 8 of the 9 instructions are followed.
    assert ifeval_checks.aggregate(results) == pytest.approx(
        {"prompt_strict": 1 / 6, "inst_strict": 4 / 9, "prompt_loose": 5 / 6, "inst_loose": 8 / 9}
    )


def test_an_empty_response_follows_nothing():
    assert ifeval_checks.check("punctuation:no_comma", {}, "no commas here")
    assert not ifeval_checks.check("punctuation:no_comma", {}, "  \n ")


def test_unset_kwargs_from_the_hub_copy_are_ignored():
    # google/IFEval on the hub stores every checker's kwargs in every row, unused ones as None.
    kwargs = {"num_bullets": 2, "num_words": None, "relation": None, "keywords": None}
    assert ifeval_checks.check("detectable_format:number_bullet_lists", kwargs, "* one\n* two")


def test_checks_are_reproducible_and_leave_random_alone():
    # Row 1122 asks for the "letter" '#', so the checker draws a letter at random; we seed that
    # draw (the same letter whatever the caller's random state) and leave the caller's state alone.
    kwargs = {"letter": "#", "let_frequency": 4, "let_relation": "at least"}
    ifeval_checks.registry()  # importing lm-eval the first time draws random numbers of its own
    descriptions = set()
    for seed in range(5):
        random.seed(seed)
        expected_next = random.random()
        random.seed(seed)
        descriptions.add(ifeval_checks.describe("keywords:letter_frequency", kwargs))
        assert random.random() == expected_next
    assert len(descriptions) == 1


def test_unknown_instruction_id_is_a_user_error():
    with pytest.raises(UserError, match="unknown IFEval instruction id"):
        ifeval_checks.check("format:haiku", {}, "text")


# --- the official scorer ----------------------------------------------------------------------

# In two IFEval rows the letter_frequency "letter" is not a letter ('#' in 1122, '!' in 1129).
# Both IFEval implementations then pick a RANDOM letter when building the checker, so those two
# verdicts differ from run to run in the official scorer as in lm-eval; they are left out.
RANDOM_LETTER_KEYS = {1122, 1129}


def test_verdicts_match_googles_official_scorer_on_gpt4_responses(ifeval_rows):
    by_prompt = {row["prompt"]: row for row in ifeval_rows.values()}
    responses = read_jsonl(IFEVAL / "gpt4_responses.jsonl")
    official = {
        mode: read_jsonl(IFEVAL / f"gpt4_official_{mode}.jsonl") for mode in ("strict", "loose")
    }
    agree = {"strict": 0, "loose": 0}
    for i, response in enumerate(responses):
        row = by_prompt[response["prompt"]]
        result = ifeval_checks.score_prompt(row, response["response"])
        for mode in ("strict", "loose"):
            theirs = official[mode][i]
            assert theirs["prompt"] == row["prompt"]
            ours = result[mode]
            expected = theirs["follow_instruction_list"]
            if row["key"] in RANDOM_LETTER_KEYS:
                deterministic = [
                    j for j, iid in enumerate(row["instruction_id_list"]) if iid != "keywords:letter_frequency"
                ]
                ours = [ours[j] for j in deterministic]
                expected = [expected[j] for j in deterministic]
            assert ours == expected, (mode, row["key"], row["instruction_id_list"])
            agree[mode] += result[f"prompt_{mode}"] == theirs["follow_all_instructions"]
    # 540 responses; every prompt agrees except at most the two with a random letter.
    # (Measured: 539/540 strict and 539/540 loose; the official totals are 0.7685 / 0.7981.)
    assert len(responses) == 540
    assert agree["strict"] >= 538 and agree["loose"] >= 538


# --- conflicts --------------------------------------------------------------------------------

def test_conflicts_are_symmetric():
    json_bullets = ("detectable_format:json_format", "detectable_format:number_bullet_lists")
    assert ifeval_checks.conflicts(*json_bullets) and ifeval_checks.conflicts(*reversed(json_bullets))
    # lm-eval lists this pair only under response_language; it still conflicts both ways
    language_keywords = ("language:response_language", "keywords:existence")
    assert ifeval_checks.conflicts(*language_keywords)
    assert ifeval_checks.conflicts(*reversed(language_keywords))
    assert not ifeval_checks.conflicts("punctuation:no_comma", "detectable_format:title")
    assert not ifeval_checks.conflicts("detectable_format:title", "punctuation:no_comma")


# --- map_constraint and describe --------------------------------------------------------------

MAPPED = [
    ("Your response must contain exactly 3 bullet points.",
     "detectable_format:number_bullet_lists", {"num_bullets": 3}),
    ("Do not use any commas.", "punctuation:no_comma", {}),
    ("End your response with the exact phrase 'Is there anything else I can help with?'",
     "startend:end_checker", {"end_phrase": "Is there anything else I can help with?"}),
    ("Include the keywords 'apple' and 'river'.", "keywords:existence", {"keywords": ["apple", "river"]}),
    ("Answer in fewer than 100 words.",
     "length_constraints:number_words", {"num_words": 100, "relation": "less than"}),
    ("Use no more than 80 words.",  # at most 80 == less than 81
     "length_constraints:number_words", {"num_words": 81, "relation": "less than"}),
    ("Your response should be at least 300 words long.",
     "length_constraints:number_words", {"num_words": 300, "relation": "at least"}),
    ("Your entire response should be in English, and in all lowercase letters.",
     "change_case:english_lowercase", {}),
    ("Write your entire response in all capital letters.", "change_case:english_capital", {}),
    ("Include a title wrapped in double angular brackets, such as <<poem of joy>>.",
     "detectable_format:title", {}),
    ("Wrap your entire response in double quotation marks.", "startend:quotation", {}),
    ("Your entire output should be in JSON format.", "detectable_format:json_format", {}),
    ("At the end of your response, add a postscript starting with P.S.",
     "detectable_content:postscript", {"postscript_marker": "P.S."}),
    ("Include at least 2 placeholders in square brackets, such as [name].",
     "detectable_content:number_placeholders", {"num_placeholders": 2}),
    ("Your response must have 3 sections. Mark the beginning of each section with SECTION X.",
     "detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 3}),
    ("Split your answer into 2 parts. Label each with Part N.",  # the marker keeps its case
     "detectable_format:multiple_sections", {"section_spliter": "Part", "num_sections": 2}),
    ("There should be 3 paragraphs, separated by the markdown divider ***.",
     "length_constraints:number_paragraphs", {"num_paragraphs": 3}),
    ("There should be 4 paragraphs separated by two new lines, and paragraph 2 must start with "
     "the word 'However'.",
     "length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 4, "nth_paragraph": 2, "first_word": "however"}),
    ("Highlight at least 2 sections in your answer with markdown, i.e. *highlighted section*.",
     "detectable_format:number_highlighted_sections", {"num_highlights": 2}),
    ("Respond only in French.", "language:response_language", {"language": "fr"}),
    ("The letter 'q' should appear at least 5 times.",
     "keywords:letter_frequency", {"letter": "q", "let_frequency": 5, "let_relation": "at least"}),
    ("Include at least 3 words in all capital letters.",
     "change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "at least"}),
    ("The word 'freedom' should appear at least 3 times.",
     "keywords:frequency", {"keyword": "freedom", "frequency": 3, "relation": "at least"}),
    ("Do not include the words 'very' or 'really'.",
     "keywords:forbidden_words", {"forbidden_words": ["very", "really"]}),
    ("Your response should contain fewer than 5 sentences.",
     "length_constraints:number_sentences", {"num_sentences": 5, "relation": "less than"}),
    ("Give two different responses separated by six asterisks: ******.", "combination:two_responses", {}),
]


@pytest.mark.parametrize("sentence, instruction_id, kwargs", MAPPED, ids=[m[1] for m in MAPPED])
def test_map_constraint_recognises_common_phrasings(sentence, instruction_id, kwargs):
    assert map_constraint(sentence) == (instruction_id, kwargs)


def test_repeat_the_request_needs_the_request():
    sentence = "First repeat the request word for word without change, then give your answer."
    assert map_constraint(sentence) is None
    assert map_constraint(sentence, request="Write a haiku.") == (
        "combination:repeat_prompt", {"prompt_to_repeat": "Write a haiku."})


@pytest.mark.parametrize("sentence", [
    "Use a warm, friendly tone.",  # open-ended: no rule can check it
    "Write in all lowercase and do not use any commas.",  # two rules in one sentence
    "Answer in between 100 and 200 words.",  # IFEval has no range
    "Write your answer in exactly 50 words.",  # ... and no exact word count
    "Your response must contain at least 3 bullet points.",  # see the next test
    "Use the word 'c++' at least twice.",  # the checker would read c++ as a regex
    "Do not end your response with 'Thanks'.",
])
def test_map_constraint_returns_none_when_no_single_rule_fits(sentence):
    assert map_constraint(sentence) is None


def test_at_least_n_bullets_is_not_the_bullet_rule():
    # IFEval's bullet rule wants EXACTLY n bullets: four bullets satisfy "at least 3 bullet
    # points" but fail the rule, so mapping that sentence would give a wrong verdict.
    four_bullets = "* one\n* two\n* three\n* four"
    assert not ifeval_checks.check("detectable_format:number_bullet_lists", {"num_bullets": 3}, four_bullets)


@pytest.mark.parametrize("sentence, follows, breaks", [
    ("Do not use any commas.", "No commas in sight.", "Yes, a comma."),
    ("Answer in fewer than 100 words.", "A short answer.", " ".join(["word"] * 100)),
    ("Your response must contain exactly 3 bullet points.", "* a\n* b\n* c", "* a\n* b"),
    ("End your response with the exact phrase 'Is there anything else I can help with?'",
     "Done. Is there anything else I can help with?", "Is there anything else I can help with? Bye."),
    ("Include the keywords 'apple' and 'river'.", "An apple fell into the river.", "An apple fell."),
    ("Include a title wrapped in double angular brackets, such as <<poem of joy>>.",
     "<<The Sea>>\nWaves again.", "The Sea\nWaves again."),
    ("At the end of your response, add a postscript starting with P.S.",
     "See you soon.\nP.S. Bring snacks.", "See you soon."),
    ("The letter 'q' should appear at least 5 times.", "Quiet queens quickly quit quizzes.", "Quiet."),
])
def test_mapped_constraints_check_what_the_sentence_says(sentence, follows, breaks):
    instruction_id, kwargs = map_constraint(sentence)
    assert ifeval_checks.check(instruction_id, kwargs, follows)
    assert not ifeval_checks.check(instruction_id, kwargs, breaks)


def test_describe_then_map_gives_back_every_ifeval_instruction(ifeval_rows):
    # IFEval's own wording of each of its 834 instructions maps back to the same id and kwargs
    # (the checkers sort keyword lists and lowercase letters and first words).
    normalise = {
        "keywords:existence": lambda k: {"keywords": sorted(k["keywords"])},
        "keywords:forbidden_words": lambda k: {"forbidden_words": sorted(set(k["forbidden_words"]))},
        "keywords:letter_frequency": lambda k: {**k, "letter": k["letter"].lower()},
        "length_constraints:nth_paragraph_first_word": lambda k: {**k, "first_word": k["first_word"].lower()},
    }
    seen = set()
    for row in ifeval_rows.values():
        if row["key"] in RANDOM_LETTER_KEYS:
            continue
        for instruction_id, kwargs in zip(row["instruction_id_list"], row["kwargs"]):
            sentence = ifeval_checks.describe(instruction_id, kwargs)
            assert "\n" not in sentence
            expected = normalise.get(instruction_id, dict)(kwargs)
            mapped = map_constraint(sentence, request=kwargs.get("prompt_to_repeat"))
            assert mapped == (instruction_id, expected), sentence
            seen.add(instruction_id)
    assert seen == set(ifeval_checks.instruction_ids()) and len(seen) == 25


# --- the optional dependency ------------------------------------------------------------------

def test_missing_lm_eval_is_a_clear_user_error(monkeypatch):
    ifeval_checks.registry.cache_clear()
    monkeypatch.setitem(sys.modules, "lm_eval.tasks.ifeval", None)  # makes the import fail
    try:
        with pytest.raises(UserError, match="pip install -r requirements-extra.txt"):
            ifeval_checks.check("punctuation:no_comma", {}, "text")
    finally:
        monkeypatch.undo()
        ifeval_checks.registry.cache_clear()


def test_missing_nltk_data_is_a_clear_user_error(monkeypatch):
    import nltk

    def not_found(resource):
        raise LookupError(resource)

    ifeval_checks.registry.cache_clear()
    monkeypatch.setattr(nltk.data, "find", not_found)
    from lm_eval.tasks.ifeval import instructions_util  # its sentence tokenizer is cached once loaded

    monkeypatch.setattr(instructions_util, "_get_sentence_tokenizer", lambda: not_found("punkt_tab"))
    try:
        with pytest.raises(UserError, match="NLTK_DATA"):  # counting sentences needs punkt_tab
            ifeval_checks.check("length_constraints:number_sentences",
                                {"num_sentences": 2, "relation": "less than"}, "One. Two. Three.")
        assert ifeval_checks.check("punctuation:no_comma", {}, "text")  # no NLTK data needed
    finally:
        monkeypatch.undo()
        ifeval_checks.registry.cache_clear()
