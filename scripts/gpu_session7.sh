#!/usr/bin/env bash
# Session 7's GPU call: deferred LTP (plasticity.deferred_step) on the event path.
#   checks   the kernel and burst checks, eager == deferred bit for bit
#   probe    plastic event step at 200k / 1M, eager against deferred, and
#            replay_stdp's rows x warps (one process)
#   profile  device events of the plastic step, deferred and eager; a
#            deferred reply's host phases
#   reply    200k plastic chat reply, deferred (auto) and eager, same call
# Device call: bash scripts/gpu_session7.sh   (nothing to carry; ~5 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/jbrain_s7}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1
quiet() { grep -v "Deprecat\|return rule\|^W1\|warn"; }
reply() {  # reply NAME [bench_reply flags...]: 200k plastic reply latency -> $OUT/reply_NAME.log
  local name=$1
  shift
  timeout 100 python3 scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
    --ttfr_runs=0 --repeats=20 --out="$OUT/reply_$name" "$@" 2>&1 | quiet >"$OUT/reply_$name.log"
  echo "$name: $(grep '^| NVIDIA' "$OUT/reply_$name.log")"
}
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
