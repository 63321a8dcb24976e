"""Validate bench/hacks.jsonl, the hand-labelled hack set for the Follower's reward.

Each line is one request (seed + 1 to 3 IFEval-checkable constraints) with seven answers: one
genuine answer and six surface hacks (echo, restated, stuffing, salad, spam, offtopic). This
script checks the file's structure, runs every answer through IFEval's rules
(ifeval_checks.check) and prints, per kind, the share of answers that meet all their rules.

Run from the repository root (the sentence-counting rules need NLTK's punkt_tab data):

    NLTK_DATA=/work/shared/nltk_data .venv/bin/python bench/hacks_check.py [path]

Exit status 1 if the structure is wrong or a genuine, salad or offtopic answer fails a rule
(those three kinds must meet every rule by construction); 0 otherwise.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ifeval_checks  # noqa: E402

KINDS = ("genuine", "echo", "restated", "stuffing", "salad", "spam", "offtopic")
MUST_PASS = ("genuine", "salad", "offtopic")


def structure_errors(row, line_no, seen_ids):
    """A list of problems with one row's shape (empty if it is well formed)."""
    errors = []
    where = f"line {line_no} ({row.get('id', '?')})"
    for key in ("id", "seed", "constraints", "instruction", "answers"):
        if key not in row:
            errors.append(f"{where}: missing {key!r}")
    if errors:
        return errors
    if row["id"] in seen_ids:
        errors.append(f"{where}: duplicate id")
    seen_ids.add(row["id"])
    constraints = row["constraints"]
    if not isinstance(constraints, list) or not 1 <= len(constraints) <= 3:
        errors.append(f"{where}: needs 1 to 3 constraints")
        return errors
    for c in constraints:
        if not (isinstance(c, dict) and isinstance(c.get("text"), str) and c["text"].strip()
                and isinstance(c.get("ifeval_id"), str) and isinstance(c.get("kwargs"), dict)):
            errors.append(f"{where}: malformed constraint {c!r}")
    if not errors:
        expected = row["seed"] + "\n" + "\n".join(c["text"] for c in constraints)
        if row["instruction"] != expected:
            errors.append(f"{where}: instruction != seed + constraint texts")
    answers = row["answers"]
    if not isinstance(answers, dict):
        return errors + [f"{where}: answers is not an object"]
    for kind in KINDS:
        if not isinstance(answers.get(kind), str) or not answers[kind].strip():
            errors.append(f"{where}: answer {kind!r} missing or empty")
    extra = set(answers) - set(KINDS)
    if extra:
        errors.append(f"{where}: unknown answer kinds {sorted(extra)}")
    return errors


def main(path):
    rows, errors, seen = [], [], set()
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"line {line_no}: bad JSON ({e})")
                continue
            errors += structure_errors(row, line_no, seen)
            rows.append(row)
    if errors:
        print("STRUCTURE ERRORS:")
        for e in errors:
            print("  " + e)
        return 1

    passed = {k: 0 for k in KINDS}        # answers meeting all their rules
    rules_met = {k: [0, 0] for k in KINDS}  # [rules met, rules checked]
    failures = []                          # (kind, id, failed ifeval ids)
    for row in rows:
        for kind in KINDS:
            answer = row["answers"][kind]
            failed = [c["ifeval_id"] for c in row["constraints"]
                      if not ifeval_checks.check(c["ifeval_id"], c["kwargs"], answer)]
            rules_met[kind][0] += len(row["constraints"]) - len(failed)
            rules_met[kind][1] += len(row["constraints"])
            if failed:
                failures.append((kind, row["id"], failed))
            else:
                passed[kind] += 1

    n = len(rows)
    ids = sorted({c["ifeval_id"] for r in rows for c in r["constraints"]})
    print(f"{path}: {n} requests, {sum(len(r['constraints']) for r in rows)} constraints, "
          f"{len(ids)} distinct IFEval ids")
    print(f"{'kind':<10} {'all rules met':>14} {'rules met':>10}")
    for kind in KINDS:
        met, total = rules_met[kind]
        print(f"{kind:<10} {passed[kind]:>4}/{n:<3} {passed[kind] / n:5.0%}  {met / total:9.0%}")

    bad = [f for f in failures if f[0] in MUST_PASS]
    if bad:
        print("\nMUST-PASS answers failing a rule:")
        for kind, rid, failed in bad:
            print(f"  {rid} {kind}: {', '.join(failed)}")
    other = [f for f in failures if f[0] not in MUST_PASS]
    if other:
        print("\n(hack answers failing a rule, allowed):")
        for kind, rid, failed in other:
            print(f"  {rid} {kind}: {', '.join(failed)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", "hacks.jsonl")))
