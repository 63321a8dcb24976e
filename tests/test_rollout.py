"""Rollouts: the completion mask, generation state, log-probs, and loading."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import rollout
import speedups
from conftest import boost_token
from data import UserError
from grpo import completion_logprobs

CHATS = [[{"role": "user", "content": "Write a poem"}], [{"role": "user", "content": "List three fruits"}]]


def test_mask_ends_right_after_the_first_eos():
    completion_ids = torch.tensor([[5, 6, 2, 2, 2], [5, 2, 7, 2, 2], [5, 6, 7, 8, 9], [9, 9, 9, 3, 7]])
    mask = rollout.completion_mask_from_eos(completion_ids, eos_ids=[2, 3])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]


def test_generate_keeps_eos_when_pad_equals_eos(tiny_model):
    model, tokenizer = tiny_model
    eos = tokenizer.eos_token_id
    assert tokenizer.pad_token_id == eos  # the case that breaks pad-based masks
    handle = boost_token(model, eos, 4.0)
    torch.manual_seed(0)
    rollouts = rollout.generate(model, tokenizer, CHATS, group_size=4, max_new_tokens=16, batch_size=3)
    handle.remove()
    ids, mask = rollouts.completion_ids, rollouts.completion_mask
    assert ids.shape == mask.shape and ids.shape[0] == 8 and rollouts.group_size == 4
    ended = 0
    for row_ids, row_mask in zip(ids.tolist(), mask.tolist()):
        if eos in row_ids:
            first = row_ids.index(eos)
            assert row_mask == [1] * (first + 1) + [0] * (len(row_ids) - first - 1)
            ended += 1
        else:
            assert all(row_mask)
    assert ended >= 1
    assert rollouts.finished == [eos in row_ids for row_ids in ids.tolist()]
    assert all("<|im_end|>" not in text for text in rollouts.texts)
    # the attention mask covers the real prompt tokens and exactly the masked completion
    assert torch.equal(rollouts.attention_mask[:, rollouts.prompt_length:], mask)


def test_no_eos_means_the_whole_length_counts(tiny_model):
    model, tokenizer = tiny_model
    handle = boost_token(model, tokenizer.eos_token_id, -1e4)
    rollouts = rollout.generate(model, tokenizer, CHATS, group_size=2, max_new_tokens=7)
    handle.remove()
    assert rollouts.completion_mask.shape == (4, 7)
    assert rollouts.completion_mask.all()
    assert rollouts.finished == [False] * 4  # all cut off by max_new_tokens


def test_generate_restores_training_mode_and_checkpointing(tiny_model):
    model, tokenizer = tiny_model
    model.train()
    speedups.set_checkpointing(model, True)
    rollout.generate(model, tokenizer, CHATS[:1], max_new_tokens=3)
    assert model.training
    assert speedups.set_checkpointing(model, False) is True  # it was back on


def test_greedy_generation_is_deterministic(tiny_model):
    model, tokenizer = tiny_model
    first = rollout.generate(model, tokenizer, CHATS, max_new_tokens=6, greedy=True)
    second = rollout.generate(model, tokenizer, CHATS, max_new_tokens=6, greedy=True, batch_size=1)
    assert first.texts == second.texts


def test_a_shared_prefill_generates_the_same_as_one_prefill_per_sample(tiny_model):
    model, tokenizer = tiny_model
    runs = [rollout.generate(model, tokenizer, CHATS, group_size=3, max_new_tokens=8, greedy=True,
                             share_prompts=share) for share in (False, True)]
    assert torch.equal(runs[0].input_ids, runs[1].input_ids)
    # sampling draws the same tokens from the same seed either way
    samples = []
    for share in (False, True):
        torch.manual_seed(5)
        samples.append(rollout.generate(model, tokenizer, CHATS, group_size=3, max_new_tokens=8,
                                        share_prompts=share).input_ids)
    assert torch.equal(samples[0], samples[1])
    assert len({tuple(row) for row in samples[0].tolist()}) > 2  # the samples differ


def record_generate_scores(model):
    """Wrap model.generate to keep, per decoding step, the raw logits and the scores that
    sampling used after every logits processor; returns the list they are appended to."""
    steps, original = [], model.generate

    def generate(**kwargs):
        output = original(**kwargs, output_scores=True, output_logits=True, return_dict_in_generate=True)
        steps.extend(zip(output.logits, output.scores))
        return output.sequences

    model.generate = generate
    return steps


@pytest.mark.parametrize("greedy, temperature", [(False, 1.0), (False, 0.7), (True, 1.0)])
def test_sampling_ignores_the_checkpoints_generation_config(tiny_model, greedy, temperature):
    """Instruct checkpoints ship repetition_penalty, top_k, top_p and temperature in their
    generation_config. Rollouts must sample from softmax(logits / T) alone, the distribution
    completion_logprobs scores, and greedy decoding must take the plain argmax."""
    model, tokenizer = tiny_model
    model.generation_config.update(do_sample=True, temperature=0.3, top_k=3, top_p=0.5, min_p=0.2,
                                   repetition_penalty=1.3, no_repeat_ngram_size=2, suppress_tokens=[5])
    steps = record_generate_scores(model)
    torch.manual_seed(0)
    rollout.generate(model, tokenizer, CHATS, group_size=2, max_new_tokens=6, greedy=greedy,
                     temperature=temperature)
    assert len(steps) == 6
    for logits, scores in steps:
        expected = logits if greedy else logits / temperature
        assert torch.allclose(scores, expected, atol=1e-5)
    assert model.generation_config.repetition_penalty == 1.3  # the checkpoint's config is untouched


def test_chunked_logprobs_match_a_plain_log_softmax(tiny_model):
    model, tokenizer = tiny_model
    torch.manual_seed(1)
    rollouts = rollout.generate(model, tokenizer, CHATS, group_size=2, max_new_tokens=9)
    model.eval()
    with torch.no_grad():
        ours = completion_logprobs(model, rollouts.input_ids, rollouts.attention_mask,
                                   rollouts.completion_mask, temperature=0.7, chunk_tokens=5)
        positions = (rollouts.attention_mask.cumsum(1) - 1).clamp(min=0)
        logits = model(rollouts.input_ids, attention_mask=rollouts.attention_mask,
                       position_ids=positions).logits
        full = torch.log_softmax(logits[:, :-1].float() / 0.7, dim=-1)
        targets = rollouts.input_ids[:, 1:].unsqueeze(-1)
        reference = full.gather(-1, targets).squeeze(-1)[:, -rollouts.completion_mask.shape[1]:]
    mask = rollouts.completion_mask.bool()
    assert torch.allclose(ours[mask], reference[mask], atol=1e-5)
    assert (ours[~mask] == 0).all()


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_shared_prompts_give_the_same_logprobs_and_gradients(tiny_tokenizer, arch):
    from conftest import make_tiny_model
    model = make_tiny_model(tiny_tokenizer, seed=3, arch=arch)
    torch.manual_seed(2)
    # 3 distinct prompts of different lengths (left padding), groups of 2, one group split
    # apart so a shared prompt's rows are not next to each other
    chats = CHATS + [[{"role": "user", "content": "Say hi"}]]
    rollouts = rollout.generate(model, tokenizer=tiny_tokenizer, messages_list=chats, group_size=2,
                                max_new_tokens=8)
    order = torch.tensor([0, 2, 1, 3, 4, 5])
    batch = (rollouts.input_ids[order], rollouts.attention_mask[order], rollouts.completion_mask[order])
    weights = torch.randn(batch[2].shape)
    results = []
    for share in (False, True):
        model.zero_grad()
        logprobs = completion_logprobs(model, *batch, temperature=0.9, share_prompts=share)
        (logprobs * weights).sum().backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((logprobs.detach(), grads))
    (plain, plain_grads), (shared, shared_grads) = results
    assert torch.allclose(shared, plain, atol=1e-5)
    assert plain_grads.abs().sum() > 0 and shared_grads.shape == plain_grads.shape
    assert torch.allclose(shared_grads, plain_grads, atol=1e-5, rtol=1e-4)


def test_shared_prompts_with_gradient_checkpointing_match_too(tiny_model):
    model, tokenizer = tiny_model
    rollouts = rollout.generate(model, tokenizer, CHATS, group_size=2, max_new_tokens=6)
    batch = (rollouts.input_ids, rollouts.attention_mask, rollouts.completion_mask)
    plain = completion_logprobs(model, *batch, share_prompts=False).detach()
    model.train()
    speedups.set_checkpointing(model, True)
    for grad in (False, True):  # no-grad passes share; with gradients it runs unshared
        with torch.set_grad_enabled(grad):
            logprobs = completion_logprobs(model, *batch)
        assert torch.allclose(logprobs.detach(), plain, atol=1e-5)
    logprobs.sum().backward()
    assert model.lm_head.weight.grad.abs().sum() > 0


def test_logprobs_gradients_flow_through_chunks(tiny_model):
    model, tokenizer = tiny_model
    rollouts = rollout.generate(model, tokenizer, CHATS, max_new_tokens=5)
    logprobs = completion_logprobs(model, rollouts.input_ids, rollouts.attention_mask,
                                   rollouts.completion_mask, chunk_tokens=3)
    logprobs.sum().backward()
    assert model.lm_head.weight.grad is not None and model.lm_head.weight.grad.abs().sum() > 0


def test_load_a_saved_directory_and_its_errors(tiny_model_dir, tmp_path):
    model, tokenizer = rollout.load(tiny_model_dir, device="cpu")
    assert model.dtype == torch.float32 and tokenizer.chat_template
    rollout.save(model, tokenizer, tmp_path / "copy")
    assert (tmp_path / "copy" / "config.json").exists()
    with pytest.raises(UserError, match="not found"):
        rollout.load(str(tmp_path / "missing.gguf"))
    with pytest.raises(UserError, match="cannot load"):
        rollout.load(str(tmp_path / "no_such_dir"))


def test_a_model_without_chat_template_is_a_clear_error(tiny_model_dir, tmp_path):
    model, tokenizer = rollout.load(tiny_model_dir, device="cpu")
    tokenizer.chat_template = None
    rollout.save(model, tokenizer, tmp_path / "plain")
    with pytest.raises(UserError, match="no chat template"):
        rollout.load(str(tmp_path / "plain"))


def test_out_of_memory_during_generation_retries_in_halves(tiny_model, monkeypatch):
    model, tokenizer = tiny_model
    real_chunk = rollout._generate_chunk
    sizes = []

    def chunk_that_fails_when_big(model_, tokenizer_, prompts, *args):
        sizes.append(len(prompts))
        if len(prompts) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_chunk(model_, tokenizer_, prompts, *args)

    monkeypatch.setattr(rollout, "_generate_chunk", chunk_that_fails_when_big)
    rollouts = rollout.generate(model, tokenizer, CHATS, group_size=2, max_new_tokens=4)
    assert sizes == [4, 2, 2] and len(rollouts.texts) == 4


class LargestLogits(TorchDispatchMode):
    """Records the largest tensor of logits (last dimension the vocabulary), forward and backward;
    the lm head's (hidden x vocabulary) weight gradient is not logits."""

    def __init__(self, config):
        super().__init__()
        self.vocab_size, self.weight_shape, self.largest = config.vocab_size, (config.hidden_size, config.vocab_size), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(output)[0]:
            if (isinstance(tensor, torch.Tensor) and tensor.dim() and tensor.shape[-1] == self.vocab_size
                    and tuple(tensor.shape) != self.weight_shape):
                self.largest = max(self.largest, tensor.numel())
        return output


