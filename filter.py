"""The Filter: rejects constraint sets that contradict themselves.

In SEIF the Instructor proposes constraints to add to a seed instruction, and a set is only
worth training on if some answer could satisfy all of it. The Filter is the frozen helper model
(the same checkpoint as the Judger), asked whether the constraints contain a logical
contradiction; it answers `[[1]]` (no conflict) or `[[0]]` (conflict), and anything unclear is
a rejection. Hard, unusual or tight constraints are NOT a conflict: rejecting them would take
away exactly the instructions the loop is meant to produce.

It is used twice: inside the Instructor's reward (a conflicting set earns 0), and on the
evolved instructions before the Follower trains on them. Cheap deterministic checks run first
(empty, duplicate, wrong count, too long, a pair IFEval itself never combines), then one
batched LLM call for the survivors. `report` says what was removed and why; the loop writes it
as filter_report.json every round.

Reads an instructions JSONL (rows with `constraints`, a list of constraint dicts, and an
optional `expected_count`); writes the kept rows and the report.

    python filter.py --model Qwen/Qwen2.5-0.5B-Instruct --instructions evolved.jsonl \
        --out kept.jsonl --report filter_report.json [--no-llm]
"""

import argparse
from dataclasses import dataclass

import ifeval_checks
import rollout
from data import UserError, read_jsonl, run_cli, write_json, write_jsonl
from judger import parse_verdict


@dataclass
class FilterConfig:
    llm: bool = True  # run the LLM conflict check after the deterministic checks (SEIF: yes)
    max_constraint_chars: int = 300  # longer than this is a paragraph, not one atomic constraint
    max_new_tokens: int = 256  # room for the analysis and the verdict
    batch_size: int = 32  # constraint sets per generate call


# Every reason a set can be removed, in the order the checks run, with the line for the report.
REASONS = {
    "empty": "no constraints, or a constraint with no text",
    "duplicate": "the same constraint twice (ignoring case and spacing)",
    "wrong_count": "not the number of constraints the Instructor was asked for",
    "too_long": "a constraint longer than max_constraint_chars characters",
    "known_conflict": "two different constraint types that IFEval lists as incompatible",
    "llm_conflict": "the Filter model found a contradiction, or gave no clear [[1]]",
}


# -----------------------------------------------------------------------------
# Deterministic checks


def normalised(text):
    return " ".join(text.lower().split())


def deterministic_reason(constraints, expected_count=None, cfg=None):
    """A short reason key (see REASONS) if the set fails a cheap check, else None."""
    cfg = cfg or FilterConfig()
    texts = [(c.get("text") or "") for c in constraints]
    if not texts or any(not text.strip() for text in texts):
        return "empty"
    if len({normalised(text) for text in texts}) < len(texts):
        return "duplicate"
    if expected_count is not None and len(texts) != expected_count:
        return "wrong_count"
    if any(len(text) > cfg.max_constraint_chars for text in texts):
        return "too_long"
    ids = [c.get("ifeval_id") for c in constraints]
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            # IFEval lists every type as conflicting with itself, but only to avoid repeats:
            # "include 'cat'" and "include 'dog'" can both hold. Same-type pairs go to the LLM.
            if ids[i] and ids[j] and ids[i] != ids[j] and ifeval_checks.conflicts(ids[i], ids[j]):
                return "known_conflict"
    return None


# -----------------------------------------------------------------------------
# The LLM conflict check

RUBRIC = """You check sets of constraints that will all be given, together, to a writer. \
Decide whether ONE response could satisfy every constraint at the same time.

- A conflict is a logical contradiction: meeting one constraint makes it impossible to meet \
another (for example, "all lowercase" together with "all capital letters").
- Hard, strict, unusual or tight constraints are NOT a conflict if some response could still \
meet them all.
- Write a short analysis (one to three sentences), then a last line that is exactly \
"Verdict: [[1]]" if there is no conflict or "Verdict: [[0]]" if there is one."""

EXAMPLES = [
    (
        ["Write the entire response in lowercase letters.",
         "Mention the agency NASA, written in capital letters."],
        "Writing NASA in capitals breaks the rule that every letter is lowercase.",
        0,
    ),
    (
        ["Use exactly 4 bullet points.", "Keep the whole response under 40 words.",
         "Name at least two rivers."],
        "Four short bullets can name two rivers in well under 40 words. It is tight, not "
        "impossible.",
        1,
    ),
    (
        ["The response must be at least 200 words long.", "Do not write more than 80 words."],
        "No text can have at least 200 words and at most 80 words.",
        0,
    ),
    (
        ["Answer in French only.", "Do not use any commas.",
         "Finish with the exact sentence: Merci beaucoup."],
        "A French answer without commas can end with that French sentence.",
        1,
    ),
]


