"""The command line of each role script: `python instructor.py ...`, `follower.py`, `filter.py`,
`judger.py`. Each role file ends by handing its arguments to `main` here, so that the role files
hold SEIF and this file holds the argument parsing (loop.py's command line is its own).

    python instructor.py train --seeds data/seeds.jsonl --out runs/x/instructor [--preset demo]
    python instructor.py generate --model runs/x/instructor --out runs/x/instructions.jsonl --round 1
    python filter.py --model Qwen/Qwen2.5-0.5B-Instruct --instructions x.jsonl --out kept.jsonl
    python follower.py train --instructions kept.jsonl --out runs/x/follower [--preset qwen0.5b]
    python judger.py --model Qwen/Qwen2.5-0.5B-Instruct --answer "hi" --constraint "Use lowercase."
"""

import argparse
import random
import sys
from dataclasses import dataclass, field

import torch
from accelerate import PartialState

import filter as conflict_filter  # `filter` is also a Python builtin
import follower
import instructor
import judger
import rollout
from data import UserError, read_jsonl, run_cli, write_json, write_jsonl
from filter import FilterConfig
from grpo import GRPOConfig
from instructor import InstructorConfig
from judger import JudgerConfig
from reply_format import parse_verdict, strip_think
from settings import BeyondSEIF, LoopConfig, add_arguments, from_args, read_seeds


@dataclass
class InstructorSettings:
    """The sections `python instructor.py` reads (loop.Settings has them all)."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    instructor_grpo: GRPOConfig = field(default_factory=instructor.grpo_config)
    instructor: InstructorConfig = field(default_factory=InstructorConfig)
    judger: JudgerConfig = field(default_factory=JudgerConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    beyond_seif: BeyondSEIF = field(default_factory=BeyondSEIF)


@dataclass
class FollowerSettings:
    """The sections `python follower.py` reads (loop.Settings has them all)."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    follower_grpo: GRPOConfig = field(default_factory=GRPOConfig)
    judger: JudgerConfig = field(default_factory=JudgerConfig)
    beyond_seif: BeyondSEIF = field(default_factory=BeyondSEIF)


def seed_sampling(seed):
    """The same samples on every run with the same settings; under `accelerate launch` each
    process draws its own (as the loop's stages do, run_folder.begin_stage)."""
    torch.manual_seed(seed + PartialState().process_index)


def instructor_main(argv=None):
    parser = argparse.ArgumentParser(description="Train the SEIF Instructor, or generate instructions.")
    parser.add_argument("command", choices=["train", "generate"])
    parser.add_argument("--out", required=True, help="train: checkpoint dir; generate: JSONL file")
    parser.add_argument("--round", type=int, default=1, help="generate: the round number to record")
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = from_args(args, InstructorSettings())
    seed_sampling(settings.loop.seed)
    seeds = read_seeds(settings.loop)
    if args.command == "train":
        instructor.train(settings, settings.loop.model, settings.loop.helper or settings.loop.model, seeds, args.out)
        print(f"instructor saved to {args.out}")
    else:
        model, tokenizer = rollout.load(settings.loop.model)
        rows, counts = instructor.generate(model, tokenizer, seeds, args.round, settings.instructor,
                                           random.Random(settings.loop.seed),
                                           max_new_tokens=settings.loop.instruction_max_new_tokens,
                                           batch_size=settings.instructor_grpo.generation_batch_size,
                                           departures=settings.beyond_seif)
        write_jsonl(args.out, rows)
        print(f"{len(rows)} instructions written to {args.out} (dropped: {counts})")


def read_instructions(path, needs_seed=False):
    """Instruction rows from a JSONL file, each checked for what training needs (`needs_seed`:
    the pmi_judge departure reads each row's seed request)."""
    rows = read_jsonl(path)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row.get("instruction"), str) or not isinstance(row.get("constraints"), list):
            raise UserError(f"{path}: row {number} needs an 'instruction' string and a 'constraints' list")
        if not all(isinstance(c, dict) and isinstance(c.get("text"), str) for c in row["constraints"]):
            raise UserError(f"{path}: row {number}: every constraint must be an object with a 'text' string")
        if needs_seed and not isinstance(row.get("seed"), str):
            raise UserError(f"{path}: row {number} needs a 'seed' string (the request without its constraints): "
                            "beyond_seif.pmi_judge compares the answer's likelihood with and without each constraint")
    return rows


