"""Real-model smoke test: SmolLM2-135M-Instruct from its GGUF, offline, on CPU."""

import math
import random

import torch
from accelerate import Accelerator

import grpo
import instructor
import rollout
from settings import BeyondSEIF, LoopConfig, read_seeds


def test_one_grpo_step_on_smollm2(smollm2):
    model, tokenizer = smollm2
    assert tokenizer.chat_template and model.dtype == torch.float32
    chats = [[{"role": "user", "content": "Name a colour."}],
             [{"role": "user", "content": "What is 2 + 3?"}]]
    torch.manual_seed(0)
    rollouts = rollout.generate(model, tokenizer, chats, group_size=4, max_new_tokens=16)
    assert len(rollouts.texts) == 8 and rollouts.completion_mask.sum() > 0

    rewards = torch.tensor([float(len(text)) for text in rollouts.texts])  # any non-constant reward
    advantages = grpo.group_advantages(rewards, group_size=4)
    cfg = grpo.GRPOConfig(group_size=4, prompts_per_update=2, micro_batch_size=4, lr=1e-5)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    accelerator = Accelerator(cpu=True)
    policy, optimizer = accelerator.prepare(model, optimizer)
    metrics = grpo.train_step(policy, optimizer, accelerator, rollouts, advantages, cfg, ref_model=None)

    assert math.isfinite(metrics["loss"]) and metrics["bad_updates"] == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with torch.no_grad():  # leave the session-wide model as it was for other tests
        for param, original in zip(model.parameters(), before):
            param.copy_(original)


def test_a_step_with_seif_defaults_on_smollm2(smollm2, monkeypatch):
    """KL on (beta 0.01) against a frozen copy, 4 updates per step, micro-batches of 2, and
    completions of different lengths: a real model stops when it is done."""
    model, tokenizer = smollm2
    reference, _ = rollout.load("smollm2-135m", device="cpu")
    reference.eval().requires_grad_(False)
    before = [p.detach().clone() for p in model.parameters()]
    seen = []
    original = rollout.generate
    monkeypatch.setattr(rollout, "generate", lambda *a, **k: seen.append(original(*a, **k)) or seen[-1])
    questions = ["Reply with one word: name a colour.", "What is 2 + 3? Answer with just the number.",
                 "Say hello in French, in one word.", "Name a planet. One word only."]
    items = [{"messages": [{"role": "user", "content": q}]} for q in questions]
    cfg = grpo.GRPOConfig(group_size=2, max_new_tokens=24, prompts_per_step=4, prompts_per_update=1,
                          micro_batch_size=2, lr=1e-5)
    assert cfg.beta == 0.01 and cfg.eps_high == 0.3 and cfg.dual_clip == 3.0
    rows = []
    torch.manual_seed(0)
    try:
        grpo.train(model, tokenizer, items, lambda batch, texts: ([float(len(t) % 3) for t in texts], {}),
                   cfg, Accelerator(cpu=True), ref_model=reference, max_steps=1, log=rows.append)
    finally:
        with torch.no_grad():  # leave the session-wide model as it was for other tests
            for param, original_value in zip(model.parameters(), before):
                param.copy_(original_value)
    lengths = seen[0].completion_mask.sum(dim=1)
    assert lengths.min() < lengths.max()  # ragged: some replies ended early with EOS
    (row,) = rows
    assert row["updates"] == 4 and row["bad_updates"] == 0
    assert math.isfinite(row["loss"]) and math.isfinite(row["kl"]) and row["kl"] >= 0


def test_demo_preset_first_instructor_step_produces_rewards(smollm2, tmp_path, monkeypatch):
    """The demo preset's Instructor stage on the real model: one step runs and logs rewards."""
    import loop

    args = loop.argparse.Namespace(preset="demo", model=None, helper=None, seeds=None, name=None, set=[
        "instructor_grpo.max_new_tokens=48", "instructor_grpo.group_size=2", "instructor.answer_max_new_tokens=24",
        "filter.max_new_tokens=16"])
    settings = loop.settings_from(args)
    rewards_seen, rows = [], []
    original = instructor.rewards

    def spy(*args_, **kwargs):
        rewards, info = original(*args_, **kwargs)
        rewards_seen.append(rewards)
        return rewards, info

    monkeypatch.setattr(instructor, "rewards", spy)
    seeds = read_seeds(settings.loop)[:2]
    torch.manual_seed(0)
    instructor.train(settings, settings.loop.model, settings.loop.model, seeds,
                          str(tmp_path / "instructor"), log=rows.append)
    group = settings.instructor_grpo.group_size
    assert len(rewards_seen) == 1 and len(rewards_seen[0]) == settings.instructor_grpo.prompts_per_step * group
    assert all(0.0 <= r <= 1.0 for r in rewards_seen[0])
    assert len(rows) == 1 and "format_pass" in rows[0] and math.isfinite(rows[0]["loss"])
    assert (tmp_path / "instructor" / "model.safetensors").exists()


def test_the_demo_instructor_prompt_gets_rule_checked_sets_from_smollm2(smollm2):
    """SEIF's verifiable prompt gets no usable reply from this 135M model; the demo's short
    prompt after worked examples (beyond_seif.demo_prompt) does, through SEIF's strict format
    gate, at the demo's sampling temperature. Usable: three constraints, each checked by an IFEval
    rule (rule mapping, the Filter's cheap checks and rules_only on, as in the demo). 24 replies:
    with 8, one draw of the 18-rule list got none where another got 3."""
    from beyond_seif import filter_checks

    model, tokenizer = smollm2
    seeds = read_seeds(LoopConfig(max_seeds=12))
    usable = {}
    for prompt in ("seif", "short"):
        departures = BeyondSEIF(rules=True, filter_checks=True, rules_only=True, demo_prompt=prompt == "short")
        cfg = instructor.InstructorConfig(verifiable_fraction=1.0)
        items = instructor.training_items(seeds, cfg, random.Random(0), departures)
        torch.manual_seed(0)
        texts = rollout.generate(model, tokenizer, [item["messages"] for item in items], group_size=2,
                                 max_new_tokens=96, temperature=0.7).texts
        sets = [instructor.parse_constraints(text, departures) for text in texts]
        usable[prompt] = sum(
            constraints is not None and filter_checks.reason(
                instructor.constraint_dicts(constraints, "verifiable", seeds[i // 2], departures), 3,
                departures) is None
            for i, constraints in enumerate(sets))
    assert usable["seif"] == 0 and usable["short"] >= 6, usable  # at least a quarter