# Repeated after the set: small models otherwise tend to continue the list instead.
FILTER_QUESTION = ("Could one response satisfy all of these constraints? Give a short analysis, "
                   "then the verdict line.")


def conflict_case(constraints, analysis=None, verdict=None):
    """One numbered constraint set; with analysis and verdict it is a worked example."""
    case = "CONSTRAINTS:\n" + "".join(f"{n}. {text}\n" for n, text in enumerate(constraints, 1))
    if analysis is not None:
        case += f"Analysis: {analysis}\nVerdict: [[{verdict}]]\n"
    return case


def conflict_messages(constraint_texts):
    """The chat the Filter sees for one constraint set."""
    examples = "\n".join(
        f"Example {number}:\n{conflict_case(*example)}" for number, example in enumerate(EXAMPLES, 1)
    )
    prompt = (f"{RUBRIC}\n\n{examples}\nNow check this set.\n{conflict_case(constraint_texts)}"
              f"{FILTER_QUESTION}")
    return [{"role": "user", "content": prompt}]


def llm_no_conflict(model, tokenizer, constraint_sets, cfg):
    """True where the Filter model answers a clear [[1]] (no conflict), one batched call."""
    messages_list = [conflict_messages([c["text"] for c in constraints])
                     for constraints in constraint_sets]
    texts = rollout.generate(model, tokenizer, messages_list, greedy=True,
                             max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                             desc="filter").texts
    return [parse_verdict(text) == 1 for text in texts]


# -----------------------------------------------------------------------------
# Filtering a batch of sets


def filter_sets(model, tokenizer, constraint_sets, cfg=None, expected_counts=None):
    """(keep, reasons): keep[i] is True for a usable set, reasons[i] a REASONS key or None.

    `model` may be None with cfg.llm False (deterministic checks only).
    """
    cfg = cfg or FilterConfig()
    expected_counts = expected_counts or [None] * len(constraint_sets)
    reasons = [deterministic_reason(constraints, expected, cfg)
               for constraints, expected in zip(constraint_sets, expected_counts, strict=True)]
    survivors = [i for i, reason in enumerate(reasons) if reason is None]
    if cfg.llm and survivors:
        verdicts = llm_no_conflict(model, tokenizer, [constraint_sets[i] for i in survivors], cfg)
        for i, no_conflict in zip(survivors, verdicts):
            if not no_conflict:
                reasons[i] = "llm_conflict"
    return [reason is None for reason in reasons], reasons


def report(reasons):
    """Counts of kept and removed sets by reason, with a line explaining each reason."""
    return {
        "total": len(reasons),
        "kept": sum(reason is None for reason in reasons),
        "removed": {key: sum(reason == key for reason in reasons) for key in REASONS},
        "why": dict(REASONS),
    }


# -----------------------------------------------------------------------------
# Command line: filter an instructions file


def main(argv=None):
    parser = argparse.ArgumentParser(description="Remove self-contradictory constraint sets.")
    parser.add_argument("--model", help="hub id, local directory or .gguf file (not needed with --no-llm)")
    parser.add_argument("--instructions", required=True, help="JSONL rows with a `constraints` list")
    parser.add_argument("--out", required=True, help="JSONL file for the kept rows")
    parser.add_argument("--report", help="JSON file for the removal report")
    parser.add_argument("--no-llm", action="store_true", help="deterministic checks only")
    parser.add_argument("--max-new-tokens", type=int, default=FilterConfig.max_new_tokens)
    args = parser.parse_args(argv)
    cfg = FilterConfig(llm=not args.no_llm, max_new_tokens=args.max_new_tokens)
    if cfg.llm and not args.model:
        raise UserError("--model is required unless --no-llm is given")

    rows = read_jsonl(args.instructions)
    for number, row in enumerate(rows, 1):
        constraints = row.get("constraints")
        if not isinstance(constraints, list) or not all(isinstance(c, dict) for c in constraints):
            raise UserError(f"{args.instructions}: row {number}: `constraints` must be a list "
                            f"of objects with a `text` field")
    model, tokenizer = rollout.load(args.model) if cfg.llm else (None, None)
    keep, reasons = filter_sets(model, tokenizer, [row["constraints"] for row in rows], cfg,
                                [row.get("expected_count") for row in rows])

    write_jsonl(args.out, [row for row, kept in zip(rows, keep) if kept])
    summary = report(reasons)
    if args.report:
        write_json(args.report, summary)
    removed = ", ".join(f"{key} {n}" for key, n in summary["removed"].items() if n) or "none"
    print(f"kept {summary['kept']} of {summary['total']} (removed: {removed})")


if __name__ == "__main__":
    run_cli(main)
