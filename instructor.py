"""The Instructor: turns a simple seed instruction into a harder one by ADDING constraints.

It never rewrites the seed. The evolved instruction is the seed, a newline, then the
constraints one per line. Each sample uses one of two prompt modes (50/50):

    open-ended  5 atomic constraints drawn from a broad taxonomy of constraint kinds
    verifiable  exactly 3 constraints, each from a different IFEval-like family A-E

Two departures plug in here, off by default (settings.BeyondSEIF): `demo_prompt`, a short
verifiable prompt after worked examples for the CPU demo's 135M model, and `rules`, which maps
verifiable constraints to IFEval rules so that the Judger checks them by code.

Its reward (SEIF, exact):
    0                        if the reply fails the format gate, its <answer> is not a JSON
                             object/list of constraint strings, or the Filter (shown the seed
                             and the constraints) rejects the set
    0                        if the frozen helper's answer is empty (nothing to judge)
    1 - followed / n         otherwise, where the frozen helper answers the evolved instruction
                             ONCE (a plain user turn, no system prompt) and the Judger checks
                             each of the n constraints
So it is paid for valid instructions that the current model fails. An answer cut off by the
token budget is judged as far as it got; one cut off before it says anything (still inside
<think>) is empty.

Reads: seed instructions. Writes: the trained Instructor (train), or this round's evolved
instructions as JSONL (generate): seed, constraints, mode, round. Run alone (cli.py):
    python instructor.py train --out runs/x/instructor [--preset demo]
    python instructor.py generate --model runs/x/instructor --out runs/x/instructions.jsonl
"""

import json
import random
from dataclasses import dataclass

import filter as conflict_filter  # `filter` is also a Python builtin
import grpo
import judger
import reply_format
import rollout
import training
from grpo import GRPOConfig


@dataclass
class InstructorConfig:
    verifiable_fraction: float = 0.5  # SEIF: each sample is open-ended or verifiable, 50/50
    generate_temperature: float = 0.7  # SEIF: sampling temperature for the round's instructions
    answer_max_new_tokens: int = 1024  # the helper's one answer inside the reward


OPEN_ENDED = """Here is a simple instruction:

{seed}

Make it harder to follow by adding exactly 5 new constraints to it. Do not change or repeat \
the instruction itself. Each constraint must be atomic (it asks for one thing), must be checkable \
by reading the reply, and must not contradict the instruction or the other constraints. \
Draw them from different kinds, for example: words that must or must not appear, counts of \
words, sentences or paragraphs, tone, style, intended audience, the author's voice, a required \
format or layout, grammar or spelling rules, playing a role, using an example, or something the \
reply must avoid.

Think first inside <think> </think>. Then give only a JSON object inside <answer> </answer>, \
with keys "c1" to "c5" and one constraint sentence as each value:
<think> ... </think><answer>{{"c1": "...", "c2": "...", "c3": "...", "c4": "...", "c5": "..."}}</answer>"""

VERIFIABLE = """Here is a simple instruction:

{seed}

Make it harder to follow by adding exactly 3 new constraints that a program could check. \
Take each one from a DIFFERENT family below, and write each as one full sentence.
A. Words: include given keywords; use a word at least N times; never use given words; use a \
letter at least N times; use at least N words in ALL CAPITALS.
B. Structure: exactly N sentences, paragraphs separated by ***, bullet points, sections \
marked "SECTION X", a paragraph that starts with a given word, a word count limit.
C. Formatting: highlight N parts with *asterisks*, a title in <<double angle brackets>>, \
wrap the whole reply in double quotes, reply only in JSON.
D. Language and case: reply in a given language, all capital letters, all lowercase \
letters, no commas at all.
E. Special patterns: repeat the request word for word before answering, end with an exact \
given phrase, give two replies separated by ******, add a postscript starting with P.S., \
include N placeholders in square brackets like [name].
Never combine these, because they cannot all hold: JSON with bullets or sections; a paragraph \
count with a sentence count or a paragraph's first word; a language with all capitals or all \
lowercase; two wrappers (quotes, JSON, a title around everything); two replies or repeating the \
request with a strict layout; no commas with keywords that contain commas; a low word limit \
with many paragraphs, sections or bullets.

Think first inside <think> </think>. Then give only a JSON object inside <answer> </answer>, \
with keys "c1" to "c3" and one constraint sentence as each value:
<think> ... </think><answer>{{"c1": "...", "c2": "...", "c3": "..."}}</answer>"""

