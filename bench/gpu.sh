#!/usr/bin/env bash
# The one-GPU figures in the README ("One GPU"), in one run, most important first; each result
# is appended under $OUT as it comes, and each part has its own time limit.
#   1. rollout.generate cold, 160 samples x 256 tokens: PyTorch's default attention kernels
#      (cuDNN allowed) against ours (rollout.attention_kernels: no cuDNN), each a new process;
#   2. the qwen0.5b preset's step (64 prompts x 5, 1024 new tokens), 2 steps: step 1 is warm;
#   3. ours against TRL's GRPOTrainer, SEIF settings, 32 prompts x 5, 256 new tokens.
#
#   OUT=bench/results/gpu TOKENIZER=~/.cache/seif/qwen2.5-coder-0.5b bash bench/gpu.sh
#
# Needs a CUDA GPU, a Qwen2.5 tokenizer folder (or hub access) and, for part 3, trl. About 7
# minutes on an H100.
set -uo pipefail
OUT=${OUT:-bench/results/gpu}
TOKENIZER=${TOKENIZER:-Qwen/Qwen2.5-0.5B-Instruct}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
memory() {  # memory SECONDS ARGS...
    local limit=$1; shift
    timeout "$limit" python3 bench/memory.py --tokenizer "$TOKENIZER" --json "$OUT/memory.jsonl" "$@" 2>&1 \
        | grep -v "it/s\]$"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
echo "== 1. generate() cold, 160 x 256 tokens: cuDNN attention allowed (PyTorch default), then off (ours)"
memory 60 --rollout-only --prompts 32 --max-new-tokens 256 --cudnn-attention
memory 60 --rollout-only --prompts 32 --max-new-tokens 256
echo "== 2. the qwen0.5b preset's step, 2 steps (step 1 is warm)"
memory 200 --steps 2
echo "== 3. ours vs TRL GRPOTrainer, SEIF settings, 32 prompts x 5, 256 new tokens"
timeout 240 python3 bench/vs_trl.py --device cuda --tokenizer "$TOKENIZER" --steps 2 \
    --out "$OUT/vs_trl_cuda.txt" 2>&1 | grep -v "it/s\]$"
