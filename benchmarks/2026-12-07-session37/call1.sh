#!/bin/bash
# Session 37, call 1: the tally (session 36's patches) with the controller in
# its tail (this session's patch), in a worktree. Its gpu kernel tests, the
# fingerprint case that failed; if that fails, where (tally_probe.py, and the
# rate's fusions in main's HLO and the tally's); else the seed, plastic and
# cortex presets against main, kernels counted, then the gpu fingerprints.
export PYTHONUNBUFFERED=1
R=$PWD; D=$R/benchmarks/2026-12-07-session36/tally; S=$R/benchmarks/2026-12-07-session37
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/t $(git rev-parse HEAD) > /dev/null 2>&1
cd /tmp/t && git apply $D/000[12]-*.patch && git apply $S/call1_form.patch && git status --short | head -3
export PYTHONPATH=.
timeout 150 python -m pytest -q -x -m gpu tests/test_backends.py -k tally > $OUT/t_tally.txt 2>&1
tail -3 $OUT/t_tally.txt
timeout 100 python $S/fp_variants.py none > $OUT/fp.txt 2>&1; tail -2 $OUT/fp.txt
if ! grep -q "'v': True, 'theta': True" $OUT/fp.txt; then
  timeout 150 python $S/tally_probe.py > $OUT/probe.txt 2>&1; tail -12 $OUT/probe.txt
  (cd $R && timeout 60 python $S/hlo_rate.py /tmp/hlo_main.txt > $OUT/hlo_main.txt 2>&1)
  timeout 60 python $S/hlo_rate.py /tmp/hlo_tally.txt > $OUT/hlo_tally.txt 2>&1
  gzip -c /tmp/hlo_main.txt > $OUT/hlo_main_full.txt.gz; gzip -c /tmp/hlo_tally.txt > $OUT/hlo_tally_full.txt.gz
  exit 0
fi
B="--presets=default,default:plasticity=true,cortex --reps=3 --warmup=1000 --kernels"
one() { # name dir
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 130 python scripts/bench_presets.py $B --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  python -c "import json;print([(r['preset'],round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])"
}
echo "main: $(one main $R)"
echo "tally: $(one tally /tmp/t)"
timeout 150 python -m pytest -q -x -m gpu tests/test_compat.py > $OUT/compat.txt 2>&1; tail -4 $OUT/compat.txt
