"""Learning benchmark: does our GRPO make a real model follow IFEval-type constraints better?

What it measures. Follower-only GRPO (no Instructor, no self-evolution) on SmolLM2-135M-Instruct,
on CPU, with rule-verified rewards: each prompt is one of our seed instructions plus 1 to 3
constraints of IFEval types, and

    reward = fraction of the prompt's constraints that ifeval_checks.check passes on the response.

Before and after training, the model answers a held-out set (greedy): different seeds from the
training set, the same constraint families. We report prompt-level accuracy (all constraints
pass) and constraint-level accuracy (IFEval's "instruction-level"), plus the held-out
constraint-level accuracy every few steps and the training reward of every step.

A deliberate departure from SEIF. SEIF's Follower reward is 0 unless the reply matches
<think>...</think><answer>...</answer>. SmolLM2-135M essentially never writes that format, so a
gated reward would be 0 for every sample and GRPO would have nothing to learn from. Here the RAW
response is scored: a plain user turn, no SEIF system prompt (SmolLM2's chat template still adds
its own default one), no format gate. This isolates one question, "does grpo.train improve
constraint following on a real model", from whether a 135M model can learn the format.

To fit a shared 2-core CPU, only the top 10 of the 30 decoder layers are trained, with one torch
thread, lr 5e-5, 24 steps of 4 prompts x 6 samples and 48-token completions (see grpo_config).

Run (from the repository root; about 25 minutes on a busy 2-core CPU, --quick about 4):
    NLTK_DATA=/path/to/nltk_data python bench/learn.py [--quick] [--threads 1] [--steps N] [--lr X]
Writes bench/learn_results.json and bench/learn_curve.png (the curve needs matplotlib).

Measured (2-core x86_64 CPU shared with other jobs, 1 thread, 24 steps, 24 min): held-out
prompt-level 0.083 -> 0.250, constraint-level 0.277 -> 0.457. The biggest moves were P.S.
(0.42 -> 1.00) and no commas (0.17 -> 0.50); all-capitals and all-lowercase stayed at 0.
Part of the gain is reward hacking, which rule rewards on the raw response allow: the model
learned to restate a constraint line instead of answering ('Use the word "garden" in your
reply.' passes the keyword check; '"That is all."' passes the quotation, end-phrase and
no-comma checks). Three of the six examples saved in learn_results.json are such echoes; the
other three are genuine short answers. SEIF's format gate and model Judger are not here to
stop it, so read the numbers as "GRPO moves the policy toward the reward", not as "the model
now follows instructions 18 points better".
"""

import argparse
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import grpo  # noqa: E402
import ifeval_checks  # noqa: E402
import instructor  # noqa: E402
import rollout  # noqa: E402
from data import default_seeds_path, read_prompts, run_cli, write_json  # noqa: E402

MODEL = "smollm2-135m"
HERE = Path(__file__).resolve().parent

# -----------------------------------------------------------------------------
# Prompts: a seed plus 1-3 constraints, each written by a fixed template

END_PHRASES = ["That is all.", "Thanks for reading.", "Have a nice day.", "Any other questions?"]
KEYWORDS = ["river", "golden", "quiet", "bright", "journey", "garden", "simple", "window"]

# IFEval id -> function(rng) -> (kwargs, the constraint sentence shown to the model).
# Types a 135M model can plausibly learn: case, punctuation, short length, wrappers, endings.


def _end_phrase(rng):
    phrase = rng.choice(END_PHRASES)
    return {"end_phrase": phrase}, f'End your reply with the exact phrase "{phrase}" and write nothing after it.'


def _keyword(rng):
    word = rng.choice(KEYWORDS)
    return {"keywords": [word]}, f'Use the word "{word}" in your reply.'


def _word_limit(rng):
    limit = rng.choice([30, 40, 50])
    return {"relation": "less than", "num_words": limit}, f"Answer in fewer than {limit} words."


FAMILIES = {
    "change_case:english_lowercase": lambda rng: (
        {}, "Write your entire reply in lowercase letters only, with no capital letters."),
    "change_case:english_capital": lambda rng: ({}, "Write your entire reply in capital letters only."),
    "punctuation:no_comma": lambda rng: ({}, "Do not use any commas in your reply."),
    "startend:end_checker": _end_phrase,
    "keywords:existence": _keyword,
    "length_constraints:number_words": _word_limit,
    "startend:quotation": lambda rng: ({}, "Wrap your entire reply in double quotation marks."),
    "detectable_content:postscript": lambda rng: (
        {"postscript_marker": "P.S."}, "At the end of your reply, add a postscript starting with P.S."),
}
# Pairs we never combine: IFEval's own conflict table, plus two endings that compete for the
# last line (a P.S. and an exact closing phrase).
EXTRA_CONFLICTS = {frozenset(["startend:end_checker", "detectable_content:postscript"])}


