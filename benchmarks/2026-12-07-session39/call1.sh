#!/bin/bash
# Session 39's first device call, from main's root (~4 min). Worktree A:
# session 36's tally patches 1-2 + session 37's 0001 + nvvm_warp.py (the
# warp's shuffles and ballot as NVVM's convergent intrinsics, not pure inline
# asm); B: A + session 37's 0002. kernel_sparse.py, the gpu tally tests and
# the fingerprint variants on each; all gpu kernel tests on A. If A's count is
# still wrong: session 38's per-warp probe (call1.sh there).
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
done
cd /tmp/A && timeout 60 python $S/fp_variants.py A > $OUT/fp.txt 2>&1
cd /tmp/B && timeout 60 python $S/fp_variants.py B >> $OUT/fp.txt 2>&1
grep "^A \|^B " $OUT/fp.txt
if grep -q "0 of 52 calls wrong" $OUT/sparse_A.txt; then
  cd /tmp/A && timeout 200 python -m pytest -q -m gpu tests/test_backends.py > $OUT/t_backends_A.txt 2>&1
  echo "A, all gpu kernel tests: $(tail -1 $OUT/t_backends_A.txt)"
else
  cd $R && bash benchmarks/2026-12-07-session38/call1.sh 2>&1 | tail -30
fi
