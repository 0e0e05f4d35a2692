#!/bin/bash
# Session 36's second call, from branch wip-tally (the last-CTA tally): every gpu test, then the
# cortex preset and the seed against 1163439 (main before the tally), kernels counted.
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
git log --oneline -1
timeout 400 python -m pytest -q -m gpu tests/test_backends.py tests/test_compat.py > $OUT/tests.txt 2>&1
tail -3 $OUT/tests.txt
grep -q "failed\|error" $OUT/tests.txt && exit 0
git worktree add -f /tmp/base 1163439 > /dev/null 2>&1
B="--presets=default,cortex --reps=3 --warmup=1000 --kernels"
one() { # name dir
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 150 python scripts/bench_presets.py $B --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  python -c "import json;print([(r['preset'],round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])"
}
echo "base: $(one base /tmp/base)"
echo "tally: $(one tally .)"
timeout 200 python benchmarks/2026-12-07-session36/tally/hlo_probe.py /tmp/hlo.txt loop_add_fusion \
  loop_add_clamp_convert_select_fusion loop_add_minimum_fusion loop_or_fusion loop_multiply_fusion > $OUT/hlo_probe.txt 2>&1
gzip -c /tmp/hlo.txt > $OUT/hlo.txt.gz; head -c 6000 $OUT/hlo_probe.txt
