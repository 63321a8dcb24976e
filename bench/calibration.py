"""Does the frozen helper judge better than chance without labels? SEIF's cut against fitted ones.

The judge's signal is P([[1]]) from one forward pass (beyond_seif/score_judge.py). SEIF's decision
is P > 0.5; the calibrated judge (beyond_seif/calibrated_judge.py) cuts where rule verdicts put
the threshold. Two labelled sets measure it:

  ifeval      GPT-4's IFEval responses (../shared/ifeval), every pair the official scorer says
              is NOT followed plus as many followed ones drawn at random (seed), split at random
              into halves A and B. The cut is fitted on half A's rule verdicts (what the loop's
              `rules` departure gives for free; on these pairs they are IFEval's own checks) and
              measured on half B against the official strict verdicts. Half B is never fitted on.
  open-ended  bench/open_ended_pairs.jsonl: hand-labelled answers to constraints no rule checks
              (tone, audience, persona, content, ...). Measured with the cut fitted on ALL the
              IFEval rule verdicts (how the loop would use it: does the cut transfer?), and, as a
              ceiling, with a cut fitted on one half of this set's labels, measured on the other.
              Also PMI, the label-free likelihood lead of JUDGING.md: (log p(answer | request +
              constraint) - log p(answer | request)) / answer tokens, cut at the set's median
              and at 0 (the pmi_judge departure's verdict).

Every figure comes with its 95% interval (bootstrap for balanced accuracy, Wilson for rates),
the ROC AUC of the signal, and the cost: verdicts per second and forward passes per verdict.

    NLTK_DATA=../shared/nltk_data python bench/calibration.py --model smollm2-135m
    NLTK_DATA=../shared/nltk_data python bench/calibration.py --model qwen2.5-coder-0.5b
    ... --prompt no-examples     # the Judger's prompt without its worked examples

Writes bench/results/calibration_<model>.json and .txt.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]
import accuracy  # noqa: E402  (labelled IFEval pairs, metrics, intervals)
import judger  # noqa: E402
import rollout  # noqa: E402
from beyond_seif import calibrated_judge, pmi_judge, score_judge  # noqa: E402

OPEN_ENDED = REPO / "bench" / "open_ended_pairs.jsonl"


def ifeval_set(positives, seed):
    """Every not-followed pair and `positives` followed ones, shuffled, split into halves A/B."""
    pairs = accuracy.ifeval_pairs()
    rng = random.Random(seed)
    followed = [p for p in pairs if p["strict"] == 1]
    chosen = [p for p in pairs if p["strict"] == 0] + rng.sample(followed, positives)
    rng.shuffle(chosen)
    return chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]


def no_examples_messages(answer, constraint_text):
    """The Judger's chat without its worked examples: the rubric, the case and the question. Small
    models copy the examples' layout and phrases; this measures the prompt without them."""
    return [{"role": "user", "content": f"{judger.RUBRIC}\n\n{judger.judge_case(answer, constraint_text)}"
                                        f"{judger.JUDGE_QUESTION}"}]


PROMPTS = {"seif": judger.judge_messages, "no-examples": no_examples_messages}


def score(model, tokenizer, answer_constraint_pairs, batch_size, messages=judger.judge_messages):
    """P([[1]]) for each (answer, constraint text), and the seconds it took."""
    start = time.time()
    chats = [messages(answer, text) for answer, text in answer_constraint_pairs]
    return score_judge.llm_score(model, tokenizer, chats, batch_size), time.time() - start


def pmi(model, tokenizer, rows, batch_size):
    """JUDGING.md's PMI of each row's constraint with its answer (the pmi_judge departure's own
    computation), and the seconds it took."""
    start = time.time()
    values = pmi_judge.pmi(model, tokenizer, [row["request"] for row in rows],
                           [(row["answer"], row["constraint"]) for row in rows], batch_size)
    return values, time.time() - start


def bootstrap_balanced_accuracy(truth, predicted, resamples=1000, seed=0):
    """95% interval of the balanced accuracy, by resampling the pairs."""
    rng, values = random.Random(seed), []
    for _ in range(resamples):
        index = [rng.randrange(len(truth)) for _ in truth]
        sample = [truth[i] for i in index]
        if 0 < sum(sample) < len(sample):
            values.append(accuracy.binary_metrics(sample, [predicted[i] for i in index])["balanced_accuracy"])
    values.sort()
    return [round(values[int(0.025 * len(values))], 4), round(values[int(0.975 * len(values)) - 1], 4)]


