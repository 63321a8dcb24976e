"""The markup guard (beyond_seif.markup_guard): markup the instruction did not ask for earns nothing.

Not SEIF. IFEval-style rules count five markers: <<titles>>, *highlights*, [placeholders],
P.S. lines and a reply wrapped in quotes. The loop's own constraints ask for them often, and a
Follower paid by those rules learns to put them on every reply: with the answer gate on,
training samples piled with markup earned twice the others (bench/RESULTS.md, "The loop with
the gate"); with `restrictions_deduct` on, 24 of 40 held-out replies came wrapped in quotes and
"add a P.S." was answered by a P.S. line alone; in another run every training reply from
round 1's 13th step on opened with a double quote, most of them never closed. Title, highlight
and P.S. spam that meets the rules keeps pay from rules and a judge that says yes. The gate
measures fluency and relevance, not how much markup was asked for; this guard does. With it
on, the Follower's answer earns 0 when it holds more of one marker than its instruction allows:

    marker       counted as                     asked for by
    title        <<...>>                        detectable_format:title
    highlight    *...* or **...**               detectable_format:number_highlighted_sections
    placeholder  [...] (no link, no list)       detectable_content:number_placeholders
    postscript   P.S. or P.P.S. (any case)      detectable_content:postscript
    quotation    the whole reply in "quotes",   startend:quotation
                 or an opening quote never closed

    allowed: 0 when nothing asks for the marker; when asked, 1 title, postscript or quotation,
             and twice the asked count of highlights or placeholders (the rules ask for "at
             least N"). A P.S. is only allowed after a body: with fewer than MIN_ANSWER_WORDS
             words before it (titles and placeholders not counted), a reply that is all P.S.
             is refused even when a P.S. was asked for.

A constraint no rule checks, or the request itself, asks for a marker when its text names it
(`NAMES`: "title", "bold", "placeholder", "P.S.", "quotation marks", ...), with the largest
number in that text as the count (1 when there is none), so markup asked for in words is never
refused. The check is a few regular expressions per answer, and it runs before the Judger, so
refused answers cost no verdicts. The share it refuses is logged as `markup_refused`.

With `markup_guard_keep` above 0 (follower.rewards), a refused answer is judged anyway and keeps
that share of its reward. GRPO divides each group by its spread, so when every reply of a group
holds the markup, a zero leaves the group nothing to learn, while a scaled reward keeps its
ranking on content; beside a clean reply, the marked one still loses.
"""

import re

from beyond_seif.constraint_mapping import _NUM, _number
from beyond_seif.echo_guard import MIN_ANSWER_WORDS, PLACEHOLDER, POSTSCRIPT_MARK, WORD

MARKERS = {  # marker -> (pattern for one occurrence, the IFEval rule asking for it, its count kwarg)
    "title": (re.compile(r"<<[^<>\n]+>>"), "detectable_format:title", None),
    # emphasis opens on a non-space, so a "* " bullet is not a highlight
    "highlight": (re.compile(r"(?<![*\w])\*{1,2}[^\s*](?:[^\n*]*[^\s*])?\*{1,2}(?![*\w])"),
                  "detectable_format:number_highlighted_sections", "num_highlights"),
    "placeholder": (PLACEHOLDER,  # "[name]", "[Date of event]"; not "[a link](url)" or '["a", "b"]'
                    "detectable_content:number_placeholders", "num_placeholders"),
    "postscript": (POSTSCRIPT_MARK, "detectable_content:postscript", None),
    # the whole reply in quotes, or a reply that opens a quote it never closes ('"At last I ...')
    "quotation": (re.compile(r'\A\s*(?:["\u201c][\s\S]*["\u201d]|"[^"]*|\u201c[^\u201d]*)\s*\Z'),
                  "startend:quotation", None),
}
NAMES = {  # words that ask for a marker when a request or a constraint no rule checks says them
    "title": re.compile(r"\btitles?\b|<<|angular brackets", re.IGNORECASE),
    "highlight": re.compile(r"highlight|\bbold|emphasi[sz]|italic|markdown|\*", re.IGNORECASE),
    "placeholder": re.compile(r"placeholder|square brackets|\[", re.IGNORECASE),
    "postscript": re.compile(r"postscript|\bP\.\s?(?:P\.\s?)?S\b", re.IGNORECASE),
    "quotation": re.compile(r"quot", re.IGNORECASE),
}
CAPPED_AT_ONE = {"title", "postscript", "quotation"}
NUMBER = re.compile(r"\b" + _NUM + r"\b", re.IGNORECASE)  # "3", "three", "twice": as constraint_mapping reads them


def largest_number(text):
    return max((_number(n.lower()) for n in NUMBER.findall(text)), default=1)


def asked_counts(row):
    """{marker: how many the row's instruction asks for} for the markers it asks for at all."""
    counts = {}
    for constraint in row.get("constraints") or []:
        for marker, (_, rule, kwarg) in MARKERS.items():
            if constraint.get("ifeval_id") == rule:
                kwargs = constraint.get("kwargs") or {}
                counts[marker] = max(counts.get(marker, 0), int(kwargs.get(kwarg) or 1) if kwarg else 1)
    ruled = {c["text"].strip() for c in row.get("constraints") or [] if c.get("ifeval_id")}
    texts = [c["text"] for c in row.get("constraints") or [] if not c.get("ifeval_id")]
    # the request: its seed, or else each line of the instruction that no rule checks
    texts += [row["seed"]] if row.get("seed") else [line for line in row.get("instruction", "").split("\n")
                                                    if line.strip() not in ruled]
    for text in texts:
        for marker, name in NAMES.items():
            if name.search(text):
                counts[marker] = max(counts.get(marker, 0), largest_number(text))
    return counts


def allowed(row):
    """{marker: the most of it an answer to `row` may hold}."""
    asked = asked_counts(row)
    return {marker: (1 if marker in CAPPED_AT_ONE else 2 * asked[marker]) if marker in asked else 0
            for marker in MARKERS}


def body_words(answer):
    """The words before the answer's first P.S. mark, titles and placeholders left out."""
    body = answer[:POSTSCRIPT_MARK.search(answer).start()]
    return WORD.findall(PLACEHOLDER.sub(" ", MARKERS["title"][0].sub(" ", body)))


def excess(answer, row):
    """The markers `answer` holds more of than `row` allows: {marker: (found, allowed)}."""
    limits = allowed(row)
    found = {marker: len(pattern.findall(answer)) for marker, (pattern, _, _) in MARKERS.items()}
    if found["postscript"] and len(body_words(answer)) < MIN_ANSWER_WORDS:
        limits["postscript"] = 0  # a reply that opens with its P.S. has no body to follow
    return {marker: (found[marker], limits[marker]) for marker in MARKERS if found[marker] > limits[marker]}


def guard(items, answers, answered):
    """The indices of `answered` whose answer holds no more markup than its row allows."""
    return [i for i in answered if not excess(answers[i], items[i])]
