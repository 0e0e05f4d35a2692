"""A/B timings of engine variants in one device call (development probe; the
real benchmark is `jbrain bench`). Each row: fresh brain, one compile burst,
one warm-up burst, best (and median) of 3 timed bursts of T steps
($PROBE_STEPS, default 1,000).

    PYTHONPATH=. python3 scripts/probe_variants.py            # all groups
    PYTHONPATH=. python3 scripts/probe_variants.py event,stdp # some groups

Groups:
  base    gather at 200k and 1M (the baseline for the others)
  event   event path (weights in presynaptic order) at 200k / 1M / 10M
  stdp    plasticity at 200k: gather (the fused Pallas kernel on GPUs) against
          event, and event with --spike_buffer=0.07
  kstdp   the plastic event path at 200k: XLA's STDP against kernels.event_stdp
  defer   the plastic event path at 200k and 1M: eager STDP against deferred
          LTP (`plasticity.deferred_step`)
  defer10m  the same at 10M
  cpustdp the same in XLA on a CPU, 20k and 200k (JBRAIN_NATIVE=0 PROBE_STEPS=200)
  replay  `kernels.replay_stdp`'s rows per program and warps (200k, deferred)
  kern    the event path with its Pallas kernels (spike list, STDP) against
          XLA's list and STDP (kernels.on_gpu patched off), 200k and 1M
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

T = int(os.environ.get("PROBE_STEPS", "1000"))  # steps per burst
ON_GPU = kernels.on_gpu
GROUPS = {
    "base": [("gather", n, dict(propagation="gather")) for n in (200_000, 1_000_000)],
    "event": [("event", n, dict(propagation="event")) for n in (200_000, 1_000_000, 10_000_000)],
    "stdp": [
        ("gather+stdp", 200_000, dict(propagation="gather", plasticity=True)),
        ("event+stdp", 200_000, dict(propagation="event", plasticity=True)),
        ("event+stdp buffer 0.07", 200_000, dict(propagation="event", plasticity=True, spike_buffer=0.07)),
        ("event+stdp", 1_000_000, dict(propagation="event", plasticity=True)),
    ],
    "kstdp": [  # the event path with plasticity: XLA's STDP or the event_stdp kernel (Pallas list both)
        (f"event+stdp {impl}", 200_000, dict(propagation="event", plasticity=True, event_stdp=i == "kernel"))
        for i, impl in (("xla", "xla stdp"), ("kernel", "kernel"))
    ],
    "defer": [
        (f"event+stdp {mode}", n, dict(propagation="event", plasticity=True, stdp=mode))
        for n in (200_000, 1_000_000)
        for mode in ("eager", "deferred")
    ],
    "defer10m": [
        (f"event+stdp {mode}", 10_000_000, dict(propagation="event", plasticity=True, stdp=mode))
        for mode in ("eager", "deferred")
    ],
    "cpustdp": [  # run with JBRAIN_NATIVE=0 (else eager is the compiled C++) and PROBE_STEPS=200
        (f"event+stdp {mode} (XLA on a CPU)", n, dict(propagation="event", plasticity=True, stdp=mode))
        for n in (20_000, 200_000)
        for mode in ("eager", "deferred")
    ],
    "replay": [  # kernels.replay_stdp's rows per program x warps, plastic event path at 200k
        (f"deferred rows={r} warps={w}", 200_000, dict(propagation="event", plasticity=True, replay=(r, w)))
        for r, w in ((32, 4), (16, 4), (64, 4), (32, 8), (16, 2), (64, 8))
    ],
    "kern": [
        (f"event{p} {impl}", n, dict(propagation="event", plasticity=p == "+stdp", xla=impl == "xla"))
        for n in (200_000, 1_000_000)
        for p in ("", "+stdp")
        for impl in ("xla", "pallas")
    ],
}


def run(label: str, n: int, flags: dict) -> dict:
    jax.clear_caches()
    flags = dict(flags)
    kernels.on_gpu = (lambda: False) if flags.pop("xla", False) else ON_GPU
    kernels.EVENT_STDP = flags.pop("event_stdp", False)
    kernels.REPLAY_ROWS, kernels.REPLAY_WARPS = flags.pop("replay", (32, 4))
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


def main() -> None:
    groups = sys.argv[1].split(",") if len(sys.argv) > 1 else list(GROUPS)
    print(jax.devices(), flush=True)
    rows = []
    for group in groups:
        for label, n, flags in GROUPS[group]:
            rows.append(dict(group=group, **run(label, n, flags)))
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
