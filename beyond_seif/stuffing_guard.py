"""The stuffing guard (beyond_seif.stuffing_guard): the Judger reads a run of one letter or one
word once, and a <<title>> or a P.S. only where it opens its line.

Not SEIF. IFEval's rules count: "the letter k at least 3 times", "the word 'new' at least
twice", "a title in double angular brackets". A Follower paid by those rules learned the
cheapest text that meets them: `I chose kkkk in special.`, a title hidden inside a sentence
or tacked on at the end (`a company named <<<kappe kamika>>`, `...\\n<my title <<Michael>>`),
and a P.S. mark inside a sentence (`... based on P.S.`), paid in full with the markup guard and
the answer gate on (bench/RESULTS.md, "The markup guard against both habits"). A run of one
word (`new new new`) meets a keyword count the same way. With this departure on, the Judger
(rules and LLM alike) reads each Follower answer as `counted_text` gives it:

    a run of one letter, 3 or more    "kkkk" -> "k", "Sooo" -> "So" (English doubles a letter,
                                      it does not triple one)
    a run of one word                 "new new NEW" -> "new" ("very very" -> "very"; not
                                      "knock, knock")
    a title after a line's start      "named <<Michael>>" -> "named Michael"; a line that opens
                                      with its title ("<<My Day>>", "## <<My Day>>: notes")
                                      keeps it
    a P.S. after a line's start       "based on P.S." -> "based on PS"; "P.S. Call me." and
                                      "**P.S.** Call me." keep it

The answer gate and the guards before the Judger still see the answer as written. The price: a
genuine answer that triples a letter ("Brrr") or repeats a word ("bye bye", "La La Land")
counts it once, a title or P.S. written inside a line does not meet its constraint, and a copy
of a request that holds any of these no longer equals it (of GPT-4's 832 rule verdicts on
IFEval that run here, 5 change, all "repeat the request first"; the echo guard cuts such
copies anyway).
No genuine answer of bench/hacks.jsonl changes a verdict. Held-out figures and IFEval are
scored on the text as written, by IFEval's own rules.
"""

import re

from beyond_seif.echo_guard import POSTSCRIPT_MARK

LETTER_RUN = re.compile(r"([^\W\d_])\1{2,}", re.IGNORECASE)
WORD_RUN = re.compile(r"\b([^\W\d_]+)(?:[ \t]+\1\b)+", re.IGNORECASE)  # "knock, knock" is not a run
OPENS = r"[\s*#_]*"  # what may come before a line's first word: spaces, "**", "## "
TITLE_FIRST = re.compile(OPENS + r"<<[^<>\n]+>>")  # "<<My Day>>", "## <<My Day>>: ..."
ANGLE_PAIR = re.compile(r"<{2,}|>{2,}")  # what IFEval's title rule looks for: << ... >>
POSTSCRIPT_FIRST = re.compile(OPENS + POSTSCRIPT_MARK.pattern, re.IGNORECASE)


def _counted_line(line):
    """`line` less the title and P.S. markers that do not open it: "named <<Michael>>" reads
    "named Michael", and "as shown in P.S. below" reads "as shown in PS below"."""
    if not TITLE_FIRST.match(line):
        line = ANGLE_PAIR.sub("", line)
    if not POSTSCRIPT_FIRST.match(line):
        line = POSTSCRIPT_MARK.sub(lambda mark: mark.group().replace(".", ""), line)
    return line


def counted_text(answer):
    """`answer` as the Judger reads it: runs of one letter or word once, and title and P.S.
    markers only where they open a line."""
    answer = WORD_RUN.sub(r"\1", LETTER_RUN.sub(r"\1", answer))
    return "\n".join(_counted_line(line) for line in answer.split("\n"))
