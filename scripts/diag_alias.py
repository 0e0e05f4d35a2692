"""Development probe (GPU): does the aliased weights buffer of the Pallas
kernels get copied? Profiles a fori_loop of `kernels.event_stdp` at N = 200k
and 1M with the same ~10k spikers, lists every device event, and greps the
compiled plastic burst's HLO for copies. Writes $OUT/diag_alias_*.txt."""

import collections
import glob
import gzip
import json
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from jbrain import brain, kernels, plasticity, synapses
from jbrain.config import BrainConfig

OUT = os.environ.get("OUT", "/tmp")
R = 50


def events(fn, make):
    jax.block_until_ready(fn(make()))
    arg = make()
    jax.block_until_ready(arg)
    d = tempfile.mkdtemp()
    with jax.profiler.trace(d, create_perfetto_trace=True):
        jax.block_until_ready(fn(arg))
    (path,) = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)
    with gzip.open(path, "rt") as f:
        evs = json.load(f)["traceEvents"]
    meta = [e for e in evs if e.get("ph") == "M" and e.get("name") == "process_name"]
    names = {e["pid"]: e["args"]["name"] for e in meta}
    dev = {p for p, nm in names.items() if "GPU" in nm}
    tot, cnt = collections.Counter(), collections.Counter()
    for e in evs:
        if e.get("ph") == "X" and e["pid"] in dev:
            tot[e["name"]] += e.get("dur", 0)
            cnt[e["name"]] += 1
    return [(nm, tot[nm] / R, cnt[nm] / R) for nm, _ in tot.most_common(8)]


rows = []
for n in (200_000, 1_000_000):
    cfg = BrainConfig(n_neurons=n, propagation="event", plasticity=True)
    wiring, st = brain.init_brain(cfg, seed=3)
    rng = np.random.default_rng(0)
    s = jnp.asarray((rng.random(n) < 10_000 / n).astype(np.uint8))
    x = jnp.asarray(rng.exponential(0.5, n).astype(np.float32))
    ltp, ltd, _, _ = plasticity.trace_step(cfg, x, x, s)
    raw, count = kernels.spike_list(s, capacity=cfg.spike_capacity)
    w0 = synapses.to_pre_major(wiring, st.weights)

    def loop(w, s=s, raw=raw, count=count, ltp=ltp, ltd=ltd, wiring=wiring, cfg=cfg):
        body = lambda i, w: kernels.event_stdp(  # noqa: E731
            wiring.pre, wiring.out_post, w, s, raw, count, ltp, ltd, w_max=cfg.w_max
        )
        return jax.lax.fori_loop(0, R, body, w)

    f = jax.jit(loop, donate_argnums=0)
    ev = events(f, lambda w0=w0: jnp.array(w0))
    hlo = f.lower(jnp.array(w0)).compile().as_text()
    with open(os.path.join(OUT, f"diag_alias_loop_{n}.txt"), "w") as fh:
        fh.write(hlo)
    print(f"N={n} spikes={int(count)} loop of event_stdp, per call:", flush=True)
    for nm, us, c in ev:
        print(f"  {us:8.2f} us  {c:5.2f}/call  {nm[:80]}")
    print("  HLO copies:", sum(1 for ln in hlo.splitlines() if " copy(" in ln or "copy-start" in ln))
    # the kernel alone, by its device event: rows per program x parts (none: an empty body)
    for er in (8, 32, 128):
        for parts in (("out", "in"), ("out",), ("in",), ()):
            kernels.EVENT_ROWS, kernels._EVENT_PARTS = er, parts
            kernels.event_stdp.clear_cache()
            f = jax.jit(loop, donate_argnums=0)
            ev = dict((nm, us) for nm, us, _ in events(f, lambda w0=w0: jnp.array(w0)))
            us = sum(v for k, v in ev.items() if "event_stdp" in k)
            rows.append((n, er, "+".join(parts) or "none", us, sum(ev.values())))
            print(f"  rows={er:4d} parts={rows[-1][2]:7s} kernel {us:7.2f} us  all events {rows[-1][4]:7.2f}")
    kernels.EVENT_ROWS, kernels._EVENT_PARTS = 32, ("out", "in")
    kernels.event_stdp.clear_cache()

cfg = BrainConfig(n_neurons=200_000, propagation="event", plasticity=True)
wiring, st = brain.init_brain(cfg, seed=3)
hlo = brain.burst.lower(cfg, wiring, st, None, length=200).compile().as_text()
with open(os.path.join(OUT, "diag_alias_burst.txt"), "w") as fh:
    fh.write(hlo)
lines = [ln.strip()[:160] for ln in hlo.splitlines() if " copy(" in ln or "custom-call(" in ln]
print("burst HLO: copies and custom calls")
for ln in lines[:30]:
    print("  ", ln)
