"""The echo guard (beyond_seif.echo_guard): an answer must answer, not repeat its instruction.

Not SEIF. A reply that repeats "End your reply with the phrase 'That is all.'", or that only
says "That is all.", follows no instruction, though a rule (or a judge that says yes to
everything, as SmolLM2's does) would pass it. With this departure on, the Follower's reward
(`guard`):

    1. judges each answer without verbatim copies of its instruction's lines and of its
       constraints' formatting examples (`guarded_answer`);
    2. gives 0 to a non-answer by rule: too short, placeholders only, or a restated request
       (`is_non_answer`), and to an answer that talks about its request instead of answering it
       ("Here is a description in lowercase letters with no commas, as you asked.",
       `restates_request`);
    3. gives 0 to an answer the Judger clearly says does not respond to its request (one more
       LLM verdict per answer, `addresses_request`).
"""

import re

import judger
from beyond_seif.constraint_mapping import _QUOTED

QUOTES = "[\"'“”‘’]"  # a copied sentence may swap straight and curly quotes
# Words in any script, with "don't" one word and quotes around one not part of it. Chinese and
# Japanese put no spaces between words, so each of their characters counts as one.
HAN_KANA = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
WORD = re.compile(rf"[{HAN_KANA}]|[^\W\d_{HAN_KANA}]+(?:'[^\W\d_{HAN_KANA}]+)*")
MIN_ANSWER_WORDS = 5
# the formatting examples constraints give: "such as <<poem of joy>>", "[address]", "*highlighted section*"
EXAMPLE = re.compile(r"<<[^<>\n]+>>|\[[^\[\]\n]+\]|\*[^*\s][^*\n]*\*")
# "[name]", "[Date of event]": a slot for words, not words; not "[a link](url)" or '["a", "b"]'
PLACEHOLDER = re.compile(r"\[[^\W\d_][\w ,.'’-]*\](?!\()")
POSTSCRIPT_MARK = re.compile(r"\bP\.\s?(?:P\.\s?)?S\b\.?", re.IGNORECASE)  # "P.S.": a marker, not words


def _stem(word):
    """`word` without a plural "s", so that "commas" and "comma" are one form word."""
    return word[:-1] if len(word) > 4 and word.endswith("s") else word


# Words that describe a reply's form rather than its subject.
FORM_WORDS = {_stem(word) for word in """
    lowercase uppercase capital capitals capitalized letters comma commas punctuation bullet bullets
    point points paragraph paragraphs sentence sentences word words section sections highlight
    highlights highlighted title titles postscript placeholder placeholders json quotation quotes
    markdown format formatted line lines phrase symbol symbols asterisk asterisks bracket brackets
    divider dividers separator option options caps character characters keyword keywords""".split()}
# "as you asked", "you wanted", "your request", "this answer": a sentence about the exchange, not the subject
REFERS_TO_REQUEST = re.compile(r"\bas (?:you )?(?:asked|requested|instructed|specified)\b|\byou (?:asked|requested|wanted)\b"
                               r"|\byou (?:told|gave) me\b|\byour (?:request|instructions?|prompt)\b"
                               r"|\bthis (?:answer|response|reply)\b", re.IGNORECASE)
SENTENCE_BREAK = re.compile(r"(?<=[.!?:])\s+|\n+")
MIN_WORDS_LEFT = 20  # what an answer that talks about its request must still say besides

# Judged like a constraint: one more LLM verdict per answer.
ADDRESSES_REQUEST = ("The answer responds to this request, rather than repeating it or talking "
                     "about something else: {request}")


def strip_echoes(answer, sentences):
    """`answer` with every verbatim copy of one of `sentences` cut out, ignoring case, spacing,
    quote style and the closing punctuation. Without this, "Use the word "garden" in your
    reply." answered with exactly that sentence passes the keyword rule."""
    for sentence in sentences:
        words = sentence.strip().rstrip(".!?;:").split()
        if words:
            pattern = r"\s+".join(re.sub(QUOTES, QUOTES, re.escape(word)) for word in words)
            answer = re.sub(pattern + r"[.!?;:]?", "", answer, flags=re.IGNORECASE)
    return answer.strip()


