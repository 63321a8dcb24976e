"""IFEval's 25 rule checkers, and the only place this project touches them.

IFEval (Zhou et al., 2023) scores a response with one small Python rule per instruction type
("at least 300 words", "no commas", "end with this exact phrase", ...). SEIF uses those rules in
four places: `evaluate.py` (the benchmark itself), the Judger's rule mode (a constraint the
Instructor wrote in "verifiable" mode is checked by code instead of by the frozen model), the
Filter's conflict table, and a learning benchmark that builds prompts from templates.

We do not rewrite the rules: they come from lm-eval's copy of Google's code
(`lm_eval.tasks.ifeval`, `pip install -r requirements-extra.txt`), imported on first use so that
`import ifeval_checks` works without it. What this module adds:

    check(id, kwargs, response)        strict verdict, exactly as IFEval computes it
    check_loose(id, kwargs, response)  loose verdict (8 lightly cleaned variants of the response)
    score_prompt(row, response)        both verdicts for every instruction of one IFEval prompt
    aggregate(results)                 the four IFEval numbers
    conflicts(id_a, id_b)              IFEval's table of instruction pairs that cannot be combined
    map_constraint(sentence)           English constraint sentence -> (id, kwargs), or None
    describe(id, kwargs)               (id, kwargs) -> English constraint sentence

NLTK's `punkt_tab` data must be findable (set NLTK_DATA): IFEval counts sentences with it.
"""

import functools
import random
import re

from data import UserError

# --- the checkers, from lm-eval ---------------------------------------------------------------

@functools.cache
def registry():
    """lm-eval's `instructions_registry` module (INSTRUCTION_DICT, INSTRUCTION_CONFLICTS)."""
    try:
        import langdetect
        import nltk
        # Importing this runs lm-eval's "download punkt_tab if missing", which fails offline.
        from lm_eval.tasks.ifeval import instructions_registry
    except ImportError:
        raise UserError("IFEval rule checks need lm-eval: pip install -r requirements-extra.txt") from None
    # The language checks use langdetect, which is random on short or mixed text unless seeded:
    # seed it so that the same response always gets the same verdict.
    langdetect.DetectorFactory.seed = 0
    try:
        nltk.data.find("tokenizers/punkt_tab")
    except LookupError:
        raise UserError(
            "IFEval counts sentences with NLTK's punkt_tab data, which was not found: set NLTK_DATA "
            "to a folder holding tokenizers/punkt_tab (python -m nltk.downloader punkt_tab)"
        ) from None
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
    return bool(response.strip() and checker.check_following(response))


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


# --- map_constraint: one English constraint sentence -> (instruction id, kwargs) ---------------
#
# The SEIF Instructor, in verifiable mode, writes constraints as free sentences from five families
# that mirror IFEval's types. When a sentence clearly states one IFEval rule we can check it by
# code. Each matcher below recognises one type and returns its kwargs or None. A sentence is
# mapped only when exactly one matcher fires; two (e.g. "all lowercase and no commas") or none
# means "not one IFEval rule" and the caller falls back to the model Judger. Never guess: a
# mapping is only right if every response that satisfies the sentence also passes the checker.

_NUMBER_WORDS = {
    "one": 1, "once": 1, "single": 1, "two": 2, "twice": 2, "three": 3, "thrice": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100,
}
_NUM = r"(?:\d+|" + "|".join(_NUMBER_WORDS) + r")"
# A count with its comparison: "at least 3", "fewer than 100", "no more than five", "300+", "2".
_QUANTITY = (
    r"(?P<rel>\b(?:at least|no fewer than|no less than|not fewer than|not less than|a minimum of|"
    r"minimum of|no more than|not more than|more than|greater than|over|longer than|"
    r"less than|fewer than|under|below|shorter than|at most|a maximum of|maximum of|up to|"
    r"exactly|precisely))?\s*(?:\ba\s+)?\b(?P<num>" + _NUM + r")\b(?P<post>\+|\s+or\s+(?:more|fewer|less))?"
)
_RELATIONS = {  # phrase -> (IFEval relation, offset added to the number)
    "at least": ("at least", 0), "no fewer than": ("at least", 0), "no less than": ("at least", 0),
    "not fewer than": ("at least", 0), "not less than": ("at least", 0),
    "a minimum of": ("at least", 0), "minimum of": ("at least", 0), "or more": ("at least", 0),
    "+": ("at least", 0), "more than": ("at least", 1), "greater than": ("at least", 1),
    "over": ("at least", 1), "longer than": ("at least", 1),
    "less than": ("less than", 0), "fewer than": ("less than", 0), "under": ("less than", 0),
    "below": ("less than", 0), "shorter than": ("less than", 0),
    "at most": ("less than", 1), "no more than": ("less than", 1), "not more than": ("less than", 1),
    "a maximum of": ("less than", 1), "maximum of": ("less than", 1), "up to": ("less than", 1),
    "or fewer": ("less than", 1), "or less": ("less than", 1),
    "exactly": ("exactly", 0), "precisely": ("exactly", 0), None: ("bare", 0),
}
_NEGATION = r"\b(?:not|no|never|avoid|avoiding|without|refrain|exclude|n't|nor|free of)\b|n't\b"
_QUOTED = r"\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|(?<!\w)'([^']+)'(?!\w)"
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6}


