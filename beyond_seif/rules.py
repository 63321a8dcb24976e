"""Rule checks (beyond_seif.rules): a constraint that states one IFEval rule is checked by it.

Not SEIF: in SEIF the frozen helper judges every constraint. A 0.5B helper judges rule-checkable
constraints at chance (bench/results/accuracy_*), and a rule is exact and free, so with this
departure on:

    map_constraints   the Instructor's verifiable-mode sentences get an IFEval id and kwargs,
                      when `constraint_mapping.map_constraint` finds a rule that means exactly
                      what the sentence says
    rule_verdicts     the Judger checks those constraints with the rule; the rest go to the LLM
    mapping_report    how many verifiable constraints a rule checks (logged every round)
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


def mapping_report(constraints):
    """How many of `constraints` map to an IFEval rule (so the Judger checks them by code)."""
    mapped = sum(c.get("ifeval_id") is not None for c in constraints)
    return {"verifiable_constraints": len(constraints), "mapped": mapped,
            "mapped_fraction": mapped / len(constraints) if constraints else 0.0}
