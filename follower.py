"""The Follower: answers evolved instructions. This is the model SEIF sets out to improve.

Each round the Follower F_T starts from F_{T-1} (the base model in round 1) and is trained with
GRPO on that round's evolved instructions (a seed plus the Instructor's constraints). Its reward:

    0                                    if the reply fails the format gate
    mean over constraints of Judger 0/1  otherwise, judged on the text inside <answer>

With `FollowerConfig.strict_format` False (the CPU demo only: its 135M model never writes the
format) a reply without the format is judged as a whole instead (`lenient_answer`).

Reads: an instructions JSONL (rows from `instructor.py generate`, after the Filter).
Writes: the trained Follower checkpoint, and one metrics row per GRPO step.

Train one round alone:
    python follower.py train --instructions runs/x/round_1/instructions.jsonl \
        --model Qwen/Qwen2.5-0.5B-Instruct --out runs/x/follower [--preset qwen0.5b]
"""

import argparse
import re
from dataclasses import dataclass, field

import grpo
import judger
import rollout
import training
from data import UserError, read_jsonl, run_cli
from grpo import GRPOConfig
from judger import JudgerConfig
from settings import LoopConfig, add_arguments, from_args

# Both trained roles reply in this format; SEIF's format gate is the regex below.
SYSTEM_PROMPT = (
    "You are a helpful assistant. First think about the request step by step inside "
    "<think> </think> tags, then give your final reply inside <answer> </answer> tags, "
    "like this: <think> reasoning </think><answer> final reply </answer>"
)
FORMAT = re.compile(r"^<think>.*?</think>\s*<answer>(.*?)</answer>$", re.DOTALL)


@dataclass
class FollowerConfig:
    strict_format: bool = True  # SEIF: a reply outside <think>..</think><answer>..</answer> gets 0.
    # False (CPU demo only, not SEIF) judges such a reply as a whole: see lenient_answer


def extract_answer(text):
    """The text inside <answer>, or None when the reply fails the format gate."""
    match = FORMAT.match(text.strip())
    return match.group(1).strip() if match else None


def lenient_answer(text):
    """What is judged of a reply that may not use the format: the text inside <answer> if it
    passes the gate, otherwise the text after its reasoning. "" when there is nothing to judge:
    an empty reply, an empty <answer></answer>, or a reply cut off inside an unclosed <think>.
    The helper's answer inside the Instructor's reward is always read this way (it gets no
    system prompt asking for the format); the Follower's only with strict_format False."""
    extracted = extract_answer(text)
    if extracted is not None:
        return extracted
    if "<think>" in text and "</think>" not in text:
        return ""
    # the answer tags of a reply that failed the gate (an <answer> cut off by the token budget,
    # or text after </answer>) are not part of what it says
    return re.sub(r"</?answer>", "", judger.strip_think(text)).strip()


def messages(instruction):
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": instruction}]


# -----------------------------------------------------------------------------
# The echo guard (not SEIF): an answer must answer, not repeat its instruction

QUOTES = "[\"'“”‘’]"  # a copied sentence may swap straight and curly quotes
# Words in any script, with "don't" one word and quotes around one not part of it. Chinese and
# Japanese put no spaces between words, so each of their characters counts as one.
HAN_KANA = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
WORD = re.compile(rf"[{HAN_KANA}]|[^\W\d_{HAN_KANA}]+(?:'[^\W\d_{HAN_KANA}]+)*")
MIN_ANSWER_WORDS = 5
# the formatting examples constraints give: "such as <<poem of joy>>", "[address]", "*highlighted section*"
EXAMPLE = re.compile(r"<<[^<>\n]+>>|\[[^\[\]\n]+\]|\*[^*\s][^*\n]*\*")
PLACEHOLDER = re.compile(r"\[[^\[\]\n]*\]")  # "[name]": a slot for words, not words
POSTSCRIPT_MARK = re.compile(r"\bP\.\s?(?:P\.\s?)?S\b\.?", re.IGNORECASE)  # "P.S.": a marker, not words

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
    example, not the reply's own title or placeholder."""
    for example in {found for text in constraint_texts for found in EXAMPLE.findall(text)}:
        answer = re.sub(re.escape(example), "", answer, flags=re.IGNORECASE)
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
    known = set(WORD.findall(instruction.lower()))
    return sum(word in known for word in words) / len(words) >= 0.8


def addresses_request(model, tokenizer, answer_request_pairs, cfg):
    """0/1 for each (answer, request): does the answer respond to the request? (LLM, batched)

    Only a clear "no" ([[0]], or P([[1]]) <= 0.5 in score mode) counts as 0. A judge reply with
    no verdict at all says nothing about the answer, and a veto on it would zero real answers:
    Qwen2.5-Coder-0.5B in generate mode leaves about a quarter of its replies without one."""
    verdicts = [0.0] * len(answer_request_pairs)
    asked = [(i, answer, ADDRESSES_REQUEST.format(request=request))
             for i, (answer, request) in enumerate(answer_request_pairs) if answer.strip()]
    if asked:
        results = judger.llm_verdicts(model, tokenizer, [(answer, text) for _, answer, text in asked], cfg,
                                      missing=1.0)
        for (i, _, _), verdict in zip(asked, results):
            verdicts[i] = 1.0 if verdict > 0.5 else 0.0
    return verdicts


