"""The answer gate (beyond_seif.answer_gate): pay only for fluent text that answers its request.

Not SEIF. Rules check form and a 0.5B judge is at chance on content, so word salad that meets
every rule, keyword stuffing and title/highlight/P.S. spam earn full reward from rules plus a
judge that says yes. The gate asks the frozen helper three questions about each answer, with
forward passes only (no verdict to generate), and the Follower's reward is 0 when it fails:

    order  (log p(answer | request) - log p(answer with its words shuffled | request)) / tokens
           How much the words' order matters to the helper. Fluent text loses a lot when its
           words are shuffled; a list of topic words, a repeated keyword or a pile of markup
           loses little.
    topic  (log p(answer | seed) - log p(answer | an empty request)) / tokens
           How much the bare request (the row's seed, without its constraints) raises the
           answer's likelihood (pointwise mutual information per token): near 0 for text about
           something else. The whole request would not do here: text about something else that
           follows the request's constraints (in lowercase, with a title) gains from them too.
    lift   (log p(answer | request) - log p(answer | an empty request)) / tokens
           How much the whole request raises it: far above a real answer's for a copy or a
           restatement of the request (the likelihood trap of JUDGING.md: copying the request
           is the likeliest text of all). The empty request is the same for every answer, so
           an answer's topic and lift do not depend on what else is in its batch.

An answer written all in capitals is read in lower case (`as_read`): a helper writes capitals
only when asked to, so its likelihood would count the asked-for case against a fluent answer.
A row without a seed (an instructions file written by hand) uses its instruction as the seed.

An answer passes when order >= order_min, topic >= topic_min and lift <= lift_max. The
thresholds need no labels: at the start of the Follower stage the frozen helper writes
`answer_gate_references` answers to the round's own instructions (each instruction at most once
while there are more instructions than that). The low bounds are a quantile of the helper's own
answers (`answer_gate_quantile`): the gate refuses what is less fluent or less on topic than all
but that share of them. The high bound on lift is Tukey's fence over the helper's lifts: upper
quartile + `answer_gate_lift_fence` x the interquartile range. A small helper answers some
requests with text copied from them (Qwen2.5-Coder-0.5B: lifts of 2 to 5 per token on 5 of its
48 hack-set answers, median 0.65), so a high quantile lands among those copies and pays a
restated request; the fence is set by the middle half of the answers, which a few copies do not
move. `answer_gate_lift_fence` 0 puts the bound at the 1 - `answer_gate_quantile` quantile.
The cost: 4 forward passes over each answer the verdicts would pay (the gate only takes pay
away, so answers already at 0 are not scored), with each distinct prompt of a batch run once,
and one generation per reference instruction per stage.
"""

import random
from dataclasses import dataclass

import torch

import reply_format
import rollout
import speedups
from settings import BeyondSEIF


@dataclass
class Gate:
    order_min: float
    topic_min: float
    lift_max: float
    references: int  # how many helper answers the thresholds come from

    def passes(self, features):
        """True for each (order, topic, lift) inside the gate."""
        return [order >= self.order_min and topic >= self.topic_min and lift <= self.lift_max
                for order, topic, lift in features]


def shuffled_words(text, seed=0):
    """`text` with its whitespace-separated words in a random (seeded) order."""
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


