"""Microseconds per step of preset circuits side by side, and (on GPUs) the
kernels each step launches, counted in a profile.

    .venv/bin/python scripts/bench_presets.py --presets default:n_neurons=250000,cortex [--out=FILE.json]

Each entry is a flagfile name of experiments/configs (or a path) with
optional `:field=value,...` changes, e.g. `cortex_small:plasticity=true`.
Every preset is timed through `Session.run` as the launchers run it: best
and median of --reps bursts of --steps steps after --warmup steps (a
(N,) rate check rides along). With --kernels (GPUs), one more burst runs
under `jax.profiler.trace` and the device kernels it launched, divided by
its steps, are the kernels per step (the Perfetto trace's events on GPU
streams). Prints a markdown table last.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from experiments.benchkit import device_kernels, print_kernels, time_calls
from experiments.flagfiles import config_from_flagfile
from jbrain.plan import resolve
from jbrain.session import Session
from jbrain.synapses import span_size


def parse_entry(entry: str) -> tuple[str, dict]:
    """'name:field=value;field=value' -> (name, {field: value})."""
    name, _, rest = entry.partition(":")
    changes = {}
    for item in filter(None, rest.split(";")):
        key, _, text = item.partition("=")
        default = getattr(config_from_flagfile(name), key)
        changes[key] = text.lower() in ("true", "1") if isinstance(default, bool) else type(default)(text)
    return name, changes


def kernels_per_step(session: Session, steps: int) -> float | None:
    """Device kernels per step of one burst, from a profile (GPUs only); prints them."""
    profile = device_kernels(lambda: (session.run(steps), session.state.neurons.v)[1])
    if profile is None:
        return None
    print_kernels(profile, per=steps)
    return profile["launches"] / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="default:n_neurons=250000,cortex")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--kernels", action="store_true", help="count kernels per step (GPUs)")
    ap.add_argument("--backend", default="auto", help="the plan's backend (auto: the device's fastest)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    rows = []
    for entry in args.presets.split(","):
        name, changes = parse_entry(entry)
        config = config_from_flagfile(name, **changes)
        circuit = config.circuit()
        plan = resolve(circuit, backend=args.backend)
        session = Session.new(config, seed=0, plan=plan)
        t0 = time.perf_counter()
        session.run(args.steps)
        first_s = time.perf_counter() - t0
        warm = max(0, args.warmup // args.steps - 1)
        stats = time_calls(lambda s=session: s.run(args.steps), warmup=warm, repeats=args.reps)
        us = np.asarray(stats["times_s"]) / args.steps * 1e6
        row = {
            "preset": entry,
            "n": circuit.n,
            "synapses": sum(q.fan_in * span_size(circuit, q, "post") for q in circuit.projections),
            "projections": len(circuit.projections),
            "paths": list(plan.paths),
            "backend": plan.backend,
            "us_best": float(us.min()),
            "us_median": float(np.median(us)),
            "first_burst_s": first_s,
            "rate": float(session.last_rate),
            "kernels_per_step": kernels_per_step(session, args.steps) if args.kernels else None,
            "device": jax.devices()[0].device_kind,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)
    print("\n| preset | N | synapses | us/step best (median) | kernels/step | rate |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        k = "-" if r["kernels_per_step"] is None else f"{r['kernels_per_step']:.1f}"
        print(
            f"| {r['preset']} | {r['n']:,} | {r['synapses']:,} | {r['us_best']:.1f} ({r['us_median']:.1f}) "
            f"| {k} | {r['rate']:.4f} |"
        )


if __name__ == "__main__":
    main()
