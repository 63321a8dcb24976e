"""Rule checks (beyond_seif.rules): a constraint that states one IFEval rule is checked by it.

Not SEIF: in SEIF the frozen helper judges every constraint. A 0.5B helper judges rule-checkable
constraints at chance (bench/results/accuracy_*), and a rule is exact and free, so with this
departure on:

    map_constraints   the Instructor's verifiable-mode sentences get an IFEval id and kwargs,
                      when `constraint_mapping.map_constraint` finds a rule that means exactly
                      what the sentence says
    rule_verdicts     the Judger checks those constraints with the rule; the rest go to the LLM
    mapping_report    how many verifiable constraints a rule checks (logged every round)

With `restrictions_deduct` on as well, a rule-checked constraint that a reply doing nothing
already meets (no commas, fewer than 40 words, avoid a word) is a restriction: it never pays
by itself, it only takes reward away when broken (deduct_restrictions).
"""

import warnings

import ifeval_checks
from beyond_seif.constraint_mapping import map_constraint
from data import UserError


def map_constraints(constraints, mode, seed):
    """Constraint dicts with "ifeval_id" and "kwargs" added (None where no rule means the same).
    Open-ended constraints are never mapped: only verifiable mode asks for rule-like ones."""
    mapped = []
    for constraint in constraints:
        rule = map_constraint(constraint["text"], request=seed) if mode == "verifiable" else None
        mapped.append({**constraint, "ifeval_id": rule[0] if rule else None, "kwargs": rule[1] if rule else None})
    return mapped


def rule_verdict(constraint, answer):
    """IFEval's exact check as 0.0/1.0; a checker that crashes counts as not followed."""
    try:
        return float(ifeval_checks.check(constraint["ifeval_id"], constraint.get("kwargs") or {}, answer))
    except UserError:  # lm-eval or NLTK's punkt_tab missing: the user's to fix, not a verdict of 0
        raise
    except Exception as error:  # a bad kwargs dict from the Instructor must not stop training
        warnings.warn(f"rule check {constraint['ifeval_id']} failed ({error!r}); verdict 0")
        return 0.0


def rule_verdicts(indexed_pairs):
    """{index: verdict} for the (index, answer, constraint) triples whose constraint a rule
    checks; the answer is checked as IFEval sees it, unstripped."""
    return {index: rule_verdict(constraint, answer) for index, answer, constraint in indexed_pairs
            if constraint.get("ifeval_id")}


FILLER = "Ok."  # a reply that does nothing: what it meets is no work to meet


def is_restriction(constraint):
    """A rule-checked constraint that FILLER meets: a limit (no commas, fewer than N sentences,
    avoid a word), not something the answer has to do. Constraints no rule checks never are."""
    return bool(constraint.get("ifeval_id")) and rule_verdict(constraint, FILLER) == 1.0


def deduct_restrictions(constraint_sets, verdicts):
    """restrictions_deduct: each set's mean verdict over its requirements, times its mean verdict
    over its restrictions, so a short reply meeting only limits earns 0 where SEIF's mean pays it.
    A set of restrictions only keeps SEIF's mean. `verdicts` are flat in set order."""
    fractions, start = [], 0
    for constraints in constraint_sets:
        own = verdicts[start : start + len(constraints)]
        start += len(constraints)
        limit = [is_restriction(c) for c in constraints]
        limits = [v for v, is_limit in zip(own, limit) if is_limit]
        required = [v for v, is_limit in zip(own, limit) if not is_limit]
        if not required:  # nothing to do but keep to limits: SEIF's mean (0.0 for no constraints)
            fractions.append(sum(limits) / len(limits) if limits else 0.0)
        else:
            fractions.append(sum(required) / len(required) * (sum(limits) / len(limits) if limits else 1.0))
    return fractions


def mapping_report(constraints):
    """How many of `constraints` map to an IFEval rule (so the Judger checks them by code)."""
    mapped = sum(c.get("ifeval_id") is not None for c in constraints)
    return {"verifiable_constraints": len(constraints), "mapped": mapped,
            "mapped_fraction": mapped / len(constraints) if constraints else 0.0}
