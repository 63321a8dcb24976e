"""The calibrated judge: P([[1]]) thresholded where the batch's own rule verdicts put the cut."""

import pytest

import judger
from beyond_seif import calibrated_judge, score_judge
from conftest import fake_generate
from data import UserError
from settings import BeyondSEIF, check

CALIBRATED = BeyondSEIF(rules=True, calibrated_judge=True)
LOWERCASE = {"text": "Write in lowercase letters.", "ifeval_id": "change_case:english_lowercase", "kwargs": {}}
TONE = {"text": "Use a friendly tone."}  # no rule checks this: the calibrated LLM does


def test_a_yes_saying_judge_gets_its_threshold_raised():
    # the judge's P([[1]]) is high for everything, but higher where the rule says followed
    followed, not_followed = [0.90, 0.95, 0.97], [0.80, 0.85, 0.88]
    threshold = calibrated_judge.fit_threshold(followed + not_followed, [1, 1, 1, 0, 0, 0])
    assert 0.88 < threshold < 0.90


def test_an_unsure_judge_gets_its_threshold_lowered():
    threshold = calibrated_judge.fit_threshold([0.30, 0.35, 0.40, 0.10, 0.15, 0.20], [1, 1, 1, 0, 0, 0])
    assert 0.20 < threshold < 0.30


def test_too_few_labels_of_a_kind_keep_the_plain_cut():
    assert calibrated_judge.fit_threshold([0.9, 0.8, 0.7, 0.6], [1, 1, 1, 0]) == 0.5


def test_a_signal_that_does_not_separate_the_rule_verdicts_keeps_the_plain_cut():
    # higher where the rule says NOT followed: the best cuts (all 1 or all 0) are chance, and the
    # top one would turn every verdict of the batch into 0
    assert calibrated_judge.fit_threshold([0.1, 0.2, 0.3, 0.6, 0.7, 0.8], [1, 1, 1, 0, 0, 0], 0.0) == 0.0
    assert calibrated_judge.fit_threshold([0.6, 0.7, 0.8, 0.1, 0.2, 0.3], [1, 1, 1, 0, 0, 0], 0.0) == pytest.approx(0.45)


@pytest.fixture
def scored(monkeypatch):
    """llm_score that returns each answer's made-up P([[1]]) (the answer is a number), and records
    what it was asked."""
    asked = []

    def llm_score(model, tokenizer, chats, batch_size):
        asked.extend(chats)
        return [float(chat[-1]["content"].split("ANSWER:\n<<<\n")[-1].split("\n")[0].split()[-1]) for chat in chats]

    monkeypatch.setattr(score_judge, "llm_score", llm_score)
    return asked


def test_the_threshold_comes_only_from_rule_checked_pairs(scored):
    # rule-checked answers: lowercase ones follow (P 0.90-0.97), capitalised ones do not (P 0.80-0.88)
    lowercase, capitalised = "the river runs past the old mill", "The River Runs Past The Old Mill"
    labelled = [(f"{lowercase} {p}", LOWERCASE) for p in (0.90, 0.95, 0.97)] + \
               [(f"{capitalised} {p}", LOWERCASE) for p in (0.80, 0.85, 0.88)]
    unlabelled = [("friendly 0.83", TONE), ("friendly 0.893", TONE)]
    verdicts = judger.judge(None, None, labelled + unlabelled, departures=CALIBRATED)
    assert verdicts[:6] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # the rules decide their own pairs
    assert verdicts[6:] == [0.0, 1.0]  # cut at 0.89, not at 0.5 (where both would be 1)
    # the unlabelled pairs' own scores never move the cut: extreme ones change nothing
    extremes = [("friendly 0.01", TONE), ("friendly 0.02", TONE), ("friendly 0.03", TONE)]
    assert judger.judge(None, None, labelled + unlabelled + extremes, departures=CALIBRATED)[6:8] == [0.0, 1.0]


def test_without_rule_checked_pairs_the_cut_is_the_plain_one(scored):
    assert judger.judge(None, None, [("friendly 0.6", TONE), ("friendly 0.4", TONE)], departures=CALIBRATED) == [1.0, 0.0]


