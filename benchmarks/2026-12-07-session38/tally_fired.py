"""The tally kernel's per-warp spike counts at 2,000 neurons (a probe: run in a
worktree whose tally also returns its partials; call1.sh makes that edit)."""

import sys

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, "tests")
from conftest import small  # noqa: E402

from jbrain import brain  # noqa: E402
from jbrain.backends import pallas_gpu  # noqa: E402

circuit = small().circuit()
n = circuit.n
blocks = brain.tally_blocks(circuit)
rng = np.random.default_rng(0)
rows = tuple(jnp.asarray(rng.normal(0, 1, n).astype(np.float32)) for _ in range(3))
counters = pallas_gpu.tally_scratch(blocks)
threads = 256  # 2 CTAs of 128 at this size: neuron i is thread i % 256's, warp (i % 256) // 32
for p in ([5], [32], [100], [1900], [5, 32, 64, 96, 128, 160, 192, 224]):
    s = np.zeros(n, np.uint8)
    s[p] = 1
    sums, counts, counters, parts, fired = pallas_gpu.tally(rows, jnp.asarray(s), counters, blocks=blocks)
    want = np.zeros(len(np.asarray(fired)), int)
    for i in p:
        want[(i % threads) // 32] += 1
    print("spikes", p, "count", int(counts[0]), "fired", np.asarray(fired).tolist(), "want", want.tolist())
parts = np.asarray(parts).reshape(-1, 3)
want = np.zeros_like(parts, dtype=np.float64)
for i in range(n):
    want[(i % threads) // 32] += [float(r[i]) for r in rows]
print("parts max error", float(np.abs(parts - want).max()), "warps", len(parts))
