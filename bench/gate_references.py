"""How far the answer gate's bounds move with the number of helper answers they come from.

The gate's thresholds are a low quantile (order, topic) and Tukey's fence (lift) of the frozen
helper's own answers to a round's instructions, `beyond_seif.answer_gate_references` of them
(16 by default). This script has the helper answer every instruction of a round's instructions
file `--answers-per` times, scores every answer once (`answer_gate.features`), and then fits the
gate `--draws` times for each reference count, drawing the references as a Follower stage does
(the distinct instructions in a random order, each once while there are more instructions than
references; here one of its answers at random). It reports each bound's median and its 5th-95th
percentile range over the draws, and the share of the answers not drawn that each fitted gate
refuses (the gate is meant to refuse about the least fluent or least on-topic 5% of them, and
the copies beyond the lift fence).

    NLTK_DATA=../shared/nltk_data python bench/gate_references.py \\
        --instructions runs/<run>/round_2/instructions.jsonl --helper runs/<run>/round_1/follower --name <name>

Writes bench/results/gate_references_<name>.json and .txt.
"""

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]
import accuracy  # noqa: E402  (machine description)
import training  # noqa: E402
from beyond_seif import answer_gate  # noqa: E402
from data import read_jsonl, write_json  # noqa: E402
from judger import JudgerConfig  # noqa: E402
from settings import BeyondSEIF  # noqa: E402

BOUNDS = ("order_min", "topic_min", "lift_max")


def draw(answers_by_instruction, references, rng):
    """Indices of `references` answers, drawn as `answer_gate.fit_for_rows` draws instructions:
    the distinct instructions in a random order, each once per pass, one unused answer of each."""
    unused = {key: rng.sample(indices, len(indices)) for key, indices in answers_by_instruction.items()}
    chosen = []
    while len(chosen) < references:
        left = [key for key, indices in unused.items() if indices]
        if not left:
            break
        for key in rng.sample(left, min(len(left), references - len(chosen))):
            chosen.append(unused[key].pop())
    return chosen


def spread(values):
    values = sorted(values)
    return {"median": statistics.median(values), "p5": answer_gate.quantile(values, 0.05),
            "p95": answer_gate.quantile(values, 0.95)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructions", required=True, help="a round's instructions.jsonl")
    parser.add_argument("--helper", required=True, help="the round's frozen helper: a model name or folder")
    parser.add_argument("--name", required=True, help="names the results files")
    parser.add_argument("--answers-per", type=int, default=2, help="helper answers per distinct instruction")
    parser.add_argument("--counts", type=int, nargs="+", default=[16, 32, 48], help="reference counts to fit")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=JudgerConfig.batch_size,
                        help="answers per generate call and forward pass (the loop uses judger.batch_size)")
    args = parser.parse_args()
    start = time.time()
    torch.manual_seed(args.seed)
    first = {}
    for row in read_jsonl(args.instructions):
        first.setdefault(row["instruction"], row)
    rows = [row for row in first.values() for _ in range(args.answers_per)]
    helper, tokenizer = training.load_frozen(args.helper)
    pairs = answer_gate.helper_answers(helper, tokenizer, rows, args.max_new_tokens, args.batch_size)
    found = answer_gate.features(helper, tokenizer, [row for row, _ in pairs], [answer for _, answer in pairs],
                                 args.batch_size)
    scored_s = time.time() - start

    by_instruction = {}
    for i, (row, _) in enumerate(pairs):
        by_instruction.setdefault(row["instruction"], []).append(i)
    departures = BeyondSEIF()
    results = {"machine": accuracy.machine(), "command": " ".join(sys.argv), "instructions": args.instructions,
               "helper": args.helper, "batch_size": args.batch_size, "distinct_instructions": len(first), "answers": len(pairs),
               "quantile": departures.answer_gate_quantile, "lift_fence": departures.answer_gate_lift_fence,
               "all_answers_gate": answer_gate.gate_from_features(found, departures.answer_gate_quantile).__dict__,
               "counts": {}, "features": found, "scored_s": round(scored_s, 1)}
    for count in args.counts:
        if count >= len(pairs):
            print(f"{count} references: only {len(pairs)} answers, skipped")
            continue
        fitted, refused = {bound: [] for bound in BOUNDS}, []
        for d in range(args.draws):
            chosen = draw(by_instruction, count, random.Random(d))
            gate = answer_gate.gate_from_features([found[i] for i in chosen], departures.answer_gate_quantile)
            for bound in BOUNDS:
                fitted[bound].append(getattr(gate, bound))
            aside = [found[i] for i in set(range(len(pairs))) - set(chosen)]
            refused.append(1 - sum(gate.passes(aside)) / len(aside))
        results["counts"][count] = {**{bound: spread(values) for bound, values in fitted.items()},
                                    "refused_aside": spread(refused)}
    results["wall_s"] = round(time.time() - start, 1)

    lines = [f"{results['machine']}; helper {args.helper}; {len(first)} instructions x {args.answers_per} answers "
             f"= {len(pairs)} scored in {scored_s:.0f} s (batches of {args.batch_size}); "
             f"{args.draws} draws per count",
             f"gate from all {len(pairs)}: order >= {results['all_answers_gate']['order_min']:.3f}, "
             f"topic >= {results['all_answers_gate']['topic_min']:.3f}, lift <= {results['all_answers_gate']['lift_max']:.3f}",
             "references | order_min | topic_min | lift_max | refused of the answers not drawn",
             "(each: median [5th-95th percentile over the draws])"]
    for count, figures in results["counts"].items():
        cells = [f"{figures[key]['median']:.3f} [{figures[key]['p5']:.3f}-{figures[key]['p95']:.3f}]"
                 for key in (*BOUNDS, "refused_aside")]
        lines.append(f"{count} | " + " | ".join(cells))
    text = "\n".join(lines)
    print(text)
    out = REPO / "bench" / "results" / f"gate_references_{args.name}"
    write_json(out.with_suffix(".json"), results)
    out.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
