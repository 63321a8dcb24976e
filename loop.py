"""The SEIF self-evolution loop: R rounds of Instructor and Follower training, one command.

Round T (SEIF.md):
  1. the frozen helper H_T is the base model (T = 1) or the previous Follower F_{T-1};
     it plays Filter, Judger and the answerer inside the Instructor's reward
  2. train the Instructor I_T from I_{T-1} with GRPO on the seeds (1 epoch)
  3. I_T writes this round's evolved instructions; the Filter removes bad sets
  4. train the Follower F_T from F_{T-1} on them (3 epochs in round 1, 1 afterwards)
  5. evaluate F_T on IFEval

Outputs, under runs/<name>/:
  metrics.jsonl                 one row per GRPO step and per evaluation
  progress.json                 the stages already finished (a restarted run skips them)
  settings.json                 the settings of the run's first start (never rewritten)
  settings_changes.jsonl        one row per later start that changed settings: {field: [old, new]}
  round_<T>/instructor/         I_T, loadable by transformers
  round_<T>/instructions.jsonl  the kept evolved instructions
  round_<T>/filter_report.json  how many sets each check removed, and why
  round_<T>/follower/           F_T
  round_<T>/ifeval.json         F_T's IFEval numbers (round_0/ifeval.json: the base model), in
                                both formats of evaluate.py: "plain" (lm-eval's way, comparable
                                with published numbers) and "seif" (the Follower's system prompt,
                                only the <answer> scored, as SEIF validates); metrics.jsonl has
                                them as plain_prompt_strict, seif_prompt_strict, ...
  round_<T>/ifeval_results_<format>.jsonl  the verdicts per prompt and instruction

Restarting: run the same command again. Finished stages are skipped and an interrupted training
stage resumes from its last step checkpoint. A stage that had nothing to do (IFEval skipped:
no network, or loop.eval_limit=0) is not recorded as finished, so a later start runs it. The
settings may change between starts only where no finished (or checkpointed) stage depends on
them; otherwise the run stops at once with an error naming the fields. loop.model matters to
every stage; the IFEval settings (EVAL_FIELDS) to evaluations only; every other field to every
stage after round 0's evaluation, except SAFE_TO_CHANGE: the run's name and folder, loop.rounds
(more rounds continue a finished run) and the batch-size and memory knobs.

Run:
    python loop.py --preset demo                    # SmolLM2-135M on CPU, minutes
    python loop.py --preset qwen0.5b --name qwen    # Qwen2.5-0.5B-Instruct on one GPU
    python loop.py --preset demo --set loop.rounds=2 --set follower_grpo.lr=2e-6
"""

import argparse
import dataclasses
import gc
import json
import random
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState

import checkpoints
import filter as conflict_filter
import follower
import grpo
import instructor
import rollout
from data import UserError, append_jsonl, default_seeds_path, read_jsonl, read_prompts, run_cli, write_json, write_jsonl
from filter import FilterConfig
from grpo import GRPOConfig
from instructor import InstructorConfig
from judger import JudgerConfig
from presets import PRESETS


@dataclass
class LoopConfig:
    model: str = "Qwen/Qwen2.5-0.5B-Instruct"  # base model: I_0 = F_0 = H_1
    helper: str = ""  # a separate frozen judge model; "" = SEIF's self-judging (base, then F_{T-1})
    seeds: str = str(default_seeds_path())  # JSONL/JSON/CSV/parquet with a prompt or instruction field
    max_seeds: int = 0  # use only the first N seeds; 0 = all
    rounds: int = 3  # SEIF: 3 rounds
    instructor_epochs: int = 1  # SEIF: 1 epoch every round
    follower_epochs_first: int = 3  # SEIF: "sufficient early": 3 epochs in round 1 ...
    follower_epochs_later: int = 1  # ... "moderate late": 1 epoch afterwards
    instructor_steps: int = 0  # cap on GRPO steps per stage (demos, tests); 0 = no cap
    follower_steps: int = 0
    instruction_max_new_tokens: int = 512  # the Instructor's reply when generating instructions
    template_fallback: bool = False  # not SEIF: if the Filter keeps no row, train the Follower on
    # fixed IFEval-template instructions instead (instructor.template_rows); for tiny demo models
    eval_limit: int = 100  # IFEval prompts per evaluation; 0 skips evaluation, 541 = all
    eval_max_new_tokens: int = 1024
    eval_data: str = ""  # local IFEval JSONL; "" = the google/IFEval hub dataset
    run_name: str = "seif"
    runs_dir: str = "runs"
    seed: int = 0


