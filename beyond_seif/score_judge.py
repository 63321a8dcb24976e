"""The score judge (beyond_seif.score_judge): an LLM verdict from one forward pass, not generated.

Not SEIF: SEIF's Judger and Filter write a short analysis and end with [[1]]/[[0]]. Here the
judge's reply is forced up to the verdict digit ("Verdict: [[") and P([[1]]) is read against
P([[0]]): no sampling, and the rubric and worked examples, the same at the start of every judge
prompt, run once per batch. 18.8x the verdicts/s of generate mode on CPU with SmolLM2
(bench/judge.py). `beyond_seif.score_reward` says what a verdict is: "decision" (P > 0.5 is 1,
else 0) or "probability" (P itself).
"""

import torch

import rollout
import speedups
from data import UserError

VERDICT_PREFIX = "Verdict: [["  # the judge prompts ask for a last line "Verdict: [[1]]" or "[[0]]"


def verdicts(model, tokenizer, messages_list, batch_size, score_reward="decision"):
    """One verdict per judge chat: 0/1 by P([[1]]) > 0.5, or P([[1]]) itself ("probability")."""
    probabilities = llm_score(model, tokenizer, messages_list, batch_size)
    if score_reward == "probability":
        return probabilities
    return [1.0 if p > 0.5 else 0.0 for p in probabilities]


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
        raise UserError("score judge: the tokenizer encodes [[1]] and [[0]] the same way; "
                        "set beyond_seif.score_judge=false")
    return with_one[:split], with_one[split], with_zero[split]


@torch.no_grad()
def llm_score(model, tokenizer, messages_list, batch_size):
    """P([[1]]) for each chat, from one forward pass over the forced verdict prefix."""
    was_training = model.training
    model.eval()  # no dropout: the verdict must not depend on chance
    try:
        probabilities = []
        for start in range(0, len(messages_list), batch_size):
            probabilities += _score_chunk(model, tokenizer, messages_list[start : start + batch_size])
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
        name = speedups.cache_argument(model)
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
