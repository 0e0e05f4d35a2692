#!/bin/bash
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader

timeout 200 python -m pytest -q -x -m gpu tests/test_backends.py -k "tally or static_bursts" > $OUT/tests.txt 2>&1
tail -3 $OUT/tests.txt
git worktree add -f /tmp/base 1163439 > /dev/null 2>&1
B="--presets=default,default:plasticity=true --reps=3 --warmup=1000"
one() { # name dir extra
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 100 python scripts/bench_presets.py $B $3 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  echo "$1: $(python -c "import json;print([(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])")"
}
one base_r1 /tmp/base; one new_r1 .; one new_k . --kernels
grep -A4 "kernels (launch" $OUT/new_k.txt | head -12
