"""The tally kernel on sparse spikes at the small() seed brain's size
(2,000 neurons, its readout's blocks): one spike at each of several
positions, then random patterns of 0-3 spikes, each call chained on the
last's counters; prints every call whose count, rate or group counts are
not numpy's. Works with session 36's kernel (no ctrl) and this session's."""

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
print("blocks", blocks)
rng = np.random.default_rng(0)
rows = tuple(jnp.asarray(rng.normal(0, 1, n).astype(np.float32)) for _ in range(3))
counters = pallas_gpu.tally_scratch(blocks)
patterns = [[p] for p in (0, 5, 31, 32, 1000, 1023, 1024, 1500, 1807, 1808, 1900, 1999)]
patterns += [sorted(rng.choice(n, rng.integers(0, 4), replace=False).tolist()) for _ in range(40)]
bad = 0
for p in patterns:
    s = np.zeros(n, np.uint8)
    s[p] = 1
    try:
        control = (0.01, 0.05, 0.5)
        zero = jnp.zeros((2,), jnp.float32)
        out = pallas_gpu.tally(rows, jnp.asarray(s), counters, zero, blocks=blocks, controller=control)
        sums, counts, home, counters = out
        rate = float(home[0])
    except TypeError:
        sums, counts, counters = pallas_gpu.tally(rows, jnp.asarray(s), counters, blocks=blocks)
        rate = None
    want = [int(s.sum())]
    for start, groups, group in blocks:
        want += s[start : start + groups * group].reshape(groups, group).sum(axis=1).tolist()
    got = np.asarray(counts).tolist()
    exact = [np.asarray(r, np.float64).sum() for r in rows]
    sums_ok = np.allclose(np.asarray(sums), exact, rtol=1e-5, atol=1e-3)
    rate_ok = rate is None or rate == np.float32(want[0]) * (np.float32(1.0) / np.float32(n))
    ok = sums_ok and got == want and rate_ok
    if not ok:
        bad += 1
        diff = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
        print("MISMATCH at", p, "count", got[0], want[0], "rate", rate, "groups", diff[:8], "sums", sums_ok)
print(f"{bad} of {len(patterns)} calls wrong")

# the same brain stepped one step at a time: the state's spikes against its rate
import os  # noqa: E402

from jbrain import plan as plans  # noqa: E402
from jbrain.session import Session  # noqa: E402

os.makedirs("/tmp/ks", exist_ok=True)
plan = plans.resolve(circuit, backend="pallas_gpu", propagation="event")
ses = Session.new(small(), seed=7, workdir="/tmp/ks", plan=plan)
rows = []
for _ in range(12):
    ses.run(1)
    st = ses.state
    rows.append(
        (
            int(st.step),
            int(np.asarray(st.neurons.spikes).sum()),
            float(st.homeostasis.rate) * n,
            float(st.homeostasis.ctrl),
            np.nonzero(np.asarray(st.neurons.spikes))[0][:4].tolist(),
        )
    )
ses.close(save=False)
print("step, spikes in state, rate * N, ctrl, first spikers")
for r in rows:
    print(r)
