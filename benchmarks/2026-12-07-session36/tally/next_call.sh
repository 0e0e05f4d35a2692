#!/bin/bash
# Superseded by benchmarks/2026-12-07-session37/next_call.sh (session 37 found the bug and patched it).
# The call that would take the tally up again (run from the repo root on main): apply the archived
# patches in a worktree, then compare its Pallas run with XLA's where test_compat's first case fails
# (the log step by step), and run that case. Short: ~2-3 min on a warm card.
export PYTHONUNBUFFERED=1
D=$PWD/benchmarks/2026-12-07-session36/tally
git worktree add -f /tmp/t HEAD > /dev/null 2>&1
cd /tmp/t && git apply $D/000[12]-*.patch && git status --short | head
PYTHONPATH=. timeout 200 python $D/compat_probe.py > $OUT/probe.txt 2>&1; tail -4 $OUT/probe.txt
PYTHONPATH=. timeout 150 python -m pytest -q -x -m gpu tests/test_compat.py -k "event and False and not sheet" \
  --tb=short > $OUT/compat.txt 2>&1; tail -12 $OUT/compat.txt
