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


def test_instruction_rows_without_a_seed_are_refused_when_it_is_on(tmp_path):
    from cli import read_instructions

    path = tmp_path / "rows.jsonl"
    path.write_text('{"seed": "Describe rain.", "instruction": "Describe rain.\\nBe warm.", "constraints": [{"text": "Be warm."}]}\n'
                    '{"instruction": "Describe snow.\\nBe warm.", "constraints": [{"text": "Be warm."}]}\n')
    assert len(read_instructions(path)) == 2  # SEIF's reward does not read the seed
    with pytest.raises(UserError, match="row 2 needs a 'seed'"):
        read_instructions(path, needs_seed=True)


# With calibrated_judge on too: PMI's cut is fitted on the batch's rule-checked pairs

BOTH = BeyondSEIF(rules=True, pmi_judge=True, calibrated_judge=True)


def pmi_from_answer(asked=None):
    """A pmi() whose value is the number at the end of each answer; records what it was asked."""
    def pmi(model, tokenizer, requests, pairs, batch_size=16):
        if asked is not None:
            asked.extend(zip(requests, pairs))
        return [float(answer.split()[-1]) for answer, _ in pairs]
    return pmi


def rule_checked_batch(followed_pmi, not_followed_pmi):
    """Lowercase answers follow the rule, capitalised ones do not; each carries its made-up PMI."""
    return ([(f"the sea is calm {value}", LOWERCASE) for value in followed_pmi]
            + [(f"The Sea Is Calm {value}", LOWERCASE) for value in not_followed_pmi])


def test_with_calibrated_judge_the_cut_is_fitted_on_the_rule_checked_pairs_only(monkeypatch, fooled_judge):
    asked = []
    monkeypatch.setattr(pmi_judge, "pmi", pmi_from_answer(asked))
    # every PMI is above 0 (a helper that likes any constraint), higher where the rule says followed
    labelled = rule_checked_batch([0.30, 0.35, 0.40], [0.10, 0.15, 0.20])
    unlabelled = [("warm words 0.12", TONE), ("warm words 0.28", TONE)]
    pairs = labelled + unlabelled
    verdicts = judger.judge(None, None, pairs, judger.JudgerConfig(), BOTH, ["Describe the sea."] * len(pairs))
    assert verdicts[:6] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # the rules decide their own pairs
    assert verdicts[6:] == [0.0, 1.0]  # cut between 0.20 and 0.30, not at 0 (where both would be 1)
    assert len(asked) == 8 and fooled_judge == []  # PMI of every pair; the LLM was asked nothing
    # the pairs no rule checks never move the cut, however extreme their PMI
    extremes = [("warm words -5", TONE), ("warm words -4", TONE), ("warm words 9", TONE)]
    pairs += extremes
    assert judger.judge(None, None, pairs, judger.JudgerConfig(), BOTH, ["r"] * len(pairs))[6:8] == [0.0, 1.0]


def test_a_helper_that_likes_no_constraint_gets_its_cut_lowered(monkeypatch):
    monkeypatch.setattr(pmi_judge, "pmi", pmi_from_answer())
    labelled = rule_checked_batch([-0.05, -0.02, -0.04], [-0.30, -0.25, -0.20])
    pairs = labelled + [("warm words -0.1", TONE), ("warm words -0.22", TONE)]
    verdicts = judger.judge(None, None, pairs, judger.JudgerConfig(), BOTH, ["r"] * len(pairs))
    assert verdicts[6:] == [1.0, 0.0]  # PMI > 0 would have said 0 to both
    assert judger.judge(None, None, pairs, judger.JudgerConfig(), ON, ["r"] * len(pairs))[6:] == [0.0, 0.0]


def test_too_few_rule_verdicts_of_a_kind_keep_pmis_zero(monkeypatch):
    monkeypatch.setattr(pmi_judge, "pmi", pmi_from_answer())
    pairs = rule_checked_batch([0.5, 0.6, 0.7], [0.4]) + [("warm words 0.05", TONE), ("warm words -0.05", TONE)]
    verdicts = judger.judge(None, None, pairs, judger.JudgerConfig(), BOTH, ["r"] * len(pairs))
    assert verdicts[4:] == [1.0, 0.0]


def test_with_nothing_left_to_judge_no_pmi_is_computed(monkeypatch):
    monkeypatch.setattr(pmi_judge, "pmi", lambda *a, **k: pytest.fail("every pair is rule-checked"))
    pairs = rule_checked_batch([0.3, 0.3, 0.3], [0.1, 0.1, 0.1])
    assert judger.judge(None, None, pairs, judger.JudgerConfig(), BOTH, ["r"] * 6) == [1.0] * 3 + [0.0] * 3


def test_the_settings_accept_both_but_not_without_rules():
    class Both:
        beyond_seif = BOTH

    class NoRules:
        beyond_seif = BeyondSEIF(pmi_judge=True, calibrated_judge=True)
    settings_module.check(Both())  # the PMI cut is fitted on the rule verdicts
    with pytest.raises(UserError, match="calibrated_judge needs beyond_seif.rules"):
        settings_module.check(NoRules())


def test_both_on_with_a_real_model_cut_the_pmi_where_the_rules_say(tiny_model):
    from beyond_seif import calibrated_judge

    model, tokenizer = tiny_model
    model.eval()
    answers = ["the sea is calm tonight and the water is warm", "the waves roll in slowly over the sand",
               "the birds are flying over the boats in the harbour", "The Sea Is Calm Tonight",
               "The Waves Roll In Slowly", "The Birds Are Flying"]  # IFEval's rule wants English
    pairs = [(answer, LOWERCASE) for answer in answers] + [("sorry, warm regards", TONE), ("go away", TONE)]
    requests = ["Describe the sea."] * 6 + ["Apologise to a customer."] * 2
    verdicts = judger.judge(model, tokenizer, pairs, judger.JudgerConfig(batch_size=3), BOTH, requests)
    values = pmi_judge.pmi(model, tokenizer, requests, [(answer, c["text"]) for answer, c in pairs])
    cut = calibrated_judge.fit_threshold(values[:6], [1, 1, 1, 0, 0, 0], 0.0)
    assert verdicts == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] + [float(value > cut) for value in values[6:]]
