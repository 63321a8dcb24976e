"""Settings from the command line: --set parsing, and every field's range checked before anything loads."""

import subprocess
import sys
from pathlib import Path

import pytest

import loop
from presets import PRESETS
from data import UserError

REPO = Path(__file__).resolve().parents[1]


def settings_with(*assignments):
    args = loop.argparse.Namespace(preset=None, model=None, helper=None, seeds=None, name=None, set=list(assignments))
    return loop.settings_from(args)


@pytest.mark.parametrize("assignment, message", [
    ("nosuch.field=1", "SECTION.FIELD=VALUE"),
    ("loop.rounds=many", "not a valid int"),
    ("follower_grpo.share_prompts=maybe", "not a valid bool"),
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
    ("instructor.verifiable_prompt=long", "instructor.verifiable_prompt is 'long': it must be seif or short"),
    ("judger.llm=vote", "judger.llm is 'vote': it must be generate or score"),
    ("judger.score_reward=soft", "judger.score_reward is 'soft': it must be decision or probability"),
    ("judger.batch_size=0", "judger.batch_size is 0: it must be >= 1"),
    ("filter.max_constraint_chars=0", "filter.max_constraint_chars is 0: it must be >= 1"),
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
