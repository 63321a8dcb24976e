"""Settings from the command line: --set parsing, and every field's range checked before anything loads."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import loop
import settings as settings_module
from presets import PRESETS, departures_on
from data import UserError
from settings import BeyondSEIF

REPO = Path(__file__).resolve().parents[1]


def settings_with(*assignments):
    args = loop.argparse.Namespace(preset=None, model=None, helper=None, seeds=None, name=None, set=list(assignments))
    return loop.settings_from(args)


@pytest.mark.parametrize("assignment, message", [
    ("nosuch.field=1", "SECTION.FIELD=VALUE"),
    ("loop.rounds=many", "not a valid int"),
    ("follower_grpo.share_prompts=maybe", "not a valid bool"),
    ("beyond_seif.score_judge=maybe", "not a valid bool"),
    # fields that moved into beyond_seif are no longer fields of their old sections
    ("judger.llm=score", "SECTION.FIELD=VALUE"),
    ("judger.rules=true", "SECTION.FIELD=VALUE"),
    ("follower.strict_format=false", "SECTION.FIELD=VALUE"),
    ("instructor.verifiable_prompt=short", "SECTION.FIELD=VALUE"),
])
def test_unreadable_overrides_are_one_line_errors(assignment, message):
    with pytest.raises(UserError, match=message):
        settings_with(assignment)


def test_settings_parse_booleans_both_ways():
    settings = settings_with("follower_grpo.share_prompts=false", "follower_grpo.ref_on_cpu=Yes")
    assert settings.follower_grpo.share_prompts is False and settings.follower_grpo.ref_on_cpu is True


@pytest.mark.parametrize("assignment, message", [
    ("follower_grpo.lr=-1", "follower_grpo.lr is -1.0: it must be > 0"),
    ("instructor_grpo.lr=0", "instructor_grpo.lr is 0.0: it must be > 0"),
    ("follower_grpo.group_size=1", "follower_grpo.group_size is 1: it must be >= 2"),
    ("follower_grpo.beta=-0.01", "follower_grpo.beta is -0.01: it must be >= 0"),
    ("follower_grpo.eps_low=1", r"follower_grpo.eps_low is 1.0: it must be in \(0, 1\)"),
    ("follower_grpo.top_p=1.5", r"follower_grpo.top_p is 1.5: it must be in \(0, 1\]"),
    ("follower_grpo.dual_clip=0.5", "follower_grpo.dual_clip is 0.5: it must be > 1"),
    ("follower_grpo.temperature=0", "follower_grpo.temperature is 0.0: it must be > 0"),
    ("follower_grpo.max_new_tokens=0", "follower_grpo.max_new_tokens is 0: it must be >= 1"),
    ("follower_grpo.betas=[0.9, 1.0]", r"follower_grpo.betas is \[0.9, 1.0\]: it must be two numbers in \[0, 1\)"),
    ('follower_grpo.betas="high"', "follower_grpo.betas is 'high': it must be two numbers"),
    ("follower_grpo.aggregation=mean", "follower_grpo.aggregation is 'mean': it must be token-mean, seq-mean"),
    ("follower_grpo.advantage_scale=std", "follower_grpo.advantage_scale is 'std': it must be group or none"),
    ("follower_grpo.checkpoint_every=-1", "follower_grpo.checkpoint_every is -1: it must be >= 0"),
    ("follower_grpo.max_bad_updates=0", "follower_grpo.max_bad_updates is 0: it must be >= 1"),
    ("follower_grpo.prompts_per_update=5",
     r"follower_grpo.prompts_per_step \(384\) must be a multiple of follower_grpo.prompts_per_update \(5\)"),
    ("instructor.verifiable_fraction=1.5", r"instructor.verifiable_fraction is 1.5: it must be in \[0, 1\]"),
    ("instructor.answer_max_new_tokens=0", "instructor.answer_max_new_tokens is 0: it must be >= 1"),
    ("beyond_seif.score_reward=soft", "beyond_seif.score_reward is 'soft': it must be decision or probability"),
    ("judger.batch_size=0", "judger.batch_size is 0: it must be >= 1"),
    ("beyond_seif.max_constraint_chars=0", "beyond_seif.max_constraint_chars is 0: it must be >= 1"),
    ("beyond_seif.markup_guard_keep=1", r"beyond_seif.markup_guard_keep is 1.0: it must be in \[0, 1\)"),
    ("beyond_seif.markup_guard_keep=-0.1", r"beyond_seif.markup_guard_keep is -0.1: it must be in \[0, 1\)"),
    ("loop.rounds=0", "loop.rounds is 0: it must be >= 1"),
    ("loop.follower_epochs_later=0", "loop.follower_epochs_later is 0: it must be >= 1"),
    ("loop.eval_limit=-5", r"loop.eval_limit is -5: it must be >= 0 \(0 = no limit"),
    ("loop.run_name=", "loop.run_name is '': it must be not empty"),
])
def test_out_of_range_values_name_the_field_value_and_range(assignment, message):
    with pytest.raises(UserError, match=message) as error:
        settings_with(assignment)
    assert "\n" not in str(error.value)


def test_every_field_of_the_defaults_and_presets_is_in_range():
    for preset in PRESETS:
        loop.settings_from(loop.argparse.Namespace(preset=preset, model=None, helper=None, seeds=None,
                                                   name=None, set=[]))
    settings_with()


def test_a_bad_value_on_the_command_line_exits_2_before_loading_anything(tmp_path):
    result = subprocess.run([sys.executable, "loop.py", "--set", "follower_grpo.lr=-1",
                             "--set", f"loop.runs_dir={tmp_path}"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: follower_grpo.lr is -1.0: it must be > 0"]
    assert list(tmp_path.iterdir()) == []  # no run folder, no settings written


# -----------------------------------------------------------------------------
# The departures from SEIF's code: all off unless asked for


def test_every_departure_is_off_by_default_and_the_seif_preset_turns_on_none():
    defaults = BeyondSEIF()
    switches = [f.name for f in dataclasses.fields(BeyondSEIF) if isinstance(getattr(defaults, f.name), bool)]
    assert set(switches) == {"rules", "echo_guard", "score_judge", "filter_checks", "rules_only", "demo_prompt",
                             "lenient_instructor", "lenient_follower", "calibrated_judge", "pmi_judge", "answer_gate",
                             "markup_guard", "unfinished_unpaid", "restrictions_deduct", "stuffing_guard"}
    assert [name for name in switches if getattr(defaults, name)] == []
    # the two non-switch fields only parametrise a switch, at its documented default
    assert (defaults.score_reward, defaults.max_constraint_chars) == ("decision", 300)
    assert (defaults.answer_gate_quantile, defaults.answer_gate_references) == (0.05, 16)
    assert settings_with().beyond_seif == BeyondSEIF()
    seif = loop.settings_from(loop.argparse.Namespace(preset="seif", model=None, helper=None, seeds=None,
                                                      name=None, set=[]))
    assert seif.beyond_seif == BeyondSEIF()
    assert departures_on("seif") == []
    assert departures_on("qwen0.5b") == ["answer_gate", "calibrated_judge", "echo_guard", "filter_checks",
                                        "markup_guard", "pmi_judge", "rules", "stuffing_guard"]


def test_with_every_departure_off_no_role_imports_the_beyond_seif_folder():
    code = ("import sys, loop, instructor, follower, judger, filter, evaluate, cli; "
            "print(sorted(m for m in sys.modules if m.startswith('beyond_seif')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# The fields that moved into beyond_seif, as a run folder written before the move recorded them:
# rule checks, the echo guard and the score judge on (the old defaults), and the Filter's cheap
# checks, which always ran then.
OLD_FIELDS = {
    "judger": {"rules": True, "llm": "score", "score_reward": "decision", "echo_guard": True},
    "filter": {"rules_only": False, "max_constraint_chars": 300},
    "instructor": {"strict_format": True, "verifiable_prompt": "seif"},
    "follower": {"strict_format": True},
}
RESUME_OLD_RUN = ["--set beyond_seif.echo_guard=true", "--set beyond_seif.filter_checks=true",
                  "--set beyond_seif.rules=true", "--set beyond_seif.score_judge=true"]


def old_run_folder(tmp_path):
    """A run folder with the old settings.json (today's other fields at their defaults)."""
    recorded = dataclasses.asdict(settings_with())
    del recorded["beyond_seif"]
    recorded["follower"] = {}
    for section, values in OLD_FIELDS.items():
        recorded[section].update(values)
    run_dir = tmp_path / "old_run"
    run_dir.mkdir()
    (run_dir / "settings.json").write_text(json.dumps(recorded))
    (run_dir / "progress.json").write_text(json.dumps({"done": ["round_0/eval", "round_1/instructor"]}))
    return run_dir


def test_an_old_run_folder_resumed_with_the_new_defaults_names_the_settings_to_add(tmp_path):
    run_dir = old_run_folder(tmp_path)
    recorded = settings_module.recorded_settings(run_dir)
    assert not any(name in recorded for name in settings_module.MOVED)  # read under the new names
    assert {name: recorded[name] for name in ("beyond_seif.rules", "beyond_seif.echo_guard",
                                              "beyond_seif.score_judge", "beyond_seif.filter_checks",
                                              "beyond_seif.lenient_follower", "beyond_seif.demo_prompt")} == {
        "beyond_seif.rules": True, "beyond_seif.echo_guard": True, "beyond_seif.score_judge": True,
        "beyond_seif.filter_checks": True, "beyond_seif.lenient_follower": False, "beyond_seif.demo_prompt": False}
    with pytest.raises(UserError) as error:
        settings_module.settings_changes(run_dir, settings_with(), ["round_0/eval", "round_1/instructor"])
    message = str(error.value)
    assert "\n" not in message
    assert message.endswith("to resume it add " + " ".join(RESUME_OLD_RUN) + ", or start a new run (--name)")
    assert "beyond_seif.rules was True, now False" in message


def test_an_old_run_folder_resumed_with_the_named_settings_is_accepted(tmp_path):
    run_dir = old_run_folder(tmp_path)
    resumed = settings_with(*(option.removeprefix("--set ") for option in RESUME_OLD_RUN))
    assert settings_module.settings_changes(run_dir, resumed, ["round_0/eval", "round_1/instructor"]) == {}
    # and the loop opens the folder with them (it would stop before loading anything otherwise)
    resumed.loop.runs_dir, resumed.loop.run_name = str(tmp_path), run_dir.name
    assert loop.open_run_folder(resumed).finished == ["round_0/eval", "round_1/instructor"]
    with pytest.raises(UserError, match="to resume it add --set beyond_seif.echo_guard=true"):
        loop.open_run_folder(settings_with(f"loop.runs_dir={tmp_path}", f"loop.run_name={run_dir.name}"))


def test_an_old_run_folder_with_no_finished_stage_takes_the_new_defaults(tmp_path):
    run_dir = old_run_folder(tmp_path)
    changed = settings_module.settings_changes(run_dir, settings_with(), [])
    assert changed["beyond_seif.rules"] == [True, False] and changed["beyond_seif.filter_checks"] == [True, False]
