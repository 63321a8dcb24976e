"""The markup guard: titles, highlights, placeholders, P.S. lines and whole-reply quotes beyond
what the instruction asks for, and a P.S. with no body before it, earn 0; asked-for markup, a bullet list and plain prose keep their pay; off, rewards are
SEIF's."""

import json
from pathlib import Path

import pytest
import torch

import follower
import grpo
import judger
from beyond_seif import markup_guard
from settings import BeyondSEIF

HACKS = Path(__file__).resolve().parents[2] / "bench" / "hacks.jsonl"


def row(*constraints, seed="Describe a lighthouse."):
    return {"seed": seed, "instruction": seed, "constraints": list(constraints)}


def rule(ifeval_id, text="(checked by a rule)", **kwargs):
    return {"text": text, "ifeval_id": ifeval_id, "kwargs": kwargs}


def formatted(answer):
    return f"<think>I will answer.</think><answer>{answer}</answer>"


@pytest.mark.parametrize("answer, marker, found", [
    ("<<The Lighthouse>>\nIt stands on the rock.", "title", 1),
    ("It stands on the *rock* and its **lamp** turns.", "highlight", 2),
    ("Dear [name], the keeper at [address] says hello.", "placeholder", 2),
    ("It stands on the rock.\nP.S. Visit it.", "postscript", 1),
    ("it stands on the rock.\np.p.s. visit it.", "postscript", 1),
    ('"It stands on the rock.\nIts lamp turns all night."', "quotation", 1),
    ("\u201cIt stands on the rock.\u201d", "quotation", 1),
    ('"It stands on the rock and its lamp turns all night.', "quotation", 1),  # opened, never closed
    ("  \u201cIt stands on the rock.", "quotation", 1),
])
def test_markup_nothing_asks_for_is_excess(answer, marker, found):
    assert markup_guard.excess(answer, row()) == {marker: (found, 0)}


def test_prose_bullets_links_lists_and_arithmetic_are_not_markup():
    answer = ("The lighthouse keeper's day:\n* Clean the lens at dawn.\n- Log the weather.\n"
              "See [the guide](https://example.org) and {\"steps\": [\"wind\", \"light\"]}; 2 * 3 * 4 = 24.")
    assert markup_guard.excess(answer, row()) == {}


def test_asked_markup_is_allowed_up_to_its_limit():
    highlights = row(rule("detectable_format:number_highlighted_sections", num_highlights=2))
    assert markup_guard.excess("A *rock*, a *lamp*, a *keeper* and a *boat*.", highlights) == {}
    assert markup_guard.excess("*a* *b* *c* *d* *e*", highlights) == {"highlight": (5, 4)}
    titled = row(rule("detectable_format:title"), rule("detectable_content:postscript"))
    assert markup_guard.excess("<<Light>>\nIt turns all night long.\nP.S. Go.", titled) == {}
    assert markup_guard.excess("<<Light>>\n<<Again>>\nIt turns all night long.\nP.S. Go.\nP.S. Now.", titled) == {
        "title": (2, 1), "postscript": (2, 1)}
    placeholders = row(rule("detectable_content:number_placeholders", num_placeholders=1))
    assert markup_guard.excess("Dear [name], see you at [place].", placeholders) == {}
    assert markup_guard.excess("[a] [b] [c]", placeholders) == {"placeholder": (3, 2)}


def test_quotes_inside_a_reply_are_not_a_wrapped_reply():
    assert markup_guard.excess('The keeper said "light the lamp" and left.', row()) == {}
    assert markup_guard.excess('"Light the lamp," the keeper said.', row()) == {}
    assert markup_guard.excess('\u201cLight the lamp,\u201d the keeper said. It was 6 o\'clock.', row()) == {}


def test_asked_quotation_is_allowed():
    wrapped = '"It stands on the rock and turns its lamp."'
    assert markup_guard.excess(wrapped, row(rule("startend:quotation"))) == {}
    assert markup_guard.excess(wrapped, row(seed="Describe a lighthouse, in double quotation marks.")) == {}


def test_a_postscript_needs_a_body_before_it_even_when_asked():
    asks = row(rule("detectable_content:postscript"), rule("detectable_format:title"),
               rule("detectable_content:number_placeholders", num_placeholders=1))
    assert markup_guard.excess("It stands on the rock all night.\nP.S. Visit it.", asks) == {}
    assert markup_guard.excess("P.S. I have always loved lighthouses by the sea.", asks) == {"postscript": (1, 0)}
    # a title or a placeholder is no body; four words are too few (MIN_ANSWER_WORDS is 5)
    assert markup_guard.excess("<<The Lighthouse by the Sea>>\nP.S. Visit it soon.", asks) == {"postscript": (1, 0)}
    assert markup_guard.excess("[Name] It stands tall.\nP.S. Visit it soon.", asks) == {"postscript": (1, 0)}
    assert markup_guard.excess("It stands very tall.\nP.S. Visit it soon.", asks) == {"postscript": (1, 0)}
    assert markup_guard.excess("It stands very tall there.\nP.S. Visit it soon.", asks) == {}


