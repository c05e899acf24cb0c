#!/usr/bin/env bash
# GPU session check of semclip_train: ViT-B/32 (random init), batch 256 per GPU, bf16.
# One process, then torchrun over every visible GPU (NCCL). Prints two tables for docs/benchmarks.md.
#   bash benchmarks/gpu_check.sh [extra gpu_check.py flags, e.g. --steps 30]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python benchmarks/gpu_check.py "$@"
gpus=$(nvidia-smi -L | wc -l)
if [ "$gpus" -gt 1 ]; then
    torchrun --standalone --nproc-per-node "$gpus" benchmarks/gpu_check.py "$@"
else
    # One GPU: still exercise the NCCL path (two ranks sharing the GPU measure correctness, not speed).
    echo "one GPU: torchrun with 1 process (NCCL initialised only for >1 ranks)"
    torchrun --standalone --nproc-per-node 1 benchmarks/gpu_check.py "$@"
fi