def strip_examples(answer, constraint_texts):
    """`answer` without copies of the formatting examples its constraints give: a title copied
    from "such as <<my title>>", or "[address]" from "such as [address]", is the constraint's
    example, not the reply's own title or placeholder. A highlight example that names the markup
    ("*highlighted section*") names no subject, so a highlight that holds it ("*highlighted
    section of my day*") goes too; one that holds a subject example ("*Banana Peel's*" from
    "i.e. *banana peel*") or its title's words ("<<A Poem of Joy>>") may be the reply's own."""
    for example in {found for text in constraint_texts for found in EXAMPLE.findall(text)}:
        answer = re.sub(re.escape(example), "", answer, flags=re.IGNORECASE)
        if example.startswith("*") and "highlight" in example.lower():
            label = re.escape(example.strip("*").strip())
            answer = re.sub(rf"\*[^*\n]*{label}[^*\n]*\*", "", answer, flags=re.IGNORECASE)
    # "[[address]]" less "[address]" leaves "[]", which a placeholder rule would count
    return re.sub(r"\[\s*\]|<<\s*>>", "", answer).strip()


def guarded_answer(answer, row):
    """What the echo guard leaves of `answer` to judge: no verbatim copy of a line of the row's
    instruction, and no copy of a formatting example from one of its constraints."""
    answer = strip_echoes(answer, row["instruction"].split("\n"))
    return strip_examples(answer, [constraint["text"] for constraint in row["constraints"]])


def is_non_answer(answer, instruction):
    """A rule: `answer`, once copies of the instruction's lines are cut out, has under
    MIN_ANSWER_WORDS words outside square-bracket placeholders and "P.S." markers, or >= 80% of
    them are the instruction's own (a restated request such as "Sure, use exactly 4 bullet
    points and include the word 'weather'."). A reply of placeholders ("Dear [name], [address]
    [date]") fills slots and says nothing; "p.s. thoughts outside p.s" writes no poem. It holds
    when the judge model says yes to everything, as SmolLM2 does. The price: a correct reply of
    under 5 words, or one made of the request's words ("Repeat the word 'yes' 10 times"), earns 0."""
    text = POSTSCRIPT_MARK.sub(" ", PLACEHOLDER.sub(" ", strip_echoes(answer, instruction.split("\n"))))
    words = WORD.findall(text.lower())
    if len(words) < MIN_ANSWER_WORDS:
        return True
    return _mostly_from(words, set(WORD.findall(instruction.lower())))


def _mostly_from(words, known):
    """At least 80% of `words` are in `known`: a text made of its request's own words."""
    return sum(word in known for word in words) / len(words) >= 0.8


def _stems(text):
    return {_stem(word) for word in WORD.findall(text.lower())}


def request_text(row):
    """`row`'s request: its seed, or without one the instruction's lines that are not constraints."""
    texts = {constraint["text"].strip() for constraint in row.get("constraints") or []}
    return row.get("seed") or "\n".join(line for line in row["instruction"].split("\n") if line.strip() not in texts)


def form_words(row):
    """The FORM_WORDS that `row`'s constraints use and its request does not: "lowercase" and
    "letters" in "Write in lowercase letters." Quoted words and a rule's own arguments ("Include
    the word 'letters'") are what the answer must say, so they do not count; nor does a word the
    request itself uses ("Write a letter to...")."""
    constraints = row.get("constraints") or []
    texts = {constraint["text"].strip() for constraint in constraints}
    request = request_text(row)
    arguments = " ".join(str(value) for constraint in constraints for value in (constraint.get("kwargs") or {}).values())
    used = set().union(*(_stems(re.sub(_QUOTED, " ", text)) for text in texts)) if texts else set()
    return (used & FORM_WORDS) - _stems(request) - _stems(arguments)


def _repeats(sentence, words):
    """`sentence` says its request again in other words ("Here is a short story about a lost cat
    finding its way home."): at least 4 words, >= 80% of them the request's."""
    found = WORD.findall(sentence.lower())
    return len(found) >= 4 and _mostly_from(found, words)


# The verbs of making or handing over the reply itself: "I want to create a poem about...",
# "I will write a toast...", "I'll be happy to share a story about...", "I will introduce..."
TASK_VERBS = set("""
    create creates creating created write writes writing wrote written compose composes composing composed
    draft drafts drafting drafted describe describes describing described design designs designing designed
    craft crafts crafting crafted make makes making made produce produces producing produced
    provide provides providing provided share shares sharing shared present presents presenting presented
    introduce introduces introducing introduced tell tells telling told""".split())
SELF = {"i", "i'll", "i've", "i'm", "i'd", "i’ll", "i’ve", "i’m", "i’d"}  # the answerer, with "I'll" one word
VERB_REACH = 4  # how many words after "I" its verb may come: "I'll be happy to share", "I have written"