@pytest.mark.parametrize("share_prompts", [True, False])
def test_full_vocabulary_logits_never_exist(tiny_model, share_prompts):
    """The lm head runs inside the chunked log-softmax: no (B x C x V) logits tensor and no
    gradient of one is ever made, only (chunk x V) pieces."""
    model, tokenizer = tiny_model
    rollouts = rollout.generate(model, tokenizer, CHATS, group_size=4, max_new_tokens=12)
    batch, width = rollouts.completion_mask.shape
    vocab, chunk = model.config.vocab_size, batch
    watch = LargestLogits(model.config)
    with watch:
        logprobs = completion_logprobs(model, rollouts.input_ids, rollouts.attention_mask, rollouts.completion_mask,
                                       chunk_tokens=chunk, share_prompts=share_prompts)
        logprobs.sum().backward()
    assert 0 < watch.largest <= chunk * vocab < batch * width * vocab // 4


def test_train_tells_the_reward_which_completions_were_cut_off(tiny_model, monkeypatch):
    """grpo.train hands each sampled item to the reward with "finished": whether its completion
    ended with an EOS or ran into max_new_tokens. EOS is made likely, so both kinds occur."""
    from accelerate import Accelerator

    import grpo

    model, tokenizer = tiny_model
    handle = boost_token(model, tokenizer.eos_token_id, 2.5)
    sampled, flags = [], []
    real_generate = rollout.generate

    def generate(*args, **kwargs):
        sampled.append(real_generate(*args, **kwargs))
        return sampled[-1]

    def reward(items, texts):
        flags.extend(item["finished"] for item in items)
        return [0.0] * len(texts), {}

    monkeypatch.setattr(rollout, "generate", generate)
    torch.manual_seed(0)
    cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=6, prompts_per_step=2, prompts_per_update=2,
                          micro_batch_size=8, beta=0.0)
    grpo.train(model, tokenizer, [{"messages": chat} for chat in CHATS], reward, cfg, Accelerator(cpu=True),
               epochs=2, log=lambda row: None)
    handle.remove()
    ended = [tokenizer.eos_token_id in row for rollouts in sampled for row in rollouts.completion_ids.tolist()]
    assert len(flags) == 16 and flags == ended and set(flags) == {True, False}
