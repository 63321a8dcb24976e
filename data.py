"""Reading seed prompts and reading/writing JSON files, for every SEIF-mini script.

The seed instructions that start the SEIF loop come from the user, so `read_prompts` checks
them and reports a bad file as one line naming the file, the line (or row) and the problem,
instead of a traceback from deep inside a training run. Accepted formats: JSONL, JSON (a list
of objects or of strings), CSV with a header row, and parquet (needs pyarrow). Each row gives
its text in a `prompt` or `instruction` field.

The writers are atomic (a crash never leaves half a file behind) and `append_jsonl` syncs each
line to disk, so metrics.jsonl survives a killed run.

    prompts = read_prompts(default_seeds_path())
    write_jsonl("runs/r1/evolved.jsonl", [{"prompt": p} for p in prompts])
"""
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path

ACCEPTED_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


class UserError(ValueError):
    """Bad input from the user; command-line entry points print its message as one line
    (no traceback) and exit with status 2."""


def run_cli(main):
    """Call `main()`; turn a UserError into `error: <message>` on stderr and exit status 2."""
    try:
        return main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def default_seeds_path() -> Path:
    """The seed instructions shipped with the project."""
    return Path(__file__).resolve().parent / "data" / "seeds.jsonl"


# --- reading ---------------------------------------------------------------------------------

def _json_type(value) -> str:
    # Users wrote JSON, so name types as JSON does, not as Python does ("null", not "NoneType").
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # -sig: spreadsheet exports often start with a BOM
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise UserError(f"{path}: line {line}: not UTF-8 (byte 0x{raw[err.start]:02x} at "
                        f"byte offset {err.start}); re-save the file as UTF-8") from None
    if not text.strip():
        raise UserError(f"{path}: file is empty (no rows)")
    return text


def _jsonl_rows(path: Path):
    """Yield (where, row) for each non-blank line; `where` is "line N" for error messages."""
    # split("\n"), not splitlines(): JSON strings may hold a raw U+2028, which splitlines cuts.
    for line_number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: line {line_number}: invalid JSON ({err.msg} at column "
                            f"{err.colno})") from None
        yield f"line {line_number}", row


def _json_rows(path: Path):
    try:
        items = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: line {err.lineno}: invalid JSON ({err.msg} at column "
                        f"{err.colno})") from None
    if not isinstance(items, list):
        raise UserError(f"{path}: expected a JSON list of objects or strings, got "
                        f"{_json_type(items)}")
    return [(f"item {index}", item) for index, item in enumerate(items, start=1)]


def _csv_rows(path: Path):
    # newline="": the csv module does its own line splitting, so quoted fields may hold newlines.
    # strict: an unclosed quote is an error, not a prompt that swallows the rest of the file.
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""), strict=True)
    rows, last_line = [], 0
    try:
        fields = reader.fieldnames or []
        if "prompt" not in fields and "instruction" not in fields:
            raise UserError(f"{path}: line 1: the header has no 'prompt' or 'instruction' "
                            f"column (columns: {', '.join(fields) or 'none'})")
        for row in reader:
            # line_num is the row's last physical line: exact for rows without quoted newlines.
            rows.append((f"line {reader.line_num}", row))
            last_line = reader.line_num
    except csv.Error as err:
        # The bad record starts after the last good one (csv does not say where exactly).
        raise UserError(f"{path}: line {last_line + 1}: bad CSV ({err}; an unclosed quote?)"
                        ) from None
    return rows


def _parquet_rows(path: Path):
    try:
        import pyarrow.parquet
    except ImportError:
        raise UserError(f"{path}: reading .parquet files needs pyarrow; run "
                        f"`pip install pyarrow` or convert the file to .jsonl") from None
    try:
        rows = pyarrow.parquet.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
        message = " ".join(str(err).split())
        raise UserError(f"{path}: not a readable parquet file ({message})") from None
    return [(f"row {index}", row) for index, row in enumerate(rows, start=1)]


def _prompt_from(row, where: str, max_chars: int) -> str:
    if isinstance(row, str):  # a JSON list of plain strings
        key, prompt = "prompt", row
    elif isinstance(row, dict):
        key = "prompt" if "prompt" in row else "instruction" if "instruction" in row else None
        if key is None:
            raise UserError(f"{where}: no 'prompt' or 'instruction' field (fields: "
                            f"{', '.join(map(str, row)) or 'none'})")
        prompt = row[key]
        # Alpaca-style rows keep the text to work on in `input`; without it the task is lost.
        extra = row.get("input") if key == "instruction" else None
        if isinstance(prompt, str) and isinstance(extra, str) and extra.strip():
            prompt = f"{prompt}\n\n{extra}"
    else:
        raise UserError(f"{where}: expected an object or a string, got {_json_type(row)}")
    if not isinstance(prompt, str):
        raise UserError(f"{where}: '{key}' must be a string, got {_json_type(prompt)}")
    if not prompt.strip():
        raise UserError(f"{where}: '{key}' is empty")
    if len(prompt) > max_chars:
        raise UserError(f"{where}: '{key}' is {len(prompt)} characters, over the limit of "
                        f"{max_chars}")
    return prompt.strip()  # the seed is followed by "\n" + constraints; no stray blank lines


def read_prompts(path, *, max_chars: int = 4000) -> list[str]:
    """The prompts in a seed file (.jsonl, .json, .csv or .parquet), in file order."""
    path = Path(path)
    readers = {".jsonl": _jsonl_rows, ".json": _json_rows, ".csv": _csv_rows,
               ".parquet": _parquet_rows}
    suffix = path.suffix.lower()
    if suffix not in readers:
        raise UserError(f"{path}: unknown file type '{suffix}'; accepted: "
                        f"{', '.join(ACCEPTED_SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    prompts = [_prompt_from(row, f"{path}: {where}", max_chars)
               for where, row in readers[suffix](path)]
    if not prompts:
        raise UserError(f"{path}: no rows")
    return prompts


def read_jsonl(path, *, empty_ok=False) -> list[dict]:
    """Every non-blank line of a JSONL file, each a JSON object. An empty file is an error (a
    user's data file with nothing in it) unless `empty_ok`: a log or a round's output may
    legitimately hold no rows yet, such as the instructions of a round whose Filter kept none."""
    path = Path(path)
    if empty_ok and path.is_file() and not path.read_bytes().strip():
        return []
    rows = []
    for where, row in _jsonl_rows(path):
        if not isinstance(row, dict):
            raise UserError(f"{path}: {where}: expected a JSON object, got {_json_type(row)}")
        rows.append(row)
    return rows


# --- writing ---------------------------------------------------------------------------------

def _write_atomic(path, text: str) -> None:
    # Write a temp file in the same directory, sync it, then rename over the target: os.replace
    # is atomic within one filesystem, so readers see the old file or the new one, never half.
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp makes it private (0600); outputs should be readable
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise


def write_jsonl(path, rows) -> None:
    """Replace `path` with one JSON object per line."""
    _write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_json(path, obj) -> None:
    """Replace `path` with `obj` as indented JSON."""
    _write_atomic(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def append_jsonl(path, *rows) -> None:
    """Add one line per row to a JSONL log and sync it, so a crash loses at most the lines in flight."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        f.flush()
        os.fsync(f.fileno())