def _plans_it(sentence, words):
    """`sentence` is the answerer saying what it makes instead of making it ("I want to create a
    product description for a handmade ceramic mug.", "At last I have written a story about a
    robot that learns to paint."): "I" (or "I'll", "I've", ...) among its first 3 words, a verb
    of making or handing over (TASK_VERBS) at most VERB_REACH words after it, and at least 2 of
    the request's words of 4 letters or more. A Follower trained at a high learning rate wrote
    such sentences and nothing else, and a later one paid in full for "I'll be happy to share a
    story about a washing machine that learns to paint." (bench/RESULTS.md, "Does the loop
    learn?")."""
    found = WORD.findall(sentence.lower())
    shared = {word for word in found if len(word) >= 4} & words
    return len(shared) >= 2 and any(
        word in SELF and TASK_VERBS & set(found[at + 1 : at + 1 + VERB_REACH]) for at, word in enumerate(found[:3]))


def restates_request(answer, row):
    """A rule: `answer` talks about its request instead of answering it, as in "Here is a
    description of a lighthouse in lowercase letters with no commas, just as you asked." Its
    sentences that refer to the request ("as you asked", "you requested"), name a form word of
    its constraints (`form_words`) or say the request again in other words ("Here is a short
    story about a lost cat finding its way home.", `_repeats`) or say what the answerer will make
    ("I want to create a poem about the sea.", `_plans_it`) are set aside, with copies of the
    instruction's lines; what is left must say something: at least MIN_ANSWER_WORDS words, and
    MIN_WORDS_LEFT when the answer names two form words or refers to the request. A genuine
    answer after a preamble ("Here is the poem in lowercase letters, as you asked:") keeps its
    credit. It holds when the judge says yes to everything. The price: a short answer (under 20
    words) that also describes its own form twice earns 0, and so does one whose every sentence
    says the answerer made the request's thing ("I made bread with my grandmother today.")."""
    form, request = form_words(row), set(WORD.findall(request_text(row).lower()))
    answer = strip_echoes(answer, row["instruction"].split("\n"))
    kept = [sentence for sentence in SENTENCE_BREAK.split(answer)
            if not (REFERS_TO_REQUEST.search(sentence) or _stems(sentence) & form
                    or _repeats(sentence, request) or _plans_it(sentence, request))]
    left = WORD.findall(POSTSCRIPT_MARK.sub(" ", PLACEHOLDER.sub(" ", " ".join(kept))))
    talks_about_it = len(_stems(answer) & form) >= 2 or REFERS_TO_REQUEST.search(answer)
    return len(left) < (MIN_WORDS_LEFT if talks_about_it else MIN_ANSWER_WORDS)


def ruled_out(answer, row):
    """The echo guard's rules together: `answer` is a non-answer or talks about its request."""
    return is_non_answer(answer, row["instruction"]) or restates_request(answer, row)


def addresses_request(model, tokenizer, answer_request_pairs, judger_cfg, departures):
    """0/1 for each (answer, request): does the answer respond to the request? (LLM, batched)

    Only a clear "no" ([[0]], or P([[1]]) <= 0.5 with the score judge) counts as 0. A judge reply
    with no verdict at all says nothing about the answer, and a veto on it would zero real
    answers: Qwen2.5-Coder-0.5B in generate mode leaves about a quarter of its replies without one."""
    verdicts = [0.0] * len(answer_request_pairs)
    asked = [(i, answer, ADDRESSES_REQUEST.format(request=request))
             for i, (answer, request) in enumerate(answer_request_pairs) if answer.strip()]
    if asked:
        results = judger.llm_verdicts(model, tokenizer, [(answer, text) for _, answer, text in asked], judger_cfg,
                                      departures, missing=1.0)
        for (i, _, _), verdict in zip(asked, results):
            verdicts[i] = 1.0 if verdict > 0.5 else 0.0
    return verdicts


def guard(helper, tokenizer, items, answers, answered, judger_cfg, departures):
    """The Follower's answers after the guard, and the indices still to be judged: `answers[i]`
    for i in `answered` is replaced by its guarded text, and non-answers and answers judged off
    the request leave `answered` (so they get 0)."""
    answers = list(answers)
    for i in answered:
        answers[i] = guarded_answer(answers[i], items[i])
    answered = [i for i in answered if not ruled_out(answers[i], items[i])]
    on_topic = addresses_request(
        helper, tokenizer, [(answers[i], items[i].get("seed", items[i]["instruction"])) for i in answered],
        judger_cfg, departures)
    return answers, [i for i, verdict in zip(answered, on_topic) if verdict]
