#!/bin/bash
# Session 32 call 3 (trimmed): the replay's window loop (working tree) against a56d052.
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/base HEAD > /dev/null 2>&1; (cd /tmp/base && git log --oneline -1)
timeout 70 python -m pytest -q -m gpu tests/test_backends.py -k "replay_stdp or plastic_bursts_on_the_pallas_plans_equal_xla and seed" 2>&1 | tail -2
cp _ab/ctas.py /tmp/ctas.py
B="--presets=default:plasticity=true --reps=3 --warmup=1000"
one() { # name dir ctas extra
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 40 python /tmp/ctas.py $3 $B $4 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  echo "$1: $(python -c "import json;r=json.load(open('/tmp/p.json'))[0];print(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step'])")"
}
one base /tmp/base 1024; one new . 1024; one new4096 . 4096; one base_k /tmp/base 1024 --kernels; one new_k . 1024 --kernels
for v in new base; do
  d=.; [ $v = base ] && d=/tmp/base
  (cd $d && PYTHONPATH=$d timeout 40 python scripts/bench_reply.py --flagfile=experiments/configs/default.flags --ttfr_runs=0 --repeats=10 --out=/tmp/r_$v) > /tmp/reply_$v.txt 2>&1
  echo "reply $v: $(grep NVIDIA /tmp/reply_$v.txt)"; cp /tmp/r_$v/bench_reply.json $OUT/reply_$v.json
done
