"""CPU profile of a 200-step burst of the seed step (default preset, N from argv[1], default
200k): each traced op's launches and us per step, by thread and name, heaviest first.

From the repository root: PYTHONPATH=. JAX_PLATFORMS=cpu .venv/bin/python
benchmarks/2026-12-07-session38/cpu/cpuprof.py
"""

import collections
import glob
import gzip
import json
import os
import sys
import tempfile

import jax

from experiments.flagfiles import config_from_flagfile
from jbrain.plan import resolve
from jbrain.session import Session

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
config = config_from_flagfile("default", n_neurons=n)
s = Session.new(config, seed=0, plan=resolve(config.circuit()))
s.run(200)
s.run(200)
steps = 200
with tempfile.TemporaryDirectory() as tmp:
    with jax.profiler.trace(tmp, create_perfetto_trace=True):
        s.run(steps)
        jax.block_until_ready(s.state.neurons.v)
    path = glob.glob(os.path.join(tmp, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(path, "rt") as f:
        trace = json.load(f)
events = trace["traceEvents"] if isinstance(trace, dict) else trace
names = {}
for e in events:
    if e.get("ph") == "M" and e.get("name") == "thread_name":
        names[(e["pid"], e["tid"])] = e["args"]["name"]
total = collections.defaultdict(lambda: [0, 0.0])
for e in events:
    if e.get("ph") == "X":
        key = (names.get((e["pid"], e["tid"]), "?")[:20], e["name"][:70])
        total[key][0] += 1
        total[key][1] += float(e.get("dur", 0))
for key, (count, dur) in sorted(total.items(), key=lambda x: -x[1][1])[:40]:
    print(f"{count / steps:7.2f} {dur / steps:9.1f}  {key[0]:20s} {key[1]}")
