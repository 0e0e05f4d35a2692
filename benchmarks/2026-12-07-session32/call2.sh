#!/bin/bash
# Session 32 call 2: the replay kernel that also pushes (working tree) against HEAD: gpu tests, then
# the 200k plastic step and the chat reply, interleaved, two rounds.
export PYTHONPATH=.
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/base HEAD > /dev/null 2>&1; (cd /tmp/base && git log --oneline -1)
timeout 200 python -m pytest -q -m gpu tests/test_backends.py -k "replay or plastic_bursts or static_bursts" 2>&1 | tail -4
B="--presets=default:plasticity=true --reps=3 --warmup=1000"
for r in 1 2; do
  for v in base new; do
    d=.; [ $v = base ] && d=/tmp/base
    k=""; [ $r = 2 ] && k=--kernels
    (cd $d && PYTHONPATH=$d python scripts/bench_presets.py $B $k --out=/tmp/p_${v}_$r.json) > $OUT/bench_${v}_$r.txt 2>&1
    echo "$v round $r: $(python -c "import json;r=json.load(open('/tmp/p_${v}_$r.json'))[0];print(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step'])")"
  done
done
for v in base new; do
  d=.; [ $v = base ] && d=/tmp/base
  (cd $d && PYTHONPATH=$d python scripts/bench_reply.py --flagfile=experiments/configs/default.flags --ttfr_runs=0 --out=/tmp/r_$v) > /tmp/reply_$v.txt 2>&1
  echo "reply $v:"; tail -6 /tmp/reply_$v.txt
done
cp /tmp/r_new/bench_reply.json $OUT/reply_new.json; cp /tmp/r_base/bench_reply.json $OUT/reply_base.json
