#!/bin/bash
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/base HEAD > /dev/null 2>&1
git worktree add -f /tmp/wl HEAD > /dev/null 2>&1; (cd /tmp/wl && git apply $OLDPWD/_ab/window_loop.patch && git status --short | head -3)
cp _ab/ctas.py /tmp/ctas.py
B="--presets=default:plasticity=true --reps=3 --warmup=1000"
one() { rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 60 python /tmp/ctas.py 1024 $B $3 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  echo "$1: $(python -c "import json;r=json.load(open('/tmp/p.json'))[0];print(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step'])")"; }
for r in 1 2; do one base_r$r /tmp/base; one wl_r$r /tmp/wl; one new_r$r .; done
one wl_k /tmp/wl --kernels
GAPS_TRACE=1 timeout 200 python _ab/gaps.py --flagfile=experiments/configs/default.flags 2>&1 | tee $OUT/gaps.txt | grep -v Warn