def compatible(id_a, id_b):
    return not ifeval_checks.conflicts(id_a, id_b) and frozenset([id_a, id_b]) not in EXTRA_CONFLICTS


def make_item(seed, rng):
    """One prompt: the seed, a newline, then 1-3 compatible constraints one per line (as SEIF's
    evolved instructions are laid out). The chat is a plain user turn: no SEIF system prompt."""
    count = rng.choice([1, 2, 3])
    ids = []
    for family in rng.sample(sorted(FAMILIES), len(FAMILIES)):
        if len(ids) < count and all(compatible(family, other) for other in ids):
            ids.append(family)
    constraints = []
    for family in ids:
        kwargs, text = FAMILIES[family](rng)
        constraints.append({"ifeval_id": family, "kwargs": kwargs, "text": text})
    instruction = instructor.evolved_instruction(seed, constraints)
    return {"seed": seed, "instruction": instruction, "constraints": constraints,
            "messages": [{"role": "user", "content": instruction}]}


# -----------------------------------------------------------------------------
# Reward and evaluation: IFEval's strict rules on the raw response


def verdicts(item, response):
    return [ifeval_checks.check(c["ifeval_id"], c["kwargs"], response) for c in item["constraints"]]


def reward_fn(items, texts):
    """grpo.train's reward: the fraction of each prompt's constraints that the response passes."""
    results = [verdicts(item, text) for item, text in zip(items, texts)]
    rewards = [sum(r) / len(r) for r in results]
    info = {"constraints_followed": sum(map(sum, results)) / sum(map(len, results)),
            "prompts_all_followed": sum(map(all, results)) / len(results)}
    return rewards, info


def evaluate(model, tokenizer, items, max_new_tokens):
    """Greedy answers to `items` -> (prompt-level, constraint-level and per-family pass rates, texts)."""
    texts = rollout.generate(model, tokenizer, [item["messages"] for item in items], greedy=True,
                             max_new_tokens=max_new_tokens, batch_size=len(items), desc="eval").texts
    results = [verdicts(item, text) for item, text in zip(items, texts)]
    by_family = {}
    for item, result in zip(items, results):
        for constraint, passed in zip(item["constraints"], result):
            by_family.setdefault(constraint["ifeval_id"], []).append(passed)
    scores = {"prompt_level": sum(map(all, results)) / len(results),
              "constraint_level": sum(map(sum, results)) / sum(map(len, results)),
              "by_family": {family: sum(v) / len(v) for family, v in sorted(by_family.items())}}
    return scores, texts


# -----------------------------------------------------------------------------
# Settings


@dataclass
class BenchConfig:
    heldout_seeds: int = 48  # held out: the last 48 seeds; training never sees the last 60
    train_prompts: int = 300  # one prompt per training seed
    steps: int = 24  # GRPO steps of 4 prompts x 6 samples
    eval_every: int = 8  # held-out accuracy every N steps, for the curve
    eval_max_new_tokens: int = 96
    trainable_layers: int = 10  # train only the top 10 of SmolLM2's 30 decoder layers (see below)
    threads: int = 1  # one: on a shared 2-core CPU, 2 threads ran generation 12x slower
    seed: int = 0


QUICK = {"heldout_seeds": 16, "train_prompts": 16, "steps": 3, "eval_every": 2, "eval_max_new_tokens": 64}
HELDOUT_POOL = 60  # the last 60 seeds are never trained on


def freeze_lower_layers(model, trainable_layers):
    """Train only the top decoder layers and the final norm. Backward then stops at the lowest
    trainable layer, which makes a GRPO update about 40% cheaper on CPU; GRPO itself is unchanged
    (AdamW skips parameters that get no gradient)."""
    model.requires_grad_(False)
    for layer in model.model.layers[-trainable_layers:]:
        layer.requires_grad_(True)
    model.model.norm.requires_grad_(True)


def grpo_config(lr):
    # Tuned to learn within minutes on a CPU, not SEIF's settings: a large lr (SEIF: 1e-6), one
    # update per step, no KL term (so no reference forward pass), short completions. The short
    # limit also rewards brevity: a reply cut off at 48 tokens cannot end with the asked phrase.
    return grpo.GRPOConfig(group_size=6, prompts_per_step=4, prompts_per_update=4, max_new_tokens=48,
                           lr=lr, beta=0.0, micro_batch_size=12, generation_batch_size=24)


