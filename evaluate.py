"""IFEval evaluation: SEIF's yardstick, run before training and after every round.

IFEval (Zhou et al., 2023) has 541 prompts, each with 1 to 3 instructions a rule can check
("answer in fewer than 100 words", "no commas", ...). We answer every prompt greedily with the
model's chat template and report four numbers:

    prompt_strict  fraction of prompts whose instructions were ALL followed
    inst_strict    fraction of all instructions followed
    prompt_loose / inst_loose  the same, forgiving a preamble line, a sign-off line and
                   markdown '*' (see ifeval_checks.loose_variants)

in one or both of two formats (--format):

    plain  lm-eval's way, how published IFEval numbers are measured: the prompt alone as a
           single user turn, and the whole reply is scored
    seif   the way SEIF validates its Follower: the Follower's system prompt asks for
           <think> ... </think><answer> ... </answer> and only the text inside <answer> is
           scored; a reply that fails that format gate fails ALL its instructions, strict and
           loose. Also reports format_pass, the fraction of replies that passed the gate.

The rules come from lm-eval (pip install -r requirements-extra.txt); see ifeval_checks.py.

Usage:
    python evaluate.py --model Qwen/Qwen2.5-0.5B-Instruct           # hub id, local dir or .gguf
    python evaluate.py --model runs/seif/round_1/follower --format both --limit 50
    python evaluate.py --responses my_responses.jsonl               # score answers, no model

By default the prompts come from the `google/IFEval` dataset on the Hugging Face hub; offline,
pass a local copy with `--data input_data.jsonl` (the same JSONL format). `--responses` reads
rows with `prompt` and `response`, like IFEval's own scorer (`prompt` is the IFEval prompt,
without any system prompt). Outputs go to --out (default runs/eval/<model or responses file
name>): for each format, responses_<format>.jsonl (prompt, response; --model only) and
results_<format>.jsonl (verdicts per prompt and instruction), and metrics.json with the numbers
of every format. The training loop calls evaluate_model() in-process instead, for both formats.
"""

import argparse
import json
from pathlib import Path

import data
import reply_format
import ifeval_checks
import rollout
from data import UserError

IFEVAL_REPO = "google/IFEval"
IFEVAL_FILE = "ifeval_input_data.jsonl"  # the dataset's one data file
IFEVAL_FIELDS = ("prompt", "instruction_id_list", "kwargs")
FORMATS = ("plain", "seif")  # see the module docstring


# -----------------------------------------------------------------------------
# The benchmark data


def load_ifeval(data_path=None, limit=None):
    """IFEval rows (key, prompt, instruction_id_list, kwargs) from a JSONL file, or from the hub."""
    path = data_path or _download_ifeval()
    rows = data.read_jsonl(path)
    for number, row in enumerate(rows, start=1):
        missing = [field for field in IFEVAL_FIELDS if field not in row]
        if missing:
            raise UserError(f"{path}: row {number}: not an IFEval row (no {', '.join(missing)})")
    return rows[:limit] if limit else rows


def _download_ifeval():
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id=IFEVAL_REPO, repo_type="dataset", filename=IFEVAL_FILE)
    except Exception as error:  # no network, hub down, rate limit: all mean "use a local copy"
        raise UserError(
            f"cannot download {IFEVAL_REPO} from the Hugging Face hub ({type(error).__name__}); "
            f"pass a local copy with --data path/to/input_data.jsonl"
        ) from None


def read_responses(path):
    """[(line number, row)] for a JSONL file of {"prompt": ..., "response": ...} rows."""
    rows = data.read_jsonl(path)  # reports unreadable files and bad JSON with the line number
    text = Path(path).read_text(encoding="utf-8-sig")
    line_numbers = [n for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    for line_number, row in zip(line_numbers, rows):
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("response"), str):
            raise UserError(f"{path}: line {line_number}: needs string fields 'prompt' and 'response'")
    return list(zip(line_numbers, rows))


# -----------------------------------------------------------------------------
# Scoring


def chat(row, fmt):
    """One IFEval prompt as a chat: a lone user turn (plain), or after the Follower's system prompt (seif)."""
    if fmt == "seif":
        return reply_format.messages(row["prompt"])
    return [{"role": "user", "content": row["prompt"]}]


def score_reply(row, reply, fmt):
    """Verdicts for one reply: on all of it (plain), or on the text inside <answer> (seif)."""
    if fmt == "plain":
        return ifeval_checks.score_prompt(row, reply)
    answer = reply_format.extract_answer(reply)
    # SEIF's format gate: a reply outside the format follows no instruction. Scoring "" gives
    # exactly that, since an empty reply fails every check, strict and loose (ifeval_checks).
    return {**ifeval_checks.score_prompt(row, answer or ""), "format_pass": answer is not None}


