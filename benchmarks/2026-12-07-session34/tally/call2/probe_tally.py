"""Why the pallas plan's mean threshold was the mean voltage (session 34, call 1)."""

import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, "tests")
from conftest import small  # noqa: E402

from jbrain import brain  # noqa: E402
from jbrain import plan as plans  # noqa: E402
from jbrain.backends import pallas_gpu  # noqa: E402

n = 200000
rng = np.random.default_rng(0)
a, b, c = (jnp.asarray(rng.normal(m, 1, n).astype(np.float32)) for m in (0.5, 1.0, 0.3))
s = jnp.asarray((rng.random(n) < 0.05).astype(np.uint8))
blocks = ((180032, 64, 312),)
f = jax.jit(lambda a, b, c, s, k: pallas_gpu.tally((a * 1.5, b + 1.0, c * 2.0), s, k, blocks=blocks))
sums, counts, k = f(a, b, c, s, pallas_gpu.tally_scratch(blocks))
print("jit rows", np.asarray(sums), [float((a * 1.5).sum()), float((b + 1).sum()), float((c * 2).sum())])
print("counts ok", np.asarray(counts)[0] == int(s.sum()), np.asarray(k).max())
config = small(n_neurons=200000)
circuit = config.circuit()
wiring, s0 = brain.init_brain(circuit, seed=5)
for be, unroll in (("pallas_gpu", 0), ("pallas_gpu", 1), ("xla", 0)):
    plan = plans.resolve(circuit, propagation="event", backend=be, unroll=unroll)
    st, m = brain.burst(circuit, plan, wiring, jax.tree.map(jnp.copy, s0), None, length=4)
    print(
        be,
        unroll,
        "in",
        np.asarray(m.mean_input),
        "th",
        np.asarray(m.mean_threshold),
        "v",
        np.asarray(m.mean_voltage),
    )
    if be == "pallas_gpu" and unroll == 0:
        txt = brain.burst.lower(circuit, plan, wiring, s0, None, length=4).compile().as_text()
        for line in txt.splitlines():
            if "jbrain_tally" in line and "custom-call" in line:
                print(line[:600])
                break
