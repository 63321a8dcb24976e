"""map_constraint: one English constraint sentence -> one IFEval rule (instruction id, kwargs).

The SEIF Instructor, in verifiable mode, writes constraints as free sentences from five families
that mirror IFEval's types. When a sentence clearly states one IFEval rule we can check it by
code, and the rule's verdict becomes the reward. Each matcher below recognises one type and
returns its kwargs or None. A sentence is mapped only when exactly one matcher fires, and only
if it neither narrows the rule to a part of the response ("in the title", "each bullet") nor
adds a second requirement ("..., and make it funny"). Otherwise the caller falls back to the
model Judger. Never guess: a mapping is right only if the rule passes every response that
follows the sentence and fails every response that breaks it. Negation is the usual trap:
"should not be more than 100 words" means fewer than 101 words, never "more than 100".

    map_constraint("Do not use any commas.")  ->  ("punctuation:no_comma", {})
    map_constraint("Use ALL CAPS for all location names.")  ->  None (a part of the response)

tests/test_constraint_mapping.py holds 102 phrasings, each with answers that satisfy it and
answers that break it, and checks that every mapping accepts the first and rejects the second.
"""

import re

from ifeval_checks import build_checker, registry

_NUMBER_WORDS = {
    "one": 1, "once": 1, "single": 1, "two": 2, "twice": 2, "three": 3, "thrice": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100,
}
_NUM = r"(?:\d+|" + "|".join(_NUMBER_WORDS) + r")"
# A count with its comparison: "at least 3", "fewer than 100", "no more than five", "300+", "2".
_QUANTITY = (
    r"(?P<rel>\b(?:at least|no fewer than|no less than|not fewer than|not less than|a minimum of|"
    r"minimum of|no more than|not more than|more than|greater than|over|longer than|exceeds?|"
    r"exceeding|less than|fewer than|under|below|shorter than|at most|a maximum of|maximum of|"
    r"up to|exactly|precisely))?\s*(?:\ba\s+)?\b(?P<num>" + _NUM + r")\b"
    r"(?P<post>\+|\s+or\s+(?:more|fewer|less))?"
)
_RELATIONS = {  # phrase -> (IFEval relation, offset added to the number)
    "at least": ("at least", 0), "no fewer than": ("at least", 0), "no less than": ("at least", 0),
    "not fewer than": ("at least", 0), "not less than": ("at least", 0),
    "a minimum of": ("at least", 0), "minimum of": ("at least", 0), "or more": ("at least", 0),
    "+": ("at least", 0), "more than": ("at least", 1), "greater than": ("at least", 1),
    "over": ("at least", 1), "longer than": ("at least", 1), "exceed": ("at least", 1),
    "exceeds": ("at least", 1), "exceeding": ("at least", 1),
    "less than": ("less than", 0), "fewer than": ("less than", 0), "under": ("less than", 0),
    "below": ("less than", 0), "shorter than": ("less than", 0),
    "at most": ("less than", 1), "no more than": ("less than", 1), "not more than": ("less than", 1),
    "a maximum of": ("less than", 1), "maximum of": ("less than", 1), "up to": ("less than", 1),
    "or fewer": ("less than", 1), "or less": ("less than", 1),
    "exactly": ("exactly", 0), "precisely": ("exactly", 0), None: ("bare", 0),
}
_NEGATION = r"\b(?:not|no|never|cannot|avoid|avoiding|without|refrain|exclude|nor|free of)\b|n['’]t\b"
# A negation and at most four more words of its clause right before a count: "should not be
# [more than 100]", "don't use [more than 4]", "never [exceed 30]", "avoid using [over 3]".
_NEGATED_COUNT = (
    r"(?:\b(?:not|no|never|cannot|without|avoid|avoiding|refrain from)|n['’]t)"
    r"(?:\s+(?!(?:and|but|or|then|while)\b)[^\s,;:.]+){0,4}\s*$"
)
# Negated verbs that ban nothing: "Don't forget the word 'thanks'" asks for it, and "you don't
# need to write more than 100 words" allows more.
_NOT_A_BAN = r"\b(?:forget|fail|omit|miss|skip|neglect|leave out|need|necessar|requir|mandatory|obligat)\w*"
_FREQUENCY = r"\b(?:times?|once|twice|thrice)\b"
_QUOTED = r"\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|(?<!\w)'([^']+)'(?!\w)"
# IFEval's own end_checker wording gives the phrase unquoted.
_IFEVAL_END_PHRASE = r"exact phrase (.+?)\.? No other words should follow"
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6}
_ALL_CAPS = r"(?:capital letters|capitalized|capitalised|upper[- ]?case|all[- ]caps|all capitals)"
# Any demand on letter case. The keyword, letter and end-phrase checkers ignore case.
_CASE = _ALL_CAPS + r"|\bcapital\b|capitali[sz]|lower[- ]?case|\bcase\b"