@dataclass
class Settings:
    loop: LoopConfig = field(default_factory=LoopConfig)
    instructor_grpo: GRPOConfig = field(default_factory=lambda: GRPOConfig(max_new_tokens=512))
    follower_grpo: GRPOConfig = field(default_factory=GRPOConfig)
    instructor: InstructorConfig = field(default_factory=InstructorConfig)
    judger: JudgerConfig = field(default_factory=JudgerConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)


# -----------------------------------------------------------------------------
# Settings from the command line: a preset, then --set section.field=value overrides


def add_common_arguments(parser):
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a preset of overrides (presets.py)")
    parser.add_argument("--model", help="base/start model: hub id, local dir, .gguf, pkg:PACKAGE/FILE, or an offline short name (models.py)")
    parser.add_argument("--helper", help="a separate frozen judge model (default: SEIF's self-judging)")
    parser.add_argument("--seeds", help="seed instructions file")
    parser.add_argument("--name", help="run name: outputs go to runs/<name>/")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override any setting, e.g. --set follower_grpo.lr=2e-6 (repeatable)")


def settings_from(args):
    settings = Settings()
    overrides = PRESETS[args.preset] if args.preset else {}
    for section, values in overrides.items():
        for key, value in values.items():
            setattr(getattr(settings, section), key, value)
    for assignment in args.set:
        _apply_override(settings, assignment)
    for flag, key in (("model", "model"), ("helper", "helper"), ("seeds", "seeds"), ("name", "run_name")):
        if getattr(args, flag, None):
            setattr(settings.loop, key, getattr(args, flag))
    _check(settings)
    return settings


def _apply_override(settings, assignment):
    name, equals, text = assignment.partition("=")
    section_name, _, key = name.partition(".")
    section = getattr(settings, section_name, None)
    if not equals or section is None or key not in {f.name for f in dataclasses.fields(section)}:
        raise UserError(f"--set {assignment}: expected SECTION.FIELD=VALUE with SECTION one of "
                        f"{[f.name for f in dataclasses.fields(settings)]} and a field of that section")
    current = getattr(section, key)
    booleans = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    try:
        if isinstance(current, bool):
            if text.lower() not in booleans:
                raise ValueError(text)
            value = booleans[text.lower()]
        elif current is not None and not isinstance(current, tuple):
            value = type(current)(text)
        else:
            value = json.loads(text)
    except ValueError:
        raise UserError(f"--set {assignment}: {text!r} is not a valid {type(current).__name__}") from None
    setattr(section, key, value)


