"""How to load seed prompts and write run files with data.py, and what a bad seed file reports."""
import json
import os

import pytest

from data import (UserError, append_jsonl, default_seeds_path, read_jsonl, read_prompts,
                  run_cli, write_json, write_jsonl)


def write_text(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped seeds ---

def test_shipped_seeds_load_and_are_unique():
    prompts = read_prompts(default_seeds_path())
    assert len(prompts) >= 300
    assert len(set(prompts)) == len(prompts)
    assert all(5 <= len(prompt.split()) <= 40 for prompt in prompts)


# --- every accepted format ---

def test_jsonl_with_prompt_field(tmp_path):
    path = write_text(tmp_path / "seeds.jsonl",
                      '{"prompt": "Write a poem."}\n{"prompt": "Add 2 and 3."}\n')
    assert read_prompts(path) == ["Write a poem.", "Add 2 and 3."]


def test_instruction_field_is_accepted_and_alpaca_input_is_kept(tmp_path):
    rows = [{"instruction": "Name a color."},
            {"instruction": "Classify the sentiment.", "input": "I love it.", "output": "positive"}]
    path = write_text(tmp_path / "alpaca.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert read_prompts(path) == ["Name a color.", "Classify the sentiment.\n\nI love it."]


def test_json_list_of_objects(tmp_path):
    path = write_text(tmp_path / "seeds.json", json.dumps([{"prompt": "A"}, {"prompt": "B"}]))
    assert read_prompts(path) == ["A", "B"]


def test_json_list_of_strings(tmp_path):
    path = write_text(tmp_path / "seeds.json", json.dumps(["Explain tides.", "List three fruits."]))
    assert read_prompts(path) == ["Explain tides.", "List three fruits."]


def test_csv_with_header(tmp_path):
    path = write_text(tmp_path / "seeds.csv",
                      'id,prompt\n1,Write a haiku.\n2,"Summarize this: ""a, b\nand c"""\n')
    assert read_prompts(path) == ["Write a haiku.", 'Summarize this: "a, b\nand c"']


def test_parquet(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet
    path = tmp_path / "seeds.parquet"
    table = pyarrow.table({"instruction": ["Explain rain.", "Tell a joke."]})
    pyarrow.parquet.write_table(table, path)
    assert read_prompts(path) == ["Explain rain.", "Tell a joke."]


def test_surrounding_whitespace_is_stripped(tmp_path):
    path = write_text(tmp_path / "seeds.json", json.dumps(["  Explain tides.\n"]))
    assert read_prompts(path) == ["Explain tides."]


def test_blank_lines_in_jsonl_are_skipped(tmp_path):
    path = write_text(tmp_path / "seeds.jsonl", '\n{"prompt": "A"}\n\n   \n{"prompt": "B"}\n\n')
    assert read_prompts(path) == ["A", "B"]


# --- bad seed files: one-line UserError naming the file and the line ---

def error_message(path, **kwargs):
    with pytest.raises(UserError) as caught:
        read_prompts(path, **kwargs)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert "not found" in error_message(tmp_path / "nope.jsonl")


def test_unknown_extension_lists_the_accepted_ones(tmp_path):
    message = error_message(write_text(tmp_path / "seeds.txt", "Write a poem.\n"))
    assert all(suffix in message for suffix in (".jsonl", ".json", ".csv", ".parquet"))


def test_empty_file(tmp_path):
    assert "empty" in error_message(write_text(tmp_path / "seeds.jsonl", ""))
    assert "empty" in error_message(write_text(tmp_path / "only_blanks.jsonl", "\n\n  \n"))
    assert "no rows" in error_message(write_text(tmp_path / "header_only.csv", "prompt\n"))


def test_non_utf8_bytes_report_line_and_byte_offset(tmp_path):
    path = tmp_path / "seeds.jsonl"
    latin1 = b'{"prompt": "A"}\n{"prompt": "caf\xe9"}\n'  # \xe9 is Latin-1 for "e" with accent
    path.write_bytes(latin1)
    message = error_message(path)
    assert "line 2" in message and "UTF-8" in message
    bad_byte_offset = latin1.index(b"\xe9")
    assert f"byte offset {bad_byte_offset}" in message


def test_invalid_json_on_line_3(tmp_path):
    path = write_text(tmp_path / "seeds.jsonl",
                      '{"prompt": "A"}\n{"prompt": "B"}\n{"prompt": "C",\n')
    assert "line 3: invalid JSON" in error_message(path)


def test_row_without_prompt_lists_its_fields(tmp_path):
    path = write_text(tmp_path / "seeds.jsonl",
                      '{"prompt": "A"}\n{"question": "B", "answer": "C"}\n')
    message = error_message(path)
    assert "line 2" in message and "question, answer" in message


def test_prompt_that_is_not_a_string_or_is_empty(tmp_path):
    assert "line 1" in error_message(write_text(tmp_path / "a.jsonl", '{"prompt": 42}\n'))
    assert "must be a string" in error_message(
        write_text(tmp_path / "d.jsonl", '{"instruction": 5, "input": "text"}\n'))
    assert "line 2: 'prompt' is empty" in error_message(
        write_text(tmp_path / "b.jsonl", '{"prompt": "A"}\n{"prompt": " "}\n'))
    assert "item 2" in error_message(write_text(tmp_path / "c.json", '["A", null]'))


def test_overlong_row_gives_its_length_and_the_limit(tmp_path):
    long_row = json.dumps({"prompt": "x" * 100_000})
    path = write_text(tmp_path / "seeds.jsonl", '{"prompt": "A"}\n' + long_row + "\n")
    message = error_message(path)
    assert "line 2" in message and "100000" in message and "4000" in message
    assert len(read_prompts(path, max_chars=100_000)) == 2


def test_csv_without_a_prompt_column(tmp_path):
    message = error_message(write_text(tmp_path / "seeds.csv", "id,text\n1,hello\n"))
    assert "line 1" in message and "id, text" in message


def test_csv_with_an_unclosed_quote(tmp_path):
    path = write_text(tmp_path / "seeds.csv", 'prompt\nWrite a poem.\n"Tell a story.\n')
    assert "line 3: bad CSV" in error_message(path)


def test_read_jsonl_reports_lines_too(tmp_path):
    path = write_text(tmp_path / "rows.jsonl", '{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(UserError, match="line 3: expected a JSON object"):
        read_jsonl(path)


def test_run_cli_prints_one_line_and_exits_2(capsys):
    def main():
        raise UserError("seeds.jsonl: line 3: invalid JSON")
    with pytest.raises(SystemExit) as exited:
        run_cli(main)
    assert exited.value.code == 2
    assert capsys.readouterr().err == "error: seeds.jsonl: line 3: invalid JSON\n"


# --- writing run files ---

def test_write_jsonl_replaces_content_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "round1" / "evolved.jsonl"  # missing folders are created
    write_jsonl(path, [{"prompt": "old"}])
    write_jsonl(path, [{"prompt": "new"}, {"prompt": "caf\u00e9 \u2028 line"}])
    assert read_jsonl(path) == [{"prompt": "new"}, {"prompt": "caf\u00e9 \u2028 line"}]
    assert os.listdir(path.parent) == ["evolved.jsonl"]


def test_write_json_is_atomic_too(tmp_path):
    path = tmp_path / "config.json"
    write_json(path, {"group_size": 4})
    write_json(path, {"group_size": 5})
    assert json.loads(path.read_text()) == {"group_size": 5}
    assert os.listdir(tmp_path) == ["config.json"]


def test_append_jsonl_adds_one_line_per_call(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "reward": 0.25})
    append_jsonl(path, {"step": 2, "reward": 0.5})
    assert read_jsonl(path) == [{"step": 1, "reward": 0.25}, {"step": 2, "reward": 0.5}]


def test_append_jsonl_adds_several_rows_at_once(tmp_path):
    path = tmp_path / "samples.jsonl"
    append_jsonl(path, {"step": 0}, {"step": 1})
    append_jsonl(path)  # nothing to add: the file stays as it was
    assert read_jsonl(path) == [{"step": 0}, {"step": 1}]


def test_an_empty_log_reads_as_no_rows_only_when_asked(tmp_path):
    path = tmp_path / "instructions.jsonl"
    path.write_text("\n")
    assert read_jsonl(path, empty_ok=True) == []
    with pytest.raises(UserError, match="file is empty"):
        read_jsonl(path)
    with pytest.raises(UserError, match="file not found"):
        read_jsonl(tmp_path / "missing.jsonl", empty_ok=True)


def test_a_stage_restarted_twice_before_its_first_step_keeps_no_samples(tmp_path):
    """forget_samples empties the log of a stage that restarts at step 0; a second restart
    must read that empty log, not stop on it."""
    import training
    path = tmp_path / "follower_samples.jsonl"
    training.log_samples(path, 0, [{"messages": [{"role": "user", "content": "Hi"}]}] * 2, ["a", "b"], [1.0, 0.0])
    assert [row["completion"] for row in read_jsonl(path)] == ["a", "b"]
    training.forget_samples(path, 0)
    training.forget_samples(path, 0)
    assert read_jsonl(path, empty_ok=True) == []
