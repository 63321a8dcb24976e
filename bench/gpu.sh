#!/usr/bin/env bash
# The one-GPU figures in the README ("One GPU"), in one run: the qwen0.5b preset's step through the
# loop's own code, the rollout path before and after the bf16 copy on the same card, generation
# batch sizes, and ours against TRL's GRPOTrainer. Each result is appended under $OUT as it comes.
#
#   OUT=bench/results/gpu TOKENIZER=~/.cache/seif/qwen2.5-coder-0.5b bash bench/gpu.sh
#
# Needs a CUDA GPU, a Qwen2.5 tokenizer folder (or hub access) and, for the last part, trl.
set -uo pipefail
OUT=${OUT:-bench/results/gpu}
TOKENIZER=${TOKENIZER:-Qwen/Qwen2.5-0.5B-Instruct}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
memory() { python3 bench/memory.py --tokenizer "$TOKENIZER" --json "$OUT/memory.jsonl" "$@" 2>&1 | grep -v "it/s"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "== the qwen0.5b preset's step (64 prompts x 5, 1024 new tokens), bf16 rollout copy; step 1 is the steady state"
memory --steps 2
echo "== ours vs TRL GRPOTrainer, SEIF settings, 32 prompts x 5, 256 new tokens"
python3 bench/vs_trl.py --device cuda --tokenizer "$TOKENIZER" --steps 2 --out "$OUT/vs_trl_cuda.txt" 2>&1 \
    | grep -v "it/s"
echo "== the same step with 256 new tokens: rollouts from the float32 policy under autocast, then the bf16 copy"
memory --max-new-tokens 256 --rollout-weights policy
memory --max-new-tokens 256 --rollout-weights bf16
echo "== generate() alone, 1024 new tokens, twice each: all 320 samples in one call (the preset), then calls of 192"
memory --rollout-only --steps 2
memory --rollout-only --steps 2 --generation-batch-size 192
