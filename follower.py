"""The Follower: answers evolved instructions. This is the model SEIF sets out to improve.

Each round the Follower F_T starts from F_{T-1} (the base model in round 1) and is trained with
GRPO on that round's evolved instructions (a seed plus the Instructor's constraints). Its reward
(SEIF, exact):

    0                                    if the reply fails the format gate (reply_format.py)
    mean over constraints of Judger 0/1  otherwise, judged on the text inside <answer>

These departures plug in here, all off by default (settings.BeyondSEIF): `lenient_follower` judges
a reply without the format as a whole (the CPU demo: its 135M model never writes the format),
`unfinished_unpaid` gives nothing for a reply cut off by the token budget (SEIF's gate refuses
those that never close <answer>), `echo_guard` gives nothing for repeating the instruction or for a
non-answer (beyond_seif/echo_guard.py), `markup_guard` gives nothing for titles, highlights,
placeholders or P.S. lines beyond what the instruction asks for (beyond_seif/markup_guard.py; with
`markup_guard_keep` they keep a share instead), `restrictions_deduct` lets a limit that a reply
doing nothing meets ("no commas", "under 40 words") take reward away but never pay by itself
(beyond_seif/rules.py), `stuffing_guard` has the Judger read "kkkk" and "new new new" once and a
<<title>> or P.S. only where it opens its line (beyond_seif/stuffing_guard.py), and `answer_gate`
gives nothing for text the frozen helper finds less fluent or less on topic than its own answers
(beyond_seif/answer_gate.py).

Reads: an instructions JSONL (rows from `instructor.py generate`, after the Filter).
Writes: the trained Follower checkpoint, and one metrics row per GRPO step.

Train one round alone:
    python follower.py train --instructions runs/x/round_1/instructions.jsonl \\
        --model Qwen/Qwen2.5-0.5B-Instruct --out runs/x/follower [--preset qwen0.5b]
"""

import time

import grpo
import judger
import reply_format
import rollout
import training
from settings import BeyondSEIF


