"""Time GRPO steps of ours (grpo.train) against TRL's GRPOTrainer, same settings, taking turns.

Two settings:
- CPU (`--device cpu`, the default): 4 prompts x group 4 = 16 completions (<= 32 new tokens), one
  AdamW update per step, beta = 0 (no reference model), float32, 2 threads. Models: "tiny" = a
  random Qwen2 (hidden 512, 8 layers, ~23M params) with the offline test tokenizer; "smollm2" =
  SmolLM2-135M-Instruct (cached GGUF).
- GPU (`--device cuda`): SEIF's settings: group 5, beta 0.01 against a frozen reference, 4
  optimizer updates per step (TRL: steps_per_generation=4), bf16 mixed precision over float32
  master weights; 32 prompts x 5 = 160 completions of <= 256 new tokens per step by default.
  Model "qwen0.5b" = Qwen2.5-0.5B's architecture with random weights (so completions run to the
  token limit), saved once to a temporary folder with the Qwen tokenizer (`--tokenizer`) so that
  both sides load it the way a user would, each with its own defaults for everything this list
  does not name: ours samples from its bf16 rollout copy and keeps the reference in bf16; TRL
  samples with HF generate from its training model and builds its reference in the policy's
  dtype. Gradient checkpointing is off on both sides.
Both: eps 0.2 / 0.3, temperature 1.0, top_p 1.0, top_k off, lr 1e-6, weight decay 0.01, grad
clip 1.0, token-mean loss (TRL loss_type "dapo"). Our dual clip is set to 1e9 (TRL has none),
which makes it a no-op.

Interleaved: each side runs in its own process (so peak memory is per side) and waits for the
parent's go before every step, so the two take turns step by step (1 warm-up, then N timed),
swapping who goes first each step; whichever waits sits idle. A step is one rollout plus its
updates. Reported per side: median step time (wall time from the parent's go to the side's
report: generation, reward, updates and the side's own per-step logging; for TRL from the
on_step_begin of a step's first update to that of the next step's first update, for ours from
the start of the step to the end of grpo.train's log call), completion tokens/s (median of
tokens / step time) and peak memory (CPU: peak RSS; GPU: torch's peak allocated), then the ratio.

Sides: "ours" (defaults: each prompt's prefill and prompt pass shared by its group), "trl",
and optionally "ours-unshared" (GRPOConfig.share_prompts=False) to show what the sharing buys.
Ours runs attention without cuDNN's kernel (speedups.attention_kernels); TRL runs
PyTorch's default choice.

TRL is installed only for this benchmark (`pip install trl`); it is not a project dependency.

    python bench/vs_trl.py                  # CPU, both models, 5 timed steps; writes bench/results/vs_trl.txt
    python bench/vs_trl.py --models tiny --steps 5 --sides ours trl ours-unshared
    python bench/vs_trl.py --device cuda --tokenizer ~/.cache/seif/qwen2.5-coder-0.5b --steps 3
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
LR = 1e-6
# per device: group size, prompts per step, max new tokens, beta, updates per step, bf16
SETTINGS = {"cpu": dict(group=4, prompts=4, max_new=32, beta=0.0, updates=1, bf16=False),
            "cuda": dict(group=5, prompts=32, max_new=256, beta=0.01, updates=4, bf16=True)}
FLAGS = {"prompts": "prompts", "max_new": "max-new-tokens", "group": "group", "updates": "updates", "beta": "beta"}
SETTING_FLAGS = []  # the command-line changes to SETTINGS, passed on to each side's process


def reward_fn(texts):
    """Fraction of characters that are lowercase ASCII letters: cheap and deterministic."""
    return [sum("a" <= c <= "z" for c in t) / max(len(t), 1) for t in texts]


def save_model(name, folder, tokenizer_path):
    """Save the benchmark's model and tokenizer to `folder`; both sides load them from there, as a
    user would (TRL also builds its reference model from that folder)."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    if name == "smollm2":
        import rollout
        model, tokenizer = rollout.load("smollm2-135m", device="cpu", dtype=torch.float32)
    elif name == "qwen0.5b":  # Qwen2.5-0.5B's architecture, random weights, the Qwen tokenizer
        from memory import QWEN25_05B
        tokenizer = AutoTokenizer.from_pretrained(str(Path(tokenizer_path).expanduser()))
        model = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B, eos_token_id=tokenizer.eos_token_id,
                                             pad_token_id=tokenizer.pad_token_id))
    else:  # "tiny": a random Qwen2 of ~23M parameters with the offline test tokenizer
        from conftest import make_tiny_tokenizer
        tokenizer = make_tiny_tokenizer()
        model = Qwen2ForCausalLM(Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
            num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def peak_memory_mb(device):
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def memory_now_mb(device):
    if device == "cuda":
        return torch.cuda.memory_allocated() / 2**20
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024


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


def run_ours(model, tokenizer, chats, steps, setup, model_dir, side="ours"):
    from accelerate import Accelerator
    import grpo
    import training
    group, prompts_per_step = setup["group"], setup["prompts"]
    cfg = grpo.GRPOConfig(group_size=group, max_new_tokens=setup["max_new"], prompts_per_step=prompts_per_step,
                          prompts_per_update=prompts_per_step // setup["updates"], lr=LR, beta=setup["beta"],
                          eps_low=0.2, eps_high=0.3, dual_clip=1e9, aggregation="token-mean", temperature=1.0,
                          top_p=1.0, micro_batch_size=group * prompts_per_step // setup["updates"],
                          generation_batch_size=group * prompts_per_step, share_prompts=side != "ours-unshared")
    reference = training.load_frozen(model_dir)[0] if setup["beta"] else None  # bf16 on GPU
    accelerator = Accelerator(mixed_precision="bf16") if setup["bf16"] else Accelerator(cpu=True)
    start = []  # when each step began: a list, so that log() can append to it

    def log(row):  # called at the end of each step
        report(step_s=time.perf_counter() - start[-1], tokens=row["completion_len_mean"] * group * prompts_per_step)
        start.append(wait_for_go())

    start.append(wait_for_go())
    grpo.train(model, tokenizer, [{"messages": c} for c in chats],
               lambda items, texts: (reward_fn(texts), {}), cfg, accelerator, ref_model=reference,
               max_steps=steps, log=log, desc="ours")


def run_trl(model_or_dir, tokenizer, chats, steps, setup):
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tokens = []
    updates = setup["updates"]

    def reward(prompts, completions, completion_ids, **kwargs):
        tokens.append(sum(len(ids) for ids in completion_ids))
        return reward_fn([c[-1]["content"] if isinstance(c, list) else c for c in completions])

    class Turns(TrainerCallback):
        """A step (one generation, then `updates` optimizer steps) runs from the on_step_begin of
        its first update to that of the next step's first update (or to the end of training),
        so TRL's own per-step work after on_step_end (logging) is inside it, as ours is."""
        start = None

        def end_of_step(self):
            if self.start is not None:
                report(step_s=time.perf_counter() - self.start, tokens=tokens[-1])

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step % updates == 0:
                self.end_of_step()
                self.start = wait_for_go()

        def on_train_end(self, args, state, control, **kw):
            self.end_of_step()
            wait_for_go()  # stay idle until every side is done: no teardown beside their steps

    per_update = setup["group"] * setup["prompts"] // updates
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(output_dir=out, use_cpu=not setup["bf16"], report_to="none", max_steps=steps * updates,
                          per_device_train_batch_size=per_update, gradient_accumulation_steps=1,
                          steps_per_generation=updates, num_generations=setup["group"],
                          max_completion_length=setup["max_new"], num_iterations=1, beta=setup["beta"],
                          epsilon=0.2, epsilon_high=0.3, loss_type="dapo", scale_rewards="group",
                          temperature=1.0, top_p=1.0, top_k=0, learning_rate=LR, lr_scheduler_type="constant",
                          warmup_steps=0, weight_decay=0.01, max_grad_norm=1.0, bf16=setup["bf16"], fp16=False,
                          logging_steps=1, save_strategy="no", seed=0, dataloader_num_workers=0,
                          model_init_kwargs={"dtype": torch.float32},
                          gradient_checkpointing=False)  # TRL defaults to True; ours to False
        trainer = GRPOTrainer(model=model_or_dir, processing_class=tokenizer, reward_funcs=[reward], args=args,
                              train_dataset=Dataset.from_list([{"prompt": c} for c in chats]),
                              callbacks=[Turns()])
        trainer.train()


def child(side, steps, device, model_dir):
    """One side in this process: a step per "go" on stdin, a BENCH line on stdout after each."""
    torch.set_num_threads(2)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    setup = SETTINGS[device]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    chats = prompts(setup["prompts"] * steps)
    if side == "trl":  # TRL loads the policy itself, and builds its reference from the same folder
        report(params=None, memory_before_mb=memory_now_mb(device))
        run_trl(model_dir, tokenizer, chats, steps, setup)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
        report(params=sum(p.numel() for p in model.parameters()), memory_before_mb=memory_now_mb(device))
        run_ours(model, tokenizer, chats, steps, setup, model_dir, side)
    report(peak_memory_mb=peak_memory_mb(device))


class Side:
    """A child process running one side, driven a step at a time."""

    def __init__(self, side, steps, device, model_dir):
        self.name = side
        cmd = [sys.executable, __file__, "--child", side, "--model-dir", model_dir, "--steps", str(steps),
               "--device", device, *SETTING_FLAGS]
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, cwd=REPO)
        self.info = self.read()  # params, memory before the first step

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


