"""Start-up probe (session 27, ready for a device call): where a warm
start's seconds go, in one fresh process. argv: CACHE [tag];
ST_BACKEND=xla|pallas_gpu|auto (the plan's backend)."""

import time

T0 = time.perf_counter()
import json, os, sys  # noqa

import jax  # noqa
import jax.numpy as jnp  # noqa

t = {"import_jax": time.perf_counter() - T0}
from jbrain import compile_cache  # noqa

compile_cache.enable(sys.argv[1])
from experiments.flagfiles import config_from_flagfile  # noqa
from jbrain.session import Session  # noqa

t["import_all"] = time.perf_counter() - T0
jax.devices()
t["devices"] = time.perf_counter() - T0
jnp.ones(8).block_until_ready()
t["first_put"] = time.perf_counter() - T0
jax.jit(lambda a: a + 1)(jnp.ones(8)).block_until_ready()
t["first_jit"] = time.perf_counter() - T0
jax.jit(lambda a: a * 3)(jnp.ones(8)).block_until_ready()
t["second_jit"] = time.perf_counter() - T0
config = config_from_flagfile("default", plasticity=True)
from jbrain.plan import resolve  # noqa

backend = os.environ.get("ST_BACKEND", "auto")
s = Session.new(config, seed=0, plan=resolve(config.circuit(), backend=backend))
jax.block_until_ready(s.state)
t["birth"] = time.perf_counter() - T0
s.run(200)
jax.block_until_ready(s.state)
t["burst"] = time.perf_counter() - T0
s.run(200)
jax.block_until_ready(s.state)
t["burst2"] = time.perf_counter() - T0
print(json.dumps({"tag": sys.argv[2] if len(sys.argv) > 2 else "", **{k: round(v, 3) for k, v in t.items()}}))
