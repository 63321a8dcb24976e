"""The Filter's cheap checks (beyond_seif.filter_checks, rules_only): before the LLM is asked.

Not SEIF: SEIF's Filter is one LLM verdict per constraint set. These deterministic checks run
first and remove, for free, what is surely unusable: no constraints or an empty one, the same
constraint twice (also two that one rule checks alike), not the number of constraints the
Instructor was asked for, a constraint too long to be one, and two rule-checked constraints that
no response can meet together (`contradicts`). With `rules_only` (the CPU demo, whose 135M
helper gives verdicts at chance) a set with a constraint that no IFEval rule checks is removed
too. `reason` names the first check a set fails; the Filter's report counts them.
"""

import json

import ifeval_checks

# Every reason a set can be removed here, in the order the checks run, with the report's line.
REASONS = {
    "empty": "no constraints, or a constraint with no text",
    "duplicate": "the same constraint twice (ignoring case and spacing), or two that one rule checks "
                 "alike (\"Do not use any commas.\" and \"Avoid commas.\")",
    "wrong_count": "not the number of constraints the Instructor was asked for",
    "too_long": "a constraint longer than max_constraint_chars characters",
    "not_rule_checked": "rules_only: a constraint that no IFEval rule checks on this machine",
    "known_conflict": "two rule-checked constraints that no response can meet together",
}


def normalised(text):
    return " ".join(text.lower().split())


def reason(constraints, expected_count, departures):
    """A REASONS key if the set fails a cheap check that `departures` turns on, else None."""
    if not departures.filter_checks:
        return "not_rule_checked" if departures.rules_only and not all(map(_rule_checked, constraints)) else None
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
    if any(len(text) > departures.max_constraint_chars for text in texts):
        return "too_long"
    if departures.rules_only and not all(map(_rule_checked, constraints)):
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