def compare(model_name, sides, steps, device, model_dir):
    """Run the sides in turns for 1 + steps steps; returns the report lines."""
    # one at a time: on a GPU the sides' model loads would otherwise overlap their first steps
    runs = {}
    for name in sides:
        runs[name] = Side(name, steps + 1, device, model_dir)
    rows = {name: [] for name in sides}
    for step in range(steps + 1):
        order = sides if step % 2 == 0 else sides[::-1]
        for name in order:
            rows[name].append(runs[name].step())
    for run in runs.values():  # only now, with every step done, may the sides wind down
        run.finish()
    memory = "peak GPU memory" if device == "cuda" else "peak RSS"
    params = max(run.info["params"] or 0 for run in runs.values())
    lines = [f"\nmodel {model_name} ({params / 1e6:.1f}M params)"] if params else [f"\nmodel {model_name}"]
    results = {}
    for name in sides:
        timed = rows[name][1:]  # drop the warm-up step
        info = runs[name].info
        results[name] = step = statistics.median(r["step_s"] for r in timed)
        lines.append(f"  {name:13s}: median step {step:.3f} s {[round(r['step_s'], 2) for r in timed]}, "
                     f"{statistics.median(r['tokens'] for r in timed):.0f} completion tokens/step, "
                     f"{statistics.median(r['tokens'] / r['step_s'] for r in timed):.1f} tok/s, "
                     f"{memory} {info['peak_memory_mb']:.0f} MB (+{info['peak_memory_mb'] - info['memory_before_mb']:.0f} "
                     f"MB over {info['memory_before_mb']:.0f} MB before step 1)")
    goal = 0.5 if device == "cuda" else 0.7
    if "trl" in sides:
        for name in (n for n in sides if n != "trl"):
            ratio = results[name] / results["trl"]
            mem_ok = runs[name].info["peak_memory_mb"] <= runs["trl"].info["peak_memory_mb"]
            lines.append(f"  {name}/TRL step time {ratio:.2f}x; goal <= {goal}x at no more peak memory: "
                         f"{'MET' if ratio <= goal and mem_ok else 'NOT met'} "
                         f"(time {'ok' if ratio <= goal else 'no'}, {memory} {'ok' if mem_ok else 'no'})")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", nargs="+", help="cpu: tiny and/or smollm2 (default both); cuda: qwen0.5b")
    parser.add_argument("--sides", nargs="+", default=["ours", "trl"], choices=["ours", "trl", "ours-unshared"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per side (after 1 warm-up)")
    parser.add_argument("--prompts", type=int, help="prompts per step (default: 4 on cpu, 32 on cuda)")
    parser.add_argument("--max-new-tokens", type=int, help="default: 32 on cpu, 256 on cuda")
    parser.add_argument("--group", type=int, help="samples per prompt (default: 4 on cpu, 5 on cuda)")
    parser.add_argument("--updates", type=int, help="optimizer updates per step (default: 1 on cpu, 4 on cuda)")
    parser.add_argument("--beta", type=float, help="KL coefficient (default: 0 on cpu, 0.01 on cuda)")
    parser.add_argument("--tokenizer", default="Qwen/Qwen2.5-0.5B-Instruct", help="cuda: a Qwen2.5 tokenizer")
    parser.add_argument("--out", help="where to write the report (default bench/results/vs_trl[_cuda].txt)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup = SETTINGS[args.device]
    changes = {"prompts": args.prompts, "max_new": args.max_new_tokens, "group": args.group,
               "updates": args.updates, "beta": args.beta}
    setup.update({key: value for key, value in changes.items() if value is not None})
    SETTING_FLAGS[:] = [flag for key, value in changes.items() if value is not None
                        for flag in (f"--{FLAGS[key]}", str(value))]  # the children get the same changes
    if args.child:
        return child(args.child, args.steps, args.device, args.model_dir)

    import trl
    import transformers
    models = args.models or (["qwen0.5b"] if args.device == "cuda" else ["tiny", "smollm2"])
    where = (f"{torch.cuda.get_device_name()}, bf16 autocast over float32 weights" if args.device == "cuda"
             else "CPU float32, 2 threads")
    lines = [f"GRPO step: ours vs TRL {trl.__version__} GRPOTrainer (transformers {transformers.__version__}, "
             f"torch {torch.__version__}), {where}, {setup['prompts']} prompts x {setup['group']} = "
             f"{setup['prompts'] * setup['group']} samples, <= {setup['max_new']} new tokens, beta {setup['beta']}, "
             f"{setup['updates']} update(s)/step",
             f"1 warm-up + {args.steps} timed steps per side; sides in their own processes, taking "
             f"turns step by step ({', '.join(args.sides)})"]
    for model_name in models:
        with tempfile.TemporaryDirectory() as model_dir:
            save_model(model_name, model_dir, args.tokenizer)
            lines += compare(model_name, args.sides, args.steps, args.device, model_dir)
        print("\n".join(lines[-len(args.sides) - 2:]), flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    out = Path(args.out) if args.out else REPO / "bench" / "results" / (
        "vs_trl_cuda.txt" if args.device == "cuda" else "vs_trl.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
