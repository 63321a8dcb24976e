"""The Judger: verdict parsing, rule checks, the LLM judge in both modes, and the rewards' edge cases."""


import pytest
import torch

import ifeval_checks
import rollout
from conftest import fake_generate, make_tiny_model
from data import UserError
from judger import JudgerConfig, judge, judge_messages, parse_verdict, strip_think


def constraint(text, ifeval_id=None, kwargs=None):
    return {"text": text, "ifeval_id": ifeval_id, "kwargs": kwargs}


# --- reading a verdict -----------------------------------------------------------------------

def test_parse_verdict_reads_the_last_clear_digit():
    assert parse_verdict("Looks fine. Verdict: [[1]]") == 1
    assert parse_verdict("Too few bullets. Verdict: [[0]]") == 0
    assert parse_verdict("At first I thought [[0]], but on a recount: [[1]]") == 1
    assert parse_verdict("At first I thought [[1]], but on a recount: [[0]]") == 0


def test_parse_verdict_treats_anything_unclear_as_not_followed():
    assert parse_verdict("The answer seems to satisfy it.") == 0
    assert parse_verdict("Verdict: [[2]]") == 0
    assert parse_verdict("") == 0


def test_parse_verdict_can_tell_no_verdict_from_a_no():
    assert parse_verdict("The answer seems to", missing=1) == 1  # cut off before any verdict
    assert parse_verdict("Verdict: [[0]]", missing=1) == 0
    assert parse_verdict("Verdict: [[2]]", missing=1) == 0  # a verdict, if not a clear yes


def test_strip_think_drops_the_reasoning():
    assert strip_think("<think>maybe [[1]]</think><answer>no</answer>") == "<answer>no</answer>"
    assert strip_think("no think tags at all") == "no think tags at all"
    assert parse_verdict("<think>I lean to [[1]]</think> undecided") == 0


def test_judge_prompt_shows_the_answer_and_one_constraint_only():
    content = judge_messages("a short answer", "Use no commas.")[0]["content"]
    assert content.count("a short answer") == 1 and content.count("Use no commas.") == 1
    assert "CONSTRAINT: Use no commas.\nDoes the ANSWER satisfy the CONSTRAINT?" in content
    assert "[[1]]" in content and "[[0]]" in content


# --- rule checks -----------------------------------------------------------------------------

def test_rule_checks_give_one_verdict_per_constraint():
    answer = "plain words here\nall of them lowercase and with no commas"
    constraints = [
        constraint("Write in lowercase only.", "change_case:english_lowercase", {}),
        constraint("Do not use commas.", "punctuation:no_comma", {}),
        constraint("Use at least 3 bullet points.", "detectable_format:number_bullet_lists",
                   {"num_bullets": 3}),
    ]
    verdicts = judge(None, None, [(answer, c) for c in constraints])
    assert verdicts == [1.0, 1.0, 0.0]
    assert sum(verdicts) / len(verdicts) == pytest.approx(2 / 3)  # the Follower's reward


def test_rule_check_sees_the_answer_without_its_reasoning():
    # The <think> part has capitals; only the text after </think> is checked.
    answer = "<think>Plan: Keep It Lowercase.</think>all lowercase here"
    lowercase = constraint("Write in lowercase only.", "change_case:english_lowercase", {})
    assert judge(None, None, [(answer, lowercase)]) == [1.0]


def test_a_crashing_rule_check_counts_as_not_followed(monkeypatch):
    def broken_check(*args, **kwargs):
        raise KeyError("num_bullets")

    monkeypatch.setattr(ifeval_checks, "check", broken_check)
    bullets = constraint("Use bullets.", "detectable_format:number_bullet_lists", {"num_bullets": 3})
    with pytest.warns(UserWarning, match="verdict 0"):
        assert judge(None, None, [("* one\n* two\n* three", bullets)]) == [0.0]


def test_rules_false_sends_every_constraint_to_the_llm(monkeypatch):
    calls = fake_generate(monkeypatch, ["Verdict: [[1]]"])
    lowercase = constraint("Write in lowercase only.", "change_case:english_lowercase", {})
    # The rule would say 0 (capital W); the LLM's canned [[1]] wins because rules are off.
    assert judge(None, None, [("With Capitals", lowercase)], JudgerConfig(rules=False)) == [1.0]
    assert len(calls) == 1


# --- the LLM judge, generate mode (canned outputs) ------------------------------------------

def test_llm_judge_reads_verdicts_and_batches_once(monkeypatch):
    calls = fake_generate(monkeypatch, ["Polite. Verdict: [[1]]", "I am not sure.", "[[0]]"])
    pairs = [
        ("Thank you kindly.", constraint("Be polite.")),
        ("Some answer.", constraint("Sound like a pirate.")),  # no [[d]] in its verdict
        ("Rude words.", constraint("Be polite.")),
    ]
    assert judge(None, None, pairs) == [1.0, 0.0, 0.0]
    assert len(calls) == 1 and len(calls[0][0]) == 3
    assert calls[0][1]["greedy"] is True and calls[0][1]["desc"] == "judge"