def _number(text):
    return int(text) if text.isdigit() else _NUMBER_WORDS[text]


def _quantity(sentence, followed_by):
    """(relation, n) for the one quantity in the sentence that is followed by `followed_by`,
    else None. relation is 'at least', 'less than', 'exactly' or 'bare' (no word: "3 sections");
    'at most 5' becomes ('less than', 6)."""
    matches = list(re.finditer(_QUANTITY + followed_by, sentence, re.I))
    if len(matches) != 1:
        return None
    match = matches[0]
    phrase = match["rel"] or (match["post"] or "").strip() or None
    relation, offset = _RELATIONS[re.sub(r"\s+", " ", phrase.lower()) if phrase else None]
    return relation, _number(match["num"].lower()) + offset


def _count(sentence, nouns):
    """The quantity of `nouns`: "at least 3 bullet points", "fewer than 100 words"."""
    return _quantity(sentence, r"\s+(?:\w+\s+){0,2}?(?:" + nouns + r")\b")


def _times(sentence):
    """How often: "at least 3 times", "fewer than five times", "twice"."""
    return _quantity(sentence, r"(?:\s+times?\b|(?<=once)|(?<=twice)|(?<=thrice))")


def _quoted(sentence):
    """The quoted strings in a sentence, in order."""
    return [next(group for group in m.groups() if group) for m in re.finditer(_QUOTED, sentence)]


def _plain_words(items):
    # The keyword checkers put the keyword into a regex unescaped; keep to words and phrases.
    return bool(items) and all(re.fullmatch(r"[\w][\w' -]*", item) for item in items)


def _has(pattern, sentence):
    return re.search(pattern, sentence, re.I) is not None


def _number_count(sentence):
    unquoted = re.sub(_QUOTED, "", sentence)
    return len(re.findall(r"\b" + _NUM + r"\b", unquoted, re.I))


def _relational(count):
    """For checkers with a relation: 'less than' or 'at least' only ("50 words" is too vague)."""
    if count is None or count[0] not in ("at least", "less than") or count[1] <= 0:
        return None
    return count


def _exactly(count):
    """For checkers that want an exact number: "exactly 3 bullet points" or "3 bullet points"."""
    return count[1] if count and count[0] in ("exactly", "bare") else None


def _at_least(count):
    """For checkers that count "at least": "at least 3 sections" or, as IFEval writes it, "3 sections"."""
    return count[1] if count and count[0] in ("at least", "bare") and count[1] > 0 else None


# Lexical (family A)

def _keywords_existence(s):
    if _has(_NEGATION, s) or _times(s) or not _has(r"\b(?:include|use|mention|contain|feature)", s):
        return None
    if not _has(r"\b(?:key)?(?:words?|terms?|phrases?)\b", s):
        return None
    keywords = _quoted(s)
    return {"keywords": keywords} if _plain_words(keywords) else None


def _keywords_frequency(s):
    count = _relational(_times(s))
    keywords = _quoted(s) or re.findall(r"\bthe (?:key)?word (\w+) should appear", s, re.I)
    if count is None or len(keywords) != 1 or not _plain_words(keywords) or _has(r"\bletter\b", s):
        return None
    if _number_count(s) != 1:
        return None
    return {"keyword": keywords[0], "frequency": count[1], "relation": count[0]}


def _forbidden_words(s):
    if not _has(_NEGATION, s) or _times(s) or not _has(r"\b(?:key)?(?:words?|terms?|phrases?)\b", s):
        return None
    words = _quoted(s)
    return {"forbidden_words": words} if _plain_words(words) else None


def _letter_frequency(s):
    letters = re.findall(r"\bletter\s+['\"‘“]?([a-z])['\"’”]?(?![\w])", s, re.I)
    count = _relational(_times(s))
    if len(set(l.lower() for l in letters)) != 1 or count is None or _number_count(s) != 1:
        return None
    return {"letter": letters[0].lower(), "let_frequency": count[1], "let_relation": count[0]}


_ALL_CAPS = r"(?:capital letters|capitalized|capitalised|upper[- ]?case|all[- ]caps|all capitals)"


