"""The departures' tests use the project's fixtures: tiny offline models and the real SmolLM2."""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[2] / "tests")]

from conftest import fooled_judge, smollm2, tiny_model, tiny_model_dir, tiny_tokenizer  # noqa: E402,F401  (fixtures)
