#!/bin/bash
# The CPU row on this 2-core Intel Xeon: jbrain's 200k seed step (event) at
# the working tree and at BASE (a worktree of the revision before the change,
# default /tmp/base), and Brian2 2.9's C++ standalone (2 threads), in turn,
# three rounds (session 36's method). ROUNDS="4 5 6" for more.
# BRIAN2_PY: a Python with brian2 (default /work/venv-brian2/bin/python).
cd "$(dirname "$0")/../../.."
R=$PWD; BASE="${BASE:-/tmp/base}"
BRIAN2_PY="${BRIAN2_PY:-/work/venv-brian2/bin/python}"
D=$R/benchmarks/2026-12-07-session38/cpu
bench() { # dir out
  (cd "$1" && PYTHONPATH="$1" JAX_PLATFORMS=cpu "$R/.venv/bin/python" -m experiments.cli bench --sizes=200000 \
    --paths=event --steps=200 --reps=8 --warmup=600 --baselines= --out="$2" > "${2%.json}.log" 2>&1)
  grep -o '"us_per_step_best": [0-9.]*' "$2" | grep -o '[0-9.]*$'
}
for r in ${ROUNDS:-1 2 3}; do
  b=$(bench "$BASE" "$D/base_r$r.json")
  j=$(bench "$R" "$D/jbrain_r$r.json")
  OUT=/tmp "$BRIAN2_PY" ../shared/peers/brian2_seed.py --targets cpp_standalone --threads 2 \
    --sizes 200000:200 --workdir /tmp/brian2_seed_work > "$D/brian2_r$r.log" 2>&1
  c=$(grep "^| cpp_standalone" "$D/brian2_r$r.log" | tail -1 | awk -F'|' '{print $6}')
  echo "round $r: base $b  jbrain $j  brian2 $c  jbrain/brian2 $(python3 -c "print(round($j/$c, 3))")"
done
