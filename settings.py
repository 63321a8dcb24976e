"""Settings from the command line, shared by loop.py and every role script.

A script's settings are one dataclass of sections (`loop`, `instructor_grpo`, `follower_grpo`,
`instructor`, `judger`, `filter`, `beyond_seif`), each a config dataclass that lives next to the
code it configures; `beyond_seif` (here) switches the departures from SEIF's code, all off. On top of the SEIF defaults written in those dataclasses come, in order: a
preset (presets.py), then `--set SECTION.FIELD=VALUE` overrides, then the --model/--helper/
--seeds/--name flags. Every field's range is checked before anything loads. A script takes only
the sections it uses; a preset's other sections are ignored there.

A run folder keeps the settings of its first start (settings.json) and every later change
(settings_changes.jsonl). A restart may change a field only if no finished (or checkpointed)
stage depends on it: loop.model matters to every stage; the IFEval settings (EVAL_FIELDS) to
evaluations only; every other field to every stage after round 0's evaluation, except
SAFE_TO_CHANGE: the run's name and folder, loop.rounds (more rounds continue a finished run) and
the batch-size and memory knobs.

This module imports no role, so every script can use it.
"""

import dataclasses
import json
import time
from dataclasses import dataclass

from data import UserError, append_jsonl, default_seeds_path, read_jsonl, read_prompts, write_json
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
    eval_limit: int = 100  # IFEval prompts per evaluation; 0 skips evaluation, 541 = all
    eval_max_new_tokens: int = 1024
    eval_data: str = ""  # local IFEval JSONL; "" = the google/IFEval hub dataset
    run_name: str = "seif"
    runs_dir: str = "runs"
    seed: int = 0


@dataclass
class BeyondSEIF:
    """Every departure from SEIF's code, each in beyond_seif/ and off by default: with all of them
    False the run is SEIF's code and imports nothing from that folder. Presets turn them on."""
    rules: bool = False  # a constraint that states one IFEval rule is checked by that rule, not the LLM
    echo_guard: bool = False  # copies of the instruction earn nothing, and non-answers get 0
    score_judge: bool = False  # LLM verdicts as P([[1]]) from one forward pass, not a generated analysis
    score_reward: str = "decision"  # score_judge: "decision" (P > 0.5 is 1) or "probability" (P itself)
    filter_checks: bool = False  # the Filter's cheap checks first: empty, duplicate, count, length, clashes
    max_constraint_chars: int = 300  # filter_checks: a longer constraint is a paragraph, not one constraint
    rules_only: bool = False  # the Filter keeps only sets whose every constraint an IFEval rule checks
    demo_prompt: bool = False  # the Instructor's verifiable mode: a short prompt after two worked examples
    lenient_instructor: bool = False  # an Instructor reply's first {...} is read, with or without the format
    lenient_follower: bool = False  # a Follower reply without <think>/<answer> is judged as a whole
    unfinished_unpaid: bool = False  # a Follower reply cut off by its token budget earns 0, read any way
    calibrated_judge: bool = False  # needs rules: P([[1]]) (or PMI) cut where the batch's rule verdicts say
    pmi_judge: bool = False  # a constraint no rule checks is met when it makes the answer likelier (PMI > 0)
    answer_gate: bool = False  # Follower reward 0 for text less fluent or on-topic than the helper's own answers
    answer_gate_quantile: float = 0.05  # answer_gate: the share of the helper's answers each threshold refuses
    answer_gate_references: int = 16  # answer_gate: how many helper answers set its thresholds
    answer_gate_lift_fence: float = 1.5  # answer_gate: lift bound = upper quartile + this x IQR (0: a quantile)
    markup_guard: bool = False  # Follower reward 0 for titles, highlights, placeholders, P.S. or quotes beyond what was asked
    markup_guard_keep: float = 0.0  # markup_guard: the share of its reward such an answer keeps (0: none)
    restrictions_deduct: bool = False  # needs rules: a limit a do-nothing reply meets (no commas) only takes reward away
    stuffing_guard: bool = False  # the Judger reads "kkkk" and "new new new" once, and a <<title>> or P.S. only where it opens a line


def read_seeds(loop_cfg):
    seeds = read_prompts(loop_cfg.seeds)
    return seeds[: loop_cfg.max_seeds] if loop_cfg.max_seeds else seeds


# -----------------------------------------------------------------------------
# The command line


def add_arguments(parser):
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a preset of overrides (presets.py)")
    parser.add_argument("--model", help="base/start model: hub id, local dir, .gguf, pkg:PACKAGE/FILE, "
                                        "or an offline short name (models.py)")
    parser.add_argument("--helper", help="a separate frozen judge model (default: SEIF's self-judging)")
    parser.add_argument("--seeds", help="seed instructions file")
    parser.add_argument("--name", help="run name: outputs go to runs/<name>/")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override any setting, e.g. --set follower_grpo.lr=2e-6 (repeatable)")


