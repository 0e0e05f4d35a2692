#!/usr/bin/env bash
# Session 6's second GPU call: the 200k plastic chat reply under XLA's
# command-buffer (CUDA graph) settings, with XLA's STDP or the event_stdp
# kernel (now one random load per pre/post: sign-packed traces), and that
# kernel's device time by part. Device call: bash scripts/gpu_session6b.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/jbrain_s6b}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1
quiet() { grep -v "Deprecat\|return rule\|^W1\|warn"; }
for parts in stdp:out stdp:in stdp:out:in; do
  timeout 60 python3 scripts/diag_launch.py "$parts" 2>&1 | quiet | tee -a "$OUT/stdp_parts.txt"
done
CB="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"
i=0
for xf in "" "$CB" "--xla_gpu_enable_command_buffer="; do
  for ks in false true; do
    i=$((i + 1))
    XLA_FLAGS="$xf" timeout 100 python3 scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
      --ttfr_runs=0 --repeats=20 --event_stdp_kernel=$ks --out="$OUT/reply_$i" >"$OUT/reply_$i.log" 2>&1 \
      || tail -4 "$OUT/reply_$i.log"
  done
done
for f in "$OUT"/reply_*/bench_reply.json; do
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(f"{d[\"xla_flags\"][-40:]:40s} kernel={d[\"event_stdp_kernel\"]!s:5s} reply {d[\"reply_ms_median\"]:6.2f} p90 {d[\"reply_ms_p90\"]:6.2f} burst {d[\"burst_ms_median\"]:6.2f}")' "$f"
done