def _capital_word_frequency(s):
    if not _has(_ALL_CAPS, s) or _has(r"lower[- ]?case", s) or _number_count(s) != 1:
        return None
    count = _relational(_times(s) or _count(s, r"(?:all[- ]caps |capitali[sz]ed |upper[- ]?case )?words?"))
    if count is None:
        return None
    return {"capital_frequency": count[1], "capital_relation": count[0]}


# Structure (family B)

def _number_sentences(s):
    count = _relational(_count(s, r"sentences?"))
    if count is None or _number_count(s) != 1:
        return None
    return {"num_sentences": count[1], "relation": count[0]}


def _number_words(s):
    if _has(_ALL_CAPS, s) or _number_count(s) != 1:
        return None
    count = _relational(_count(s, r"words?"))
    if count is None:
        return None
    return {"num_words": count[1], "relation": count[0]}


def _number_paragraphs(s):
    # IFEval's paragraph counter splits on the markdown divider ***, so the sentence must ask for it.
    if not (_has(r"\*\*\*", s) or _has(r"markdown divider", s)) or _has(r"\b(?:start|begin)", s):
        return None
    count = _exactly(_count(s, r"paragraphs?"))
    return None if count is None else {"num_paragraphs": count}


def _nth_paragraph_first_word(s):
    if _has(r"\*\*\*", s):
        return None
    total = _exactly(_count(s, r"paragraphs"))
    position = re.search(
        r"\b(?:paragraph\s+(?P<n>\d+)|(?P<ord>" + "|".join(_ORDINALS) + r"|\d+(?:st|nd|rd|th))\s+paragraph)"
        r"\s+(?:must|should|has to|needs to|will)?\s*(?:start|begin)s?\s+with\s+(?:the\s+)?(?:word\s+)?"
        r"['\"‘“]?(?P<word>[A-Za-z]+)\b",
        s, re.I,
    )
    if total is None or position is None:
        return None
    nth = int(position["n"]) if position["n"] else _ORDINALS.get(position["ord"].lower())
    if nth is None:
        nth = int(re.match(r"\d+", position["ord"])[0])
    if not 1 <= nth <= total:
        return None
    return {"num_paragraphs": total, "nth_paragraph": nth, "first_word": position["word"].lower()}


def _number_bullet_lists(s):
    # The checker wants the exact number, so "at least 3 bullet points" is not its rule.
    count = _exactly(_count(s, r"bullet(?:ed)?(?: points?| lists?| items?)?|bullets"))
    return None if count is None else {"num_bullets": count}


def _multiple_sections(s):
    count = _at_least(_count(s, r"sections?|parts?|chapters?"))
    splitter = re.search(
        r"(?i:\b(?:mark|begin|start|label|head|prefix|introduce|title)\w*\b[^.]*?\b(?:with|as|by)\s+"
        r"(?:the\s+)?(?:word\s+|label\s+|heading\s+)?)['\"‘“]?(?P<word>[A-Za-z]+)\s+(?:X|N|1|\{n\}|#)(?!\w)",
        s,  # case-sensitive for the marker word: the checker matches "SECTION" and "Section" exactly
    )
    if count is None or splitter is None or _has(r"highlight", s):
        return None
    return {"section_spliter": splitter["word"], "num_sections": count}


# Formatting (family C)

def _number_highlighted_sections(s):
    if not _has(r"highlight", s):
        return None
    count = _at_least(_count(s, r"(?:highlighted\s+)?(?:sections?|parts?|phrases?|spans?|passages?)"))
    return None if count is None else {"num_highlights": count}


def _title(s):
    if _has(r"\btitle\b", s) and _has(r"<<|double angular brackets|double angle brackets", s):
        return {}
    return None


def _quotation(s):
    if _has(r"\b(?:entire|whole|full|complete)\b", s) and _has(r"double quot|quotation marks", s):
        return None if _has(_NEGATION, s) else {}
    return None


def _json_format(s):
    if not _has(r"\bjson\b", s) or _has(_NEGATION, s) or _has(r"\b(?:include|including|contain)", s):
        return None
    if _has(r"\b(?:entire|whole|full|all of)\b.*\b(?:output|response|answer)\b|\b(?:in|as) (?:valid )?json\b|json format", s):
        return {}
    return None


def _constrained_response(s):
    options = ("my answer is yes", "my answer is no", "my answer is maybe")
    return {} if all(option in s.lower() for option in options) else None


# Language style (family D)

def _language_codes():
    """IFEval's languages as {lowercase English name: ISO 639-1 code}, e.g. {"french": "fr"}."""
    registry()
    from lm_eval.tasks.ifeval.instructions_util import LANGUAGE_CODES

    return {name.lower(): code for code, name in LANGUAGE_CODES.items()} | {"farsi": "fa"}


