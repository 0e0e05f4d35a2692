"""Session 28's start-up probe, in parts (GPU): birth (op by op, or `jit`:
under one jax.jit), then the reply burst's trace and lower, its compile (a
load from the persistent cache when warm), the first run of that compiled
program, then the same burst through `jax.jit`. argv: CACHE MODE TAG; one
JSON line of cumulative seconds. Run from the repo root (PYTHONPATH=.)."""

import time

T0 = time.perf_counter()
import json  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402

t = {}


def mark(key: str) -> None:
    t[key] = round(time.perf_counter() - T0, 3)


mark("import_jax")
from jbrain import brain, compile_cache  # noqa: E402

compile_cache.enable(sys.argv[1])
from experiments.flagfiles import config_from_flagfile  # noqa: E402
from jbrain.session import Session  # noqa: E402

mark("import_all")
jax.devices()
mark("devices")
config = config_from_flagfile("default", plasticity=True)
circuit = config.circuit()
mark("circuit")
if sys.argv[2] == "jit":
    wiring, state = jax.jit(brain.init_brain, static_argnames=("circuit", "seed"))(circuit, seed=0)
else:
    wiring, state = brain.init_brain(circuit, seed=0)
jax.block_until_ready(state)
mark("birth")
s = Session(config, wiring, state, seed=0)
mark("session")
pre = s._static_order.get(s.circuit, s.plan, s.wiring, s.state)
run = brain.burst_packed_keeping_input if s.plan.uses_spike_list else brain.burst_packed
low = run.lower(s.circuit, s.plan, s.wiring, s.state, None, length=200, pre_major=pre)
mark("lower")
comp = low.compile()
mark("compile")
jax.block_until_ready(comp(s.wiring, s.state, None, pre_major=pre))
mark("compiled_first_run")
for key in ("jit_first_run", "second_run"):
    s.run(200)
    jax.block_until_ready(s.state)
    mark(key)
print(json.dumps({"tag": sys.argv[3], **t}))
