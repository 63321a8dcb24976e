"""The rollout sampler: the log-probs it records while sampling, and the bf16 copy of the policy
that samples on a GPU, which must follow the float32 master weights after every update."""

import functools

import pytest
import torch
from accelerate import Accelerator

import grpo
import rollout
import speedups
from conftest import boost_token
from grpo import completion_logprobs
from settings import check
from data import UserError

CHATS = [[{"role": "user", "content": "Say hello."}], [{"role": "user", "content": "Name a colour please."}],
         [{"role": "user", "content": "Hi"}]]


@pytest.mark.parametrize("greedy, temperature", [(False, 1.0), (False, 0.7), (True, 1.0)])
def test_sampler_logprobs_are_those_each_token_was_sampled_with(tiny_model, greedy, temperature):
    """Each recorded value is log softmax(logits / T) of the token sampled at that position: a
    full forward pass of the same float32 model over the finished rollouts gives the same
    numbers (an off-by-one step would not), and positions after EOS are 0."""
    model, tokenizer = tiny_model
    if not greedy:  # completions of different lengths (greedy, this model then stops at once)
        boost_token(model, tokenizer.eos_token_id, 3.0)
    torch.manual_seed(0)
    rollouts = rollout.generate(model, tokenizer, CHATS, group_size=3, max_new_tokens=10,
                                temperature=temperature, greedy=greedy, batch_size=4)  # 3 chunks
    mask = rollouts.completion_mask
    assert greedy or mask.sum(dim=1).unique().numel() > 1
    scored = completion_logprobs(model, rollouts.input_ids, rollouts.attention_mask, mask,
                                 temperature=1.0 if greedy else temperature)
    assert rollouts.sampler_logprobs.shape == mask.shape
    assert torch.allclose(rollouts.sampler_logprobs, scored, atol=1e-4)
    assert (rollouts.sampler_logprobs[mask == 0] == 0).all()
    assert (rollouts.sampler_logprobs[mask == 1] < 0).all()


def test_the_bf16_copy_follows_the_master_weights_after_every_update(tiny_model, monkeypatch):
    model, tokenizer = tiny_model
    sampler = speedups.rollout_copy(model, "bf16")
    assert sampler is not model and all(p.dtype == torch.bfloat16 for p in sampler.parameters())
    assert sampler.model.rotary_emb.inv_freq.dtype == torch.float32  # buffers keep their precision
    assert speedups.rollout_copy(model, "policy") is model
    assert speedups.rollout_copy(model, "auto") is model  # on CPU
    refreshed, real_refresh = [], speedups.refresh_copy

    def refresh(copy, source):  # after each optimizer update: the copy equals the new weights
        real_refresh(copy, source)
        refreshed.append([p.detach().clone() for p in source.parameters()])
        for target, master in zip(copy.parameters(), source.parameters()):
            assert torch.equal(target, master.detach().to(torch.bfloat16))

    monkeypatch.setattr(speedups, "refresh_copy", refresh)
    torch.manual_seed(0)
    rollouts = rollout.generate(sampler, tokenizer, CHATS[:2], group_size=4, max_new_tokens=6)
    cfg = grpo.GRPOConfig(group_size=4, prompts_per_step=2, prompts_per_update=1, micro_batch_size=4,
                          lr=1e-2, beta=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    advantages = grpo.group_advantages(torch.arange(8.0), 4)
    metrics = grpo.train_step(model, optimizer, Accelerator(cpu=True), rollouts, advantages, cfg, sampler=sampler)
    assert metrics["updates"] == 2 and len(refreshed) == 2
    assert not torch.equal(refreshed[0][0], refreshed[1][0])  # the second update changed the weights again


def test_grpo_train_samples_from_the_copy_and_logs_the_gap(tiny_model, monkeypatch):
    """With the bf16 copy the sampler's log-probs differ from the float32 trainer's only by
    rounding; sampling from the policy itself they agree to float precision."""
    model, tokenizer = tiny_model
    boost_token(model, tokenizer.eos_token_id, 2.0)
    sampled_with, real_generate = [], rollout.generate

    def generate(sampler, *args, **kwargs):
        sampled_with.append(next(sampler.parameters()).dtype)
        return real_generate(sampler, *args, **kwargs)

    monkeypatch.setattr(rollout, "generate", generate)
    items = [{"messages": chat} for chat in CHATS[:2]]
    rows = {}
    for weights in ("bf16", "policy"):
        cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=8, prompts_per_step=2, prompts_per_update=1,
                              micro_batch_size=4, lr=1e-3, beta=0.0, rollout_weights=weights)
        rows[weights] = []
        torch.manual_seed(0)
        grpo.train(model, tokenizer, items, lambda items, texts: ([len(t) % 3 for t in texts], {}), cfg,
                   Accelerator(cpu=True), epochs=2, log=rows[weights].append)
    assert sampled_with == [torch.bfloat16] * 2 + [torch.float32] * 2
    for row in rows["bf16"]:
        assert 1e-4 < row["sampler_logprob_diff"] < 0.1
        assert row["sampler_logprob_diff"] <= row["sampler_logprob_diff_max"] < 1.0
    for row in rows["policy"]:
        assert row["sampler_logprob_diff_max"] < 1e-4


def test_rollout_weights_is_checked():
    settings = type("Settings", (), {"follower_grpo": grpo.GRPOConfig(rollout_weights="fp8")})()
    with pytest.raises(UserError, match="follower_grpo.rollout_weights is 'fp8': it must be auto, bf16 or policy"):
        check(settings)


def test_rollouts_and_updates_run_without_cudnn_attention(tiny_model, monkeypatch):
    """generate() and train_step() run where cuDNN attention is off (it plans anew for every
    shape); PyTorch's own setting is back as it was afterwards."""
    model, tokenizer = tiny_model
    before = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(True)
    seen, real_forward = [], model.forward

    @functools.wraps(real_forward)  # the same signature, so the cache argument is still found
    def forward(*args, **kwargs):
        seen.append(torch.backends.cuda.cudnn_sdp_enabled())
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    try:
        rollouts = rollout.generate(model, tokenizer, CHATS[:1], group_size=2, max_new_tokens=3)
        cfg = grpo.GRPOConfig(group_size=2, prompts_per_step=1, prompts_per_update=1, micro_batch_size=2, beta=0.0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        grpo.train_step(model, optimizer, Accelerator(cpu=True), rollouts, torch.tensor([1.0, -1.0]), cfg)
        assert len(seen) > 3 and not any(seen)
        assert torch.backends.cuda.cudnn_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)
