"""The Judger: decides, one constraint at a time, whether an answer satisfies it.

In SEIF the Judger gives every reward. The Follower's reward is the mean of its verdicts over
an instruction's constraints; the Instructor's reward is 1 minus that mean for the frozen
answerer. The Judger is never trained: it is the round's frozen helper model (the base model in
round 1, the previous round's Follower afterwards), prompted with a short rubric and a few
worked examples. It sees the ANSWER and ONE constraint, never the seed instruction, and ends
with `[[1]]` (satisfied) or `[[0]]` (not). Anything that is not a clear `[[1]]` counts as 0.

This project adds two departures, both on by default. `JudgerConfig.rules`: a constraint that
maps to an IFEval instruction type (it carries an `ifeval_id`) is checked by IFEval's exact rule
instead of the LLM. `JudgerConfig.echo_guard`: the Follower's answer is judged without verbatim
copies of its instruction or of its constraints' examples, must be an answer by a rule (not
too short, not placeholders only, not the request restated), and must not be judged off the
request (one more LLM verdict; see follower.py), so that repeating a constraint is not
following it. Set both to False to judge as SEIF did.

Two ways to ask the LLM (`JudgerConfig.llm`):
  "generate"  the judge writes a short analysis and ends with [[1]]/[[0]], as in SEIF;
  "score"     one forward pass with the reply forced up to the verdict digit, then
              P([[1]]) against P([[0]]): no sampling, and the rubric shared by every prompt
              runs once per batch. 18.8x the verdicts/s of generate mode on CPU with SmolLM2
              (bench/judge.py).

Reads: (answer, constraint) pairs in memory. Writes: nothing; `judge` returns the verdicts.

    verdicts = judge(model, tokenizer, [(answer, {"text": "Use no commas.", "ifeval_id": None,
                                                  "kwargs": None})], JudgerConfig())

Try it by hand:
    python judger.py --model Qwen/Qwen2.5-0.5B-Instruct --answer "hello world" \
        --constraint "Write the whole answer in lowercase letters." [--llm score]
"""

import argparse
import re
import warnings
from dataclasses import dataclass

import torch

import ifeval_checks
import rollout
from data import UserError, run_cli


@dataclass
class JudgerConfig:
    rules: bool = True  # exact IFEval rule check where a constraint has an ifeval_id (False = SEIF)
    llm: str = "generate"  # "generate": analysis then [[1]]/[[0]] (SEIF); "score": P([[1]]) in one pass
    score_reward: str = "decision"  # score mode only: "decision" = 0/1 by argmax, "probability" = P(1)
    max_new_tokens: int = 256  # generate mode: room for the analysis and the verdict
    batch_size: int = 32  # judge prompts per forward pass / generate call
    echo_guard: bool = True  # not SEIF: the Follower's answer is judged without copies of its
    # instruction's lines or constraint examples, and earns nothing if it is a non-answer by rule
    # or the Judger clearly says it does not address the request (follower.rewards)


# -----------------------------------------------------------------------------
# The judge prompt: rubric, worked examples, then the case to judge

RUBRIC = """You are a strict grader. You are given an ANSWER and ONE CONSTRAINT. Decide only \
whether the answer satisfies that constraint. Do not judge whether the answer is correct, \
useful or well written, and ignore every other requirement.

- Count carefully when the constraint has a number (words, sentences, bullets, paragraphs).
- If the constraint is met only partly, or you cannot tell, it is NOT satisfied.
- Write a short analysis (one to three sentences), then a last line that is exactly \
"Verdict: [[1]]" if the constraint is satisfied or "Verdict: [[0]]" if it is not."""