MODES = {"open-ended": (OPEN_ENDED, 5), "verifiable": (VERIFIABLE, 3)}  # prompt, constraint count

# -----------------------------------------------------------------------------
# Parsing and building instructions


def parse_constraints(text, departures=None):
    """The constraint strings in a reply, or None if it fails the format gate or the JSON check.

    The answer must be a JSON object whose values are strings ({"c1": "...", ...}), or a JSON
    list of strings. Counting and length limits are the Filter's job.
    """
    if departures and departures.lenient_instructor:
        from beyond_seif import demo_prompt
        answer = demo_prompt.first_json_object(text)
    else:
        answer = reply_format.extract_answer(text)
    if answer is None:
        return None
    try:
        parsed = json.loads(answer)
    except json.JSONDecodeError:
        return None
    values = list(parsed.values()) if isinstance(parsed, dict) else parsed
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return None
    return [value.strip() for value in values]


def constraint_dicts(texts, mode, seed, departures=None):
    """Constraint strings -> dicts ({"text": ...}); with the `rules` departure, verifiable ones
    carry an IFEval id and kwargs when a rule means exactly what they say."""
    constraints = [{"text": text} for text in texts]
    if departures and departures.rules:
        from beyond_seif import rules
        constraints = rules.map_constraints(constraints, mode, seed)
    return constraints


def evolved_instruction(seed, constraints):
    """The seed, a newline, then the constraints one per line (SEIF)."""
    return seed + "\n" + "\n".join(c["text"] for c in constraints)


def instruction_row(round_index, mode, seed, constraints, expected_count):
    """One row of a round's instructions file, as the Follower trains on it."""
    return {"round": round_index, "mode": mode, "seed": seed, "constraints": constraints,
            "expected_count": expected_count, "instruction": evolved_instruction(seed, constraints)}


def prompt_messages(seed, mode, rng, departures=None):
    """The chat the Instructor answers for one seed: SEIF's system prompt and the mode's prompt;
    with the `demo_prompt` departure, verifiable mode's is the demo's, after worked examples."""
    if mode == "verifiable" and departures and departures.demo_prompt:
        from beyond_seif import demo_prompt
        return demo_prompt.short_verifiable_messages(seed, rng)
    return reply_format.messages(MODES[mode][0].format(seed=seed))


def training_items(seeds, cfg, rng, departures=None):
    """One grpo.train item per seed, each with its prompt mode drawn (SEIF: 50/50)."""
    items = []
    for seed in seeds:
        mode = "verifiable" if rng.random() < cfg.verifiable_fraction else "open-ended"
        items.append({"seed": seed, "mode": mode, "expected_count": MODES[mode][1],
                      "messages": prompt_messages(seed, mode, rng, departures)})
    return items


# -----------------------------------------------------------------------------
# The reward


