"""data/heldout.jsonl: seeds no training run sees, each with 1-3 constraints judged by IFEval rules.

It is the yardstick for "does the Follower get better at constraints it never trained on": its
seeds are not in data/seeds.jsonl (the loop's default training seeds), and every constraint is
phrased as an Instructor writes it and maps exactly to one IFEval rule, so judging it needs no
model; and no set is one the Filter's cheap checks (beyond_seif.filter_checks) would remove.
"""

from pathlib import Path

import ifeval_checks
from beyond_seif import filter_checks
from beyond_seif.constraint_mapping import map_constraint
from cli import read_instructions
from data import default_seeds_path, read_prompts
from settings import BeyondSEIF

HELDOUT = Path(__file__).resolve().parents[1] / "data" / "heldout.jsonl"


def test_heldout_seeds_are_never_training_seeds():
    rows = read_instructions(HELDOUT)
    training = {seed.strip().lower() for seed in read_prompts(default_seeds_path())}
    assert len(rows) >= 40
    assert not [row["seed"] for row in rows if row["seed"].strip().lower() in training]
    assert len({row["seed"] for row in rows}) == len(rows)


def test_every_heldout_constraint_is_rule_checked_as_written():
    for row in read_instructions(HELDOUT):
        assert 1 <= len(row["constraints"]) <= 3
        assert row["instruction"] == "\n".join([row["seed"]] + [c["text"] for c in row["constraints"]])
        assert filter_checks.reason(row["constraints"], row["expected_count"],
                                    BeyondSEIF(filter_checks=True)) is None, row["seed"]
        for constraint in row["constraints"]:
            # the stored rule is what map_constraint makes of the sentence today
            assert map_constraint(constraint["text"]) == (constraint["ifeval_id"], constraint["kwargs"])
            ifeval_checks.check(constraint["ifeval_id"], constraint["kwargs"], "A short answer.")
