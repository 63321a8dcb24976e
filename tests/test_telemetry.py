"""The numbers users steer by: every logged GRPO metric, the checkpoint files, and gradient sync,
each checked on hand-made tensors or a tiny model.

The loss fixture (as in test_grpo.py) has ratios in every region of the clipped objective, with
eps_low = 0.2, eps_high = 0.3, dual_clip = 3; here one more token per sample is padding whose
ratio would land in a clip region if the mask were ignored.
"""

import math
import statistics
from contextlib import contextmanager

import pytest
import torch
from accelerate import Accelerator

import grpo
import rollout
import training
from conftest import boost_token

#                  A = +1: inside  above   below   [padding: above, below]
#                  A = -1: inside  below   huge    [padding: below, huge]
RATIOS = torch.tensor([[1.1, 1.5, 0.5, 9.0, 0.1], [1.1, 0.5, 5.0, 0.1, 9.0]])
ADVANTAGES = torch.tensor([1.0, -1.0])
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0]])
OLD = torch.full((2, 5), -2.0)


def stats_of(ref=None, beta=0.0):
    _, stats = grpo.grpo_loss(OLD + RATIOS.log(), OLD, ref, ADVANTAGES, MASK, beta=beta)
    return stats


def test_clip_fractions_count_only_their_own_region_and_valid_tokens():
    stats = stats_of()
    assert stats["clip_high"] == pytest.approx(1 / 6)  # 1.5 with A > 0 (0.5 with A > 0 is not clipped)
    assert stats["clip_low"] == pytest.approx(1 / 6)  # 0.5 with A < 0 (not 1.1, not 5.0)
    assert stats["dual_clip"] == pytest.approx(1 / 6)  # 5.0 with A < 0: -5 is below the floor -3
    assert stats["ratio"] == pytest.approx((1.1 + 1.5 + 0.5 + 1.1 + 0.5 + 5.0) / 6)


def test_dual_clip_counts_only_tokens_below_the_floor():
    # ratio 2.5 with A = -1: surrogate -2.5 is above the floor -3, so it is not dual-clipped;
    # 1.25 with A = +1 is above 1 + eps_low but below 1 + eps_high, so it is not clipped either
    ratios = torch.tensor([[2.5, 1.25, 1.0, 1.0, 1.0], [2.5, 0.85, 1.0, 1.0, 1.0]])
    _, stats = grpo.grpo_loss(OLD + ratios.log(), OLD, None, ADVANTAGES, MASK, beta=0.0)
    assert stats["dual_clip"] == 0.0
    assert stats["clip_high"] == pytest.approx(1 / 6)  # 2.5 > 1.3 with A > 0, sample 0 only
    assert stats["clip_low"] == 0.0  # 0.85 with A < 0 is inside [0.8, 1.3]


def test_kl_is_the_mean_k3_over_valid_tokens():
    logprobs = OLD + RATIOS.log()
    delta = torch.tensor([[0.5, 0.0, -0.5, 8.0, 8.0], [1.0, 0.0, 0.0, -8.0, 8.0]])  # padding: huge
    stats = stats_of(ref=logprobs + delta, beta=0.01)
    k3 = [math.exp(d) - d - 1 for d in (0.5, 0.0, -0.5, 1.0, 0.0, 0.0)]
    assert stats["kl"] == pytest.approx(sum(k3) / 6, rel=1e-5)
    assert stats_of(ref=logprobs + delta, beta=0.0)["kl"] == 0.0  # KL off: nothing computed


def reward_table(rewards):
    def reward(items, texts):
        return rewards[: len(texts)], {"custom": 0.25}
    return reward


