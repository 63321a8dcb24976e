"""The score judge (beyond_seif.score_judge): an LLM verdict from one forward pass, not generated.

Not SEIF. With `BeyondSEIF(score_judge=True)` the judge's reply is forced up to the verdict digit
("Verdict: [[") and the verdict is P([[1]]) against P([[0]]), read off the next token's logits:
`score_reward="decision"` gives 1 when P > 0.5 (else 0), `"probability"` gives P itself. The
rubric and worked examples that start every judge prompt run once per batch, shared by its rows.

    judge(model, tokenizer, pairs, JudgerConfig(), BeyondSEIF(score_judge=True))

Checked here on a tiny random model against one unpadded forward pass per prompt.
"""

import pytest
import torch

import rollout
from beyond_seif import score_judge
from conftest import make_tiny_model
from judger import JudgerConfig, judge, judge_messages
from settings import BeyondSEIF

DECISION = BeyondSEIF(score_judge=True)
PROBABILITY = BeyondSEIF(score_judge=True, score_reward="probability")


def constraint(text):
    return {"text": text}


def reference_two_logits(model, tokenizer, answer, constraint_text):
    """(logit of "1", logit of "0") at the verdict digit, from one unpadded forward pass."""
    prompt = rollout.chat_text(tokenizer, judge_messages(answer, constraint_text))
    with_one = tokenizer(prompt + "Verdict: [[1]]", add_special_tokens=False).input_ids
    with_zero = tokenizer(prompt + "Verdict: [[0]]", add_special_tokens=False).input_ids
    digit = next(i for i, (a, b) in enumerate(zip(with_one, with_zero)) if a != b)
    with torch.no_grad():
        logits = model(torch.tensor([with_one])).logits[0, digit - 1]
    return logits[with_one[digit]].item(), logits[with_zero[digit]].item()


def test_forced_verdict_ids_end_where_the_two_verdicts_part(tiny_tokenizer):
    prompt = "Is it lowercase? "
    prefix, one, zero = score_judge.forced_verdict_ids(tiny_tokenizer, prompt)
    assert one != zero
    assert tiny_tokenizer.decode(prefix) == prompt + score_judge.VERDICT_PREFIX
    assert tiny_tokenizer.decode(prefix + [one]) == prompt + "Verdict: [[1"
    assert tiny_tokenizer.decode(prefix + [zero]) == prompt + "Verdict: [[0"


def test_common_prefix_length():
    assert score_judge.common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert score_judge.common_prefix_length([[7, 8], [9, 8]]) == 0
    assert score_judge.common_prefix_length([[1, 2, 3]]) == 3


@pytest.mark.parametrize("seed", [0, 5])  # seed 0 leans to [[0]], seed 5 to [[1]]
def test_score_mode_matches_the_argmax_of_the_two_verdict_logits(tiny_tokenizer, seed):
    model, tokenizer = make_tiny_model(tiny_tokenizer, seed=seed), tiny_tokenizer
    # Answers of different lengths, so the batch is left-padded after the shared rubric.
    pairs = [("ok", constraint("Be brief.")),
             ("a much longer answer that goes on for a while, with commas", constraint("No commas.")),
             ("The sea is wide.", constraint("Write a poem."))]
    probabilities = judge(model, tokenizer, pairs, JudgerConfig(batch_size=2), PROBABILITY)
    decisions = judge(model, tokenizer, pairs, JudgerConfig(), DECISION)
    for (answer, c), probability, decision in zip(pairs, probabilities, decisions):
        logit_one, logit_zero = reference_two_logits(model, tokenizer, answer, c["text"])
        expected = torch.tensor([logit_zero, logit_one]).softmax(0)[1].item()
        assert 0.0 <= probability <= 1.0
        assert probability == pytest.approx(expected, abs=1e-4)
        assert decision == float(logit_one > logit_zero)
    assert decisions == [float(seed == 5)] * 3  # each seed exercises one side of the argmax


def test_the_shared_rubric_runs_once_and_changes_no_score(tiny_model):
    """A batch shares its judge prompts' common prefix (the rubric) through one KV cache; each row's
    P([[1]]) is what a full forward pass over that row alone gives."""
    model, tokenizer = tiny_model
    pairs = [("ok", "Be brief."), ("The sea is wide and grey.", "Write a poem.")]
    chats = [judge_messages(answer, text) for answer, text in pairs]
    ids = [score_judge.forced_verdict_ids(tokenizer, rollout.chat_text(tokenizer, chat))[0] for chat in chats]
    assert score_judge.common_prefix_length(ids) > len(ids[0]) // 2  # most of a prompt is shared
    together = score_judge.llm_score(model, tokenizer, chats, batch_size=2)
    alone = [torch.tensor(reference_two_logits(model, tokenizer, *pair)[::-1]).softmax(0)[1].item()
             for pair in pairs]  # P([[1]]) from one full, uncached pass per prompt
    assert together == pytest.approx(alone, abs=1e-4)


def test_decision_is_probability_over_one_half(tiny_model, monkeypatch):
    model, tokenizer = tiny_model
    monkeypatch.setattr(score_judge, "llm_score", lambda *args: [0.2, 0.5, 0.51, 0.9])
    assert score_judge.verdicts(model, tokenizer, [[]] * 4, 4) == [0.0, 0.0, 1.0, 1.0]
    assert score_judge.verdicts(model, tokenizer, [[]] * 4, 4, "probability") == [0.2, 0.5, 0.51, 0.9]


def test_an_empty_answer_is_zero_without_a_forward_pass(tiny_model, monkeypatch):
    model, tokenizer = tiny_model
    scored = []
    monkeypatch.setattr(score_judge, "llm_score", lambda model, tok, chats, size: scored.append(chats) or [1.0])
    assert judge(model, tokenizer, [("", constraint("Be brief.")), ("ok", constraint("Be brief."))],
                 departures=DECISION) == [0.0, 1.0]
    assert scored == [[judge_messages("ok", "Be brief.")]]


def test_score_mode_leaves_the_model_in_training_mode_if_it_was(tiny_model):
    model, tokenizer = tiny_model
    model.train()
    judge(model, tokenizer, [("ok", constraint("Be brief."))], departures=DECISION)
    assert model.training