@torch.no_grad()
@speedups.attention_kernels()
def answer_logprob_sums(model, tokenizer, request_answer_pairs, batch_size=16):
    """Sum of log p(answer token) over each answer given its request as a plain user turn, and
    each answer's token count.

    Pairs go `batch_size` at a time in the GRPO layout (left-padded prompt, right-padded answer),
    ordered so that pairs with the same request sit together: the gate asks about each of a
    group's G answers and their shuffled copies under one request, and about every answer under
    the empty request, so each distinct prompt of a batch runs once and only the answers run on
    top of its copied KV cache (`speedups.completion_hidden`). The lm head runs on the answers'
    positions only."""
    prompts, answers = [], []
    for request, answer in request_answer_pairs:
        prompts.append(tokenizer(rollout.chat_text(tokenizer, [{"role": "user", "content": request}]),
                                 add_special_tokens=False).input_ids)
        answers.append(tokenizer(answer, add_special_tokens=False).input_ids or [tokenizer.eos_token_id])
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), prompts[i], len(answers[i])))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    sums = [0.0] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        prompt_width = max(len(prompts[i]) for i in chunk)
        answer_width = max(len(answers[i]) for i in chunk)
        ids, mask = [], []
        for i in chunk:
            left, right = prompt_width - len(prompts[i]), answer_width - len(answers[i])
            ids.append([pad] * left + prompts[i] + answers[i] + [pad] * right)
            mask.append([0] * left + [1] * (len(prompts[i]) + len(answers[i])) + [0] * right)
        ids, mask = torch.tensor(ids, device=model.device), torch.tensor(mask, device=model.device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        # (B, answer_width, H): the hidden states that predict each answer token
        hidden = speedups.completion_hidden(model, ids, mask, positions, answer_width, share_prompts=True)
        answer_mask = mask[:, prompt_width:].bool()
        targets = ids[:, prompt_width:][answer_mask]  # every answer token of the batch, row by row
        logprobs = speedups.token_logprobs(model.get_output_embeddings(), hidden[answer_mask], targets,
                                           torch.arange(len(targets), device=hidden.device), 1.0)
        for i, total in zip(chunk, logprobs.split([len(answers[i]) for i in chunk])):
            sums[i] = total.sum().item()
    return sums, [len(answer) for answer in answers]


def as_read(answer):
    """`answer` as the gate reads it: in lower case when every letter of it is a capital."""
    return answer.lower() if answer.isupper() else answer


def bare_request(row):
    """The bare request of an instructions row: its seed, or its instruction when it has none."""
    return row.get("seed") or row["instruction"]


def features(model, tokenizer, rows, answers, batch_size=16):
    """(order, topic, lift) for each answer to its instructions row."""
    n, answers = len(answers), [as_read(answer) for answer in answers]
    requests = [row["instruction"] for row in rows]
    sums, counts = answer_logprob_sums(  # one batched call: own request, empty request, seed, shuffled
        model, tokenizer, list(zip(requests, answers)) + [("", answer) for answer in answers]
        + [(bare_request(row), answer) for row, answer in zip(rows, answers)]
        + [(request, shuffled_words(answer)) for request, answer in zip(requests, answers)], batch_size)
    own, alone, topic, shuffled = (sums[i * n : (i + 1) * n] for i in range(4))
    return [((o / c) - (s / m), (t - e) / c, (o - e) / c)
            for o, e, t, s, c, m in zip(own, alone, topic, shuffled, counts[:n], counts[3 * n :])]


def quantile(values, q):
    values = sorted(values)
    return values[round(q * (len(values) - 1))]


def helper_answers(helper, tokenizer, rows, max_new_tokens, batch_size=16):
    """(row, answer) for the frozen helper's answer to each row's instruction (sampled once each at
    temperature 1, as a plain user turn, like the Instructor's reward asks it); empty answers are
    left out."""
    chats = [[{"role": "user", "content": row["instruction"]}] for row in rows]
    texts = rollout.generate(helper, tokenizer, chats, max_new_tokens=max_new_tokens, batch_size=batch_size,
                             desc="answer gate: helper answers").texts
    pairs = [(row, reply_format.helper_answer(text)) for row, text in zip(rows, texts)]
    return [(row, answer) for row, answer in pairs if answer.strip()]


def upper_fence(values, k):
    """Tukey's fence: the upper quartile plus k times the interquartile range."""
    upper = quantile(values, 0.75)
    return upper + k * (upper - quantile(values, 0.25))


def fit_to_answers(helper, tokenizer, pairs, quantile_share, batch_size=16,
                   lift_fence=BeyondSEIF.answer_gate_lift_fence):
    """The gate's thresholds from the helper's own (row, answer) pairs. lift_fence > 0: the lift
    bound is the upper fence of the helper's lifts with that k; 0: their 1 - quantile_share quantile."""
    if len(pairs) < 2:  # nothing to set thresholds from: the gate lets everything through
        return Gate(float("-inf"), float("-inf"), float("inf"), len(pairs))
    found = features(helper, tokenizer, [row for row, _ in pairs], [answer for _, answer in pairs], batch_size)
    return gate_from_features(found, quantile_share, lift_fence)


def gate_from_features(found, quantile_share, lift_fence=BeyondSEIF.answer_gate_lift_fence):
    """The gate's thresholds from the (order, topic, lift) of the helper's own answers."""
    orders, topics, lifts = zip(*found)
    lift_max = upper_fence(lifts, lift_fence) if lift_fence > 0 else quantile(lifts, 1 - quantile_share)
    return Gate(quantile(orders, quantile_share), quantile(topics, quantile_share), lift_max, len(found))


def fit(helper, tokenizer, rows, quantile_share, max_new_tokens, batch_size=16,
        lift_fence=BeyondSEIF.answer_gate_lift_fence):
    """The gate's thresholds from the frozen helper's own answers to `rows`' instructions."""
    return fit_to_answers(helper, tokenizer, helper_answers(helper, tokenizer, rows, max_new_tokens, batch_size),
                          quantile_share, batch_size, lift_fence)


def fit_for_rows(helper, tokenizer, rows, departures, max_new_tokens, batch_size=16, seed=0):
    """The gate for a Follower stage: fitted on `departures.answer_gate_references` helper answers
    to the distinct instructions of its rows, in a random (seeded) order. With fewer instructions
    than that, each is answered more than once: a threshold at a low quantile of a handful of
    answers is their minimum, and moves a long way from one draw to the next."""
    first = {}
    for row in rows:
        first.setdefault(row["instruction"], row)
    distinct = list(first.values())
    rng, chosen = random.Random(seed), []
    while distinct and len(chosen) < departures.answer_gate_references:
        chosen += rng.sample(distinct, min(len(distinct), departures.answer_gate_references - len(chosen)))
    return fit(helper, tokenizer, chosen, departures.answer_gate_quantile, max_new_tokens, batch_size,
               departures.answer_gate_lift_fence)


def gate_answers(helper, tokenizer, gate, items, answers, answered, batch_size=16):
    """The indices of `answered` whose answer passes the gate (the Follower's reward asks only
    about answers its verdicts would pay)."""
    if not answered:
        return []
    found = features(helper, tokenizer, [items[i] for i in answered], [answers[i] for i in answered], batch_size)
    return [i for i, ok in zip(answered, gate.passes(found)) if ok]
