"""Event-driven STDP on the sparse weights (pair-based, all-to-all traces).

Traces (per neuron, decaying each step, bumped by this step's spikes s; the
bumps add up, so every earlier spike pairs, weighted by exp(-dt/tau)):
    x_pre  <- x_pre  * exp(-1/tau_pre)  + s
    y_post <- y_post * exp(-1/tau_post) + s
Weight update for synapse j -> i (uses the traces *before* this step's bump):
    post i fires: w_ij += a_plus  * x_pre[j]    (pre fired before post: LTP)
    pre  j fires: w_ij -= a_minus * y_post[i]   (post fired before pre: LTD)
    w_ij <- clip(w_ij, 0, w_max)
Only rows of neurons that fired (LTP: their in-synapses, a row of the BCOO)
and columns of neurons that fired (LTD: their out-synapses) are touched. A
pre and post spike in the same step do not pair. Averaged over uncorrelated
firing at rates r_pre, r_post the drift is (a_plus - a_minus) * tau * r_pre *
r_post per step, so a_plus > a_minus is Hebbian for co-active neurons and
a_plus < a_minus (the default) is stable, depressing unless pre leads post.

Synaptic scaling (optional): each neuron that fired has its incoming row
rescaled so that sum_k w_ik = K * w_max / 2 (the expected total at birth),
which keeps learning a redistribution, not a runaway.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jbrain.config import BrainConfig
from jbrain.state import Wiring


def trace_step(
    config: BrainConfig,
    x_pre: jax.Array,
    y_post: jax.Array,
    spikes: jax.Array,
    fence: Callable[[Any], Any] = lambda tree: tree,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(ltp, ltd, x_pre', y_post'): this step's per-neuron increments
    a_plus * x_pre, a_minus * y_post (traces before the bump) and the bumped
    traces. The increments are materialised once (a barrier on GPUs, `fence`
    on CPUs, where XLA drops barriers before fusion), so `w + a*x` is never
    contracted into an FMA inside a weight update: every path and fusion
    rounds the same way."""
    c = config
    ltp, ltd = fence(jax.lax.optimization_barrier((c.a_plus * x_pre, c.a_minus * y_post)))
    s = spikes.astype(jnp.float32)
    return ltp, ltd, x_pre * math.exp(-1.0 / c.tau_pre) + s, y_post * math.exp(-1.0 / c.tau_post) + s


def stdp_step(
    config: BrainConfig,
    wiring: Wiring,
    weights: jax.Array,
    x_pre: jax.Array,
    y_post: jax.Array,
    spikes: jax.Array,
    ids: jax.Array,
    *,
    pre_major: bool = False,
    fence: Callable[[Any], Any] = lambda tree: tree,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One STDP step. weights (N*K,) f32, post-major (the BCOO's order) or,
    with `pre_major`, in presynaptic order (`synapses.to_pre_major`, the event
    path's); traces (N,) f32; spikes (N,) bool; ids (C,) int32 spike list
    padded with N (if more than C fired, the update is incomplete: the caller
    flags STATUS_SPIKE_OVERFLOW). Returns (weights, x_pre, y_post), the same
    numbers in either order (`fence`: see `trace_step`). On GPUs the gather
    path fuses this update into its pass over the synapses
    (`kernels.gather_stdp`); on CPUs the event path runs it as a compiled
    loop (`cpu_kernels.event_stdp`, bit for bit the same)."""
    c = config
    n, k = wiring.pre.shape
    ltp, ltd, x_pre, y_post = trace_step(config, x_pre, y_post, spikes, fence)
    slot = jnp.arange(k, dtype=jnp.int32)
    pres = wiring.pre.at[ids].get(mode="fill", fill_value=n)  # (C, K) inputs of fired neurons
    posts = wiring.out_post.at[ids].get(mode="fill", fill_value=n)  # (C, K) their targets
    # Flat positions of the fired neurons' in-rows (LTP) and out-rows (LTD);
    # padding (id N) lands past N*K and is dropped. One is contiguous per
    # neuron, the other K random entries, depending on the order.
    if pre_major:
        in_pos, out_pos = pres * k + slot, ids[:, None] * k + slot
    else:
        in_pos, out_pos = ids[:, None] * k + slot, posts * k + slot
    # Both rows are read from the old weights and written by one scatter. A
    # synapse whose pre and post both fired is in both: it is written from
    # its out-row, which applies LTP (pre j's trace) and then LTD, as
    # sequential updates would.
    fired = spikes != 0
    w = weights
    up = w.at[in_pos].get(mode="fill", fill_value=0.0) + ltp.at[pres].get(mode="fill", fill_value=0.0)
    up = jnp.clip(up, 0.0, c.w_max)
    old = w.at[out_pos].get(mode="fill", fill_value=0.0)
    both = fired.at[posts].get(mode="fill", fill_value=False)
    old = jnp.where(
        both, jnp.clip(old + ltp.at[ids].get(mode="fill", fill_value=0.0)[:, None], 0.0, c.w_max), old
    )
    down = jnp.clip(old - ltd.at[posts].get(mode="fill", fill_value=0.0), 0.0, c.w_max)
    in_only = jnp.where(fired.at[pres].get(mode="fill", fill_value=True), n * k, in_pos)  # n*K: dropped
    pos = jnp.concatenate([in_only, out_pos]).reshape(-1)
    w = w.at[pos].set(jnp.concatenate([up, down]).reshape(-1), mode="drop")
    if c.synaptic_scaling:
        rows = w.at[in_pos].get(mode="fill", fill_value=1.0)
        total = jnp.maximum(rows.sum(axis=1, keepdims=True), 1e-12)
        rows = jnp.clip(rows * (0.5 * k * c.w_max / total), 0.0, c.w_max)
        w = w.at[in_pos].set(rows, mode="drop")
    return w, x_pre, y_post
