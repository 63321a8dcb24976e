"""Speed and memory machinery under rollout.py and grpo.py: same results, less time or memory.

Nothing here changes what SEIF computes; each piece is measured in README "Results" and
bench/RESULTS.md. A reader learning the algorithm can skip this file.

    rollout_copy / refresh_copy   sample from a bf16 copy of the float32 policy (GPU)
    SampledLogprobs, sampler_gap  the log-probs tokens were sampled with, against the trainer's
    shared_prompt_cache           a GRPO group's samples share one prefill of their prompt
    prompt_shared_hidden          ... and one forward pass of it when scoring log-probs
    attention_kernels             PyTorch attention without cuDNN (it re-plans every new shape)
    set_checkpointing             gradient checkpointing on or off, across transformers versions
    halve_on_out_of_memory        a generate chunk retried in two halves on CUDA OOM
    token_logprobs                the lm head and log-softmax in chunks, checkpointed
"""

import inspect
from copy import deepcopy

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm
from transformers import LogitsProcessor


def rollout_copy(model, weights="auto"):
    """The model that samples a GRPO step's rollouts: `model` itself, or a bf16 copy of it.

    Decoding one token at a time is bound by reading the weights, and under bf16 autocast the
    float32 master weights are re-cast at every token; a bf16 copy is read as it is, several
    times faster on a GPU (README, "One GPU"). grpo.py refreshes the copy after every optimizer
    update (`refresh_copy`), so it always holds the current policy, rounded to bf16; the small
    gap between the sampler's log-probs and the trainer's is logged as `sampler_logprob_diff`.
    weights: "bf16", "policy" (sample from `model` itself), or "auto" (bf16 on GPU, else policy).
    """
    if weights == "auto":
        weights = "bf16" if next(model.parameters()).is_cuda else "policy"
    if weights == "policy" or all(p.dtype == torch.bfloat16 for p in model.parameters()):
        return model
    copy = deepcopy(model).eval().requires_grad_(False)
    for parameter in copy.parameters():  # parameters only: buffers such as RoPE's stay float32
        parameter.data = parameter.data.to(torch.bfloat16)
    return copy


@torch.no_grad()
def refresh_copy(copy, model):
    """Copy `model`'s current weights into `copy`, rounding to its dtype (no-op if the same)."""
    if copy is not model:
        for target, source in zip(copy.parameters(), model.parameters()):
            target.copy_(source)


def checkpointing_enabled(model):
    """Whether gradient (activation) checkpointing is on."""
    # transformers 5.x renamed gradient_checkpointing_* to activation_checkpointing_*
    if hasattr(model, "activation_checkpointing_enable"):
        return model.is_activation_checkpointing
    return model.is_gradient_checkpointing


def set_checkpointing(model, enabled):
    """Turn gradient (activation) checkpointing on or off; returns whether it was on."""
    was_on = checkpointing_enabled(model)
    if enabled != was_on:
        prefix = "activation" if hasattr(model, "activation_checkpointing_enable") else "gradient"
        getattr(model, f"{prefix}_checkpointing_{'enable' if enabled else 'disable'}")()
    return was_on


def halve_on_out_of_memory(generate_chunk, model, tokenizer, prompts, *settings):
    """generate_chunk(model, tokenizer, prompts, *settings); on a CUDA out-of-memory error, once
    more in two halves."""
    try:
        return generate_chunk(model, tokenizer, prompts, *settings)
    except torch.OutOfMemoryError:
        if len(prompts) == 1:
            raise
        torch.cuda.empty_cache()
        tqdm.write(f"out of memory generating {len(prompts)} samples; retrying in two halves")
        half = len(prompts) // 2
        return [generate_chunk(model, tokenizer, part, *settings)[0]
                for part in (prompts[:half], prompts[half:])]


def attention_kernels():
    """A context in which PyTorch's attention (SDPA) uses any kernel but cuDNN's.

    On an H100, PyTorch tries cuDNN first for attention with a padding mask, and cuDNN builds an
    execution plan for every new (batch, length) shape: about 80 ms per decoding step measured
    here, since decoding makes a new key length at every token (GRPO micro-batches vary in
    width too). The flash and memory-efficient kernels need no plan. README, "Where the speed
    comes from": the preset's step went from 163.6 s to 50.8 s.
    """
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


