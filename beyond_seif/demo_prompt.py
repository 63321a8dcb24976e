"""The CPU demo's prompt and answer reading (beyond_seif.demo_prompt, lenient_instructor,
lenient_follower): what a 135M model needs to take part at all.

Not SEIF. SmolLM2-135M cannot follow SEIF's verifiable-mode Instructor prompt: on 12 seeds x 2
samples at temperature 0.7, 0 of 24 replies parsed, even as a bare JSON object. A short list of
constraints to choose from (SHORT_VERIFIABLE), after two worked requests and replies as earlier
chat turns, gets 14 of 24 through SEIF's strict format gate and JSON check (5 of 24 at
temperature 1.0). Every sentence in the list maps to an IFEval rule (constraint_mapping), and
each is in exactly one worked example; a seed's two examples are drawn from the four, so that a
model that copies an example does not copy the same one for every seed.

SmolLM2 never writes SEIF's <think>/<answer> format as a Follower either, even with <think>
prefilled: `lenient_follower` judges such a reply as a whole (reply_format.helper_answer), and
`lenient_instructor` reads an Instructor reply's first {...} JSON object, format or not.
"""

import json

import reply_format

SHORT_VERIFIABLE = """Here is a request:

{seed}

Make the request harder to follow by adding three rules that a program could check. Choose \
them from this list, or write similar ones:
- Do not use any commas.
- Write the whole reply in lowercase letters.
- Write the whole reply in capital letters.
- Answer in fewer than 40 words.
- Use exactly 3 bullet points.
- Include the word "today".
- End your reply with the exact phrase "Is there anything else?"
- Add a postscript starting with P.S.
- Wrap the whole reply in double quotes.
- Include a title wrapped in double angle brackets, such as <<my title>>.
- Highlight at least 2 parts with markdown, such as *highlighted part*.
- Include at least 2 placeholders in square brackets, such as [name].

Give the three rules as a JSON object with keys "c1" to "c3"."""

WORKED_EXAMPLES = [  # (request, the three constraints of its reply), no two that conflict
    ("Explain how a kite flies.", ["Write the whole reply in lowercase letters.",
                                   "Add a postscript starting with P.S.", "Do not use any commas."]),
    ("Describe a day at a busy airport.", ["Answer in fewer than 40 words.", "Wrap the whole reply in double quotes.",
                                           'Include the word "today".']),
    ("Write a note to a friend who lent you a book.", [
        "Write the whole reply in capital letters.", 'End your reply with the exact phrase "Is there anything else?"',
        "Include at least 2 placeholders in square brackets, such as [name]."]),
    ("Give tips for a long train ride.", [
        "Use exactly 3 bullet points.", "Include a title wrapped in double angle brackets, such as <<my title>>.",
        "Highlight at least 2 parts with markdown, such as *highlighted part*."]),
]


def short_verifiable_messages(seed, rng):
    """The demo's verifiable-mode chat: SEIF's system prompt, two worked examples drawn by `rng`
    as earlier turns, then SHORT_VERIFIABLE for `seed`."""
    examples = []
    for request, constraints in rng.sample(WORKED_EXAMPLES, 2):
        reply = json.dumps({f"c{number}": text for number, text in enumerate(constraints, 1)})
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
