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

With `pmi_judge` on as well, the signal is PMI instead of P([[1]]) (pmi_judge.py): the same fit,
on the rule-checked pairs' PMI, replaces PMI's natural zero. On a Qwen loop round PMI cut this
way agrees with the rules on 80% of pairs (balanced), against 61% at zero and 50% for P([[1]])
at any cut (bench/RESULTS.md, "Does the judge agree with the rules in the loop?").
"""

from beyond_seif import score_judge

MIN_PER_CLASS = 3  # rule verdicts of each kind (0 and 1) needed to fit a threshold


def fitted_cut(values, labels):
    """The cut t on a judge's signal (verdict 1 where value > t) with the best balanced accuracy on
    the (value, 0/1 label) pairs; among equally good cuts, the middle one. None when either label
    has fewer than MIN_PER_CLASS pairs, or when no cut beats chance on them (the signal does not
    separate this batch's rule verdicts, so it says nothing about where to cut)."""
    positives, negatives = sum(labels), len(labels) - sum(labels)
    if min(positives, negatives) < MIN_PER_CLASS:
        return None
    sorted_values = sorted(set(values))
    # a cut below every value, one between each two neighbours, one at the top
    cuts = [sorted_values[0] - 1e-9] + [(a + b) / 2 for a, b in zip(sorted_values, sorted_values[1:])] + [sorted_values[-1]]
    scores = []
    for cut in cuts:
        true_positive = sum(v > cut and y == 1 for v, y in zip(values, labels))
        true_negative = sum(v <= cut and y == 0 for v, y in zip(values, labels))
        scores.append((true_positive / positives + true_negative / negatives) / 2)
    if max(scores) <= 0.5:
        return None
    best = [cut for cut, score in zip(cuts, scores) if score == max(scores)]
    return best[len(best) // 2]


def fit_threshold(values, labels, fallback=0.5):
    """fitted_cut, or `fallback` where there is none."""
    cut = fitted_cut(values, labels)
    return fallback if cut is None else cut


def decide(values, rule_verdicts, fallback):
    """0/1 verdicts. values: the signal of the rule-checked pairs first (one per rule verdict), then
    of the pairs no rule checks; only those get a verdict, value > the cut fitted on the
    rule-checked ones (`fallback` where none can be fitted)."""
    n = len(rule_verdicts)
    cut = fit_threshold(values[:n], [int(v > 0.5) for v in rule_verdicts], fallback)
    return [1.0 if value > cut else 0.0 for value in values[n:]]


def verdicts(model, tokenizer, answer_constraint_texts, rule_verdicts, messages, batch_size):
    """0/1 verdicts for the pairs past the first len(rule_verdicts) (those are rule-checked and
    only set the cut): P([[1]]) > the fitted cut. messages(answer, text) builds the judge chat."""
    chats = [messages(answer, text) for answer, text in answer_constraint_texts]
    return decide(score_judge.llm_score(model, tokenizer, chats, batch_size), rule_verdicts, 0.5)