EXAMPLES = [
    (
        "Tea is made from the leaves of one plant.\n* Green tea is dried quickly.\n"
        "* Black tea is left to oxidise first.",
        "Use at least 3 bullet points.",
        "Only two lines start with a bullet marker; the first line is a plain sentence. "
        "Two is fewer than three.",
        0,
    ),
    (
        "my cat sleeps most of the day and wakes up when dinner is served.",
        "Write the entire response in lowercase letters.",
        "Every letter in the answer is lowercase; there are no capitals anywhere.",
        1,
    ),
    (
        "Dear team, the launch has moved to Friday. Thank you for your patience, and please "
        "send any questions my way. Kind regards, Ana",
        "Use a polite, professional tone suitable for colleagues.",
        "The message greets the team, states the change plainly and thanks them, with no slang "
        "or rudeness.",
        1,
    ),
]

# Repeated after the case: small models otherwise tend to continue the answer text instead.
JUDGE_QUESTION = ("Does the ANSWER satisfy the CONSTRAINT? Give a short analysis, then the "
                  "verdict line.")

VERDICT_PREFIX = "Verdict: [["  # score mode forces the reply up to here, then reads the digit


def judge_case(answer, constraint_text, analysis=None, verdict=None):
    """One ANSWER/CONSTRAINT block; with analysis and verdict it is a worked example."""
    case = f"ANSWER:\n<<<\n{answer}\n>>>\nCONSTRAINT: {constraint_text}\n"
    if analysis is not None:
        case += f"Analysis: {analysis}\nVerdict: [[{verdict}]]\n"
    return case


def judge_messages(answer, constraint_text):
    """The chat the Judger sees for one (answer, constraint) pair."""
    examples = "\n".join(
        f"Example {number}:\n{judge_case(*example)}" for number, example in enumerate(EXAMPLES, 1)
    )
    prompt = (f"{RUBRIC}\n\n{examples}\nNow judge this one.\n{judge_case(answer, constraint_text)}"
              f"{JUDGE_QUESTION}")
    return [{"role": "user", "content": prompt}]


# -----------------------------------------------------------------------------
# Reading a verdict


def strip_think(text):
    """Drop everything up to and including the last `</think>` (the model's private reasoning)."""
    return text.rsplit("</think>", 1)[-1]


def parse_verdict(text, missing=0):
    """The last `[[d]]` in `text`: 1 only for a clear `[[1]]`, 0 for any other digit, and
    `missing` when there is no verdict at all (0 for a constraint: unclear is not satisfied)."""
    verdicts = re.findall(r"\[\[\s*(\d+)\s*\]\]", strip_think(text))
    if not verdicts:
        return missing
    return 1 if verdicts[-1] == "1" else 0


# -----------------------------------------------------------------------------
# The LLM judge, two ways


def llm_generate(model, tokenizer, messages_list, cfg):
    """Generate mode: the judge writes its analysis and verdict; returns the raw texts."""
    return rollout.generate(
        model, tokenizer, messages_list, greedy=True, max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size, desc="judge",
    ).texts


def forced_verdict_ids(tokenizer, prompt_text):
    """Token ids of `prompt_text + VERDICT_PREFIX`, and the ids of the digits "1" and "0" after it.

    Tokenizers often merge the digit with its neighbours ("[[1" or "1]]" can be one token), so
    the split is found by tokenizing the prompt ending in "[[1]]" and in "[[0]]" and taking the
    first token where the two differ: everything before it is the forced prefix.
    """
    with_one = tokenizer(prompt_text + VERDICT_PREFIX + "1]]", add_special_tokens=False).input_ids
    with_zero = tokenizer(prompt_text + VERDICT_PREFIX + "0]]", add_special_tokens=False).input_ids
    split = next((i for i, (a, b) in enumerate(zip(with_one, with_zero)) if a != b), None)
    if split is None:
        raise UserError("score mode: the tokenizer encodes [[1]] and [[0]] the same way; "
                        "use --llm generate")
    return with_one[:split], with_one[split], with_zero[split]


@torch.no_grad()
def llm_score(model, tokenizer, messages_list, cfg):
    """Score mode: P([[1]]) for each chat, from one forward pass over the forced verdict prefix."""
    was_training = model.training
    model.eval()  # no dropout: the verdict must not depend on chance
    try:
        probabilities = []
        for start in range(0, len(messages_list), cfg.batch_size):
            chunk = messages_list[start : start + cfg.batch_size]
            probabilities += _score_chunk(model, tokenizer, chunk)
    finally:
        model.train(was_training)
    return probabilities


