"""How often the Judger and the Filter are right, against labelled verdicts.

Every SEIF reward comes from the Judger, and the Filter decides which instructions are trained
on, so a loop is only as good as these two frozen roles. This script measures them.

Judger: the GPT-4 responses published with IFEval (../shared/ifeval/: 540 prompts, 832
response-instruction pairs), each with the official scorer's per-instruction verdict (strict,
and loose reported beside it). Each instruction id + kwargs becomes one sentence with
`ifeval_checks.describe`, and the Judger judges the response against it with the LLM only
(`rules=False`, as SEIF), in score and/or generate mode. Two pairs are left out: IFEval rows 1122
and 1129 ask for the letter '#' or '!', which its checker replaces with a letter drawn at random,
so neither the official verdict nor our sentence is about the letter the prompt named.

Filter: bench/filter_sets.jsonl, hand-written seed instructions with constraint sets labelled
satisfiable (1) or contradictory (0). The LLM check sees the texts only (no ifeval_id, so the
deterministic contradiction check cannot fire); the deterministic check alone is reported
separately, on the rows that carry IFEval ids.

Positive = 1 = "satisfied" (Judger) or "no conflict, keep" (Filter). Balanced accuracy is the mean
of the true-positive and true-negative rates, so a judge that always says 1 gets 0.5 however
skewed the labels are (IFEval's GPT-4 responses follow 84% of their instructions).

    python bench/accuracy.py --model smollm2-135m      # score: all pairs; generate: 80; Filter: all

bench/results/accuracy_*.json came from these (2-core CPU shared with other jobs, no GPU):
    nice -n 19 python bench/accuracy.py --model smollm2-135m --modes score --limit 200
    nice -n 19 python bench/accuracy.py --model smollm2-135m --modes generate --generate-limit 16
    nice -n 19 python bench/accuracy.py --model smollm2-135m --modes filter
    python bench/accuracy.py --model smollm2-135m --modes filter-checks   # no model: the cheap checks
    nice -n 19 python bench/accuracy.py --model qwen2.5-coder-0.5b --modes score --limit 40
    python bench/accuracy.py --model qwen2.5-coder-0.5b --modes generate --generate-limit 64  # CPU alone
    nice -n 19 python bench/accuracy.py --model qwen2.5-coder-0.5b --modes filter --filter-limit 16 \
        --batch-size 8
    python bench/accuracy.py --model qwen2.5-coder-0.5b --modes filter-score --batch-size 8   # P([[1]]), 68 sets
    python bench/accuracy.py --model smollm2-135m --modes filter-score --batch-size 8

Results merge into --out (default bench/results/accuracy_<model>.json, one entry per mode, so
several invocations fill one file) and a text summary next to it (.txt).
"""

import argparse
import json
import math
import os
import platform
import random
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import filter as filter_role  # noqa: E402  (the module name shadows the builtin)
import ifeval_checks  # noqa: E402
import judger  # noqa: E402
from settings import BeyondSEIF  # noqa: E402
import rollout  # noqa: E402

IFEVAL_DIR = REPO.parent / "shared" / "ifeval"
FILTER_SETS = REPO / "bench" / "filter_sets.jsonl"
RANDOM_LETTER_KEYS = {1122, 1129}  # letter_frequency rows whose letter IFEval redraws at random


# -----------------------------------------------------------------------------
# Metrics: truth and predictions are lists of 0/1


def binary_metrics(truth, predicted):
    """Accuracy, balanced accuracy, the confusion matrix and the share of 1s.

    A rate with no cases to measure (no true positives or negatives in the set) is None, and so
    is the balanced accuracy built from it.
    """
    if len(truth) != len(predicted) or not truth:
        raise ValueError("need the same non-zero number of labels and predictions")
    tp = sum(t == 1 and p == 1 for t, p in zip(truth, predicted))
    fn = sum(t == 1 and p == 0 for t, p in zip(truth, predicted))
    fp = sum(t == 0 and p == 1 for t, p in zip(truth, predicted))
    tn = sum(t == 0 and p == 0 for t, p in zip(truth, predicted))
    tpr = tp / (tp + fn) if tp + fn else None
    tnr = tn / (tn + fp) if tn + fp else None
    n = len(truth)
    return {
        "n": n,
        "accuracy": (tp + tn) / n,
        "balanced_accuracy": (tpr + tnr) / 2 if tpr is not None and tnr is not None else None,
        "true_positive_rate": tpr,
        "true_negative_rate": tnr,
        "confusion": {"tp": tp, "fn": fn, "fp": fp, "tn": tn},
        "share_predicted_1": (tp + fp) / n,
        "share_true_1": (tp + fn) / n,
        # 95% Wilson intervals: how far the rates could move on another sample of this size
        "accuracy_95": wilson_interval(tp + tn, n),
        "true_positive_rate_95": wilson_interval(tp, tp + fn),
        "true_negative_rate_95": wilson_interval(tn, tn + fp),
    }


