#!/bin/bash
# session 31, call 1: --memory_recurrent at three bounds, seed 2 (base 0.50 at 4 lessons), three at once
export PYTHONPATH=. XLA_PYTHON_CLIENT_MEM_FRACTION=0.2 JBRAIN_CACHE=/tmp/jbc
F="--flagfile=experiments/configs/teach.flags --teach_target=1.4 --teach_w_max=2 --memory_k=16 --presentations=4 --retain_steps=0 --interference_pairs=0"
D=$OUT/callR; mkdir -p $D
nvidia-smi --query-gpu=name --format=csv,noheader > $D/gpu.txt
git log --oneline -1 > $D/rev.txt 2>/dev/null
T=${1:-500}; S=${2:-2}
for w in ${3:-0.25 0.5 1.0}; do
( /usr/bin/time -f "%e s" timeout $T python _ab/evalrec.py associations $F --memory_recurrent=$w --memory_recurrent_eta=0.05 --seed=$S --out=$D/r${w}_s$S.json > $D/r${w}_s$S.log 2>&1 ) &
done
wait
cat $D/gpu.txt
for f in $D/*.log; do echo "== $f"; grep "rec after" $f | tail -2; tail -n 14 $f; done
cd $OUT && tar czf callR.tgz callR && rm -rf callR