def test_off_the_verdicts_are_seifs_generated_ones(monkeypatch, scored):
    calls = fake_generate(monkeypatch, ["Friendly enough. Verdict: [[1]]", "No. Verdict: [[0]]"])
    verdicts = judger.judge(None, None, [("friendly 0.1", TONE), ("friendly 0.9", TONE)])
    assert verdicts == [1.0, 0.0] and len(calls) == 1 and not scored  # generated, never scored


def test_it_needs_the_rules_departure():
    class Settings:
        beyond_seif = BeyondSEIF(calibrated_judge=True)
    with pytest.raises(UserError, match="calibrated_judge needs beyond_seif.rules"):
        check(Settings())


def test_the_measurement_fits_on_one_half_and_measures_on_the_other():
    import sys

    from conftest import REPO, SHARED
    if not (SHARED / "ifeval" / "gpt4_official_strict.jsonl").exists():
        pytest.skip("needs ../shared/ifeval")
    sys.path.insert(0, str(REPO / "bench"))
    import calibration

    half_a, half_b = calibration.ifeval_set(positives=175, seed=0)
    keys = lambda half: {(p["key"], p["instruction_id"], p["constraint"]) for p in half}  # noqa: E731
    assert not keys(half_a) & keys(half_b) and len(half_a) + len(half_b) >= 300
    assert sum(1 - p["strict"] for p in half_a + half_b) == 135  # every not-followed pair is in
    assert calibration.ifeval_set(positives=175, seed=0) == (half_a, half_b)  # reproducible


def test_the_prompt_without_examples_keeps_the_rubric_case_and_question_only():
    import sys

    from conftest import REPO
    sys.path.insert(0, str(REPO / "bench"))
    import calibration

    text = calibration.no_examples_messages("my cat sleeps.", "Write in lowercase.")[0]["content"]
    full = judger.judge_messages("my cat sleeps.", "Write in lowercase.")[0]["content"]
    assert text.startswith(judger.RUBRIC) and text.endswith(judger.JUDGE_QUESTION)
    assert judger.judge_case("my cat sleeps.", "Write in lowercase.") in text
    assert "Example 1" in full and "Example" not in text
    assert all(example[2] not in text for example in judger.EXAMPLES)  # no worked analysis
    assert len(text) < len(full)


def test_ifeval_pmi_is_fitted_on_half_as_rule_verdicts_and_measured_on_half_b(monkeypatch):
    import sys

    from conftest import REPO
    sys.path.insert(0, str(REPO / "bench"))
    import calibration

    end = {"instruction_id": "startend:end_checker", "kwargs": {"end_phrase": "Bye."}, "constraint": 'End with "Bye."'}

    def pair(followed, strict, n):
        response = f"Here is answer number {n}, and that is all. " + ("Bye." if followed else "Ciao.")
        return {**end, "prompt": f"Request {n}. End with 'Bye.'", "response": response, "strict": strict}

    # half A's official verdicts are all wrong on purpose: the fit must read the rules, not them
    half_a = [pair(1, 0, n) for n in range(4)] + [pair(0, 1, n) for n in range(4, 8)]
    half_b = [pair(1, 1, n) for n in range(8, 12)] + [pair(0, 0, n) for n in range(12, 16)]

    def pmi(model, tokenizer, rows, batch_size):  # generic request: PMI 0.5 if followed, 0.3 if not
        values = [(0.5 if row["answer"].endswith("Bye.") else 0.3) if row["request"] == calibration.GENERIC_REQUEST
                  else 0.1 for row in rows]
        return values, 1.0
    monkeypatch.setattr(calibration, "pmi", pmi)
    section = calibration.ifeval_pmi(None, None, half_a, half_b, calibration.rule_verdicts(half_a), batch_size=4)
    assert section["rules_agree_with_official_half_a"] == 0.0
    generic = section["generic"]
    assert 0.3 <= generic["calibrated"]["cut"] < 0.5 and generic["calibrated"]["balanced_accuracy"] == 1.0
    assert generic["zero_cut"]["balanced_accuracy"] == 0.5  # every PMI is above 0
    assert section["ifeval prompt"]["roc_auc_half_a_rules"] == 0.5 and section["chosen_on_half_a"] == "generic"
