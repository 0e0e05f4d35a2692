#!/bin/bash
# The next session's first device call: with vote.patch, then window_loop.patch (git apply -3 after
# staging the first) applied to the working tree, check them on the GPU and time them against HEAD.
# Run from the repo root with the probe copied to _ab/ctas.py (carry ["_ab"]).
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/base HEAD > /dev/null 2>&1; (cd /tmp/base && git log --oneline -1)
timeout 150 python -m pytest -q -m gpu tests/test_backends.py -k "replay or plastic_bursts or static_bursts" 2>&1 | tail -3
cp _ab/ctas.py /tmp/ctas.py
B="--presets=default:plasticity=true --reps=3 --warmup=1000"
one() { # name dir ctas extra
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 60 python /tmp/ctas.py $3 $B $4 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  echo "$1: $(python -c "import json;r=json.load(open('/tmp/p.json'))[0];print(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step'])")"
}
for r in 1 2; do one base_r$r /tmp/base 1024; one new_r$r . 1024; one new4096_r$r . 4096; done
one base_k /tmp/base 1024 --kernels; one new_k . 1024 --kernels
for v in new base; do
  d=.; [ $v = base ] && d=/tmp/base
  (cd $d && PYTHONPATH=$d timeout 90 python scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
    --ttfr_runs=0 --repeats=10 --kernels --out=/tmp/r_$v) > /tmp/reply_$v.txt 2>&1
  echo "reply $v: $(grep NVIDIA /tmp/reply_$v.txt)"; cp /tmp/r_$v/bench_reply.json $OUT/reply_$v.json
done
grep -A12 "one reply" /tmp/reply_new.txt
