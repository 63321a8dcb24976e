"""SEIF's self-evolution loop: R rounds of Instructor and Follower training, one command.

Round T = 1 .. R, in SEIF's notation (I = Instructor, F = Follower, I_0 = F_0 = the base model):
  1. H_T = F_{T-1}: the frozen helper, one checkpoint that plays the Filter, the Judger and the
     answerer inside the Instructor's reward (SEIF's self-judging: no stronger teacher)
  2. I_T = GRPO(I_{T-1}) on the seed instructions, 1 epoch; reward through H_T (instructor.py)
  3. I_T writes one evolved instruction per seed; the Filter (H_T) removes bad sets (filter.py)
  4. F_T = GRPO(F_{T-1}) on them, 3 epochs in round 1 and 1 afterwards; reward: H_T's verdicts
     (follower.py, judger.py)
  5. evaluate F_T on IFEval (evaluate.py); round 0 evaluates the base model
`run()` at the bottom of this file is these five steps. Every default is SEIF's; the departures
from SEIF's code (rule checks, the echo guard, ...) are in beyond_seif/, each behind one setting
of the `beyond_seif` section that is off unless a preset turns it on (README, "Beyond SEIF").

Outputs, under runs/<name>/:
  metrics.jsonl                 one row per GRPO step and per evaluation
  progress.json                 the stages already finished (a restarted run skips them)
  settings.json                 the settings of the run's first start (never rewritten)
  settings_changes.jsonl        one row per later start that changed settings: {field: [old, new]}
  round_<T>/instructor/         I_T, loadable by transformers
  round_<T>/instructor_samples.jsonl  every GRPO sample of its training: prompt, completion, reward
  round_<T>/instructions.jsonl  the kept evolved instructions
  round_<T>/filter_report.json  how many sets each check removed, and why
  round_<T>/follower/           F_T
  round_<T>/follower_samples.jsonl    the same for F_T's training
  round_<T>/ifeval.json         F_T's IFEval numbers (round_0: the base model) in both formats of
                                evaluate.py, "plain" and "seif"; metrics.jsonl has them as
                                plain_prompt_strict, seif_prompt_strict, ...
  round_<T>/ifeval_results_<format>.jsonl  the verdicts per prompt and instruction
  plots/                        the run's figures (plot.py), drawn at the end of every run

Restarting: run the same command again. Finished stages are skipped and an interrupted training
stage resumes from its last step checkpoint. A stage that had nothing to do (IFEval skipped: no
network, or loop.eval_limit=0) is not recorded as finished, so a later start runs it. Settings
may change between starts only where no finished (or checkpointed) stage depends on them
(settings.settings_changes); otherwise the run stops at once with an error naming the fields.

Run:
    python loop.py --preset seif --model Qwen/Qwen2.5-0.5B-Instruct   # the paper and nothing else
    python loop.py --preset demo                    # SmolLM2-135M on CPU, minutes
    python loop.py --preset qwen0.5b --name qwen    # Qwen2.5-0.5B-Instruct on one GPU
    python loop.py --preset demo --set loop.rounds=2 --set follower_grpo.lr=2e-6
    accelerate launch --num_processes 2 loop.py --preset qwen0.5b   # data parallel
"""

import argparse
import random
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import PartialState

import filter as conflict_filter
import follower
import instructor
import plot
import training
from data import UserError, read_jsonl, run_cli, write_json, write_jsonl
from filter import FilterConfig
from grpo import GRPOConfig
from instructor import InstructorConfig
from judger import JudgerConfig
from run_folder import begin_stage, end_stage, metrics_logger, open_run_folder
from settings import BeyondSEIF, LoopConfig, add_arguments, from_args, read_seeds


