"""Speed and peak memory of full GRPO steps at the qwen0.5b preset's shapes, through the loop's
own code: `grpo.train`, which samples with `rollout.generate` (shared prompt prefill, the bf16
rollout copy on GPU) and trains with `grpo.train_step`, exactly as a Follower stage does.

The model has Qwen2.5-0.5B-Instruct's architecture (24 layers, hidden 896, 14 heads, 2 KV heads,
intermediate 4864, vocab 151,936, tied embeddings) with random weights, so nothing is
downloaded; random weights almost never sample EOS, so every completion runs to max_new_tokens:
the worst case for time and memory. The prompts are the Follower's real chats (its system
prompt and a seed instruction) through the Qwen tokenizer and chat template, which is small and
offline in the Qwen2.5-Coder GGUF (`models.py`; its converted folder is ~/.cache/seif/...).
Rewards are random, so the loss and its gradients are real. The policy is float32 (bf16
autocast on GPU), the reference bf16 on GPU, as `training.load_stage` loads them.

    python bench/memory.py --tokenizer ~/.cache/seif/qwen2.5-coder-0.5b          # GPU, the preset
    python bench/memory.py --rollout-weights policy --max-new-tokens 256          # the old rollout path
    python bench/memory.py --rollout-only --generation-batch-size 320             # generate() alone
    python bench/memory.py --prompts 2 --max-new-tokens 16 --tokenizer ...        # CPU, a quick check

    python bench/memory.py --rollout-only --prompts 32 --max-new-tokens 256 --cudnn-attention
                                                   # PyTorch's default attention kernels, as before

Prints one line per step and, with --json, appends each step's figures to that file. Run
--steps 2: the second step is the steady state.
"""

import argparse
import contextlib
import copy
import json
import random
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import grpo  # noqa: E402
import rollout  # noqa: E402
import training  # noqa: E402
from data import default_seeds_path, read_prompts  # noqa: E402
from presets import PRESETS  # noqa: E402
import reply_format  # noqa: E402
import speedups  # noqa: E402

QWEN25_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                  num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                  rope_theta=1e6, tie_word_embeddings=True, rms_norm_eps=1e-6)


def parse_args():
    preset = PRESETS["qwen0.5b"]["follower_grpo"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default="Qwen/Qwen2.5-0.5B-Instruct",
                        help="a Qwen2.5 tokenizer: hub id or local folder")
    parser.add_argument("--prompts", type=int, default=preset["prompts_per_step"], help="prompts per step")
    parser.add_argument("--max-new-tokens", type=int, default=preset["max_new_tokens"])
    parser.add_argument("--generation-batch-size", type=int, default=preset["generation_batch_size"])
    parser.add_argument("--micro-batch-size", type=int, default=preset["micro_batch_size"])
    parser.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false",
                        default=preset["gradient_checkpointing"])
    parser.add_argument("--rollout-weights", default="auto", choices=["auto", "bf16", "policy"])
    parser.add_argument("--cudnn-attention", action="store_true",
                        help="let PyTorch pick cuDNN attention (its default), as before speedups.attention_kernels")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--rollout-only", action="store_true", help="time rollout.generate alone")
    parser.add_argument("--json", help="append each step's figures to this JSON-lines file")
    return parser.parse_args()