def test_reward_metrics_of_a_step(tiny_model):
    model, tokenizer = tiny_model
    rewards = [1.0, 0.0, 0.0, 1.0] + [0.5] * 4 + [0.0] * 4  # group 1 varies, groups 2 and 3 do not
    items = [{"messages": [{"role": "user", "content": f"Say {i}."}]} for i in range(3)]
    cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=4, prompts_per_step=3, prompts_per_update=3,
                          beta=0.0)
    rows = []
    torch.manual_seed(0)
    grpo.train(model, tokenizer, items, reward_table(rewards), cfg, Accelerator(cpu=True), max_steps=1,
               log=rows.append)
    (row,) = rows
    # the items are shuffled, but the rewards are handed out in sample order
    assert row["reward_mean"] == pytest.approx(4 / 12)
    assert row["reward_std"] == pytest.approx(statistics.stdev(rewards), rel=1e-5)  # std, not variance
    assert row["zero_std_groups"] == pytest.approx(2 / 3)
    assert row["custom"] == 0.25 and row["step"] == 0 and row["updates"] == 1
    assert row["completion_len_mean"] == pytest.approx(4.0) and row["completion_len_max"] == 4.0


def test_completion_length_metrics_count_up_to_eos(tiny_model, monkeypatch):
    model, tokenizer = tiny_model
    boost_token(model, tokenizer.eos_token_id, 3.0)
    items = [{"messages": [{"role": "user", "content": f"Say {i}."}]} for i in range(2)]
    cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=12, prompts_per_step=2, prompts_per_update=2,
                          beta=0.0)
    seen, rows = [], []
    original = rollout.generate

    def spy(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(rollout, "generate", spy)
    torch.manual_seed(0)
    grpo.train(model, tokenizer, items, reward_table([0.0, 1.0] * 4), cfg, Accelerator(cpu=True),
               max_steps=1, log=rows.append)
    lengths = seen[0].completion_mask.sum(dim=1).float()
    assert lengths.min() < lengths.max()
    assert rows[0]["completion_len_mean"] == pytest.approx(lengths.mean().item())
    assert rows[0]["completion_len_max"] == lengths.max().item()


class RecordingAccelerator(Accelerator):
    """Records each backward pass as "skip" (inside no_sync: gradients not all-reduced) or "sync"."""

    def __init__(self):
        super().__init__(cpu=True)
        self.events, self.inside_no_sync = [], False

    @contextmanager
    def no_sync(self, model):
        self.inside_no_sync = True
        with super().no_sync(model):
            yield
        self.inside_no_sync = False

    def backward(self, loss, **kwargs):
        self.events.append("skip" if self.inside_no_sync else "sync")
        super().backward(loss, **kwargs)


def test_only_the_last_micro_batch_of_an_update_syncs_gradients(tiny_model):
    model, tokenizer = tiny_model
    torch.manual_seed(0)
    chats = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Name a fruit."}]]
    rollouts = rollout.generate(model, tokenizer, chats, group_size=3, max_new_tokens=4)
    accelerator = RecordingAccelerator()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    # 2 updates (one prompt = 3 samples each) x 3 micro-batches of 1 sample
    cfg = grpo.GRPOConfig(group_size=3, prompts_per_update=1, micro_batch_size=1, beta=0.0)
    metrics = grpo.train_step(model, optimizer, accelerator, rollouts, torch.tensor([1.0, -1, 0, 1, -1, 0]), cfg)
    assert metrics["updates"] == 2
    # gradients are all-reduced once per update, on its last micro-batch
    assert accelerator.events == ["skip", "skip", "sync"] * 2


def test_checkpoint_files_are_named_by_step_and_only_the_newest_is_kept(tiny_model, tmp_path):
    model, _ = tiny_model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    accelerator = Accelerator(cpu=True)
    assert training.latest_checkpoint(tmp_path) == (None, None)
    training.save_checkpoint(tmp_path, 7, model, optimizer, accelerator)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000007.pt"]
    saved = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    training.save_checkpoint(tmp_path, 123456, model, optimizer, accelerator)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_123456.pt"]
    assert training.latest_checkpoint(tmp_path) == (123456, str(tmp_path / "step_123456.pt"))
    # restoring gives back the saved weights and the step after the saved one
    training.save_checkpoint(tmp_path, 8, model, optimizer, accelerator)
    with torch.no_grad():
        for p, original in zip(model.parameters(), saved):
            p.copy_(original)
    assert training.load_checkpoint(tmp_path, model, optimizer, accelerator) == 9
    assert all(not torch.equal(p, original) for p, original in zip(model.parameters(), saved))
