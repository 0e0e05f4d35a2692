"""A/B of two jbrain trees on one device: the seed step (plasticity off),
the plastic step and the 200k chat reply, through `Session.run` exactly as
the launchers call it. Run once per tree with PYTHONPATH pointing at it;
works with the engine of d666d30 (BrainConfig carries the engine options)
and with the circuits engine (a Plan carries them). Prints one JSON line.

    PYTHONPATH=TREE python dev/ab_engine.py --what step --n 200000 [--plastic]
    PYTHONPATH=TREE python dev/ab_engine.py --what reply --n 200000
"""

import argparse
import json
import time

import numpy as np

from jbrain.config import BrainConfig
from jbrain.session import Session
from jbrain.text import Codec

ap = argparse.ArgumentParser()
ap.add_argument("--what", choices=["step", "reply"], default="step")
ap.add_argument("--n", type=int, default=200_000)
ap.add_argument("--plastic", action="store_true")
ap.add_argument("--steps", type=int, default=1000)
ap.add_argument("--reps", type=int, default=5)
args = ap.parse_args()
plastic = args.plastic or args.what == "reply"
if hasattr(BrainConfig, "circuit"):
    from jbrain import plan as plans

    config = BrainConfig(n_neurons=args.n, plasticity=plastic)
    session = Session.new(config, seed=0, plan=plans.resolve(config.circuit()))
    codec = Codec.for_circuit(session.circuit)
    engine = "circuits"
else:
    config = BrainConfig(n_neurons=args.n, plasticity=plastic)
    session = Session.new(config, seed=0)
    codec = Codec.for_config(config)
    engine = "d666d30"

if args.what == "step":
    session.run(args.steps)  # compile + warm-up
    session.run(args.steps)
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        session.run(args.steps)
        times.append((time.perf_counter() - t) / args.steps * 1e6)
    unit = "us/step"
else:
    stims = codec.encode("hello brain")
    for _ in range(5):
        session.run(200, stims)
    times = []
    for _ in range(30):
        t = time.perf_counter()
        codec.decode(session.run(200, stims)["out_counts"])
        times.append((time.perf_counter() - t) * 1e3)
    unit = "ms/reply"
print(
    json.dumps(
        {
            "engine": engine,
            "what": args.what,
            "n": args.n,
            "plastic": plastic,
            "unit": unit,
            "median": float(np.median(times)),
            "min": float(np.min(times)),
            "rate": session.last_rate,
        }
    )
)
