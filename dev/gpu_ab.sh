#!/usr/bin/env bash
# One device call: the circuits engine (this tree) against d666d30's
# (.bench/old, carried) on the seed preset, interleaved, plus checks.
#   bash dev/gpu_ab.sh STAGE...   stages: checks, ab, ab10m, brainpy, gputests
# Writes $OUT/ab.jsonl (one JSON line per measurement) and logs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/ab}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1
ab() {  # ab TREE ARGS...: one measurement, appended to ab.jsonl
  local tree=$1; shift
  PYTHONPATH="$tree" timeout 200 python3 dev/ab_engine.py "$@" 2>>"$OUT/ab_stderr.log" | tail -1 | tee -a "$OUT/ab.jsonl"
}
for stage in "$@"; do
  case $stage in
  checks)
    echo "== warnings reaching the terminal (jbrain run, plastic, 400 steps):"
    PYTHONPATH=. python3 -m experiments.cli run --flagfile=experiments/configs/small.flags --plasticity \
      --steps=400 --workdir=/tmp/w --fresh 2>&1 | tee "$OUT/run_gpu.log" | grep -ci "deprecat\|warning" || true
    PYTHONPATH=. python3 -m experiments.cli inspect --plan --plasticity | tee "$OUT/plan_gpu.json"
    ;;
  ab)
    for round in 1 2; do
      for tree in .bench/old .; do
        ab $tree --what step --n 200000
        ab $tree --what step --n 200000 --plastic
        ab $tree --what reply --n 200000
      done
    done
    for tree in .bench/old .; do ab $tree --what step --n 1000000; done
    ;;
  ab10m)
    for tree in .bench/old .; do ab $tree --what step --n 10000000 --steps 200 --reps 3; done
    ;;
  brainpy)
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site timeout "${BRAINPY_S:-200}" python3 .bench/brainpy_seed.py \
      --sizes 200000,1000000,10000000 --api "${BRAINPY_API:-raw,dyn}" --T 500 --warmup 200 --reps 3 2>&1 | tail -8
    ;;
  gputests)
    PYTHONPATH=. timeout "${TESTS_S:-500}" python3 -m pytest -m gpu -v -p no:cacheprovider tests \
      2>&1 | tee "$OUT/pytest_gpu.log" | grep -E "PASS|FAIL|ERROR|passed|failed" | tail -25
    ;;
  esac
done