def wilson_interval(successes, trials, z=1.96):
    """The Wilson score interval for a proportion (stays inside [0, 1], unlike p +- 2 se)."""
    if trials == 0:
        return None
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2)) / (1 + z * z / trials)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def roc_auc(truth, scores):
    """P(score of a random positive > score of a random negative), ties counting half: how well
    P([[1]]) ranks the pairs whatever threshold is used. None without both classes."""
    positives = [s for t, s in zip(truth, scores) if t == 1]
    negatives = [s for t, s in zip(truth, scores) if t == 0]
    if not positives or not negatives:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in positives for q in negatives)
    return wins / (len(positives) * len(negatives))


# -----------------------------------------------------------------------------
# The labelled data


def ifeval_pairs():
    """One dict per (GPT-4 response, instruction) with the official strict and loose verdicts."""
    rows = {row["prompt"]: row for row in read_jsonl(IFEVAL_DIR / "input_data.jsonl")}
    strict = read_jsonl(IFEVAL_DIR / "gpt4_official_strict.jsonl")
    loose = read_jsonl(IFEVAL_DIR / "gpt4_official_loose.jsonl")
    pairs = []
    for strict_row, loose_row in zip(strict, loose, strict=True):
        row = rows[strict_row["prompt"]]
        for index, (instruction_id, kwargs) in enumerate(zip(row["instruction_id_list"], row["kwargs"])):
            if row["key"] in RANDOM_LETTER_KEYS and instruction_id == "keywords:letter_frequency":
                continue
            pairs.append({
                "key": row["key"], "instruction_id": instruction_id, "kwargs": kwargs, "prompt": row["prompt"],
                "constraint": ifeval_checks.describe(instruction_id, kwargs),
                "response": strict_row["response"],
                "strict": int(strict_row["follow_instruction_list"][index]),
                "loose": int(loose_row["follow_instruction_list"][index]),
            })
    return pairs


def stratified_sample(items, limit, label, seed=0):
    """`limit` items drawn with a fixed seed, keeping the share of each label as in `items`.
    limit 0 or >= len(items): all of them."""
    if not limit or limit >= len(items):
        return list(items)
    rng = random.Random(seed)
    by_label = {}
    for item in items:
        by_label.setdefault(item[label], []).append(item)
    chosen = []
    for value, group in sorted(by_label.items()):
        rng.shuffle(group)
        chosen += group[: round(limit * len(group) / len(items))]
    return chosen


