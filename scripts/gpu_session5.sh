#!/usr/bin/env bash
# Session 5's one GPU call: the event-STDP kernel's device time by part
# (scripts/diag_alias.py), the step probes (kern, stdp) and the 200k chat reply
# latency (chat default auto; event path with plasticity; plasticity off).
# Device call: bash scripts/gpu_session5.sh   (nothing to carry); ~6 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/jbrain_s5}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1
quiet() { grep -v "Deprecat\|return rule\|^W1\|warn"; }
timeout 150 python3 scripts/diag_alias.py 2>&1 | quiet | grep -v "^   %" >"$OUT/diag.txt"
rm -f "$OUT"/diag_alias_*.txt
timeout 200 python3 scripts/probe_variants.py kern,stdp 2>&1 | quiet >"$OUT/probe.log"
for variant in auto: event:--propagation=event off:--plasticity=false; do
  name=${variant%%:*}
  timeout 60 python3 scripts/bench_reply.py --flagfile=experiments/configs/default.flags --ttfr_runs=0 \
    --repeats=20 ${variant#*:} --out="$OUT/reply_$name" >"/tmp/reply_$name.log" 2>&1 || tail -3 "/tmp/reply_$name.log"
done
cat "$OUT/diag.txt" | head -40
tail -14 "$OUT/probe.log"
for f in "$OUT"/reply_*/bench_reply.json; do
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[1].split("/")[-2], "reply",
d["reply_ms_median"], "p90", d["reply_ms_p90"], "burst alone", d["burst_ms_median"])' "$f"
done
