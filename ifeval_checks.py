"""IFEval's 25 rule checkers, and the only place this project touches them.

IFEval (Zhou et al., 2023) scores a response with one small Python rule per instruction type
("at least 300 words", "no commas", "end with this exact phrase", ...). SEIF uses those rules in
three places: `evaluate.py` (the benchmark itself), the `rules` departure (a constraint the
Instructor wrote in "verifiable" mode is checked by code instead of by the frozen model), and a
learning benchmark that builds prompts from templates.

We do not rewrite the rules: they come from lm-eval's copy of Google's code
(`lm_eval.tasks.ifeval`, `pip install -r requirements-extra.txt`), imported on first use so that
`import ifeval_checks` works without it. What this module adds:

    check(id, kwargs, response)        strict verdict, exactly as IFEval computes it
    runs_here(id, kwargs)              whether this machine has what the rule needs (NLTK data)
    check_loose(id, kwargs, response)  loose verdict (8 lightly cleaned variants of the response)
    score_prompt(row, response)        both verdicts for every instruction of one IFEval prompt
    aggregate(results)                 the four IFEval numbers
    conflicts(id_a, id_b)              IFEval's table of instruction pairs it never generates
                                       together (most are satisfiable: not a contradiction list)
    describe(id, kwargs)               (id, kwargs) -> English constraint sentence

The other direction, an English sentence to (id, kwargs), is beyond_seif/constraint_mapping.py.

NLTK's `punkt_tab` data must be findable (set NLTK_DATA) for the rules that count sentences;
without it those rules raise a UserError that says so (the other rules do not need it).
"""

import functools
import random

from data import UserError

# --- the checkers, from lm-eval ---------------------------------------------------------------

@functools.cache
def registry():
    """lm-eval's `instructions_registry` module (INSTRUCTION_DICT, INSTRUCTION_CONFLICTS)."""
    try:
        import langdetect
        # Importing this runs lm-eval's "download punkt_tab if missing", which fails offline
        # without an error; only the sentence counter needs it (see _follows).
        from lm_eval.tasks.ifeval import instructions_registry
    except ImportError:
        raise UserError("IFEval rule checks need lm-eval: pip install -r requirements-extra.txt") from None
    # The language checks use langdetect, which is random on short or mixed text unless seeded:
    # seed it so that the same response always gets the same verdict.
    langdetect.DetectorFactory.seed = 0
    return instructions_registry


def instruction_ids():
    """The 25 IFEval instruction ids, e.g. 'punctuation:no_comma'."""
    return sorted(registry().INSTRUCTION_DICT)


def build_checker(instruction_id, kwargs, prompt=""):
    """An lm-eval checker object, configured the way IFEval's scorer configures it."""
    return _build(instruction_id, kwargs, prompt)[0]


def _build(instruction_id, kwargs, prompt=""):
    """(checker, its description of the instruction)."""
    checkers = registry().INSTRUCTION_DICT
    if instruction_id not in checkers:
        raise UserError(f"unknown IFEval instruction id {instruction_id!r}")
    checker = checkers[instruction_id](instruction_id)
    # build_description draws a random value for a missing or invalid argument; two IFEval rows
    # have one (letter '#' in row 1122, '!' in 1129). Seed that draw, so that a response always
    # gets the same verdict, and leave the caller's random state as it was.
    state = random.getstate()
    random.seed(0)
    try:
        # The Hub copy of IFEval stores every checker's kwargs in every row, unused ones as None.
        # (lm-eval drops every falsy value; we keep 0 and "", which no IFEval row has.)
        description = checker.build_description(**{k: v for k, v in kwargs.items() if v is not None})
        args = checker.get_instruction_args()
        if args and "prompt" in args:
            checker.build_description(prompt=prompt)
    finally:
        random.setstate(state)
    return checker, description


