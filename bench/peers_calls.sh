#!/usr/bin/env bash
# The device calls of issue 17 (bench/peers.py), one after the other on one warm machine; see bench/RESULTS.md.
# Run from the repository root; WHEELS = the folder of wheels carried with the call (shared/tools/gpu-wheels.sh).
#   1: WHEELS=.whl-a   install trl, datasets, bitsandbytes; the random-weight models; kit on 8B, then trl's SFTTrainer
#                      on the model kit prepared (one process); kit on SmolLM2-135M
#   2: WHEELS=.whl-b   install unsloth; transformers + peft + trl on 8B (sdpa, varlen); unsloth + trl on 8B;
#                      kit on Qwen2.5-1.5B
#   3: WHEELS=.whl-a   (BUDGET_S=300) SmolLM2-135M: kit's default with a host profile (cProfile, kernel launches), then
#                      the same with inductor's C++ wrapper (CPP_WRAPPER=1), each in its own process
# Each process gets what is left of the call's 10 minutes (less a margin), so the records written so far come back.
set -uo pipefail
step=$1
end=$(( $(date +%s) + ${BUDGET_S:-575} ))
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
pipinstall() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$@"; }
part() {  # part NAME CAP ARGS...: bench/peers.py ARGS with at most CAP seconds (and never past the call's end)
  local name=$1 cap=$2 left; shift 2
  left=$(( end - $(date +%s) )); [ "$left" -lt "$cap" ] && cap=$left
  [ "$cap" -lt 30 ] && { echo "skipped $name: no time left"; return; }
  echo "== $name ($cap s) $(date -u +%T)"
  timeout "$cap" python3 bench/peers.py "$@" > "$OUT/$name.log" 2>&1; echo "rc $? $(date -u +%T)"
  grep -a '^RECORD' "$OUT/$name.log" | cut -c1-600
}
case $step in
  1) pipinstall "$WHEELS"/*.whl || exit 1
     nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
     python3 bench/peers.py prep 2>&1 | tail -2; date -u +%T
     part kit-8b 330 kit 8b trl
     PROFILE=1 KIT_BATCHES=8,16,32 part kit-smollm2 170 kit smollm2 ;;
  2) pipinstall "$WHEELS"/*.whl || exit 1
     part trl-8b 170 trl 8b sdpa varlen
     part unsloth-8b 190 unsloth 8b
     PROFILE=1 KIT_BATCHES=8,16 part kit-qwen15 190 kit qwen15 ;;
  3) pipinstall "$WHEELS"/*.whl || exit 1
     python3 bench/peers.py prep small 2>&1 | tail -1
     HOST_PROFILE=1 part kit-smollm2 125 kit smollm2
     CPP_WRAPPER=1 part kit-smollm2-cpp 200 kit smollm2 ;;
esac
python3 bench/peers.py table 2>/dev/null
