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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jbrain import kernels
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


# ---- deferred LTP (the event path on GPUs) ----
#
# A pre neuron's out-row is read (W @ s) only on the steps it fires, and
# between two of its spikes the row only receives LTP. So the event path may
# apply a row's LTP late: each neuron keeps the last HISTORY steps of its
# spikes as bits, and when pre j fires (or its row is due, below) every
# pending step is replayed oldest first, with pre j's trace re-decayed from
# an anchor exactly as `trace_step` decayed it (x <- x * exp(-1/tau_pre),
# one f32 multiply per step):
#     for each pending step t, for each out-synapse j -> i with s_i(t) = 1:
#         w <- clip(w + a_plus * x_j(t), 0, w_max)
# then LTD as before. Every synapse sees the same f32 operations in the same
# order as `stdp_step`, so the weights are the same bit for bit; the random
# in-row read-modify-write of `stdp_step` (one weight per in-synapse of each
# spiker) disappears. Rows are also replayed round-robin, HISTORY-th of them
# per step, so no window outgrows the history; a burst replays every row at
# its end, so a BrainState never holds pending updates.

HISTORY = 32  # bits of spike history per neuron: the longest pending window, in steps


class Lag(NamedTuple):
    """Deferred LTP inside a burst, (N,) each.

    hist:    uint32 spike history; bit b: fired b steps before the last processed step
    pending: int32  processed steps whose LTP the out-row still lacks (< HISTORY)
    anchor:  f32    x_pre entering the first of those steps
    """

    hist: jax.Array
    pending: jax.Array
    anchor: jax.Array


def lag_init(x_pre: jax.Array) -> Lag:
    """Nothing pending: the bookkeeping at the start of a burst."""
    n = x_pre.shape[0]
    return Lag(jnp.zeros((n,), jnp.uint32), jnp.zeros((n,), jnp.int32), x_pre)


def _decay(config: BrainConfig) -> jax.Array:
    """exp(-1/tau_pre) as a run-time f32 scalar: with a constant, XLA would
    fold x*d*d into x*(d*d) and the replayed trace would not be
    `trace_step`'s, bit for bit."""
    return jax.lax.optimization_barrier(jnp.float32(math.exp(-1.0 / config.tau_pre)))


def _ltp_table(config: BrainConfig, anchor: jax.Array, fence: Callable[[Any], Any]) -> jax.Array:
    """(R,) anchors -> (R, HISTORY) f32: a_plus * x at window step m, x decayed
    m times from the anchor. Materialised (see `trace_step`: no FMA with w)."""
    d = _decay(config)
    xs = [anchor]
    for _ in range(HISTORY - 1):
        xs.append(xs[-1] * d)
    return fence(jax.lax.optimization_barrier(config.a_plus * jnp.stack(xs, axis=1)))


def _replay(
    config: BrainConfig, w: jax.Array, hist: jax.Array, count: jax.Array, table: jax.Array
) -> jax.Array:
    """Pending LTP of R out-rows, oldest step first. w (R, K) f32; hist (R, K)
    uint32 histories of the rows' targets; count (R,) int32 window length
    (bit count-1 is its oldest step, bit 0 its newest); table: `_ltp_table`."""
    count = count[:, None]
    for m in range(HISTORY):
        bit = count - 1 - m  # < 0: past the window
        fired = (bit >= 0) & (((hist >> jnp.maximum(bit, 0).astype(jnp.uint32)) & 1) != 0)
        w = jnp.where(fired, jnp.clip(w + table[:, m : m + 1], 0.0, config.w_max), w)
    return w


def _replay_rows(
    config: BrainConfig,
    wiring: Wiring,
    weights_pre: jax.Array,
    hist: jax.Array,
    count: jax.Array,
    anchor: jax.Array,
    rows: jax.Array,
    fence: Callable[[Any], Any],
    *,
    ltd: jax.Array | None = None,
) -> jax.Array:
    """XLA: replay the pending LTP (window `count`) of out-rows `rows` ((R,)
    int32; N: ignored), then LTD (a_minus * y_post, (N,) f32) when given."""
    n, k = wiring.pre.shape
    w = weights_pre.reshape(n, k)
    posts = wiring.out_post.at[rows].get(mode="fill", fill_value=n)
    new = _replay(
        config,
        w.at[rows].get(mode="fill", fill_value=0.0),
        hist.at[posts].get(mode="fill", fill_value=0),
        count.at[rows].get(mode="fill", fill_value=0),
        _ltp_table(config, anchor.at[rows].get(mode="fill", fill_value=0.0), fence),
    )
    if ltd is not None:
        new = jnp.clip(new - ltd.at[posts].get(mode="fill", fill_value=0.0), 0.0, config.w_max)
    return w.at[rows].set(new, mode="drop").reshape(-1)


