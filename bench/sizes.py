"""How long a read SEIF is: line counts of the core reading path and the README, against targets.

The core reading path is loop.py, the four role files, grpo.py and rollout.py: one SEIF round
top to bottom. Every line counts (code, docstrings, comments, blank lines). Docstring and
comment lines are counted too, since the core must keep explaining itself (20% or more).

    python bench/sizes.py          # prints the table; exit status 1 if a target is missed
"""

import io
import sys
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE = {"loop.py": 250, "instructor.py": 250, "filter.py": 250, "follower.py": 250, "judger.py": 250,
        "grpo.py": 300, "rollout.py": 300}  # file -> most lines
CORE_TOTAL, EXPLAINED_SHARE = 1500, 0.20
README_LINES, README_WORDS = 250, 2500


def explaining_lines(source):
    """How many lines hold a docstring or a comment."""
    lines, previous = set(), tokenize.INDENT
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            lines.add(token.start[0])
        elif token.type == tokenize.STRING and previous in (tokenize.INDENT, tokenize.NEWLINE, tokenize.DEDENT):
            lines.update(range(token.start[0], token.end[0] + 1))  # a string statement: a docstring
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token.type
    return len(lines)


def main():
    missed = []
    total = explained = 0
    print(f"{'file':16} {'lines':>6} {'target':>7} {'explaining':>11}")
    for name, most in CORE.items():
        source = (REPO / name).read_text()
        count, explaining = len(source.splitlines()), explaining_lines(source)
        total, explained = total + count, explained + explaining
        print(f"{name:16} {count:6d} {most:7d} {explaining:11d}" + ("  MISSED" if count > most else ""))
        if count > most:
            missed.append(f"{name} {count} > {most}")
    share = explained / total
    print(f"{'core':16} {total:6d} {CORE_TOTAL:7d} {explained:11d} ({share:.0%} explaining, target >= "
          f"{EXPLAINED_SHARE:.0%})")
    readme = (REPO / "README.md").read_text()
    readme_lines, readme_words = len(readme.splitlines()), len(readme.split())
    print(f"README.md: {readme_lines} lines (target <= {README_LINES}), {readme_words} words (target <= {README_WORDS})")
    missed += [f"core {total} > {CORE_TOTAL}"] * (total > CORE_TOTAL)
    missed += [f"explaining share {share:.0%} < {EXPLAINED_SHARE:.0%}"] * (share < EXPLAINED_SHARE)
    missed += [f"README {readme_lines} lines"] * (readme_lines > README_LINES)
    missed += [f"README {readme_words} words"] * (readme_words > README_WORDS)
    print("missed: " + "; ".join(missed) if missed else "every target met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
