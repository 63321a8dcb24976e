"""The PMI judge (beyond_seif.pmi_judge): a constraint no rule checks is met when it makes the
answer likelier.

Not SEIF. SEIF's Judger asks the frozen helper for a verdict, and a 0.5B helper's verdicts on
the constraints no rule checks (tone, audience, style, content) are at chance: it says yes to
nearly everything (bench/RESULTS.md, "Can the helper judge without labels?"). This departure
asks it no question. It compares how likely the answer is as a reply to its request with and
without the constraint, per answer token:

    PMI = mean log p(answer | request + "\\n" + constraint) - mean log p(answer | request)

both with the request as a plain user turn, and the verdict is 1 when PMI > 0: the constraint
made this answer likelier. An answer written to meet "in a warm, apologetic tone" is likelier
once the helper has read that constraint; the same answer in a curt tone is not. The cut at 0
is the natural zero of PMI, so nothing is fitted and no label is needed. With `calibrated_judge`
on too, the cut is instead fitted on the PMI of the batch's rule-checked pairs, against their rule
verdicts (calibrated_judge.py); those pairs then cost the 2 passes too.

The cost: 2 forward passes over each answer, with each distinct prompt of a batch run once and
the pass without the constraint shared by all of an answer's constraints
(answer_gate.answer_logprob_sums). Rule-checked constraints never get here (with `rules` on).
"""

from beyond_seif import answer_gate, calibrated_judge


def pmi(model, tokenizer, requests, answer_constraint_texts, batch_size=16):
    """PMI of each constraint with its answer given the request, per answer token."""
    with_constraint = [(f"{request}\n{text}", answer) for request, (answer, text) in zip(requests, answer_constraint_texts)]
    without = list(dict.fromkeys((request, answer) for request, (answer, _) in zip(requests, answer_constraint_texts)))
    sums, counts = answer_gate.answer_logprob_sums(model, tokenizer, with_constraint + without, batch_size)
    n = len(with_constraint)
    alone = {pair: total for pair, total in zip(without, sums[n:])}
    return [(sums[i] - alone[(request, answer)]) / counts[i]
            for i, (request, (answer, _)) in enumerate(zip(requests, answer_constraint_texts))]


def verdicts(model, tokenizer, requests, answer_constraint_texts, batch_size=16, rule_verdicts=()):
    """1.0 where the constraint raises its answer's likelihood (PMI > 0), else 0.0. With
    `rule_verdicts` (the calibrated_judge departure on too), the first len(rule_verdicts) pairs
    are rule-checked: the cut is fitted on their PMI instead of 0, and only the rest get a verdict."""
    if any(request is None for request in requests):
        raise ValueError("beyond_seif.pmi_judge needs the request (the instruction row's 'seed') of every "
                         "answer it judges")
    values = pmi(model, tokenizer, requests, answer_constraint_texts, batch_size)
    return calibrated_judge.decide(values, rule_verdicts, 0.0)