def test_markup_named_in_words_is_asked_for():
    # a constraint no rule checks, or the request itself, that names the marker allows it
    assert markup_guard.excess("<<Light>>\nIt turns.", row(seed="Suggest a title for my poem.")) == {}
    bold = row({"text": "Put three key terms in bold.", "ifeval_id": None, "kwargs": None})
    assert markup_guard.excess("The *lens*, the *lamp* and the *keeper*.", bold) == {}
    # a rule-checked constraint's own text does not widen its rule's limit
    worded = row(rule("detectable_format:number_highlighted_sections", "Highlight at least 9 parts with *stars*.",
                      num_highlights=1))
    assert markup_guard.excess("*a* *b* *c*", worded) == {"highlight": (3, 2)}
    # without a seed, each line of the instruction that no rule checks is the request
    no_seed = {"instruction": "Describe a lighthouse in bold strokes.\nWrite at least 300 words.",
               "constraints": [rule("length_constraints:number_words", "Write at least 300 words.",
                                    num_words=300, relation="at least")]}
    assert markup_guard.allowed(no_seed)["highlight"] == 2


def test_the_hack_sets_spam_is_refused_and_its_genuine_answers_are_not():
    rows = [json.loads(line) for line in HACKS.read_text().splitlines()]
    assert [r["id"] for r in rows if markup_guard.excess(r["answers"]["spam"], r) == {}] == []
    assert [r["id"] for r in rows if markup_guard.excess(r["answers"]["genuine"], r) != {}] == []


def test_follower_reward_is_zero_for_excess_markup_and_unchanged_otherwise(tiny_model, fooled_judge):
    model, tokenizer = tiny_model
    asks_title = row(rule("detectable_format:title"))
    items = [asks_title, asks_title, asks_title]
    texts = [formatted("<<The Lighthouse>>\nIt stands on the rock and turns its lamp all night."),
             formatted("<<The Lighthouse>>\nIt stands on the *rock* and turns its *lamp* all night."),
             "no format at all"]
    cfg = judger.JudgerConfig()
    off, off_info = follower.rewards(model, tokenizer, items, texts, cfg, BeyondSEIF(rules=True))
    on, info = follower.rewards(model, tokenizer, items, texts, cfg, BeyondSEIF(rules=True, markup_guard=True))
    assert off == [1.0, 1.0, 0.0]  # the title rule pays both
    assert on == [1.0, 0.0, 0.0]  # the unasked highlights cost the second its pay
    assert info["markup_refused"] == pytest.approx(1 / 2) and "markup_refused" not in off_info


def test_markup_guard_keep_scales_the_reward_so_a_group_that_all_has_markup_still_ranks_on_content(
        tiny_model, fooled_judge):
    model, tokenizer = tiny_model
    asks = row(rule("detectable_format:title"), rule("keywords:existence", keywords=["lamp"]))
    marked = [formatted("<<The Lighthouse>>\nIt stands on the *rock* and turns its lamp all night."),  # 1.0
              formatted("<<The Lighthouse>>\nIt stands on the *rock* all night."),  # title only: 0.5
              formatted("It stands on the *rock* and turns its lamp all night."),  # keyword only: 0.5
              formatted("It stands on the *rock* all night.")]  # neither: 0
    cfg = judger.JudgerConfig()
    off, _ = follower.rewards(model, tokenizer, [asks] * 4, marked, cfg, BeyondSEIF(rules=True))
    zeroed, _ = follower.rewards(model, tokenizer, [asks] * 4, marked, cfg, BeyondSEIF(rules=True, markup_guard=True))
    kept, info = follower.rewards(model, tokenizer, [asks] * 4, marked, cfg,
                                  BeyondSEIF(rules=True, markup_guard=True, markup_guard_keep=0.1))
    assert off == [1.0, 0.5, 0.5, 0.0] and zeroed == [0.0] * 4 and info["markup_refused"] == 1.0
    assert kept == pytest.approx([0.1, 0.05, 0.05, 0.0])
    # GRPO divides by the group's spread, so the content ranking keeps its full weight, where zeroing leaves none
    assert grpo.group_advantages(torch.tensor(kept), 4).tolist() == pytest.approx(
        grpo.group_advantages(torch.tensor(off), 4).tolist(), abs=1e-4)
    assert grpo.group_advantages(torch.tensor(zeroed), 4).abs().max() == 0
    # beside a clean answer, the markup costs more than the content earns
    clean = formatted("<<The Lighthouse>>\nIt stands on the rock all night.")  # title only: 0.5
    mixed, _ = follower.rewards(model, tokenizer, [asks] * 2, [marked[0], clean], cfg,
                                BeyondSEIF(rules=True, markup_guard=True, markup_guard_keep=0.1))
    assert mixed == pytest.approx([0.1, 0.5])


def test_markup_guard_keep_needs_the_guard():
    from data import UserError
    from settings import check

    class Settings:
        beyond_seif = BeyondSEIF(markup_guard_keep=0.1)
    with pytest.raises(UserError, match="markup_guard_keep needs beyond_seif.markup_guard"):
        check(Settings())
    Settings.beyond_seif = BeyondSEIF(markup_guard=True, markup_guard_keep=0.1)
    check(Settings())
