"""Model loading and batched rollouts, shared by every SEIF role.

Everything that samples text goes through `generate` here: the Instructor and Follower rollouts,
the Filter and Judger verdicts, and IFEval evaluation. One place means one correct completion
mask, which is the part most GRPO implementations get wrong:

    the mask ends right AFTER the first EOS token, found by id, never by pad_token_id.

Qwen2.5 and SmolLM2 both ship with pad == eos, so a mask built from `ids != pad_token_id`
silently drops the EOS token and the model is never taught to stop.

    model, tokenizer = load("Qwen/Qwen2.5-0.5B-Instruct")       # hub id, local dir, or .gguf file
    rollouts = generate(model, tokenizer, [[{"role": "user", "content": "Hi"}]], group_size=5)
    rollouts.texts            # 5 decoded completions
    rollouts.completion_mask  # (5, completion_len), 1 up to and including the first EOS
"""

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from accelerate import PartialState
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

import models
import speedups
from data import UserError


# -----------------------------------------------------------------------------
# Loading and saving


def load(name_or_path, *, dtype=None, device=None):
    """Load (model, tokenizer) from a hub id, a local directory, a `.gguf` file, or an offline
    short name such as `qwen2.5-coder-0.5b` (see models.py).

    bf16 on GPU and float32 on CPU unless `dtype` says otherwise. The tokenizer must have a
    chat template, because SEIF prompts every role as a chat.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if str(device).startswith("cuda") else torch.float32)
    name_or_path = models.local_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
    except OSError as error:  # bad path, unknown hub id, or no network to reach the hub
        raise UserError(f"cannot load model {name_or_path!r}: {str(error).splitlines()[0]}") from None
    check_chat_template(tokenizer, name_or_path)
    if tokenizer.pad_token_id is None:  # Llama-style tokenizers have no pad token; any id works
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def check_chat_template(tokenizer, name="the model"):
    if not tokenizer.chat_template:
        raise UserError(
            f"{name} has no chat template; SEIF prompts every role as a chat. "
            "Use an instruct/chat model or set tokenizer.chat_template."
        )


def save(model, tokenizer, path):
    """Model and tokenizer together, loadable by plain transformers, vLLM and lm-eval. Under
    `accelerate launch` only the main process writes."""
    if not PartialState().is_main_process:
        return
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


# -----------------------------------------------------------------------------
# Rollouts


@dataclass
class Rollouts:
    """A batch of sampled completions, `group_size` consecutive rows per prompt."""

    input_ids: torch.Tensor  # (batch, prompt_len + completion_len), prompt left-padded
    attention_mask: torch.Tensor  # (batch, prompt_len + completion_len)
    completion_mask: torch.Tensor  # (batch, completion_len), 1 up to and including the first EOS
    prompt_length: int  # prompt_len: where completions start in input_ids
    texts: list  # batch decoded completions, special tokens skipped
    group_size: int
    sampler_logprobs: torch.Tensor = None  # (batch, completion_len) log-probs the sampler drew with
    finished: list = None  # batch bools: the completion ended with an EOS rather than at max_new_tokens

    @property
    def completion_ids(self):
        return self.input_ids[:, self.prompt_length :]

    def micro_batch(self, rows, device):
        """(input_ids, attention_mask, completion_mask) of `rows`, on `device`, without the
        columns that are padding in every one of them: the log-prob passes run on this."""
        completion_mask, attention_mask = self.completion_mask[rows], self.attention_mask[rows]
        width = int(completion_mask.sum(dim=0).nonzero().max()) + 1 if completion_mask.any() else 1
        first = int(attention_mask[:, : self.prompt_length].sum(dim=0).nonzero().min())  # first real column
        end = self.prompt_length + width
        return (self.input_ids[rows, first:end].to(device), attention_mask[:, first:end].to(device),
                completion_mask[:, :width].to(device))


def chat_text(tokenizer, messages):
    """The prompt string the model sees: chat template plus the assistant turn header."""
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def eos_token_ids(model, tokenizer):
    """All ids that end a turn: generation_config may list several (e.g. Qwen's <|im_end|>, <|endoftext|>)."""
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def completion_mask_from_eos(completion_ids, eos_ids):
    """(batch, completion_len) mask: 1 up to and including the first EOS, all 1 if there is none."""
    is_eos = torch.isin(completion_ids, torch.tensor(eos_ids, device=completion_ids.device))
    # number of EOS tokens strictly before each position; positions with none before are kept
    eos_before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    return (eos_before == 0).long()


def generate(
    model, tokenizer, messages_list, *, group_size=1, max_new_tokens=256, temperature=1.0,
    top_p=1.0, greedy=False, batch_size=64, desc="rollout", share_prompts=True,
):
    """Sample `group_size` completions for each chat in `messages_list`, batched.

    Chunks of `batch_size` samples go through one `generate` call each. On a CUDA out-of-memory
    error the chunk is retried once at half the size. With `share_prompts`, the samples of one
    prompt in a chunk share a single prefill of it (`shared_prompt_cache`). The log-prob each
    token was sampled with is kept in `Rollouts.sampler_logprobs` (see `SampledLogprobs`).
    """
    prompts = [chat_text(tokenizer, messages) for messages in messages_list]
    prompts = [prompt for prompt in prompts for _ in range(group_size)]  # group by group
    was_training = model.training
    checkpointing = speedups.set_checkpointing(model, False)
    # generation wants eval mode (no dropout) and the KV cache, which checkpointing disables
    model.eval()
    try:
        chunks = []
        for start in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False,
                          disable=len(prompts) <= batch_size):
            chunk = prompts[start : start + batch_size]
            chunks.extend(speedups.halve_on_out_of_memory(
                _generate_chunk, model, tokenizer, chunk, max_new_tokens, temperature, top_p, greedy, share_prompts))
    finally:
        speedups.set_checkpointing(model, checkpointing)
        model.train(was_training)
    return _merge_chunks(chunks, tokenizer, eos_token_ids(model, tokenizer), group_size)


