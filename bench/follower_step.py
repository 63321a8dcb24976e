"""One Follower GRPO step on a real model with SEIF's defaults, then what the reward paid for.

A reward is only as good as what it pays for. This trains the Follower for one step through
`follower.train` with a preset's settings (by default qwen0.5b: beta 0.01, lr 1e-6, 4 updates
per step, SEIF's strict format, the LLM Judger in generate mode, the echo guard on), shrunk to a
CPU: a few held-out rows (data/heldout.jsonl, or --rows-file), small groups, short replies. Then it prints the
step's metrics, how many replies passed the format gate and the guard, and the highest-reward
samples in full, so that one can read whether they follow their instructions or game the rules.

    NLTK_DATA=../shared/nltk_data python bench/follower_step.py               # Qwen2.5-Coder-0.5B
    python bench/follower_step.py --model smollm2-135m --preset demo --rows 4
    # enough replies, and easy enough requests, for some groups to have a spread of rewards
    NLTK_DATA=../shared/nltk_data python bench/follower_step.py --rows 8 --max-new-tokens 256 \
        --rows-file bench/one_constraint_rows.jsonl --set beyond_seif.answer_gate=false

Writes the step's samples to <out>_samples.jsonl and its metrics to <out>_metrics.jsonl
(default out: runs/follower_step/follower). Takes about 5 minutes on a 2-core CPU for Qwen.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import loop  # noqa: E402
from data import append_jsonl, read_jsonl, run_cli  # noqa: E402
from settings import add_arguments  # noqa: E402
import follower  # noqa: E402
import reply_format  # noqa: E402
from beyond_seif import echo_guard, rules  # noqa: E402

HELDOUT = REPO / "data" / "heldout.jsonl"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-file", default=str(HELDOUT), help="instruction rows (JSONL) to take the rows from")
    parser.add_argument("--rows", type=int, default=4,
                        help="held-out rows, one prompt each; 4 updates per step (SEIF) of rows/4 prompts")
    parser.add_argument("--group-size", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--judge-tokens", type=int, default=256, help="the Judger's generate budget")
    parser.add_argument("--top", type=int, default=4, help="how many of the best samples to print")
    parser.add_argument("--out", default="runs/follower_step/follower")
    add_arguments(parser)  # --preset, --model, --set as in loop.py
    parser.set_defaults(preset="qwen0.5b", model="qwen2.5-coder-0.5b")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    shrink = [f"follower_grpo.group_size={args.group_size}", f"follower_grpo.prompts_per_step={args.rows}",
              f"follower_grpo.prompts_per_update={max(args.rows // 4, 1)}",
              f"follower_grpo.max_new_tokens={args.max_new_tokens}",
              f"follower_grpo.micro_batch_size={args.group_size}", "follower_grpo.gradient_checkpointing=False",
              f"follower_grpo.generation_batch_size={args.rows * args.group_size}",
              f"judger.max_new_tokens={args.judge_tokens}", "loop.follower_steps=1"]
    args.set = shrink + args.set  # the user's own --set last, so they win
    settings = loop.settings_from(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in (Path(f"{out}_samples.jsonl"), Path(f"{out}_metrics.jsonl")):
        stale.unlink(missing_ok=True)  # one step from scratch, not a resumed one
    rows = read_jsonl(args.rows_file)[: args.rows]
    cfg = settings.follower_grpo
    print(f"{args.model}, preset {args.preset}: beta {cfg.beta}, lr {cfg.lr}, "
          f"{cfg.prompts_per_step // cfg.prompts_per_update} updates, strict format "
          f"{not settings.beyond_seif.lenient_follower}, judge score {settings.beyond_seif.score_judge} "
          f"({args.judge_tokens} tokens), echo guard {settings.beyond_seif.echo_guard}")

    def log(row):
        append_jsonl(f"{out}_metrics.jsonl", row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))

    torch.manual_seed(settings.loop.seed)  # the same samples on every run with the same settings
    start = time.time()
    follower.train(settings, settings.loop.model, settings.loop.helper or settings.loop.model, rows,
                   str(out), epochs=1, log=log)
    print(f"step done in {time.time() - start:.0f} s")

    samples = read_jsonl(f"{out}_samples.jsonl")
    by_prompt = {row["instruction"]: row for row in rows}
    passed = [s for s in samples if reply_format.extract_answer(s["completion"]) is not None]
    print(f"{len(samples)} samples, {len(passed)} pass the format gate, "
          f"{sum(s['reward'] > 0 for s in samples)} earn a reward > 0; rewards: "
          f"{sorted(round(s['reward'], 2) for s in samples)}")
    for sample in passed:  # what the guard did with every answer that reached it
        row = by_prompt[sample["prompt"]]
        answer = echo_guard.guarded_answer(reply_format.extract_answer(sample["completion"]), row)
        verdicts = [rules.rule_verdict(c, answer) for c in row["constraints"] if c.get("ifeval_id")]
        print(f"- reward {sample['reward']:.2f}, {len(answer.split())} words after the guard's cuts, "
              f"non-answer rules: {echo_guard.is_non_answer(answer, row['instruction'])} / "
              f"{echo_guard.restates_request(answer, row)}, rule verdicts {verdicts}")
    print("the LLM half of the guard (does it answer the request?) vetoed a share "
          "echo_or_off_topic of these, less what the non-answer rules took (see the metrics row)")
    for sample in sorted(samples, key=lambda s: -s["reward"])[: args.top]:
        print(f"\n=== reward {sample['reward']:.2f}\n--- prompt\n{sample['prompt']}\n--- completion\n"
              f"{sample['completion']}")


if __name__ == "__main__":
    run_cli(main)
