"""The fusions of the small() seed burst (Pallas plan, event path, 16
steps with a stimulus) that hold the rate's or the controller's arithmetic
(a constant 1/2000 or the controller's gain 0.01): their ops, shortened.
Run from the tree under test with PYTHONPATH=.; arg: where to write the HLO."""

import re
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, "tests")
from conftest import small  # noqa: E402

from jbrain import brain  # noqa: E402
from jbrain.plan import resolve  # noqa: E402

circuit = small().circuit()
wiring, state = brain.init_brain(circuit, seed=7)
plan = resolve(circuit, propagation="event")
print(plan.backend, plan.unroll)
stims = jnp.zeros((16, circuit.input_channels), jnp.float32)
burst = jax.jit(lambda w, s, x: brain._burst_packed(circuit, plan, w, s, x, 16))
text = burst.lower(wiring, state, stims).compile().as_text()
with open(sys.argv[1], "w") as f:
    f.write(text)
comps = dict(re.findall(r"\n(%?[\w.\-]+) (?:\([^\n]*)?\{\n(.*?)\n\}", text, re.S))
seen = 0
for line in text.splitlines():
    m = re.search(r"(%[\w.\-]+) = (\S+) fusion\(.*calls=(%[\w.\-]+)", line)
    if not m:
        continue
    body = comps.get(m.group(3), comps.get(m.group(3).lstrip("%"), ""))
    if re.search(r"constant\((0\.0005|0\.01|5e-04)\)", body) and seen < 12:
        seen += 1
        print("==", m.group(1), m.group(2))
        for op in body.splitlines():
            op = re.sub(r", metadata=\{.*", "", op.strip())
            print("   ", op[:160])