def measured(truth, signal, cut, name):
    """The metrics of the verdicts signal > cut against truth."""
    predicted = [int(value > cut) for value in signal]
    metrics = accuracy.binary_metrics(truth, predicted)
    return {"decision": name, "cut": round(cut, 4), "n": metrics["n"],
            "balanced_accuracy": round(metrics["balanced_accuracy"], 4),
            "balanced_accuracy_95": bootstrap_balanced_accuracy(truth, predicted),
            "true_positive_rate": round(metrics["true_positive_rate"], 4),
            "true_positive_rate_95": metrics["true_positive_rate_95"],
            "true_negative_rate": round(metrics["true_negative_rate"], 4),
            "true_negative_rate_95": metrics["true_negative_rate_95"],
            "share_said_1": round(metrics["share_predicted_1"], 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--positives", type=int, default=175, help="followed IFEval pairs beside the 135 not followed")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default="seif",
                        help="the judge's chat: the Judger's own, or the same without its worked examples")
    parser.add_argument("--out", help="default bench/results/calibration_<model>[_<prompt>].json")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model, tokenizer = rollout.load(args.model)
    model.eval()
    results = {"model": args.model, "prompt": args.prompt, "machine": accuracy.machine(), "command": " ".join(sys.argv)}

    # IFEval: fit on half A's rule verdicts, measure on half B
    half_a, half_b = ifeval_set(args.positives, args.seed)
    probabilities, seconds = score(model, tokenizer, [(p["response"], p["constraint"]) for p in half_a + half_b],
                                   args.batch_size, PROMPTS[args.prompt])
    p_a, p_b = probabilities[: len(half_a)], probabilities[len(half_a) :]
    cut = calibrated_judge.fit_threshold(p_a, [p["strict"] for p in half_a])
    truth_b = [p["strict"] for p in half_b]
    results["ifeval"] = {
        "pairs": len(half_a) + len(half_b), "half_a": len(half_a), "half_b": len(half_b),
        "not_followed": sum(1 - p["strict"] for p in half_a + half_b),
        "roc_auc_half_b": round(accuracy.roc_auc(truth_b, p_b), 4),
        "seif_cut": measured(truth_b, p_b, 0.5, "P > 0.5 (SEIF's decision)"),
        "calibrated": measured(truth_b, p_b, cut, "P > the cut fitted on half A's rule verdicts"),
        "verdicts_per_s": round((len(half_a) + len(half_b)) / seconds, 3), "passes_per_verdict": 1,
        "wall_s": round(seconds, 1)}
    transfer_cut = calibrated_judge.fit_threshold(probabilities, [p["strict"] for p in half_a + half_b])

    # open-ended: the IFEval cut transferred, a cut fitted on half of its own labels, and PMI
    rows = accuracy.read_jsonl(OPEN_ENDED)
    truth = [row["label"] for row in rows]
    p_open, seconds_open = score(model, tokenizer, [(row["answer"], row["constraint"]) for row in rows],
                                 args.batch_size, PROMPTS[args.prompt])
    order = list(range(len(rows)))
    random.Random(args.seed).shuffle(order)
    tune, held = order[: len(order) // 2], order[len(order) // 2 :]
    own_cut = calibrated_judge.fit_threshold([p_open[i] for i in tune], [truth[i] for i in tune])
    pmi_values, seconds_pmi = pmi(model, tokenizer, rows, args.batch_size)
    median = sorted(pmi_values)[len(pmi_values) // 2]
    results["open_ended"] = {
        "pairs": len(rows), "roc_auc_p1": round(accuracy.roc_auc(truth, p_open), 4),
        "roc_auc_pmi": round(accuracy.roc_auc(truth, pmi_values), 4),
        "seif_cut": measured(truth, p_open, 0.5, "P > 0.5 (SEIF's decision)"),
        "calibrated_transfer": measured(truth, p_open, transfer_cut, "P > the cut fitted on all IFEval rule verdicts"),
        "own_half_cut_held_half": measured([truth[i] for i in held], [p_open[i] for i in held], own_cut,
                                           "P > a cut fitted on the other half's labels (a ceiling, not label-free)"),
        "pmi_median_cut": measured(truth, pmi_values, median, "PMI > the set's median (label-free)"),
        "pmi_zero_cut": measured(truth, pmi_values, 0.0, "PMI > 0 (the pmi_judge departure; label-free)"),
        "verdicts_per_s_p1": round(len(rows) / seconds_open, 3), "verdicts_per_s_pmi": round(len(rows) / seconds_pmi, 3),
        "passes_per_verdict_pmi": 2}
    results["records"] = {"ifeval_p1": [round(p, 5) for p in probabilities],
                          "open_ended_p1": [round(p, 5) for p in p_open],
                          "open_ended_pmi": [round(v, 5) for v in pmi_values]}

    suffix = "" if args.prompt == "seif" else f"_{args.prompt}"
    out = Path(args.out or REPO / "bench" / "results" / f"calibration_{args.model.split('/')[-1]}{suffix}.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"model {args.model}, judge prompt {args.prompt}; {results['machine']}"]
    for name in ("ifeval", "open_ended"):
        section = results[name]
        lines.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in section.items() if not isinstance(v, dict)))
        lines += [f"  {v['decision']}: cut {v['cut']}, balanced accuracy {v['balanced_accuracy']} "
                  f"{v['balanced_accuracy_95']}, TPR {v['true_positive_rate']} {v['true_positive_rate_95']}, "
                  f"TNR {v['true_negative_rate']} {v['true_negative_rate_95']}, said 1 on {v['share_said_1']} (n {v['n']})"
                  for v in section.values() if isinstance(v, dict)]
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
