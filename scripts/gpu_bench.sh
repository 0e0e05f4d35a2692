#!/usr/bin/env bash
# The whole GPU benchmark in one device call (keep it under ~8 minutes):
#   jbrain bench at N = 200k, 1M, 10M (event, gather, bcoo paths), the alive
#   check at 200k, and beside it, in the same run on the same card, the CuPy
#   re-creation of the seed's loop (scripts/cupy_seed.py) and the BrainPy 2.9
#   peer (raw and dyn styles). Prints one combined table last.
#
# Needs, carried with the call (both are git-ignored):
#   .whl/    BrainPy's wheels:  bash ../shared/peers/fetch_brainpy_wheels.sh .whl
#   .bench/  brainpy_seed.py (cp ../shared/peers/brainpy_seed.py .bench/) and
#            .bench/wheels/ (absl-py, chex, toolz, tqdm; used only if missing there)
# Device call:  bash scripts/gpu_bench.sh      with carry [".whl", ".bench"]
# Writes $OUT/bench.json (every row, baselines' raw JSON and logs inside) and
# $OUT/gpu_bench.log. Env knobs: SIZES, PATHS, STEPS, REPS, WARMUP,
# BRAINPY_BUDGET_S, BRAINPY_API (default raw,dyn: the styles run in that order and share
# BRAINPY_BUDGET_S; dyn alone: BRAINPY_API=dyn), ALIVE_STEPS, ALIVE_N, BENCH_TIMEOUT_S (jbrain bench's limit, 470), PY (for a dry run on a CPU, e.g.
# SIZES=5000 STEPS=100 ALIVE_STEPS=1000 ALIVE_N=5000 with a Python 3.12 venv).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/jbrain_gpu_bench}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_bench.log") 2>&1
PY="${PY:-python3}"
SIZES="${SIZES:-200000,1000000,10000000}"
PATHS="${PATHS:-event,gather,bcoo}"
STEPS="${STEPS:-1000}"
REPS="${REPS:-5}"
BRAINPY_BUDGET_S="${BRAINPY_BUDGET_S:-200}"
WARMUP="${WARMUP:-2000}"
ALIVE_STEPS="${ALIVE_STEPS:-20000}"
ALIVE_N="${ALIVE_N:-200000}"
t0=$(date +%s)
say() { echo "== [$(($(date +%s) - t0)) s] $*"; }

say "machine"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,clocks.max.sm,temperature.gpu \
  --format=csv 2>&1 | head -3
"$PY" -c 'import sys, jax; print("python", sys.version.split()[0], "jax", jax.__version__, jax.devices())'

say "python packages"
if ! "$PY" -c 'import chex, absl, tqdm' 2>/dev/null; then
  echo "chex/absl/tqdm missing: installing .bench/wheels into /tmp/site-jbrain"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site-jbrain .bench/wheels/*.whl
  export PYTHONPATH="/tmp/site-jbrain${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
BASELINES=cupy
BRAINPY_PATH=""
if [ -f .bench/brainpy_seed.py ] && ls .whl/*.whl >/dev/null 2>&1 \
  && "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl; then
  BASELINES=cupy,brainpy
  BRAINPY_PATH=/tmp/site
else
  echo "BrainPy wheels or .bench/brainpy_seed.py missing: BrainPy rows skipped"
fi

say "jbrain bench (baselines: $BASELINES)"
timeout "${BENCH_TIMEOUT_S:-470}" "$PY" -m experiments.cli bench \
  --sizes="$SIZES" --paths="$PATHS" --steps="$STEPS" --reps="$REPS" --warmup="$WARMUP" \
  --bcoo_max_neurons=10000000 --row_budget_s=30 \
  --baselines="$BASELINES" --baseline_steps=300 --baseline_warmup=300 --baseline_timeout_s=150 \
  --brainpy_script=.bench/brainpy_seed.py --brainpy_path="$BRAINPY_PATH" --brainpy_api="${BRAINPY_API:-raw,dyn}" \
  --brainpy_T=500 --brainpy_warmup=500 --brainpy_reps=3 --brainpy_budget_s="$BRAINPY_BUDGET_S" \
  --alive_steps="$ALIVE_STEPS" --alive_neurons="$ALIVE_N" \
  --out="$OUT/bench.json" >"$OUT/bench_stdout.txt" 2>&1
rc=$?
# progress lines only (the full output is in bench_stdout.txt)
grep -E "^  |^cupy|^BrainPy|^jbrain on|^alive|error|Error" "$OUT/bench_stdout.txt" | tail -60
say "jbrain bench exit code $rc (124: cut by the time limit; rows so far are in bench.json)"
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu,power.draw --format=csv,noheader 2>&1 | head -2

say "combined table ($OUT/bench.json)"
if [ -f "$OUT/bench.json" ]; then
  "$PY" -m experiments.benchkit "$OUT/bench.json"
else
  tail -40 "$OUT/bench_stdout.txt"
fi
