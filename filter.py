"""The Filter: rejects constraint sets that contradict themselves or their seed instruction.

In SEIF the Instructor proposes constraints to add to a seed instruction, and a set is only
worth training on if some answer could follow the seed and satisfy all of it. The Filter is the
frozen helper model (the same checkpoint as the Judger), shown the seed together with the
constraints (as in SEIF) and asked whether they contain a logical contradiction; it answers
`[[1]]` (no conflict) or `[[0]]` (conflict), and anything unclear is a rejection. Hard, unusual
or tight constraints are NOT a conflict: rejecting them would take away exactly the
instructions the loop is meant to produce.

It is used twice: inside the Instructor's reward (a conflicting set earns 0), and on the
evolved instructions before the Follower trains on them. Cheap deterministic checks run first
(empty, duplicate, wrong count, too long, two rule-checked constraints that provably clash,
see `contradicts`), then one batched LLM call for the survivors. `report` says what was removed
and why; the loop writes it as filter_report.json every round.

Reads an instructions JSONL (rows with `constraints`, a list of constraint dicts, and optional
`seed` and `expected_count`); writes the kept rows and the report.

    python filter.py --model Qwen/Qwen2.5-0.5B-Instruct --instructions evolved.jsonl \
        --out kept.jsonl --report filter_report.json [--no-llm]
"""

import argparse
import json
from dataclasses import dataclass

import ifeval_checks
import rollout
from data import UserError, read_jsonl, run_cli, write_json, write_jsonl
from judger import parse_verdict


@dataclass
class FilterConfig:
    llm: bool = True  # run the LLM conflict check after the deterministic checks (SEIF: yes)
    rules_only: bool = False  # not SEIF (CPU demo only): remove a set with a constraint that no
    # IFEval rule checks, since the demo model's own verdicts are at chance (bench/accuracy.py)
    max_constraint_chars: int = 300  # longer than this is a paragraph, not one atomic constraint
    max_new_tokens: int = 256  # room for the analysis and the verdict
    batch_size: int = 32  # constraint sets per generate call