def _number(text):
    return int(text) if text.isdigit() else _NUMBER_WORDS[text]


def _has(pattern, sentence):
    return re.search(pattern, sentence, re.I) is not None


def _negations(text):
    return len(re.findall(_NEGATION, text, re.I))


def _quoted(sentence):
    """The quoted strings in a sentence, in order."""
    return [next(group for group in m.groups() if group) for m in re.finditer(_QUOTED, sentence)]


def _unquoted(sentence):
    """The sentence with each quoted text replaced by «», so that the words inside ("not today",
    "Call me at 631") are not read as part of the instruction."""
    sentence = re.sub(_IFEVAL_END_PHRASE, "exact phrase «». No other words should follow", sentence)
    return re.sub(_QUOTED, "«»", sentence)


def _number_count(sentence):
    return len(re.findall(r"\b" + _NUM + r"\b", _unquoted(sentence), re.I))


def _quantity(sentence, followed_by):
    """(relation, n) for the one quantity in the sentence that is followed by `followed_by`,
    else None. relation is 'at least', 'less than', 'exactly' or 'bare' (no word: "3 sections");
    'at most 5' becomes ('less than', 6). A negated count is turned round: "should not be more
    than 5" is not (at least 6), so ('less than', 6). Any other negation gives None."""
    text = _unquoted(sentence)
    matches = list(re.finditer(_QUANTITY + followed_by, text, re.I))
    if len(matches) != 1:
        return None
    match = matches[0]
    phrase = match["rel"] or (match["post"] or "").strip() or None
    relation, offset = _RELATIONS[re.sub(r"\s+", " ", phrase.lower()) if phrase else None]
    count = relation, _number(match["num"].lower()) + offset
    negation = re.search(_NEGATED_COUNT, text[: match.start()], re.I)
    start = negation.start() if negation else match.start()
    # A negation anywhere else ("Without commas, write at least 30 words") belongs to another
    # requirement, or makes a double negative: we cannot tell which way the count goes.
    if _negations(text[:start] + " " + text[match.end():]):
        return None
    if negation is None:
        return count
    if _negations(text[start : match.end()]) != 1:  # "not ... no more than": a double negative
        return None
    return None if _has(_NOT_A_BAN, text) else _turned_round(count)


def _turned_round(count):
    """The opposite count: not (at least n) is (less than n), and the reverse. "Not exactly 3"
    has no IFEval relation."""
    relation, n = count
    opposite = {"at least": "less than", "less than": "at least"}.get(relation)
    return None if opposite is None else (opposite, n)


def _count(sentence, nouns):
    """The quantity of `nouns`: "at least 3 bullet points", "fewer than 100 words". Only a few
    neutral words may come between: "3 short paragraphs" or "10 unique words" ask for more than
    the count."""
    return _quantity(sentence, r"\s+(?:(?:total|separate|distinct|markdown)\s+)?(?:" + nouns + r")\b")


def _times(sentence):
    """How often: "at least 3 times", "fewer than five times", "twice"."""
    return _quantity(sentence, r"(?:\s+times?\b|(?<=once)|(?<=twice)|(?<=thrice))")


def _plain_words(items):
    # The keyword checkers put the keyword into a regex unescaped; keep to words and phrases.
    return bool(items) and all(re.fullmatch(r"[\w][\w' -]*", item) for item in items)