# Every field's allowed values: (sections, fields, test, allowed). Checked before anything
# loads, so a typo costs a one-line error instead of a model load and a crash inside training.
GRPO_SECTIONS = ("instructor_grpo", "follower_grpo")
RULES = [
    (GRPO_SECTIONS, ("lr", "temperature", "eps_high", "max_grad_norm"), lambda v: v > 0, "> 0"),
    (GRPO_SECTIONS, ("beta", "weight_decay", "checkpoint_every"), lambda v: v >= 0, ">= 0"),
    (GRPO_SECTIONS, ("group_size",), lambda v: v >= 2, ">= 2 (GRPO compares samples within a group)"),
    (GRPO_SECTIONS, ("max_new_tokens", "prompts_per_step", "prompts_per_update", "ppo_epochs",
                     "micro_batch_size", "generation_batch_size", "max_bad_updates"), lambda v: v >= 1, ">= 1"),
    (GRPO_SECTIONS, ("eps_low",), lambda v: 0 < v < 1, "in (0, 1)"),
    (GRPO_SECTIONS, ("top_p",), lambda v: 0 < v <= 1, "in (0, 1]"),
    (GRPO_SECTIONS, ("dual_clip",), lambda v: v > 1, "> 1"),
    (GRPO_SECTIONS, ("betas",), lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
    (GRPO_SECTIONS, ("aggregation",), lambda v: v in ("token-mean", "seq-mean", "seq-sum-norm"),
     "token-mean, seq-mean or seq-sum-norm"),
    (GRPO_SECTIONS, ("advantage_scale",), lambda v: v in ("group", "none"), "group or none"),
    (("loop",), ("rounds", "instructor_epochs", "follower_epochs_first", "follower_epochs_later",
                 "instruction_max_new_tokens", "eval_max_new_tokens"), lambda v: v >= 1, ">= 1"),
    (("loop",), ("max_seeds", "instructor_steps", "follower_steps", "eval_limit"), lambda v: v >= 0,
     ">= 0 (0 = no limit; eval_limit 0 = no evaluation)"),
    (("loop",), ("model", "seeds", "run_name", "runs_dir"), lambda v: v.strip() != "", "not empty"),
    (("instructor",), ("verifiable_fraction",), lambda v: 0 <= v <= 1, "in [0, 1]"),
    (("instructor",), ("generate_temperature",), lambda v: v > 0, "> 0"),
    (("instructor",), ("answer_max_new_tokens",), lambda v: v >= 1, ">= 1"),
    (("judger",), ("llm",), lambda v: v in ("generate", "score"), "generate or score"),
    (("judger",), ("score_reward",), lambda v: v in ("decision", "probability"), "decision or probability"),
    (("judger", "filter"), ("max_new_tokens", "batch_size"), lambda v: v >= 1, ">= 1"),
    (("filter",), ("max_constraint_chars",), lambda v: v >= 1, ">= 1"),
]


def _check(settings):
    for sections, names, test, allowed in RULES:
        for section in sections:
            for name in names:
                value = getattr(getattr(settings, section), name)
                try:
                    ok = test(value)
                except TypeError:  # e.g. --set follower_grpo.betas='"high"': a string, not two numbers
                    ok = False
                if not ok:
                    raise UserError(f"{section}.{name} is {value!r}: it must be {allowed}")
    for section in GRPO_SECTIONS:
        cfg = getattr(settings, section)
        if cfg.prompts_per_step % cfg.prompts_per_update:  # each rollout step splits into equal updates
            raise UserError(f"{section}.prompts_per_step ({cfg.prompts_per_step}) must be a multiple of "
                            f"{section}.prompts_per_update ({cfg.prompts_per_update})")


def read_seeds(loop_cfg):
    seeds = read_prompts(loop_cfg.seeds)
    return seeds[: loop_cfg.max_seeds] if loop_cfg.max_seeds else seeds


def read_instructions(path):
    rows = read_jsonl(path)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row.get("instruction"), str) or not isinstance(row.get("constraints"), list):
            raise UserError(f"{path}: row {number} needs an 'instruction' string and a 'constraints' list")
    return rows


def print_metrics(row):
    keys = ("role", "round", "step", "reward_mean", "format_pass", "kl", "step_time")
    print(" ".join(f"{k}={row[k]:.3g}" if isinstance(row[k], float) else f"{k}={row[k]}"
                   for k in keys if k in row))


# -----------------------------------------------------------------------------
# Training one role for one round


def make_accelerator():
    # bf16 autocast on GPU with float32 master weights: SEIF's lr of 1e-6 is below bf16's
    # resolution for typical weights, so updates to bf16 weights would round away to nothing.
    return Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")


def load_frozen(path, cfg=None):
    model, tokenizer = rollout.load(path, device="cpu" if cfg and cfg.ref_on_cpu else None)
    model.eval().requires_grad_(False)
    return model, tokenizer


def load_stage(settings, cfg, start_path, helper_path):
    """The policy (float32), its frozen reference and the frozen helper: nothing else in memory."""
    policy, tokenizer = rollout.load(start_path, dtype=torch.float32)
    helper = load_frozen(helper_path)
    reference = None
    if cfg.beta != 0:
        # in SEIF the Follower's start F_{T-1} IS the helper H_T, so one frozen copy serves both
        same = start_path == helper_path and not cfg.ref_on_cpu
        reference = helper[0] if same else load_frozen(start_path, cfg)[0]
    return policy, tokenizer, helper, reference


def train_instructor(settings, start_path, helper_path, seeds, out, log, accelerator=None, round_index=1):
    cfg = settings.instructor_grpo
    policy, tokenizer, (helper, helper_tokenizer), reference = load_stage(settings, cfg, start_path, helper_path)
    items = instructor.training_items(seeds, settings.instructor, random.Random(settings.loop.seed + round_index))

    def reward_fn(batch, texts):
        return instructor.rewards(helper, helper_tokenizer, batch, texts, settings.instructor,
                                  settings.judger, settings.filter)

    trained = grpo.train(policy, tokenizer, items, reward_fn, cfg, accelerator or make_accelerator(),
                         ref_model=reference, epochs=settings.loop.instructor_epochs,
                         max_steps=settings.loop.instructor_steps or None, seed=settings.loop.seed,
                         log=log, desc=f"round {round_index} instructor", checkpoint_dir=out + "_checkpoints")
    save_on_main(trained, tokenizer, out)


