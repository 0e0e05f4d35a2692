#!/bin/bash
# tally: gpu tests, then seed + plastic A/B against HEAD (1163439), two rounds interleaved
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/base 1163439 > /dev/null 2>&1
timeout 240 python -m pytest -q -x -m gpu tests/test_backends.py -k "tally or static_bursts" > $OUT/tests.txt 2>&1
tail -3 $OUT/tests.txt
B="--presets=default,default:plasticity=true --reps=3 --warmup=1000"
one() { # name dir extra
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 100 python scripts/bench_presets.py $B $3 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  echo "$1: $(python -c "import json;print([(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])")"
}
for r in 1 2; do one base_r$r /tmp/base; one new_r$r .; done
one new_k . --kernels
grep -B1 -A12 "kernels (launch" $OUT/new_k.txt | head -40
for v in new base; do
  d=.; [ $v = base ] && d=/tmp/base
  (cd $d && PYTHONPATH=$d timeout 100 python scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
    --ttfr_runs=0 --repeats=20 --out=/tmp/r_$v) > $OUT/reply_$v.txt 2>&1
  echo "reply $v: $(grep NVIDIA $OUT/reply_$v.txt)"
done
