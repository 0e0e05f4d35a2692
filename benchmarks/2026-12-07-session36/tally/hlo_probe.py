"""What each per-step XLA kernel of the seed burst on the Pallas plan is:
the optimized HLO of one burst, and for the fusions named on the command
line (prefixes) their shapes and fused computations, shortened."""

import re
import sys

import jax

from experiments.flagfiles import config_from_flagfile
from jbrain import brain
from jbrain.plan import resolve

config = config_from_flagfile("default")
circuit = config.circuit()
wiring, state = brain.init_brain(circuit, seed=0)
plan = resolve(circuit)
print(plan.backend, plan.unroll)
burst = jax.jit(lambda w, s: brain._burst_packed(circuit, plan, w, s, None, 16))
text = burst.lower(wiring, state).compile().as_text()
with open(sys.argv[1], "w") as f:
    f.write(text)
comps = dict(re.findall(r"\n(%?[\w.\-]+) (?:\([^\n]*)?\{\n(.*?)\n\}", text, re.S))
seen = set()
for line in text.splitlines():
    m = re.search(r"(%[\w.\-]+) = (\S+) fusion\(.*calls=(%[\w.\-]+)", line)
    name = m and re.sub(r"([._]\d+)?$", "", m.group(1).lstrip("%"))
    if m and name in sys.argv[2:] and name not in seen:
        seen.add(name)
        print("==", m.group(1), m.group(2))
        body = comps.get(m.group(3), comps.get(m.group(3).lstrip("%"), "?"))
        for op in body.splitlines()[:25]:
            print("   ", op.strip()[:150])