def _kernel(config: BrainConfig, wiring: Wiring, weights_pre: jax.Array, lag: Lag, **kw) -> jax.Array:
    """`kernels.replay_stdp` with the lag's arrays and the config's numbers."""
    return kernels.replay_stdp(
        wiring.out_post.reshape(-1), weights_pre, lag.hist, lag.pending, lag.anchor,
        _decay(config).reshape(1), history=HISTORY, a_plus=config.a_plus, w_max=config.w_max, **kw,
    )  # fmt: skip


def deferred_step(
    config: BrainConfig,
    wiring: Wiring,
    weights_pre: jax.Array,
    x_pre: jax.Array,
    y_post: jax.Array,
    spikes: jax.Array,
    ids: jax.Array,
    n_ids: jax.Array,
    lag: Lag,
    step: jax.Array,
    fence: Callable[[Any], Any] = lambda tree: tree,
) -> tuple[jax.Array, jax.Array, jax.Array, Lag]:
    """`stdp_step(pre_major=True)` with LTP deferred (see above): the same
    weights once `flush`ed. No synaptic scaling. ids[:n_ids]: the spike list
    of s (any order); step: the step counter (picks the round-robin block).
    Returns (weights, x_pre, y_post, lag)."""
    n = wiring.pre.shape[0]
    _, ltd, x_new, y_new = trace_step(config, x_pre, y_post, spikes, fence)
    fired = spikes != 0
    hist = (lag.hist << 1) | fired.astype(jnp.uint32)
    # Round-robin: block u mod HISTORY of the rows is replayed on step u, so
    # no window outgrows the history; rows that fired are replayed as spikers
    # (the pending LTP, this step's included, then LTD).
    size = -(-n // HISTORY)
    start = jnp.minimum((step % HISTORY).astype(jnp.int32) * size, n - size)
    if kernels.on_gpu():  # one kernel for both sets of rows
        w = _kernel(
            config, wiring, weights_pre, lag._replace(hist=hist), spikes=spikes.astype(jnp.uint8),
            ltd=ltd, ids=ids, n_ids=n_ids, start=start, block=size, extra=1,
        )  # fmt: skip
    else:
        count = lag.pending + 1
        block = start + jnp.arange(size, dtype=jnp.int32)
        block = jnp.where(fired[block], n, block)
        w = _replay_rows(config, wiring, weights_pre, hist, count, lag.anchor, block, fence)
        listed = jnp.where(jnp.arange(ids.shape[0]) < n_ids, ids, n)
        w = _replay_rows(config, wiring, w, hist, count, lag.anchor, listed, fence, ltd=ltd)
    r = jnp.arange(n, dtype=jnp.int32)
    done = fired | ((r >= start) & (r < start + size))
    lag = Lag(hist, jnp.where(done, 0, lag.pending + 1), jnp.where(done, x_new, lag.anchor))
    return w, x_new, y_new, lag


def flush(
    config: BrainConfig,
    wiring: Wiring,
    weights_pre: jax.Array,
    lag: Lag,
    fence: Callable[[Any], Any] = lambda tree: tree,
) -> jax.Array:
    """Every row's pending LTP applied (the end of a burst): the weights
    `stdp_step` would hold, presynaptic order, (N*K,) f32."""
    n = wiring.pre.shape[0]
    every = jnp.arange(n, dtype=jnp.int32)
    if kernels.on_gpu():
        zero = jnp.zeros((n,), jnp.float32)
        return _kernel(
            config, wiring, weights_pre, lag, spikes=jnp.zeros((n,), jnp.uint8), ltd=zero,
            ids=every, n_ids=jnp.int32(n), start=jnp.int32(0), block=0, extra=0,
        )  # fmt: skip
    return _replay_rows(config, wiring, weights_pre, lag.hist, lag.pending, lag.anchor, every, fence)
