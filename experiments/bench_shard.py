"""Microseconds per step of the seed brain sharded over --devices (jbrain/shard.py),
for each spike exchange (words, list) and each N in --sizes.

    python -m experiments.bench_shard --devices=1,2,4,8 --sizes=1000000,25000000 --out=shard.json

Each row: the plan (devices, exchange, bytes exchanged a step), the time of
the first burst (init + compile), and --reps timed bursts of --steps steps
(best and median us/step). devices=1 is the single-device program with its
own plan (the event path where it applies), for reference. On CPUs, force
devices with XLA_FLAGS=--xla_force_host_platform_device_count=D (timings
there only indicate; the devices share the host's cores).
"""

from __future__ import annotations

import json
import time

import jax
import numpy as np
from absl import app, flags

from jbrain import brain, shard
from jbrain import plan as plans
from jbrain.config import BrainConfig

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["1000000"], "Numbers of neurons N.")
flags.DEFINE_list("devices", ["1", "2"], "Device counts to shard over (1: the single-device program).")
flags.DEFINE_list("exchanges", ["words", "list"], "Spike exchanges of the sharded rows.")
flags.DEFINE_integer("fan_in", 32, "Synapses per neuron K.")
flags.DEFINE_integer("steps", 200, "Timed steps per rep (one burst).")
flags.DEFINE_integer("reps", 3, "Timed bursts per row.")
flags.DEFINE_float("spike_buffer", 0.1, "List exchange capacity, fraction of a shard's neurons.")
flags.DEFINE_string("out", "", "JSON path (written after every row); empty: print only.")


def row(n: int, devices: int, exchange: str) -> dict:
    config = BrainConfig(n_neurons=n, fan_in=FLAGS.fan_in)
    circuit = config.circuit()
    plan = plans.resolve(circuit, devices=devices, exchange=exchange, spike_buffer=FLAGS.spike_buffer)
    t0 = time.perf_counter()
    wiring, state = jax.jit(brain.init_brain, static_argnames=("circuit", "seed"))(circuit, seed=0)
    wiring, state = shard.put(devices, wiring), shard.put(devices, state)
    run = brain.burst_packed_keeping_input if plan.uses_spike_list else brain.burst_packed
    state, packed, _ = run(circuit, plan, wiring, state, None, length=FLAGS.steps)
    packed = np.asarray(packed)
    first = time.perf_counter() - t0
    times, overflow = [], False
    for _ in range(FLAGS.reps):
        t = time.perf_counter()
        state, packed, _ = run(circuit, plan, wiring, state, None, length=FLAGS.steps)
        packed = np.asarray(packed)
        times.append((time.perf_counter() - t) / FLAGS.steps * 1e6)
        overflow |= bool(brain.packed_status(packed) & brain.STATUS_SPIKE_OVERFLOW)
    rate = float(packed[:, 0].mean()) / n
    moved = plans.exchange_bytes(n, devices, plan.exchange_capacity(n)) if devices > 1 else {}
    return {
        "n": n, "devices": devices, "exchange": plan.exchange, "backend": plan.backend,
        "paths": list(plan.paths), "bytes_per_step": moved.get(plan.exchange, 0),
        "capacity": plan.exchange_capacity(n) if plan.exchange == "list" else 0,
        "first_burst_s": round(first, 2), "us_per_step_best": round(min(times), 1),
        "us_per_step_median": round(float(np.median(times)), 1), "rate": rate, "list_overflowed": overflow,
    }  # fmt: skip


def main(argv: list[str]) -> None:
    del argv
    rows = []
    meta = {"platform": jax.default_backend(), "device": str(jax.devices()[0]), "count": jax.device_count()}
    for n in (int(x) for x in FLAGS.sizes):
        for d in (int(x) for x in FLAGS.devices):
            for exchange in ["words"] if d == 1 else FLAGS.exchanges:
                rows.append(row(n, d, exchange))
                print(json.dumps(rows[-1]), flush=True)
                if FLAGS.out:
                    record = {"meta": meta, "flags": {k: FLAGS[k].value for k in _FLAGS}, "rows": rows}
                    with open(FLAGS.out, "w") as f:
                        json.dump(record, f, indent=1)


_FLAGS = ("sizes", "devices", "exchanges", "fan_in", "steps", "reps", "spike_buffer")

if __name__ == "__main__":
    app.run(main)
