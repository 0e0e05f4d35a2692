# Shared prologue of the gpu_session*.sh device calls (sourced, not run):
#   source scripts/_gpu_lib.sh DEFAULT_OUT
# cd to the repo root, $OUT (DEFAULT_OUT unless set) created, PYTHONPATH,
# the card's name printed, and two helpers:
#   quiet            drop JAX's deprecation and warning lines from a stream
#   reply NAME ARGS  200k plastic chat reply latency (bench_reply.py with ARGS,
#                    20 replies) -> $OUT/reply_NAME.log; prints its table row
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-$1}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1
quiet() { grep -v "Deprecat\|return rule\|^W1\|warn"; }
reply() {
  local name=$1
  shift
  timeout 100 python3 scripts/bench_reply.py --flagfile=experiments/configs/default.flags \
    --ttfr_runs=0 --repeats=20 --out="$OUT/reply_$name" "$@" 2>&1 | quiet >"$OUT/reply_$name.log"
  echo "$name: $(grep '^| NVIDIA' "$OUT/reply_$name.log")"
}
