"""Figures for one SEIF run: how rewards, IFEval and the Instructor's instructions evolve.

Reads what loop.py writes under runs/<name>/ and writes PNGs into runs/<name>/plots/:

    rewards.png      GRPO reward per step, for the Instructor and the Follower, one line per round
    ifeval.png       IFEval accuracy per round (round 0 = the base model), strict and loose, one
                     panel per format: plain (lm-eval's way) and seif (the Follower's format)
    constraints.png  the Instructor's mix of constraint families per round, and of prompt modes
    difficulty.png   how well the Follower does on each round's instructions while it trains
                     on them: SEIF's claim is that instructions get harder as the Follower improves

A figure whose data the run does not have (no evaluation, no instructions yet) is skipped with
a one-line reason. Needs matplotlib (pip install matplotlib).

Run:
    python plot.py runs/demo
"""

import argparse
from collections import Counter
from pathlib import Path

from data import UserError, read_jsonl, run_cli

IFEVAL_KEYS = ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose", "format_pass")
# evaluate.FORMATS, written out here because importing evaluate would load torch to draw a plot
IFEVAL_FORMATS = {"plain": "plain (lm-eval: prompt alone, whole reply)",
                  "seif": "seif (Follower's system prompt, <answer> only)"}


def family(constraint):
    """'change_case:english_lowercase' -> 'change_case'; a constraint with no IFEval id -> 'unmapped'."""
    return constraint["ifeval_id"].split(":")[0] if constraint.get("ifeval_id") else "unmapped"


def round_instructions(run_dir):
    """{round number: rows of round_<T>/instructions.jsonl}, for the rounds that have one."""
    found = {}
    for path in Path(run_dir).glob("round_*/instructions.jsonl"):
        suffix = path.parent.name.split("_")[1]
        if suffix.isdigit():
            found[int(suffix)] = read_jsonl(path, empty_ok=True)
    return dict(sorted(found.items()))


def _per_round_mean(rows, key):
    """{round: mean of rows[key]} over the rows that have the key."""
    values = {}
    for row in rows:
        if key in row:
            values.setdefault(row["round"], []).append(row[key])
    return {r: sum(v) / len(v) for r, v in sorted(values.items())}


# -----------------------------------------------------------------------------
# The four figures. Each returns None when it drew, or the reason it could not.


def plot_rewards(plt, rows, path):
    roles = [role for role in ("instructor", "follower")
             if any(r.get("role") == role and "reward_mean" in r for r in rows)]
    if not roles:
        return "no instructor or follower training steps in metrics.jsonl"
    figure, axes = plt.subplots(1, len(roles), figsize=(6 * len(roles), 4), squeeze=False)
    for axis, role in zip(axes[0], roles):
        steps = [r for r in rows if r.get("role") == role and "reward_mean" in r]
        for round_index in sorted({r["round"] for r in steps}):
            in_round = [r for r in steps if r["round"] == round_index]
            axis.plot([r["step"] + 1 for r in in_round], [r["reward_mean"] for r in in_round],
                      marker=".", label=f"round {round_index}")
        axis.set(title=f"{role} reward", xlabel="GRPO step in the round", ylabel="mean reward", ylim=(0, 1))
        axis.legend()
    _save(plt, figure, path)


def plot_ifeval(plt, rows, path):
    evals = sorted((r for r in rows if r.get("role") == "eval"), key=lambda r: r["round"])
    if not evals:
        return "no IFEval rows (role 'eval') in metrics.jsonl"
    figure, axes = plt.subplots(1, len(IFEVAL_FORMATS), figsize=(6 * len(IFEVAL_FORMATS), 4), squeeze=False)
    rounds = [r["round"] for r in evals]
    for axis, (fmt, title) in zip(axes[0], IFEVAL_FORMATS.items()):
        for key in IFEVAL_KEYS:  # metrics.jsonl keys are prefixed with the format: plain_prompt_strict
            if any(f"{fmt}_{key}" in r for r in evals):
                axis.plot(rounds, [r.get(f"{fmt}_{key}") for r in evals], marker="o", label=key.replace("_", " "))
        axis.set(title=f"IFEval, {title}", xlabel="round (0 = base model)", ylabel="accuracy", ylim=(0, 1),
                 xticks=rounds)
        axis.legend(fontsize="small")
    _save(plt, figure, path)


def plot_constraints(plt, instructions, path):
    if not instructions:
        return "no round_<T>/instructions.jsonl files"
    rounds = list(instructions)
    families = [Counter(family(c) for row in rows for c in row["constraints"]) for rows in instructions.values()]
    modes = [Counter(row["mode"] for row in rows) for rows in instructions.values()]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    # Stacked bars of shares, so rounds with different numbers of kept rows compare directly.
    names = sorted({name for counts in families for name in counts}, key=lambda n: (n == "unmapped", n))
    _stacked_shares(left, rounds, families, names)
    left.set(title="constraint families (IFEval id prefix)", xlabel="round", ylabel="share of constraints")
    _stacked_shares(right, rounds, modes, ["verifiable", "open-ended"])
    right.set(title="Instructor prompt mode", xlabel="round", ylabel="share of kept instructions")
    for axis in (left, right):
        axis.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    _save(plt, figure, path)


def plot_difficulty(plt, rows, path):
    follower = [r for r in rows if r.get("role") == "follower"]
    followed = _per_round_mean(follower, "constraints_followed")
    rewards = _per_round_mean(follower, "reward_mean")
    if not followed and not rewards:
        return "no follower training steps in metrics.jsonl"
    figure, axis = plt.subplots(figsize=(6, 4))
    for label, values in (("constraints followed (Judger)", followed), ("reward (format gate x Judger)", rewards)):
        if values:
            axis.plot(list(values), list(values.values()), marker="o", label=label)
    axis.set(title="Follower on each round's instructions (mean over its steps)", xlabel="round",
             ylabel="pass rate", ylim=(0, 1), xticks=sorted(set(followed) | set(rewards)))
    axis.legend()
    _save(plt, figure, path)


def _stacked_shares(axis, rounds, counters, names):
    bottoms = [0.0] * len(rounds)
    for name in names:
        shares = [counts[name] / max(sum(counts.values()), 1) for counts in counters]
        axis.bar(rounds, shares, bottom=bottoms, label=name)
        bottoms = [b + s for b, s in zip(bottoms, shares)]
    axis.set_xticks(rounds)


def _save(plt, figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# -----------------------------------------------------------------------------


def plot_run(run_dir):
    """Write every figure the run has data for; returns the paths written."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    if not metrics_path.is_file():
        raise UserError(f"{run_dir}: no metrics.jsonl (is this a run directory written by loop.py?)")
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only, no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plot.py needs matplotlib: pip install matplotlib") from None
    rows = read_jsonl(metrics_path)
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    figures = {
        "rewards.png": lambda path: plot_rewards(plt, rows, path),
        "ifeval.png": lambda path: plot_ifeval(plt, rows, path),
        "constraints.png": lambda path: plot_constraints(plt, round_instructions(run_dir), path),
        "difficulty.png": lambda path: plot_difficulty(plt, rows, path),
    }
    written = []
    for name, draw in figures.items():
        skipped = draw(out / name)
        if skipped:
            print(f"skipped {name}: {skipped}")
        else:
            print(f"wrote {out / name}")
            written.append(out / name)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description="Plot a SEIF run's metrics into runs/<name>/plots/.")
    parser.add_argument("run_dir", help="a run directory written by loop.py, e.g. runs/demo")
    plot_run(parser.parse_args(argv).run_dir)


if __name__ == "__main__":
    run_cli(main)
