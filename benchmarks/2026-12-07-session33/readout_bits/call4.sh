#!/bin/bash
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/base HEAD > /dev/null 2>&1
cp _ab/ctas.py /tmp/ctas.py
B="--presets=default,default:plasticity=true --reps=3 --warmup=1000"
one() { rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 90 python /tmp/ctas.py 1024 $B $3 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  echo "$1: $(python -c "import json;[print(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step'], end=' | ') for r in json.load(open('/tmp/p.json'))]")"; }
for r in 1 2; do one base_r$r /tmp/base; one new_r$r .; done
one new_k . --kernels
for v in new base; do
  d=.; [ $v = base ] && d=/tmp/base
  (cd $d && PYTHONPATH=$d timeout 90 python scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
    --ttfr_runs=0 --repeats=20 --out=/tmp/r_$v) > /tmp/reply_$v.txt 2>&1
  echo "reply $v: $(grep NVIDIA /tmp/reply_$v.txt)"
done
timeout 150 python -m pytest -q -m gpu tests/test_brain.py tests/test_backends.py tests/test_session.py 2>&1 | tail -2