class SampledLogprobs(LogitsProcessor):
    """Records, during generate(), log softmax(logits / T) of each token it samples: the
    sampler's own log-probs, which grpo.py compares with the trainer's (`sampler_logprob_diff`).

    generate() runs the processors it is given before temperature and top-p, so `scores` here
    are the model's raw logits. At step t the token of step t - 1 is the last input id.
    """

    def __init__(self, temperature):
        self.temperature = temperature
        self.pending = None  # (B, V) log-probs of the last step, until its token is known
        self.picked = []  # (B,) per step: the log-prob of the token sampled at that step

    def __call__(self, input_ids, scores):
        self._take(input_ids[:, -1])
        self.pending = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def _take(self, tokens):
        if self.pending is not None:
            self.picked.append(self.pending.gather(1, tokens.unsqueeze(1)).squeeze(1))
            self.pending = None

    def logprobs(self, completion_ids):
        """(B, C) log-probs of `completion_ids`, the tokens generate() returned."""
        self._take(completion_ids[:, -1])
        return torch.stack(self.picked, dim=1) if self.picked else completion_ids.new_zeros(
            completion_ids.shape, dtype=torch.float32)


def cache_argument(model):
    """The name of the KV cache argument of `model`'s forward (and field of its output)."""
    # transformers 5.x renamed past_key_values to cache
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def last_hidden_states(model, **inputs):
    """(B, L, H) final hidden states (after the last norm: the lm head's input) of a forward pass.
    The lm head itself runs on the last position only, so no full-vocabulary logits are made."""
    return model(**inputs, logits_to_keep=1, output_hidden_states=True).hidden_states[-1]


def shared_prompt_cache(model, input_ids, attention_mask):
    """Run each distinct row of a left-padded (B, P) batch once; copy its KV cache to its rows.

    Returns None when no row repeats. Otherwise (last_hidden, which, cache_kwargs): last_hidden
    is (distinct, 1, H), the final hidden state at the last prompt position of each distinct
    row, and which (B,) says which distinct row each row is; cache_kwargs is {name: cache} to
    pass on to the model or to generate(), where the cache holds B rows. Gradients, when on,
    flow back through the copies to the one pass per prompt, summed over the rows that share it.
    """
    if input_ids.shape[1] == 0:
        return None
    width = input_ids.shape[1]
    distinct, which = torch.unique(torch.cat([input_ids, attention_mask], dim=1), dim=0, return_inverse=True)
    if len(distinct) == len(input_ids):
        return None
    distinct_ids, distinct_mask = distinct[:, :width], distinct[:, width:]
    # Around a DDP wrapper, so that only the caller's pass goes through it (DDP expects one
    # forward per backward). FSDP and DeepSpeed wrappers must be called: they gather the weights.
    core = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    name = cache_argument(getattr(core, "module", core))
    position_ids = (distinct_mask.cumsum(dim=1) - 1).clamp(min=0)
    output = core(input_ids=distinct_ids, attention_mask=distinct_mask, position_ids=position_ids,
                  use_cache=True, logits_to_keep=1, output_hidden_states=True)
    cache = getattr(output, name, None)
    if cache is None:  # a model that returns no KV cache: nothing to share
        return None
    cache.batch_select_indices(which)  # (distinct, ...) -> (B, ...)
    return output.hidden_states[-1][:, -1:], which, {name: cache}