def _relational(count):
    """For checkers with a relation: 'less than' or 'at least' only ("50 words" is too vague)."""
    if count is None or count[0] not in ("at least", "less than") or count[1] <= 0:
        return None
    return count


def _exactly(count):
    """For checkers that want an exact number: "exactly 3 bullet points" or "3 bullet points"."""
    return count[1] if count and count[0] in ("exactly", "bare") else None


def _at_least(count):
    """For checkers that count "at least": "at least 3 placeholders" (not "3 placeholders",
    which a reader may take as exactly 3)."""
    return count[1] if count and count[0] == "at least" and count[1] > 0 else None


# Lexical (family A)

def _keywords_existence(s):
    text = _unquoted(s)
    # The checker finds every keyword anywhere, in any case, any number of times: a count, a
    # case, a negation or a choice ("'cat' or 'dog'") is not its rule.
    if _has(_NEGATION + "|" + _FREQUENCY + "|" + _CASE + r"|\bor\b", text) or _number_count(s):
        return None
    if not _has(r"\b(?:include|use|mention|contain|feature)", text):
        return None
    if not _has(r"\b(?:key)?(?:words?|terms?|phrases?)\b", text):
        return None
    keywords = _quoted(s)
    return {"keywords": keywords} if _plain_words(keywords) else None


def _keywords_frequency(s):
    count = _relational(_times(s))
    keywords = _quoted(s) or re.findall(r"\bthe (?:key)?word (\w+) should appear", s, re.I)
    if count is None or len(keywords) != 1 or not _plain_words(keywords):
        return None
    if _has(r"\bletter\b|" + _CASE, _unquoted(s)) or _number_count(s) != 1:
        return None
    return {"keyword": keywords[0], "frequency": count[1], "relation": count[0]}


def _forbidden_words(s):
    text = _unquoted(s)
    if "«»" not in text or not _has(r"\b(?:key)?(?:words?|terms?|phrases?)\b", text):
        return None
    if _has(r"\bletters?\b", text):  # "words with the letter 'e'" forbids a letter, not a word
        return None
    # The negation must govern the quoted words: "Do not use the words 'x' or 'y'", "'x' must
    # never appear"; not "Include 'calm', not 'quiet'" or "Don't forget the word 'thanks'".
    before, after = text[: text.index("«»")], text[text.rindex("«»") :]
    negated_after = r"^«»\W*(?:should|must|may|can|is|are)?\s*(?:not|never|n['’]t)\b"
    if not (_negations(before) or _has(negated_after, after)):
        return None
    if _has(_FREQUENCY + "|" + _CASE + "|" + _NOT_A_BAN + r"|\b(?:both|together)\b", text):
        return None
    words = _quoted(s)
    return {"forbidden_words": words} if _plain_words(words) and not _number_count(s) else None


def _letter_frequency(s):
    text = _unquoted(s)
    letters = re.findall(r"\bletter\s+['\"‘“]?([a-z])['\"’”]?(?![\w])", s, re.I)
    # The checker counts the letter anywhere, upper or lower case: not "words starting with the
    # letter b" nor "the capital letter A".
    if len(set(l.lower() for l in letters)) != 1 or _has(_CASE + r"|\bwords?\b|\b(?:start|begin|end)", text):
        return None
    letter = letters[0].lower()
    if _number_count(s) == 0:
        # "Avoid the letter e", "never use the letter z": it appears fewer than once.
        avoided = _has(r"(?:" + _NEGATION + r")[^,;.]*\bletter\b", text) and _negations(text) == 1
        if not avoided or _has(_NOT_A_BAN, text):
            return None
        return {"letter": letter, "let_frequency": 1, "let_relation": "less than"}
    count = _relational(_times(s))
    if count is None or _number_count(s) != 1:
        return None
    return {"letter": letter, "let_frequency": count[1], "let_relation": count[0]}


def _capital_word_frequency(s):
    if not _has(_ALL_CAPS, s) or _has(r"lower[- ]?case", s) or _number_count(s) != 1:
        return None
    count = _relational(_times(s) or _count(s, r"(?:all[- ]caps |capitali[sz]ed |upper[- ]?case )?words?"))
    if count is None:
        return None
    return {"capital_frequency": count[1], "capital_relation": count[0]}