@dataclass
class Settings:
    """Every section a loop run reads; each config lives next to the code it configures."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    instructor_grpo: GRPOConfig = field(default_factory=instructor.grpo_config)
    follower_grpo: GRPOConfig = field(default_factory=GRPOConfig)
    instructor: InstructorConfig = field(default_factory=InstructorConfig)
    judger: JudgerConfig = field(default_factory=JudgerConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    beyond_seif: BeyondSEIF = field(default_factory=BeyondSEIF)  # departures from SEIF's code, all off


def settings_from(args):
    """The loop's Settings from parsed command-line arguments (see settings.py)."""
    return from_args(args, Settings())


# -----------------------------------------------------------------------------
# The steps of a round that are not training


def generate_instructions(settings, instructor_path, helper_path, seeds, round_index, round_dir, log):
    """I_T writes one evolved instruction per seed; the Filter (H_T) removes bad sets."""
    departures = settings.beyond_seif
    model, tokenizer = training.load_frozen(instructor_path)
    rows, counts = instructor.generate(model, tokenizer, seeds, round_index, settings.instructor,
                                       random.Random(settings.loop.seed + 1000 + round_index),
                                       max_new_tokens=settings.loop.instruction_max_new_tokens,
                                       batch_size=settings.instructor_grpo.generation_batch_size,
                                       departures=departures)
    del model
    helper, helper_tokenizer = training.load_frozen(helper_path)
    keep, reasons = conflict_filter.filter_sets(helper, helper_tokenizer, [r["constraints"] for r in rows],
                                                settings.filter, departures, [r["expected_count"] for r in rows],
                                                [r["seed"] for r in rows])
    kept = [row for row, ok in zip(rows, keep) if ok]
    report = {"generation": counts, **conflict_filter.report(reasons, departures)}
    if departures.rules:  # how many verifiable constraints a rule checks
        from beyond_seif import rules
        report["mapped_to_ifeval"] = rules.mapping_report(
            [c for row in rows if row["mode"] == "verifiable" for c in row["constraints"]])
    write_jsonl(round_dir / "instructions.jsonl", kept)
    write_json(round_dir / "filter_report.json", report)
    log({"sampled": counts["sampled"], "parsed": len(rows), "kept": len(kept), **report.get("mapped_to_ifeval", {})})


def evaluate_into(settings, model_path, out_dir, log):
    """IFEval on `eval_limit` prompts in both formats of evaluate.py (plain and seif); the numbers
    go to out_dir/ifeval.json and metrics.jsonl. Returns False when it skipped the evaluation."""
    loop_cfg = settings.loop
    if not loop_cfg.eval_limit:
        return False
    import evaluate  # needs the optional lm-eval extra

    try:
        rows = evaluate.load_ifeval(loop_cfg.eval_data or None, limit=loop_cfg.eval_limit)
    except UserError as error:
        if loop_cfg.eval_data:  # the user named a file: a bad one is their error to fix
            raise
        # no network to the hub: training should not die for want of a yardstick
        print(f"IFEval skipped: {error}")
        return False
    model, tokenizer = training.load_frozen(model_path)
    results = {}
    for fmt in evaluate.FORMATS:
        results[fmt], per_prompt, _ = evaluate.evaluate_model(
            model, tokenizer, rows, loop_cfg.eval_max_new_tokens, settings.follower_grpo.generation_batch_size, fmt)
        write_jsonl(Path(out_dir) / f"ifeval_results_{fmt}.jsonl", per_prompt)
    write_json(Path(out_dir) / "ifeval.json", {"model": model_path, "prompts": len(rows), **results})
    # metrics.jsonl rows stay flat: {"plain_prompt_strict": ..., "seif_prompt_strict": ..., ...}
    log({"prompts": len(rows), **{f"{fmt}_{key}": value for fmt, numbers in results.items()
                                  for key, value in numbers.items()}})
    print(f"IFEval ({len(rows)} prompts) {model_path}: " + " | ".join(
        fmt + " " + ", ".join(f"{key} {value:.3f}" for key, value in numbers.items())
        for fmt, numbers in results.items()))
    return True


