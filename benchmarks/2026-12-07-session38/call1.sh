#!/bin/bash
# The tally (session 36's patches 1-2 + session 37's 0001) with its per-warp
# partials returned, at 2,000 neurons: are the per-warp spike counts stored
# wrong, or lost in the last warp's sum? From main's root.
R=$PWD; S=$R/benchmarks/2026-12-07-session37; D=$R/benchmarks/2026-12-07-session36/tally
nvidia-smi --query-gpu=name --format=csv,noheader
git worktree add -f /tmp/P $(git rev-parse HEAD) > /dev/null 2>&1
cd /tmp/P && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch
python - <<'PY'
p = "jbrain/backends/pallas_gpu.py"
s = open(p).read()
a = "    (counters,), (_, _, sums, counts) = _call("
assert a in s
s = s.replace(a, "    (counters,), (parts, fired, sums, counts) = _call(")
a = "    return sums, counts, counters\n"
assert s.count(a) == 1
s = s.replace(a, "    return sums, counts, counters, parts, fired\n")
open(p, "w").write(s)
PY
PYTHONPATH=. timeout 120 python $R/benchmarks/2026-12-07-session38/tally_fired.py 2>&1 | tail -12
# Variant Q: every inline asm of the kernels (ballot, popc, shuffles) marked as
# having side effects, so that LLVM cannot sink a warp vote into a branch only
# lane 0 takes (a pure asm is not convergent to LLVM).
git -C $R worktree add -f /tmp/Q $(git -C $R rev-parse HEAD) > /dev/null 2>&1
cd /tmp/Q && git apply $D/000[12]-*.patch && git apply $S/0001-wip-*.patch
sed -i 's/has_side_effects=False, asm_dialect=0/has_side_effects=True, asm_dialect=0/' jbrain/backends/pallas_gpu.py
grep -c "has_side_effects=True, asm_dialect=0" jbrain/backends/pallas_gpu.py
PYTHONPATH=. timeout 120 python $S/kernel_sparse.py > /tmp/q.txt 2>&1; grep -m3 MISMATCH /tmp/q.txt; grep "calls wrong" /tmp/q.txt; tail -14 /tmp/q.txt