# Structure (family B)

# Units of text. A count of one unit said of another ("sentences should have fewer than 20
# words", "no paragraph may exceed 3 sentences") is a count per unit, not for the whole response.
_UNITS = r"\b(?:word|sentence|paragraph|line|bullet|point|section|item|stanza|verse)s?\b"


def _other_units(s, unit):
    return any(not found.lower().startswith(unit) for found in re.findall(_UNITS, s, re.I))


def _number_sentences(s):
    count = _relational(_count(s, r"sentences?"))
    if count is None or _number_count(s) != 1 or _other_units(s, "sentence"):
        return None
    return {"num_sentences": count[1], "relation": count[0]}


def _number_words(s):
    if _has(_ALL_CAPS, s) or _number_count(s) != 1 or _other_units(s, "word"):
        return None
    # "fewer than 100 words of dialogue", "3 words that rhyme": a count of some words only.
    if _has(r"\bwords?\s+(?:of|from|that|which|starting|beginning|ending|containing)\b", s):
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
    text = _unquoted(s)
    if _number_count(s) == 0 and _has(r"(?:" + _NEGATION + r")[^,;.]*\bbullet", text):
        # "Do not use bullet points": exactly none. Not "no bullets or numbered lists": the
        # checker counts only lines that start with * or -.
        plain = _negations(text) == 1 and not _has(r"\b(?:or|nor|and)\b|" + _NOT_A_BAN, text)
        return {"num_bullets": 0} if plain else None
    # The checker wants the exact number, so "at least 3 bullet points" is not its rule.
    count = _exactly(_count(s, r"bullet(?:ed)?(?: points?| lists?| items?)?|bullets"))
    return None if count is None else {"num_bullets": count}


def _multiple_sections(s):
    count = _count(s, r"sections?|parts?|chapters?")
    # IFEval writes "Your response must have 3 sections" for its at-least-3 rule.
    minimum = _at_least(count) or (count[1] if count and count[0] == "bare" and count[1] > 0 else None)
    splitter = re.search(
        r"(?i:\b(?:mark|begin|start|label|head|prefix|introduce|title)\w*\b[^.]*?\b(?:with|as|by)\s+"
        r"(?:the\s+)?(?:word\s+|label\s+|heading\s+)?)['\"‘“]?(?P<word>[A-Za-z]+)\s+(?:X|N|1|\{n\}|#)(?!\w)",
        s,  # case-sensitive for the marker word: the checker matches "SECTION" and "Section" exactly
    )
    if minimum is None or splitter is None or _has(r"highlight", s):
        return None
    return {"section_spliter": splitter["word"], "num_sections": minimum}


# Formatting (family C)

def _number_highlighted_sections(s):
    if not _has(r"highlight", s):
        return None
    count = _at_least(_count(s, r"(?:highlighted\s+)?(?:sections?|parts?|phrases?|spans?|passages?)"))
    return None if count is None else {"num_highlights": count}


def _title(s):
    if not (_has(r"\btitle\b", s) and _has(r"<<|double angular brackets|double angle brackets", s)):
        return None
    # The checker only looks for a non-empty <<...>>: a negation or anything asked of the title
    # itself (its case, its length, "that rhymes") is not its rule.
    text = re.sub(r"<<[^>]*>>", "", _unquoted(s))
    if _has(_NEGATION + "|" + _CASE + r"|\b(?:that|which)\b", text) or _number_count(text):
        return None
    return {}


def _quotation(s):
    if _has(r"\b(?:entire|whole|full|complete)\b", s) and _has(r"double quot|quotation marks", s):
        return None if _has(_NEGATION, s) else {}
    return None


def _json_format(s):
    text = _unquoted(s)
    if not _has(r"\bjson\b", text) or _has(_NEGATION, text) or _has(r"\b(?:include|including|contain)", text):
        return None
    # The checker accepts any valid JSON: keys, fields or a JSON part of the answer are more.
    if "«»" in text or _number_count(s) or _has(
        r"\b(?:keys?|fields?|propert\w*|schema|array|list|snippet|block|part|portion|example)\b", text
    ):
        return None
    whole = r"\b(?:entire|whole|full|all of)\b.*\b(?:output|response|answer)\b"
    return {} if _has(whole + r"|\b(?:in|as) (?:valid )?json\b|json format", text) else None


