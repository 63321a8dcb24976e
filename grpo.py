"""GRPO, written out by hand: advantages, log-probs, the clipped loss, and one training step.

Both trained SEIF roles (the Instructor and the Follower) use exactly this code; only their
reward functions differ. The settings are SEIF's (see GRPOConfig). Read top to bottom:

    group_advantages   rewards -> one advantage per sample, normalised within its group
    completion_logprobs  model -> per-token log-probs of the completion (the lm head chunked: no
                       full-vocabulary logits; each group's shared prompt runs once)
    grpo_loss          PPO clip + DAPO clip-higher + dual clip + k3 KL, three aggregations
    train_step         old/ref log-probs, then micro-batched updates with gradient accumulation

Importing this module has no side effects. Shapes: B = samples, C = completion length,
V = vocabulary.
"""

import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

import rollout
import speedups
import training


@dataclass
class GRPOConfig:
    group_size: int = 5  # SEIF: n = 5 samples per prompt
    temperature: float = 1.0  # SEIF: 1.0; log-probs use the same temperature as sampling
    top_p: float = 1.0  # SEIF: 1.0
    max_new_tokens: int = 8192  # SEIF: max response 8192 tokens
    prompts_per_step: int = 384  # SEIF: 384 prompts (x5 = 1920 samples) per rollout step
    prompts_per_update: int = 96  # SEIF: 96 prompts per optimizer step = 4 updates per rollout step
    ppo_epochs: int = 1  # SEIF: one pass over each rollout batch
    lr: float = 1e-6  # SEIF: AdamW, constant
    betas: tuple = (0.9, 0.999)  # SEIF
    weight_decay: float = 0.01  # SEIF
    max_grad_norm: float = 1.0  # SEIF
    eps_low: float = 0.2  # SEIF: ratio clipped to [1 - 0.2, 1 + 0.3] (clip-higher)
    eps_high: float = 0.3
    dual_clip: float = 3.0  # SEIF: dual clip for negative advantages
    beta: float = 0.01  # SEIF: k3 KL coefficient; 0 turns the reference model off
    aggregation: str = "token-mean"  # SEIF/DAPO; or "seq-mean" (GRPO), "seq-sum-norm" (Dr. GRPO)
    advantage_scale: str = "group"  # SEIF: divide by group std; "none" is Dr. GRPO
    micro_batch_size: int = 8  # samples per forward/backward: a memory knob, not an algorithm one
    generation_batch_size: int = 64  # samples per generate() call
    gradient_checkpointing: bool = False  # trade compute for activation memory
    share_prompts: bool = True  # run each prompt once per group, not G times (same results)
    rollout_weights: str = "auto"  # sample from a "bf16" copy or the float32 "policy"; auto: bf16 on GPU
    ref_on_cpu: bool = False  # keep the frozen reference model on CPU to save GPU memory
    max_bad_updates: int = 3  # stop after this many non-finite updates in a row
    checkpoint_every: int = 0  # save policy, optimizer and RNG state every N steps (0 = never)


# -----------------------------------------------------------------------------
# Advantages


def group_advantages(rewards, group_size, scale="group"):
    """(num_groups * group_size,) rewards, ordered group by group -> same-shape advantages.

    GRPO (Shao et al. 2024): A_i = (r_i - mean(group)) / (std(group) + 1e-6), std unbiased.
    Dr. GRPO (Liu et al. 2025), scale="none": A_i = r_i - mean(group).
    A group with equal rewards has r_i - mean = 0 exactly, so it gives zeros, never NaN.
    """
    grouped = rewards.float().view(-1, group_size)  # (num_groups, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (grouped.std(dim=1, unbiased=True, keepdim=True) + 1e-6)
    elif scale != "none":
        raise ValueError(f"scale must be 'group' or 'none', not {scale!r}")
    return centred.view(-1)


# -----------------------------------------------------------------------------
# Log-probabilities


