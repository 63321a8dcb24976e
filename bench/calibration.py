"""Does the frozen helper judge better than chance without labels? SEIF's cut against fitted ones.

The judge's signal is P([[1]]) from one forward pass (beyond_seif/score_judge.py). SEIF's decision
is P > 0.5; the calibrated judge (beyond_seif/calibrated_judge.py) cuts where rule verdicts put
the threshold. Two labelled sets measure it:

  ifeval      GPT-4's IFEval responses (../shared/ifeval), every pair the official scorer says
              is NOT followed plus as many followed ones drawn at random (seed), split at random
              into halves A and B. The cut is fitted on half A's rule verdicts (ifeval_checks run on
              the responses: what the loop's `rules` departure gives for free; runs before stop 31
              fitted on half A's official verdicts, which our rules match on all 310 pairs) and
              measured on half B against the official strict verdicts. Half B is never fitted on.
  open-ended  bench/open_ended_pairs.jsonl: hand-labelled answers to constraints no rule checks
              (tone, audience, persona, content, ...). Measured with the cut fitted on ALL the
              IFEval rule verdicts (how the loop would use it: does the cut transfer?), and, as a
              ceiling, with a cut fitted on one half of this set's labels, measured on the other.
              Also PMI, the label-free likelihood lead of JUDGING.md: (log p(answer | request +
              constraint) - log p(answer | request)) / answer tokens, cut at the set's median
              and at 0 (the pmi_judge departure's verdict).

  ifeval PMI  (--parts ifeval-pmi, or all) PMI on the IFEval pairs. Their prompts already hold the
              constraint, so two requests are tried: the IFEval prompt itself (PMI of saying the
              constraint once more) and a generic one ("Write a response."), under which PMI
              measures how much the constraint alone explains the response's form. For each,
              the cut is fitted on half A's rule verdicts (ifeval_checks run on the responses: the
              rules departure's free labels, not the official verdicts) and measured on half B;
              the request whose PMI ranks half A's rule verdicts best (ROC AUC) is the one chosen.

Every figure comes with its 95% interval (bootstrap for balanced accuracy, Wilson for rates),
the ROC AUC of the signal, and the cost: verdicts per second and forward passes per verdict.

    NLTK_DATA=../shared/nltk_data python bench/calibration.py --model smollm2-135m
    NLTK_DATA=../shared/nltk_data python bench/calibration.py --model qwen2.5-coder-0.5b
    ... --prompt no-examples     # the Judger's prompt without its worked examples
    ... --parts ifeval-pmi       # only PMI on the IFEval pairs

Writes bench/results/calibration_<model>[_<prompt>][_ifeval-pmi].json and .txt.
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
import ifeval_checks  # noqa: E402
import judger  # noqa: E402
import rollout  # noqa: E402
from beyond_seif import calibrated_judge, pmi_judge, score_judge  # noqa: E402

OPEN_ENDED = REPO / "bench" / "open_ended_pairs.jsonl"
GENERIC_REQUEST = "Write a response."
PMI_REQUESTS = {"ifeval prompt": lambda pair: pair["prompt"], "generic": lambda pair: GENERIC_REQUEST}


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


def rule_verdicts(pairs):
    """Each IFEval pair's verdict by our own rule check (what the rules departure gives the loop)."""
    return [int(ifeval_checks.check(p["instruction_id"], p["kwargs"], p["response"], p["prompt"])) for p in pairs]


def ifeval_pmi(model, tokenizer, half_a, half_b, labels_a, batch_size):
    """PMI on the IFEval pairs under each request of PMI_REQUESTS: its cut fitted on half A's rule
    verdicts `labels_a`, measured on half B against the official verdicts; and the request chosen
    on half A."""
    truth_b = [p["strict"] for p in half_b]
    section = {"rules_agree_with_official_half_a": round(
        sum(r == p["strict"] for r, p in zip(labels_a, half_a)) / len(half_a), 4)}
    for name, request in PMI_REQUESTS.items():
        rows = [{"request": request(p), "answer": p["response"], "constraint": p["constraint"]} for p in half_a + half_b]
        values, seconds = pmi(model, tokenizer, rows, batch_size)
        values_a, values_b = values[: len(half_a)], values[len(half_a) :]
        cut = calibrated_judge.fit_threshold(values_a, labels_a, 0.0)
        section[name] = {
            "roc_auc_half_a_rules": round(accuracy.roc_auc(labels_a, values_a), 4),
            "roc_auc_half_b": round(accuracy.roc_auc(truth_b, values_b), 4),
            "zero_cut": measured(truth_b, values_b, 0.0, f"PMI ({name}) > 0"),
            "calibrated": measured(truth_b, values_b, cut, f"PMI ({name}) > the cut fitted on half A's rule verdicts"),
            "verdicts_per_s": round(len(rows) / seconds, 3), "passes_per_verdict": 2,
            "values": [round(v, 5) for v in values]}
    section["chosen_on_half_a"] = max(PMI_REQUESTS, key=lambda name: section[name]["roc_auc_half_a_rules"])
    return section


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


