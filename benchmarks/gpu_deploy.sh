#!/usr/bin/env bash
# Issue 20's GPU points in one run (about 12 minutes on an H100), from the repository root with swincli installed:
#   - AOTInductor (pt2, CUDA) and TensorRT fp16 for swin-t and swinv2-t: exported, verified by their own
#     runtimes, and timed beside eager PyTorch bf16 (`swin profile --runtimes`), then torch.compile beside eager;
#   - our eager bf16 against timm eager (target 1.3x);
#   - LoRA against full fine-tuning of swinv2-b at 384 px, window 24, batch 16, bf16.
# TensorRT rows need torch-tensorrt and tensorrt on the machine (`swin export --check` says); without them the
# row says so and the rest runs. Results go to ${OUT:-gpu-deploy}/.
set -uo pipefail
out="${OUT:-gpu-deploy}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
swin export --check --format json > "$out/check.json"
for model in swin-t swinv2-t; do
  swin profile --model "$model" --device cuda --amp bf16 -b 64 --runtimes pt2,tensorrt --format json > "$out/runtimes-$model.json"
  swin profile --model "$model" --device cuda --amp bf16 -b 64 --compile --format json > "$out/compile-$model.json"
done
python benchmarks/gpu_vs_timm.py --models swin-t swinv2-t --batches 64 128 --amp bf16 | tee "$out/gpu_vs_timm.txt"
python benchmarks/lora_vs_full.py --model swinv2-b --size 384 --window 24 -b 16 --device cuda --amp bf16 | tee "$out/lora_vs_full.txt"
