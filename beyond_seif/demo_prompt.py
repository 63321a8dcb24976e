"""The CPU demo's prompt and answer reading (beyond_seif.demo_prompt, lenient_instructor,
lenient_follower, unfinished_unpaid): what a 135M model needs to take part at all.

Not SEIF. SmolLM2-135M cannot follow SEIF's verifiable-mode Instructor prompt: on 12 seeds x 2
samples at temperature 0.7, 0 of 24 replies parsed, even as a bare JSON object. A short list of
constraints to choose from (SHORT_VERIFIABLE), after two worked requests and replies as earlier
chat turns, got 14 of 24 through SEIF's strict format gate and JSON check with its first list of
12 rules (5 of 24 at temperature 1.0). Every sentence in the list maps to an IFEval rule
(constraint_mapping), one from each of 18 rule families. SmolLM2 copies the worked replies' rules, so each worked reply's
three rules are drawn at random from the list for every seed (`worked_rules`): with four fixed
worked replies, 4 rule sets made 36 of a round's 38 instructions, and the Follower trained on
nothing else.

SmolLM2 never writes SEIF's <think>/<answer> format as a Follower either, even with <think>
prefilled: `lenient_follower` judges such a reply as a whole (reply_format.helper_answer), and
`lenient_instructor` reads an Instructor reply's first {...} JSON object, format or not.

Reading a reply as a whole also pays a reply that the token budget cut off, which SEIF's format
gate refuses (it never closes </answer>): `unfinished_unpaid` gives such a reply nothing to judge
(`finished_answers`), however it is read.
"""

import json

import reply_format
from beyond_seif.constraint_mapping import map_constraint
from beyond_seif.filter_checks import contradicts

RULES = [  # every sentence maps to one IFEval rule (constraint_mapping)
    "Do not use any commas.",
    "Write the whole reply in lowercase letters.",
    "Write the whole reply in capital letters.",
    "Answer in fewer than 40 words.",
    "Use fewer than 6 sentences.",
    "Write exactly 3 paragraphs, separated by the markdown divider ***.",
    "Use exactly 3 bullet points.",
    'Include the word "today".',
    'Use the word "new" at least 2 times.',
    'Do not use the words "good" or "nice".',
    'Use the letter "k" at least 3 times.',
    "Use at least 2 words in all capital letters.",
    'End your reply with the exact phrase "Is there anything else?"',
    "Add a postscript starting with P.S.",
    "Wrap the whole reply in double quotes.",
    "Include a title wrapped in double angle brackets, such as <<my title>>.",
    "Highlight at least 2 parts with markdown, such as *highlighted part*.",
    "Include at least 2 placeholders in square brackets, such as [name].",
]


def _conflict(a, b):
    """Whether no reply can meet rules a and b together, as the Filter's cheap checks decide it."""
    rule_a, rule_b = map_constraint(a), map_constraint(b)
    return contradicts(rule_a, rule_b) or contradicts(rule_b, rule_a)


CONFLICTS = [{a, b} for i, a in enumerate(RULES) for b in RULES[i + 1 :] if _conflict(a, b)]

SHORT_VERIFIABLE = """Here is a request:

{seed}

Make the request harder to follow by adding three rules that a program could check. Choose \
them from this list, or write similar ones:
""" + "\n".join(f"- {rule}" for rule in RULES) + """

Give the three rules as a JSON object with keys "c1" to "c3"."""

EXAMPLE_REQUESTS = ["Explain how a kite flies.", "Describe a day at a busy airport.",
                    "Write a note to a friend who lent you a book.", "Give tips for a long train ride."]


def worked_rules(rng):
    """Three rules from RULES, drawn by `rng`, no two of them in CONFLICTS."""
    while True:
        chosen = rng.sample(RULES, 3)
        if not any(pair <= set(chosen) for pair in CONFLICTS):
            return chosen


def short_verifiable_messages(seed, rng):
    """The demo's verifiable-mode chat: SEIF's system prompt, two worked examples drawn by `rng`
    as earlier turns, then SHORT_VERIFIABLE for `seed`. Each worked reply's three rules are
    drawn from the whole list: SmolLM2 copies a worked reply's rules, so fixed examples would
    make every instruction of a round one of a few rule sets."""
    examples = []
    for request in rng.sample(EXAMPLE_REQUESTS, 2):
        reply = json.dumps({f"c{number}": text for number, text in enumerate(worked_rules(rng), 1)})
        examples += [{"role": "user", "content": SHORT_VERIFIABLE.format(seed=request)},
                     {"role": "assistant",
                      "content": f"<think> I pick three rules a program can check. </think><answer>{reply}</answer>"}]
    system, user = reply_format.messages(SHORT_VERIFIABLE.format(seed=seed))
    return [system, *examples, user]


def first_json_object(text):
    """lenient_instructor: the text from the reply's first "{" to its last "}", or None."""
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else None


def follower_answers(texts):
    """lenient_follower: what is judged of each reply, None when there is nothing to judge."""
    return [reply_format.helper_answer(text) or None for text in texts]


def finished_answers(items, answers):
    """unfinished_unpaid: None (nothing to judge, so reward 0) for each reply the rollout cut off
    at its token budget; grpo.train marks those items "finished": False."""
    return [None if item.get("finished") is False else answer for item, answer in zip(items, answers)]