def test_empty_answer_is_zero_without_asking_the_model(monkeypatch):
    calls = fake_generate(monkeypatch, ["[[1]]"])
    pairs = [("", constraint("Be polite.")), ("<think>thinking only</think>  ", constraint("Be brief."))]
    assert judge(None, None, pairs) == [0.0, 0.0]
    assert calls == []


def test_rules_and_llm_mix_keeps_the_order(monkeypatch):
    fake_generate(monkeypatch, ["[[1]]"])
    pairs = [
        ("has, a comma", constraint("No commas.", "punctuation:no_comma", {})),
        ("ahoy matey", constraint("Sound like a pirate.")),
    ]
    assert judge(None, None, pairs) == [0.0, 1.0]


# --- the LLM judge, score mode (tiny random model) ------------------------------------------

def reference_two_logits(model, tokenizer, answer, constraint_text):
    """(logit of "1", logit of "0") at the verdict digit, from one unpadded forward pass."""
    prompt = rollout.chat_text(tokenizer, judge_messages(answer, constraint_text))
    with_one = tokenizer(prompt + "Verdict: [[1]]", add_special_tokens=False).input_ids
    with_zero = tokenizer(prompt + "Verdict: [[0]]", add_special_tokens=False).input_ids
    digit = next(i for i, (a, b) in enumerate(zip(with_one, with_zero)) if a != b)
    with torch.no_grad():
        logits = model(torch.tensor([with_one])).logits[0, digit - 1]
    return logits[with_one[digit]].item(), logits[with_zero[digit]].item()


@pytest.mark.parametrize("seed", [0, 5])  # seed 0 leans to [[0]], seed 5 to [[1]]
def test_score_mode_matches_the_argmax_of_the_two_verdict_logits(tiny_tokenizer, seed):
    model, tokenizer = make_tiny_model(tiny_tokenizer, seed=seed), tiny_tokenizer
    # Answers of different lengths, so the batch is left-padded.
    pairs = [("ok", constraint("Be brief.")),
             ("a much longer answer that goes on for a while, with commas", constraint("No commas.")),
             ("The sea is wide.", constraint("Write a poem."))]
    probabilities = judge(model, tokenizer, pairs,
                          JudgerConfig(llm="score", score_reward="probability", batch_size=2))
    decisions = judge(model, tokenizer, pairs, JudgerConfig(llm="score"))
    for (answer, c), probability, decision in zip(pairs, probabilities, decisions):
        logit_one, logit_zero = reference_two_logits(model, tokenizer, answer, c["text"])
        expected = torch.tensor([logit_zero, logit_one]).softmax(0)[1].item()
        assert 0.0 <= probability <= 1.0
        assert probability == pytest.approx(expected, abs=1e-4)
        assert decision == float(logit_one > logit_zero)
    assert decisions == [float(seed == 5)] * 3  # each seed exercises one side of the argmax


def test_score_mode_leaves_the_model_in_training_mode_if_it_was(tiny_model):
    model, tokenizer = tiny_model
    model.train()
    judge(model, tokenizer, [("ok", constraint("Be brief."))], JudgerConfig(llm="score"))
    assert model.training


# --- the real model, generate mode ----------------------------------------------------------

def test_real_model_judges_in_generate_mode(smollm2):
    model, tokenizer = smollm2
    pairs = [("hello there, friend", constraint("Write the whole answer in lowercase letters.")),
             ("HELLO THERE", constraint("Write the whole answer in lowercase letters."))]
    verdicts = judge(model, tokenizer, pairs, JudgerConfig(max_new_tokens=32))
    assert len(verdicts) == 2 and set(verdicts) <= {0.0, 1.0}


def test_a_missing_rule_setup_is_an_error_not_a_zero(monkeypatch):
    """Without lm-eval, or NLTK's punkt_tab for a sentence count, every such rule verdict would
    silently be 0. Rules that need no NLTK data still work without it."""
    from lm_eval.tasks.ifeval import instructions_util  # its sentence tokenizer is cached once loaded

    def no_punkt():
        raise LookupError("Resource punkt_tab not found.")

    monkeypatch.setattr(instructions_util, "_get_sentence_tokenizer", no_punkt)
    sentences = {"text": "Use fewer than 3 sentences.", "ifeval_id": "length_constraints:number_sentences",
                 "kwargs": {"num_sentences": 3, "relation": "less than"}}
    no_commas = {"text": "Do not use any commas.", "ifeval_id": "punctuation:no_comma", "kwargs": {}}
    assert judge(None, None, [("no commas here", no_commas)]) == [1.0]
    with pytest.raises(UserError, match="punkt_tab"):
        judge(None, None, [("One sentence. Two.", sentences)])

    def no_lm_eval():
        raise UserError("IFEval rule checks need lm-eval: pip install -r requirements-extra.txt")

    monkeypatch.setattr(ifeval_checks, "registry", no_lm_eval)
    with pytest.raises(UserError, match="need lm-eval"):
        judge(None, None, [("no commas here", no_commas)])
