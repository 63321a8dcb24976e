"""Peak memory and speed of one full GRPO step at the qwen0.5b preset's shapes.

One step = rollout (batched `generate`), reference log-probs, old log-probs, then the updates,
exactly as grpo.train_step runs them. The model has Qwen2.5-0.5B-Instruct's architecture
(24 layers, hidden 896, 14 heads, 2 KV heads, intermediate 4864, vocab 151,936, tied embeddings,
rope theta 1e6) with random weights, so nothing is downloaded; random weights almost never
sample EOS, so every completion runs to max_new_tokens: the worst case for memory.

The policy is float32 under bf16 autocast (as loop.py trains it), the reference bf16. Prompts
are random token ids, so the tokenizer and chat template are not involved.

    python bench/memory.py                          # GPU: the preset's full shapes
    python bench/memory.py --prompts 2 --max-new-tokens 64 --prompt-len 128   # CPU, reduced
"""

import argparse
import resource
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import Qwen2Config, Qwen2ForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import grpo  # noqa: E402
from presets import PRESETS  # noqa: E402
from rollout import Rollouts  # noqa: E402

QWEN25_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                  num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                  rope_theta=1e6, tie_word_embeddings=True, rms_norm_eps=1e-6)


def parse_args():
    preset = PRESETS["qwen0.5b"]["follower_grpo"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=preset["prompts_per_step"])
    parser.add_argument("--group-size", type=int, default=5)
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=preset["max_new_tokens"])
    parser.add_argument("--prompts-per-update", type=int, default=preset["prompts_per_update"])
    parser.add_argument("--micro-batch-size", type=int, default=preset["micro_batch_size"])
    parser.add_argument("--generation-batch-size", type=int, default=preset["generation_batch_size"])
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--ref-on-cpu", action="store_true")
    return parser.parse_args()


def peak_gib(device):
    """Peak GPU memory allocated by torch; on CPU, the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def sample(model, prompt_ids, max_new_tokens, batch_size):
    """Batched sampling from random prompt ids, chunked like rollout.generate."""
    model.eval()
    pieces = []
    with torch.no_grad():
        for start in range(0, len(prompt_ids), batch_size):
            chunk = prompt_ids[start : start + batch_size]
            out = model.generate(chunk, attention_mask=torch.ones_like(chunk), max_new_tokens=max_new_tokens,
                                 min_new_tokens=max_new_tokens, do_sample=True, top_k=0, use_cache=True,
                                 pad_token_id=0)
            pieces.append(out)
    model.train()
    ids = torch.cat(pieces)
    completion_mask = torch.ones(ids.shape[0], max_new_tokens, dtype=torch.long, device=ids.device)
    return Rollouts(input_ids=ids, attention_mask=torch.ones_like(ids), completion_mask=completion_mask,
                    prompt_length=prompt_ids.shape[1], texts=[""] * len(ids), group_size=0)


def main():
    args = parse_args()
    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    device = accelerator.device
    torch.manual_seed(0)
    config = Qwen2Config(**QWEN25_05B)
    policy = Qwen2ForCausalLM(config).to(device)  # float32 master weights
    reference = Qwen2ForCausalLM(config).to(torch.bfloat16 if device.type == "cuda" else torch.float32)
    reference = reference.to("cpu" if args.ref_on_cpu else device).eval().requires_grad_(False)
    if args.gradient_checkpointing:
        policy.gradient_checkpointing_enable()
    cfg = grpo.GRPOConfig(group_size=args.group_size, prompts_per_update=args.prompts_per_update,
                          micro_batch_size=args.micro_batch_size, max_new_tokens=args.max_new_tokens)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    policy, optimizer = accelerator.prepare(policy, optimizer)
    samples = args.prompts * args.group_size
    print(f"device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}; {samples} samples "
          f"({args.prompts} prompts x {args.group_size}), prompt {args.prompt_len} + completion "
          f"{args.max_new_tokens} tokens, micro-batch {args.micro_batch_size}, "
          f"generation batch {args.generation_batch_size}")
    print(f"after loading: {peak_gib(device):.2f} GiB")

    prompt_ids = torch.randint(1000, config.vocab_size, (args.prompts, args.prompt_len), device=device)
    prompt_ids = prompt_ids.repeat_interleave(args.group_size, dim=0)
    start = time.time()
    with accelerator.autocast():
        rollouts = sample(accelerator.unwrap_model(policy), prompt_ids, args.max_new_tokens,
                          args.generation_batch_size)
    rollout_time = time.time() - start
    rollout_peak = peak_gib(device)
    advantages = torch.randn(samples)
    rollouts.group_size = args.group_size
    metrics = grpo.train_step(policy, optimizer, accelerator, rollouts, advantages, cfg, reference)
    tokens = samples * args.max_new_tokens
    print(f"rollout: {rollout_time:.1f} s, {tokens / rollout_time:.0f} tokens/s, peak {rollout_peak:.2f} GiB")
    print(f"update (ref + old log-probs + {metrics['updates']} updates): {metrics['update_time']:.1f} s, "
          f"{metrics['update_tokens_per_s']:.0f} completion tokens/s")
    print(f"step: {rollout_time + metrics['update_time']:.1f} s; peak memory of the whole step: "
          f"{peak_gib(device):.2f} GiB")


if __name__ == "__main__":
    main()