def train_follower(settings, start_path, helper_path, rows, out, epochs, log, accelerator=None, round_index=1):
    cfg = settings.follower_grpo
    policy, tokenizer, (helper, helper_tokenizer), reference = load_stage(settings, cfg, start_path, helper_path)

    def reward_fn(batch, texts):
        return follower.rewards(helper, helper_tokenizer, batch, texts, settings.judger)

    trained = grpo.train(policy, tokenizer, follower.training_items(rows), reward_fn, cfg,
                         accelerator or make_accelerator(), ref_model=reference, epochs=epochs,
                         max_steps=settings.loop.follower_steps or None, seed=settings.loop.seed,
                         log=log, desc=f"round {round_index} follower", checkpoint_dir=out + "_checkpoints")
    save_on_main(trained, tokenizer, out)


def save_on_main(model, tokenizer, out):
    if PartialState().is_main_process:
        rollout.save(model, tokenizer, out)


# -----------------------------------------------------------------------------
# Restarting a run: its finished stages must still match the settings (module docstring)

# Fields that never change what a stage produces: where the run lives, how far it goes (more
# rounds continue a finished run), and memory and speed knobs that give the same results.
SAFE_TO_CHANGE = {"loop.run_name", "loop.runs_dir", "loop.rounds", "judger.batch_size", "filter.batch_size",
                  *(f"{section}.{name}" for section in GRPO_SECTIONS for name in (
                      "micro_batch_size", "generation_batch_size", "gradient_checkpointing", "share_prompts",
                      "ref_on_cpu", "checkpoint_every", "max_bad_updates"))}
EVAL_FIELDS = {"loop.eval_limit", "loop.eval_max_new_tokens", "loop.eval_data"}  # evaluations only


def flat_settings(nested):
    """{"loop": {"rounds": 3}, ...} -> {"loop.rounds": 3, ...}, in JSON types (a tuple is a list)."""
    nested = json.loads(json.dumps(nested))
    return {f"{section}.{name}": value for section, values in nested.items() for name, value in values.items()}


def fields_behind(stage_name, fields):
    """The fields (of `fields`) that a stage's output depends on."""
    round_index, role = _stage_parts(stage_name)
    if (round_index, role) == (0, "eval"):
        return {"loop.model"} | EVAL_FIELDS  # the base model, before anything is trained
    made_with = set(fields) - SAFE_TO_CHANGE
    return made_with if role == "eval" else made_with - EVAL_FIELDS


def recorded_settings(run_dir):
    """The settings of the run's last start: settings.json with every recorded change applied."""
    recorded = flat_settings(json.loads((run_dir / "settings.json").read_text()))
    changes_path = run_dir / "settings_changes.jsonl"
    for row in read_jsonl(changes_path) if changes_path.exists() else []:
        recorded.update({name: new for name, (old, new) in row["changed"].items()})
    return recorded


def settings_changes(run_dir, settings, started):
    """{field: [old, new]} for the fields that differ from the run folder's; a UserError when a
    stage in `started` (finished or checkpointed) depends on one of them."""
    if not (run_dir / "settings.json").exists():
        return {}
    recorded, current = recorded_settings(run_dir), flat_settings(dataclasses.asdict(settings))
    changed = {name: [recorded.get(name), value] for name, value in current.items()
               if recorded.get(name) != value}
    behind = set().union(*(fields_behind(stage_name, current) for stage_name in started))
    # a field the run folder does not know yet (added to the code since) cannot be compared
    conflicts = sorted(name for name in changed if name in behind and name in recorded)
    if conflicts:
        raise UserError(f"{run_dir} has stages made with other settings: " + ", ".join(
            f"{name} was {changed[name][0]!r}, now {changed[name][1]!r}" for name in conflicts)
            + "; use the run's values or start a new run (--name)")
    return changed


def record_settings(run_dir, settings, changes):
    """The first start writes settings.json; a later one appends its changes, if any."""
    if not (run_dir / "settings.json").exists():
        write_json(run_dir / "settings.json", dataclasses.asdict(settings))
    elif changes:
        append_jsonl(run_dir / "settings_changes.jsonl",
                     {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "changed": changes})


def _checkpointed_stages(run_dir):
    """Training stages interrupted after a step checkpoint: a restart resumes them, so they count as started."""
    return sorted({f"{path.parent.parent.name}/{path.parent.name.removesuffix('_checkpoints')}"
                   for path in run_dir.glob("round_*/*_checkpoints/step_*.pt")})