def peak_gib(device):
    """Peak GPU memory allocated by torch; on CPU, the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main():
    args = parse_args()
    accelerator = training.make_accelerator()
    device = accelerator.device
    preset = PRESETS["qwen0.5b"]["follower_grpo"]
    cfg = replace(grpo.GRPOConfig(**preset), prompts_per_step=args.prompts,
                  prompts_per_update=max(args.prompts // 4, 1), max_new_tokens=args.max_new_tokens,
                  generation_batch_size=args.generation_batch_size, micro_batch_size=args.micro_batch_size,
                  gradient_checkpointing=args.gradient_checkpointing, rollout_weights=args.rollout_weights,
                  checkpoint_every=0)
    if args.cudnn_attention:  # undo speedups.attention_kernels, in generate() and in train_step
        speedups.attention_kernels = contextlib.nullcontext
        grpo.train_step = grpo.train_step.__wrapped__
    tokenizer = AutoTokenizer.from_pretrained(str(Path(args.tokenizer).expanduser())
                                              if Path(args.tokenizer).expanduser().exists() else args.tokenizer)
    torch.manual_seed(0)
    config = Qwen2Config(**QWEN25_05B, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    policy = Qwen2ForCausalLM(config).to(device)  # float32 master weights
    # the reference starts as the policy, as in a stage (bf16 on GPU, like training.load_frozen)
    reference = copy.deepcopy(policy).to(torch.bfloat16 if device.type == "cuda" else torch.float32)
    reference.eval().requires_grad_(False)
    seeds = read_prompts(default_seeds_path())
    items = [{"messages": reply_format.messages(seed)} for seed in seeds[: args.prompts * args.steps]]
    prompt_tokens = [len(tokenizer(rollout.chat_text(tokenizer, item["messages"]), add_special_tokens=False).input_ids)
                     for item in items]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"{name}; {args.prompts} prompts x {cfg.group_size} = {args.prompts * cfg.group_size} samples per step, "
          f"prompts {min(prompt_tokens)}-{max(prompt_tokens)} tokens + {cfg.max_new_tokens} new, rollout weights "
          f"{cfg.rollout_weights}, cuDNN attention "
          f"{'allowed' if args.cudnn_attention else 'off'}, generation batch {cfg.generation_batch_size}, micro-batch {cfg.micro_batch_size}, "
          f"gradient checkpointing {cfg.gradient_checkpointing}, beta {cfg.beta}, "
          f"{cfg.prompts_per_step // cfg.prompts_per_update} updates per step", flush=True)
    if args.rollout_only:
        return time_rollouts(policy, tokenizer, items, cfg, args, name)

    def log(row):
        row = {"device": name, "rollout_weights": cfg.rollout_weights,
               "cudnn_attention": args.cudnn_attention, "max_new_tokens": cfg.max_new_tokens,
               "samples": args.prompts * cfg.group_size, "generation_batch_size": cfg.generation_batch_size,
               "peak_gib": peak_gib(device), **row}
        print(f"step {row['step']}: {row['step_time']:.1f} s = rollout {row['rollout_time']:.1f} s "
              f"({row['rollout_tokens_per_s']:.0f} tokens/s) + update {row['update_time']:.1f} s; peak "
              f"{row['peak_gib']:.2f} GiB; sampler/trainer log-prob gap: mean "
              f"{row.get('sampler_logprob_diff', float('nan')):.4f}, max "
              f"{row.get('sampler_logprob_diff_max', float('nan')):.3f}; completion length "
              f"{row['completion_len_mean']:.0f}", flush=True)
        write(args.json, row)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def random_rewards(items, texts):
        return [random.random() for _ in texts], {}

    grpo.train(policy, tokenizer, items, random_rewards, cfg, accelerator, ref_model=reference, log=log,
               desc="bench")


def time_rollouts(policy, tokenizer, items, cfg, args, name):
    """rollout.generate alone, from the sampler grpo.train would use."""
    sampler = speedups.rollout_copy(policy, cfg.rollout_weights)
    for step in range(args.steps):
        batch = items[step * args.prompts : (step + 1) * args.prompts]
        start = time.time()
        rollouts = rollout.generate(sampler, tokenizer, [item["messages"] for item in batch],
                                    group_size=cfg.group_size, max_new_tokens=cfg.max_new_tokens,
                                    batch_size=cfg.generation_batch_size)
        seconds = time.time() - start
        tokens = rollouts.completion_mask.sum().item()
        row = {"device": name, "rollout_only": True, "rollout_weights": cfg.rollout_weights,
               "cudnn_attention": args.cudnn_attention,
               "max_new_tokens": cfg.max_new_tokens, "samples": len(rollouts.texts),
               "generation_batch_size": cfg.generation_batch_size, "rollout_time": seconds,
               "rollout_tokens_per_s": tokens / seconds, "peak_gib": peak_gib(policy.device)}
        print(f"rollout {step}: {seconds:.1f} s, {tokens / seconds:.0f} tokens/s, peak {row['peak_gib']:.2f} GiB",
              flush=True)
        write(args.json, row)


def write(path, row):
    if path:
        with open(path, "a") as file:
            file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
