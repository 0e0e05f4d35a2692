#!/bin/bash
# Session 39's device call, from main's root (call1.sh and call2.sh in one,
# most important first, under 600 s). Worktree A: session 36's tally
# patches 1-2 + session 37's 0001 + nvvm_warp.py (the warp's shuffles and
# ballot as NVVM's convergent intrinsics, not pure inline asm); B: A +
# session 37's 0002. Correctness on each (kernel_sparse.py, the gpu tally
# tests, the fingerprint variants); if B is right, the presets on main and B
# (kernels counted), B's gpu compat tests, then all of B's gpu kernel tests.
# If A's count is still wrong: session 38's per-warp probe instead.
# QUICK=1: the shortest check (1-2 min): A's kernel_sparse.py and gpu tally tests only.
export PYTHONUNBUFFERED=1
R=$PWD; D=$R/benchmarks/2026-12-07-session36/tally; S=$R/benchmarks/2026-12-07-session37
N=$R/benchmarks/2026-12-07-session39
nvidia-smi --query-gpu=name --format=csv,noheader
for w in A B; do git worktree add -f /tmp/$w $(git rev-parse HEAD) > /dev/null 2>&1; done
(cd /tmp/A && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch && python $N/nvvm_warp.py)
(cd /tmp/B && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch && git apply $S/0002-wip-*.patch \
  && python $N/nvvm_warp.py)
export PYTHONPATH=.
for w in A B; do
  cd /tmp/$w
  timeout 60 python $S/kernel_sparse.py > $OUT/sparse_$w.txt 2>&1
  echo "== $w: $(grep 'calls wrong' $OUT/sparse_$w.txt)"; grep MISMATCH $OUT/sparse_$w.txt | head -2
  timeout 90 python -m pytest -q -x -m gpu tests/test_backends.py -k tally > $OUT/t_tally_$w.txt 2>&1
  tail -1 $OUT/t_tally_$w.txt
  [ -n "$QUICK" ] && exit 0
done
cd /tmp/A && timeout 60 python $S/fp_variants.py A > $OUT/fp.txt 2>&1
cd /tmp/B && timeout 60 python $S/fp_variants.py B >> $OUT/fp.txt 2>&1
grep "^A \|^B " $OUT/fp.txt
if ! grep -q "0 of 52 calls wrong" $OUT/sparse_A.txt; then
  cd $R && bash benchmarks/2026-12-07-session38/call1.sh 2>&1 | tail -30
  exit 0
fi
P="--presets=default,default:plasticity=true,cortex --reps=3 --warmup=1000 --kernels"
one() { # name dir
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 110 python scripts/bench_presets.py $P --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  cp /tmp/p.json $OUT/$1.json
  python -c "import json;print([(r['preset'],round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])"
}
echo "main: $(one main $R)"; echo "B: $(one B /tmp/B)"
cd /tmp/B && timeout 120 python -m pytest -q -x -m gpu tests/test_compat.py > $OUT/compat.txt 2>&1
echo "compat B: $(tail -1 $OUT/compat.txt)"
timeout 150 python -m pytest -q -m gpu tests/test_backends.py > $OUT/t_backends_B.txt 2>&1
echo "B, all gpu kernel tests: $(tail -1 $OUT/t_backends_B.txt)"
