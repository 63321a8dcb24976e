"""map_constraint against sentences as the Instructor writes them.

A constraint sentence becomes an RL reward through the rule it maps to, so a wrong mapping
rewards the wrong behaviour: "should not be more than 100 words" read as "more than 100 words"
teaches the opposite of the constraint. Each row below holds a sentence, the rule it should map
to (None: no IFEval rule says exactly this, so the Judger model decides), answers that satisfy
the sentence and answers that break it, as a person reads it. Whenever a sentence maps, the
rule's verdict must agree with the person on every answer.
"""

import pytest

import ifeval_checks
from beyond_seif.constraint_mapping import map_constraint


def words(n):
    return " ".join(["word"] * n)


def sentences(n):
    return " ".join(f"Sentence number {i} is here." for i in range(1, n + 1))


WORDS = "length_constraints:number_words"
SENTENCES = "length_constraints:number_sentences"
LETTER = "keywords:letter_frequency"
KEYWORDS = "keywords:existence"
FREQUENCY = "keywords:frequency"
FORBIDDEN = "keywords:forbidden_words"
CAPITAL_WORDS = "change_case:capital_word_frequency"
ALL_CAPITALS = "change_case:english_capital"
LOWERCASE = "change_case:english_lowercase"
NO_COMMA = "punctuation:no_comma"
PARAGRAPHS = "length_constraints:number_paragraphs"
BULLETS = "detectable_format:number_bullet_lists"
SECTIONS = "detectable_format:multiple_sections"
HIGHLIGHTS = "detectable_format:number_highlighted_sections"
TITLE = "detectable_format:title"
QUOTATION = "startend:quotation"
JSON = "detectable_format:json_format"
LANGUAGE = "language:response_language"
TWO_RESPONSES = "combination:two_responses"
END = "startend:end_checker"
POSTSCRIPT = "detectable_content:postscript"
PLACEHOLDERS = "detectable_content:number_placeholders"
OPTIONS = "detectable_format:constrained_response"

# (langdetect must read these as English: the two case rules also demand English)
ENGLISH_MIXED = "This is my answer to your question about the history of the city and its people."
ENGLISH_UPPER = ENGLISH_MIXED.upper()
ENGLISH_LOWER = ENGLISH_MIXED.lower()