def _follows(checker, response):
    # IFEval counts an empty (or all-whitespace) response as not following anything.
    try:
        return bool(response.strip() and checker.check_following(response))
    except LookupError:  # NLTK data is missing: the user's to install, never a silent verdict
        raise UserError(
            "IFEval counts sentences with NLTK's punkt_tab data, which was not found: set NLTK_DATA "
            "to a folder holding tokenizers/punkt_tab (python -m nltk.downloader punkt_tab)"
        ) from None


def loose_variants(response):
    """The 8 texts IFEval's loose score tries: as is, without the first line, without the last
    line, without both; and each of those with every '*' removed. Forgives "Sure, here it is:"
    preambles, trailing sign-offs, and markdown bold around required text."""
    lines = response.split("\n")
    trimmed = [
        response,
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return trimmed + [text.replace("*", "") for text in trimmed]


def check(instruction_id, kwargs, response, prompt=""):
    """IFEval's strict verdict: does `response` follow this one instruction?"""
    return _follows(build_checker(instruction_id, kwargs, prompt), response)


def runs_here(instruction_id, kwargs):
    """False if the rule cannot run on this machine: the rules that count sentences or tokenize
    words need NLTK's punkt_tab data. Found by running the rule once on a short text."""
    try:
        check(instruction_id, kwargs, "A first sentence. A second one.")
    except UserError:
        return False
    return True


def check_loose(instruction_id, kwargs, response, prompt=""):
    """IFEval's loose verdict: does any of the 8 loose variants of `response` follow it?"""
    checker = build_checker(instruction_id, kwargs, prompt)
    return any(_follows(checker, text) for text in loose_variants(response))


# --- scoring IFEval prompts -------------------------------------------------------------------

def score_prompt(row, response):
    """Strict and loose verdicts for every instruction of one IFEval row
    (`key`, `prompt`, `instruction_id_list`, `kwargs`)."""
    strict, loose = [], []
    for instruction_id, kwargs in zip(row["instruction_id_list"], row["kwargs"], strict=True):
        checker = build_checker(instruction_id, kwargs, row["prompt"])
        strict.append(_follows(checker, response))
        loose.append(any(_follows(checker, text) for text in loose_variants(response)))
    return {
        "key": row.get("key"),
        "prompt": row["prompt"],
        "instruction_id_list": row["instruction_id_list"],
        "strict": strict,
        "loose": loose,
        "prompt_strict": all(strict),
        "prompt_loose": all(loose),
    }


def aggregate(results):
    """IFEval's four numbers from score_prompt() results: the fraction of prompts whose
    instructions were ALL followed, and the fraction of all instructions followed."""
    if not results:
        raise ValueError("no scored prompts to aggregate")
    n_instructions = sum(len(r["strict"]) for r in results)
    return {
        "prompt_strict": sum(r["prompt_strict"] for r in results) / len(results),
        "inst_strict": sum(sum(r["strict"]) for r in results) / n_instructions,
        "prompt_loose": sum(r["prompt_loose"] for r in results) / len(results),
        "inst_loose": sum(sum(r["loose"]) for r in results) / n_instructions,
    }


# --- conflicts and descriptions ---------------------------------------------------------------

def conflicts(id_a, id_b):
    """True if IFEval never combines these two instruction types in one prompt. Symmetric.
    Note IFEval also lists every type as conflicting with itself (two keyword lists, two word
    limits, ... in one prompt)."""
    table = registry().INSTRUCTION_CONFLICTS
    for instruction_id in (id_a, id_b):
        if instruction_id not in table:
            raise UserError(f"unknown IFEval instruction id {instruction_id!r}")
    # lm-eval's table is not symmetric as written (its conflict_make() is never applied).
    return id_b in table[id_a] or id_a in table[id_b]


def describe(instruction_id, kwargs):
    """The constraint as one line of English: the checker's own description, whitespace
    collapsed (a few span several lines). combination:repeat_prompt's text does not contain
    the request to repeat."""
    return " ".join(_build(instruction_id, kwargs)[1].split())
