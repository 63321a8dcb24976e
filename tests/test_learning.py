"""GRPO must actually learn: a tiny random model, a toy reward, a few dozen steps.

The reward is the fraction of completion tokens whose id is below 100 (a quarter of the tiny
vocabulary), so a random model starts near 0.25 with plenty of variance inside each group.
Measured while writing it (2-core CPU): 0.18 -> 0.74 over the 20 steps; with the advantage sign
flipped it went 0.17 -> 0.03, which fails the bound below.
"""

import pytest
import torch
from accelerate import Accelerator

import grpo
from conftest import boost_token, make_tiny_model

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


class RecordingOptimizer:
    """Stands in for AdamW: keeps each update's gradients instead of applying them."""

    def __init__(self, params):
        self.params, self.updates = list(params), []

    def step(self):
        self.updates.append([p.grad.clone() for p in self.params])

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None


def test_micro_batching_gives_the_same_gradient_as_one_batch(tiny_model):
    """Gradient accumulation over micro-batches (with trimmed padding) equals one big batch."""
    import rollout

    model, tokenizer = tiny_model
    eos_boost = model.lm_head.register_forward_hook(lambda m, i, out: out.index_add(
        -1, torch.tensor([tokenizer.eos_token_id]), torch.full((*out.shape[:-1], 1), 3.0)))
    torch.manual_seed(3)
    chats = [[{"role": "user", "content": "Name a fruit."}], [{"role": "user", "content": "Hi"}]]
    rollouts = rollout.generate(model, tokenizer, chats, group_size=3, max_new_tokens=10)
    eos_boost.remove()
    lengths = rollouts.completion_mask.sum(dim=1)
    assert lengths.min() < lengths.max()  # ragged, so trimming matters
    advantages = torch.tensor([1.0, -0.5, 0.3, -1.2, 0.8, 0.4])
    for aggregation in ("token-mean", "seq-mean", "seq-sum-norm"):
        gradients = []
        for micro_batch_size in (6, 2, 1):
            cfg = grpo.GRPOConfig(group_size=3, prompts_per_update=2, micro_batch_size=micro_batch_size,
                                  beta=0.0, aggregation=aggregation, max_grad_norm=1e9)
            optimizer = RecordingOptimizer(model.parameters())
            grpo.train_step(model, optimizer, Accelerator(cpu=True), rollouts, advantages, cfg)
            gradients.append(optimizer.updates[0])
        for other in gradients[1:]:
            for full, accumulated in zip(gradients[0], other):
                assert torch.allclose(full, accumulated, atol=1e-6, rtol=1e-4), aggregation


def test_a_step_with_seif_defaults_and_ragged_completions(tiny_model, tiny_tokenizer):
    """SEIF's defaults: KL on (beta 0.01) against a frozen reference, 4 updates per step, and
    micro-batches, on completions of different lengths (EOS made likely)."""
    model, tokenizer = tiny_model
    reference = make_tiny_model(tiny_tokenizer).eval().requires_grad_(False)
    boost_token(model, tokenizer.eos_token_id, 3.0)
    boost_token(reference, tokenizer.eos_token_id, 3.0)
    lengths = []

    def reward(items, texts):
        lengths.extend(len(text) for text in texts)
        return toy_reward(tokenizer)(items, texts)

    items = [{"messages": [{"role": "user", "content": f"Say something, number {i}."}]} for i in range(4)]
    cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=12, prompts_per_step=4, prompts_per_update=1,
                          micro_batch_size=2, lr=1e-3)
    assert cfg.beta == 0.01 and cfg.prompts_per_step // cfg.prompts_per_update == 4
    rows = []
    torch.manual_seed(0)
    grpo.train(model, tokenizer, items, reward, cfg, Accelerator(cpu=True), ref_model=reference,
               epochs=2, log=rows.append)
    assert len(set(lengths)) > 1  # completions of different lengths, so micro-batches are trimmed
    assert [row["updates"] for row in rows] == [4, 4] and all(row["bad_updates"] == 0 for row in rows)
    assert rows[0]["completion_len_mean"] < cfg.max_new_tokens
    # the policy moves away from the reference after the first update, so the KL term is live
    assert rows[1]["kl"] > 0
