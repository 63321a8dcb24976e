"""The Judger's score mode against its generate mode: verdicts per second, and agreement.

Both modes judge the same (answer, constraint) pairs with the same model and the same prompt,
as JudgerConfig sets them up: generate mode writes an analysis of up to `max_new_tokens`
(default JudgerConfig's 256) and a [[d]] verdict (SEIF); score mode runs the rubric prefix once,
then one forward pass per batch of pairs, and reads P([[1]]) vs P([[0]]). Each mode runs twice,
interleaved (score, generate, score, generate), and the faster of the two runs counts, so a
noisy neighbour hurts both alike. Generate mode's cost grows with the analysis length; a model
that writes its verdict early stops early, and SmolLM2 never does (see the verdicts printed).

    python bench/judge.py                       # SmolLM2-135M (the offline demo model), CPU
    python bench/judge.py --max-new-tokens 64   # a short analysis budget
    python bench/judge.py --model Qwen/Qwen2.5-0.5B-Instruct --pairs 64
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import judger  # noqa: E402
from settings import BeyondSEIF  # noqa: E402
import rollout  # noqa: E402

ANSWERS = [
    "the river was calm and the boats were still as the sun came up over the hills",
    "Dear Sam, Thank you for the invitation. I would be glad to join you on Friday. Best, Ana",
    "* Apples are rich in fibre.\n* Bananas give quick energy.\n* Oranges are full of vitamin C.",
    "PHOTOSYNTHESIS TURNS LIGHT, WATER AND CARBON DIOXIDE INTO SUGAR AND OXYGEN.",
]
CONSTRAINTS = [
    "Write the entire response in lowercase letters.",
    "Use at least 3 bullet points.",
    "Do not use any commas.",
    "Use a warm, friendly tone.",
]


def pairs(count):
    grid = [(answer, {"text": constraint, "ifeval_id": None, "kwargs": None})
            for answer in ANSWERS for constraint in CONSTRAINTS]
    return (grid * (count // len(grid) + 1))[:count]


written = []  # completion tokens of each generate() call the Judger makes


def counting_generate(*args, _generate=rollout.generate, **kwargs):
    rollouts = _generate(*args, **kwargs)
    written.append(int(rollouts.completion_mask.sum()))
    return rollouts


rollout.generate = counting_generate  # judger calls rollout.generate: count what it writes


def timed(model, tokenizer, items, cfg, departures):
    start = time.time()
    verdicts = judger.judge(model, tokenizer, items, cfg, departures)
    return verdicts, time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=judger.JudgerConfig.max_new_tokens,
                        help="generate mode's analysis budget")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tokenizer = rollout.load(args.model)
    items = pairs(args.pairs)
    cfg = judger.JudgerConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    times = {"score": [], "generate": []}
    for _ in range(2):
        for name, departures in (("score", BeyondSEIF(score_judge=True)), ("generate", BeyondSEIF())):
            verdicts, seconds = timed(model, tokenizer, items, cfg, departures)
            times[name].append(seconds)
            if name == "score":
                score_verdicts = verdicts
            else:
                generate_verdicts = verdicts
    score_rate = len(items) / min(times["score"])
    generate_rate = len(items) / min(times["generate"])
    generated_tokens = round(written[-1] / len(items))
    agree = sum(a == b for a, b in zip(score_verdicts, generate_verdicts)) / len(items)
    print(f"model {args.model}, {len(items)} pairs, device {model.device}")
    print(f"score mode:    {score_rate:.2f} verdicts/s (best of {[round(t, 1) for t in times['score']]} s)")
    print(f"generate mode: {generate_rate:.2f} verdicts/s (best of {[round(t, 1) for t in times['generate']]} s), "
          f"max_new_tokens {args.max_new_tokens}")
    print(f"generate mode wrote {generated_tokens} tokens per pair on average")
    print(f"score mode is {score_rate / generate_rate:.1f}x faster; decisions agree on {agree:.0%}")
    print(f"generate-mode verdicts: {generate_verdicts}")
    print(f"score-mode verdicts:    {score_verdicts}")


if __name__ == "__main__":
    main()
