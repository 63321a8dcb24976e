"""Does the self-evolution loop learn? R full SEIF rounds (loop.run), then a look at every round.

The run itself is `loop.run` with the demo preset's settings (SmolLM2 cannot write SEIF's format,
so the demo-only departures listed in presets.py apply) scaled up by the overrides below; it is
resumable, and so is everything measured after it (each result is cached in the run folder's
`bench/`). Per round T (0 = the base model):

  Follower F_T, on data/heldout.jsonl (40 seeds no training run sees, 79 rule-checked
  constraints phrased as the Instructor writes them), greedy:
    constraint / prompt pass rate by IFEval's rules, on the answer read SEIF's strict way (the
    text inside <answer>; a reply without the format fails) and leniently (the whole reply when
    it has no tags);
    echo share: replies that copy one of their instruction's lines verbatim;
    spam share: replies with at least 4 *highlighted* spans, 2 <<titles>> or 2 P.S. (is_spam);
    unasked markup share: replies with more titles, highlights, placeholders, P.S. lines or
    whole-reply quotes than their instruction asks for, or a P.S. with no body before it
    (markup_guard.excess, the rule the markup guard pays 0 for);
    non-answer share: replies that, once such copies are cut out, have under 5 words left, or
    whose words are nearly all (>= 80%) taken from the instruction, or that talk about their
    request instead of answering it: echo_guard.ruled_out (is_non_answer and restates_request),
    the rules the reward's echo guard applies, so this share measures how often the trained
    Follower still writes what its reward pays nothing for (run folders measured before
    restates_request existed keep the first two rules only: their cached figures are reused).
  F_T on IFEval's first 100 prompts, both formats (the loop's own round_T/ifeval.json).
  Instructor I_T (T >= 1): the share of its training replies that parse (format_pass) and pass
    the Filter (filter_pass), from metrics.jsonl; of round T's instructions, the share of rule-
    mapped constraints the BASE model fails (greedy), i.e. whether I_T writes harder
    constraints than I_1; and the constraint type mix (IFEval family, or "llm-judged").

    NLTK_DATA=../shared/nltk_data python bench/loop_learn.py                 # SmolLM2, 2 rounds
    python bench/loop_learn.py --model qwen2.5-coder-0.5b --rounds 1 --name loop_learn_qwen
    python bench/loop_learn.py --set follower_grpo.lr=2e-5                   # any loop setting

Writes bench/results/<name>.json, .txt and .png. Run the same command again to resume; run it
with another --max-new-tokens to measure the same rounds again with that reply budget (Qwen
thinks for more than 96 tokens), into bench/results/<name>_<N>tokens.*.
"""

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import loop  # noqa: E402
import rollout  # noqa: E402
import training  # noqa: E402
from data import read_jsonl, run_cli, write_json  # noqa: E402
import reply_format  # noqa: E402
from beyond_seif import echo_guard, markup_guard, rules  # noqa: E402

HELDOUT = REPO / "data" / "heldout.jsonl"
DEFAULT_BUDGET = 96  # new tokens per held-out reply: room for SmolLM2's answers, short for Qwen's <think>
IFEVAL = REPO.parent / "shared" / "ifeval" / "input_data.jsonl"  # a local copy, where there is one
# The run: the demo preset scaled up to R rounds that learn, within an hour on a 2-core CPU.
RUN_SETTINGS = ["loop.max_seeds=24", "loop.instructor_steps=4", "loop.follower_steps=10",
                "loop.eval_limit=100", "instructor_grpo.prompts_per_step=4", "follower_grpo.prompts_per_step=4",
                "follower_grpo.lr=3e-5"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="loop_learn_smollm2")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_BUDGET,
                        help="held-out and base-model replies; results of another budget go to <name>_<N>tokens.*")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="more loop settings, after the benchmark's own")
    return parser.parse_args(argv)


# -----------------------------------------------------------------------------
# Reading a reply


def is_echo(answer, instruction):
    return echo_guard.strip_echoes(answer, instruction.split("\n")) != answer


HIGHLIGHT = re.compile(r"\*[^\n*]+\*")
TITLE = re.compile(r"<<[^<>\n]+>>")