def rewards(helper, tokenizer, items, texts, cfg, judger_cfg, filter_cfg, departures=None):
    """Instructor rewards for one batch, as grpo.train expects: (rewards, info)."""
    parsed = [parse_constraints(text, departures) for text in texts]
    candidates = [i for i, constraint_texts in enumerate(parsed) if constraint_texts is not None]
    sets = [constraint_dicts(parsed[i], items[i]["mode"], items[i]["seed"], departures) for i in candidates]
    keep, _ = conflict_filter.filter_sets(helper, tokenizer, sets, filter_cfg, departures,
                                          [items[i]["expected_count"] for i in candidates],
                                          [items[i]["seed"] for i in candidates])
    valid = [(i, constraints) for i, constraints, kept in zip(candidates, sets, keep) if kept]

    # The frozen helper answers each valid evolved instruction ONCE, sampled, as a plain user
    # turn with no system prompt (as SEIF's reward code does).
    answers = []
    if valid:
        chats = [[{"role": "user", "content": evolved_instruction(items[i]["seed"], constraints)}]
                 for i, constraints in valid]
        answers = [reply_format.helper_answer(text) for text in rollout.generate(
            helper, tokenizer, chats, max_new_tokens=cfg.answer_max_new_tokens, desc="helper answers").texts]
    # An empty answer says nothing about how hard the constraints are: every verdict on it would
    # be 0 and pay the maximum 1 - 0. SEIF gives it 0, and so do we.
    answered = [(index, answer) for index, answer in enumerate(answers) if answer]
    fractions, _ = judger.followed_fractions(
        helper, tokenizer, [(answer, valid[index][1]) for index, answer in answered], judger_cfg, departures,
        [items[valid[index][0]]["seed"] for index, _ in answered])
    result = [0.0] * len(texts)
    for (index, _), followed in zip(answered, fractions):
        result[valid[index][0]] = 1.0 - followed
    info = {"format_pass": len(candidates) / len(texts), "filter_pass": len(valid) / len(texts),
            "empty_answers": (len(valid) - len(answered)) / len(valid) if valid else 0.0}
    if departures and departures.rules:
        from beyond_seif import rules
        info["mapped_fraction"] = rules.mapping_report([c for _, cs in valid for c in cs])["mapped_fraction"]
    return result, info


# -----------------------------------------------------------------------------
# Generating the round's instructions


def generate(instructor, tokenizer, seeds, round_index, cfg, rng, max_new_tokens=512, batch_size=64,
             departures=None):
    """Sample one evolved instruction per seed (temperature 0.7).

    Returns (rows, counts): rows that parse and have exactly the asked number of constraints
    (SEIF), and how many samples were dropped for each reason.
    """
    items = training_items(seeds, cfg, rng, departures)
    texts = rollout.generate(instructor, tokenizer, [item["messages"] for item in items],
                             max_new_tokens=max_new_tokens, temperature=cfg.generate_temperature,
                             batch_size=batch_size, desc="instructions").texts
    rows, counts = [], {"sampled": len(items), "unparsed": 0, "wrong_count": 0}
    for item, text in zip(items, texts):
        parsed = parse_constraints(text, departures)
        if parsed is None or len(parsed) != item["expected_count"]:
            counts["unparsed" if parsed is None else "wrong_count"] += 1
            continue
        constraints = constraint_dicts(parsed, item["mode"], item["seed"], departures)
        rows.append(instruction_row(round_index, item["mode"], item["seed"], constraints, item["expected_count"]))
    return rows, counts


# -----------------------------------------------------------------------------
# Training I_T (the command line is in cli.py)


def grpo_config():
    """SEIF's GRPO settings, with room for a reply of reasoning plus a JSON of constraints."""
    return GRPOConfig(max_new_tokens=512)


def train(settings, start_path, helper_path, seeds, out, log=training.print_metrics, accelerator=None,
          round_index=1):
    """Train I_T from `start_path` with GRPO on `seeds`, rewarded through the frozen helper H_T at
    `helper_path` (it plays Filter, answerer and Judger); save it to `out`."""
    cfg = settings.instructor_grpo
    policy, tokenizer, (helper, helper_tokenizer), reference = training.load_stage(cfg, start_path, helper_path)
    items = training_items(seeds, settings.instructor, random.Random(settings.loop.seed + round_index),
                           settings.beyond_seif)

    def reward_fn(batch, texts):
        return rewards(helper, helper_tokenizer, batch, texts, settings.instructor, settings.judger,
                       settings.filter, settings.beyond_seif)

    trained = grpo.train(policy, tokenizer, items, reward_fn, cfg, accelerator or training.make_accelerator(),
                         ref_model=reference, epochs=settings.loop.instructor_epochs,
                         max_steps=settings.loop.instructor_steps or None, seed=settings.loop.seed,
                         log=log, desc=f"round {round_index} instructor", checkpoint_dir=out + "_checkpoints",
                         samples_path=out + "_samples.jsonl")
    rollout.save(trained, tokenizer, out)


if __name__ == "__main__":  # the command line lives in cli.py
    import cli

    cli.main("instructor")
