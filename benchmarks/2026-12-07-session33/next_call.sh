#!/bin/bash
# The next session's first device call (an H200 if one comes): the current table's plastic and
# reply rows at the working tree, with session 32's revision a415e17 (the table's rows) in the
# same call, two rounds interleaved; then the seed step with its kernels. Run from the repo root.
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
git log --oneline -1
git worktree add -f /tmp/base a415e17 > /dev/null 2>&1
B="--presets=default:plasticity=true --reps=3 --warmup=1000"
one() { # name dir extra
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 90 python scripts/bench_presets.py $B $3 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  echo "$1: $(python -c "import json;r=json.load(open('/tmp/p.json'))[0];print(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step'])")"
}
for r in 1 2; do one base_r$r /tmp/base; one new_r$r .; done
one new_k . --kernels
for v in new base; do
  d=.; [ $v = base ] && d=/tmp/base
  (cd $d && PYTHONPATH=$d timeout 120 python scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
    --ttfr_runs=0 --repeats=20 --out=/tmp/r_$v) > $OUT/reply_$v.txt 2>&1
  echo "reply $v: $(grep NVIDIA $OUT/reply_$v.txt)"
done
timeout 120 python scripts/bench_presets.py --presets=default --reps=3 --warmup=1000 --kernels --out=/tmp/s.json \
  > $OUT/seed_k.txt 2>&1; grep -A3 "| preset" $OUT/seed_k.txt