def is_spam(answer):
    """Markup the rules pay for, piled up: at least 4 *highlighted* spans, 2 <<titles>> or 2 P.S."""
    return (len(HIGHLIGHT.findall(answer)) >= 4 or len(TITLE.findall(answer)) >= 2
            or len(echo_guard.POSTSCRIPT_MARK.findall(answer)) >= 2)


def rule_verdicts(row, answer):
    """One IFEval verdict per rule-mapped constraint of an instruction row."""
    return [rules.rule_verdict(c, answer) for c in row["constraints"] if c.get("ifeval_id")]


def greedy_replies(model_path, rows, max_new_tokens, batch_size=32):
    model, tokenizer = training.load_frozen(model_path)
    replies = rollout.generate(model, tokenizer, [reply_format.messages(row["instruction"]) for row in rows],
                               greedy=True, max_new_tokens=max_new_tokens, batch_size=batch_size,
                               desc="greedy replies").texts
    del model
    return replies


# -----------------------------------------------------------------------------
# Measurements, each cached in <run>/bench/


def cached(path, compute):
    path = Path(path)
    if path.exists():
        return json.loads(path.read_text())
    start = time.time()
    result = {**compute(), "seconds": round(time.time() - start, 1)}
    write_json(path, result)
    return result


def heldout(model_path, max_new_tokens):
    rows = read_jsonl(HELDOUT)
    replies = greedy_replies(model_path, rows, max_new_tokens)
    result = {}
    for reading, read in (("strict", reply_format.extract_answer), ("lenient", reply_format.helper_answer)):
        answers = [read(reply) for reply in replies]  # None: the strict reading's format gate failed
        verdicts = [rule_verdicts(row, answer) if answer is not None else
                    [0.0] * sum(bool(c.get("ifeval_id")) for c in row["constraints"])
                    for row, answer in zip(rows, answers)]
        flat = [v for row_verdicts in verdicts for v in row_verdicts]
        result[f"{reading}_constraint_pass"] = sum(flat) / len(flat)
        result[f"{reading}_prompt_pass"] = sum(all(v) for v in verdicts) / len(verdicts)
    answers = [reply_format.helper_answer(reply) for reply in replies]
    result["echo_share"] = sum(is_echo(a, row["instruction"]) for a, row in zip(answers, rows)) / len(rows)
    result["non_answer_share"] = sum(echo_guard.ruled_out(a, row) for a, row in zip(answers, rows)) / len(rows)
    result["spam_share"] = sum(is_spam(a) for a in answers) / len(rows)
    result["unasked_markup_share"] = sum(bool(markup_guard.excess(a, row)) for a, row in zip(answers, rows)) / len(rows)
    result["format_pass"] = sum(reply_format.extract_answer(r) is not None for r in replies) / len(rows)
    result["examples"] = [{"instruction": row["instruction"], "reply": reply}  # every reply, to read what is counted
                          for row, reply in zip(rows, replies)]
    return result


def base_failures(base, instructions, max_new_tokens):
    """The share of round T's rule-mapped constraints that the base model fails."""
    rows = [row for row in instructions if any(c.get("ifeval_id") for c in row["constraints"])]
    if not rows:
        return {"mapped_constraints": 0, "base_failure_rate": None}
    replies = greedy_replies(base, rows, max_new_tokens)
    verdicts = [v for row, reply in zip(rows, replies) for v in rule_verdicts(row, reply_format.helper_answer(reply))]
    return {"mapped_constraints": len(verdicts), "base_failure_rate": 1 - sum(verdicts) / len(verdicts)}


def kept_instructions(round_dir):
    """Round T's instructions; none when the Filter kept none (the loop then writes an empty file)."""
    return read_jsonl(Path(round_dir) / "instructions.jsonl", empty_ok=True)


def type_mix(instructions):
    families = Counter(c["ifeval_id"].split(":")[0] if c.get("ifeval_id") else "llm-judged"
                       for row in instructions for c in row["constraints"])
    return dict(families.most_common())


def instructor_stats(metrics, round_index):
    rows = [r for r in metrics if r.get("role") == "instructor" and r.get("round") == round_index and "step" in r]
    mean = lambda key: sum(r.get(key, 0) for r in rows) / len(rows) if rows else None  # noqa: E731
    return {"steps": len(rows), "reward_mean": mean("reward_mean"), "format_pass": mean("format_pass"),
            "filter_pass": mean("filter_pass"), "step_time": mean("step_time")}


