"""What the Follower's reward pays for each kind of answer in bench/hacks.jsonl, with and without
the answer gate (beyond_seif/answer_gate.py), the markup guard (beyond_seif/markup_guard.py) and
the stuffing guard (beyond_seif/stuffing_guard.py).

Every answer goes through the real reward function, `follower.rewards`, wrapped in SEIF's format
(`<think>...</think><answer>...</answer>`, strict format gate), with the `rules` and `echo_guard`
departures on (every constraint of the set is rule-checked). Two judges decide the LLM verdicts
that are left (the echo guard's "does it answer the request?"): one that says yes to everything,
and the helper itself in score mode (one forward pass per verdict; generate mode is too slow for a
CPU here). The gate's thresholds come from the helper's own answers to the same 48 requests,
sampled once each (no labels). Each judge pays under five settings: neither departure, the
markup guard alone, the gate alone, both, and both with the stuffing guard (the presets'
setting). Reported per kind: the mean reward, and for the genuine answers the share that keeps
full reward. The gate's signals and the helper's verdicts are computed once per answer and reused
by every setting.

    NLTK_DATA=../shared/nltk_data python bench/hacks_reward.py --model smollm2-135m
    NLTK_DATA=../shared/nltk_data python bench/hacks_reward.py --model qwen2.5-coder-0.5b
    # fit the gate again to the helper answers an earlier run sampled (forward passes only)
    ... bench/hacks_reward.py --model qwen2.5-coder-0.5b --gate-from bench/results/hacks_reward_qwen2.5-coder-0.5b.json

Writes bench/results/hacks_reward_<model>.json and .txt.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]
import accuracy  # noqa: E402  (machine description)
import follower  # noqa: E402
import judger  # noqa: E402
import rollout  # noqa: E402
from beyond_seif import answer_gate, echo_guard  # noqa: E402
from data import read_jsonl  # noqa: E402
from settings import BeyondSEIF  # noqa: E402

HACKS = REPO / "bench" / "hacks.jsonl"
SETTINGS = {  # name -> (answer_gate, markup_guard, stuffing_guard)
    "neither": (False, False, False), "markup guard": (False, True, False), "gate": (True, False, False),
    "gate + markup guard": (True, True, False), "gate + markup guard + stuffing guard": (True, True, True)}


def yes_to_everything(model, tokenizer, answer_constraint_texts, cfg, departures=None, missing=0.0):
    return [1.0] * len(answer_constraint_texts)


def looked_up(memory, keys, compute):
    """The value of each of `keys`, computing the ones `memory` lacks in one batch: `compute(new
    keys) -> their values`. The settings and judges ask about overlapping sets of answers."""
    new = list(dict.fromkeys(key for key in keys if key not in memory))
    if new:
        memory.update(zip(new, compute(new)))
    return [memory[key] for key in keys]


def cached(function):
    """`answer_gate.features` computed once per (instruction, answer) pair."""
    memory = {}

    def wrapper(model, tokenizer, rows, answers, batch_size=16):
        keys = [(row["instruction"], answer) for row, answer in zip(rows, answers)]
        row_of = dict(zip(keys, rows))
        return looked_up(memory, keys, lambda new: function(model, tokenizer, [row_of[key] for key in new],
                                                            [answer for _, answer in new], batch_size))
    wrapper.memory = memory
    return wrapper


def cached_verdicts(function):
    """`judger.llm_verdicts` asked once per (answer, constraint text, `missing`): the settings
    differ only in the gate and the guards, which do not change how the judge decides a pair."""
    memory = {}

    def wrapper(model, tokenizer, answer_constraint_texts, cfg, departures=None, missing=0.0):
        keys = [(*pair, missing) for pair in answer_constraint_texts]
        return looked_up(memory, keys, lambda new: function(model, tokenizer, [key[:2] for key in new], cfg,
                                                            departures, missing))
    return wrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quantile", type=float, default=BeyondSEIF.answer_gate_quantile)
    parser.add_argument("--lift-fence", type=float, default=BeyondSEIF.answer_gate_lift_fence)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="the helper's reference answers")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="default bench/results/hacks_reward_<model>.json")
    parser.add_argument("--gate-from", help="fit the gate to the helper's answers that an earlier run of this "
                                            "script sampled for the same model (its json), instead of sampling them again")
    args = parser.parse_args()
    earlier_answers = None
    if args.gate_from:
        try:
            earlier = json.loads(Path(args.gate_from).read_text())
            earlier_answers = earlier["helper_answers"]
            sampled_seconds = float(earlier.get("helper_answers_s", earlier["gate_fit_s"]))
        except (OSError, ValueError, TypeError, KeyError) as err:
            sys.exit(f"--gate-from {args.gate_from}: not a results file of this script with the helper's answers "
                     f"({type(err).__name__}: {err})")
        if earlier.get("model") != args.model:
            sys.exit(f"{args.gate_from} holds answers of {earlier.get('model')!r}, not {args.model!r}")
    torch.manual_seed(args.seed)
    started = time.time()
    model, tokenizer = rollout.load(args.model)
    model.eval()
    rows = read_jsonl(HACKS)
    kinds = list(rows[0]["answers"])
    items = [row for row in rows for _ in kinds]
    texts = [f"<think>I will answer.</think><answer>{row['answers'][kind]}</answer>" for row in rows for kind in kinds]

    start = time.time()
    by_instruction = {row["instruction"]: row for row in rows}
    if earlier_answers:  # stored as (instruction, answer)
        unknown = [instruction for instruction, _ in earlier_answers if instruction not in by_instruction]
        if unknown:
            sys.exit(f"{args.gate_from}: {len(unknown)} helper answers are to requests not in {HACKS}, "
                     f"such as {unknown[0][:60]!r}")
        references = [(by_instruction[instruction], answer) for instruction, answer in earlier_answers]
    else:
        references = answer_gate.helper_answers(model, tokenizer, rows, args.max_new_tokens, args.batch_size)
    if earlier_answers is None:
        sampled_seconds = time.time() - start
    start = time.time()
    gate = answer_gate.fit_to_answers(model, tokenizer, references, args.quantile, args.batch_size, args.lift_fence)
    fit_seconds = time.time() - start
    answer_gate.features = cached(answer_gate.features)
    llm_verdicts = judger.llm_verdicts
    helper_verdicts = cached_verdicts(llm_verdicts)
    cfg = judger.JudgerConfig(batch_size=args.batch_size)
    results = {"model": args.model, "machine": accuracy.machine(), "command": " ".join(sys.argv),
               "requests": len(rows), "gate": gate.__dict__, "quantile": args.quantile, "lift_fence": args.lift_fence,
               "gate_fit_s": round(fit_seconds, 1), "helper_answers_s": round(sampled_seconds, 1),
               "gate_from": args.gate_from, "rewards": {},
               "helper_answers": [(row["instruction"], answer) for row, answer in references]}
    for judge_name in ("yes_to_everything", "helper_score_mode"):
        judger.llm_verdicts = yes_to_everything if judge_name == "yes_to_everything" else helper_verdicts
        for setting, (gate_on, guard_on, stuffing_on) in SETTINGS.items():
            departures = BeyondSEIF(rules=True, echo_guard=True, score_judge=True, answer_gate=gate_on,
                                    markup_guard=guard_on, stuffing_guard=stuffing_on)
            start = time.time()
            rewards, _ = follower.rewards(model, tokenizer, items, texts, cfg, departures, gate)
            per_kind = {kind: [r for r, k in zip(rewards, kinds * len(rows)) if k == kind] for kind in kinds}
            results["rewards"][f"{judge_name}, {setting}"] = {
                "mean_reward": {kind: round(sum(v) / len(v), 3) for kind, v in per_kind.items()},
                "genuine_full_reward_share": round(sum(r == 1.0 for r in per_kind["genuine"]) / len(rows), 3),
                "seconds": round(time.time() - start, 1), "per_answer": rewards}
    judger.llm_verdicts = llm_verdicts
    # the gate's three signals (order, topic, lift) for every answer it scored (the paid ones), by kind
    signals = {pair: tuple(round(value, 3) for value in found) for pair, found in answer_gate.features.memory.items()}
    # keyed by the answer the gate saw: with the echo guard on, what it leaves of the answer
    results["signals"] = {kind: [signals.get((row["instruction"], echo_guard.guarded_answer(row["answers"][kind], row)))
                                 for row in rows] for kind in kinds}
    results["wall_s"] = round(time.time() - started, 1)

    out = Path(args.out or REPO / "bench" / "results" / f"hacks_reward_{args.model.split('/')[-1]}.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"model {args.model}; {results['machine']}; {len(rows)} requests; wall {results['wall_s']} s",
             f"gate from {gate.references} helper answers (quantile {args.quantile}, lift fence {args.lift_fence}): "
             f"order >= {gate.order_min:.3f}, "
             f"topic >= {gate.topic_min:.3f}, lift <= {gate.lift_max:.3f}; the helper's answers took {sampled_seconds:.0f} s, "
             f"the fit {fit_seconds:.0f} s"
             + (f" (answers sampled by the run in {args.gate_from})" if args.gate_from else ""),
             "judge, departures | " + " | ".join(kinds) + " | genuine at full reward"]
    for name, section in results["rewards"].items():
        lines.append(f"{name} | " + " | ".join(f"{section['mean_reward'][k]:.3f}" for k in kinds)
                     + f" | {section['genuine_full_reward_share']:.3f}")
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