# -----------------------------------------------------------------------------
# The benchmark


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes (3 steps, 16 held-out prompts)")
    parser.add_argument("--threads", type=int, default=BenchConfig.threads, help="torch threads (default 1)")
    parser.add_argument("--steps", type=int, help=f"GRPO steps (default {BenchConfig.steps})")
    parser.add_argument("--lr", type=float, default=5e-5, help="AdamW learning rate (default 5e-5)")
    parser.add_argument("--out", default=str(HERE), help="where the JSON and PNG go")
    args = parser.parse_args(argv)
    bench = BenchConfig(threads=args.threads, **(QUICK if args.quick else {}))
    bench.steps = args.steps or bench.steps
    cfg = grpo_config(args.lr)
    torch.set_num_threads(bench.threads)
    torch.manual_seed(bench.seed)
    start_time = time.time()

    seeds = read_prompts(default_seeds_path())
    rng = random.Random(bench.seed)
    train_items = [make_item(s, rng) for s in seeds[:-HELDOUT_POOL][: bench.train_prompts]]
    heldout = [make_item(s, rng) for s in seeds[-bench.heldout_seeds :]]
    model, tokenizer = rollout.load(MODEL, dtype=torch.float32, device="cpu")
    freeze_lower_layers(model, bench.trainable_layers)
    print(f"{len(train_items)} training prompts, {len(heldout)} held-out prompts (different seeds); "
          f"scoring the raw response, no <think>/<answer> format gate")

    def held_out_scores(label):
        scores, texts = evaluate(model, tokenizer, heldout, bench.eval_max_new_tokens)
        print(f"[{time.time() - start_time:5.0f}s] held-out {label}: prompt-level "
              f"{scores['prompt_level']:.3f}, constraint-level {scores['constraint_level']:.3f}")
        return scores, texts

    before, before_texts = held_out_scores("before")
    curve = [{"step": 0, **{k: before[k] for k in ("prompt_level", "constraint_level")}}]
    history = []

    def log(row):
        history.append(row)
        done = row["step"] + 1
        print(f"[{time.time() - start_time:5.0f}s] step {done}/{bench.steps} reward {row['reward_mean']:.3f} "
              f"all-followed {row['prompts_all_followed']:.2f} len {row['completion_len_mean']:.0f} "
              f"({row['rollout_time']:.0f}s rollout, {row['update_time']:.0f}s update)")
        # Evaluating from inside the log callback: grpo.train calls it after each update, and
        # rollout.generate puts the model back in training mode when it is done.
        if done % bench.eval_every == 0 and done < bench.steps:
            scores, _ = held_out_scores(f"after step {done}")
            curve.append({"step": done, **{k: scores[k] for k in ("prompt_level", "constraint_level")}})

    grpo.train(model, tokenizer, train_items, reward_fn, cfg, Accelerator(cpu=True), ref_model=None,
               epochs=1, max_steps=bench.steps, seed=bench.seed, log=log, desc="learn")
    after, after_texts = held_out_scores("after")
    curve.append({"step": len(history), **{k: after[k] for k in ("prompt_level", "constraint_level")}})
    wall = time.time() - start_time

    results = {
        "model": MODEL, "scoring": "raw response, IFEval strict rules, no format gate, no system prompt of ours",
        "bench": asdict(bench), "grpo": asdict(cfg), "steps": len(history), "wall_time_s": round(wall),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, {bench.threads} torch threads",
        "before": before, "after": after, "heldout_curve": curve,
        "train_steps": [{k: row[k] for k in ("step", "reward_mean", "constraints_followed",
                                            "prompts_all_followed", "completion_len_mean", "rollout_time",
                                            "update_time")}
                        for row in history],
        "examples": [{"instruction": item["instruction"], "before": b, "after": a}
                     for item, b, a in list(zip(heldout, before_texts, after_texts))[:6]],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "learn_results.json", results)
    print(f"held-out prompt-level {before['prompt_level']:.3f} -> {after['prompt_level']:.3f}, "
          f"constraint-level {before['constraint_level']:.3f} -> {after['constraint_level']:.3f} "
          f"({len(history)} steps, {wall / 60:.1f} min, {results['machine']})")
    plot_curve(results, out / "learn_curve.png")
    print(f"wrote {out / 'learn_results.json'}")


def plot_curve(results, path):
    """Training reward per step and held-out accuracy at the evaluated steps, side by side."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so no learn_curve.png (pip install matplotlib)")
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [row["step"] + 1 for row in results["train_steps"]]
    left.plot(steps, [row["reward_mean"] for row in results["train_steps"]], marker=".", label="reward (mean)")
    left.plot(steps, [row["prompts_all_followed"] for row in results["train_steps"]], marker=".",
              label="all constraints followed")
    left.set(title="training samples (temperature 1.0)", xlabel="GRPO step", ylim=(0, 1))
    left.legend()
    curve = results["heldout_curve"]
    for key in ("constraint_level", "prompt_level"):
        right.plot([p["step"] for p in curve], [p[key] for p in curve], marker="o", label=key.replace("_", "-"))
    right.set(title=f"held-out ({results['bench']['heldout_seeds']} unseen seeds, greedy)",
              xlabel="GRPO step", ylim=(0, 1))
    right.legend()
    figure.suptitle("SmolLM2-135M-Instruct, follower-only GRPO, IFEval-rule rewards on the raw response")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"wrote {path}")


if __name__ == "__main__":
    run_cli(main)
