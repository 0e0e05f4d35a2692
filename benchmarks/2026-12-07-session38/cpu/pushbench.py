"""The compiled push alone in a scan of 200 steps (200k x 32, random 5% spikes), us a step.

From the repository root: PYTHONPATH=. JAX_PLATFORMS=cpu .venv/bin/python
benchmarks/2026-12-07-session38/cpu/pushbench.py (JBRAIN_CPU_THREADS=1 for one share).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from jbrain.backends import cpu_native

assert cpu_native.available()
n, k, T = 200000, 32, 200
rng = np.random.default_rng(0)
post = jnp.asarray(rng.integers(0, n, (n, k), dtype=np.int32))
w = jnp.asarray(rng.random(n * k, dtype=np.float32) * 0.1)
spk = jnp.asarray((rng.random((T, n)) < 0.05).astype(np.uint8))


@jax.jit
def burst(post, w, spk):
    def body(c, s):
        return c + cpu_native.event_push(post, w, s)[:8], None

    return jax.lax.scan(body, jnp.zeros(8), spk)[0]


jax.block_until_ready(burst(post, w, spk))
best = 1e9
for _ in range(8):
    t = time.perf_counter()
    jax.block_until_ready(burst(post, w, spk))
    best = min(best, time.perf_counter() - t)
print(f"push alone in a scan: {best / T * 1e6:.0f} us/step")
