"""The calibrated judge (beyond_seif.calibrated_judge): the LLM's P([[1]]) cut where the batch's
own rule checks say it separates followed from not followed.

Not SEIF: SEIF's Judger takes the judge's verdict as it comes. A small judge says yes to almost
everything (Qwen2.5-Coder-0.5B's P([[1]]) is above 0.5 on 95% of IFEval pairs) although its
P([[1]]) ranks the pairs better than chance (ROC AUC 0.70): the threshold is wrong, not the
ranking alone. No labels are needed to move it. With the `rules` departure on, every Judger batch
has pairs that a rule checks exactly; this departure

    1. asks the LLM for P([[1]]) on every pair, rule-checked or not (score_judge.llm_score);
    2. fits the threshold on P([[1]]) that best separates the rule verdicts (balanced accuracy,
       `fit_threshold`): free labels, from the same judge on the same answers;
    3. gives each pair that no rule checks the verdict P([[1]]) > that threshold.

A batch with fewer than MIN_PER_CLASS rule verdicts of either kind keeps the plain 0.5. The price
is one forward pass per rule-checked pair more; bench/calibration.py measures whether the
threshold transfers to the constraints no rule checks.
"""

from beyond_seif import score_judge

MIN_PER_CLASS = 3  # rule verdicts of each kind (0 and 1) needed to fit a threshold


def fit_threshold(probabilities, labels, fallback=0.5):
    """The cut t on P([[1]]) (verdict 1 where P > t) with the best balanced accuracy on the
    (probability, 0/1 label) pairs; among equally good cuts, the middle one. `fallback` when
    either label has fewer than MIN_PER_CLASS pairs."""
    positives, negatives = sum(labels), len(labels) - sum(labels)
    if min(positives, negatives) < MIN_PER_CLASS:
        return fallback
    values = sorted(set(probabilities))
    # a cut below every value, one between each two neighbours, one at the top
    cuts = [values[0] - 1e-9] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1]]
    scores = []
    for cut in cuts:
        true_positive = sum(p > cut and y == 1 for p, y in zip(probabilities, labels))
        true_negative = sum(p <= cut and y == 0 for p, y in zip(probabilities, labels))
        scores.append((true_positive / positives + true_negative / negatives) / 2)
    best = [cut for cut, score in zip(cuts, scores) if score == max(scores)]
    return best[len(best) // 2]


def verdicts(model, tokenizer, labelled, unlabelled, messages, batch_size):
    """(0/1 verdicts for `unlabelled`, the threshold used). labelled: (answer, constraint text,
    rule verdict) triples; unlabelled: (answer, constraint text) pairs; messages(answer, text)
    builds the judge chat."""
    if not unlabelled:
        return [], None
    chats = [messages(answer, text) for answer, text, _ in labelled] + [messages(a, t) for a, t in unlabelled]
    probabilities = score_judge.llm_score(model, tokenizer, chats, batch_size)
    threshold = fit_threshold(probabilities[: len(labelled)], [int(label > 0.5) for _, _, label in labelled])
    return [1.0 if p > threshold else 0.0 for p in probabilities[len(labelled):]], threshold
