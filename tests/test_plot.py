"""plot.py on a small fake run directory, laid out as loop.py writes it."""

import json

import pytest

import plot
from data import UserError


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def fake_run(run_dir):
    """Round 0 evaluation, then one round: Instructor steps, instructions, Follower steps, eval."""
    ifeval = {"plain_prompt_strict": 0.2, "plain_inst_strict": 0.3, "plain_prompt_loose": 0.25,
              "plain_inst_loose": 0.35, "seif_prompt_strict": 0.1, "seif_inst_strict": 0.2,
              "seif_prompt_loose": 0.15, "seif_inst_loose": 0.25, "seif_format_pass": 0.5}
    rows = [{"role": "eval", "round": 0, "prompts": 10, **ifeval}]
    rows += [{"role": "instructor", "round": 1, "step": s, "reward_mean": 0.1 * s} for s in range(3)]
    rows += [{"role": "instructions", "round": 1, "sampled": 4, "parsed": 3, "kept": 2}]
    rows += [{"role": "follower", "round": 1, "step": s, "reward_mean": 0.2 + 0.1 * s,
              "constraints_followed": 0.4 + 0.1 * s, "format_pass": 0.9} for s in range(3)]
    rows += [{"role": "eval", "round": 1, "prompts": 10, **{k: v + 0.1 for k, v in ifeval.items()}}]
    write_jsonl(run_dir / "metrics.jsonl", rows)
    lowercase = {"text": "Use only lowercase letters.", "ifeval_id": "change_case:english_lowercase", "kwargs": {}}
    free_text = {"text": "Sound cheerful.", "ifeval_id": None, "kwargs": None}
    write_jsonl(run_dir / "round_1" / "instructions.jsonl", [
        {"round": 1, "mode": "verifiable", "seed": "Write a poem.", "constraints": [lowercase, free_text]},
        {"round": 1, "mode": "open-ended", "seed": "Write a note.", "constraints": [free_text]},
    ])


def test_every_figure_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    fake_run(tmp_path)
    written = plot.plot_run(tmp_path)
    names = sorted(path.name for path in written)
    assert names == ["constraints.png", "difficulty.png", "ifeval.png", "rewards.png"]
    for path in written:
        assert path.parent == tmp_path / "plots" and path.stat().st_size > 1000


def test_figures_without_data_are_skipped_with_a_reason(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    write_jsonl(tmp_path / "metrics.jsonl", [{"role": "eval", "round": 0, "plain_prompt_strict": 0.1,
                                              "seif_prompt_strict": 0.0, "seif_format_pass": 0.2}])
    written = plot.plot_run(tmp_path)
    assert [path.name for path in written] == ["ifeval.png"]
    output = capsys.readouterr().out
    assert "skipped constraints.png: no round_<T>/instructions.jsonl files" in output
    assert "skipped rewards.png" in output and "skipped difficulty.png" in output


def test_a_directory_without_metrics_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no metrics.jsonl"):
        plot.plot_run(tmp_path)


def test_family_is_the_ifeval_id_prefix():
    assert plot.family({"ifeval_id": "punctuation:no_comma"}) == "punctuation"
    assert plot.family({"ifeval_id": None}) == "unmapped"


def test_ifeval_figure_has_a_panel_per_format(tmp_path, monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    fake_run(tmp_path)
    panels = []
    save = plot._save
    monkeypatch.setattr(plot, "_save", lambda plt, figure, path: panels.extend(figure.axes) or save(plt, figure, path))
    plot.plot_ifeval(plt, plot.read_jsonl(tmp_path / "metrics.jsonl"), tmp_path / "ifeval.png")
    assert [axis.get_title() for axis in panels] == [f"IFEval, {title}" for title in plot.IFEVAL_FORMATS.values()]
    plain, seif = ([line.get_label() for line in axis.get_lines()] for axis in panels)
    assert plain == ["prompt strict", "inst strict", "prompt loose", "inst loose"]
    assert seif == plain + ["format pass"]
    assert list(panels[1].get_lines()[0].get_ydata()) == [0.1, 0.2]  # seif prompt strict, rounds 0 and 1
