"""The PMI judge: its PMI is the formula's, a constraint is met when it makes the answer likelier,
rule-checked constraints never reach it, the Follower hands it each row's seed request, and with
it off the verdicts are SEIF's."""

import pytest
import torch

import follower
import judger
import rollout
import settings as settings_module
from beyond_seif import pmi_judge
from data import UserError
from settings import BeyondSEIF

ON = BeyondSEIF(rules=True, pmi_judge=True)
TONE = {"text": "The answer must be apologetic and warm in tone."}  # no rule checks this
LOWERCASE = {"text": "Write your entire response in lowercase letters.", "ifeval_id": "change_case:english_lowercase",
             "kwargs": {}}


@torch.no_grad()
def mean_logprob(model, tokenizer, request, answer):
    """One unbatched, unpadded forward pass: mean log p(answer token | request as a user turn)."""
    prompt = tokenizer(rollout.chat_text(tokenizer, [{"role": "user", "content": request}]),
                       add_special_tokens=False).input_ids
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids
    logits = model(input_ids=torch.tensor([prompt + answer_ids])).logits[0, len(prompt) - 1 : -1].float()
    return logits.log_softmax(-1).gather(1, torch.tensor(answer_ids)[:, None]).mean().item()


def test_pmi_is_the_gain_in_mean_logprob_from_reading_the_constraint(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    requests = ["Tell a customer their order is late.", "Tell a customer their order is late.", "Describe rain."]
    pairs = [("sorry it is late", "Be warm."), ("sorry it is late", "Be brief and formal."), ("rain falls", "Be warm.")]
    values = pmi_judge.pmi(model, tokenizer, requests, pairs, batch_size=2)
    for value, request, (answer, constraint) in zip(values, requests, pairs):
        expected = (mean_logprob(model, tokenizer, f"{request}\n{constraint}", answer)
                    - mean_logprob(model, tokenizer, request, answer))
        assert value == pytest.approx(expected, abs=1e-4)


def test_a_constraint_is_met_when_it_raises_the_answers_likelihood(monkeypatch):
    monkeypatch.setattr(pmi_judge, "pmi", lambda m, t, requests, pairs, b=16: [0.3, -0.2, 0.0, 1e-6])
    assert pmi_judge.verdicts(None, None, ["r"] * 4, [("a", "c")] * 4) == [1.0, 0.0, 0.0, 1.0]


def test_only_constraints_no_rule_checks_reach_it_with_their_requests(monkeypatch, fooled_judge):
    asked = []

    def pmi(model, tokenizer, requests, pairs, batch_size=16):
        asked.extend(zip(requests, pairs))
        return [-1.0] * len(pairs)  # the constraint never helps: every PMI verdict is 0
    monkeypatch.setattr(pmi_judge, "pmi", pmi)
    sets = [("the sea is calm tonight", [LOWERCASE, TONE]), ("The Sea Is Calm", [LOWERCASE, TONE])]
    fractions, verdicts = judger.followed_fractions(None, None, sets, judger.JudgerConfig(), ON,
                                                    ["Describe the sea.", "Describe a calm sea."])
    assert verdicts == [1.0, 0.0, 0.0, 0.0] and fractions == [0.5, 0.0]
    assert asked == [("Describe the sea.", ("the sea is calm tonight", TONE["text"])),
                     ("Describe a calm sea.", ("The Sea Is Calm", TONE["text"]))]
    assert fooled_judge == []  # the LLM was asked nothing


def test_the_follower_hands_it_each_rows_seed(monkeypatch, fooled_judge):
    asked = []
    monkeypatch.setattr(pmi_judge, "pmi", lambda m, t, requests, pairs, b=16: asked.extend(requests) or [1.0] * len(pairs))
    items = [{"seed": "Describe the sea.", "instruction": "Describe the sea.\n" + TONE["text"], "constraints": [TONE]},
             {"seed": "Describe rain.", "instruction": "Describe rain.\n" + TONE["text"], "constraints": [TONE]}]
    texts = ["<think>ok</think><answer>waves roll in softly</answer>", "<think>ok</think><answer>rain taps</answer>"]
    rewards, _ = follower.rewards(None, None, items, texts, judger.JudgerConfig(), ON)
    assert rewards == [1.0, 1.0] and asked == ["Describe the sea.", "Describe rain."]


def test_a_row_without_its_request_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(pmi_judge, "pmi", lambda *a, **k: pytest.fail("nothing to compare without the request"))
    with pytest.raises(ValueError, match="needs the request"):
        judger.judge(None, None, [("some answer", TONE)], judger.JudgerConfig(), ON)


def test_with_it_off_the_llm_gives_the_verdicts(monkeypatch, fooled_judge):
    monkeypatch.setattr(pmi_judge, "pmi", lambda *a, **k: pytest.fail("pmi_judge is off"))
    verdicts = judger.judge(None, None, [("some answer", TONE)], judger.JudgerConfig(), BeyondSEIF(rules=True),
                            ["a request"])
    assert verdicts == [1.0] and fooled_judge == [("some answer", TONE["text"])]


def test_it_and_the_calibrated_judge_cannot_both_be_on():
    class Both:
        beyond_seif = BeyondSEIF(rules=True, calibrated_judge=True, pmi_judge=True)

    class One:
        beyond_seif = BeyondSEIF(rules=True, pmi_judge=True)
    with pytest.raises(UserError, match="calibrated_judge and beyond_seif.pmi_judge"):
        settings_module.check(Both())
    settings_module.check(One())


def test_instruction_rows_without_a_seed_are_refused_when_it_is_on(tmp_path):
    from cli import read_instructions

    path = tmp_path / "rows.jsonl"
    path.write_text('{"seed": "Describe rain.", "instruction": "Describe rain.\\nBe warm.", "constraints": [{"text": "Be warm."}]}\n'
                    '{"instruction": "Describe snow.\\nBe warm.", "constraints": [{"text": "Be warm."}]}\n')
    assert len(read_instructions(path)) == 2  # SEIF's reward does not read the seed
    with pytest.raises(UserError, match="row 2 needs a 'seed'"):
        read_instructions(path, needs_seed=True)
