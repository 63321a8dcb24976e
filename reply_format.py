"""The reply formats SEIF's roles share: the trained roles' format gate, the frozen ones' verdict.

SEIF asks the Instructor and the Follower for `<think> reasoning </think><answer> reply </answer>`
and pays 0 for a reply that does not match

    ^<think>.*?</think>\\s*<answer>(.*?)</answer>$      (dot matches newlines)

The frozen helper never gets this system prompt (it answers as a plain user turn), so its answer
is read by `helper_answer`. As the Filter and the Judger, the helper ends its reply with `[[1]]`
or `[[0]]` (`parse_verdict`). Every role imports this module; it imports nothing of theirs.
"""

import re

SYSTEM_PROMPT = (
    "You are a helpful assistant. First think about the request step by step inside "
    "<think> </think> tags, then give your final reply inside <answer> </answer> tags, "
    "like this: <think> reasoning </think><answer> final reply </answer>"
)
FORMAT = re.compile(r"^<think>.*?</think>\s*<answer>(.*?)</answer>$", re.DOTALL)


def messages(prompt):
    """The chat a trained role answers: SEIF's system prompt, then `prompt` as the user turn."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


def extract_answer(text):
    """The text inside <answer>, or None when the reply fails the format gate."""
    match = FORMAT.match(text.strip())
    return match.group(1).strip() if match else None


def strip_think(text):
    """Drop everything up to and including the last `</think>` (the model's private reasoning)."""
    return text.rsplit("</think>", 1)[-1]


def helper_answer(text):
    """What is judged of a reply that was not asked for the format (the helper's answer inside
    the Instructor's reward): the text inside <answer> if it passes the gate, otherwise the text
    after its reasoning. "" when there is nothing to judge: an empty reply, an empty
    <answer></answer>, or a reply cut off inside an unclosed <think>."""
    extracted = extract_answer(text)
    if extracted is not None:
        return extracted
    if "<think>" in text and "</think>" not in text:
        return ""
    # the answer tags of a reply that failed the gate (an <answer> cut off by the token budget,
    # or text after </answer>) are not part of what it says
    return re.sub(r"</?answer>", "", strip_think(text)).strip()


def parse_verdict(text, missing=0):
    """The last `[[d]]` in `text` after its reasoning: 1 only for a clear `[[1]]`, 0 for any other
    digit, and `missing` when there is no verdict at all (SEIF: unclear is not satisfied)."""
    verdicts = re.findall(r"\[\[\s*(\d+)\s*\]\]", strip_think(text))
    if not verdicts:
        return missing
    return 1 if verdicts[-1] == "1" else 0
