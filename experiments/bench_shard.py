"""Microseconds per step of the seed brain sharded over --devices (jbrain/shard.py),
for each spike exchange (words, list) and each N in --sizes.

    python -m experiments.bench_shard --devices=1,2,4,8 --sizes=1000000,25000000 --out=shard.json

Each row: the plan (devices, exchange, bytes exchanged a step), the time of
the first burst (init + compile), and --reps timed bursts of --steps steps
(best and median us/step). devices=1 is the single-device program with its
own plan (the event path where it applies), for reference (with the
brain's bytes, `brain.footprint`, and the device allocator's peak: one
size per process finds the largest brain a card holds), and with
--sharded_plan also with the sharded brain's plan (xla backend, gather
path, eager STDP) on one device: the compute a shard does, without the
exchange. --exchange_cost adds, per N, the device work of each exchange
on one device (`exchange_cost`): what a step pays beside the transfer. On CPUs, force
devices with XLA_FLAGS=--xla_force_host_platform_device_count=D (timings
there only indicate; the devices share the host's cores).
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jbrain import brain, shard, synapses
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
flags.DEFINE_bool("sharded_plan", False, "Also time devices=1 with the sharded brain's plan.")
flags.DEFINE_bool("exchange_cost", False, "Also time each exchange's pack / unpack work on one device.")
flags.DEFINE_string("out", "", "JSON path (written after every row); empty: print only.")


def born(circuit, devices: int, *, sharded: bool) -> tuple:
    """(wiring, state) of the newborn brain (seed 0) over `devices`, from
    one jitted birth. sharded: the birth is partitioned, each device
    computing its own shard (its arrays about 1/devices of the brain's, so
    a brain larger than one device's memory can be born); else the whole
    brain is born on one device, then split (`shard.put`; a brain whose
    wiring sorts on the host, `synapses.sorts_on_host`, must be). The same
    numbers either way."""
    layout = {}
    if sharded:
        shapes = jax.eval_shape(lambda: brain.init_brain(circuit, seed=0))
        layout = {"out_shardings": shard.shardings(devices, shapes)}
    wiring, state = jax.jit(brain.init_brain, static_argnames=("circuit", "seed"), **layout)(circuit, seed=0)
    return (wiring, state) if sharded else (shard.put(devices, wiring), shard.put(devices, state))


def row(n: int, devices: int, exchange: str, sharded_plan: bool = False) -> dict:
    config = BrainConfig(n_neurons=n, fan_in=FLAGS.fan_in)
    circuit = config.circuit()
    forced = {"backend": "xla", "propagation": "gather", "stdp": "eager"} if sharded_plan else {}
    plan = plans.resolve(
        circuit, devices=devices, exchange=exchange, spike_buffer=FLAGS.spike_buffer, **forced
    )
    t0 = time.perf_counter()
    wiring, state = born(circuit, devices, sharded=devices > 1 and not synapses.sorts_on_host())
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
    stats = jax.devices()[0].memory_stats() or {}  # GPUs: the allocator's peak; CPUs: none
    moved = plans.exchange_bytes(n, devices, plan.exchange_capacity(n)) if devices > 1 else {}
    return {
        "n": n, "devices": devices, "sharded_plan": sharded_plan or devices > 1,
        "exchange": plan.exchange, "backend": plan.backend,
        "paths": list(plan.paths), "bytes_per_step": moved.get(plan.exchange, 0),
        "capacity": plan.exchange_capacity(n) if plan.exchange == "list" else 0,
        "first_burst_s": round(first, 2), "us_per_step_best": round(min(times), 1),
        "us_per_step_median": round(float(np.median(times)), 1), "rate": rate, "list_overflowed": overflow,
        "footprint_bytes": brain.footprint(circuit)["total"], "peak_bytes": stats.get("peak_bytes_in_use"),
    }  # fmt: skip


def exchange_cost(n: int) -> dict:
    """us per step of each exchange's work on one device, for N neurons at
    the seed's ~5% rate: "words" packs the (N,) uint8 spikes into N/32
    uint32 words and unpacks them (brain.exchange_spikes without its
    all-gather), "list" compacts them into a list of spike_buffer x N ids and
    scatters it back (brain.exchange_list without its all-gather). The
    transfer itself needs several devices (BENCHMARKS.md models it). Each
    is a --steps-step fori_loop whose body also rolls the vector by one;
    the roll alone is timed and subtracted."""
    cap = max(1, int(n * FLAGS.spike_buffer))
    shifts = jnp.arange(32, dtype=jnp.uint32)

    def words(s):
        w = jax.lax.bitcast_convert_type(brain.sheet_words(s), jnp.uint32)
        return ((w[:, None] >> shifts) & jnp.uint32(1)).reshape(-1)[:n].astype(jnp.uint8)

    def spike_list(s):
        ids, _ = synapses.spike_list(s, cap)
        return jnp.zeros((n,), jnp.uint8).at[ids].set(jnp.uint8(1), mode="drop")

    def timed(body) -> float:
        loop = jax.jit(lambda s: jax.lax.fori_loop(0, FLAGS.steps, lambda _, x: jnp.roll(body(x), 1), s))
        s = (jax.random.uniform(jax.random.key(0), (n,)) < 0.05).astype(jnp.uint8)
        loop(s).block_until_ready()
        best = float("inf")
        for _ in range(FLAGS.reps):
            t = time.perf_counter()
            loop(s).block_until_ready()
            best = min(best, (time.perf_counter() - t) / FLAGS.steps * 1e6)
        return best

    base = timed(lambda x: x)
    cost = {name: round(timed(body) - base, 2) for name, body in (("words", words), ("list", spike_list))}
    return {"n": n, "exchange_cost_us": cost, "roll_us": round(base, 2), "list_capacity": cap}


def main(argv: list[str]) -> None:
    del argv
    rows = []
    meta = {"platform": jax.default_backend(), "device": str(jax.devices()[0]), "count": jax.device_count()}
    for n in (int(x) for x in FLAGS.sizes):
        for d in (int(x) for x in FLAGS.devices):
            cases = [("words", False)] + [("words", True)] * FLAGS.sharded_plan if d == 1 else []
            for exchange, sharded_plan in cases + [(x, True) for x in FLAGS.exchanges if d > 1]:
                save(rows, meta, row(n, d, exchange, sharded_plan))
        if FLAGS.exchange_cost:
            save(rows, meta, exchange_cost(n))


def save(rows: list, meta: dict, new: dict) -> None:
    rows.append(new)
    print(json.dumps(new), flush=True)
    if FLAGS.out:
        record = {"meta": meta, "flags": {k: FLAGS[k].value for k in _FLAGS}, "rows": rows}
        with open(FLAGS.out, "w") as f:
            json.dump(record, f, indent=1)


_FLAGS = (
    "sizes", "devices", "exchanges", "fan_in", "steps", "reps", "spike_buffer",
    "sharded_plan", "exchange_cost",
)  # fmt: skip

if __name__ == "__main__":
    app.run(main)
