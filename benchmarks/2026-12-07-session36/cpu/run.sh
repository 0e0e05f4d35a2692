#!/bin/bash
# The CPU row on this 2-core AMD EPYC: jbrain's 200k seed step (event) and Brian2 2.9's C++
# standalone (2 threads), alternating, three rounds (session 26's method, run there on a Xeon); ROUNDS="4 5 6" for more.
# BRIAN2_PY: a Python with brian2 (as scripts/cpu_bench.sh; default /work/venv-brian2/bin/python).
cd "$(dirname "$0")/../../.."
BRIAN2_PY="${BRIAN2_PY:-/work/venv-brian2/bin/python}"
D=benchmarks/2026-12-07-session36/cpu
for r in ${ROUNDS:-1 2 3}; do
  ./.venv/bin/jbrain bench --sizes=200000 --paths=event --steps=200 --reps=8 --warmup=600 --baselines= \
    --out=$D/jbrain_r$r.json > $D/jbrain_r$r.log 2>&1
  OUT=/tmp "$BRIAN2_PY" ../shared/peers/brian2_seed.py --targets cpp_standalone --threads 2 \
    --sizes 200000:200 --workdir /tmp/brian2_seed_work > $D/brian2_r$r.log 2>&1
  echo "round $r: jbrain $(grep -o '"us_per_step_best": [0-9.]*' $D/jbrain_r$r.json) brian2 $(grep cpp_standalone $D/brian2_r$r.log | tail -1)"
done
