"""Do the helper's verdicts agree with the rules on a loop round's own answers? Before and after calibration.

A loop round's Follower samples (round_<T>/follower_samples.jsonl, with the round's
instructions.jsonl) are the answers the loop really scored. Every one of their constraints that an
IFEval rule checks has an exact verdict, free. This script puts the same (answer, constraint)
pairs to the round's frozen helper (the base model in round 1, F_{T-1} after) as the LLM Judger,
and reports how often each way of deciding agrees with the rule:

  LLM, P > 0.5         before: the judge's P([[1]]) in one forward pass (beyond_seif.score_judge)
                       and SEIF's decision on it, the verdict the loop's LLM-judged rewards use
  LLM, generated       (--generate N, N pairs drawn at random) SEIF's own Judger: an analysis,
                       then the verdict; a reply without one counts 0, as in SEIF
  calibrated cut       after (beyond_seif.calibrated_judge): P([[1]]) cut where rule verdicts put
                       it. 2-fold: the round's instructions split at random into halves; the cut
                       fitted on one half's rule verdicts is measured on the other half's pairs,
                       so no pair is judged with a cut fitted on its own verdict
  PMI > 0              beyond_seif.pmi_judge: no question asked, the constraint is met when it
                       makes the answer likelier given the seed request
  PMI > calibrated cut the same PMI, cut where the other half's rule verdicts put it (2-fold as above)
  PMI > per-step cut   pmi_judge with calibrated_judge as the loop runs them: the cut fitted on the
                       rule verdicts of the same Follower step (one judged batch), leaving out the
                       pair's own instruction; PMI's zero where too few are left. With --limit the
                       batches are thinner than the loop's.

Per decision: agreement with the rule (share of pairs, Wilson 95%), balanced accuracy (bootstrap
95%), the share said 1, and at reward level the share of samples whose reward (the mean verdict
over their rule-checked constraints) equals the rules' reward. Per signal: ROC AUC. The cost:
verdicts per second and forward passes per verdict. Identical (answer, constraint) pairs are
judged once.

    python loop.py --preset demo --set loop.model=qwen2.5-coder-0.5b ... --name agreement_qwen
    NLTK_DATA=../shared/nltk_data python bench/judge_agreement.py --run runs/agreement_qwen --round 1

Writes bench/results/judge_agreement_<run name>_round<T>.json and .txt (or --out).
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
import accuracy  # noqa: E402  (metrics and intervals)
import calibration  # noqa: E402  (bootstrap interval, the P([[1]]) scorer)
import judger  # noqa: E402
import reply_format  # noqa: E402
import rollout  # noqa: E402
from beyond_seif import calibrated_judge, pmi_judge, rules  # noqa: E402
from data import UserError, read_jsonl, run_cli  # noqa: E402


def helper_path(run_dir, settings, round_index):
    """The round's frozen helper, as loop.run picks it."""
    if settings["loop"].get("helper"):
        return settings["loop"]["helper"]
    if round_index == 1:
        return settings["loop"]["model"]
    return str(run_dir / f"round_{round_index - 1}" / "follower")


def round_pairs(run_dir, round_index):
    """The round's rule-checkable pairs from its Follower samples: dicts with the answer (as the
    loop judged it), the constraint, the seed request, the instruction, the rule verdict and the
    samples (indices) it came from. Also returns the run's settings."""
    round_dir = run_dir / f"round_{round_index}"
    settings_path = run_dir / "settings.json"
    for path in (settings_path, round_dir / "instructions.jsonl", round_dir / "follower_samples.jsonl"):
        if not path.is_file():
            raise UserError(f"{path}: not found; --run must be a loop run folder whose round {round_index} "
                            "trained a Follower")
    settings = json.loads(settings_path.read_text())
    rows = {row["instruction"]: row for row in read_jsonl(round_dir / "instructions.jsonl")}
    samples = read_jsonl(round_dir / "follower_samples.jsonl")
    texts = [sample["completion"] for sample in samples]
    answers = [reply_format.extract_answer(text) for text in texts]
    if settings.get("beyond_seif", {}).get("lenient_follower"):
        from beyond_seif import demo_prompt
        answers = demo_prompt.follower_answers(texts)
    pairs = {}
    for index, (sample, answer) in enumerate(zip(samples, answers)):
        row = rows.get(sample["prompt"])
        if row is None:
            raise UserError(f"{round_dir / 'follower_samples.jsonl'}: sample {index + 1}'s prompt is not an "
                            f"instruction of {round_dir / 'instructions.jsonl'}")
        answer = None if answer is None else reply_format.strip_think(answer)
        if not answer or not answer.strip():
            continue  # no answer: the loop gives 0 without asking anyone
        for constraint in row["constraints"]:
            if not constraint.get("ifeval_id"):
                continue
            key = (answer, constraint["text"], constraint["ifeval_id"], json.dumps(constraint.get("kwargs"), sort_keys=True))
            if key not in pairs:
                pairs[key] = {"answer": answer, "constraint": constraint["text"], "seed": row.get("seed") or row["instruction"],
                              "instruction": row["instruction"], "rule": int(rules.rule_verdict(constraint, answer)),
                              "samples": [], "step": sample.get("step")}
            pairs[key]["samples"].append(index)
    return list(pairs.values()), settings