# -----------------------------------------------------------------------------
# The loop


def run(settings):
    cfg = settings.loop
    run_dir = Path(cfg.runs_dir) / cfg.run_name
    progress_path = run_dir / "progress.json"
    done = json.loads(progress_path.read_text())["done"] if progress_path.exists() else []
    state = PartialState()  # several processes (accelerate launch): only the main one writes
    # before anything loads or is written: a restart may not change how finished stages were made
    changes = settings_changes(run_dir, settings, done + _checkpointed_stages(run_dir))
    seeds = read_seeds(cfg)
    state.wait_for_everyone()  # every process has read the folder before the main one writes to it
    if state.is_main_process:
        record_settings(run_dir, settings, changes)
    metrics_path = run_dir / "metrics.jsonl"
    timings = {}

    def stage(name, work, checkpoint_dir=None):
        """Run `work` unless a previous run finished it; then record it as finished.

        Training stages (with a checkpoint_dir) run on every process, data parallel, and resume
        from their last step checkpoint; generation and evaluation run on the main process while
        the others wait. A `work` that returns False did nothing (IFEval skipped): it is not
        recorded, so the next start tries it again.
        """
        if name in done:
            print(f"{name}: already done, skipping")
            return
        resumed_step = checkpoints.latest(checkpoint_dir)[0] if checkpoint_dir else None
        if state.is_main_process:  # rows of an interrupted attempt after its checkpoint would repeat
            _drop_metrics(metrics_path, name, after_step=resumed_step)
        # each stage seeds itself, so a stage redone after a crash samples exactly as the first try
        torch.manual_seed(cfg.seed + zlib.crc32(name.encode()) + state.process_index)
        start = time.time()
        finished = True
        if checkpoint_dir or state.is_main_process:
            finished = work(lambda row: _log(metrics_path, name, row)) is not False
        state.wait_for_everyone()
        timings[name] = time.time() - start
        if not finished:  # nothing done (IFEval skipped): left unrecorded, the next start tries again
            return
        done.append(name)
        if state.is_main_process:
            write_json(progress_path, {"done": done})
            if checkpoint_dir:
                shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the stage's output supersedes it
        _free_memory()

    base = cfg.model
    stage("round_0/eval", lambda log: evaluate_into(settings, base, run_dir / "round_0", log))
    instructor_path, follower_path = base, base
    for round_index in range(1, cfg.rounds + 1):
        round_dir = run_dir / f"round_{round_index}"
        helper_path = cfg.helper or follower_path  # H_T = F_{T-1} (F_0 = base)
        new_instructor, new_follower = str(round_dir / "instructor"), str(round_dir / "follower")
        epochs = cfg.follower_epochs_first if round_index == 1 else cfg.follower_epochs_later
        prefix = f"round_{round_index}"
        stage(f"{prefix}/instructor", lambda log: train_instructor(
            settings, instructor_path, helper_path, seeds, new_instructor, log, round_index=round_index),
            checkpoint_dir=new_instructor + "_checkpoints")
        stage(f"{prefix}/instructions", lambda log: generate_instructions(
            settings, new_instructor, helper_path, seeds, round_index, round_dir, log))
        instructions_path = round_dir / "instructions.jsonl"
        rows = read_jsonl(instructions_path) if instructions_path.stat().st_size else []
        if rows:
            stage(f"{prefix}/follower", lambda log: train_follower(
                settings, follower_path, helper_path, rows, new_follower, epochs, log, round_index=round_index),
                checkpoint_dir=new_follower + "_checkpoints")
            follower_path = new_follower
        else:
            print(f"round {round_index}: the Filter kept no instructions, so the Follower is unchanged")
        stage(f"{prefix}/eval", lambda log: evaluate_into(settings, follower_path, round_dir, log))
        instructor_path = new_instructor
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f}s")
    print(f"outputs are in {run_dir}/ (metrics.jsonl, round_*/)")
    return run_dir


