#!/bin/bash
# Session 37, call 4 (call 3 cut to what the budget left): the tally with
# spikes counted as a float row and the controller in its tail (session
# 36's patches 1-2 and this session's 0001): kernel_sparse.py, then the
# failing fingerprint case with the rate rounded before the controller's
# subtraction and with it fused (JB_FUSED_RATE).
export PYTHONUNBUFFERED=1
R=$PWD; D=$R/benchmarks/2026-12-07-session36/tally; S=$R/benchmarks/2026-12-07-session37
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/t2 $(git rev-parse HEAD) > /dev/null 2>&1
cd /tmp/t2 && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch
export PYTHONPATH=.
timeout 80 python $S/kernel_sparse.py > $OUT/sparse.txt 2>&1; grep -v MISMATCH $OUT/sparse.txt | tail -8; grep MISMATCH $OUT/sparse.txt | head -3
JB_FUSED_RATE= timeout 70 python $S/fp_variants.py rounded > $OUT/fp_rounded.txt 2>&1; tail -1 $OUT/fp_rounded.txt
JB_FUSED_RATE=1 timeout 70 python $S/fp_variants.py fused > $OUT/fp_fused.txt 2>&1; tail -1 $OUT/fp_fused.txt