def _response_language(s):
    if _has(_NEGATION + r"(?! other language)", s) and not _has(r"no other language", s):
        return None
    if _has(_ALL_CAPS + r"|lower[- ]?case", s):
        return None  # "in English, and in all capital letters" is a case rule
    codes = _language_codes()
    found = {codes[m.lower()] for m in re.findall(r"\b(?:in|into|using)\s+(?:the\s+)?(" + "|".join(codes) + r")\b", s, re.I)}
    mentioned = {codes[m.lower()] for m in re.findall(r"\b(" + "|".join(codes) + r")\b", s, re.I)}
    if len(found) != 1 or mentioned != found:
        return None
    return {"language": found.pop()}


def _english_capital(s):
    if not _has(_ALL_CAPS, s) or _has(r"lower[- ]?case|\bwords?\b|\btimes\b", s) or _number_count(s):
        return None
    return None if _has(_NEGATION, s) else {}


def _english_lowercase(s):
    if not _has(r"lower[- ]?case", s) or _number_count(s) or _has(r"\b(?:not|never|avoid)\b[^.]*lower", s):
        return None
    return {}


def _no_comma(s):
    return {} if _has(r"\bcommas?\b", s) and _has(_NEGATION, s) and not _quoted(s) else None


# Special patterns (family E)

def _two_responses(s):
    if _has(r"\btwo\b[^.]*\b(?:responses|answers|versions|replies)\b", s) and _has(r"\*{6}|six asterisk|6 asterisk", s):
        return {}
    return None


def _end_checker(s):
    ending = re.search(r"\b(?:end|ends|ending|finish|conclude|close)\b[^'\"‘“]*?\bwith\b", s, re.I)
    if ending is None or _has(_NEGATION, s[: ending.end()]):
        return None
    # Unquoted phrases are only safe in IFEval's own wording, where ". No other words" ends them.
    ifeval_style = re.search(r"exact phrase (.+?)\.? No other words should follow", s)
    phrases = [ifeval_style[1]] if ifeval_style else _quoted(s)
    return {"end_phrase": phrases[0]} if len(phrases) == 1 else None


def _repeat_prompt(s):
    # kwargs filled in by map_constraint(), which knows the request
    if _has(r"\brepeat\b[^.]*\b(?:request|prompt|instruction|question)\b", s) and not _has(r"(?:not|n't|never)\s+repeat", s):
        return {}
    return None


def _postscript(s):
    if _has(r"\bP\.\s?P\.\s?S\b", s):
        return {"postscript_marker": "P.P.S"}
    if _has(r"\bP\.\s?S\.", s):
        return {"postscript_marker": "P.S."}
    return None


def _number_placeholders(s):
    count = _at_least(_count(s, r"placeholders?"))
    return None if count is None else {"num_placeholders": count}


_MATCHERS = {
    "keywords:existence": _keywords_existence,
    "keywords:frequency": _keywords_frequency,
    "keywords:forbidden_words": _forbidden_words,
    "keywords:letter_frequency": _letter_frequency,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_words": _number_words,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "detectable_format:number_bullet_lists": _number_bullet_lists,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:number_highlighted_sections": _number_highlighted_sections,
    "detectable_format:title": _title,
    "startend:quotation": _quotation,
    "detectable_format:json_format": _json_format,
    "detectable_format:constrained_response": _constrained_response,
    "language:response_language": _response_language,
    "change_case:english_capital": _english_capital,
    "change_case:english_lowercase": _english_lowercase,
    "punctuation:no_comma": _no_comma,
    "combination:two_responses": _two_responses,
    "startend:end_checker": _end_checker,
    "combination:repeat_prompt": _repeat_prompt,
    "detectable_content:postscript": _postscript,
    "detectable_content:number_placeholders": _number_placeholders,
}


def map_constraint(sentence, request=None):
    """(instruction_id, kwargs) for ONE constraint sentence that states exactly one IFEval rule,
    e.g. "Do not use any commas." -> ("punctuation:no_comma", {}); None when unsure.

    "Repeat the request first" (combination:repeat_prompt) needs the text to repeat: pass it
    as `request` (in SEIF, the seed instruction); without it such a sentence maps to None."""
    hits = {}
    for instruction_id, matcher in _MATCHERS.items():
        kwargs = matcher(sentence)
        if kwargs is not None:
            hits[instruction_id] = kwargs
    if len(hits) != 1:
        return None
    (instruction_id, kwargs), = hits.items()
    if instruction_id == "combination:repeat_prompt":
        if not request:
            return None
        kwargs = {"prompt_to_repeat": request}
    build_checker(instruction_id, kwargs)  # raises if the kwargs do not fit the checker
    return instruction_id, kwargs
