#!/bin/bash
# Ran in session 38 (H100): the fence did not fix the count; benchmarks/2026-12-07-session38/call1.sh is the next probe.
# The next session's first device call (from main's root; ~8-10 min on a
# warm card). Worktree A: main + session 36's tally patches 1-2 + this
# folder's 0001 (each writing warp fences its partials). Worktree B: A +
# 0002 (the rate and the controller in the tally's tail, rounded as XLA's
# chain of controller steps rounds them; the oscillation precomputed).
# kernel_sparse.py and the gpu tally tests on each; the fingerprint case
# that failed, on each. Then, if A passes, the presets for main, A and B,
# kernels counted, and A's gpu fingerprints (B's if B passed).
export PYTHONUNBUFFERED=1
R=$PWD; D=$R/benchmarks/2026-12-07-session36/tally; S=$R/benchmarks/2026-12-07-session37
nvidia-smi --query-gpu=name --format=csv,noheader
for w in A B; do git worktree add -f /tmp/$w $(git rev-parse HEAD) > /dev/null 2>&1; done
(cd /tmp/A && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch)
(cd /tmp/B && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch && git apply $S/0002-wip-*.patch)
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
grep -q "^A .*'v': True, 'theta': True" $OUT/fp.txt || exit 0
B="--presets=default,default:plasticity=true,cortex --reps=3 --warmup=1000 --kernels"
one() { # name dir
  rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 110 python scripts/bench_presets.py $B --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  python -c "import json;print([(r['preset'],round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step']) for r in json.load(open('/tmp/p.json'))])"
}
echo "main: $(one main $R)"; echo "A: $(one A /tmp/A)"; echo "B: $(one B /tmp/B)"
W=A; grep -q "^B .*'v': True, 'theta': True" $OUT/fp.txt && W=B
cd /tmp/$W && timeout 120 python -m pytest -q -x -m gpu tests/test_compat.py > $OUT/compat.txt 2>&1
echo "compat $W: $(tail -1 $OUT/compat.txt)"
