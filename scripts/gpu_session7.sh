#!/usr/bin/env bash
# Session 7's GPU call: deferred LTP (plasticity.deferred_step) on the event
# path, in one go: the 200k plastic chat reply, deferred (auto) and eager;
# the kernel and burst checks (eager == deferred bit for bit); the plastic
# event step at 200k / 1M, eager against deferred (one process); device
# events of the plastic step, and a deferred reply's host phases.
# Device call: bash scripts/gpu_session7.sh   (nothing to carry; ~5 minutes)
set -uo pipefail
source "$(dirname "$0")/_gpu_lib.sh" /tmp/jbrain_s7
reply deferred --stdp=auto
reply eager --stdp=eager
timeout 150 python3 scripts/check_kernels_gpu.py 2>&1 | quiet >"$OUT/check.txt"
timeout 200 python3 scripts/probe_variants.py defer 2>&1 | quiet >"$OUT/probe.txt"
timeout 120 python3 scripts/profile_step.py 200000:event:stdp:deferred 200000:event:stdp:eager 2>&1 | quiet >"$OUT/profile_step.txt"
timeout 100 python3 scripts/profile_reply.py 200000 2>&1 | quiet >"$OUT/profile_reply.txt"
grep -c "^PASS" "$OUT/check.txt"; grep -v "^PASS" "$OUT/check.txt" | tail -4
head -12 "$OUT/profile_step.txt"
head -9 "$OUT/profile_reply.txt"
tail -5 "$OUT/probe.txt"