@torch.no_grad()
def _generate_chunk(model, tokenizer, prompts, max_new_tokens, temperature, top_p, greedy, share_prompts):
    """[(prompt_ids, prompt_mask, completion_ids, sampler_logprobs)]: left-padded prompts,
    right-padded completions."""
    tokenizer.padding_side = "left"  # decoder-only models continue from the last column
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    batch = batch.to(model.device)
    sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature,
                                                   "top_p": top_p, "top_k": 0}
    eos_ids = eos_token_ids(model, tokenizer)
    recorder = speedups.SampledLogprobs(1.0 if greedy else temperature)
    # The G samples of a prompt share its prefill: run every prompt but its last token once
    # and hand generate() the copied KV cache; it then starts from the last prompt token.
    cache = {}
    with speedups.attention_kernels():
        if share_prompts:
            shared = speedups.shared_prompt_cache(model, batch["input_ids"][:, :-1], batch["attention_mask"][:, :-1])
            cache = shared[2] if shared else {}
        with only_our_sampling_settings(model):
            output = model.generate(
                **batch, max_new_tokens=max_new_tokens, use_cache=True, pad_token_id=tokenizer.pad_token_id,
                eos_token_id=eos_ids, logits_processor=[recorder], **sampling, **cache,
            )
    completion_ids = output[:, batch["input_ids"].shape[1]:]
    return [(batch["input_ids"].cpu(), batch["attention_mask"].cpu(), completion_ids.cpu(),
             recorder.logprobs(completion_ids).cpu())]


@contextmanager
def only_our_sampling_settings(model):
    """Hide the checkpoint's generation_config from generate() for the duration of one call.

    Instruct checkpoints ship sampling settings (Qwen2.5-Instruct: repetition_penalty 1.05-1.1,
    top_k 20, top_p 0.8, temperature 0.7), and generate() applies every one we do not override.
    A GRPO rollout must sample from softmax(logits / T), the distribution completion_logprobs
    scores, or every importance ratio is off; so generate() sees a blank config and only the
    settings we pass (the library's neutral defaults fill the rest).
    """
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def _pad_to_same_width(tensors, pad_id, left=False):
    width = max(t.shape[1] for t in tensors)
    pads = [(width - t.shape[1], 0) if left else (0, width - t.shape[1]) for t in tensors]
    return [torch.nn.functional.pad(t, pad, value=pad_id) for t, pad in zip(tensors, pads)]


def _merge_chunks(chunks, tokenizer, eos_ids, group_size):
    """Stack (prompt_ids, prompt_mask, completion_ids, sampler_logprobs) chunks into one Rollouts."""
    pad_id = tokenizer.pad_token_id
    prompt_ids = torch.cat(_pad_to_same_width([c[0] for c in chunks], pad_id, left=True))
    prompt_mask = torch.cat(_pad_to_same_width([c[1] for c in chunks], 0, left=True))
    completion_ids = torch.cat(_pad_to_same_width([c[2] for c in chunks], pad_id))
    completion_mask = completion_mask_from_eos(completion_ids, eos_ids)
    sampler_logprobs = torch.cat(_pad_to_same_width([c[3] for c in chunks], 0.0)) * completion_mask
    kept_ids = [ids[mask.bool()] for ids, mask in zip(completion_ids, completion_mask)]
    # a chunk pads only completions that already ended, so an EOS id anywhere means it ended
    finished = torch.isin(completion_ids, torch.tensor(eos_ids, device=completion_ids.device)).any(dim=1)
    return Rollouts(
        input_ids=torch.cat([prompt_ids, completion_ids], dim=1),
        attention_mask=torch.cat([prompt_mask, completion_mask], dim=1),
        completion_mask=completion_mask,
        prompt_length=prompt_ids.shape[1],
        texts=tokenizer.batch_decode(kept_ids, skip_special_tokens=True),
        group_size=group_size,
        sampler_logprobs=sampler_logprobs,
        finished=finished.tolist(),
    )
