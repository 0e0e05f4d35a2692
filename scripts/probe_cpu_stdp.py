"""Plastic event step on the CPU: eager against deferred STDP, both in XLA
(run it with JBRAIN_NATIVE=0; with the compiled kernels, eager is C++).

    JBRAIN_NATIVE=0 JAX_PLATFORMS=cpu PYTHONPATH=. python scripts/probe_cpu_stdp.py

Best of 3 bursts of 200 steps after one compile burst, ms/step.
"""

import platform
import time

import jax

from jbrain import brain, cpu_kernels
from jbrain.config import BrainConfig

print(platform.processor() or platform.machine(), "native kernels:", cpu_kernels.available(), flush=True)
for n in (20_000, 200_000):
    for mode in ("eager", "deferred"):
        cfg = BrainConfig(n_neurons=n, propagation="event", plasticity=True, stdp=mode)
        w, s = brain.init_brain(cfg, seed=1)
        T = 200
        s, _ = brain.burst(cfg, w, s, None, length=T)
        jax.block_until_ready(s)
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            s, m = brain.burst(cfg, w, s, None, length=T)
            jax.block_until_ready(s)
            ts.append(time.perf_counter() - t0)
        print(n, mode, f"{min(ts) / T * 1e3:.2f} ms/step", flush=True)
