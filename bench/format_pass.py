"""How often a model passes SEIF's format gate before any training, at SEIF's temperatures.

Both trained roles earn 0 unless the reply is `<think> ... </think><answer> ... </answer>`; the
Instructor's answer must also be a JSON object of constraint strings. A base model that never
passes gets no learning signal at all, so this is the first number to know about a model.

    Follower     a seed instruction with the Follower's system prompt, T = 1.0 (GRPO rollouts)
    Instructor   a seed in one of the two constraint-writing templates, T = 1.0 (GRPO rollouts)
                 and T = 0.7 (generating the round's instructions)

For each it prints the share of replies that pass the gate (and, for the Instructor, that
parse into the asked number of constraints), the share cut off by the token budget, and one
passing and one failing reply.

    python bench/format_pass.py --model qwen2.5-coder-0.5b --prompts 16
    python bench/format_pass.py --model smollm2-135m
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import instructor  # noqa: E402
import rollout  # noqa: E402
from data import default_seeds_path, read_prompts  # noqa: E402
import reply_format  # noqa: E402


def measure(model, tokenizer, chats, temperature, max_new_tokens, passes):
    """Sample one reply per chat; returns a dict of shares and two example replies."""
    start = time.time()
    rollouts = rollout.generate(model, tokenizer, chats, temperature=temperature,
                                max_new_tokens=max_new_tokens, batch_size=len(chats))
    seconds = time.time() - start
    lengths = rollouts.completion_mask.sum(dim=1)
    eos_ids = torch.tensor(rollout.eos_token_ids(model, tokenizer))
    ended = torch.isin(rollouts.completion_ids, eos_ids).any(dim=1)
    results = [passes(index, text) for index, text in enumerate(rollouts.texts)]
    return {
        "pass": sum(results) / len(results),
        "cut_off": 1 - ended.float().mean().item(),
        "mean_tokens": lengths.float().mean().item(),
        "seconds": round(seconds, 1),
        "passing_example": next((t for t, ok in zip(rollouts.texts, results) if ok), None),
        "failing_example": next((t for t, ok in zip(rollouts.texts, results) if not ok), None),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--follower-tokens", type=int, default=384)
    parser.add_argument("--instructor-tokens", type=int, default=512)
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tokenizer = rollout.load(args.model)
    seeds = read_prompts(default_seeds_path())[: args.prompts]
    items = instructor.training_items(seeds, instructor.InstructorConfig(), random.Random(0))

    def instructor_passes(index, text):  # the format gate, JSON, and the asked number of constraints
        parsed = instructor.parse_constraints(text)
        return parsed is not None and len(parsed) == items[index]["expected_count"]

    results = {"model": args.model, "prompts": len(seeds), "device": str(model.device)}
    results["follower T=1.0"] = measure(model, tokenizer, [reply_format.messages(s) for s in seeds], 1.0,
                                        args.follower_tokens, lambda _, text: reply_format.extract_answer(text) is not None)
    for temperature in (1.0, 0.7):
        results[f"instructor T={temperature}"] = measure(
            model, tokenizer, [item["messages"] for item in items], temperature, args.instructor_tokens,
            instructor_passes)
    print(json.dumps(results, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