def two_fold_verdicts(pairs, probabilities, seed):
    """signal > a cut fitted on the other half of the round's instructions' rule verdicts (the
    signal: P([[1]]) or PMI). Returns (verdicts, the two cuts)."""
    instructions = sorted({pair["instruction"] for pair in pairs})
    random.Random(seed).shuffle(instructions)
    half = set(instructions[: len(instructions) // 2])
    folds = [[i for i, pair in enumerate(pairs) if (pair["instruction"] in half) == side] for side in (True, False)]
    verdicts, cuts = [0] * len(pairs), []
    for fitted, measured in (folds, folds[::-1]):
        cut = calibrated_judge.fit_threshold([probabilities[i] for i in fitted], [pairs[i]["rule"] for i in fitted])
        cuts.append(round(cut, 4))
        for i in measured:
            verdicts[i] = int(probabilities[i] > cut)
    return verdicts, cuts


def per_step_verdicts(pairs, values):
    """signal > a cut fitted as the departures fit it, on one Follower step's rule verdicts (the
    batch the loop judges at once), leaving out the pair's own instruction. Where no cut can be
    fitted (too few of a verdict left, or none beats chance) it is PMI's zero. Returns (verdicts, how many pairs had a fitted cut)."""
    verdicts, fitted = [], 0
    for pair, value in zip(pairs, values):
        others = [j for j, other in enumerate(pairs)
                  if other["step"] == pair["step"] and other["instruction"] != pair["instruction"]]
        cut = calibrated_judge.fitted_cut([values[j] for j in others], [pairs[j]["rule"] for j in others])
        fitted += cut is not None
        verdicts.append(int(value > (0.0 if cut is None else cut)))
    return verdicts, fitted


def reward_agreement(pairs, verdicts):
    """The share of samples whose mean verdict over their rule-checked pairs equals the rules'."""
    by_sample = {}
    for pair, verdict in zip(pairs, verdicts):
        for sample in pair["samples"]:
            by_sample.setdefault(sample, []).append((pair["rule"], verdict))
    same = sum(sum(r for r, _ in values) == sum(v for _, v in values) for values in by_sample.values())
    return round(same / len(by_sample), 4) if by_sample else None


def decision(pairs, verdicts, name, **extra):
    """How the verdicts agree with the rule verdicts of the same pairs."""
    truth = [pair["rule"] for pair in pairs]
    agree = sum(t == v for t, v in zip(truth, verdicts))
    result = {"decision": name, "n": len(pairs), "agreement": round(agree / len(pairs), 4),
              "agreement_95": accuracy.wilson_interval(agree, len(pairs)),
              "share_said_1": round(sum(verdicts) / len(verdicts), 4),
              "reward_agreement": reward_agreement(pairs, verdicts), **extra}
    if 0 < sum(truth) < len(truth):
        metrics = accuracy.binary_metrics(truth, verdicts)
        result["balanced_accuracy"] = round(metrics["balanced_accuracy"], 4)
        result["balanced_accuracy_95"] = calibration.bootstrap_balanced_accuracy(truth, verdicts)
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a loop run folder (runs/<name>)")
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument("--model", help="the judge (default: the round's frozen helper, as the loop had it)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many pairs, drawn at random (0: all)")
    parser.add_argument("--generate", type=int, default=0, metavar="N",
                        help="also SEIF's generated verdicts on N pairs drawn at random (slow: up to 256 new tokens each)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="default bench/results/judge_agreement_<run name>_round<T>.json")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    run_dir = Path(args.run)
    pairs, settings = round_pairs(run_dir, args.round)
    if args.limit and len(pairs) > args.limit:
        pairs = random.Random(args.seed).sample(pairs, args.limit)
    if not pairs or len({pair["rule"] for pair in pairs}) < 2:
        raise UserError(f"{run_dir} round {args.round}: {len(pairs)} rule-checked pairs, "
                        f"{sum(p['rule'] for p in pairs)} of them followed; agreement needs both verdicts")
    torch.manual_seed(args.seed)
    model_name = args.model or helper_path(run_dir, settings, args.round)
    model, tokenizer = rollout.load(model_name)
    model.eval()
    truth = [pair["rule"] for pair in pairs]
    results = {"run": str(run_dir), "round": args.round, "judge": model_name, "machine": accuracy.machine(),
               "command": " ".join(sys.argv), "pairs": len(pairs), "rule_followed": sum(truth),
               "samples": len({s for pair in pairs for s in pair["samples"]}),
               "instructions": len({pair["instruction"] for pair in pairs})}

    probabilities, seconds_p1 = calibration.score(model, tokenizer, [(p["answer"], p["constraint"]) for p in pairs],
                                                   args.batch_size)
    start = time.time()
    pmi_values = pmi_judge.pmi(model, tokenizer, [p["seed"] for p in pairs],
                               [(p["answer"], p["constraint"]) for p in pairs], args.batch_size)
    seconds_pmi = time.time() - start
    calibrated, cuts = two_fold_verdicts(pairs, probabilities, args.seed)
    pmi_calibrated, pmi_cuts = two_fold_verdicts(pairs, pmi_values, args.seed)
    pmi_per_step, pmi_fitted = per_step_verdicts(pairs, pmi_values)
    results["roc_auc"] = {"p1": round(accuracy.roc_auc(truth, probabilities), 4),
                          "pmi": round(accuracy.roc_auc(truth, pmi_values), 4)}
    results["decisions"] = [
        decision(pairs, [int(p > 0.5) for p in probabilities], "before: LLM, P([[1]]) > 0.5 (score mode, SEIF's decision)",
                 verdicts_per_s=round(len(pairs) / seconds_p1, 3), passes_per_verdict=1),
        decision(pairs, calibrated, "after: LLM, P([[1]]) > the cut fitted on the other half's rule verdicts",
                 cuts=cuts, verdicts_per_s=round(len(pairs) / seconds_p1, 3), passes_per_verdict=1),
        decision(pairs, [int(v > 0) for v in pmi_values], "after: PMI > 0 (pmi_judge, no question)",
                 verdicts_per_s=round(len(pairs) / seconds_pmi, 3), passes_per_verdict=2),
        decision(pairs, pmi_calibrated, "after: PMI > the cut fitted on the other half's rule verdicts",
                 cuts=pmi_cuts, verdicts_per_s=round(len(pairs) / seconds_pmi, 3), passes_per_verdict=2),
        decision(pairs, pmi_per_step, "after: PMI > the cut fitted on the same step's other instructions "
                 "(pmi_judge + calibrated_judge)", pairs_with_a_fitted_cut=pmi_fitted,
                 verdicts_per_s=round(len(pairs) / seconds_pmi, 3), passes_per_verdict=2),
    ]
    if args.generate:
        chosen = random.Random(args.seed + 1).sample(range(len(pairs)), min(args.generate, len(pairs)))
        start = time.time()
        generated = judger.llm_verdicts(model, tokenizer, [(pairs[i]["answer"], pairs[i]["constraint"]) for i in chosen],
                                        judger.JudgerConfig(batch_size=args.batch_size))
        seconds = time.time() - start
        subset = [pairs[i] for i in chosen]
        results["decisions"].append(decision(subset, [int(v) for v in generated], "before: LLM, generated (SEIF's Judger)",
                                             verdicts_per_s=round(len(chosen) / seconds, 3)))
        results["decisions"].append(decision(subset, [int(probabilities[i] > 0.5) for i in chosen],
                                             "  the same pairs, P([[1]]) > 0.5"))
        results["decisions"].append(decision(subset, [calibrated[i] for i in chosen], "  the same pairs, calibrated cut"))
    results["records"] = [{"rule": p["rule"], "p1": round(prob, 5), "pmi": round(value, 5), "constraint": p["constraint"],
                           "instruction": p["instruction"], "step": p["step"]}
                          for p, prob, value in zip(pairs, probabilities, pmi_values)]

    out = Path(args.out or REPO / "bench" / "results" / f"judge_agreement_{run_dir.name}_round{args.round}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"{run_dir} round {args.round}, judge {model_name}; {results['machine']}",
             f"{results['pairs']} rule-checked pairs ({results['rule_followed']} followed by the rule) from "
             f"{results['samples']} samples of {results['instructions']} instructions; ROC AUC of P([[1]]) "
             f"{results['roc_auc']['p1']}, of PMI {results['roc_auc']['pmi']}"]
    for d in results["decisions"]:
        extra = ", ".join(f"{k} {d[k]}" for k in ("cuts", "pairs_with_a_fitted_cut", "verdicts_per_s",
                                                   "passes_per_verdict") if k in d)
        lines.append(f"{d['decision']}: agreement {d['agreement']} {d['agreement_95']}, balanced accuracy "
                     f"{d.get('balanced_accuracy')} {d.get('balanced_accuracy_95')}, said 1 on {d['share_said_1']}, "
                     f"reward agreement {d['reward_agreement']} (n {d['n']}){'; ' + extra if extra else ''}")
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    run_cli(main)
