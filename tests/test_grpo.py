"""grpo.py against values worked out by hand.

The main fixture is one batch of 2 samples x 3 tokens whose ratios land in every region of the
clipped objective (eps_low = 0.2, eps_high = 0.3, dual_clip = 3):

    sample 0, A = +1: ratio 1.1 (inside)    1.5 (above 1.3)      0.5 (below 0.8)
    per-token loss:        -1.1             -1.3 (clipped high)  -0.5 (A > 0: no low clip)
    sample 1, A = -1: ratio 1.1 (inside)    0.5 (below 0.8)      5.0 (huge)
    per-token loss:        +1.1             +0.8 (clipped low)   +3.0 (dual clip floor -3)
"""

import math

import pytest
import torch

from grpo import group_advantages, grpo_loss

RATIOS = torch.tensor([[1.1, 1.5, 0.5], [1.1, 0.5, 5.0]])
TOKEN_LOSSES = torch.tensor([[-1.1, -1.3, -0.5], [1.1, 0.8, 3.0]])
ADVANTAGES = torch.tensor([1.0, -1.0])
OLD = torch.full((2, 3), -2.0)
LOGPROBS = OLD + RATIOS.log()
FULL_MASK = torch.ones(2, 3)
LAST_MASKED = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # sample 0 stopped after 2 tokens


def loss_of(mask=FULL_MASK, logprobs=LOGPROBS, ref=None, **kwargs):
    kwargs.setdefault("beta", 0.0)
    return grpo_loss(logprobs, OLD, ref, ADVANTAGES, mask, **kwargs)


def test_each_clip_region_token_mean():
    loss, stats = loss_of()
    assert loss.item() == pytest.approx(TOKEN_LOSSES.mean().item(), abs=1e-5)  # 2.0 / 6
    assert loss.item() == pytest.approx(2.0 / 6, abs=1e-5)
    assert stats["clip_high"] == pytest.approx(1 / 6)  # sample 0, ratio 1.5
    assert stats["clip_low"] == pytest.approx(1 / 6)  # sample 1, ratio 0.5
    assert stats["dual_clip"] == pytest.approx(1 / 6)  # sample 1, ratio 5.0
    assert stats["ratio"] == pytest.approx(RATIOS.mean().item(), abs=1e-5)


def test_aggregations_with_a_masked_token():
    # valid per-token losses: sample 0 -> -1.1, -1.3; sample 1 -> 1.1, 0.8, 3.0 (sum 2.5)
    token_mean, _ = loss_of(LAST_MASKED, aggregation="token-mean")
    seq_mean, _ = loss_of(LAST_MASKED, aggregation="seq-mean")
    seq_sum_norm, _ = loss_of(LAST_MASKED, aggregation="seq-sum-norm")
    assert token_mean.item() == pytest.approx(2.5 / 5, abs=1e-5)
    assert seq_mean.item() == pytest.approx((-2.4 / 2 + 4.9 / 3) / 2, abs=1e-5)
    assert seq_sum_norm.item() == pytest.approx(2.5 / 6, abs=1e-5)
    with pytest.raises(ValueError):
        loss_of(aggregation="sum")


def test_masked_tokens_contribute_nothing():
    before, _ = loss_of(LAST_MASKED)
    changed = LOGPROBS.clone()
    changed[0, 2] = 3.0  # a ratio of e^5 on a padding position
    after, _ = loss_of(LAST_MASKED, logprobs=changed)
    assert after.item() == pytest.approx(before.item(), abs=1e-6)


def test_k3_kl_on_and_off():
    ref = LOGPROBS + math.log(2.0)  # ref - logp = ln 2 everywhere: k3 = 2 - ln 2 - 1
    k3 = 1.0 - math.log(2.0)
    with_kl, stats = loss_of(ref=ref, beta=0.5)
    assert stats["kl"] == pytest.approx(k3, abs=1e-5)
    assert with_kl.item() == pytest.approx(2.0 / 6 + 0.5 * k3, abs=1e-5)
    no_ref, stats_no_ref = loss_of(ref=None, beta=0.5)  # no reference model: no KL term
    zero_beta, _ = loss_of(ref=ref, beta=0.0)
    assert no_ref.item() == pytest.approx(2.0 / 6, abs=1e-5)
    assert zero_beta.item() == pytest.approx(2.0 / 6, abs=1e-5)
    assert stats_no_ref["kl"] == 0.0


def test_kl_is_clamped_at_ten():
    ref = LOGPROBS + 5.0  # e^5 - 5 - 1 = 142.4, clamped to 10
    _, stats = loss_of(ref=ref, beta=0.01)
    assert stats["kl"] == pytest.approx(10.0)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean", "seq-sum-norm"])
def test_gradient_at_ratio_one_is_minus_advantage_over_normaliser(aggregation):
    logprobs = OLD.clone().requires_grad_(True)  # ratio == 1, inside the clip range
    loss, _ = grpo_loss(logprobs, OLD, None, ADVANTAGES, LAST_MASKED, beta=0.0, aggregation=aggregation)
    loss.backward()
    valid_per_sample = LAST_MASKED.sum(dim=1, keepdim=True)  # [[2], [3]]
    normaliser = {
        "token-mean": LAST_MASKED.sum(),  # 5 valid tokens
        "seq-mean": 2 * valid_per_sample,  # sequences x that sequence's valid tokens
        "seq-sum-norm": torch.tensor(2.0 * 3),  # batch x completion_len
    }[aggregation]
    expected = -ADVANTAGES.unsqueeze(1) / normaliser * LAST_MASKED
    assert torch.allclose(logprobs.grad, expected, atol=1e-6)


def test_group_advantages_known_example():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    advantages = group_advantages(rewards, group_size=4)
    std = math.sqrt(1 / 3)  # unbiased std of [1, 0, 0, 1]
    expected = torch.tensor([0.5, -0.5, -0.5, 0.5]) / (std + 1e-6)
    assert torch.allclose(advantages[:4], expected, atol=1e-5)
    assert torch.equal(advantages[4:], torch.zeros(4))  # equal rewards: zeros, not NaN


def test_group_advantages_dr_grpo_and_all_equal():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert torch.allclose(group_advantages(rewards, 4, scale="none"), torch.tensor([0.5, -0.5, -0.5, 0.5]))
    same = group_advantages(torch.ones(6), group_size=3)
    assert not torch.isnan(same).any() and torch.equal(same, torch.zeros(6))
