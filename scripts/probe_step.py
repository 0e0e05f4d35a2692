"""Quick per-path timing of the jbrain burst (development probe; the real
benchmark is `jbrain bench`). Usage: PYTHONPATH=. python3 scripts/probe_step.py"""

import json
import os
import sys
import time

import jax
import numpy as np

from jbrain import brain
from jbrain.config import BrainConfig

sizes = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "200000,1000000,10000000").split(",")]
paths = (sys.argv[2] if len(sys.argv) > 2 else "gather,event").split(",")
T = 1000
plast = os.environ.get("PLASTICITY", "0") == "1"
rows = []
print(jax.devices(), flush=True)
for n in sizes:
    for p in paths:
        if p == "bcoo" and n > 1_000_000:
            continue
        cfg = BrainConfig(n_neurons=n, propagation=p, plasticity=plast)
        t0 = time.perf_counter()
        w, s = brain.init_brain(cfg, seed=1)
        jax.block_until_ready(s)
        t_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        s, m = brain.burst(cfg, w, s, None, length=T)
        jax.block_until_ready(s)
        t_first = time.perf_counter() - t0
        s, m = brain.burst(cfg, w, s, None, length=T)
        jax.block_until_ready(s)
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            s, m = brain.burst(cfg, w, s, None, length=T)
            jax.block_until_ready(s)
            ts.append(time.perf_counter() - t0)
        r = np.asarray(m.rate)
        row = dict(
            n=n,
            path=p + ("+stdp" if plast else ""),
            us=min(ts) / T * 1e6,
            med=float(np.median(ts)) / T * 1e6,
            init_s=t_init,
            first_s=t_first,
            rate=float(r.mean()),
            rmax=float(r.max()),
            status=int(s.status),
        )
        rows.append(row)
        print(row, flush=True)
        del w, s, m
        jax.clear_caches()
out = os.environ.get("OUT", "/tmp")
with open(os.path.join(out, "probe.json"), "w") as f:
    json.dump(rows, f, indent=1)
print("| N | path | us/step best | median | init s | compile+first s | rate | max | status |")
for r in rows:
    print(
        f"| {r['n']:,} | {r['path']} | {r['us']:.1f} | {r['med']:.1f} | {r['init_s']:.2f} "
        f"| {r['first_s']:.2f} | {r['rate']:.4f} | {r['rmax']:.4f} | {r['status']} |"
    )
