#!/bin/bash
# Session 37, call 2: kernel_sparse.py on session 36's tally (patches 1-2)
# and on this session's (with the controller).
export PYTHONUNBUFFERED=1
R=$PWD; D=$R/benchmarks/2026-12-07-session36/tally; S=$R/benchmarks/2026-12-07-session37
nvidia-smi --query-gpu=name --format=csv,noheader
for t in t0 t1; do
  git worktree add -f /tmp/$t $(git rev-parse HEAD) > /dev/null 2>&1
  (cd /tmp/$t && git apply $D/000[12]-*.patch)
done
(cd /tmp/t1 && git apply $S/call1_form.patch)
for t in t0 t1; do
  (cd /tmp/$t && PYTHONPATH=. timeout 150 python $S/kernel_sparse.py > $OUT/sparse_$t.txt 2>&1)
  echo "== $t"; grep -v "^MISMATCH" $OUT/sparse_$t.txt | tail -16; grep "^MISMATCH" $OUT/sparse_$t.txt | head -5
done
