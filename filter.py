"""The Filter: rejects constraint sets that contradict themselves or their seed instruction.

In SEIF the Instructor proposes constraints to add to a seed instruction, and a set is only
worth training on if some answer could follow the seed and satisfy all of it. The Filter is the
frozen helper model (the same checkpoint as the Judger), shown the seed together with the
constraints (as in SEIF) and asked whether they contain a logical contradiction; it answers
`[[1]]` (no conflict) or `[[0]]` (conflict), and anything unclear is a rejection. Hard, unusual
or tight constraints are NOT a conflict: rejecting them would take away exactly the
instructions the loop is meant to produce.

It is used twice: inside the Instructor's reward (a conflicting set earns 0), and on the
evolved instructions before the Follower trains on them (SEIF's code kept those unfiltered; we
filter them and report what was removed). All sets go to the LLM in one batched call. `report`
says what was removed and why; the loop writes it as filter_report.json every round. With
`beyond_seif.filter_checks` (or `rules_only`) cheap deterministic checks run first
(beyond_seif/filter_checks.py), and only the sets they keep go to the LLM.

Reads an instructions JSONL (rows with `constraints`, a list of constraint dicts, and optional
`seed` and `expected_count`); writes the kept rows and the report.

    python filter.py --model Qwen/Qwen2.5-0.5B-Instruct --instructions evolved.jsonl \
        --out kept.jsonl --report filter_report.json [--checks] [--rules-only] [--no-llm]
"""

from dataclasses import dataclass

import rollout
from reply_format import parse_verdict
from settings import BeyondSEIF


@dataclass
class FilterConfig:
    llm: bool = True  # SEIF: the frozen helper checks every set (False keeps every set the cheap checks keep)
    max_new_tokens: int = 256  # room for the analysis and the verdict
    batch_size: int = 32  # constraint sets per generate call


REASONS = {"llm_conflict": "the Filter model found a contradiction, or gave no clear [[1]]"}


# -----------------------------------------------------------------------------
# The LLM conflict check

RUBRIC = """You check an INSTRUCTION and the CONSTRAINTS added to it, all of which will be \
given together to a writer. Decide whether ONE response could follow the instruction and satisfy \
every constraint at the same time.

- A conflict is a logical contradiction: meeting one constraint makes it impossible to meet \
another, or to do what the instruction asks (for example, "all lowercase" together with "all \
capital letters", or a haiku that must be 300 words long).
- Hard, strict, unusual or tight constraints are NOT a conflict if some response could still \
meet them all.
- Write a short analysis (one to three sentences), then a last line that is exactly \
"Verdict: [[1]]" if there is no conflict or "Verdict: [[0]]" if there is one."""

EXAMPLES = [  # (instruction, constraints, analysis, verdict)
    (
        "Describe the first Moon landing.",
        ["Write the entire response in lowercase letters.",
         "Mention the agency NASA, written in capital letters."],
        "Writing NASA in capitals breaks the rule that every letter is lowercase.",
        0,
    ),
    (
        "Suggest a weekend trip for a family.",
        ["Use exactly 4 bullet points.", "Keep the whole response under 40 words.",
         "Name at least two rivers."],
        "Four short bullets can suggest a trip and name two rivers in well under 40 words. It "
        "is tight, not impossible.",
        1,
    ),
    (
        "Write a haiku about autumn leaves.",
        ["The response must be at least 200 words long.", "Mention the colour red."],
        "A haiku is three short lines, far fewer than 200 words, so the instruction and the "
        "first constraint cannot both hold.",
        0,
    ),
    (
        "Thank a colleague for their help.",
        ["Answer in French only.", "Do not use any commas.",
         "Finish with the exact sentence: Merci beaucoup."],
        "A French thank-you without commas can end with that French sentence.",
        1,
    ),
]


# Repeated after the set: small models otherwise tend to continue the list instead.
FILTER_QUESTION = ("Could one response follow the instruction and satisfy all of these "
                   "constraints? Give a short analysis, then the verdict line.")


def conflict_case(instruction, constraints, analysis=None, verdict=None):
    """One instruction with its numbered constraints; with analysis and verdict, a worked example."""
    case = f"INSTRUCTION: {instruction}\n" if instruction else ""  # None: constraints alone
    case += "CONSTRAINTS:\n"
    case += "".join(f"{n}. {text}\n" for n, text in enumerate(constraints, 1))
    if analysis is not None:
        case += f"Analysis: {analysis}\nVerdict: [[{verdict}]]\n"
    return case


def conflict_messages(instruction, constraint_texts):
    """The chat the Filter sees for one seed instruction and its constraint set (SEIF shows the
    seed too, so a constraint that contradicts the seed is caught)."""
    examples = "\n".join(
        f"Example {number}:\n{conflict_case(*example)}" for number, example in enumerate(EXAMPLES, 1)
    )
    prompt = (f"{RUBRIC}\n\n{examples}\nNow check this set.\n{conflict_case(instruction, constraint_texts)}"
              f"{FILTER_QUESTION}")
    return [{"role": "user", "content": prompt}]


def llm_no_conflict(model, tokenizer, seeds, constraint_sets, cfg):
    """True where the Filter model answers a clear [[1]] (no conflict), one batched call."""
    messages_list = [conflict_messages(seed, [c["text"] for c in constraints])
                     for seed, constraints in zip(seeds, constraint_sets, strict=True)]
    texts = rollout.generate(model, tokenizer, messages_list, greedy=True,
                             max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                             desc="filter").texts
    return [parse_verdict(text) == 1 for text in texts]


# -----------------------------------------------------------------------------
# Filtering a batch of sets


def filter_sets(model, tokenizer, constraint_sets, cfg=None, departures=None, expected_counts=None, seeds=None):
    """(keep, reasons): keep[i] is True for a usable set, reasons[i] a reason key or None.

    seeds[i] is the instruction set i was written for; the LLM check sees it with the
    constraints (SEIF). `model` may be None with cfg.llm False.
    """
    cfg, departures = cfg or FilterConfig(), departures or BeyondSEIF()
    expected_counts = expected_counts or [None] * len(constraint_sets)
    seeds = seeds or [None] * len(constraint_sets)
    reasons = [None] * len(constraint_sets)
    if departures.filter_checks or departures.rules_only:
        from beyond_seif import filter_checks
        reasons = [filter_checks.reason(constraints, expected, departures)
                   for constraints, expected in zip(constraint_sets, expected_counts, strict=True)]
    survivors = [i for i, reason in enumerate(reasons) if reason is None]
    if cfg.llm and survivors:
        verdicts = llm_no_conflict(model, tokenizer, [seeds[i] for i in survivors],
                                   [constraint_sets[i] for i in survivors], cfg)
        for i, no_conflict in zip(survivors, verdicts):
            if not no_conflict:
                reasons[i] = "llm_conflict"
    return [reason is None for reason in reasons], reasons


def report(reasons, departures=None):
    """Counts of kept and removed sets by reason, with a line explaining each reason."""
    why = dict(REASONS)
    if departures and (departures.filter_checks or departures.rules_only):
        from beyond_seif import filter_checks
        why = {**filter_checks.REASONS, **REASONS}
    return {
        "total": len(reasons),
        "kept": sum(reason is None for reason in reasons),
        "removed": {key: sum(reason == key for reason in reasons) for key in why},
        "why": why,
    }


if __name__ == "__main__":  # the command line lives in cli.py
    import cli

    cli.main("filter")