def rewards(helper, tokenizer, items, texts, judger_cfg, departures=None, gate=None):
    """Follower rewards for one batch: `items` are instruction rows, one completion text each.
    `gate`: the answer gate's thresholds (beyond_seif/answer_gate.py), used when it is on.

    Returns (rewards, info) as grpo.train expects. All (answer, constraint) pairs of the batch
    go to the Judger in one call. info["format_pass"] is the share that passes SEIF's format
    gate, also when lenient_follower judges the others too.
    """
    departures = departures or BeyondSEIF()
    answers = [reply_format.extract_answer(text) for text in texts]  # None: fails the format gate
    format_passed = sum(answer is not None for answer in answers)
    if departures.lenient_follower:
        from beyond_seif import demo_prompt
        answers = demo_prompt.follower_answers(texts)
    if departures.unfinished_unpaid:  # a reply cut off at the budget (no EOS) is not an answer
        from beyond_seif import demo_prompt
        answers = demo_prompt.finished_answers(items, answers)
    answered = [i for i, answer in enumerate(answers) if answer is not None]
    info = {"format_pass": format_passed / len(texts)}
    if departures.unfinished_unpaid:
        info["unfinished"] = sum(item.get("finished") is False for item in items) / len(items)
    if departures.echo_guard:
        from beyond_seif import echo_guard
        to_judge = len(answered)
        answers, answered = echo_guard.guard(helper, tokenizer, items, answers, answered, judger_cfg, departures)
        info["echo_or_off_topic"] = (to_judge - len(answered)) / to_judge if to_judge else 0.0
    marked = set()  # answers with unasked markup that markup_guard_keep still pays a share of their reward
    if departures.markup_guard:  # before the Judger: a refused answer costs no verdicts
        from beyond_seif import markup_guard
        clean = markup_guard.guard(items, answers, answered)
        info["markup_refused"] = (len(answered) - len(clean)) / len(answered) if answered else 0.0
        if departures.markup_guard_keep:  # judged, then scaled: a group that all has the habit still ranks on content
            marked = set(answered) - set(clean)
        else:
            answered = clean
    judged = answers
    if departures.stuffing_guard:  # "kkkk" is one k and "new new new" one "new" to the Judger
        from beyond_seif import stuffing_guard
        judged = [None if answer is None else stuffing_guard.counted_text(answer) for answer in answers]
    fractions, verdicts = judger.followed_fractions(
        helper, tokenizer, [(judged[i], items[i]["constraints"]) for i in answered], judger_cfg, departures,
        [items[i].get("seed") for i in answered])
    if departures.restrictions_deduct:  # "no commas" or "under 40 words" is no work to meet: it only takes away
        from beyond_seif import rules
        fractions = rules.deduct_restrictions([items[i]["constraints"] for i in answered], verdicts)
    rewards = [0.0] * len(items)  # a reply that fails the format gate (or the echo guard) gets 0
    for i, fraction in zip(answered, fractions):
        rewards[i] = fraction * departures.markup_guard_keep if i in marked else fraction
    if departures.answer_gate and gate is not None:  # 0 for paid text the helper finds unfluent or off its request
        from beyond_seif import answer_gate
        gate_start = time.time()
        paid = [i for i in answered if rewards[i] > 0]
        passed = set(answer_gate.gate_answers(helper, tokenizer, gate, items, answers, paid, judger_cfg.batch_size))
        for i in paid:
            rewards[i] = rewards[i] if i in passed else 0.0
        info["answer_gate_failed"] = (len(paid) - len(passed)) / len(paid) if paid else 0.0
        info["answer_gate_time"] = time.time() - gate_start  # seconds, part of the step's
    info["constraints_followed"] = sum(verdicts) / len(verdicts) if verdicts else 0.0
    return rewards, info


def training_items(rows):
    """Instruction rows -> grpo.train items (each row keeps its constraints for the reward)."""
    return [{**row, "messages": reply_format.messages(row["instruction"])} for row in rows]


# -----------------------------------------------------------------------------
# Training F_T (the command line is in cli.py)


def train(settings, start_path, helper_path, rows, out, epochs, log=training.print_metrics, accelerator=None,
          round_index=1):
    """Train F_T from `start_path` with GRPO on instruction `rows` for `epochs`, judged by the frozen
    helper H_T at `helper_path`; save it to `out`."""
    cfg = settings.follower_grpo
    policy, tokenizer, (helper, helper_tokenizer), reference = training.load_stage(cfg, start_path, helper_path)
    gate = None
    if settings.beyond_seif.answer_gate:  # thresholds from the helper's own answers to these rows
        from beyond_seif import answer_gate
        gate = answer_gate.fit_for_rows(helper, helper_tokenizer, rows, settings.beyond_seif, cfg.max_new_tokens,
                                        settings.judger.batch_size, settings.loop.seed)
        print(f"answer gate from {gate.references} helper answers: order >= {gate.order_min:.3g}, "
              f"topic >= {gate.topic_min:.3g}, lift <= {gate.lift_max:.3g}")

    def reward_fn(batch, texts):
        return rewards(helper, helper_tokenizer, batch, texts, settings.judger, settings.beyond_seif, gate)

    trained = grpo.train(policy, tokenizer, training_items(rows), reward_fn, cfg,
                         accelerator or training.make_accelerator(), ref_model=reference, epochs=epochs,
                         max_steps=settings.loop.follower_steps or None, seed=settings.loop.seed,
                         log=log, desc=f"round {round_index} follower", checkpoint_dir=out + "_checkpoints",
                         samples_path=out + "_samples.jsonl")
    rollout.save(trained, tokenizer, out)


if __name__ == "__main__":  # the command line lives in cli.py
    import cli

    cli.main("follower")
