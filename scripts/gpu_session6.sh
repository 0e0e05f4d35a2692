#!/usr/bin/env bash
# Session 6's GPU calls (one device call per stage):
#   profile  event_stdp's device time by part, one fresh process per variant
#            (within one process XLA reuses the first compiled Triton kernel
#            of a name); a profile of the plastic event step; a chat reply's
#            host phases and device events                     (~1 minute)
#   graphs   200k plastic reply under XLA's command-buffer settings, with
#            XLA's STDP or the event_stdp kernel               (~2 minutes)
#   ab       kernel checks, the plastic step and reply with either STDP,
#            reply host phases (keep-input vs donating burst)   (~2 minutes)
# Device call: bash scripts/gpu_session6.sh STAGE   (nothing to carry)
set -uo pipefail
STAGE="${1:-}"
case "$STAGE" in profile | graphs | ab) ;; *) echo "usage: gpu_session6.sh profile|graphs|ab" >&2; exit 2 ;; esac
source "$(dirname "$0")/_gpu_lib.sh" "/tmp/jbrain_s6_$STAGE"
case "$STAGE" in
  profile)
    for parts in stdp stdp:out stdp:in stdp:out:in; do
      timeout 60 python3 scripts/diag_launch.py "$parts" 2>&1 | quiet | tee -a "$OUT/stdp_parts.txt"
    done
    timeout 120 python3 scripts/profile_step.py 200000:event:stdp 200000:event 2>&1 | quiet >"$OUT/profile_step.txt"
    timeout 120 python3 scripts/profile_reply.py 200000 2>&1 | quiet >"$OUT/profile_reply.txt"
    head -40 "$OUT/profile_step.txt"; head -40 "$OUT/profile_reply.txt"
    ;;
  graphs)
    CB="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"
    for ks in false true; do
      XLA_FLAGS="" reply "default_kernel_$ks" --event_stdp_kernel=$ks
      XLA_FLAGS="$CB" reply "while_kernel_$ks" --event_stdp_kernel=$ks
      XLA_FLAGS="--xla_gpu_enable_command_buffer=" reply "off_kernel_$ks" --event_stdp_kernel=$ks
    done
    ;;
  ab)
    timeout 150 python3 scripts/check_kernels_gpu.py 2>&1 | quiet >"$OUT/check.txt"
    timeout 120 python3 scripts/probe_variants.py kstdp 2>&1 | quiet >"$OUT/probe.txt"
    for ks in false true; do reply "kernel_$ks" --event_stdp_kernel=$ks; done
    timeout 100 python3 scripts/profile_reply.py 200000 kernel 2>&1 | quiet >"$OUT/phases_kernel.txt"
    timeout 100 python3 scripts/profile_reply.py 200000 kernel donate 2>&1 | quiet >"$OUT/phases_kernel_donate.txt"
    grep -v "^PASS" "$OUT/check.txt" | tail -5; tail -4 "$OUT/probe.txt"
    head -10 "$OUT/phases_kernel.txt"; head -10 "$OUT/phases_kernel_donate.txt"
    ;;
esac