# Every reason a set can be removed, in the order the checks run, with the line for the report.
REASONS = {
    "empty": "no constraints, or a constraint with no text",
    "duplicate": "the same constraint twice (ignoring case and spacing), or two that one rule checks "
                 "alike (\"Do not use any commas.\" and \"Avoid commas.\")",
    "wrong_count": "not the number of constraints the Instructor was asked for",
    "too_long": "a constraint longer than max_constraint_chars characters",
    "not_rule_checked": "rules_only: a constraint that no IFEval rule checks on this machine",
    "known_conflict": "two rule-checked constraints that no response can meet together",
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
    # two sentences mapped to the same rule with the same arguments are one constraint twice:
    # the Instructor would be paid for a third constraint that asks nothing new
    rule_checks = [(c["ifeval_id"], json.dumps(c.get("kwargs") or {}, sort_keys=True))
                   for c in constraints if c.get("ifeval_id")]
    if len({normalised(text) for text in texts}) < len(texts) or len(set(rule_checks)) < len(rule_checks):
        return "duplicate"
    if expected_count is not None and len(texts) != expected_count:
        return "wrong_count"
    if any(len(text) > cfg.max_constraint_chars for text in texts):
        return "too_long"
    if cfg.rules_only and not all(_rule_checked(c) for c in constraints):
        return "not_rule_checked"
    rules = [(c["ifeval_id"], c.get("kwargs") or {}) for c in constraints if c.get("ifeval_id")]
    for i in range(len(rules)):
        for j in range(i + 1, len(rules)):
            if contradicts(rules[i], rules[j]) or contradicts(rules[j], rules[i]):
                return "known_conflict"
    return None


def _rule_checked(constraint):
    """True if an IFEval rule checks this constraint, and can on this machine (NLTK data)."""
    return bool(constraint.get("ifeval_id")) and ifeval_checks.runs_here(constraint["ifeval_id"],
                                                                         constraint.get("kwargs") or {})


# Provable contradictions between two rule-mapped constraints: no response can meet both. This
# is deliberately NOT IFEval's INSTRUCTION_CONFLICTS table, which lists the pairs IFEval chose not
# to generate together ("Respond in French" with "Include the keywords paris and seine", say),
# most of them satisfiable. Everything that is merely hard or unusual goes to the LLM check.

_COUNTS = {  # instruction id -> (count kwarg, relation kwarg, kwarg that must also match)
    "length_constraints:number_words": ("num_words", "relation", None),
    "length_constraints:number_sentences": ("num_sentences", "relation", None),
    "change_case:capital_word_frequency": ("capital_frequency", "capital_relation", None),
    "keywords:letter_frequency": ("let_frequency", "let_relation", "letter"),
    "keywords:frequency": ("frequency", "relation", "keyword"),
}
_EXACT_COUNTS = {"detectable_format:number_bullet_lists": "num_bullets",
                 "length_constraints:number_paragraphs": "num_paragraphs"}
_ENGLISH_CASE = {"change_case:english_capital", "change_case:english_lowercase"}


def contradicts(a, b):
    """True if no response can satisfy rule a = (id, kwargs) and rule b together (one direction;
    the caller tries both orders)."""
    (id_a, kw_a), (id_b, kw_b) = a, b
    if id_a == id_b:
        return _same_type_contradiction(id_a, kw_a, kw_b)
    if _ENGLISH_CASE == {id_a, id_b}:  # every letter upper case and every letter lower case
        return True
    if id_a == "language:response_language" and id_b in _ENGLISH_CASE:  # both rules demand English
        return kw_a.get("language") != "en"
    if id_a == "change_case:english_lowercase" and id_b == "change_case:capital_word_frequency":
        return kw_b.get("capital_relation") == "at least" and kw_b.get("capital_frequency", 0) >= 1
    if id_a == "punctuation:no_comma":  # a required phrase that itself holds a comma
        return any("," in phrase for phrase in _required_phrases(id_b, kw_b))
    if id_a == "keywords:forbidden_words" and id_b == "keywords:existence":
        forbidden = {word.lower() for word in kw_a.get("forbidden_words") or []}
        return any(keyword.lower() in forbidden for keyword in kw_b.get("keywords") or [])
    return False


def _same_type_contradiction(instruction_id, kw_a, kw_b):
    if instruction_id in _COUNTS:
        count, relation, subject = _COUNTS[instruction_id]
        if subject and str(kw_a.get(subject)).lower() != str(kw_b.get(subject)).lower():
            return False  # counts of different letters or keywords never clash
        low_a, high_a = _count_range(kw_a.get(relation), kw_a.get(count))
        low_b, high_b = _count_range(kw_b.get(relation), kw_b.get(count))
        return max(low_a, low_b) > min(high_a, high_b)
    if instruction_id in _EXACT_COUNTS:
        return kw_a.get(_EXACT_COUNTS[instruction_id]) != kw_b.get(_EXACT_COUNTS[instruction_id])
    if instruction_id == "language:response_language":
        return kw_a.get("language") != kw_b.get("language")
    if instruction_id == "startend:end_checker":  # neither required ending ends with the other
        end_a, end_b = (str(kw.get("end_phrase", "")).strip().lower() for kw in (kw_a, kw_b))
        return not (end_a.endswith(end_b) or end_b.endswith(end_a))
    return False


def _count_range(relation, number):
    """IFEval's relations as an inclusive range of counts: "at least n" = [n, inf), "less than
    n" = [0, n - 1]. Anything else is treated as unconstrained."""
    if not isinstance(number, int):
        return 0, float("inf")
    if relation == "at least":
        return number, float("inf")
    if relation == "less than":
        return 0, number - 1
    return 0, float("inf")


def _required_phrases(instruction_id, kwargs):
    """Text a rule forces into every response that follows it."""
    if instruction_id == "keywords:existence":
        return kwargs.get("keywords") or []
    if instruction_id == "startend:end_checker":
        return [kwargs.get("end_phrase") or ""]
    if instruction_id == "keywords:frequency" and kwargs.get("relation") == "at least":
        return [kwargs.get("keyword") or ""]
    return []


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


def filter_sets(model, tokenizer, constraint_sets, cfg=None, expected_counts=None, seeds=None):
    """(keep, reasons): keep[i] is True for a usable set, reasons[i] a REASONS key or None.

    seeds[i] is the instruction set i was written for; the LLM check sees it with the
    constraints (SEIF). `model` may be None with cfg.llm False (deterministic checks only).
    """
    cfg = cfg or FilterConfig()
    expected_counts = expected_counts or [None] * len(constraint_sets)
    seeds = seeds or [None] * len(constraint_sets)
    reasons = [deterministic_reason(constraints, expected, cfg)
               for constraints, expected in zip(constraint_sets, expected_counts, strict=True)]
    survivors = [i for i, reason in enumerate(reasons) if reason is None]
    if cfg.llm and survivors:
        verdicts = llm_no_conflict(model, tokenizer, [seeds[i] for i in survivors],
                                   [constraint_sets[i] for i in survivors], cfg)
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
    parser.add_argument("--rules-only", action="store_true",
                        help="also remove sets with a constraint no IFEval rule checks (the demo's setting)")
    parser.add_argument("--max-new-tokens", type=int, default=FilterConfig.max_new_tokens)
    args = parser.parse_args(argv)
    cfg = FilterConfig(llm=not args.no_llm, rules_only=args.rules_only, max_new_tokens=args.max_new_tokens)
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
                                [row.get("expected_count") for row in rows],
                                seeds=[row.get("seed") for row in rows])

    write_jsonl(args.out, [row for row, kept in zip(rows, keep) if kept])
    summary = report(reasons)
    if args.report:
        write_json(args.report, summary)
    removed = ", ".join(f"{key} {n}" for key, n in summary["removed"].items() if n) or "none"
    print(f"kept {summary['kept']} of {summary['total']} (removed: {removed})")


if __name__ == "__main__":
    run_cli(main)