def completion_logprobs(model, input_ids, attention_mask, completion_mask, temperature=1.0,
                        chunk_tokens=1024, share_prompts=True):
    """(B, P + C) ids -> (B, C) log p(token) for the completion tokens; 0 where masked out.

    log p(token t+1) = log_softmax(lm_head(h_t) / T)[token t+1], in float32, where h_t is the
    final hidden state at position t and T the sampling temperature (the ratio and the KL must
    score the distribution the rollouts were sampled from). The lm head runs on `chunk_tokens`
    valid positions at a time (speedups.token_logprobs), so the (B x C x V) logits, for Qwen's
    V = 151,936 what runs out of memory, never exist. With `share_prompts`, rows with the same
    prompt (a GRPO group) run it once; the result is the same up to float rounding.
    """
    completion_len = completion_mask.shape[1]
    # left padding: positions count real tokens only, exactly as generate() numbered them
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    # (B, C, H) final hidden states at the positions before each completion token
    hidden = speedups.completion_hidden(model, input_ids, attention_mask, position_ids, completion_len, share_prompts)
    hidden = hidden.flatten(0, 1)  # (B*C, H): the hidden state at t predicts token t + 1
    lm_head = getattr(model, "module", model).get_output_embeddings()  # H -> V, through a DDP wrapper
    targets = input_ids[:, -completion_len:].flatten()  # (B*C,)
    valid = completion_mask.flatten().nonzero().squeeze(1)  # only completion tokens are scored
    flat = torch.zeros(targets.shape, dtype=torch.float32, device=hidden.device)
    if len(valid):
        flat = flat.index_copy(0, valid, speedups.token_logprobs(lm_head, hidden, targets, valid, temperature,
                                                                 chunk_tokens))
    return flat.view(-1, completion_len)


# -----------------------------------------------------------------------------
# The loss


def grpo_loss(logprobs, old_logprobs, ref_logprobs, advantages, completion_mask, *, eps_low=0.2,
              eps_high=0.3, dual_clip=3.0, beta=0.01, aggregation="token-mean"):
    """Clipped policy-gradient loss with a k3 KL penalty. Returns (loss, stats).

    logprobs, old_logprobs, ref_logprobs, completion_mask: (B, C); advantages: (B,).
    """
    mask = completion_mask.float()
    advantage = advantages.unsqueeze(1)  # (B, 1): every token of a sample shares its advantage
    ratio = torch.exp(logprobs - old_logprobs)  # (B, C) importance ratio pi / pi_old
    # PPO clip (Schulman et al. 2017), with DAPO's clip-higher (Yu et al. 2025): an upper bound
    # 1 + eps_high above 1 + eps_low lets low-probability tokens grow, which keeps entropy up.
    clipped_ratio = ratio.clamp(1 - eps_low, 1 + eps_high)
    surrogate = torch.minimum(ratio * advantage, clipped_ratio * advantage)  # (B, C)
    # Dual clip (Ye et al. 2020): for A < 0 a huge ratio makes min() unbounded below, so floor
    # the surrogate at dual_clip * A.
    dual_clipped = (advantage < 0) & (surrogate < dual_clip * advantage)
    surrogate = torch.where(advantage < 0, torch.maximum(surrogate, dual_clip * advantage), surrogate)
    per_token_loss = -surrogate
    kl = torch.zeros_like(logprobs)
    if beta != 0 and ref_logprobs is not None:
        # k3 estimator of KL(pi || pi_ref) (Schulman 2020): exp(d) - d - 1 with d = ref - logp;
        # unbiased, always >= 0. Clamped to [-10, 10] as SEIF does, against rare blow-ups.
        log_ratio = ref_logprobs - logprobs
        kl = (torch.exp(log_ratio) - log_ratio - 1).clamp(-10, 10)
        per_token_loss = per_token_loss + beta * kl
    loss = aggregate(per_token_loss, mask, aggregation)

    with torch.no_grad():
        tokens = mask.sum().clamp(min=1)
        stats = {
            "kl": ((kl * mask).sum() / tokens).item(),
            "clip_low": (((ratio < 1 - eps_low) & (advantage < 0)).float() * mask).sum().item() / tokens.item(),
            "clip_high": (((ratio > 1 + eps_high) & (advantage > 0)).float() * mask).sum().item() / tokens.item(),
            "dual_clip": ((dual_clipped.float() * mask).sum() / tokens).item(),
            "ratio": ((ratio * mask).sum() / tokens).item(),
        }
    return loss, stats


def aggregate(per_token_loss, mask, aggregation):
    """(B, C) per-token loss -> scalar, in one of three ways the literature uses."""
    masked = per_token_loss.masked_fill(mask == 0, 0.0)  # padding contributes nothing, even if inf
    if aggregation == "token-mean":  # DAPO / SEIF: every valid token in the batch weighs the same
        return masked.sum() / mask.sum().clamp(min=1)
    if aggregation == "seq-mean":  # original GRPO: mean over each sequence, then over sequences
        return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
    if aggregation == "seq-sum-norm":  # Dr. GRPO: sum over tokens / (B x C), C fixed for the batch
        return masked.sum() / mask.numel()
    raise ValueError(f"unknown aggregation {aggregation!r}")


