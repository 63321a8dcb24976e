"""evaluate.py: the two formats, scoring saved responses, the command line, and evaluating a
(tiny) model in-process.

The IFEval prompts are read from shared/ifeval beside the repository; nothing is downloaded.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import evaluate
import ifeval_checks
import reply_format
from conftest import fake_generate
from data import UserError

REPO = Path(__file__).resolve().parents[1]
IFEVAL = Path(__file__).resolve().parents[2] / "shared" / "ifeval"
DATA = str(IFEVAL / "input_data.jsonl")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_load_ifeval_from_a_local_file():
    rows = evaluate.load_ifeval(DATA)
    assert len(rows) == 541
    assert set(evaluate.IFEVAL_FIELDS) <= set(rows[0])
    assert evaluate.load_ifeval(DATA, limit=5) == rows[:5]


def test_hub_failure_suggests_a_local_copy(monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(UserError, match="--data"):
        evaluate.load_ifeval()


def test_responses_round_trip_gives_the_in_process_numbers(tmp_path):
    responses = read_jsonl(IFEVAL / "gpt4_responses.jsonl")[:25]
    path = write_jsonl(tmp_path / "responses.jsonl", responses)
    metrics = evaluate.main(["--responses", path, "--data", DATA, "--out", str(tmp_path / "out")])

    by_prompt = {row["prompt"]: row for row in evaluate.load_ifeval(DATA)}
    expected = [ifeval_checks.score_prompt(by_prompt[r["prompt"]], r["response"]) for r in responses]
    assert metrics == {"plain": ifeval_checks.aggregate(expected)}  # plain is the default format
    assert read_jsonl(tmp_path / "out" / "results_plain.jsonl") == expected
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved == {"n_prompts": 25, **metrics}


def test_bad_responses_file_exits_2_with_one_line(tmp_path):
    good = read_jsonl(IFEVAL / "gpt4_responses.jsonl")[0]
    path = write_jsonl(tmp_path / "bad.jsonl", [good, {"prompt": "Not an IFEval prompt.", "response": "Hi."}])
    env = {**os.environ, "NLTK_DATA": str(IFEVAL.parent / "nltk_data")}
    result = subprocess.run(
        [sys.executable, "evaluate.py", "--responses", path, "--data", DATA, "--out", str(tmp_path / "out")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "line 2" in lines[0]


def test_a_response_row_without_a_response_names_its_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Write a poem."}])
    with pytest.raises(UserError, match="line 1"):
        evaluate.read_responses(path)


def test_evaluate_model_answers_and_scores_every_prompt(tiny_model):
    model, tokenizer = tiny_model
    rows = evaluate.load_ifeval(DATA, limit=4)
    metrics, per_prompt, responses = evaluate.evaluate_model(model, tokenizer, rows, max_new_tokens=8, batch_size=2)
    assert [r["prompt"] for r in responses] == [row["prompt"] for row in rows]
    assert [r["key"] for r in per_prompt] == [row["key"] for row in rows]
    rescored = [ifeval_checks.score_prompt(row, r["response"]) for row, r in zip(rows, responses)]
    assert metrics == ifeval_checks.aggregate(rescored)


def test_model_cli_output_scores_the_same_as_responses_cli(tiny_model_dir, tmp_path):
    model_out = tmp_path / "model"
    model_metrics = evaluate.main(["--model", tiny_model_dir, "--data", DATA, "--limit", "3",
                                   "--max-new-tokens", "8", "--format", "both", "--out", str(model_out)])
    assert set(model_metrics) == {"plain", "seif"}
    for fmt in ("plain", "seif"):
        assert len(read_jsonl(model_out / f"responses_{fmt}.jsonl")) == 3
        responses_out = tmp_path / f"responses_{fmt}"
        rescored = evaluate.main(["--responses", str(model_out / f"responses_{fmt}.jsonl"), "--data", DATA,
                                  "--format", fmt, "--out", str(responses_out)])
        assert rescored == {fmt: model_metrics[fmt]}
        assert read_jsonl(responses_out / f"results_{fmt}.jsonl") == read_jsonl(model_out / f"results_{fmt}.jsonl")


# Two instructions a reply can visibly follow or break.
ROW = {"key": 1, "prompt": "Describe a river.", "instruction_id_list": [
    "change_case:english_lowercase", "punctuation:no_comma"], "kwargs": [{}, {}]}


def test_seif_format_scores_only_the_answer():
    reply = "<think>The user wants a river, in lowercase, WITHOUT commas.</think>\n<answer>a river runs to the sea</answer>"
    seif = evaluate.score_reply(ROW, reply, "seif")
    assert seif["strict"] == [True, True] and seif["loose"] == [True, True] and seif["format_pass"]
    plain = evaluate.score_reply(ROW, reply, "plain")  # the thinking has capitals and a comma
    assert plain["strict"] == [False, False]


def test_a_reply_outside_the_format_fails_every_instruction_in_seif_only():
    reply = "a river runs to the sea"
    seif = evaluate.score_reply(ROW, reply, "seif")
    assert seif["strict"] == [False, False] and seif["loose"] == [False, False] and not seif["format_pass"]
    assert not seif["prompt_strict"] and not seif["prompt_loose"]
    assert evaluate.score_reply(ROW, reply, "plain")["strict"] == [True, True]


def test_seif_format_asks_with_the_followers_system_prompt(monkeypatch):
    replies = ["<think>ok</think><answer>a river runs to the sea</answer>", "A river, I think."]
    calls = fake_generate(monkeypatch, replies)
    rows = [ROW, {**ROW, "key": 2, "prompt": "Describe a lake."}]
    metrics, per_prompt, _ = evaluate.evaluate_model(None, None, rows, fmt="seif")
    assert calls[0][0] == [reply_format.messages("Describe a river."), reply_format.messages("Describe a lake.")]
    assert calls[0][1]["greedy"] is True
    assert [r["format_pass"] for r in per_prompt] == [True, False]
    assert metrics == {"prompt_strict": 0.5, "inst_strict": 0.5, "prompt_loose": 0.5, "inst_loose": 0.5,
                       "format_pass": 0.5}
    evaluate.evaluate_model(None, None, rows, fmt="plain")
    assert calls[1][0] == [[{"role": "user", "content": "Describe a river."}],
                           [{"role": "user", "content": "Describe a lake."}]]
