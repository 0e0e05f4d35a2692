#!/bin/bash
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 200 python -m pytest -q -m gpu tests/ -x 2>&1 | tail -3
git worktree add -f /tmp/base HEAD > /dev/null 2>&1
cp _ab/ctas.py /tmp/ctas.py
B="--presets=default:plasticity=true --reps=3 --warmup=1000"
one() { rm -f /tmp/p.json; (cd $2 && PYTHONPATH=$2 timeout 60 python /tmp/ctas.py 1024 $B $3 --out=/tmp/p.json) > $OUT/$1.txt 2>&1
  echo "$1: $(python -c "import json;r=json.load(open('/tmp/p.json'))[0];print(round(r['us_best'],2),round(r['us_median'],2),r['kernels_per_step'])")"; }
for r in 1 2; do one base_r$r /tmp/base; one vote_r$r .; done
G="--flagfile=experiments/configs/default.flags"
for x in "" "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL" "--xla_gpu_enable_command_buffer="; do
  echo "XLA_FLAGS=$x: $(XLA_FLAGS="$x" timeout 100 python _ab/gaps.py $G 2>&1 | grep 'ms median')"
done
rm -rf /tmp/dump; XLA_FLAGS="--xla_dump_to=/tmp/dump --xla_dump_hlo_as_text --xla_dump_hlo_pass_re=^$" timeout 60 python /tmp/ctas.py 1024 --presets=default:plasticity=true --reps=1 --warmup=100 --out=/tmp/p2.json > /dev/null 2>&1
ls -S /tmp/dump | head -5; tar czf $OUT/dump.tgz -C /tmp/dump $(cd /tmp/dump && ls | grep -i "after_optimizations.txt" )
