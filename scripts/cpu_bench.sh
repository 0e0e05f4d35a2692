#!/usr/bin/env bash
# CPU rows of BENCHMARKS.md: jbrain bench at N = 200k (event, gather, bcoo),
# the alive check on the small preset (20k), and the Brian2 peer (C++
# standalone, 2 threads) back to back on the same machine.
#
#   bash scripts/cpu_bench.sh [OUTDIR]
# Env: PY (jbrain's Python, default python3), BRIAN2_PY (a Python with brian2
# and numpy<2.4, e.g. a venv made with `pip install 'numpy<2.4' brian2 cython`;
# unset: Brian2 skipped), PEERS (folder of brian2_seed.py, default ../shared/peers),
# BRAINPY_PY + BRAINPY_SITE (a Python >= 3.12 with jax and numba, and the
# folder holding BrainPy's wheels installed with pip --target; unset: skipped),
# STEPS/REPS/WARMUP (jbrain), ALIVE_STEPS (default 20000).
# Timings on a shared machine are only as good as its idle time: each stage
# waits (up to 5 minutes) for the CPUs to be >= 90% idle and logs the idle
# fraction it saw, and jbrain bench waits likewise before each timed rep
# (--wait_idle=0.9; the row records what it saw).
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR="${1:-runs/cpu_bench}"
mkdir -p "$OUTDIR"
PY="${PY:-python3}"
PEERS="${PEERS:-../shared/peers}"
STEPS="${STEPS:-200}"
REPS="${REPS:-5}"
WARMUP="${WARMUP:-600}"
ALIVE_STEPS="${ALIVE_STEPS:-20000}"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

idle() {  # fraction of CPU time idle over 2 s
  "$PY" - <<'EOF'
import time
def snap():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v)
i0, t0 = snap(); time.sleep(2); i1, t1 = snap()
print(f"{(i1 - i0) / max(1, t1 - t0):.2f}")
EOF
}
wait_quiet() {
  local end=$((SECONDS + 300)) f
  while :; do
    f=$(idle)
    if awk "BEGIN{exit !($f >= 0.90)}" || [ $SECONDS -ge $end ]; then break; fi
    sleep 5
  done
  echo "== $1: CPU idle $f before start (load $(cut -d' ' -f1-3 /proc/loadavg))"
}

wait_quiet "jbrain bench, N = 200k"
"$PY" -m experiments.cli bench --sizes=200000 --paths=event,gather,bcoo --steps="$STEPS" --reps="$REPS" \
  --warmup="$WARMUP" --bcoo_max_neurons=200000 --baselines= --wait_idle=0.9 --out="$OUTDIR/bench_200k.json" \
  | tee "$OUTDIR/bench_200k.txt"

if [ -n "${BRIAN2_PY:-}" ]; then
  wait_quiet "Brian2 cpp_standalone, 2 threads"
  OUT="$OUTDIR" "$BRIAN2_PY" "$PEERS/brian2_seed.py" --targets cpp_standalone --threads 2 \
    --sizes 20000:1000,200000:200 --workdir /tmp/brian2_seed_work | tee "$OUTDIR/brian2.txt"
fi

if [ -n "${BRAINPY_PY:-}" ]; then
  wait_quiet "BrainPy 2.9 (numba backend), raw and dyn"
  OUT="$OUTDIR" PYTHONPATH="${BRAINPY_SITE:-}" "$BRAINPY_PY" "$PEERS/brainpy_seed.py" --sizes 200000 \
    --api raw,dyn --T "$STEPS" --warmup "$WARMUP" --reps "$REPS" | tee "$OUTDIR/brainpy.txt"
fi

if [ "$ALIVE_STEPS" -gt 0 ]; then
  wait_quiet "alive check, small preset (20k)"
  "$PY" -m experiments.cli bench --sizes=20000 --paths=gather --steps="$STEPS" --reps=1 --warmup=0 \
    --baselines= --alive_steps="$ALIVE_STEPS" --alive_neurons=20000 --out="$OUTDIR/alive_20k.json" \
    | tee "$OUTDIR/alive_20k.txt"
fi
