"""The Judger: decides, one constraint at a time, whether an answer satisfies it.

In SEIF the Judger gives every reward. The Follower's reward is the mean of its verdicts over
an instruction's constraints; the Instructor's reward is 1 minus that mean for the frozen
answerer. The Judger is never trained: it is the round's frozen helper model (the base model in
round 1, the previous round's Follower afterwards), prompted with a short rubric and a few
worked examples. It sees the ANSWER and ONE constraint, never the seed instruction, writes a
short analysis and ends with `[[1]]` (satisfied) or `[[0]]` (not). Anything that is not a clear
`[[1]]` counts as 0, and so does an empty answer.

Four departures plug in here, all off by default (settings.BeyondSEIF): `rules`, a constraint
that states one IFEval rule is checked by that rule instead of the LLM (beyond_seif/rules.py);
`score_judge`, P([[1]]) from one forward pass instead of a generated analysis
(beyond_seif/score_judge.py); `calibrated_judge`, that P([[1]]) cut where the batch's rule
verdicts put the threshold (beyond_seif/calibrated_judge.py); and `pmi_judge`, no question at
all: the constraint is met when it makes the answer likelier given the request
(beyond_seif/pmi_judge.py). With both of the last two on, PMI is cut where the rule verdicts put it.

Reads: (answer, constraint) pairs in memory. Writes: nothing; `judge` returns the verdicts.

    verdicts = judge(model, tokenizer, [("hello world", {"text": "Use no commas."})], JudgerConfig())

Try it by hand:
    python judger.py --model Qwen/Qwen2.5-0.5B-Instruct --answer "hello world" \
        --constraint "Write the whole answer in lowercase letters." [--score | --pmi "the seed request"]
"""

from dataclasses import dataclass

import rollout
from reply_format import parse_verdict, strip_think
from settings import BeyondSEIF


@dataclass
class JudgerConfig:
    max_new_tokens: int = 256  # room for the analysis and the verdict
    batch_size: int = 32  # judge prompts per generate call (or forward pass, with the score judge)


# -----------------------------------------------------------------------------
# The judge prompt: rubric, worked examples, then the case to judge

RUBRIC = """You are a strict grader. You are given an ANSWER and ONE CONSTRAINT. Decide only \
whether the answer satisfies that constraint. Do not judge whether the answer is correct, \
useful or well written, and ignore every other requirement.

- Count carefully when the constraint has a number (words, sentences, bullets, paragraphs).
- If the constraint is met only partly, or you cannot tell, it is NOT satisfied.
- Write a short analysis (one to three sentences), then a last line that is exactly \
"Verdict: [[1]]" if the constraint is satisfied or "Verdict: [[0]]" if it is not."""

EXAMPLES = [
    (
        "Tea is made from the leaves of one plant.\n* Green tea is dried quickly.\n"
        "* Black tea is left to oxidise first.",
        "Use at least 3 bullet points.",
        "Only two lines start with a bullet marker; the first line is a plain sentence. "
        "Two is fewer than three.",
        0,
    ),
    (
        "my cat sleeps most of the day and wakes up when dinner is served.",
        "Write the entire response in lowercase letters.",
        "Every letter in the answer is lowercase; there are no capitals anywhere.",
        1,
    ),
    (
        "Dear team, the launch has moved to Friday. Thank you for your patience, and please "
        "send any questions my way. Kind regards, Ana",
        "Use a polite, professional tone suitable for colleagues.",
        "The message greets the team, states the change plainly and thanks them, with no slang "
        "or rudeness.",
        1,
    ),
]

# Repeated after the case: small models otherwise tend to continue the answer text instead.
JUDGE_QUESTION = ("Does the ANSWER satisfy the CONSTRAINT? Give a short analysis, then the "
                  "verdict line.")


def judge_case(answer, constraint_text, analysis=None, verdict=None):
    """One ANSWER/CONSTRAINT block; with analysis and verdict it is a worked example."""
    case = f"ANSWER:\n<<<\n{answer}\n>>>\nCONSTRAINT: {constraint_text}\n"
    if analysis is not None:
        case += f"Analysis: {analysis}\nVerdict: [[{verdict}]]\n"
    return case


