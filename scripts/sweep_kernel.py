"""Tune the fused Pallas gather+STDP kernel (`kernels.gather_stdp`): rows per
program x warps, kernel alone, beside XLA's gather (no STDP) on the same
spikes. A development tool for the device; writes $OUT/sweep_kernel.json.

    PYTHONPATH=. python3 scripts/sweep_kernel.py 200000,1000000

Each timing is R calls inside one jitted fori_loop (inputs perturbed each
iteration so nothing is hoisted), minus the same loop without the kernel.
"""

import itertools
import json
import os
import sys
import time

import jax

from jbrain import brain, kernels, plasticity, synapses
from jbrain.config import BrainConfig

R = 100
interpret = not kernels.use_kernels(32)  # a dry run on a CPU


def best_us(fn, arg):
    jax.block_until_ready(fn(arg))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(fn(arg))
        times.append(time.perf_counter() - t)
    return min(times) / R * 1e6


def looped(body):
    return jax.jit(lambda carry: jax.lax.fori_loop(0, R, body, carry))


def flip(i, m):
    return m ^ (i & 1).astype(m.dtype)


def sweep(n: int) -> list[dict]:
    cfg = BrainConfig(n_neurons=n, plasticity=True)
    wiring, st = brain.init_brain(cfg, seed=3)
    st, _ = brain.burst(cfg, wiring, st, None, length=300)
    mask = synapses.pack_spikes(st.spikes)
    ltp, ltd, _, _ = plasticity.trace_step(cfg, st.x_pre + 0.5, st.y_post + 0.5, st.spikes)
    base, base8 = best_us(looped(flip), mask), best_us(looped(flip), st.spikes)

    def xla_body(i, s):
        current = synapses.propagate_gather(wiring, st.weights, flip(i, s))
        return s + (current[0] > 1e9).astype(s.dtype)

    def kernel_body(i, carry):
        m, wts = carry
        m = flip(i, m)
        acc, wts = kernels.gather_stdp(
            wiring.pre, wts, m, ltp, ltd, w_max=cfg.w_max, scaling=False, interpret=interpret
        )
        return m ^ (acc[0] > 2**30).astype(m.dtype), wts

    out = [dict(n=n, variant="xla gather (no STDP)", us=best_us(looped(xla_body), st.spikes) - base8)]
    print(out[-1], flush=True)
    for r, w in itertools.product((16, 32, 64, 128), (4, 8)) if not interpret else [(32, 4)]:
        kernels.ROWS, kernels.WARPS = r, w
        jax.clear_caches()
        us = best_us(looped(kernel_body), (mask, st.weights)) - base
        out.append(dict(n=n, variant=f"pallas gather+stdp rows={r} warps={w}", us=us))
        print(out[-1], flush=True)
    return out


rows = [
    row for n in (sys.argv[1] if len(sys.argv) > 1 else "200000,1000000").split(",") for row in sweep(int(n))
]
with open(os.path.join(os.environ.get("OUT", "/tmp"), "sweep_kernel.json"), "w") as f:
    json.dump(dict(device=jax.devices()[0].device_kind, jax=jax.__version__, rows=rows), f, indent=1)
print("| N | variant | kernel us |")
for r in rows:
    print(f"| {r['n']:,} | {r['variant']} | {r['us']:.1f} |")
