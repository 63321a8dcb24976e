"""GRPO must actually learn: a tiny random model, a toy reward, a few dozen steps.

The reward is the fraction of completion tokens whose id is below 100 (a quarter of the tiny
vocabulary), so a random model starts near 0.25 with plenty of variance inside each group.
Measured while writing it (2-core CPU): 0.18 -> 0.74 over the 20 steps; with the advantage sign
flipped it went 0.17 -> 0.03, which fails the bound below.
"""

import torch
from accelerate import Accelerator

import grpo

LOW_IDS = 100


def toy_reward(tokenizer):
    def reward(items, texts):
        fractions = []
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            fractions.append(sum(i < LOW_IDS for i in ids) / max(len(ids), 1))
        return fractions, {}
    return reward


def test_reward_rises_with_grpo(tiny_model):
    model, tokenizer = tiny_model
    torch.manual_seed(0)
    items = [{"messages": [{"role": "user", "content": f"Say something, number {i}."}]} for i in range(8)]
    cfg = grpo.GRPOConfig(group_size=8, max_new_tokens=8, prompts_per_step=4, prompts_per_update=2,
                          micro_batch_size=16, lr=3e-3, beta=0.0)
    history = []
    grpo.train(model, tokenizer, items, toy_reward(tokenizer), cfg, Accelerator(cpu=True),
               epochs=10, log=history.append)
    rewards = [row["reward_mean"] for row in history]
    start, end = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert len(rewards) == 20
    assert end > start + 0.3, f"reward went {start:.2f} -> {end:.2f}: {rewards}"


def test_same_seed_gives_identical_first_step(tiny_tokenizer):
    """Determinism on CPU: the same seed gives the same first-step rollouts and rewards."""
    from conftest import make_tiny_model

    def first_step():
        seen = []

        def reward(items, texts):
            seen.append(list(texts))
            return toy_reward(tiny_tokenizer)(items, texts)

        torch.manual_seed(123)
        rows = []
        items = [{"messages": [{"role": "user", "content": f"Say {i}."}]} for i in range(4)]
        cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=8, prompts_per_step=2, prompts_per_update=1,
                              lr=1e-3, beta=0.0)
        grpo.train(make_tiny_model(tiny_tokenizer), tiny_tokenizer, items, reward, cfg,
                   Accelerator(cpu=True), max_steps=1, seed=7, log=rows.append)
        return seen[0], rows[0]["reward_mean"], rows[0]["loss"]

    assert first_step() == first_step()


def test_non_finite_updates_are_skipped_then_training_stops(tiny_model):
    """A NaN loss skips its update (weights untouched); K in a row stops with a clear message."""
    import pytest

    model, tokenizer = tiny_model

    def nan_in_training(module, inputs, output):
        return output * float("nan") if module.training else output  # rollouts stay finite

    model.lm_head.register_forward_hook(nan_in_training)
    before = [p.detach().clone() for p in model.parameters()]
    items = [{"messages": [{"role": "user", "content": f"Say {i}."}]} for i in range(4)]
    cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=6, prompts_per_step=2, prompts_per_update=1,
                          lr=1e-3, beta=0.0, max_bad_updates=4)
    rows = []
    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match="4 updates in a row"):
        grpo.train(model, tokenizer, items, toy_reward(tokenizer), cfg, Accelerator(cpu=True),
                   epochs=3, log=rows.append)
    assert [row["bad_updates"] for row in rows] == [2]  # logged and went on after the first step
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