def aggregation_denominator(mask, aggregation, completion_len):
    """What `aggregate` divides by, for a batch padded to `completion_len` columns.

    A micro-batch's loss times (its denominator / the whole update's denominator) makes the
    accumulated gradient equal the gradient of the loss over the whole update at once.
    """
    if aggregation == "token-mean":
        return mask.sum().item()
    if aggregation == "seq-mean":
        return mask.shape[0]
    return mask.shape[0] * completion_len  # seq-sum-norm


# -----------------------------------------------------------------------------
# One training step


@speedups.attention_kernels()  # no cuDNN attention: it plans anew for every micro-batch width
def train_step(policy, optimizer, accelerator, rollouts, advantages, cfg, ref_model=None, sampler=None):
    """One GRPO step on a batch of rollouts: old/ref log-probs, then the updates.

    rollouts: rollout.Rollouts for B samples, advantages: (B,). Makes one optimizer update per
    `cfg.prompts_per_update` prompts' worth of samples (SEIF: 4 per step), each accumulated over
    micro-batches of `cfg.micro_batch_size`. `sampler`, the bf16 rollout copy if there is one,
    gets the new weights after every update. Returns a dict of metrics.
    """
    start_time = time.time()
    per_update = cfg.prompts_per_update * rollouts.group_size
    updates = [list(range(s, min(s + per_update, len(advantages)))) for s in range(0, len(advantages), per_update)]
    # Old log-probs (the policy that sampled) and reference log-probs, without gradients. With one
    # epoch the first update's old log-probs equal the current ones, so that update takes them
    # from its own forward pass (detached) instead of a separate one.
    reuse_first = cfg.ppo_epochs == 1
    with accelerator.autocast():
        old = all_logprobs(policy, rollouts, cfg, accelerator.device, skip=len(updates[0]) if reuse_first else 0)
        use_kl = cfg.beta != 0 and ref_model is not None
        ref = all_logprobs(ref_model, rollouts, cfg, ref_model.device) if use_kl else None
    policy.train()
    history, bad_updates = [], 0
    for _ in range(cfg.ppo_epochs):
        for update_index, rows in enumerate(updates):
            old_logprobs = None if reuse_first and update_index == 0 else old
            history += _update(policy, accelerator, rollouts, rows, advantages, old_logprobs, ref, cfg)
            grad_norm = accelerator.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            if torch.isfinite(torch.as_tensor(grad_norm)):
                optimizer.step()
                if sampler is not None:
                    speedups.refresh_copy(sampler, accelerator.unwrap_model(policy))
            else:  # a NaN/inf loss or gradient: drop this update, keep the weights as they were
                bad_updates += 1
            optimizer.zero_grad(set_to_none=True)
            history[-1]["grad_norm"] = float(grad_norm)
    seconds = time.time() - start_time
    return {**training.summarise(history), "updates": len(updates) * cfg.ppo_epochs, "bad_updates": bad_updates, "update_time": seconds,
            "update_tokens_per_s": rollouts.completion_mask.sum().item() * cfg.ppo_epochs / seconds}


def _update(policy, accelerator, rollouts, rows, advantages, old, ref, cfg):
    """Accumulate the gradient of one update's loss over micro-batches of `rows`; returns the
    micro-batches' stats. `old` None: the old log-probs are the current ones (detached)."""
    mask = rollouts.completion_mask[rows]
    denominator = max(aggregation_denominator(mask, cfg.aggregation, mask.shape[1]), 1)
    micro_batches = [rows[i : i + cfg.micro_batch_size] for i in range(0, len(rows), cfg.micro_batch_size)]
    stats = []
    for i, micro in enumerate(micro_batches):
        input_ids, attention_mask, completion_mask = rollouts.micro_batch(micro, accelerator.device)
        width = completion_mask.shape[1]  # trimmed to the micro-batch's longest completion
        # all-reduce gradients across processes only on the last micro-batch
        sync = nullcontext() if i == len(micro_batches) - 1 else accelerator.no_sync(policy)
        with sync, accelerator.autocast():
            logprobs = completion_logprobs(policy, input_ids, attention_mask, completion_mask,
                                           temperature=cfg.temperature, share_prompts=cfg.share_prompts)
            old_logprobs = logprobs.detach() if old is None else old[micro, :width].to(logprobs.device)
            ref_logprobs = ref[micro, :width].to(logprobs.device) if ref is not None else None
            loss, step_stats = grpo_loss(logprobs, old_logprobs, ref_logprobs, advantages[micro].to(logprobs.device),
                                         completion_mask, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                                         dual_clip=cfg.dual_clip, beta=cfg.beta, aggregation=cfg.aggregation)
            # this micro-batch's share of the update's loss (see aggregation_denominator);
            # with several processes DDP then averages the per-process gradients
            accelerator.backward(loss * aggregation_denominator(completion_mask, cfg.aggregation, width) / denominator)
        stats.append({"loss": loss.item(), **step_stats, **speedups.sampler_gap(rollouts, micro, old_logprobs, completion_mask)})
    return stats