def follower_main(argv=None):
    parser = argparse.ArgumentParser(description="Train the SEIF Follower for one round.")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--instructions", required=True, help="instructions JSONL (instructor.py generate)")
    parser.add_argument("--out", required=True, help="where to save the trained Follower")
    parser.add_argument("--epochs", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = from_args(args, FollowerSettings())
    seed_sampling(settings.loop.seed)
    follower.train(settings, settings.loop.model, settings.loop.helper or settings.loop.model,
                   read_instructions(args.instructions, settings.beyond_seif.pmi_judge), args.out, args.epochs)
    print(f"follower saved to {args.out}")


def filter_main(argv=None):
    parser = argparse.ArgumentParser(description="Remove self-contradictory constraint sets.")
    parser.add_argument("--model", help="hub id, local directory or .gguf file (not needed with --no-llm)")
    parser.add_argument("--instructions", required=True, help="JSONL rows with a `constraints` list")
    parser.add_argument("--out", required=True, help="JSONL file for the kept rows")
    parser.add_argument("--report", help="JSON file for the removal report")
    parser.add_argument("--no-llm", action="store_true", help="no LLM check (keep what the cheap checks keep)")
    parser.add_argument("--checks", action="store_true", help="cheap checks first (not SEIF: beyond_seif.filter_checks)")
    parser.add_argument("--rules-only", action="store_true",
                        help="also remove sets with a constraint no IFEval rule checks (the demo's setting)")
    parser.add_argument("--max-new-tokens", type=int, default=FilterConfig.max_new_tokens)
    args = parser.parse_args(argv)
    cfg = FilterConfig(llm=not args.no_llm, max_new_tokens=args.max_new_tokens)
    departures = BeyondSEIF(filter_checks=args.checks, rules_only=args.rules_only)
    if cfg.llm and not args.model:
        raise UserError("--model is required unless --no-llm is given")
    rows = read_jsonl(args.instructions)
    for number, row in enumerate(rows, 1):
        constraints = row.get("constraints")
        if not isinstance(constraints, list) or not all(isinstance(c, dict) for c in constraints):
            raise UserError(f"{args.instructions}: row {number}: `constraints` must be a list "
                            f"of objects with a `text` field")
    model, tokenizer = rollout.load(args.model) if cfg.llm else (None, None)
    keep, reasons = conflict_filter.filter_sets(
        model, tokenizer, [row["constraints"] for row in rows], cfg, departures,
        [row.get("expected_count") for row in rows], [row.get("seed") for row in rows])
    write_jsonl(args.out, [row for row, kept in zip(rows, keep) if kept])
    summary = conflict_filter.report(reasons, departures)
    if args.report:
        write_json(args.report, summary)
    removed = ", ".join(f"{key} {n}" for key, n in summary["removed"].items() if n) or "none"
    print(f"kept {summary['kept']} of {summary['total']} (removed: {removed})")


def judger_main(argv=None):
    parser = argparse.ArgumentParser(description="Ask the Judger whether an answer meets a constraint.")
    parser.add_argument("--model", required=True, help="hub id, local directory or .gguf file")
    parser.add_argument("--answer", required=True)
    parser.add_argument("--constraint", required=True, help="the constraint, one sentence")
    parser.add_argument("--score", action="store_true", help="P([[1]]) in one pass (not SEIF: beyond_seif.score_judge)")
    parser.add_argument("--pmi", metavar="REQUEST",
                        help="the PMI verdict given the seed request (not SEIF: beyond_seif.pmi_judge)")
    parser.add_argument("--max-new-tokens", type=int, default=JudgerConfig.max_new_tokens)
    args = parser.parse_args(argv)
    answer = strip_think(args.answer).strip()
    if not answer:
        raise UserError("the answer is empty (an empty answer is always judged 0)")
    model, tokenizer = rollout.load(args.model)
    messages = [judger.judge_messages(answer, args.constraint)]
    if args.pmi is not None:
        from beyond_seif import pmi_judge
        value = pmi_judge.pmi(model, tokenizer, [args.pmi], [(answer, args.constraint)])[0]
        print(f"PMI = {value:.4f} per answer token  verdict: {int(value > 0)}")
        return
    if args.score:
        from beyond_seif import score_judge
        probability = score_judge.llm_score(model, tokenizer, messages, batch_size=1)[0]
        print(f"P([[1]]) = {probability:.3f}  verdict: {int(probability > 0.5)}")
        return
    text = rollout.generate(model, tokenizer, messages, greedy=True, max_new_tokens=args.max_new_tokens).texts[0]
    print(text.strip())
    print(f"verdict: {parse_verdict(text)}")


MAINS = {"instructor": instructor_main, "follower": follower_main, "filter": filter_main, "judger": judger_main}


def main(role, argv=None):
    """Run `role`'s command line on `argv` (default: sys.argv), with clear one-line errors."""
    run_cli(lambda: MAINS[role](sys.argv[1:] if argv is None else argv))