def prompt_shared_hidden(model, input_ids, attention_mask, position_ids, completion_len):
    """(B, C, H) final hidden states at the positions that predict the C completion tokens, with
    each distinct prompt run once; None if that can't help.

    The G samples of a group share their prompt, and a causal model's hidden states at the
    prompt positions do not depend on what follows. So: run each distinct prompt once (with
    its KV cache), copy the cache to the rows that share it, and run only the completions on
    top. Gradients flow back through the copied cache to the one prompt pass, summed over the
    group, exactly as if every row had run its own copy. With short completions the prompt is
    most of the tokens, and this removes (G - 1) / G of its compute.

    Not used with gradient checkpointing while gradients are on: a checkpointed layer would
    append its keys to the cache a second time when backward recomputes it.
    """
    prompt_len = input_ids.shape[1] - completion_len
    checkpointing = checkpointing_enabled(getattr(model, "module", model))
    if completion_len < 2 or (checkpointing and torch.is_grad_enabled()):
        return None
    shared = shared_prompt_cache(model, input_ids[:, :prompt_len], attention_mask[:, :prompt_len])
    if shared is None:
        return None
    last_prompt_hidden, which, cache = shared
    # the completion tokens but the last (its hidden state would predict past the end)
    completions = last_hidden_states(model, input_ids=input_ids[:, prompt_len:-1],
                                     attention_mask=attention_mask[:, :-1],
                                     position_ids=position_ids[:, prompt_len:-1], use_cache=True, **cache)
    # the last prompt position predicts the first completion token
    return torch.cat([last_prompt_hidden[which], completions], dim=1)


def sampler_gap(rollouts, rows, trainer_logprobs, completion_mask):
    """How far the log-probs the tokens were sampled with are from the trainer's (same weights):
    {sampler_logprob_diff: mean |difference| per token, sampler_logprob_diff_max: the largest}.
    Non-zero only through numerics: a bf16 sampler, other kernels, a KV cache."""
    if rollouts.sampler_logprobs is None:
        return {}
    sampled = rollouts.sampler_logprobs[rows, : completion_mask.shape[1]].to(trainer_logprobs.device)
    gap = (trainer_logprobs - sampled).abs() * completion_mask
    return {"sampler_logprob_diff": (gap.sum() / completion_mask.sum().clamp(min=1)).item(),
            "sampler_logprob_diff_max": gap.max().item()}


def completion_hidden(model, input_ids, attention_mask, position_ids, completion_len, share_prompts):
    """(B, C, H) final hidden states at the positions that predict the C completion tokens; with
    `share_prompts`, each distinct prompt runs once (`prompt_shared_hidden`) where that can help."""
    hidden = None
    if share_prompts:
        hidden = prompt_shared_hidden(model, input_ids, attention_mask, position_ids, completion_len)
    if hidden is None:
        hidden = last_hidden_states(model, input_ids=input_ids, attention_mask=attention_mask,
                                    position_ids=position_ids, use_cache=False)[:, -completion_len - 1 : -1]
    return hidden


def token_logprobs(lm_head, hidden, targets, valid, temperature, chunk_tokens=1024):
    """(len(valid),) log softmax(lm_head(hidden[valid]) / T)[targets[valid]], `chunk_tokens`
    positions at a time; hidden: (N, H), targets: (N,), valid: indices into both.

    The model is asked for its final hidden states, not its logits: the lm head runs inside the
    float32 log-softmax one chunk at a time, and with gradients on each chunk is checkpointed,
    so backward recomputes it instead of keeping it. Neither the (B x C x V) logits nor their
    gradient ever exist. (This assumes logits = lm_head(last hidden state), true of the Llama,
    Qwen and Mistral families; a model with a logit soft-cap would need it applied here.)
    """
    pieces = []
    for start in range(0, len(valid), chunk_tokens):
        index = valid[start : start + chunk_tokens]
        if torch.is_grad_enabled():
            pieces.append(checkpoint(_chunk_logprobs, lm_head, hidden[index], targets[index], temperature,
                                     use_reentrant=False))
        else:
            pieces.append(_chunk_logprobs(lm_head, hidden[index], targets[index], temperature))
    return torch.cat(pieces)


def _chunk_logprobs(lm_head, hidden, targets, temperature):
    """(N, H) hidden states, (N,) targets -> (N,) log softmax(lm_head(hidden) / T)[target]."""
    logits = lm_head(hidden).float()  # (N, V), in float32
    logits = logits / temperature if temperature != 1 else logits
    return logits.gather(1, targets.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=1)
