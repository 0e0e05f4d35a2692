#!/usr/bin/env bash
# Session 6's first GPU call: where the plastic 200k step and chat reply spend
# their time. (1) event_stdp's cost with its body cut, one fresh process per
# variant (session 5's "fixed ~29 us" was measured in one process, where XLA
# may have reused the first compiled kernel of that name); (2) a profile of
# the plastic event step; (3) a chat reply's host phases and device events.
# Device call: bash scripts/gpu_session6.sh   (nothing to carry); ~3 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/jbrain_s6}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1
quiet() { grep -v "Deprecat\|return rule\|^W1\|warn"; }
for parts in stdp stdp:out stdp:in stdp:out:in; do
  timeout 60 python3 scripts/diag_launch.py "$parts" 2>&1 | quiet | tee -a "$OUT/stdp_parts.txt"
done
timeout 120 python3 scripts/profile_step.py 200000:event:stdp 200000:event 2>&1 | quiet >"$OUT/profile_step.txt"
timeout 120 python3 scripts/profile_reply.py 200000 2>&1 | quiet >"$OUT/profile_reply.txt"
head -22 "$OUT/profile_step.txt"; sed -n 24,40p "$OUT/profile_step.txt"
head -40 "$OUT/profile_reply.txt"
