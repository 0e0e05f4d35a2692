"""Tune and dissect the event-STDP kernel (`kernels.event_stdp`) on a GPU:
rows per program x warps, each part alone (out-rows: LTD; in-rows: LTP),
beside XLA's STDP and scatter-add on the same spike list; then bit-identity
of whole plastic bursts at N (run twice; kernels vs XLA; event vs the fused
gather kernel). A development tool; writes $OUT/sweep_event_stdp.json.

    PYTHONPATH=. python3 scripts/sweep_event_stdp.py [N]

Each timing: R calls in one jitted fori_loop (weights carried), best of 5.
"""

import itertools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jbrain import brain, kernels, plasticity, synapses
from jbrain.config import BrainConfig

R = 100
n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
interpret = not kernels.on_gpu()
ON_GPU = kernels.on_gpu


def best_us(fn, *args):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return min(times) / R * 1e6


cfg = BrainConfig(n_neurons=n, propagation="event", plasticity=True)
wiring, st = brain.init_brain(cfg, seed=3)
st, _ = brain.burst(cfg, wiring, st, None, length=300)
s = st.spikes
rng = np.random.default_rng(0)
x = jnp.asarray(rng.exponential(0.5, n).astype(np.float32))
y = jnp.asarray(rng.exponential(0.5, n).astype(np.float32))
ltp, ltd, _, _ = plasticity.trace_step(cfg, x, y, s)
raw, count = kernels.spike_list(s, capacity=cfg.spike_capacity, interpret=interpret)
ids = kernels.listed(raw, count, n)
w0 = synapses.to_pre_major(wiring, st.weights)
print(jax.devices(), "N", n, "spikes", int(count), flush=True)
rows = []


def kernel_loop(w):
    body = lambda i, w: kernels.event_stdp(  # noqa: E731
        wiring.pre, wiring.out_post, w, s, raw, count, ltp, ltd, w_max=cfg.w_max, interpret=interpret
    )
    return jax.lax.fori_loop(0, R, body, w)


def xla_loop(w):
    def body(i, w):
        return plasticity.stdp_step(cfg, wiring, w, x, y, s, ids, pre_major=True)[0]

    return jax.lax.fori_loop(0, R, body, w)


def scatter_loop(acc):
    def body(i, acc):
        return acc + synapses.propagate_event(wiring, w0, ids + (acc[0] > 1e30).astype(jnp.int32))

    return jax.lax.fori_loop(0, R, body, acc)


grid = list(itertools.product((8, 16, 32, 64, 128), (1, 2, 4, 8), [("out", "in")]))
grid += [(32, 4, ("out",)), (32, 4, ("in",)), (8, 2, ("out",)), (8, 2, ("in",))]
for er, warps, parts in grid:
    kernels.EVENT_ROWS, kernels.EVENT_WARPS, kernels._EVENT_PARTS = er, warps, parts
    kernels.event_stdp.clear_cache()
    try:
        us = best_us(jax.jit(kernel_loop), jnp.array(w0))
    except Exception as e:  # noqa: BLE001 (a tile that does not compile)
        us = float("nan")
        print("failed", er, warps, parts, str(e)[:200])
    rows.append(dict(what="event_stdp", rows=er, warps=warps, parts="+".join(parts), us=us))
    print(rows[-1], flush=True)
kernels.EVENT_ROWS, kernels.EVENT_WARPS, kernels._EVENT_PARTS = 32, 4, ("out", "in")
kernels.event_stdp.clear_cache()
rows.append(dict(what="xla stdp_step(pre_major)", us=best_us(jax.jit(xla_loop), jnp.array(w0))))
rows.append(dict(what="xla propagate_event", us=best_us(jax.jit(scatter_loop), jnp.zeros((n,), jnp.float32))))
rows.append(dict(what="kernel spike_list", us=best_us(jax.jit(lambda s: jax.lax.fori_loop(
    0, R, lambda i, c: c + kernels.spike_list(s ^ (c > 1 << 30).astype(jnp.uint8), capacity=cfg.spike_capacity, interpret=interpret)[1], 0)), s)))
rows.append(dict(what="xla spike_list", us=best_us(jax.jit(lambda s: jax.lax.fori_loop(
    0, R, lambda i, c: c + synapses.spike_list(s ^ (c > 1 << 30).astype(jnp.uint8), cfg.spike_capacity)[1], 0)), s)))
for r in rows[-4:]:
    print(r, flush=True)


# whole plastic bursts at N: which leaves differ, from which step
def burst(path, xla=False, seed=5, length=200):
    kernels.on_gpu = (lambda: False) if xla else ON_GPU
    jax.clear_caches()
    c = BrainConfig(n_neurons=n, propagation=path, plasticity=True)
    w, s0 = brain.init_brain(c, seed=seed)
    s1, m = brain.burst(c, w, s0, None, length=length)
    kernels.on_gpu = ON_GPU
    return jax.tree.map(np.asarray, s1), np.asarray(m.spikes)


def compare(name, a, b):
    (sa, ma), (sb, mb) = a, b
    leaves = [k for k in sa if not np.array_equal(sa[k], sb[k])]
    first = int(np.argmax(ma != mb)) if (ma != mb).any() else -1
    rows.append(dict(what="identity", pair=name, identical=not leaves, differing=leaves, first_step=first))
    print(rows[-1], flush=True)


ev = burst("event")
compare("event kernels, run twice", ev, burst("event"))
ev_xla = burst("event", xla=True)
compare("event kernels vs event xla", ev, ev_xla)
compare("event xla vs gather (fused kernel)", ev_xla, burst("gather"))
compare("event xla vs gather xla", ev_xla, burst("gather", xla=True))

with open(os.path.join(os.environ.get("OUT", "/tmp"), "sweep_event_stdp.json"), "w") as f:
    json.dump(dict(device=jax.devices()[0].device_kind, n=n, spikes=int(count), R=R, rows=rows), f, indent=1)
print("| what | rows | warps | parts | us |")
for r in rows:
    if "us" in r:
        print(f"| {r['what']} | {r.get('rows', '')} | {r.get('warps', '')} | {r.get('parts', '')} | {r['us']:.2f} |")
