"""IFEval evaluation: SEIF's yardstick, run before training and after every round.

IFEval (Zhou et al., 2023) has 541 prompts, each with 1 to 3 instructions a rule can check
("answer in fewer than 100 words", "no commas", ...). We answer every prompt greedily, as a
single user turn with the model's chat template, and report four numbers:

    prompt_strict  fraction of prompts whose instructions were ALL followed
    inst_strict    fraction of all instructions followed
    prompt_loose / inst_loose  the same, forgiving a preamble line, a sign-off line and
                   markdown '*' (see ifeval_checks.loose_variants)

The rules come from lm-eval (pip install -r requirements-extra.txt); see ifeval_checks.py.

Usage:
    python evaluate.py --model Qwen/Qwen2.5-0.5B-Instruct           # hub id, local dir or .gguf
    python evaluate.py --model runs/seif/round1/follower --limit 50 --max-new-tokens 512
    python evaluate.py --responses my_responses.jsonl               # score answers, no model

By default the prompts come from the `google/IFEval` dataset on the Hugging Face hub; offline,
pass a local copy with `--data input_data.jsonl` (the same JSONL format). `--responses` reads
rows with `prompt` and `response`, like IFEval's own scorer. Outputs go to --out (default
runs/eval/<model or responses file name>): responses.jsonl (prompt, response), results.jsonl
(verdicts per prompt and instruction) and metrics.json. The training loop calls
evaluate_model() in-process instead.
"""

import argparse
import json
from pathlib import Path

import data
import ifeval_checks
import rollout
from data import UserError

IFEVAL_REPO = "google/IFEval"
IFEVAL_FILE = "ifeval_input_data.jsonl"  # the dataset's one data file
IFEVAL_FIELDS = ("prompt", "instruction_id_list", "kwargs")


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


def score_responses(rows, responses, path="responses"):
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
        per_prompt.append(ifeval_checks.score_prompt(row, response["response"]))
    return ifeval_checks.aggregate(per_prompt), per_prompt


def evaluate_model(model, tokenizer, rows, max_new_tokens=1280, batch_size=64):
    """Answer every IFEval row greedily and score it: (metrics, per_prompt results, responses)."""
    messages_list = [[{"role": "user", "content": row["prompt"]}] for row in rows]
    texts = rollout.generate(
        model, tokenizer, messages_list, group_size=1, max_new_tokens=max_new_tokens,
        greedy=True, batch_size=batch_size, desc="ifeval",
    ).texts
    per_prompt = [ifeval_checks.score_prompt(row, text) for row, text in zip(rows, texts, strict=True)]
    responses = [{"prompt": row["prompt"], "response": text} for row, text in zip(rows, texts)]
    return ifeval_checks.aggregate(per_prompt), per_prompt, responses


# -----------------------------------------------------------------------------
# Command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="hub id, local directory or .gguf file to evaluate")
    source.add_argument("--responses", help="JSONL of {prompt, response} rows to score, no model")
    parser.add_argument("--data", help="local IFEval JSONL (default: google/IFEval from the hub)")
    parser.add_argument("--limit", type=int, help="only the first N prompts (or responses)")
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
    print(f"IFEval, {n_prompts} prompts, {name}")
    for key in ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose"):
        print(f"  {key:<14} {100 * metrics[key]:5.1f}")
    print(json.dumps({"name": name, "n_prompts": n_prompts, **metrics}))


def main(argv=None):
    args = parse_args(argv)
    if args.responses:
        rows = load_ifeval(args.data)
        responses = read_responses(args.responses)[: args.limit]
        metrics, per_prompt = score_responses(rows, responses, args.responses)
        responses = [row for _, row in responses]
    else:
        rows = load_ifeval(args.data, args.limit)
        model, tokenizer = rollout.load(args.model)
        metrics, per_prompt, responses = evaluate_model(
            model, tokenizer, rows, args.max_new_tokens, args.batch_size
        )
    out = Path(args.out or Path("runs") / "eval" / run_name(args))
    data.write_jsonl(out / "responses.jsonl", responses)
    data.write_jsonl(out / "results.jsonl", per_prompt)
    data.write_json(out / "metrics.json", {"n_prompts": len(per_prompt), **metrics})
    print_metrics(metrics, len(per_prompt), run_name(args))
    print(f"wrote {out}/responses.jsonl, results.jsonl, metrics.json")
    return metrics


if __name__ == "__main__":
    data.run_cli(main)
