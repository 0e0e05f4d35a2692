"""A/B timings of engine variants in one device call (development probe; the
real benchmark is `jbrain bench`). Each row: fresh brain, one compile burst,
one warm-up burst, best (and median) of 3 timed bursts of T steps.

    PYTHONPATH=. python3 scripts/probe_variants.py            # all groups
    PYTHONPATH=. python3 scripts/probe_variants.py event,stdp # some groups

Groups:
  base    gather at 200k and 1M (the baseline for the others)
  event   event path at 200k / 1M / 10M, brain.EVENT_OUT_MAJOR off and on
  buffer  event path at 10M with --spike_buffer 0.07 and 0.1
  stdp    gather + plasticity at 200k, fused kernel with ROWS x WARPS, masked
          and whole-block weight loads
Writes $OUT/probe_variants.json and prints a table last.
"""

import json
import os
import sys
import time

import jax
import numpy as np

from jbrain import brain, kernels
from jbrain.config import BrainConfig

T = 1000
GROUPS = {
    "base": [("gather", n, dict(propagation="gather"), {}) for n in (200_000, 1_000_000)],
    "event": [
        (f"event out_major={om}", n, dict(propagation="event"), dict(EVENT_OUT_MAJOR=om))
        for n in (200_000, 1_000_000, 10_000_000)
        for om in (False, True)
    ],
    "buffer": [
        (f"event spike_buffer={b}", 10_000_000, dict(propagation="event", spike_buffer=b), {})
        for b in (0.07, 0.1)
    ],
    "stdp": [
        (
            f"gather+stdp ROWS={r} WARPS={w}",
            200_000,
            dict(propagation="gather", plasticity=True),
            dict(ROWS=r, WARPS=w),
        )
        for r, w in ((32, 4), (64, 8), (128, 4), (128, 8))
    ]
    + [
        (
            f"gather+stdp ROWS={r} WARPS={w} unmasked loads",
            200_000,
            dict(propagation="gather", plasticity=True),
            dict(ROWS=r, WARPS=w, MASKED_LOAD=False),
        )
        for r, w in ((32, 4), (128, 4))
    ],
}


def run(label: str, n: int, flags: dict, knobs: dict) -> dict:
    saved = {}
    for name, value in knobs.items():
        module = brain if hasattr(brain, name) else kernels
        saved[(module, name)] = getattr(module, name)
        setattr(module, name, value)
    jax.clear_caches()  # knobs are read at trace time
    try:
        cfg = BrainConfig(n_neurons=n, **flags)
        wiring, state = brain.init_brain(cfg, seed=1)
        t0 = time.perf_counter()
        state, _ = brain.burst(cfg, wiring, state, None, length=T)
        jax.block_until_ready(state)
        first = time.perf_counter() - t0
        state, _ = brain.burst(cfg, wiring, state, None, length=T)
        times = []
        for _ in range(3):
            jax.block_until_ready(state)
            t0 = time.perf_counter()
            state, metrics = brain.burst(cfg, wiring, state, None, length=T)
            jax.block_until_ready(state)
            times.append(time.perf_counter() - t0)
        rate = np.asarray(metrics.rate)
        return dict(
            label=label, n=n, us=min(times) / T * 1e6, med=float(np.median(times)) / T * 1e6,
            first_s=first, rate=float(rate.mean()), rmax=float(rate.max()), status=int(state.status),
        )  # fmt: skip
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


def main() -> None:
    groups = sys.argv[1].split(",") if len(sys.argv) > 1 else list(GROUPS)
    print(jax.devices(), flush=True)
    rows = []
    for group in groups:
        for label, n, flags, knobs in GROUPS[group]:
            rows.append(dict(group=group, **run(label, n, flags, knobs)))
            print(rows[-1], flush=True)
    with open(os.path.join(os.environ.get("OUT", "/tmp"), "probe_variants.json"), "w") as f:
        json.dump(dict(device=jax.devices()[0].device_kind, jax=jax.__version__, T=T, rows=rows), f, indent=1)
    print("| group | variant | N | us/step best | median | compile+first s | rate | max | status |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['group']} | {r['label']} | {r['n']:,} | {r['us']:.1f} | {r['med']:.1f} "
            f"| {r['first_s']:.2f} | {r['rate']:.4f} | {r['rmax']:.4f} | {r['status']} |"
        )


if __name__ == "__main__":
    main()