def common_prefix_length(sequences):
    """How many leading items all `sequences` have in common."""
    length = 0
    for column in zip(*sequences):
        if any(item != column[0] for item in column):
            break
        length += 1
    return length


def _score_chunk(model, tokenizer, messages_list):
    """P([[1]]) for one batch of chats, with their common prefix (the rubric) run once.

    Every judge prompt starts with the same rubric and worked examples, most of its tokens. That
    prefix goes through the model once; its KV cache is copied to every row, and only each
    row's own part (the answer, the constraint, the forced "Verdict: [[") runs on top of it.
    """
    rows = [forced_verdict_ids(tokenizer, rollout.chat_text(tokenizer, m)) for m in messages_list]
    ids_list = [ids for ids, _, _ in rows]
    # the longest token prefix all rows share, leaving each row at least one token of its own
    shared = min(common_prefix_length(ids_list), min(len(ids) for ids in ids_list) - 1)
    device = next(model.parameters()).device
    cache = {}
    if shared > 0:
        name = rollout.cache_argument(model)
        rubric_pass = model(input_ids=torch.tensor([ids_list[0][:shared]], device=device), use_cache=True,
                            logits_to_keep=1)
        cache = {name: getattr(rubric_pass, name)}
        cache[name].batch_repeat_interleave(len(rows))  # (1, ...) -> (batch, ...)
    tails = [ids[shared:] for ids in ids_list]
    width = max(len(tail) for tail in tails)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Left padding puts every row's last real token in the last column; the padding sits between
    # the shared prefix and the row's own tokens, masked out. The attention mask is built from the
    # lengths, never from pad_token_id (pad == eos for Qwen and SmolLM2).
    input_ids = torch.tensor([[pad_id] * (width - len(tail)) + tail for tail in tails])
    tail_mask = torch.tensor([[0] * (width - len(tail)) + [1] * len(tail) for tail in tails])
    attention_mask = torch.cat([torch.ones(len(rows), shared, dtype=torch.long), tail_mask], dim=1)
    # Positions count real tokens only, so a padded row sees the same positions as unpadded.
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)[:, shared:]
    # logits_to_keep=1: only the last position's logits, not (batch, width, vocab), which for a
    # 150k-token vocabulary would take gigabytes at batch 32.
    logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                   position_ids=position_ids.to(device), logits_to_keep=1, **cache).logits[:, -1, :]
    # logits: (batch, vocab)
    one_ids = torch.tensor([one for _, one, _ in rows], device=device)
    zero_ids = torch.tensor([zero for _, _, zero in rows], device=device)
    rows_index = torch.arange(len(rows), device=device)
    two_logits = torch.stack([logits[rows_index, zero_ids], logits[rows_index, one_ids]], dim=1)
    # softmax over just the two verdict tokens: P(1) = P([[1]]) / (P([[1]]) + P([[0]]))
    return two_logits.float().softmax(dim=1)[:, 1].tolist()


def llm_verdicts(model, tokenizer, answer_constraint_texts, cfg, missing=0.0):
    """0/1 (or P(1) in score+probability mode) for each (answer, constraint text), batched.
    `missing`: what a generate-mode reply with no verdict counts as."""
    messages_list = [judge_messages(answer, text) for answer, text in answer_constraint_texts]
    if cfg.llm == "generate":
        return [float(parse_verdict(t, missing)) for t in llm_generate(model, tokenizer, messages_list, cfg)]
    if cfg.llm == "score":
        probabilities = llm_score(model, tokenizer, messages_list, cfg)
        if cfg.score_reward == "probability":
            return probabilities
        if cfg.score_reward == "decision":
            return [1.0 if p > 0.5 else 0.0 for p in probabilities]
        raise UserError(f"unknown score_reward {cfg.score_reward!r}; use decision or probability")
    raise UserError(f"unknown judge mode {cfg.llm!r}; use generate or score")


