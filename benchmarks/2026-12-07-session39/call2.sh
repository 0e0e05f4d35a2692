#!/bin/bash
# Session 39's second call (~6 min), after call1.sh passed on the same
# machine (its worktrees /tmp/A, /tmp/B): the presets on main, A and B,
# kernels counted, then the gpu fingerprints of the one to land.
export PYTHONUNBUFFERED=1
R=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
B="--presets=default,default:plasticity=true,cortex --reps=3 --warmup=1000 --kernels"
one() { # name dir
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 110 python scripts/bench_presets.py $B --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  cp /tmp/p.json $OUT/$1.json
  python -c "import json;print([(r['preset'],round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])"
}
echo "main: $(one main $R)"; echo "A: $(one A /tmp/A)"; echo "B: $(one B /tmp/B)"
W=${W:-B}
cd /tmp/$W && PYTHONPATH=. timeout 120 python -m pytest -q -x -m gpu tests/test_compat.py > $OUT/compat.txt 2>&1
echo "compat $W: $(tail -1 $OUT/compat.txt)"