@torch.no_grad()
def all_logprobs(model, rollouts, cfg, device, skip=0):
    """(B, C) log-probs from `model` for every sample from `skip` on (rows before it stay 0)."""
    logprobs = torch.zeros(rollouts.completion_mask.shape, dtype=torch.float32)
    model_was_training = model.training
    model.eval()
    for start in range(skip, len(logprobs), cfg.micro_batch_size):
        rows = list(range(start, min(start + cfg.micro_batch_size, len(logprobs))))
        input_ids, attention_mask, completion_mask = rollouts.micro_batch(rows, device)
        logprobs[rows, : completion_mask.shape[1]] = completion_logprobs(
            model, input_ids, attention_mask, completion_mask, temperature=cfg.temperature,
            share_prompts=cfg.share_prompts).cpu()
    model.train(model_was_training)
    return logprobs


# -----------------------------------------------------------------------------
# The training loop: rollout -> reward -> advantages -> train_step, for either trained role


def train(policy, tokenizer, items, reward_fn, cfg, accelerator, *, ref_model=None, epochs=1,
          max_steps=None, seed=0, log=training.print_metrics, desc="grpo", checkpoint_dir=None,
          samples_path=None):
    """GRPO over `items` for `epochs` (at most `max_steps` steps); returns the unwrapped policy.

    items: dicts with a "messages" key (the chat to sample from) plus whatever the reward needs.
    reward_fn(items, texts) -> (rewards, info): `items` repeated group_size times in group order,
    one completion text each, each copy with "finished": False when its completion was cut off
    at cfg.max_new_tokens; rewards is a list of floats, info a dict of extra metrics to log.
    log(row) gets each step's metrics row, on the main process only. With `checkpoint_dir` and
    cfg.checkpoint_every, it resumes from the latest step saved there. With `samples_path`, the
    main process appends its samples with their rewards there (JSONL).
    """
    # SEIF: AdamW at a constant lr; `model` is the bare policy, which generate() and saving need
    policy, optimizer, model = training.prepare(policy, cfg, accelerator)
    steps = training.step_schedule(len(items), cfg.prompts_per_step, epochs, max_steps, seed)
    first_step = training.load_checkpoint(checkpoint_dir, model, optimizer, accelerator) if checkpoint_dir else 0
    sampler = speedups.rollout_copy(model, cfg.rollout_weights)  # what generate() runs: see rollout.py
    samples_path = training.samples_file(samples_path, first_step, accelerator)  # None on other processes
    bad_streak = 0
    for step, prompt_indices in enumerate(tqdm(steps, desc=desc, disable=not accelerator.is_main_process)):
        if step < first_step:
            continue
        step_start = time.time()
        prompt_indices, rank_cfg = training.rank_share(prompt_indices, cfg, accelerator)
        batch = [items[i] for i in prompt_indices]
        with accelerator.autocast():
            rollouts = rollout.generate(sampler, tokenizer, [item["messages"] for item in batch],
                                        group_size=cfg.group_size, max_new_tokens=cfg.max_new_tokens,
                                        temperature=cfg.temperature, top_p=cfg.top_p,
                                        batch_size=cfg.generation_batch_size, desc=f"{desc} rollout",
                                        share_prompts=cfg.share_prompts)
        rollout_time = time.time() - step_start
        sampled_items = [{**item, "finished": finished} for item, finished in
                         zip((item for item in batch for _ in range(cfg.group_size)), rollouts.finished)]
        rewards, info = reward_fn(sampled_items, rollouts.texts)
        if samples_path:
            training.log_samples(samples_path, step, sampled_items, rollouts.texts, rewards)
        rewards = torch.tensor(rewards, dtype=torch.float32)
        advantages = group_advantages(rewards, cfg.group_size, cfg.advantage_scale)
        metrics = train_step(policy, optimizer, accelerator, rollouts, advantages, rank_cfg, ref_model,
                             sampler=None if sampler is model else sampler)
        bad_streak = training.count_bad_updates(bad_streak, metrics["bad_updates"], cfg.max_bad_updates, desc)
        row = training.step_row(rewards, cfg.group_size, info, metrics, rollouts.completion_mask, rollout_time,
                                step_start)
        row = training.mean_over_processes(accelerator, row)
        if accelerator.is_main_process:
            log({"step": step, **row})
        if checkpoint_dir and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            training.save_checkpoint(checkpoint_dir, step, model, optimizer, accelerator)
    return model
