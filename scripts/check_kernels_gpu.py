"""GPU check of the Pallas kernel against XLA (development; run on the
device): the fused STDP update, and whole bursts on the gather (kernel when
plastic) and event (XLA) paths.
Usage: PYTHONPATH=. python3 scripts/check_kernels_gpu.py [N]"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from jbrain import brain, kernels, plasticity, synapses
from jbrain.config import BrainConfig

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
print(jax.devices(), "use_kernels", kernels.use_kernels(32), flush=True)
failed = []


def report(name, good, extra=""):
    if not good:
        failed.append(name)
    print(f"{'PASS' if good else 'FAIL'} {name} {extra}", flush=True)


cfg = BrainConfig(n_neurons=n)
wiring, st = brain.init_brain(cfg, seed=3)
st, _ = brain.burst(cfg, wiring, st, None, length=300)
rng = np.random.default_rng(0)
cases = {"natural": st.spikes, "random30%": jnp.asarray((rng.random(n) < 0.3).astype(np.uint8))}
for scaling in (False, True):
    c = BrainConfig(n_neurons=n, plasticity=True, a_plus=0.01, a_minus=0.012, synaptic_scaling=scaling)
    x = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    y = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    for name, s in cases.items():
        w0 = np.asarray(st.weights)
        ids, _ = synapses.spike_list(s, n)  # room for every spike
        stdp = jax.jit(plasticity.stdp_step, static_argnums=0)
        ref = np.asarray(stdp(c, wiring, jnp.asarray(w0), x, y, s, ids)[0])
        ltp, ltd, _, _ = plasticity.trace_step(c, x, y, s)
        _, got = kernels.gather_stdp(
            wiring.pre,
            jnp.asarray(w0),
            synapses.pack_spikes(s),
            ltp,
            ltd,
            w_max=c.w_max,
            scaling=scaling,
            interpret=not kernels.use_kernels(32),
        )
        d = float(np.abs(np.asarray(got) - ref).max())
        report(
            f"fused stdp == stdp_step, scaling={scaling}, {name}",
            d < 1e-7 if scaling or not kernels.use_kernels(32) else d == 0.0,
            f"maxdiff={d:g} changed={(ref != w0).mean():.3f}",
        )

# the spike-list and event-STDP kernels against XLA's list and STDP
gpu = kernels.on_gpu()
for name, s in cases.items():
    c = BrainConfig(n_neurons=n, propagation="event", plasticity=True, a_plus=0.01, a_minus=0.012)
    for cap in (n, 1000):
        ids_x, cnt_x = synapses.spike_list(s, cap)
        raw, cnt = kernels.spike_list(s, capacity=cap, interpret=not gpu)
        got = np.sort(np.asarray(raw)[: min(int(cnt), cap)])
        want = np.asarray(ids_x)[: min(int(cnt_x), cap)]
        subset = np.isin(got, np.flatnonzero(np.asarray(s))).all() and len(np.unique(got)) == len(got)
        report(
            f"spike_list kernel, {name}, capacity {cap}",
            int(cnt) == int(cnt_x) and (np.array_equal(got, want) if cap >= int(cnt) else subset),
            f"count={int(cnt)}",
        )
    x = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    y = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    w_pre = synapses.to_pre_major(wiring, st.weights)
    ids_x, _ = synapses.spike_list(s, n)
    stdp = jax.jit(plasticity.stdp_step, static_argnums=0, static_argnames="pre_major")
    ref = np.asarray(stdp(c, wiring, w_pre, x, y, s, ids_x, pre_major=True)[0])
    raw, cnt = kernels.spike_list(s, capacity=n, interpret=not gpu)
    ltp, ltd, _, _ = plasticity.trace_step(c, x, y, s)
    got = np.asarray(
        kernels.event_stdp(wiring.pre, wiring.out_post, jnp.array(w_pre), s, raw, cnt, ltp, ltd,
                           w_max=c.w_max, interpret=not gpu)
    )  # fmt: skip
    d = float(np.abs(got - ref).max())
    report(f"event_stdp == stdp_step(pre_major), {name}", d == 0.0, f"maxdiff={d:g}")

for plast, scaling in ((False, False), (True, False), (True, True)):  # event: Pallas list, XLA STDP
    runs = {}
    for path in ("gather", "event"):
        c = BrainConfig(n_neurons=n, propagation=path, plasticity=plast, synaptic_scaling=scaling)
        w, s0 = brain.init_brain(c, seed=5)
        s1, m = brain.burst(c, w, s0, None, length=200)
        runs[path] = (np.asarray(m.spikes), np.asarray(s1.v), np.asarray(s1.weights))
    same = all(np.array_equal(a, b) for a, b in zip(runs["gather"], runs["event"], strict=True))
    report(
        f"burst gather(kernel) == event(xla), plasticity={plast} scaling={scaling}",
        same or scaling,
        f"identical={same} rate={runs['event'][0].mean() / n:.4f}",
    )
runs = {}
for flag in (False, True):  # the event path's STDP: XLA, or the event_stdp kernel
    kernels.EVENT_STDP = flag
    c = BrainConfig(n_neurons=n, propagation="event", plasticity=True)
    w, s0 = brain.init_brain(c, seed=5)
    s1, m = brain.burst(c, w, s0, None, length=200)
    runs[flag] = (np.asarray(m.spikes), np.asarray(s1.v), np.asarray(s1.weights))
    brain.burst.clear_cache()
kernels.EVENT_STDP = False
same = all(np.array_equal(a, b) for a, b in zip(runs[False], runs[True], strict=True))
report("burst event(xla stdp) == event(event_stdp kernel)", same)
runs = {}
for mode in ("eager", "deferred"):  # the event path's STDP: at every spike, or LTP replayed late
    for length, bursts in ((1000, 1), (100, 10)):
        c = BrainConfig(
            n_neurons=n, propagation="event", plasticity=True, a_plus=0.01, a_minus=0.012, stdp=mode
        )
        w, s1 = brain.init_brain(c, seed=5)
        spikes = []
        for _ in range(bursts):
            s1, m = brain.burst(c, w, s1, None, length=length)
            spikes.append(np.asarray(m.spikes))
        runs[mode, bursts] = (np.concatenate(spikes), np.asarray(s1.v), np.asarray(s1.weights))
same = {
    key: all(np.array_equal(a, b) for a, b in zip(runs["eager", 1], run, strict=True))
    for key, run in runs.items()
}
report("1,000 plastic steps, event eager == deferred, 1 and 10 bursts", all(same.values()), f"{same}")
print("ALL PASS" if not failed else f"FAILED: {failed}")