def follower_stats(metrics, round_index):
    rows = [r for r in metrics if r.get("role") == "follower" and r.get("round") == round_index and "step" in r]
    return {"steps": len(rows), "reward_mean": sum(r["reward_mean"] for r in rows) / len(rows) if rows else None,
            "format_pass": sum(r.get("format_pass", 0) for r in rows) / len(rows) if rows else None,
            "step_time": sum(r["step_time"] for r in rows) / len(rows) if rows else None}


def budget_suffix(max_new_tokens):
    """What names a cached measurement or a results file made with another reply budget."""
    return "" if max_new_tokens == DEFAULT_BUDGET else f"_{max_new_tokens}tokens"


def measure(run_dir, settings, args):
    base, cache = settings.loop.model, Path(run_dir) / "bench"
    budget = budget_suffix(args.max_new_tokens)  # a result holds for the reply budget it was made with
    metrics = read_jsonl(Path(run_dir) / "metrics.jsonl")
    rounds = []
    for round_index in range(settings.loop.rounds + 1):
        round_dir = Path(run_dir) / f"round_{round_index}"
        model = base if round_index == 0 else str(round_dir / "follower")
        if round_index and not Path(model).exists():  # the Filter kept nothing: F_T = F_{T-1}
            model = rounds[-1]["model"]
        row = {"round": round_index, "model": model,
               "heldout": cached(cache / f"heldout_{round_index}{budget}.json",
                                  lambda: heldout(model, args.max_new_tokens))}
        ifeval = round_dir / "ifeval.json"
        row["ifeval"] = json.loads(ifeval.read_text()) if ifeval.exists() else None
        if round_index:
            instructions = kept_instructions(round_dir)
            row["instructor"] = instructor_stats(metrics, round_index)
            row["follower"] = follower_stats(metrics, round_index)
            row["instructions_kept"] = len(instructions)
            row["filter_report"] = json.loads((round_dir / "filter_report.json").read_text())
            row["type_mix"] = type_mix(instructions)
            row["base_on_round"] = cached(cache / f"base_failures_{round_index}{budget}.json",
                                          lambda: base_failures(base, instructions, args.max_new_tokens))
        rounds.append(row)
    return rounds


# -----------------------------------------------------------------------------
# Report


def table(rounds):
    def pct(value):
        return "-" if value is None else f"{100 * value:.1f}"

    lines = ["round | held-out constraint pass strict / lenient | prompt pass lenient | echo | non-answer | spam / unasked markup | "
             "IFEval plain prompt strict / seif | Instructor format / filter pass | base fails round's "
             "constraints | type mix"]
    for row in rounds:
        h, ifeval = row["heldout"], row["ifeval"] or {}
        instructor = row.get("instructor", {})
        lines.append(" | ".join([
            str(row["round"]), f"{pct(h['strict_constraint_pass'])} / {pct(h['lenient_constraint_pass'])}",
            pct(h["lenient_prompt_pass"]), pct(h["echo_share"]), pct(h["non_answer_share"]),
            f"{pct(h.get('spam_share'))} / {pct(h.get('unasked_markup_share'))}",
            f"{pct(ifeval.get('plain', {}).get('prompt_strict'))} / {pct(ifeval.get('seif', {}).get('prompt_strict'))}",
            f"{pct(instructor.get('format_pass'))} / {pct(instructor.get('filter_pass'))}",
            pct(row.get("base_on_round", {}).get("base_failure_rate")),
            ", ".join(f"{k} {v}" for k, v in row.get("type_mix", {}).items()) or "-"]))
    return "\n".join(lines)


