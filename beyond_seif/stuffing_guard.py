"""The stuffing guard (beyond_seif.stuffing_guard): the Judger reads a run of one letter or one
word once, and a <<title>> only where it opens its line.

Not SEIF. IFEval's rules count: "the letter k at least 3 times", "the word 'new' at least
twice", "a title in double angular brackets". A Follower paid by those rules learned the
cheapest text that meets them: `I chose kkkk in special.`, and a title hidden inside a
sentence or tacked on at the end (`a company named <<<kappe kamika>>`,
`...\\n<my title <<Michael>>`), paid in full with the markup guard and the answer gate on
(bench/RESULTS.md, "The markup guard against both habits"). A run of one word (`new new new`)
meets a keyword count the same way. With this departure on, the
Judger (rules and LLM alike) reads each Follower answer as `counted_text` gives it:

    a run of one letter, 3 or more    "kkkk" -> "k", "Sooo" -> "So" (English doubles a letter,
                                      it does not triple one)
    a run of one word                 "new new NEW" -> "new" ("very very" -> "very"; not
                                      "knock, knock")
    a title after a line's start      "named <<Michael>>" -> "named Michael"; a line that opens
                                      with its title ("<<My Day>>", "## <<My Day>>: notes")
                                      keeps it

The answer gate and the guards before the Judger still see the answer as written. The price: a
genuine answer that triples a letter ("Brrr") or repeats a word ("bye bye", "La La Land")
counts it once, a title written inside a line does not meet a title constraint, and a copy of
a request that holds either no longer equals it (of GPT-4's 832 rule verdicts on IFEval that
run here, 5 change, all "repeat the request first"; the echo guard cuts such copies anyway).
No genuine answer of bench/hacks.jsonl changes a verdict. Held-out figures and IFEval are
scored on the text as written, by IFEval's own rules.
"""

import re

LETTER_RUN = re.compile(r"([^\W\d_])\1{2,}", re.IGNORECASE)
WORD_RUN = re.compile(r"\b([^\W\d_]+)(?:[ \t]+\1\b)+", re.IGNORECASE)  # "knock, knock" is not a run
TITLE_FIRST = re.compile(r"[\s*#_]*<<[^<>\n]+>>")  # a line that opens with its title: "<<My Day>>", "## <<My Day>>: ..."
ANGLE_PAIR = re.compile(r"<{2,}|>{2,}")  # what IFEval's title rule looks for: << ... >>


def counted_text(answer):
    """`answer` as the Judger reads it: runs of one letter or word once, and no title markers
    on a line that holds more than its title."""
    answer = WORD_RUN.sub(r"\1", LETTER_RUN.sub(r"\1", answer))
    return "\n".join(line if TITLE_FIRST.match(line) else ANGLE_PAIR.sub("", line) for line in answer.split("\n"))
