"""Rollout speed: batched with a shared prefill, batched without, and one sample at a time.

All three sample the same prompts with the same settings through rollout.generate:
  "batched, shared prefill"  all prompts x G samples in one generate call, each prompt's prefill
                             run once and its KV cache copied to its G samples (the default)
  "batched"                  the same call with share_prompts=False: every sample prefills
  "one at a time"            one generate call per sample
Each runs twice, interleaved, and the faster run counts. Reported in completion tokens per
second, for G = 5 and G = 8, on two prompt sets: the Follower's (a seed instruction, short)
and the Instructor's (the seed inside the constraint-writing template, about 4x longer).

    python bench/rollout.py                      # SmolLM2-135M (the offline demo model), CPU
    python bench/rollout.py --model Qwen/Qwen2.5-0.5B-Instruct --prompts 8 --max-new-tokens 256
"""

import argparse
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

WAYS = ("batched, shared prefill", "batched", "one at a time")


def tokens_per_second(model, tokenizer, chats, group_size, max_new_tokens, way):
    start = time.time()
    if way == "one at a time":
        masks = [rollout.generate(model, tokenizer, [chat], max_new_tokens=max_new_tokens).completion_mask
                 for chat in chats for _ in range(group_size)]
    else:
        masks = [rollout.generate(model, tokenizer, chats, group_size=group_size, max_new_tokens=max_new_tokens,
                                  batch_size=len(chats) * group_size,
                                  share_prompts=way == "batched, shared prefill").completion_mask]
    tokens = sum(int(mask.sum()) for mask in masks)
    return tokens / (time.time() - start)


def prompt_sets(seeds):
    items = instructor.training_items(seeds, instructor.InstructorConfig(), random.Random(0))
    return {"follower": [reply_format.messages(seed) for seed in seeds],
            "instructor": [item["messages"] for item in items]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    model, tokenizer = rollout.load(args.model)
    seeds = read_prompts(default_seeds_path())[: args.prompts]
    print(f"model {args.model}, device {model.device}, {args.prompts} prompts, "
          f"max_new_tokens {args.max_new_tokens}, torch threads {torch.get_num_threads()}")
    for name, chats in prompt_sets(seeds).items():
        lengths = [len(tokenizer(rollout.chat_text(tokenizer, chat)).input_ids) for chat in chats]
        print(f"\n{name} prompts ({min(lengths)}-{max(lengths)} tokens)")
        for group_size in (5, 8):
            best = dict.fromkeys(WAYS, 0.0)
            for _ in range(2):
                for way in WAYS:
                    torch.manual_seed(0)
                    best[way] = max(best[way], tokens_per_second(model, tokenizer, chats, group_size,
                                                                 args.max_new_tokens, way))
            shared, plain, single = (best[way] for way in WAYS)
            print(f"  G={group_size}: " + ", ".join(f"{way} {best[way]:.1f} tok/s" for way in WAYS))
            print(f"         batched vs one at a time {shared / single:.1f}x; shared prefill vs "
                  f"per-sample prefill {shared / plain:.2f}x")


if __name__ == "__main__":
    main()