def from_args(args, settings):
    """`settings` (a dataclass of sections, at its defaults) with the preset, the --set overrides
    and the flags of `args` applied, range-checked."""
    for section, values in (PRESETS[args.preset] if args.preset else {}).items():
        if hasattr(settings, section):
            for key, value in values.items():
                setattr(getattr(settings, section), key, value)
    for assignment in args.set:
        apply_override(settings, assignment)
    for flag, key in (("model", "model"), ("helper", "helper"), ("seeds", "seeds"), ("name", "run_name")):
        if getattr(args, flag, None):
            setattr(settings.loop, key, getattr(args, flag))
    check(settings)
    return settings


BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def apply_override(settings, assignment):
    """Apply one "SECTION.FIELD=VALUE", converting VALUE to the field's type."""
    name, equals, text = assignment.partition("=")
    section_name, _, key = name.partition(".")
    section = getattr(settings, section_name, None)
    if not equals or section is None or key not in {f.name for f in dataclasses.fields(section)}:
        raise UserError(f"--set {assignment}: expected SECTION.FIELD=VALUE with SECTION one of "
                        f"{[f.name for f in dataclasses.fields(settings)]} and a field of that section")
    current = getattr(section, key)
    try:
        if isinstance(current, bool):  # bool("false") is True, so booleans get their own words
            if text.lower() not in BOOLEANS:
                raise ValueError(text)
            value = BOOLEANS[text.lower()]
        elif current is not None and not isinstance(current, tuple):
            value = type(current)(text)
        else:
            value = json.loads(text)
    except ValueError:
        raise UserError(f"--set {assignment}: {text!r} is not a valid {type(current).__name__}") from None
    setattr(section, key, value)


# -----------------------------------------------------------------------------
# Ranges

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
    (GRPO_SECTIONS, ("rollout_weights",), lambda v: v in ("auto", "bf16", "policy"), "auto, bf16 or policy"),
    (("loop",), ("rounds", "instructor_epochs", "follower_epochs_first", "follower_epochs_later",
                 "instruction_max_new_tokens", "eval_max_new_tokens"), lambda v: v >= 1, ">= 1"),
    (("loop",), ("max_seeds", "instructor_steps", "follower_steps", "eval_limit"), lambda v: v >= 0,
     ">= 0 (0 = no limit; eval_limit 0 = no evaluation)"),
    (("loop",), ("model", "seeds", "run_name", "runs_dir"), lambda v: v.strip() != "", "not empty"),
    (("instructor",), ("verifiable_fraction",), lambda v: 0 <= v <= 1, "in [0, 1]"),
    (("instructor",), ("generate_temperature",), lambda v: v > 0, "> 0"),
    (("instructor",), ("answer_max_new_tokens",), lambda v: v >= 1, ">= 1"),
    (("judger", "filter"), ("max_new_tokens", "batch_size"), lambda v: v >= 1, ">= 1"),
    (("beyond_seif",), ("score_reward",), lambda v: v in ("decision", "probability"), "decision or probability"),
    (("beyond_seif",), ("max_constraint_chars", "answer_gate_references"), lambda v: v >= 1, ">= 1"),
    (("beyond_seif",), ("answer_gate_quantile",), lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
    (("beyond_seif",), ("answer_gate_lift_fence",), lambda v: v >= 0, ">= 0"),
    (("beyond_seif",), ("markup_guard_keep",), lambda v: 0 <= v < 1, "in [0, 1)"),
]


def check(settings):
    """A UserError naming the first field out of its range (sections `settings` lacks are skipped)."""
    for sections, names, test, allowed in RULES:
        for section in (s for s in sections if hasattr(settings, s)):
            for name in names:
                value = getattr(getattr(settings, section), name)
                try:
                    ok = test(value)
                except TypeError:  # e.g. --set follower_grpo.betas='"high"': a string, not two numbers
                    ok = False
                if not ok:
                    raise UserError(f"{section}.{name} is {value!r}: it must be {allowed}")
    departures = getattr(settings, "beyond_seif", None)
    if departures and departures.calibrated_judge and not departures.rules:
        raise UserError("beyond_seif.calibrated_judge needs beyond_seif.rules=true: its threshold is fitted "
                        "on the rule verdicts")
    if departures and departures.restrictions_deduct and not departures.rules:
        raise UserError("beyond_seif.restrictions_deduct needs beyond_seif.rules=true: only a rule-checked "
                        "constraint can be tried on a reply that does nothing")
    if departures and departures.markup_guard_keep and not departures.markup_guard:
        raise UserError("beyond_seif.markup_guard_keep needs beyond_seif.markup_guard=true: it is the share "
                        "of its reward an answer the guard finds keeps")
    for section in (s for s in GRPO_SECTIONS if hasattr(settings, s)):
        cfg = getattr(settings, section)
        if cfg.prompts_per_step % cfg.prompts_per_update:  # each rollout step splits into equal updates
            raise UserError(f"{section}.prompts_per_step ({cfg.prompts_per_step}) must be a multiple of "
                            f"{section}.prompts_per_update ({cfg.prompts_per_update})")


