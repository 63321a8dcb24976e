"""Runs loop.py's main with canned Instructor output, for test_resume.py's subprocesses.

A random tiny model never writes a valid Instructor reply, so the round's instructions come
from test_loop.canned_generate; everything else is the real loop.
"""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import test_loop  # noqa: E402

import loop  # noqa: E402

if __name__ == "__main__":
    loop.instructor.generate = test_loop.canned_generate
    loop.main(sys.argv[1:])
