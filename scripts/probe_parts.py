"""Development probe: time variants of the step inside a 1000-step scan."""
import os, sys, time, subprocess
import jax, jax.numpy as jnp, numpy as np
from jbrain.config import BrainConfig
from jbrain import brain, synapses, neurons, homeostasis
from jbrain.state import Metrics

T = int(os.environ.get("PROBE_T", 1000))
def timed(name, n, body, carry, args):
    f = jax.jit(lambda c, a: jax.lax.scan(lambda c, _: (body(c, a), None), c, None, length=T, unroll=int(os.environ.get("PROBE_UNROLL", 8)))[0])
    c = f(carry, args); jax.block_until_ready(c)
    ts = []
    for _ in range(3):
        t0 = time.perf_counter(); c = f(c, args); jax.block_until_ready(c); ts.append(time.perf_counter() - t0)
    print(f"| {n:,} | {name} | {min(ts)/T*1e6:.1f} |", flush=True)

def lean_step(cfg, w, st, barrier_isyn, metrics):
    n = cfg.n_neurons
    if cfg.propagation == "gather":
        i_syn = synapses.propagate_gather(w, st.weights, st.spikes)
    else:
        ids, cnt = synapses.spike_list(st.spikes, cfg.spike_capacity)
        posts = w.out_post.at[ids].get(mode="fill", fill_value=n)
        syn = posts * cfg.fan_in + jnp.arange(cfg.fan_in, dtype=jnp.int32)
        q = jnp.round(st.weights.at[syn].get(mode="fill", fill_value=0.0) * 2**20).astype(jnp.int32)
        i_syn = jnp.zeros((n,), jnp.int32).at[posts].add(q, mode="drop").astype(jnp.float32) * 2.0**-20
    if barrier_isyn:
        i_syn = jax.lax.optimization_barrier(i_syn)
    i_nbr = synapses.neighbour_input(cfg, st.spikes)
    ctrl, drive = homeostasis.controller_step(cfg, st.ctrl, st.rate, st.step)
    cur = i_syn + i_nbr + (cfg.bias + drive) + cfg.noise_sd * neurons.gaussian_noise(st.key, st.step, n)
    v, spikes, adapt, refrac, mode = neurons.neuron_update(cfg, st.v, st.theta, st.adapt, st.refrac, st.mode, cur)
    theta = homeostasis.threshold_step(cfg, st.theta, spikes)
    count = jnp.sum(spikes, dtype=jnp.int32)
    st = st.replace(v=v, theta=theta, adapt=adapt, refrac=refrac, mode=mode, spikes=spikes.astype(jnp.uint8), ctrl=ctrl, rate=count.astype(jnp.float32) / n, step=st.step + 1)
    if metrics:
        st = st.replace(status=st.status + (jnp.mean(i_syn + i_nbr) + jnp.mean(theta) + jnp.mean(v) > 1e9).astype(jnp.uint32))
    return st

for n in [int(x) for x in sys.argv[1].split(",")]:
    cfg = BrainConfig(n_neurons=n, propagation="event")
    w, s = brain.init_brain(cfg, seed=1)
    s, _ = brain.burst(cfg, w, s, None, length=200)
    gcfg = cfg.replace(propagation="gather")
    if n == 200000 and os.environ.get("OUT"):
        d = os.path.join(os.environ["OUT"], "hlo")
        os.makedirs(d, exist_ok=True)
        txt = jax.jit(lambda c, a: jax.lax.scan(lambda c, _: (brain.step(gcfg, a, c)[0], None), c, None, length=T, unroll=int(os.environ.get("PROBE_UNROLL", 8)))[0]).lower(s, w).compile().as_text()
        open(os.path.join(os.environ["OUT"], "step_gather_hlo.txt"), "w").write(txt)
    for nm, c in [("gather", gcfg), ("event", cfg)]:
        timed(f"step {nm}", n, lambda c_, a: brain.step(c, a, c_)[0], s, w)
        timed(f"lean {nm}", n, lambda c_, a: lean_step(c, a, c_, False, False), s, w)
        timed(f"lean {nm} barrier", n, lambda c_, a: lean_step(c, a, c_, True, False), s, w)
        timed(f"lean {nm} barrier+metrics", n, lambda c_, a: lean_step(c, a, c_, True, True), s, w)
    del w, s
