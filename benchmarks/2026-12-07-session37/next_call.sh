#!/bin/bash
# The next session's first device call (from main's root; ~6-9 min on a warm
# card): session 36's tally patches 1-2 and this session's 0001 (each
# writer fences its partials; the rate and the controller in the tally's
# tail) in a worktree. kernel_sparse.py and the kernel's gpu tests (a
# sparse 2,000-neuron case among them), then the fingerprint case that
# failed, with the controller's error rounded after the rate (as shipped in
# 0001) and with it fused (JB_FUSED_RATE=1, a probe switch in 0001); stops
# unless one of them equals d666d30's. Then the presets against main,
# kernels counted, and the gpu fingerprints.
export PYTHONUNBUFFERED=1
R=$PWD; D=$R/benchmarks/2026-12-07-session36/tally; S=$R/benchmarks/2026-12-07-session37
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/t2 $(git rev-parse HEAD) > /dev/null 2>&1
cd /tmp/t2 && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch && git status --short | head -3
export PYTHONPATH=.
timeout 80 python $S/kernel_sparse.py > $OUT/sparse.txt 2>&1
grep -v MISMATCH $OUT/sparse.txt | tail -8; grep MISMATCH $OUT/sparse.txt | head -3
timeout 100 python -m pytest -q -x -m gpu tests/test_backends.py -k tally > $OUT/t_tally.txt 2>&1
tail -2 $OUT/t_tally.txt
JB_FUSED_RATE= timeout 70 python $S/fp_variants.py rounded > $OUT/fp_rounded.txt 2>&1; tail -1 $OUT/fp_rounded.txt
JB_FUSED_RATE=1 timeout 70 python $S/fp_variants.py fused > $OUT/fp_fused.txt 2>&1; tail -1 $OUT/fp_fused.txt
grep -q "'v': True, 'theta': True" $OUT/fp_rounded.txt $OUT/fp_fused.txt || exit 0
B="--presets=default,default:plasticity=true,cortex --reps=3 --warmup=1000 --kernels"
one() { # name dir
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 130 python scripts/bench_presets.py $B --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  python -c "import json;print([(r['preset'],round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])"
}
echo "main: $(one main $R)"
echo "tally: $(one tally /tmp/t2)"
timeout 150 python -m pytest -q -x -m gpu tests/test_compat.py > $OUT/compat.txt 2>&1; tail -4 $OUT/compat.txt
