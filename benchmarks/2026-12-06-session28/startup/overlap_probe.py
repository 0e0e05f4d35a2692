"""Start-up probe for the next device call (session 28): which parts of a
warm start can run side by side? MODE is a "+"-joined set of:
  overlap    a thread compiles the reply program ahead of time on abstract
             shapes (`checkpoint.abstract_brain`) while the main thread births
             the brain (else: compiled after the birth, on the real arrays);
  jit        the birth under one `jax.jit` (else op by op);
  devthread  `jax.devices()` (the GPU client's start) in a thread while the
             main thread imports jbrain and resolves the plan.
("seq" is none of them.) The burst then runs through the compiled program.
argv: CACHE MODE TAG; one JSON line of cumulative seconds. Run from the repo
root with PYTHONPATH=. (the launchers' XLA_PYTHON_CLIENT_PREALLOCATE=false
is set here too)."""

import os
import threading
import time

T0 = time.perf_counter()
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import json  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402

modes = set(sys.argv[2].split("+"))
t = {}


def mark(key: str) -> None:
    t[key] = round(time.perf_counter() - T0, 3)


mark("import_jax")
client = threading.Thread(target=jax.devices)
if "devthread" in modes:
    client.start()
from jbrain import brain, checkpoint, compile_cache  # noqa: E402
from jbrain import plan as plans  # noqa: E402

compile_cache.enable(sys.argv[1])
from experiments.flagfiles import config_from_flagfile  # noqa: E402

mark("import_all")
config = config_from_flagfile("default", plasticity=True)
circuit = config.circuit()
plan = plans.resolve(circuit)
run = brain.burst_packed_keeping_input if plan.uses_spike_list else brain.burst_packed
mark("plan")
if "devthread" in modes:
    client.join()
else:
    jax.devices()
mark("devices")
compiled = {}


def ahead(wiring, state):
    compiled["burst"] = run.lower(circuit, plan, wiring, state, None, length=200, pre_major={}).compile()
    mark("compiled")


worker = threading.Thread(target=lambda: ahead(*checkpoint.abstract_brain(config)))
if "overlap" in modes:
    worker.start()
birth = jax.jit(brain.init_brain, static_argnames=("circuit",)) if "jit" in modes else brain.init_brain
wiring, state = birth(circuit, seed=0)
jax.block_until_ready((wiring, state))
mark("birth")
if "overlap" in modes:
    worker.join()
else:
    ahead(wiring, state)
mark("ready")
out = compiled["burst"](wiring, state, None, pre_major={})
jax.block_until_ready(out)
mark("first_burst")
print(json.dumps({"tag": sys.argv[3], "mode": sys.argv[2], **t}))
