"""The numbers bench/accuracy.py reports, checked on hand-made verdicts, and its Filter set.

No model runs here: the metrics get truth and prediction lists whose confusion matrix is known
by construction, so a wrong formula (TPR and TNR swapped, balanced accuracy as plain accuracy,
false positives counted as negatives) fails a test.
"""

import importlib.util
import json

import pytest

from conftest import REPO, SHARED

spec = importlib.util.spec_from_file_location("accuracy_bench", REPO / "bench" / "accuracy.py")
accuracy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(accuracy)


def test_confusion_matrix_and_rates_on_a_known_case():
    # 6 positives: 4 judged 1 (tp), 2 judged 0 (fn); 4 negatives: 1 judged 1 (fp), 3 judged 0 (tn)
    truth = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    predicted = [1, 1, 1, 1, 0, 0, 1, 0, 0, 0]
    m = accuracy.binary_metrics(truth, predicted)
    assert m["confusion"] == {"tp": 4, "fn": 2, "fp": 1, "tn": 3}
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["true_positive_rate"] == pytest.approx(4 / 6)
    assert m["true_negative_rate"] == pytest.approx(3 / 4)
    assert m["balanced_accuracy"] == pytest.approx((4 / 6 + 3 / 4) / 2)
    assert m["share_predicted_1"] == pytest.approx(5 / 10)
    assert m["share_true_1"] == pytest.approx(6 / 10)


def test_a_judge_that_always_says_1_scores_the_base_rate_and_half_balanced():
    truth = [1] * 84 + [0] * 16
    m = accuracy.binary_metrics(truth, [1] * 100)
    assert m["accuracy"] == pytest.approx(0.84)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["share_predicted_1"] == 1.0
    assert m["confusion"] == {"tp": 84, "fn": 0, "fp": 16, "tn": 0}


def test_perfect_and_inverted_judges():
    truth = [1, 0, 1, 1, 0]
    assert accuracy.binary_metrics(truth, truth)["balanced_accuracy"] == 1.0
    inverted = accuracy.binary_metrics(truth, [1 - t for t in truth])
    assert inverted["accuracy"] == 0.0 and inverted["balanced_accuracy"] == 0.0