def read_jsonl(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


# -----------------------------------------------------------------------------
# Runs. Each returns a JSON-ready dict: settings, metrics, timing and every item's verdict.

@contextmanager
def recorded_texts():
    """Inside the block, every rollout.generate call (the Judger's and the Filter's generate
    mode go through it) adds its decoded texts to the list this yields."""
    texts, original = [], rollout.generate
    def recording(*args, **kwargs):
        rollouts = original(*args, **kwargs)
        texts.extend(rollouts.texts)
        return rollouts
    rollout.generate = recording
    try:
        yield texts
    finally:
        rollout.generate = original


def in_batches(items, batch_size, work, desc):
    """Run `work` on consecutive batches, printing progress; returns (results, wall seconds)."""
    results, start = [], time.time()
    for first in range(0, len(items), batch_size):
        results += work(items[first : first + batch_size])
        elapsed = time.time() - start
        print(f"  {desc}: {len(results)}/{len(items)} in {elapsed:.0f} s "
              f"({len(results) / elapsed:.3f}/s)", flush=True)
    return results, time.time() - start


def run_judge(model, tokenizer, pairs, mode, args):
    # Longest first and in length order, so a batch pads little and a memory problem shows early.
    pairs = sorted(pairs, key=lambda pair: -len(pair["response"]))
    responses = [cap(pair["response"], args.max_response_chars) for pair in pairs]
    cfg = judger.JudgerConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    departures = BeyondSEIF(score_judge=mode == "score", score_reward="probability")  # the LLM alone
    items = [(response, {"text": pair["constraint"]}) for response, pair in zip(responses, pairs)]
    with recorded_texts() as written_texts:
        outputs, seconds = in_batches(items, args.batch_size,
                                      lambda batch: judger.judge(model, tokenizer, batch, cfg, departures), mode)
    # score mode returns P([[1]]); the Judger's decision is P > 0.5 (score_reward "decision")
    verdicts = [int(output > 0.5) for output in outputs]
    records = [{"key": pair["key"], "instruction_id": pair["instruction_id"],
                "constraint": pair["constraint"], "strict": pair["strict"], "loose": pair["loose"],
                "verdict": verdict} for pair, verdict in zip(pairs, verdicts)]
    for record, output in zip(records, outputs):
        if mode == "score":
            record["p1"] = round(output, 4)
    for record, text in zip(records, written_texts):  # generate mode only; every pair is non-empty
        record["judge_text"] = text
    result = {
        "settings": {"mode": mode, "rules": False, "batch_size": args.batch_size,
                     **({"max_new_tokens": args.max_new_tokens} if mode == "generate" else {}),
                     "max_response_chars": args.max_response_chars or None,
                     "responses_cut": sum(r != p["response"] for r, p in zip(responses, pairs))},
        "strict": binary_metrics([p["strict"] for p in pairs], verdicts),
        "loose": binary_metrics([p["loose"] for p in pairs], verdicts),
        "by_instruction": by_instruction(records),
        **no_verdict(written_texts),
        "wall_s": round(seconds, 1),
        "verdicts_per_s": round(len(pairs) / seconds, 3),
    }
    if mode == "score":
        result["strict"]["roc_auc"] = roc_auc([p["strict"] for p in pairs], outputs)
    result["records"] = records
    return result


def cap(text, max_chars):
    return text[:max_chars] if max_chars else text


def no_verdict(texts):
    """Generate mode: how many replies hold no [[d]] at all (cut off or off format); each counts as 0."""
    if not texts:
        return {}
    return {"no_verdict": sum(not re.search(r"\[\[\s*\d+\s*\]\]", text) for text in texts)}


def by_instruction(records):
    """Per IFEval instruction type: pairs, officially followed, judged followed, agreement."""
    table = {}
    for record in records:
        row = table.setdefault(record["instruction_id"], {"n": 0, "followed": 0, "judged_1": 0, "agree": 0})
        row["n"] += 1
        row["followed"] += record["strict"]
        row["judged_1"] += record["verdict"]
        row["agree"] += record["strict"] == record["verdict"]
    return dict(sorted(table.items()))


def run_filter(model, tokenizer, rows, args):
    cfg = filter_role.FilterConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    # the LLM alone, as SEIF's Filter (no cheap checks)
    work = lambda batch: filter_role.filter_sets(  # noqa: E731
        model, tokenizer, [[{"text": c["text"]} for c in row["constraints"]] for row in batch], cfg,
        seeds=[row["seed"] for row in batch])[0]
    with recorded_texts() as written_texts:
        keep, seconds = in_batches(rows, args.batch_size, work, "filter")
    verdicts = [int(kept) for kept in keep]
    records = [{"id": row["id"], "kind": row["kind"], "label": row["label"], "verdict": verdict}
               for row, verdict in zip(rows, verdicts)]
    for record, text in zip(records, written_texts):
        record["filter_text"] = text
    return {
        "settings": {"mode": "generate", "max_new_tokens": args.max_new_tokens,
                     "batch_size": args.batch_size, "sets": str(FILTER_SETS.relative_to(REPO))},
        "labels": binary_metrics([row["label"] for row in rows], verdicts),
        "by_kind": {kind: binary_metrics([r["label"] for r in records if r["kind"] == kind],
                                         [r["verdict"] for r in records if r["kind"] == kind])
                    for kind in sorted({row["kind"] for row in rows})},
        **no_verdict(written_texts),
        "wall_s": round(seconds, 1),
        "verdicts_per_s": round(len(rows) / seconds, 3),
        "records": records,
    }


def run_filter_score(model, tokenizer, rows, args):
    """The Filter's prompt read in one forward pass: P([[1]]) ("no conflict") as the score judge
    reads the Judger's, verdict P > 0.5. Its ROC AUC says whether any cut (a calibrated one, say)
    could make a self-judge of the Filter."""
    from beyond_seif import score_judge
    chats = [filter_role.conflict_messages(row["seed"], [c["text"] for c in row["constraints"]]) for row in rows]
    probabilities, seconds = in_batches(
        chats, args.batch_size, lambda batch: score_judge.llm_score(model, tokenizer, batch, args.batch_size), "filter")
    labels, verdicts = [row["label"] for row in rows], [int(p > 0.5) for p in probabilities]
    return {
        "settings": {"mode": "score: P([[1]]) > 0.5", "batch_size": args.batch_size,
                     "sets": str(FILTER_SETS.relative_to(REPO))},
        "labels": {**binary_metrics(labels, verdicts), "roc_auc": roc_auc(labels, probabilities)},
        "by_kind": {kind: binary_metrics([r["label"] for r in rows if r["kind"] == kind],
                                         [v for r, v in zip(rows, verdicts) if r["kind"] == kind])
                    for kind in sorted({row["kind"] for row in rows})},
        "wall_s": round(seconds, 1),
        "verdicts_per_s": round(len(rows) / seconds, 3),
        "records": [{"id": row["id"], "kind": row["kind"], "label": row["label"], "p1": round(p, 4)}
                    for row, p in zip(rows, probabilities)],
    }


def run_filter_as_demo(rows):
    """The Filter as the demo preset runs it, on every set: the cheap checks with each
    constraint's IFEval id where it has one, no LLM (filter.llm=False), so a set with no
    rule-level conflict is kept. Rules, not a self-judge: reported beside the LLM's figures."""
    result = filter_checks_only(rows, {"mode": "the demo preset's Filter: cheap checks, no LLM", "rows": "every set"})
    keep = [int(r["reason"] is None) for r in result["records"]]
    result["by_kind"] = {kind: binary_metrics([row["label"] for row in rows if row["kind"] == kind],
                                              [k for row, k in zip(rows, keep) if row["kind"] == kind])
                         for kind in dict.fromkeys(row["kind"] for row in rows)}
    return result


def filter_checks_only(rows, settings):
    """The Filter's cheap checks, no LLM, on `rows`: metrics against their labels and each reason."""
    keep, reasons = filter_role.filter_sets(None, None, [row["constraints"] for row in rows],
                                            filter_role.FilterConfig(llm=False), BeyondSEIF(filter_checks=True))
    return {
        "settings": settings,
        "labels": binary_metrics([row["label"] for row in rows], [int(k) for k in keep]),
        "records": [{"id": row["id"], "label": row["label"], "reason": reason}
                    for row, reason in zip(rows, reasons)],
    }


def run_filter_rules(rows):
    """The deterministic checks alone, on the rows whose every constraint carries an IFEval id."""
    rows = [row for row in rows if all(c.get("ifeval_id") for c in row["constraints"])]
    return filter_checks_only(rows, {"mode": "deterministic checks only", "rows": "every constraint has an ifeval_id"})


# -----------------------------------------------------------------------------
# Report


def summary_lines(results):
    lines = [f"model {results['model']}; machine: {results['machine']}"]
    for name, run in results["runs"].items():
        lines.append("")
        lines.append(f"{name}: {json.dumps(run['settings'])}")
        for truth in ("strict", "loose", "labels"):
            if truth in run:
                lines += metric_lines(truth, run[truth])
        if "no_verdict" in run:
            lines.append(f"  replies with no [[d]] verdict (counted as 0): {run['no_verdict']}")
        if "wall_s" in run:
            lines.append(f"  wall {run['wall_s']} s, {run['verdicts_per_s']} verdicts/s")
        for kind, metrics in run.get("by_kind", {}).items():
            lines.append(f"  {kind:<14} n {metrics['n']:>3}  accuracy {metrics['accuracy']:.3f}  "
                         f"said 1 {metrics['share_predicted_1']:.2f}")
    return lines


def metric_lines(truth, m):
    balanced = "n/a" if m["balanced_accuracy"] is None else f"{m['balanced_accuracy']:.3f}"
    rates = ", ".join(f"{name} {m[key]:.3f} {m[key + '_95']}" for name, key in
                      (("TPR", "true_positive_rate"), ("TNR", "true_negative_rate"))
                      if m[key] is not None)
    c = m["confusion"]
    auc = f", ROC AUC of P(1) {m['roc_auc']:.3f}" if m.get("roc_auc") is not None else ""
    return [
        f"  vs {truth}: n {m['n']}, accuracy {m['accuracy']:.3f} {m['accuracy_95']}, "
        f"balanced accuracy {balanced}{auc}",
        f"    {rates}; said 1 on {m['share_predicted_1']:.3f} (truth 1 on {m['share_true_1']:.3f})",
        f"    confusion (rows truth 1/0, columns verdict 1/0): [[{c['tp']}, {c['fn']}], [{c['fp']}, {c['tn']}]]",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--modes", nargs="+", default=["score", "generate", "filter"],
                        choices=["score", "generate", "filter", "filter-score", "filter-checks"],
                        help="filter-checks: the Filter's cheap checks alone, no model (also run by filter)")
    parser.add_argument("--limit", type=int, default=0,
                        help="score mode: pairs to sample, stratified by the official verdict (0 = all)")
    parser.add_argument("--generate-limit", type=int, default=80, help="generate mode: pairs to sample")
    parser.add_argument("--filter-limit", type=int, default=0,
                        help="Filter: sets to sample, stratified by label (0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="the samples' seed")
    parser.add_argument("--max-new-tokens", type=int, default=128,
                        help="generate mode and Filter: analysis budget (Judger/Filter default 256)")
    parser.add_argument("--max-response-chars", type=int, default=0,
                        help="cut GPT-4 responses to this many characters (0 = never; reported)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", help="JSON results (default bench/results/accuracy_<model>.json)")
    args = parser.parse_args()
    out = Path(args.out or REPO / "bench" / "results" / f"accuracy_{args.model}.json")
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    results.update(model=args.model, machine=machine())

    torch.manual_seed(0)
    model, tokenizer = rollout.load(args.model) if set(args.modes) - {"filter-checks"} else (None, None)
    pairs = ifeval_pairs()
    for mode in args.modes:
        print(f"{mode} ...", flush=True)
        load = os.getloadavg()[0]  # verdicts/s depend on what else the machine runs
        if mode == "filter-checks":
            all_rows = read_jsonl(FILTER_SETS)
        elif mode in ("filter", "filter-score"):
            all_rows = read_jsonl(FILTER_SETS)
            filter_rows = stratified_sample(all_rows, args.filter_limit, "label", args.seed)
            run_mode = run_filter if mode == "filter" else run_filter_score
            name, run = mode.replace("-", "_"), run_mode(model, tokenizer, filter_rows, args)
            run["settings"]["sample"] = (f"{len(filter_rows)} of {len(all_rows)} sets, stratified by "
                                         f"label, seed {args.seed}")
        else:
            limit = args.limit if mode == "score" else args.generate_limit
            sample = stratified_sample(pairs, limit, "strict", args.seed)
            name, run = f"judge_{mode}", run_judge(model, tokenizer, sample, mode, args)
            run["settings"]["sample"] = (f"{len(sample)} of {len(pairs)} pairs, stratified by the "
                                         f"official strict verdict, seed {args.seed}")
        if mode != "filter-checks":
            run["settings"]["load_average_at_start"] = round(load, 1)
            results["runs"][name] = run
        if mode in ("filter", "filter-score", "filter-checks"):
            results["runs"]["filter_rules_only"] = run_filter_rules(all_rows)
            results["runs"]["filter_demo_preset"] = run_filter_as_demo(all_rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")  # after every mode: a crash keeps the rest
        lines = summary_lines(results)
        out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.machine())
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {device}"


if __name__ == "__main__":
    main()
