"""Record seed-preset fingerprints with the engine of commit d666d30 (run once,
before the circuits redesign; tests/test_compat.py checks the new engine against
them). Output: tests/data/seed_fingerprints.json."""
import hashlib, json, os, sys, tempfile
import numpy as np
import jax
from jbrain.config import BrainConfig
from jbrain.session import Session
from jbrain.text import Codec
from jbrain.state import BrainState

def h(a):
    return hashlib.sha256(np.ascontiguousarray(np.asarray(a)).tobytes()).hexdigest()[:16]

CASES = [
    dict(propagation="event", plasticity=False),
    dict(propagation="gather", plasticity=False),
    dict(propagation="bcoo", plasticity=False),
    dict(propagation="event", plasticity=True, stdp="eager"),
    dict(propagation="event", plasticity=True, stdp="deferred"),
    dict(propagation="gather", plasticity=True),
    dict(propagation="bcoo", plasticity=True),
    dict(propagation="event", plasticity=False, sheet=(40, 50)),
    dict(propagation="event", plasticity=True, stdp="eager", synaptic_scaling=True),
]

def run(case):
    cfg = BrainConfig(n_neurons=2000, fan_in=32, **case)
    codec = Codec.for_config(cfg)
    with tempfile.TemporaryDirectory() as d:
        s = Session.new(cfg, seed=7, workdir=d)
        s.run(150)
        s.run(200, codec.encode("hello brain"))
        s.run(150)
        s.close(save=False)
        log = open(os.path.join(d, "brain_debug.log")).read()
    st = s.state
    return dict(log=hashlib.sha256(log.encode()).hexdigest()[:16], weights=h(st.weights), v=h(st.v),
                theta=h(st.theta), x_pre=h(st.x_pre), step=int(st.step), ctrl=float(st.ctrl))

out = {}
for case in CASES:
    name = ",".join(f"{k}={v}" for k, v in case.items())
    out[name] = run(case)
    print(name, out[name], flush=True)
json.dump(dict(commit="d666d30", native=os.environ.get("JBRAIN_NATIVE", "1"), cases=out),
          open(sys.argv[1], "w"), indent=1)
