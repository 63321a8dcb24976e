"""Real-model smoke test: SmolLM2-135M-Instruct from its GGUF, offline, on CPU."""

import math

import torch
from accelerate import Accelerator

import grpo
import rollout


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