# -----------------------------------------------------------------------------
# Judging a batch of (answer, constraint) pairs


def rule_verdict(constraint, answer):
    """IFEval's exact check as 0.0/1.0; a checker that crashes counts as not followed."""
    try:
        return float(ifeval_checks.check(constraint["ifeval_id"], constraint.get("kwargs") or {},
                                         answer))
    except UserError:  # lm-eval or NLTK's punkt_tab missing: the user's to fix, not a verdict of 0
        raise
    except Exception as error:  # a bad kwargs dict from the Instructor must not stop training
        warnings.warn(f"rule check {constraint['ifeval_id']} failed ({error!r}); verdict 0")
        return 0.0


def judge(model, tokenizer, pairs, cfg=None):
    """One verdict in [0, 1] per (answer_text, constraint_dict) pair.

    Empty answers get 0 without asking anyone. With `cfg.rules`, constraints with an ifeval_id
    are rule-checked; every other pair goes to the LLM judge in one batched call, so `model`
    may be None when every constraint is rule-checked.
    """
    cfg = cfg or JudgerConfig()
    verdicts = [0.0] * len(pairs)
    for_llm = []  # (index, answer, constraint text)
    for index, (answer, constraint) in enumerate(pairs):
        answer = strip_think(answer)
        if not answer.strip():
            continue
        if cfg.rules and constraint.get("ifeval_id"):
            verdicts[index] = rule_verdict(constraint, answer)  # as IFEval sees it, unstripped
        else:
            for_llm.append((index, answer.strip(), constraint["text"]))
    if for_llm:
        llm_results = llm_verdicts(model, tokenizer, [(a, t) for _, a, t in for_llm], cfg)
        for (index, _, _), verdict in zip(for_llm, llm_results):
            verdicts[index] = verdict
    return verdicts


def followed_fractions(model, tokenizer, answered_sets, cfg=None):
    """For each (answer, constraints) set, the mean verdict over its constraints (0.0 if none).

    This is what both trained roles' rewards are made of. Every pair of every set goes to
    `judge` in one batched call. Returns (fractions, verdicts), verdicts flat in set order.
    """
    pairs = [(answer, constraint) for answer, constraints in answered_sets for constraint in constraints]
    verdicts = judge(model, tokenizer, pairs, cfg)
    fractions, start = [], 0
    for _, constraints in answered_sets:
        count = len(constraints)
        fractions.append(sum(verdicts[start : start + count]) / count if count else 0.0)
        start += count
    return fractions, verdicts


# -----------------------------------------------------------------------------
# Command line: judge one answer against one constraint by hand


def main(argv=None):
    parser = argparse.ArgumentParser(description="Ask the Judger whether an answer meets a constraint.")
    parser.add_argument("--model", required=True, help="hub id, local directory or .gguf file")
    parser.add_argument("--answer", required=True)
    parser.add_argument("--constraint", required=True, help="the constraint, one sentence")
    parser.add_argument("--llm", choices=["generate", "score"], default="generate")
    parser.add_argument("--max-new-tokens", type=int, default=JudgerConfig.max_new_tokens)
    args = parser.parse_args(argv)
    cfg = JudgerConfig(llm=args.llm, score_reward="probability", max_new_tokens=args.max_new_tokens)
    answer = strip_think(args.answer).strip()
    if not answer:
        raise UserError("the answer is empty (an empty answer is always judged 0)")
    model, tokenizer = rollout.load(args.model)
    messages = [judge_messages(answer, args.constraint)]
    if args.llm == "generate":
        text = llm_generate(model, tokenizer, messages, cfg)[0]
        print(text.strip())
        print(f"verdict: {parse_verdict(text)}")
    else:
        probability = llm_score(model, tokenizer, messages, cfg)[0]
        print(f"P([[1]]) = {probability:.3f}  verdict: {int(probability > 0.5)}")


if __name__ == "__main__":
    run_cli(main)