def targets(rounds):
    first, last = rounds[0]["heldout"], rounds[-1]["heldout"]
    lines = []
    gain = last["lenient_constraint_pass"] - first["lenient_constraint_pass"]
    lines.append(f"held-out constraint pass (lenient) {100 * first['lenient_constraint_pass']:.1f} -> "
                 f"{100 * last['lenient_constraint_pass']:.1f} ({100 * gain:+.1f} points; target >= +10): "
                 f"{'MET' if gain >= 0.10 else 'NOT met'}")
    worse = (last["echo_share"] + last["non_answer_share"]) - (first["echo_share"] + first["non_answer_share"])
    lines.append(f"echo + non-answer share {100 * (first['echo_share'] + first['non_answer_share']):.1f} -> "
                 f"{100 * (last['echo_share'] + last['non_answer_share']):.1f} (target: no higher): "
                 f"{'MET' if worse <= 0 else 'NOT met'}")
    if "spam_share" in first and "spam_share" in last:
        lines.append(f"spam share {100 * first['spam_share']:.1f} -> {100 * last['spam_share']:.1f} (target: no higher): "
                     f"{'MET' if last['spam_share'] <= first['spam_share'] else 'NOT met'}")
    if "unasked_markup_share" in first and "unasked_markup_share" in last:
        lines.append(f"unasked markup share {100 * first['unasked_markup_share']:.1f} -> "
                     f"{100 * last['unasked_markup_share']:.1f} (target: no higher): "
                     f"{'MET' if last['unasked_markup_share'] <= first['unasked_markup_share'] else 'NOT met'}")
    plain = [(r["ifeval"] or {}).get("plain", {}).get("prompt_strict") for r in rounds]
    if plain[0] is not None and plain[-1] is not None:
        lines.append(f"IFEval plain prompt strict {100 * plain[0]:.1f} -> {100 * plain[-1]:.1f} (target: no lower): "
                     f"{'MET' if plain[-1] >= plain[0] else 'NOT met'}")
    failures = [r["base_on_round"]["base_failure_rate"] for r in rounds[1:]]
    if len(failures) >= 2 and None not in (failures[0], failures[-1]):
        lines.append(f"base model fails round 1's constraints {100 * failures[0]:.1f}%, round {len(failures)}'s "
                     f"{100 * failures[-1]:.1f}% (target: more): {'MET' if failures[-1] > failures[0] else 'NOT met'}")
    return "\n".join(lines)


def plot(rounds, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [row["round"] for row in rounds]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    held = [row["heldout"] for row in rounds]
    for key, label in (("lenient_constraint_pass", "constraint pass (lenient)"),
                       ("strict_constraint_pass", "constraint pass (strict)"),
                       ("echo_share", "echo"), ("non_answer_share", "non-answer")):
        axes[0].plot(x, [h[key] for h in held], marker="o", label=label)
    axes[0].set_title("Follower on held-out seeds")
    for fmt in ("plain", "seif"):
        axes[1].plot(x, [((r["ifeval"] or {}).get(fmt) or {}).get("prompt_strict") for r in rounds],
                     marker="o", label=f"{fmt} prompt strict")
    axes[1].set_title("IFEval, first 100 prompts")
    later = rounds[1:]
    axes[2].plot([r["round"] for r in later], [r["base_on_round"]["base_failure_rate"] for r in later],
                 marker="o", label="base fails round's constraints")
    axes[2].plot([r["round"] for r in later], [r["instructor"]["reward_mean"] for r in later], marker="o",
                 label="Instructor reward")
    axes[2].set_title("Instructor")
    for axis in axes:
        axis.set_xlabel("round")
        axis.set_xticks(x)  # whole rounds only
        axis.set_ylim(0, 1)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    args = parse_args(argv)
    extra = [f"loop.eval_data={IFEVAL}"] if IFEVAL.exists() else []
    settings = loop.settings_from(argparse.Namespace(
        preset="demo", model=args.model, helper=None, seeds=None, name=args.name,
        set=[*RUN_SETTINGS, f"loop.rounds={args.rounds}", *extra, *args.set]))
    start = time.time()
    run_dir = loop.run(settings)
    rounds = measure(run_dir, settings, args)
    text = "\n\n".join([f"{args.name}: {args.model}, {args.rounds} rounds, held-out and base-model replies of "
                        f"{args.max_new_tokens} new tokens; settings in {run_dir}/settings.json; "
                        f"this invocation took {time.time() - start:.0f} s", table(rounds), targets(rounds)])
    print(text)
    out = REPO / "bench" / "results" / (args.name + budget_suffix(args.max_new_tokens))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"),
               {"model": args.model, "max_new_tokens": args.max_new_tokens, "rounds": rounds})
    out.with_suffix(".txt").write_text(text + "\n")
    plot(rounds, out.with_suffix(".png"))
    print(f"wrote {out}.json, .txt and .png")


if __name__ == "__main__":
    run_cli(main)