def rewards(helper, tokenizer, items, texts, judger_cfg, cfg=None):
    """Follower rewards for one batch: `items` are instruction rows, one completion text each.

    Returns (rewards, info) as grpo.train expects. All (answer, constraint) pairs of the batch
    go to the Judger in one call. info["format_pass"] is the share that passes SEIF's format
    gate, also when cfg.strict_format is off and the others are judged too.

    With judger_cfg.echo_guard (not SEIF, on by default) an answer is judged without verbatim
    copies of its instruction's lines or of its constraints' formatting examples
    (`guarded_answer`), and one that is not an answer gets 0: too short, placeholders only or a
    restated request (`is_non_answer`, a rule), or, in the Judger's clear verdict, not
    addressing its request. A reply that repeats "End your reply with the phrase 'That is all.'"
    or that only says "That is all." follows no instruction, though a rule would pass it.
    """
    cfg = cfg or FollowerConfig()
    format_passed = sum(extract_answer(text) is not None for text in texts)
    if cfg.strict_format:
        answers = [extract_answer(text) for text in texts]  # None: fails the format gate
    else:
        answers = [lenient_answer(text) or None for text in texts]  # None: nothing to judge
    answered = [i for i, answer in enumerate(answers) if answer is not None]
    to_judge = len(answered)  # before the echo guard
    if judger_cfg.echo_guard and answered:
        for i in answered:
            answers[i] = guarded_answer(answers[i], items[i])
        answered = [i for i in answered if not is_non_answer(answers[i], items[i]["instruction"])]
        on_topic = addresses_request(
            helper, tokenizer, [(answers[i], items[i].get("seed", items[i]["instruction"])) for i in answered],
            judger_cfg)
        answered = [i for i, verdict in zip(answered, on_topic) if verdict]
    fractions, verdicts = judger.followed_fractions(
        helper, tokenizer, [(answers[i], items[i]["constraints"]) for i in answered], judger_cfg)
    rewards = [0.0] * len(items)  # a reply that fails the format gate (or the echo guard) gets 0
    for i, fraction in zip(answered, fractions):
        rewards[i] = fraction
    info = {"format_pass": format_passed / len(texts),
            "echo_or_off_topic": (to_judge - len(answered)) / to_judge if to_judge else 0.0,
            "constraints_followed": sum(verdicts) / len(verdicts) if verdicts else 0.0}
    return rewards, info


def training_items(rows):
    """Instruction rows -> grpo.train items (each row keeps its constraints for the reward)."""
    return [{**row, "messages": messages(row["instruction"])} for row in rows]


# -----------------------------------------------------------------------------
# Training F_T, and the command line


@dataclass
class Settings:
    """The sections `python follower.py` reads (loop.Settings has them all)."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    follower_grpo: GRPOConfig = field(default_factory=GRPOConfig)
    follower: FollowerConfig = field(default_factory=FollowerConfig)
    judger: JudgerConfig = field(default_factory=JudgerConfig)


def train(settings, start_path, helper_path, rows, out, epochs, log=training.print_metrics, accelerator=None,
          round_index=1):
    """Train F_T from `start_path` with GRPO on instruction `rows` for `epochs`, judged by the frozen
    helper H_T at `helper_path`; save it to `out`."""
    cfg = settings.follower_grpo
    policy, tokenizer, (helper, helper_tokenizer), reference = training.load_stage(cfg, start_path, helper_path)

    def reward_fn(batch, texts):
        return rewards(helper, helper_tokenizer, batch, texts, settings.judger, settings.follower)

    trained = grpo.train(policy, tokenizer, training_items(rows), reward_fn, cfg,
                         accelerator or training.make_accelerator(), ref_model=reference, epochs=epochs,
                         max_steps=settings.loop.follower_steps or None, seed=settings.loop.seed,
                         log=log, desc=f"round {round_index} follower", checkpoint_dir=out + "_checkpoints",
                         samples_path=out + "_samples.jsonl")
    rollout.save(trained, tokenizer, out)


def read_instructions(path):
    """Instruction rows from a JSONL file, each checked for what training needs."""
    rows = read_jsonl(path)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row.get("instruction"), str) or not isinstance(row.get("constraints"), list):
            raise UserError(f"{path}: row {number} needs an 'instruction' string and a 'constraints' list")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the SEIF Follower for one round.")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--instructions", required=True, help="instructions JSONL (instructor.py generate)")
    parser.add_argument("--out", required=True, help="where to save the trained Follower")
    parser.add_argument("--epochs", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = from_args(args, Settings())
    train(settings, settings.loop.model, settings.loop.helper or settings.loop.model,
          read_instructions(args.instructions), args.out, args.epochs)
    print(f"follower saved to {args.out}")


if __name__ == "__main__":
    run_cli(main)
