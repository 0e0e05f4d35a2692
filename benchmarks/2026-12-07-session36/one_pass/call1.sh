#!/bin/bash
# Session 36's device call: the one-pass tally (wip-tally2, this tree) against the last-CTA tally
# (wip-tally) and 1163439 (main before either). gpu tests of the tree first; stops if one fails.
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 240 python -m pytest -q -x -m gpu tests/test_backends.py > $OUT/tests.txt 2>&1
tail -2 $OUT/tests.txt
grep -q "failed\|error" $OUT/tests.txt && exit 0
git worktree add -f /tmp/base 1163439 > /dev/null 2>&1
git worktree add -f /tmp/tally wip-tally > /dev/null 2>&1
B="--presets=default,default:plasticity=true --reps=3 --warmup=1000"
one() { # name dir extra
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 100 python scripts/bench_presets.py $B $3 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  python -c "import json;print([(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])" > /tmp/$1.row
  echo "$1: $(cat /tmp/$1.row)"
}
one base_r1 /tmp/base; one tally_r1 /tmp/tally; one one_r1 . --kernels
grep -A8 "kernels (launch" $OUT/one_r1.txt | head -20
one base_r2 /tmp/base; one tally_r2 /tmp/tally; one one_r2 .
for v in one base; do
  d=.; [ $v = base ] && d=/tmp/base
  (cd $d && PYTHONPATH=$d timeout 100 python scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
    --ttfr_runs=0 --repeats=20 --out=/tmp/r_$v) > $OUT/reply_$v.txt 2>&1
  echo "reply $v: $(grep NVIDIA $OUT/reply_$v.txt)"
done