def test_rates_without_cases_are_none_not_zero():
    m = accuracy.binary_metrics([1, 1, 1], [1, 0, 1])
    assert m["true_negative_rate"] is None and m["balanced_accuracy"] is None
    assert m["true_positive_rate"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy.binary_metrics([1, 0], [1])


def test_wilson_interval():
    low, high = accuracy.wilson_interval(84, 100)
    assert low == pytest.approx(0.7557, abs=1e-3) and high == pytest.approx(0.8999, abs=1e-3)
    assert accuracy.wilson_interval(0, 10)[0] == 0.0 and accuracy.wilson_interval(10, 10)[1] == 1.0
    assert accuracy.wilson_interval(0, 0) is None


def test_roc_auc_ranks_positives_above_negatives():
    truth = [1, 1, 0, 0]
    assert accuracy.roc_auc(truth, [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert accuracy.roc_auc(truth, [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert accuracy.roc_auc(truth, [0.7, 0.7, 0.7, 0.7]) == 0.5  # a constant score ranks nothing
    # one of the four (positive, negative) pairs is out of order
    assert accuracy.roc_auc(truth, [0.9, 0.3, 0.4, 0.1]) == 0.75
    assert accuracy.roc_auc([1, 1], [0.2, 0.3]) is None


def test_stratified_sample_keeps_the_label_shares_and_is_reproducible():
    items = [{"id": i, "label": int(i < 80)} for i in range(100)]
    sample = accuracy.stratified_sample(items, 20, "label", seed=0)
    assert len(sample) == 20
    assert sum(item["label"] for item in sample) == 16
    assert len({item["id"] for item in sample}) == 20
    assert sample == accuracy.stratified_sample(items, 20, "label", seed=0)
    assert sample != accuracy.stratified_sample(items, 20, "label", seed=1)
    assert accuracy.stratified_sample(items, 0, "label") == items


def test_filter_sets_are_balanced_and_well_formed():
    rows = accuracy.read_jsonl(accuracy.FILTER_SETS)
    assert len(rows) >= 60
    assert sum(row["label"] == 1 for row in rows) == sum(row["label"] == 0 for row in rows)
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert row["label"] in (0, 1) and row["seed"] and row["note"]
        assert row["kind"] in ("within", "seed", "hard", "plain")
        assert (row["kind"] in ("within", "seed")) == (row["label"] == 0)
        assert row["constraints"] and all(c["text"].strip() for c in row["constraints"])


def test_the_deterministic_check_rejects_no_satisfiable_set():
    """The provable-contradiction check may miss conflicts, but must never reject a set labelled
    satisfiable; on the contradictions between rule-mapped constraints it catches them all."""
    rows = accuracy.read_jsonl(accuracy.FILTER_SETS)
    result = accuracy.run_filter_rules(rows)
    by_label = {0: [], 1: []}
    for record in result["records"]:
        by_label[record["label"]].append(record["reason"])
    assert by_label[1] and all(reason is None for reason in by_label[1])
    within = [r for r in result["records"] if r["id"].startswith("within")]
    assert within and all(r["reason"] == "known_conflict" for r in within)


def test_the_demo_filter_is_scored_on_every_set_and_keeps_what_no_rule_contradicts():
    rows = [
        {"id": "a", "kind": "within", "label": 0, "seed": "Describe rain.", "constraints": [
            {"text": "All lowercase.", "ifeval_id": "change_case:english_lowercase", "kwargs": {}},
            {"text": "All capitals.", "ifeval_id": "change_case:english_capital", "kwargs": {}}]},
        {"id": "b", "kind": "seed", "label": 0, "seed": "Write a haiku.", "constraints": [
            {"text": "Write at least 400 words.", "ifeval_id": None, "kwargs": None}]},
        {"id": "c", "kind": "plain", "label": 1, "seed": "Describe rain.", "constraints": [
            {"text": "No commas.", "ifeval_id": "punctuation:no_comma", "kwargs": {}}]},
    ]
    result = accuracy.run_filter_as_demo(rows)
    assert [r["reason"] for r in result["records"]] == ["known_conflict", None, None]
    assert result["labels"]["confusion"] == {"tp": 1, "fn": 0, "fp": 1, "tn": 1}
    assert result["by_kind"]["seed"]["accuracy"] == 0.0 and result["by_kind"]["within"]["accuracy"] == 1.0


def test_the_filter_in_score_mode_reads_p1_of_the_filter_prompt(tiny_model, monkeypatch):
    """filter-score: one P([[1]]) per set from the Filter's own prompt (seed and constraint texts),
    the verdict P > 0.5, and the ROC AUC of P against the labels."""
    from beyond_seif import score_judge
    model, tokenizer = tiny_model
    rows = [{"id": f"s{i}", "kind": "within" if i % 2 else "plain", "label": 1 - i % 2, "seed": f"Describe item {i}.",
             "constraints": [{"text": f"Use {i} commas."}]} for i in range(6)]
    seen = []
    fixed = [0.9, 0.4, 0.6, 0.7, 0.2, 0.1]  # labels 1,0,1,0,1,0: verdicts 1,0,1,1,0,0

    def llm_score(model_, tokenizer_, chats, batch_size):
        seen.extend(chats)
        return fixed[len(seen) - len(chats) : len(seen)]

    monkeypatch.setattr(score_judge, "llm_score", llm_score)
    args = type("Args", (), {"batch_size": 4})()
    result = accuracy.run_filter_score(model, tokenizer, rows, args)
    assert [chat[0]["content"].count("Describe item") for chat in seen] == [1] * 6
    assert "INSTRUCTION: Describe item 3." in seen[3][0]["content"] and "1. Use 3 commas." in seen[3][0]["content"]
    assert [r["p1"] for r in result["records"]] == fixed
    assert result["labels"]["confusion"] == {"tp": 2, "fn": 1, "fp": 1, "tn": 2}
    assert result["labels"]["roc_auc"] == pytest.approx(accuracy.roc_auc([1, 0, 1, 0, 1, 0], fixed))
    assert result["by_kind"]["within"]["share_predicted_1"] == pytest.approx(1 / 3)


@pytest.mark.skipif(not (SHARED / "ifeval" / "gpt4_official_strict.jsonl").exists(),
                    reason="needs ../shared/ifeval")
def test_ifeval_pairs_line_up_with_the_official_verdicts():
    pairs = accuracy.ifeval_pairs()
    assert len(pairs) == 832 - 2  # two random-letter rows left out
    strict = [json.loads(line) for line in open(SHARED / "ifeval" / "gpt4_official_strict.jsonl")]
    followed = sum(sum(row["follow_instruction_list"]) for row in strict)
    assert sum(pair["strict"] for pair in pairs) == followed  # both left-out pairs were not followed
    first = pairs[0]
    assert first["key"] == 1000 and first["instruction_id"] == "punctuation:no_comma"
    assert first["constraint"] == "In your entire response, refrain from the use of any commas."
    assert first["strict"] == 1 and first["loose"] == 1
