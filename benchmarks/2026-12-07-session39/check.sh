#!/bin/bash
# The shortest check of the NVVM lead (~1-2 min, from main's root): worktree A
# (session 36's tally patches 1-2 + session 37's 0001 + nvvm_warp.py),
# kernel_sparse.py and the gpu tally tests. call.sh is the whole call.
export PYTHONUNBUFFERED=1
R=$PWD; D=$R/benchmarks/2026-12-07-session36/tally; S=$R/benchmarks/2026-12-07-session37
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/A $(git rev-parse HEAD) > /dev/null 2>&1
cd /tmp/A && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch && python $R/benchmarks/2026-12-07-session39/nvvm_warp.py
export PYTHONPATH=.
timeout 60 python $S/kernel_sparse.py > $OUT/sparse_A.txt 2>&1
echo "== A: $(grep 'calls wrong' $OUT/sparse_A.txt)"; grep MISMATCH $OUT/sparse_A.txt | head -2; tail -3 $OUT/sparse_A.txt
timeout 90 python -m pytest -q -x -m gpu tests/test_backends.py -k tally > $OUT/t_tally_A.txt 2>&1
tail -1 $OUT/t_tally_A.txt