# -----------------------------------------------------------------------------
# The loop


def run(settings):
    """R rounds of SEIF (module docstring); returns the run folder's path."""
    loop_cfg = settings.loop
    run_folder = open_run_folder(settings)
    on_main = PartialState().is_main_process  # generation, evaluation and file writes
    seeds = read_seeds(loop_cfg)
    base = loop_cfg.model

    # 0. IFEval of the base model
    if begin_stage(run_folder, "round_0/eval"):
        evaluated = on_main and evaluate_into(settings, base, run_folder.path / "round_0",
                                              metrics_logger(run_folder, "round_0/eval"))
        end_stage(run_folder, "round_0/eval", finished=evaluated or not on_main)

    instructor_path = follower_path = base  # I_0 = F_0 = the base model
    for round_index in range(1, loop_cfg.rounds + 1):
        round_dir = run_folder.path / f"round_{round_index}"
        new_instructor, new_follower = str(round_dir / "instructor"), str(round_dir / "follower")

        # 1. the frozen helper H_T: the base model in round 1, then the previous Follower
        helper_path = loop_cfg.helper or follower_path

        # 2. train I_T from I_{T-1} on the seeds (every process, data parallel)
        stage_name = f"round_{round_index}/instructor"
        if begin_stage(run_folder, stage_name, new_instructor + "_checkpoints"):
            instructor.train(settings, instructor_path, helper_path, seeds, new_instructor,
                             metrics_logger(run_folder, stage_name), round_index=round_index)
            end_stage(run_folder, stage_name, new_instructor + "_checkpoints")
        instructor_path = new_instructor

        # 3. I_T writes this round's instructions; the Filter (H_T) removes bad sets
        stage_name = f"round_{round_index}/instructions"
        if begin_stage(run_folder, stage_name):
            if on_main:
                generate_instructions(settings, instructor_path, helper_path, seeds, round_index,
                                      round_dir, metrics_logger(run_folder, stage_name))
            end_stage(run_folder, stage_name)
        rows = read_jsonl(round_dir / "instructions.jsonl", empty_ok=True)

        # 4. train F_T from F_{T-1} on them: 3 epochs in round 1, 1 afterwards
        stage_name = f"round_{round_index}/follower"
        epochs = loop_cfg.follower_epochs_first if round_index == 1 else loop_cfg.follower_epochs_later
        if not rows:
            print(f"round {round_index}: the Filter kept no instructions, so the Follower is unchanged")
        elif begin_stage(run_folder, stage_name, new_follower + "_checkpoints"):
            follower.train(settings, follower_path, helper_path, rows, new_follower, epochs,
                           metrics_logger(run_folder, stage_name), round_index=round_index)
            end_stage(run_folder, stage_name, new_follower + "_checkpoints")
        follower_path = new_follower if rows else follower_path

        # 5. IFEval of F_T
        stage_name = f"round_{round_index}/eval"
        if begin_stage(run_folder, stage_name):
            evaluated = on_main and evaluate_into(settings, follower_path, round_dir,
                                                  metrics_logger(run_folder, stage_name))
            end_stage(run_folder, stage_name, finished=evaluated or not on_main)

    for stage_name, seconds in run_folder.timings.items():
        print(f"{stage_name}: {seconds:.0f}s")
    if on_main:
        write_plots(run_folder.path)
    print(f"outputs are in {run_folder.path}/ (metrics.jsonl, round_*/)")
    return run_folder.path


def write_plots(run_dir):
    """The run's figures (plot.py) into run_dir/plots/; a missing matplotlib only skips them."""
    try:
        plot.plot_run(run_dir)
    except UserError as error:
        print(f"plots skipped: {error}")
        return
    print(f"plots are in {run_dir / 'plots'}/")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run SEIF's self-evolution loop.")
    add_arguments(parser)
    run(settings_from(parser.parse_args(argv)))


if __name__ == "__main__":
    run_cli(main)