def _constrained_response(s):
    options = ("my answer is yes", "my answer is no", "my answer is maybe")
    return {} if all(option in s.lower() for option in options) else None


# Language style (family D)

def _language_codes():
    """IFEval's languages as {lowercase English name: ISO 639-1 code}, e.g. {"french": "fr"}."""
    registry()  # lm-eval's modules, imported on first use
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


def _whole_response_case(text):
    """Whether a case sentence can be about the whole response. Both case checkers test every
    letter of the response and that it is English: not "ALL CAPS for all names", "for emphasis",
    "3 words in capitals", "end with 'THE END' in capitals", nor "in Spanish, all lowercase"."""
    if "«»" in text or _has(r"\b(?:for|to|when|where|emphasi\w*|words?|times|end|start|begin)\b", text):
        return False
    if _number_count(text):
        return False
    languages = re.findall(r"\b(?:" + "|".join(_language_codes()) + r")\b", text.lower())
    return all(language == "english" for language in languages)


def _english_capital(s):
    text = _unquoted(s)
    if not _has(_ALL_CAPS, text) or _has(r"lower[- ]?case", text) or not _whole_response_case(text):
        return None
    return None if _has(_NEGATION, text) else {}


def _english_lowercase(s):
    text = _unquoted(s)
    if not _has(r"lower[- ]?case", text) or not _whole_response_case(text):
        return None
    # A negation before "lowercase" undoes it ("Do not write in all lowercase"); one after it is
    # the same rule said twice ("..., in all lowercase letters. No capital letters are allowed.").
    return None if _has(r"(?:" + _NEGATION + r")[^.]*lower", text) else {}


# The checker forbids every comma and nothing else.
_OTHER_PUNCTUATION = (
    r"\b(?:semicolons?|colons?|periods?|full stops?|dash(?:es)?|hyphens?|exclamation|question marks?|"
    r"apostrophes?|quotation marks?|parenthes\w+|brackets?|punctuation)\b"
)


def _no_comma(s):
    text = _unquoted(s)
    # Not "no more than two commas", "no commas or semicolons", nor "commas, not semicolons":
    # the negation must come before "commas", in the same clause.
    if "«»" in text or _number_count(s) or _has(_OTHER_PUNCTUATION + "|" + _NOT_A_BAN, text):
        return None
    return {} if _has(r"(?:" + _NEGATION + r")[^,;.]*\bcommas?\b", text) else None


# Special patterns (family E)

def _two_responses(s):
    if _has(r"\btwo\b[^.]*\b(?:responses|answers|versions|replies)\b", s) and _has(r"\*{6}|six asterisk|6 asterisk", s):
        return {}
    return None


def _end_checker(s):
    text = _unquoted(s)
    if not _has(r"\b(?:end|ends|ending|finish|conclude|close)\b.*?\bwith\b", text):
        return None
    # The checker compares the last characters, case ignored. Refuse a negation (IFEval's "No
    # other words should follow" aside), a start too, an example ("such as 'Any thoughts?'" is one
    # question of many), a case or bold (the checker would see the asterisks), or a number.
    rest = re.sub(r"\bno other words should follow\b", "", text, flags=re.I)
    if _has(_NEGATION + "|" + _CASE + r"|\b(?:start|begin|such as|like|e\.g|for example|bold|italic)", rest):
        return None
    if _number_count(text):
        return None
    ifeval_style = re.search(_IFEVAL_END_PHRASE, s)
    if ifeval_style and not re.fullmatch(_QUOTED, ifeval_style[1]):
        phrases = [ifeval_style[1]]
    else:  # quoted, in IFEval's wording or not: the quotes are not part of the phrase
        phrases = _quoted(s)
    return {"end_phrase": phrases[0]} if len(phrases) == 1 else None