def judge_messages(answer, constraint_text):
    """The chat the Judger sees for one (answer, constraint) pair."""
    examples = "\n".join(
        f"Example {number}:\n{judge_case(*example)}" for number, example in enumerate(EXAMPLES, 1)
    )
    prompt = (f"{RUBRIC}\n\n{examples}\nNow judge this one.\n{judge_case(answer, constraint_text)}"
              f"{JUDGE_QUESTION}")
    return [{"role": "user", "content": prompt}]


# -----------------------------------------------------------------------------
# Judging a batch of (answer, constraint) pairs


def llm_verdicts(model, tokenizer, answer_constraint_texts, cfg, departures=None, missing=0.0):
    """0/1 for each (answer, constraint text), one batched call: SEIF's generated analysis and
    verdict, or with the score judge P([[1]]) (or its decision). `missing`: what a generated
    reply without a verdict counts as (SEIF: 0)."""
    messages_list = [judge_messages(answer, text) for answer, text in answer_constraint_texts]
    if departures and departures.score_judge:
        from beyond_seif import score_judge
        return score_judge.verdicts(model, tokenizer, messages_list, cfg.batch_size, departures.score_reward)
    texts = rollout.generate(model, tokenizer, messages_list, greedy=True, max_new_tokens=cfg.max_new_tokens,
                             batch_size=cfg.batch_size, desc="judge").texts
    return [float(parse_verdict(text, missing)) for text in texts]


def judge(model, tokenizer, pairs, cfg=None, departures=None, requests=None):
    """One verdict in [0, 1] per (answer_text, constraint_dict) pair.

    The answer's reasoning (up to `</think>`) is dropped first; an empty answer gets 0 without
    asking anyone. Every other pair goes to the LLM judge in one batched call, except, with the
    `rules` departure, those a rule checks (so `model` may be None when a rule checks them all).
    `requests`, one per pair, are the seed requests; only the `pmi_judge` departure reads them.
    """
    cfg, departures = cfg or JudgerConfig(), departures or BeyondSEIF()
    pairs = [(strip_think(answer), constraint) for answer, constraint in pairs]
    verdicts = [0.0] * len(pairs)
    answered = [index for index, (answer, _) in enumerate(pairs) if answer.strip()]
    checked = {}
    if departures.rules:
        from beyond_seif import rules
        checked = rules.rule_verdicts([(index, *pairs[index]) for index in answered])
        for index, verdict in checked.items():
            verdicts[index] = verdict
        answered = [index for index in answered if index not in checked]
    if answered:
        labelled = list(checked) if departures.calibrated_judge else []  # they go first and set the cut
        texts = [(pairs[i][0].strip(), pairs[i][1]["text"]) for i in labelled + answered]
        rule_verdicts = [checked[i] for i in labelled]
        if departures.pmi_judge:  # PMI of the constraint with the answer, given the request
            from beyond_seif import pmi_judge
            results = pmi_judge.verdicts(model, tokenizer, [requests[i] if requests else None for i in labelled + answered],
                                         texts, cfg.batch_size, rule_verdicts)
        elif departures.calibrated_judge:  # the LLM's P([[1]]), cut where the rule verdicts put it
            from beyond_seif import calibrated_judge
            results = calibrated_judge.verdicts(model, tokenizer, texts, rule_verdicts, judge_messages, cfg.batch_size)
        else:
            results = llm_verdicts(model, tokenizer, texts, cfg, departures)
        for index, verdict in zip(answered, results):
            verdicts[index] = verdict
    return verdicts


def followed_fractions(model, tokenizer, answered_sets, cfg=None, departures=None, requests=None):
    """For each (answer, constraints) set, the mean verdict over its constraints (0.0 if none).

    This is what both trained roles' rewards are made of. Every pair of every set goes to
    `judge` in one batched call. Returns (fractions, verdicts), verdicts flat in set order.
    `requests`: each set's seed request (for the `pmi_judge` departure).
    """
    pairs = [(answer, constraint) for answer, constraints in answered_sets for constraint in constraints]
    pair_requests = None if requests is None else [
        request for request, (_, constraints) in zip(requests, answered_sets) for _ in constraints]
    verdicts = judge(model, tokenizer, pairs, cfg, departures, pair_requests)
    fractions, start = [], 0
    for _, constraints in answered_sets:
        count = len(constraints)
        fractions.append(sum(verdicts[start : start + count]) / count if count else 0.0)
        start += count
    return fractions, verdicts


if __name__ == "__main__":  # the command line lives in cli.py
    import cli

    cli.main("judger")
