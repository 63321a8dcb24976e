"""What the answer gate adds to a Follower step: the demo's shapes on SmolLM2, gate off and on.

Trains the Follower through `follower.train` with the `demo` preset (groups of 4, 2 prompts per
step, 96-token replies, no KL) for `--steps` steps on held-out rows (data/heldout.jsonl), once
with `beyond_seif.answer_gate` off and once on, alternating `--repeats` times, and reports the
median step time of each (the metrics rows' `step_time`), the time each on-step spends in the
gate itself (its `answer_gate_time` metric) against the rest of that step, and the gate's
one-off fit per stage (the helper's answers to `answer_gate_references` instructions, and their
forward passes). The off/on step medians compare two different trainings (the gate changes the
rewards, so later steps differ); the gate's own time does not depend on that.

    NLTK_DATA=../shared/nltk_data python bench/gate_overhead.py    # about 10 minutes on a 2-core CPU

Writes bench/results/gate_overhead.json and .txt.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]
import accuracy  # noqa: E402  (machine description)
import follower  # noqa: E402
import loop  # noqa: E402
from beyond_seif import answer_gate  # noqa: E402
from data import read_jsonl  # noqa: E402

HELDOUT = REPO / "data" / "heldout.jsonl"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    fit_seconds = []
    fit = answer_gate.fit_for_rows

    def timed_fit(*a, **k):
        start = time.time()
        gate = fit(*a, **k)
        fit_seconds.append(time.time() - start)
        return gate
    answer_gate.fit_for_rows = timed_fit

    rows = read_jsonl(HELDOUT)
    step_times, gate_times = {"off": [], "on": []}, []
    for repeat in range(args.repeats):
        for gate in ("off", "on"):
            settings = loop.settings_from(loop.argparse.Namespace(
                preset="demo", model=None, helper=None, seeds=None, name=None,
                set=[f"beyond_seif.answer_gate={gate == 'on'}", f"loop.follower_steps={args.steps}",
                     f"loop.seed={repeat}"]))
            with tempfile.TemporaryDirectory() as folder:
                follower.train(settings, settings.loop.model, settings.loop.model, rows, f"{folder}/follower",
                               epochs=1, log=lambda row: (step_times[gate].append(row["step_time"]),
                                                 gate_times.append(row.get("answer_gate_time"))))
    median = {gate: statistics.median(times) for gate, times in step_times.items()}
    gate_times = [t for t in gate_times if t is not None]  # the on-steps' own time in the gate
    # the gate's own seconds against the rest of the same step: free of the run-to-run noise
    # of comparing two trainings (the gate changes the rewards, so the runs' steps differ)
    own_share = statistics.median(t / (step - t) for t, step in zip(gate_times, step_times["on"]))
    per_stage = args.steps  # the demo's Follower stage is 3 steps
    results = {
        "machine": accuracy.machine(), "command": " ".join(sys.argv), "preset": "demo", "model": "smollm2-135m",
        "step_times_s": step_times, "median_step_s": {k: round(v, 2) for k, v in median.items()},
        "step_overhead": round(median["on"] / median["off"] - 1, 4),
        "gate_time_s": [round(t, 2) for t in gate_times], "gate_share_of_step_rest": round(own_share, 4),
        "fit_s": [round(s, 1) for s in fit_seconds],
        "stage_overhead_with_fit": round((median["on"] * per_stage + statistics.median(fit_seconds))
                                         / (median["off"] * per_stage) - 1, 4)}
    out = REPO / "bench" / "results" / "gate_overhead.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    text = (f"{results['machine']}; demo preset, SmolLM2-135M, {args.steps} steps x {args.repeats} repeats\n"
            f"median Follower step: gate off {median['off']:.2f} s, gate on {median['on']:.2f} s "
            f"(+{100 * results['step_overhead']:.1f}%)\n"
            f"time in the gate per on-step: median {statistics.median(gate_times):.2f} s, "
            f"+{100 * own_share:.1f}% of the rest of its step\n"
            f"gate fit per stage: {results['fit_s']} s; a {per_stage}-step stage with the fit: "
            f"+{100 * results['stage_overhead_with_fit']:.1f}%\n")
    out.with_suffix(".txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