def _repeat_prompt(s):
    # kwargs filled in by map_constraint(), which knows the request
    if _has(r"\brepeat\b[^.]*\b(?:request|prompt|instruction|question)\b", s) and not _has(r"(?:not|n't|never)\s+repeat", s):
        return {}
    return None


def _postscript(s):
    # The checker only finds the marker: "Do not add a P.S." or a P.S. "that thanks the reader"
    # is not its rule.
    if _has(_NEGATION + r"|\b(?:that|which|about|mention\w*|say\w*|thank\w*|ask\w*|explain\w*)\b", _unquoted(s)):
        return None
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

# Words that narrow a rule to part of the response: "in the title", "each bullet", "for all
# location names", "in the first paragraph", "except proper nouns", "in a formal tone", "P.S. Do
# not use commas" (in the postscript, or the postscript and the rule: either way not one rule).
_PART_OF_RESPONSE = (
    r"\b(?:each|every|per|except|excluding|apart from|other than|unless|same|together)\b"
    r"|\b(?:first|last|final|opening|closing|second|third|fourth|fifth)\b"
    r"|\bat the (?:very )?(?:beginning|start|end|top|bottom)\b"
    r"|\b(?:titles?|headings?|headers?|subject line|names|introduction|conclusion|captions?|tables?)\b"
    r"|\bpostscripts?\b|\bP\.\s?(?:P\.\s?)?S\b"
    r"|\b(?:in|within|inside|for|to|on)\s+(?:the|your|each|every|any|its|all|a|an)\s+"
    r"(?!(?:entire|whole|full|complete|response|answer|reply|output|text|capital|caps|upper|lower|json)\w*\b)"
)
# Rules whose own wording names a part: the title, the closing postscript, each section, the
# nth paragraph, and repeating the request first.
_RULES_ABOUT_A_PART = {
    "detectable_format:title", "detectable_content:postscript", "detectable_format:multiple_sections",
    "length_constraints:nth_paragraph_first_word", "combination:repeat_prompt",
}

_VERB = (
    r"(?:use|using|include|including|write|writing|keep|keeping|make|making|avoid|avoiding|end|ending|"
    r"start|begin|add|adding|mention|respond|answer|reply|wrap|put|format|highlight|limit|ensure|"
    r"separate|give|provide|finish|conclude|refrain|capitali[sz]e|bold|mark|label|divide|split|stay|be|"
    r"have|contain|translate|explain|list|sign|close|do not|don't|never|always)"
)
# A second requirement joined to the first: "...; end with 'Done.'", "... and do not use commas",
# "..., and the tone must be formal", "Answer in fewer than 100 words, make it funny" (a comma
# after a leading "In your response," or "At the end," starts no second requirement).
_SECOND_REQUIREMENT = (
    r";"
    r"|\b(?:and|but|then|also|plus|while|as well as)\s+(?:also\s+|then\s+|please\s+)?" + _VERB + r"\b"
    r"|\b(?:and|but)\s+(?:it|each|every|the|your|all|no|any|there|they)\b(?:\s+\w+){0,3}?\s+"
    r"(?:should|must|has to|have to|needs? to|is to|are to|cannot|can't|may not|will|is|are)\b"
    r"|^(?!\s*(?:in|at|for|when|within|throughout|after|before|if|as|on|by)\b)[^,]*,\s+(?:and\s+)?" + _VERB + r"\b"
)
# Rules whose own wording has two steps: n paragraphs AND the nth one's first word; repeat the
# request, then answer.
_TWO_STEP_RULES = {"length_constraints:nth_paragraph_first_word", "combination:repeat_prompt"}


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
    text = _unquoted(sentence)
    if instruction_id not in _RULES_ABOUT_A_PART and _has(_PART_OF_RESPONSE, text):
        return None
    if instruction_id not in _TWO_STEP_RULES and _has(_SECOND_REQUIREMENT, text):
        return None
    if instruction_id == "combination:repeat_prompt":
        if not request:
            return None
        kwargs = {"prompt_to_repeat": request}
    build_checker(instruction_id, kwargs)  # raises if the kwargs do not fit the checker
    return instruction_id, kwargs