# (sentence, the rule it maps to or None, answers that satisfy it, answers that break it)
ROWS = [
    # --- word counts: negations and upper limits ----------------------------------------------
    ("Your response should not be more than 100 words.", WORDS, [words(100), words(20)], [words(101)]),
    ("Do not write fewer than 200 words.", WORDS, [words(200), words(250)], [words(199)]),
    ("Answer in fewer than 50 words.", WORDS, [words(49)], [words(50)]),
    ("Use no more than 80 words.", WORDS, [words(80)], [words(81)]),
    ("Your answer must not exceed 60 words.", WORDS, [words(60)], [words(61)]),
    ("Never exceed 30 words.", WORDS, [words(30)], [words(31)]),
    ("Do not go over 150 words.", WORDS, [words(150)], [words(151)]),
    ("Your response should be no longer than 40 words.", WORDS, [words(40)], [words(41)]),
    ("The response cannot exceed 200 words.", WORDS, [words(200)], [words(201)]),
    ("Keep your response under 40 words.", WORDS, [words(39)], [words(40)]),
    ("Your response should be at most 25 words long.", WORDS, [words(25)], [words(26)]),
    ("Write at least 120 words.", WORDS, [words(120)], [words(119)]),
    ("Each sentence must have fewer than 10 words.", None,
     [sentences(4)], ["This single sentence runs on for far more than ten words in a row."]),
    ("No sentence should be longer than 20 words.", None,
     [sentences(6)], ["This one sentence goes on and on for well over twenty words because it never stops to "
                      "take a breath at all."]),
    ("It is not necessary to write more than 100 words.", None, [words(50), words(150)], []),
    ("Do not use commas and write more than 100 words.", None, [words(101)], [words(50), words(101) + ","]),
    ("Keep the title under 5 words.", None, ["<<Rivers>>\n" + words(40)], ["<<A Very Long Title About Rivers>>"]),
    ("Write at least 100 words and use no commas.", None, [words(100)], [words(100) + ", word"]),
    ("Write between 50 and 100 words.", None, [words(75)], [words(30), words(120)]),
    ("Without using commas, write at least 30 words.", None, [words(30)], [words(29), words(30) + ","]),

    # --- sentence counts ------------------------------------------------------------------------
    ("Don't use more than 4 sentences.", SENTENCES, [sentences(4), sentences(1)], [sentences(5)]),
    ("Answer in no more than two sentences.", SENTENCES, [sentences(2)], [sentences(3)]),
    ("Under no circumstances should you use more than 3 sentences.", SENTENCES,
     [sentences(3)], [sentences(4)]),
    ("Your response should contain at least 3 sentences.", SENTENCES, [sentences(3)], [sentences(2)]),
    ("Write exactly 3 sentences.", None, [sentences(3)], [sentences(2), sentences(4)]),
    ("Use at most 2 sentences per paragraph.", None, [sentences(2) + "\n\n" + sentences(2)], [sentences(3)]),

    # --- letter frequency -----------------------------------------------------------------------
    ("The letter 'f' should not appear more than twice.", LETTER,
     ["A friendly fox.", "No such letter."], ["Fifty foxes."]),
    ("Avoid the letter 'e'.", LETTER, ["A cat sat on a mat."], ["The cat sat."]),
    ("Do not use the letter 'z'.", LETTER, ["A calm cat."], ["A Zebra."]),
    ("Do not use any words with the letter 'e'.", None, ["A cat sat."], ["A cat sat here."]),
    ("Use the letter 'z' at least 3 times.", LETTER, ["Zany zebras zigzag."], ["A lazy cat."]),
    ("Words starting with the letter 'b' should appear at least 3 times.", None,
     ["Big blue boats."], ["A tub, a cab, a web."]),
    ("The capital letter 'A' should appear at least twice.", None, ["At Alma's."], ["a banana."]),

    # --- keywords that must appear --------------------------------------------------------------
    ("Include the keywords 'apple' and 'river'.", KEYWORDS,
     ["An apple fell into the river."], ["An apple fell.", "The river ran."]),
    ("Mention the word 'harbor'.", KEYWORDS, ["We walked to the harbor."], ["We walked to the port."]),
    ("Include the word 'risky' at least 4 times and 'rigid' at least 3 times.", None,
     ["risky risky risky risky rigid rigid rigid"], ["risky rigid"]),
    ("Include the word 'Python' with a capital P.", None, ["I like Python."], ["I like python."]),
    ("Include at least one of the words 'cat' or 'dog'.", None, ["A cat."], ["A bird."]),
    ("Include the word 'NASA' in all capital letters.", None, ["NASA flew."], ["nasa flew."]),
    ("Use the word 'ocean' in the first sentence.", None,
     ["The ocean is deep. It is blue."], ["It is deep. The ocean is blue."]),
    ("Include the keyword 'budget' in every paragraph.", None,
     ["The budget grew.\n\nThe budget shrank."], ["The budget grew.\n\nCosts shrank."]),

    # --- keyword frequency ----------------------------------------------------------------------
    ("The word 'freedom' should appear at least 3 times.", FREQUENCY,
     ["freedom, freedom and more freedom"], ["freedom and freedom"]),
    ("Do not use the word 'very' more than twice.", FREQUENCY,
     ["It is very very good.", "It is good."], ["very very very good"]),
    ("Use the word 'data' fewer than 3 times.", FREQUENCY, ["data and data"], ["data, data, data"]),
    ("Use the word 'data' exactly twice.", None, ["data and data"], ["data", "data data data"]),

    # --- forbidden words ------------------------------------------------------------------------
    ("Do not include the words 'very' or 'really'.", FORBIDDEN,
     ["It is quite good."], ["It is very good.", "It is really good."]),
    ("Never use the word 'basically'.", FORBIDDEN, ["In short, yes."], ["Basically, yes."]),
    ("Include the word 'calm', not 'quiet'.", None, ["A calm sea."], ["A quiet sea."]),
    ("Don't forget to include the word 'thanks'.", None, ["Many thanks."], ["Goodbye."]),
    ("Do not use the word 'very' in the title.", None,
     ["<<Good Day>>\nIt was very good."], ["<<A Very Good Day>>\nIt was fine."]),

    # --- words in capitals ----------------------------------------------------------------------
    ("Include at least 3 words in all capital letters.", CAPITAL_WORDS,
     ["THREE LOUD WORDS here."], ["Only TWO LOUD ones."]),
    ("Use fewer than 2 words in ALL CAPS.", CAPITAL_WORDS, ["Only one LOUD word."], ["TWO LOUD words."]),
    ("Do not use more than 3 words in all capital letters.", CAPITAL_WORDS,
     ["ONE TWO THREE words."], ["ONE TWO THREE FOUR words."]),
    ("Use ALL CAPS for all location names.", None,
     ["We flew from PARIS to ROME yesterday and it was lovely."], ["We flew from Paris to Rome yesterday."]),

    # --- whole-response case --------------------------------------------------------------------
    ("Write your entire response in all capital letters.", ALL_CAPITALS, [ENGLISH_UPPER], [ENGLISH_MIXED]),
    ("Write in capital letters only.", ALL_CAPITALS, [ENGLISH_UPPER], [ENGLISH_LOWER]),
    ("Your entire response should be in lowercase letters.", LOWERCASE, [ENGLISH_LOWER], [ENGLISH_MIXED]),
    ("Do not write in all lowercase.", None, [ENGLISH_MIXED], [ENGLISH_LOWER]),
    ("Write in lowercase, except for proper nouns.", None,
     ["we met Anna in Paris."], ["We met Anna in Paris."]),
    ("Write the headings in all caps.", None, ["# RIVERS\nThey flow."], ["# Rivers\nThey flow."]),

    # --- commas ---------------------------------------------------------------------------------
    ("Do not use any commas.", NO_COMMA, ["No commas in sight."], ["Yes, a comma."]),
    ("Avoid commas entirely.", NO_COMMA, ["No commas in sight."], ["Yes, a comma."]),
    ("No commas in the title.", None, ["<<Rivers and Seas>>\nYes, water."], ["<<Rivers, Seas>>\nWater."]),
    ("Use no more than two commas.", None, ["One, two, three."], ["One, two, three, four."]),
    ("Do not use commas or semicolons.", None, ["Plain text."], ["Plain; text."]),

    # --- paragraphs, bullets, sections, highlights ----------------------------------------------
    ("There should be 3 paragraphs, separated by the markdown divider ***.", PARAGRAPHS,
     ["One.\n***\nTwo.\n***\nThree."], ["One.\n***\nTwo."]),
    ("Write exactly 2 paragraphs separated by ***, each under 20 words.", None,
     ["Short one.\n***\nShort two."], ["Short one.\n***\n" + words(30)]),
    ("Your response must contain exactly 3 bullet points.", BULLETS, ["* a\n* b\n* c"], ["* a\n* b"]),
    ("Use exactly 2 markdown bullet points.", BULLETS, ["* a\n* b"], ["* a\n* b\n* c"]),
    ("Do not use bullet points.", BULLETS, ["Plain prose only."], ["* one\n* two", "- one"]),
    ("Use at least 3 bullet points.", None, ["* a\n* b\n* c\n* d"], ["* a\n* b"]),
    ("Each section should have exactly 2 bullet points.", None,
     ["SECTION 1\n* a\n* b\nSECTION 2\n* c\n* d"], ["SECTION 1\n* a\nSECTION 2\n* c\n* d\n* e"]),
    ("Your response must have 2 sections. Mark the beginning of each section with SECTION X.", SECTIONS,
     ["SECTION 1\nIntro.\nSECTION 2\nBody."], ["Intro.\nBody."]),
    ("Highlight at least 2 sections with markdown, i.e. *highlighted section*.", HIGHLIGHTS,
     ["*one* and *two*"], ["*one* only"]),
    ("Highlight 2 key phrases with markdown.", None, ["*one* and *two*"], ["*one*, *two* and *three*"]),

    # --- title, quotation, JSON -----------------------------------------------------------------
    ("Include a title wrapped in double angular brackets, such as <<poem of joy>>.", TITLE,
     ["<<The Sea>>\nWaves again."], ["The Sea\nWaves again."]),
    ("Do not include a title in double angular brackets.", None, ["The Sea\nWaves."], ["<<The Sea>>\nWaves."]),
    ("Wrap your entire response in double quotation marks.", QUOTATION,
     ['"Waves again and again."'], ["Waves again.", '"Waves" again.']),
    ("Your entire output should be in JSON format.", JSON, ['{"answer": 42}'], ["answer: 42"]),
    ("Do not use JSON.", None, ["answer: 42"], ['{"answer": 42}']),
    ("Respond in JSON with the keys 'name' and 'age'.", None, ['{"name": "Ann", "age": 3}'], ['{"city": "Oslo"}']),

    # --- language -------------------------------------------------------------------------------
    ("Respond only in French.", LANGUAGE,
     ["Bonjour, je suis très heureux de vous aider aujourd'hui avec cette question difficile."],
     ["Hello, I am very happy to help you today with this difficult question."]),
    ("Answer in English or French.", None,
     ["Hello, I am very happy to help you today with this difficult question."],
     ["Hallo, ich freue mich sehr, Ihnen heute bei dieser schwierigen Frage zu helfen."]),

    # --- special forms --------------------------------------------------------------------------
    ("Give two different responses separated by six asterisks: ******.", TWO_RESPONSES,
     ["Cats are calm.\n******\nDogs are loyal."], ["Cats are calm.", "Cats.\n******\nCats."]),
    ("Answer with one of the following options: 'My answer is yes.', 'My answer is no.', "
     "'My answer is maybe.'", OPTIONS, ["My answer is no."], ["Perhaps."]),

    # --- endings and postscripts ----------------------------------------------------------------
    ("End your response with the exact phrase 'Is there anything else I can help with?'", END,
     ["Done. Is there anything else I can help with?"], ["Is there anything else I can help with? Bye."]),
    ("Finish your response with 'See you soon!'", END, ["Bye for now. See you soon!"], ["See you soon! Bye."]),
    ("Finish your response with this exact phrase 'Any other questions?'. No other words should follow "
     "this phrase.", END, ["That is all. Any other questions?"], ["Any other questions? None."]),
    ("End your response with 'THE END' in capital letters.", None, ["Goodbye. THE END"], ["Goodbye. The End"]),
    ("End every paragraph with 'Amen.'", None, ["Praise.  Amen.\n\nThanks. Amen."], ["Praise.\n\nThanks. Amen."]),
    ("End your response with a question, such as 'Any thoughts?'", None,
     ["Here it is. What do you think?"], ["Here it is."]),
    ("Start and end your response with 'Hello'.", None, ["Hello there, and Hello"], ["Hi there. Hello"]),
    ("Do not end your response with 'Thanks'.", None, ["Bye."], ["Bye. Thanks"]),
    ("At the end of your response, add a postscript starting with P.S.", POSTSCRIPT,
     ["See you soon.\nP.S. Bring snacks."], ["See you soon."]),
    ("Do not add a P.S.", None, ["See you soon."], ["See you soon.\nP.S. Bring snacks."]),
    ("P.S. Do not use commas.", None, ["Hi there.\nP.S. See you"], ["Hi, there.\nP.S. See you"]),
    ("Avoid commas in the postscript.", None, ["Hi, there.\nP.S. See you"], ["Hi.\nP.S. See, you"]),
    ("Add a P.S. that thanks the reader.", None,
     ["Bye.\nP.S. Thank you for reading."], ["Bye.\nP.S. Bring snacks."]),

    # --- placeholders ---------------------------------------------------------------------------
    ("Include at least 2 placeholders in square brackets, such as [name].", PLACEHOLDERS,
     ["Dear [name], see you at [place]."], ["Dear [name], see you."]),
    ("Do not include fewer than 3 placeholders in square brackets.", PLACEHOLDERS,
     ["[a] [b] [c]"], ["[a] [b]"]),

    # --- two requirements in one sentence -------------------------------------------------------
    ("Write in all lowercase and do not use any commas.", None, [ENGLISH_LOWER], ["yes, a comma here."]),
    ("Answer in fewer than 100 words, and make it funny.", None, ["A duck walks into a bar."], [words(20)]),
    ("Use at most 50 words; end with 'Done.'", None, ["All good. Done."], ["All good."]),
    ("Answer in French, then translate your answer into English.", None,
     ["Bonjour tout le monde.\nHello everyone."], ["Bonjour tout le monde."]),
]


@pytest.mark.parametrize("sentence, instruction_id, satisfying, breaking", ROWS, ids=[row[0] for row in ROWS])
def test_a_mapped_sentence_gets_the_verdict_a_reader_would_give(sentence, instruction_id, satisfying, breaking):
    mapped = map_constraint(sentence)
    assert (mapped and mapped[0]) == instruction_id, mapped
    if mapped is None:
        return
    instruction_id, kwargs = mapped
    for answer in satisfying:
        assert ifeval_checks.check(instruction_id, kwargs, answer), (kwargs, answer)
    for answer in breaking:
        assert not ifeval_checks.check(instruction_id, kwargs, answer), (kwargs, answer)


def test_the_table_covers_both_outcomes():
    mapped = [row for row in ROWS if row[1] is not None]
    assert len(ROWS) >= 60 and len(mapped) >= 40