def p1_sections(model, tokenizer, half_a, half_b, labels, args):
    """The LLM's P([[1]]) on IFEval (cut fitted on half A, measured on half B) and on the open-ended
    set (SEIF's cut, the IFEval cut transferred, a ceiling fitted on its own labels), and PMI there.
    labels: the rule verdicts of half A then half B (free labels; the official verdicts only measure)."""
    results = {}
    # IFEval: fit on half A's rule verdicts, measure on half B
    probabilities, seconds = score(model, tokenizer, [(p["response"], p["constraint"]) for p in half_a + half_b],
                                   args.batch_size, PROMPTS[args.prompt])
    p_a, p_b = probabilities[: len(half_a)], probabilities[len(half_a) :]
    cut = calibrated_judge.fit_threshold(p_a, labels[: len(half_a)])
    truth_b = [p["strict"] for p in half_b]
    results["ifeval"] = {
        "pairs": len(half_a) + len(half_b), "half_a": len(half_a), "half_b": len(half_b),
        "not_followed": sum(1 - p["strict"] for p in half_a + half_b),
        "roc_auc_half_b": round(accuracy.roc_auc(truth_b, p_b), 4),
        "seif_cut": measured(truth_b, p_b, 0.5, "P > 0.5 (SEIF's decision)"),
        "calibrated": measured(truth_b, p_b, cut, "P > the cut fitted on half A's rule verdicts"),
        "verdicts_per_s": round((len(half_a) + len(half_b)) / seconds, 3), "passes_per_verdict": 1,
        "wall_s": round(seconds, 1)}
    transfer_cut = calibrated_judge.fit_threshold(probabilities, labels)

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
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--positives", type=int, default=175, help="followed IFEval pairs beside the 135 not followed")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default="seif",
                        help="the judge's chat: the Judger's own, or the same without its worked examples")
    parser.add_argument("--parts", choices=["all", "ifeval-pmi"], default="all",
                        help="ifeval-pmi: only PMI on the IFEval pairs (the rest takes much longer)")
    parser.add_argument("--out", help="default bench/results/calibration_<model>[_<prompt>][_ifeval-pmi].json")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model, tokenizer = rollout.load(args.model)
    model.eval()
    results = {"model": args.model, "prompt": args.prompt, "machine": accuracy.machine(), "command": " ".join(sys.argv)}

    half_a, half_b = ifeval_set(args.positives, args.seed)
    labels = rule_verdicts(half_a + half_b)
    if args.parts == "all":
        results.update(p1_sections(model, tokenizer, half_a, half_b, labels, args))
    results["ifeval_pmi"] = ifeval_pmi(model, tokenizer, half_a, half_b, labels[: len(half_a)], args.batch_size)

    suffix = ("" if args.prompt == "seif" else f"_{args.prompt}") + ("" if args.parts == "all" else f"_{args.parts}")
    out = Path(args.out or REPO / "bench" / "results" / f"calibration_{args.model.split('/')[-1]}{suffix}.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"model {args.model}, judge prompt {args.prompt}; {results['machine']}"]
    sections = [(name, results[name]) for name in ("ifeval", "open_ended") if name in results]
    sections += [(f"ifeval PMI, request: {name}", results["ifeval_pmi"][name]) for name in PMI_REQUESTS]
    for name, section in sections:
        lines.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in section.items() if not isinstance(v, (dict, list))))
        lines += [f"  {v['decision']}: cut {v['cut']}, balanced accuracy {v['balanced_accuracy']} "
                  f"{v['balanced_accuracy_95']}, TPR {v['true_positive_rate']} {v['true_positive_rate_95']}, "
                  f"TNR {v['true_negative_rate']} {v['true_negative_rate_95']}, said 1 on {v['share_said_1']} (n {v['n']})"
                  for v in section.values() if isinstance(v, dict)]
    lines.append(f"ifeval PMI: request chosen on half A {results['ifeval_pmi']['chosen_on_half_a']}; our rules agree "
                 f"with the official verdicts on {results['ifeval_pmi']['rules_agree_with_official_half_a']} of half A")
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