def generate_instructions(settings, instructor_path, helper_path, seeds, round_index, round_dir, log):
    """I_T writes one evolved instruction per seed; the Filter (H_T) removes bad sets."""
    model, tokenizer = load_frozen(instructor_path)
    rows, counts = instructor.generate(model, tokenizer, seeds, round_index, settings.instructor,
                                       random.Random(settings.loop.seed + 1000 + round_index),
                                       max_new_tokens=settings.loop.instruction_max_new_tokens,
                                       batch_size=settings.instructor_grpo.generation_batch_size)
    del model
    helper, helper_tokenizer = load_frozen(helper_path)
    keep, reasons = conflict_filter.filter_sets(helper, helper_tokenizer, [r["constraints"] for r in rows],
                                                settings.filter, [r["expected_count"] for r in rows],
                                                seeds=[r["seed"] for r in rows])
    kept = [row for row, ok in zip(rows, keep) if ok]
    report = {"generation": counts, **conflict_filter.report(reasons),
              "mapped_to_ifeval": _mapped_share(rows)}
    if not kept and settings.loop.template_fallback:
        kept = instructor.template_rows(seeds, round_index, random.Random(settings.loop.seed + round_index))
        report["template_fallback"] = len(kept)
        print(f"round {round_index}: no usable Instructor output; the Follower trains on "
              f"{len(kept)} template instructions instead (loop.template_fallback)")
    write_jsonl(round_dir / "instructions.jsonl", kept)
    write_json(round_dir / "filter_report.json", report)
    log({"sampled": counts["sampled"], "parsed": len(rows), "kept": len(kept), **report["mapped_to_ifeval"]})


def _mapped_share(rows):
    verifiable = [c for row in rows if row["mode"] == "verifiable" for c in row["constraints"]]
    return {"verifiable_constraints": len(verifiable),
            "mapped": sum(c["ifeval_id"] is not None for c in verifiable),
            "mapped_fraction": instructor.mapped_fraction(verifiable)}


def evaluate_into(settings, model_path, out_dir, log):
    """IFEval on `eval_limit` prompts in both formats of evaluate.py (plain and seif); the numbers
    go to out_dir/ifeval.json and metrics.jsonl. Returns False when it skipped the evaluation."""
    cfg = settings.loop
    if not cfg.eval_limit:
        return False
    import evaluate  # needs the optional lm-eval extra

    try:
        rows = evaluate.load_ifeval(cfg.eval_data or None, limit=cfg.eval_limit)
    except UserError as error:
        if cfg.eval_data:  # the user named a file: a bad one is their error to fix
            raise
        # no network to the hub: training should not die for want of a yardstick
        print(f"IFEval skipped: {error}")
        return False
    model, tokenizer = load_frozen(model_path)
    results = {}
    for fmt in evaluate.FORMATS:
        results[fmt], per_prompt, _ = evaluate.evaluate_model(
            model, tokenizer, rows, cfg.eval_max_new_tokens, settings.follower_grpo.generation_batch_size, fmt)
        write_jsonl(Path(out_dir) / f"ifeval_results_{fmt}.jsonl", per_prompt)
    write_json(Path(out_dir) / "ifeval.json", {"model": model_path, "prompts": len(rows), **results})
    # metrics.jsonl rows stay flat: {"plain_prompt_strict": ..., "seif_prompt_strict": ..., ...}
    log({"prompts": len(rows), **{f"{fmt}_{key}": value for fmt, numbers in results.items()
                                  for key, value in numbers.items()}})
    print(f"IFEval ({len(rows)} prompts) {model_path}: " + " | ".join(
        fmt + " " + ", ".join(f"{key} {value:.3f}" for key, value in numbers.items())
        for fmt, numbers in results.items()))
    return True


def _stage_parts(stage_name):
    """"round_2/follower" -> (2, "follower")."""
    round_part, role = stage_name.split("/")
    return int(round_part.split("_")[1]), role


def _log(metrics_path, stage_name, row):
    round_index, role = _stage_parts(stage_name)
    row = {"role": role, "round": round_index, **row}
    append_jsonl(metrics_path, row)
    print_metrics(row)


def _drop_metrics(metrics_path, stage_name, after_step=None):
    """Remove a stage's rows (only those after `after_step`, when it resumes from a checkpoint)."""
    if not metrics_path.exists() or not metrics_path.stat().st_size:
        return
    round_index, role = _stage_parts(stage_name)
    rows = read_jsonl(metrics_path)
    kept = [r for r in rows if not (r.get("role") == role and r.get("round") == round_index
                                    and (after_step is None or r.get("step", -1) > after_step))]
    if len(kept) != len(rows):
        write_jsonl(metrics_path, kept)


def _free_memory():
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run SEIF's self-evolution loop.")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    run(settings_from(args))


if __name__ == "__main__":
    run_cli(main)
