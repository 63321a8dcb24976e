"""Time one GRPO step of ours (grpo.train) against TRL's GRPOTrainer, same settings, on CPU.

A step = sample 4 prompts x group 4 = 16 completions (<= 32 new tokens), reward them, compute
group advantages, and make one AdamW update with the token-mean clipped loss (TRL loss_type
"dapo": sum over active tokens / active tokens in the batch). beta = 0 (no reference model),
eps 0.2 / 0.3, temperature 1.0, top_p 1.0, top_k off, lr 1e-6, weight decay 0.01, grad clip
1.0, float32. Our dual clip is set to 1e9 (TRL has none), which makes it a no-op. TRL's default
gradient checkpointing (True in its GRPOConfig) is turned off, as ours is by default.

Interleaved: each side runs in its own process (so peak RSS is per side) and waits for the
parent's go before every step, so the two take turns step by step (1 warm-up, then N timed),
swapping who goes first each step; whichever waits sits idle and takes no CPU. Reported per
side: median step time (wall time from the parent's go to the side's report: generation,
reward, update and the side's own per-step logging; for TRL from one on_step_begin to the next,
for ours from the start of the step to the end of grpo.train's log call), completion tokens/s
(median of tokens / step time) and peak RSS (getrusage ru_maxrss), then the ratio.

Sides: "ours" (defaults: each prompt's prefill and prompt pass shared by its group), "trl",
and optionally "ours-unshared" (GRPOConfig.share_prompts=False) to show what the sharing buys.

Models: "tiny" = a random Qwen2 (hidden 512, 8 layers, 8 heads, 2 KV heads, intermediate 1408,
~23M params) with the offline test tokenizer; "smollm2" = SmolLM2-135M-Instruct (cached GGUF).

TRL is installed only for this benchmark (`pip install trl`); it is not a project dependency.

    python bench/vs_trl.py                  # both models, 5 timed steps; writes bench/results/vs_trl.txt
    python bench/vs_trl.py --models tiny --steps 5 --sides ours trl ours-unshared
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
        return rollout.load("smollm2-135m", device="cpu", dtype=torch.float32)
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


BENCH = "BENCH "  # marks the lines of the parent <-> child protocol on stdout


def wait_for_go():
    """Block until the parent says go; returns the time it did."""
    if sys.stdin.readline().strip() != "go":
        sys.exit(0)  # the parent is done with us
    return time.perf_counter()


def report(**fields):
    print(BENCH + json.dumps(fields), flush=True)


def run_ours(model, tokenizer, chats, steps, share_prompts=True):
    from accelerate import Accelerator
    import grpo
    cfg = grpo.GRPOConfig(group_size=GROUP, max_new_tokens=MAX_NEW, prompts_per_step=PROMPTS,
                          prompts_per_update=PROMPTS, lr=LR, beta=0.0, eps_low=0.2, eps_high=0.3,
                          dual_clip=1e9, aggregation="token-mean", temperature=1.0, top_p=1.0,
                          micro_batch_size=GROUP * PROMPTS, generation_batch_size=GROUP * PROMPTS,
                          share_prompts=share_prompts)

    start = []  # when each step began: a list, so that log() can append to it

    def log(row):  # called at the end of each step
        report(step_s=time.perf_counter() - start[-1], tokens=row["completion_len_mean"] * GROUP * PROMPTS)
        start.append(wait_for_go())

    start.append(wait_for_go())
    grpo.train(model, tokenizer, [{"messages": c} for c in chats],
               lambda items, texts: (reward_fn(texts), {}), cfg, Accelerator(cpu=True),
               max_steps=steps, log=log, desc="ours")


def run_trl(model, tokenizer, chats, steps):
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tokens = []

    def reward(prompts, completions, completion_ids, **kwargs):
        tokens.append(sum(len(ids) for ids in completion_ids))
        return reward_fn([c[-1]["content"] if isinstance(c, list) else c for c in completions])

    class Turns(TrainerCallback):
        """A step runs from one on_step_begin to the next (or to the end of training), so TRL's
        own per-step work after on_step_end (logging) is inside it, as ours is."""
        start = None

        def end_of_step(self):
            if self.start is not None:
                report(step_s=time.perf_counter() - self.start, tokens=tokens[-1])

        def on_step_begin(self, args, state, control, **kw):
            self.end_of_step()
            self.start = wait_for_go()

        def on_train_end(self, args, state, control, **kw):
            self.end_of_step()
            wait_for_go()  # stay idle until every side is done: no teardown beside their steps

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
                              callbacks=[Turns()])
        trainer.train()


def child(side, model_name, steps):
    """One side in this process: a step per "go" on stdin, a BENCH line on stdout after each."""
    torch.set_num_threads(2)
    model, tokenizer = load_model(model_name)
    chats = prompts(PROMPTS * steps)
    report(params=sum(p.numel() for p in model.parameters()), rss_before_mb=rss_now_mb())
    if side == "trl":
        run_trl(model, tokenizer, chats, steps)
    else:
        run_ours(model, tokenizer, chats, steps, share_prompts=side == "ours")
    report(peak_rss_mb=peak_rss_mb())


class Side:
    """A child process running one side, driven a step at a time."""

    def __init__(self, side, model_name, steps):
        self.name = side
        cmd = [sys.executable, __file__, "--child", side, model_name, "--steps", str(steps)]
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, cwd=REPO)
        self.info = self.read()  # params, RSS before the first step

    def read(self):
        for line in self.process.stdout:
            if line.startswith(BENCH):
                return json.loads(line[len(BENCH):])
        sys.exit(f"{self.name} exited early (code {self.process.wait()}); "
                 f"run it alone with --child {self.name} ... to see why")

    def step(self):
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return self.read()

    def finish(self):
        self.process.stdin.write("go\n")  # each side waits for this after its last step
        self.process.stdin.close()
        self.info.update(self.read())
        self.process.wait()


def compare(model_name, sides, steps):
    """Run the sides in turns for 1 + steps steps; returns the report lines."""
    runs = {name: Side(name, model_name, steps + 1) for name in sides}
    rows = {name: [] for name in sides}
    for step in range(steps + 1):
        order = sides if step % 2 == 0 else sides[::-1]
        for name in order:
            rows[name].append(runs[name].step())
    for run in runs.values():  # only now, with every step done, may the sides wind down
        run.finish()
    lines = [f"\nmodel {model_name} ({runs[sides[0]].info['params'] / 1e6:.1f}M params)"]
    results = {}
    for name in sides:
        timed = rows[name][1:]  # drop the warm-up step
        info = runs[name].info
        results[name] = step = statistics.median(r["step_s"] for r in timed)
        lines.append(f"  {name:13s}: median step {step:.3f} s {[round(r['step_s'], 2) for r in timed]}, "
                     f"{statistics.median(r['tokens'] for r in timed):.0f} completion tokens/step, "
                     f"{statistics.median(r['tokens'] / r['step_s'] for r in timed):.1f} tok/s, "
                     f"peak RSS {info['peak_rss_mb']:.0f} MB (+{info['peak_rss_mb'] - info['rss_before_mb']:.0f} "
                     f"MB over {info['rss_before_mb']:.0f} MB before step 1)")
    if "trl" in sides:
        for name in (n for n in sides if n != "trl"):
            ratio = results[name] / results["trl"]
            mem_ok = runs[name].info["peak_rss_mb"] <= runs["trl"].info["peak_rss_mb"]
            lines.append(f"  {name}/TRL step time {ratio:.2f}x; goal <= 0.7x at no more peak memory: "
                         f"{'MET' if ratio <= 0.7 and mem_ok else 'NOT met'} "
                         f"(time {'ok' if ratio <= 0.7 else 'no'}, peak RSS {'ok' if mem_ok else 'no'})")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2"])
    parser.add_argument("--sides", nargs="+", default=["ours", "trl"], choices=["ours", "trl", "ours-unshared"])
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
             f"1 warm-up + {args.steps} timed steps per side; sides in their own processes, taking "
             f"turns step by step ({', '.join(args.sides)})"]
    for model_name in args.models:
        lines += compare(model_name, args.sides, args.steps)
        print("\n".join(lines[-len(args.sides) - 2:]), flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "vs_trl.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
