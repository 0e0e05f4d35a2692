#!/usr/bin/env bash
# One device call (~5 minutes) before `scripts/gpu_bench.sh`: the engine's
# tests on the GPU, the A/B step probes and the chat reply latency.
#   1. pytest of the engine, synapse, plasticity and kernel tests (on a GPU the
#      gather path with plasticity is the fused Pallas kernel, so the
#      event-vs-gather test with plasticity may differ in the last bits there)
#   2. scripts/check_kernels_gpu.py (the Pallas kernels against XLA, compiled)
#      and scripts/probe_variants.py kern,stdp (us/step per path and size)
#   3. scripts/bench_reply.py at 200k: chat defaults (auto), the event path with
#      plasticity, and plasticity off; each with the burst alone beside it
#   4. scripts/profile_step.py 200000:event:stdp 1000000:event
# Device call:  bash scripts/gpu_check.sh      (nothing to carry)
# Writes 7 files under $OUT and prints a summary last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/jbrain_gpu_check}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
PY="${PY:-python3}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 | head -2

"$PY" -m pytest -q -p no:cacheprovider tests/test_engine.py tests/test_synapses.py \
  tests/test_plasticity.py tests/test_kernels.py >"$OUT/pytest.log" 2>&1
echo "pytest exit code $?"
"$PY" scripts/check_kernels_gpu.py >"$OUT/check.log" 2>&1
echo "check_kernels_gpu exit code $?"
"$PY" scripts/probe_variants.py "${PROBE:-kern,stdp}" >"$OUT/probe.log" 2>&1
for variant in auto: event:--propagation=event off:--plasticity=false; do
  name=${variant%%:*}
  "$PY" scripts/bench_reply.py --flagfile=experiments/configs/default.flags --ttfr_runs=0 \
    --repeats=20 ${variant#*:} --out="$OUT/reply_$name" >"/tmp/reply_$name.log" 2>&1 \
    || tail -5 "/tmp/reply_$name.log"
done
OUT=/tmp/jbrain_prof "$PY" scripts/profile_step.py 200000:event:stdp 1000000:event >"$OUT/prof.txt" 2>&1

echo "== profile (top kernels)"
grep -E "us/step|^[0-9]" "$OUT/prof.txt" | head -24
echo "== kernel checks"
grep -E "FAIL|ALL PASS|Error" "$OUT/check.log" | tail -8
echo "== tests"
tail -3 "$OUT/pytest.log"
echo "== reply latency (ms)"
for f in "$OUT"/reply_*/bench_reply.json; do
  "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[1].split("/")[-2], "reply",
d["reply_ms_median"], "burst alone", d["burst_ms_median"], "first", d["first_reply_s"])' "$f"
done
echo "== step probes"
tail -12 "$OUT/probe.log"
