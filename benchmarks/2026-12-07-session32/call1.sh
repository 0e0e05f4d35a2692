#!/bin/bash
# Session 32 call 1: (a) profile + HLO of the 200k seed and plastic steps; (b) the three flags through
# consistency, memory, reward; the shipped flags at seed 2, P=4.
export PYTHONPATH=.
T=experiments/configs/teach.flags
X="--teach_target=1.4 --teach_w_max=2 --memory_k=16"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
git log --oneline -1
XLA_FLAGS="--xla_dump_to=/tmp/dump --xla_dump_hlo_as_text" timeout 200 python scripts/bench_presets.py \
  --presets=default,default:plasticity=true --reps=3 --warmup=1000 --kernels --out=$OUT/presets.json > $OUT/presets.txt 2>&1
echo "presets rc=$?"
grep -l "jbrain_push_event" /tmp/dump/*after_optimizations.txt | head -20 > /tmp/burst.lst
ls -la $(cat /tmp/burst.lst) | head; tar czf $OUT/hlo.tgz $(cat /tmp/burst.lst)
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
run() { name=$1; shift; ( t0=$(date +%s); python -m experiments.eval "$@" --out=$OUT/$name.json > /tmp/$name.log 2>&1; echo "$name rc=$? $(( $(date +%s)-t0 )) s" >> /tmp/times.txt; cat /tmp/$name.log >> $OUT/evals.log ) & }
run assoc_shipped_s2 associations --flagfile=$T --seed=2 --presentations=4 --retain_steps=0
run consistency_3f consistency --flagfile=$T $X
run memory_3f memory --flagfile=$T --working_memory $X
run reward_3f reward --flagfile=experiments/configs/choice.flags $X
wait
cat /tmp/times.txt
grep -v "^ " $OUT/presets.txt | tail -8
for f in consistency_3f memory_3f reward_3f assoc_shipped_s2; do echo "== $f"; tail -22 /tmp/$f.log; done