def summarize(per_prompt, fmt):
    """The four IFEval numbers, and for seif the fraction of replies that passed the format gate."""
    metrics = ifeval_checks.aggregate(per_prompt)
    if fmt == "seif":
        metrics["format_pass"] = sum(r["format_pass"] for r in per_prompt) / len(per_prompt)
    return metrics


def score_responses(rows, responses, path="responses", fmt="plain"):
    """Score [(line number, {prompt, response})] against the IFEval rows with the same prompt."""
    by_prompt = {row["prompt"]: row for row in rows}
    seen = set()
    per_prompt = []
    for line_number, response in responses:
        row = by_prompt.get(response["prompt"])
        if row is None:
            raise UserError(f"{path}: line {line_number}: prompt is not in the IFEval data "
                            f"({response['prompt'][:60]!r}...)")
        if response["prompt"] in seen:
            raise UserError(f"{path}: line {line_number}: a second response to the same prompt")
        seen.add(response["prompt"])
        per_prompt.append(score_reply(row, response["response"], fmt))
    return summarize(per_prompt, fmt), per_prompt


def evaluate_model(model, tokenizer, rows, max_new_tokens=1280, batch_size=64, fmt="plain"):
    """Answer every IFEval row greedily in format `fmt` and score it: (metrics, per_prompt results, responses)."""
    texts = rollout.generate(
        model, tokenizer, [chat(row, fmt) for row in rows], group_size=1, max_new_tokens=max_new_tokens,
        greedy=True, batch_size=batch_size, desc=f"ifeval {fmt}",
    ).texts
    per_prompt = [score_reply(row, text, fmt) for row, text in zip(rows, texts, strict=True)]
    responses = [{"prompt": row["prompt"], "response": text} for row, text in zip(rows, texts)]
    return summarize(per_prompt, fmt), per_prompt, responses


# -----------------------------------------------------------------------------
# Command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="hub id, local directory or .gguf file to evaluate")
    source.add_argument("--responses", help="JSONL of {prompt, response} rows to score, no model")
    parser.add_argument("--data", help="local IFEval JSONL (default: google/IFEval from the hub)")
    parser.add_argument("--limit", type=int, help="only the first N prompts (or responses)")
    parser.add_argument("--format", choices=FORMATS + ("both",), default="plain",
                        help="plain: lm-eval's way, comparable with published numbers (default); "
                             "seif: the Follower's system prompt, only <answer> scored; both")
    # lm-eval's IFEval task allows 1280 new tokens; the longest IFEval answers ask for 800+ words.
    parser.add_argument("--max-new-tokens", type=int, default=1280)
    parser.add_argument("--batch-size", type=int, default=64, help="prompts per generate call")
    parser.add_argument("--out", help="output folder (default runs/eval/<name>)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def run_name(args):
    name = Path(str(args.model or args.responses).rstrip("/")).name
    return name.removesuffix(".gguf").removesuffix(".jsonl")


def print_metrics(metrics, n_prompts, name):
    """metrics: {format: numbers}."""
    print(f"IFEval, {n_prompts} prompts, {name}")
    for fmt, numbers in metrics.items():
        print(f"  {fmt}")
        for key, value in numbers.items():
            print(f"    {key:<14} {100 * value:5.1f}")
    print(json.dumps({"name": name, "n_prompts": n_prompts, **metrics}))


def main(argv=None):
    args = parse_args(argv)
    formats = FORMATS if args.format == "both" else (args.format,)
    out = Path(args.out or Path("runs") / "eval" / run_name(args))
    if args.responses:
        rows = load_ifeval(args.data)
        responses = read_responses(args.responses)[: args.limit]
    else:
        rows = load_ifeval(args.data, args.limit)
        model, tokenizer = rollout.load(args.model)
    metrics = {}
    for fmt in formats:
        if args.responses:
            metrics[fmt], per_prompt = score_responses(rows, responses, args.responses, fmt)
        else:
            metrics[fmt], per_prompt, generated = evaluate_model(
                model, tokenizer, rows, args.max_new_tokens, args.batch_size, fmt
            )
            data.write_jsonl(out / f"responses_{fmt}.jsonl", generated)
        data.write_jsonl(out / f"results_{fmt}.jsonl", per_prompt)
    data.write_json(out / "metrics.json", {"n_prompts": len(per_prompt), **metrics})
    print_metrics(metrics, len(per_prompt), run_name(args))
    print(f"wrote {out}/metrics.json and, per format, results_<format>.jsonl"
          + ("" if args.responses else " and responses_<format>.jsonl"))
    return metrics


if __name__ == "__main__":
    data.run_cli(main)