# -----------------------------------------------------------------------------
# A run folder's settings: a restart may change only what no finished stage depends on

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
    if stage_name == "round_0/eval":
        return {"loop.model"} | EVAL_FIELDS  # the base model, before anything is trained
    made_with = set(fields) - SAFE_TO_CHANGE
    return made_with if stage_name.endswith("/eval") else made_with - EVAL_FIELDS


# Fields that moved into the beyond_seif section when the departures left the core: the old
# name -> (the new one, its value from the old value). A run folder written before the move
# holds the old names; they are read as the new ones, and the cheap Filter checks, which always
# ran then, count as on.
MOVED = {
    "judger.rules": ("beyond_seif.rules", bool),
    "judger.echo_guard": ("beyond_seif.echo_guard", bool),
    "judger.llm": ("beyond_seif.score_judge", lambda value: value == "score"),
    "judger.score_reward": ("beyond_seif.score_reward", str),
    "filter.rules_only": ("beyond_seif.rules_only", bool),
    "filter.max_constraint_chars": ("beyond_seif.max_constraint_chars", int),
    "instructor.verifiable_prompt": ("beyond_seif.demo_prompt", lambda value: value == "short"),
    "instructor.strict_format": ("beyond_seif.lenient_instructor", lambda value: not value),
    "follower.strict_format": ("beyond_seif.lenient_follower", lambda value: not value),
}


def _renamed(recorded):
    """A run folder's flat settings with the fields of MOVED under their new names."""
    if not any(name in recorded for name in MOVED):
        return recorded
    renamed = {name: value for name, value in recorded.items() if name not in MOVED}
    renamed["beyond_seif.filter_checks"] = True
    for old, (new, convert) in MOVED.items():
        if old in recorded:
            renamed[new] = convert(recorded[old])
    return renamed


def recorded_settings(run_dir):
    """The settings of the run's last start: settings.json with every recorded change applied."""
    recorded = _renamed(flat_settings(json.loads((run_dir / "settings.json").read_text())))
    changes_path = run_dir / "settings_changes.jsonl"
    for row in read_jsonl(changes_path) if changes_path.exists() else []:
        recorded.update(_renamed({name: new for name, (old, new) in row["changed"].items()}))
    return recorded


def as_override(name, value):
    """--set NAME=VALUE that gives `value` back (booleans as true/false, tuples as JSON)."""
    text = str(value).lower() if isinstance(value, bool) else value if isinstance(value, str) else json.dumps(value)
    return f"--set {name}={text}"


def settings_changes(run_dir, settings, started):
    """{field: [old, new]} for the fields that differ from the run folder's; a UserError when a
    stage in `started` (finished or checkpointed) depends on one of them."""
    if not (run_dir / "settings.json").exists():
        return {}
    recorded, current = recorded_settings(run_dir), flat_settings(dataclasses.asdict(settings))
    # a field added to the code since the folder was made was, in effect, at its default then
    defaults = flat_settings(dataclasses.asdict(type(settings)()))
    recorded = {**{name: value for name, value in defaults.items() if name not in recorded}, **recorded}
    changed = {name: [recorded.get(name), value] for name, value in current.items()
               if recorded.get(name) != value}
    behind = set().union(*(fields_behind(stage_name, current) for stage_name in started))
    conflicts = sorted(name for name in changed if name in behind)
    if conflicts:
        raise UserError(f"{run_dir} has stages made with other settings (" + ", ".join(
            f"{name} was {changed[name][0]!r}, now {changed[name][1]!r}" for name in conflicts)
            + "); to resume it add " + " ".join(as_override(name, changed[name][0]) for name in conflicts)
            + ", or start a new run (--name)")
    return changed


def record_settings(run_dir, settings, changes):
    """The first start writes settings.json; a later one appends its changes, if any."""
    if not (run_dir / "settings.json").exists():
        write_json(run_dir / "settings.json", dataclasses.asdict(settings))
    elif changes:
        append_jsonl(run_dir / "settings_changes.jsonl",
                     {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "changed": changes})
