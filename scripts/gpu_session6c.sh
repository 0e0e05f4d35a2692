#!/usr/bin/env bash
# Session 6's third GPU call: checks (kernels bit-exact, incl. event_stdp fused
# with propagation), the plastic step (XLA STDP vs the fused kernel), and the
# 200k plastic chat reply: Session path (one packed metrics transfer) with
# either STDP, plus host phases (keep-input vs donating burst).
# Device call: bash scripts/gpu_session6c.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/jbrain_s6c}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1
quiet() { grep -v "Deprecat\|return rule\|^W1\|warn"; }
timeout 150 python3 scripts/check_kernels_gpu.py 2>&1 | quiet >"$OUT/check.txt"
timeout 120 python3 scripts/probe_variants.py kstdp 2>&1 | quiet >"$OUT/probe.txt"
for ks in false true; do
  timeout 100 python3 scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
    --ttfr_runs=0 --repeats=20 --event_stdp_kernel=$ks --out="$OUT/reply_$ks" >"$OUT/reply_$ks.log" 2>&1 \
    || tail -4 "$OUT/reply_$ks.log"
done
timeout 100 python3 scripts/profile_reply.py 200000 kernel 2>&1 | quiet >"$OUT/phases_kernel.txt"
timeout 100 python3 scripts/profile_reply.py 200000 kernel donate 2>&1 | quiet >"$OUT/phases_kernel_donate.txt"
grep -v "^PASS" "$OUT/check.txt" | tail -5; grep -c "^PASS" "$OUT/check.txt"
tail -4 "$OUT/probe.txt"
for ks in false true; do echo "event_stdp_kernel=$ks"; grep "^| NVIDIA" "$OUT/reply_$ks.log"; done
head -10 "$OUT/phases_kernel.txt"; head -10 "$OUT/phases_kernel_donate.txt"
sed -n 11,24p "$OUT/phases_kernel.txt"
