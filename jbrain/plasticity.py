"""STDP on a projection's sparse weights (pair-based, all-to-all traces),
written once; backends implement its kernels (jbrain/backends).

Traces (per neuron, decaying each step, bumped by this step's spikes s; the
bumps add up, so every earlier spike pairs, weighted by exp(-dt/tau)):
    x_pre  <- x_pre  * exp(-dt/tau_pre)  + s_pre
    y_post <- y_post * exp(-dt/tau_post) + s_post
Weight update for synapse j -> i (uses the traces *before* this step's bump):
    post i fires: w_ij += a_plus  * x_pre[j]    (pre fired before post: LTP)
    pre  j fires: w_ij -= a_minus * y_post[i]   (post fired before pre: LTD)
    w_ij <- clip(w_ij, 0, w_max)          (magnitudes: the sign is the pre's, never flipped)
Only rows of neurons that fired (LTP: their in-synapses, a row of the BCOO)
and columns of neurons that fired (LTD: their out-synapses) are touched. A
pre and post spike in the same step do not pair. Averaged over uncorrelated
firing at rates r_pre, r_post the drift is (a_plus - a_minus) * tau * r_pre *
r_post per step, so a_plus > a_minus is Hebbian for co-active neurons and
a_plus < a_minus (the default) is stable, depressing unless pre leads post.

Inhibitory plasticity (rule "vogels", Vogels et al. 2011): the same
traces with ltd = eta (alpha - y_post) (`circuit.STDP`), so a pre spike
strengthens the synapse when the post fired more than its target lately.

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

from jbrain.circuit import Projection
from jbrain.state import ProjectionWiring
from jbrain.synapses import from_fixed


def _same(tree: Any) -> Any:
    return tree


def trace_step(
    q: Projection,
    dt: float,
    x_pre: jax.Array,
    y_post: jax.Array,
    s_pre: jax.Array,
    s_post: jax.Array,
    fence: Callable[[Any], Any] = _same,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(ltp, ltd, x_pre', y_post'): this step's per-neuron increments
    a_plus * x_pre (N_pre,), a_minus * y_post (N_post,) (traces before the
    bump) and the bumped traces, x <- x exp(-dt/tau) + s. The increments are
    materialised once (a barrier on GPUs, `fence` on CPUs, where XLA drops
    barriers before fusion), so `w + a*x` is never contracted into an FMA
    inside a weight update: every path and fusion rounds the same way."""
    r = q.plasticity
    if r.rule == "vogels":  # pre fires: w += eta (y_post - alpha), i.e. w -= eta (alpha - y_post)
        alpha = 2.0 * r.target / (1.0 - math.exp(-dt / r.tau_post))
        ltd = r.a_plus * (alpha - y_post)
    else:
        ltd = r.a_minus * y_post
    ltp, ltd = fence(jax.lax.optimization_barrier((r.a_plus * x_pre, ltd)))
    x_pre = x_pre * math.exp(-dt / r.tau_pre) + s_pre.astype(jnp.float32)
    y_post = y_post * math.exp(-dt / r.tau_post) + s_post.astype(jnp.float32)
    return ltp, ltd, x_pre, y_post


def stdp_step(
    q: Projection,
    dt: float,
    wiring: ProjectionWiring,
    weights_pre: jax.Array,
    x_pre: jax.Array,
    y_post: jax.Array,
    s_pre: jax.Array,
    s_post: jax.Array,
    ids_pre: jax.Array,
    ids_post: jax.Array,
    fence: Callable[[Any], Any] = _same,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One STDP step over spike lists (the event path). weights_pre (N*K,)
    f32 in presynaptic order (`synapses.to_pre_major`); traces (N,) f32;
    spikes (N,) uint8; ids_pre, ids_post (C,) int32 spike lists of the pre
    and post populations padded with N (if more than C fired, the update is
    incomplete: the caller flags STATUS_SPIKE_OVERFLOW). Returns (weights,
    x_pre, y_post): `dense_step`'s numbers (`fence`: see `trace_step`). The
    "cpu_native" backend runs it as a compiled loop, bit for bit the same."""
    n, k = wiring.pre.shape
    w_max = q.w_max
    ltp, ltd, x_pre, y_post = trace_step(q, dt, x_pre, y_post, s_pre, s_post, fence)
    slot = jnp.arange(k, dtype=jnp.int32)
    pres = wiring.pre.at[ids_post].get(mode="fill", fill_value=n)  # (C, K) inputs of fired posts
    posts = wiring.out_post.at[ids_pre].get(mode="fill", fill_value=n)  # (C, K) targets of fired pres
    # Flat positions of the fired posts' in-rows (LTP: K random entries each)
    # and the fired pres' out-rows (LTD: one contiguous row each); padding
    # (id N) lands past N*K and is dropped.
    in_pos, out_pos = pres * k + slot, ids_pre[:, None] * k + slot
    # Both rows are read from the old weights and written by one scatter. A
    # synapse whose pre and post both fired is in both: it is written from
    # its out-row, which applies LTP (pre j's trace) and then LTD, as
    # sequential updates would.
    fired_pre, fired_post = s_pre != 0, s_post != 0
    w = weights_pre
    up = w.at[in_pos].get(mode="fill", fill_value=0.0) + ltp.at[pres].get(mode="fill", fill_value=0.0)
    up = jnp.clip(up, 0.0, w_max)
    old = w.at[out_pos].get(mode="fill", fill_value=0.0)
    both = fired_post.at[posts].get(mode="fill", fill_value=False)
    old = jnp.where(
        both, jnp.clip(old + ltp.at[ids_pre].get(mode="fill", fill_value=0.0)[:, None], 0.0, w_max), old
    )
    down = jnp.clip(old - ltd.at[posts].get(mode="fill", fill_value=0.0), 0.0, w_max)
    in_only = jnp.where(fired_pre.at[pres].get(mode="fill", fill_value=True), n * k, in_pos)  # dropped
    pos = jnp.concatenate([in_only, out_pos]).reshape(-1)
    w = w.at[pos].set(jnp.concatenate([up, down]).reshape(-1), mode="drop")
    if q.plasticity.scaling:
        rows = w.at[in_pos].get(mode="fill", fill_value=1.0)
        total = jnp.maximum(rows.sum(axis=1, keepdims=True), 1e-12)
        rows = jnp.clip(rows * (0.5 * k * w_max / total), 0.0, w_max)
        w = w.at[in_pos].set(rows, mode="drop")
    return w, x_pre, y_post


def dense_step(
    q: Projection,
    dt: float,
    wiring: ProjectionWiring,
    weights: jax.Array,
    x_pre: jax.Array,
    y_post: jax.Array,
    s_pre: jax.Array,
    s_post: jax.Array,
    fence: Callable[[Any], Any] = _same,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One STDP step over every synapse (the gather and bcoo paths; any
    rule). weights (N_post*K,) f32 post-major; for synapse (i, k) from
    j = pre[i, k]:
        post i fired: w <- clip(w + a_plus x_pre[j], 0, w_max)
        pre j fired:  w <- clip(w - a_minus y_post[i], 0, w_max)    (after LTP)
        scaling, post i fired: row i <- clip(row * K w_max / 2 / sum(row), 0, w_max)
    The same f32 operations per synapse as `stdp_step`. Returns (weights,
    x_pre, y_post)."""
    n, k = wiring.pre.shape
    w_max = q.w_max
    ltp, ltd, x_pre, y_post = trace_step(q, dt, x_pre, y_post, s_pre, s_post, fence)
    w = weights.reshape(n, k)
    fired_post = (s_post != 0)[:, None]
    w = jnp.where(fired_post, jnp.clip(w + ltp[wiring.pre], 0.0, w_max), w)
    w = jnp.where(s_pre[wiring.pre] != 0, jnp.clip(w - ltd[:, None], 0.0, w_max), w)
    if q.plasticity.scaling:
        total = jnp.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        w = jnp.where(fired_post, jnp.clip(w * (0.5 * k * w_max / total), 0.0, w_max), w)
    return w.reshape(-1), x_pre, y_post


def delta_step(
    q: Projection,
    dt: float,
    wiring: ProjectionWiring,
    weights: jax.Array,
    x_pre: jax.Array,
    s_pre: jax.Array,
    target: jax.Array,
    on: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """One step of the teacher-gated delta rule (`circuit.STDP`, rule
    "delta"; gather and bcoo paths). weights (N_post*K,) f32 post-major;
    x_pre (N_pre,) f32 trace; s_pre (N_pre,) spikes; target (N_post,) f32,
    the teacher's T_i in {-1, 0, 1}; on: () bool, whether a teacher channel is
    on this step. With d = exp(-dt/tau_pre), r = x_pre' (1 - d) and
    rows r_i = r[pre[i, :]] (K,):
        x_pre' = x_pre d + s_pre
        w_i <- clip(w_i + eta r_i (T_i target - w_i . r_i), -w_max, w_max)
    when `on` (LMS, Widrow-Hoff: the post's predicted drive w_i . r_i moves
    toward its target by eta |r_i|^2 of the gap per step). r is the pres'
    rate over the last tau_pre / dt steps or so: long enough that a post's
    error is that of the whole code it hears (the synapses of a code share
    the error, and learning stops when the code's drive reaches the target,
    so codes that overlap do not overwrite each other's synapses), short
    enough that a reply window's code fades a few steps into the next
    window. The target must be reachable: w_max |r_i|_1 > target for the
    codes a post hears. A weight may turn negative: the
    net of the pre's excitation and the feedforward inhibition it recruits
    (circuit.STDP, rule "delta"). Returns (weights, x_pre')."""
    n, k = wiring.pre.shape
    r = q.plasticity
    d = math.exp(-dt / r.tau_pre)
    x_pre = x_pre * d + s_pre.astype(jnp.float32)
    rows = (x_pre * (1.0 - d))[wiring.pre]
    w = weights.reshape(n, k)
    error = target * r.target - (w * rows).sum(axis=1)
    step = jnp.where(on, r.a_plus * error, 0.0)
    w = jnp.clip(w + rows * step[:, None], -q.w_max, q.w_max)
    return w.reshape(-1), x_pre


def reward_step(
    q: Projection,
    dt: float,
    wiring: ProjectionWiring,
    weights: jax.Array,
    elig: jax.Array,
    tag: jax.Array,
    dopamine: jax.Array,
    x_pre: jax.Array,
    y_post: jax.Array,
    s_pre: jax.Array,
    s_post: jax.Array,
    reward: jax.Array | float,
    *,
    feedback: bool = False,
    fence: Callable[[Any], Any] = _same,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """One step of reward-modulated STDP (rule "reward", Izhikevich 2007;
    gather and bcoo paths). weights, elig, tag (N_post*K,) f32 post-major;
    dopamine () f32; traces as `dense_step`; reward () f32 delivered this
    step (the "reward" port). For synapse (i, k) from j = pre[i, k], with
    ltp = a_plus x_pre, ltd = a_minus y_post (traces before the bump):
        c <- c exp(-dt/tau_elig)
        post i fired: c <- c + ltp[j]          (pre before post)
        pre j fired:  c <- c - ltd[i]          (post before pre)
        d <- d exp(-dt/tau_dopamine) + reward
        w <- clip(w + eta d e, 0, w_max),   eta = `STDP.target`
    where the eligibility e read by the weights is c in an ordinary burst
    and the held tag in a feedback burst (`Plan.feedback`: the delayed
    credit of a chat reply, `learn.reward`; c keeps its own dynamics
    there). With d = 0 the weights do not change. A reward r at step t adds
    eta r e(t') exp(-(t'-t) dt/tau_dopamine) at every later step t': a
    pairing is credited by a reward that comes within ~tau_elig of it.
    Returns (weights, elig, dopamine, x_pre, y_post)."""
    n, k = wiring.pre.shape
    r = q.plasticity
    ltp, ltd, x_pre, y_post = trace_step(q, dt, x_pre, y_post, s_pre, s_post, fence)
    c = elig.reshape(n, k) * math.exp(-dt / r.tau_elig)
    c = jnp.where((s_post != 0)[:, None], c + ltp[wiring.pre], c)
    c = jnp.where(s_pre[wiring.pre] != 0, c - ltd[:, None], c)
    d = dopamine * math.exp(-dt / r.tau_dopamine) + jnp.asarray(reward, jnp.float32)
    e = tag.reshape(n, k) if feedback else c
    w = jnp.clip(weights.reshape(n, k) + (r.target * d) * e, 0.0, q.w_max)
    return w.reshape(-1), c.reshape(-1), d, x_pre, y_post


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
    """Deferred LTP of one projection inside a burst.

    hist:    (N_post,) uint32 spike history of the posts; bit b: fired b steps
             before the last processed step
    pending: (N_pre,) int32 processed steps whose LTP the out-row still lacks (< HISTORY)
    anchor:  (N_pre,) f32 x_pre entering the first of those steps
    push:    what the backend's push carries from step to step (`push_scratch`:
             the replay kernel also pushes the spikers' rows), or None (XLA
             pushes after the update, `propagate_event`)
    phase:   ((1,) int32 step mod HISTORY, (1,) int32 spare) where the
             backend's replay kernel advances the round robin itself, or
             None (the block follows the step counter)
    """

    hist: jax.Array
    pending: jax.Array
    anchor: jax.Array
    push: Any = None
    phase: Any = None


def lag_init(x_pre: jax.Array, n_post: int, push: Any = None, step: jax.Array | None = None) -> Lag:
    """Nothing pending: the bookkeeping at the start of a burst. step: the
    state's step counter where the replay kernel carries the phase, else None."""
    n = x_pre.shape[0]
    phase = None
    if step is not None:
        phase = ((step % HISTORY).astype(jnp.int32).reshape(1), jnp.zeros((1,), jnp.int32))
    return Lag(jnp.zeros((n_post,), jnp.uint32), jnp.zeros((n,), jnp.int32), x_pre, push, phase)


def _decay(q: Projection, dt: float) -> jax.Array:
    """exp(-dt/tau_pre) as a run-time f32 scalar: with a constant, XLA would
    fold x*d*d into x*(d*d) and the replayed trace would not be
    `trace_step`'s, bit for bit."""
    return jax.lax.optimization_barrier(jnp.float32(math.exp(-dt / q.plasticity.tau_pre)))


def _ltp_table(q: Projection, dt: float, anchor: jax.Array, fence: Callable[[Any], Any]) -> jax.Array:
    """(R,) anchors -> (R, HISTORY) f32: a_plus * x at window step m, x decayed
    m times from the anchor. Materialised (see `trace_step`: no FMA with w)."""
    d = _decay(q, dt)
    xs = [anchor]
    for _ in range(HISTORY - 1):
        xs.append(xs[-1] * d)
    return fence(jax.lax.optimization_barrier(q.plasticity.a_plus * jnp.stack(xs, axis=1)))


def _replay(w_max: float, w: jax.Array, hist: jax.Array, count: jax.Array, table: jax.Array) -> jax.Array:
    """Pending LTP of R out-rows, oldest step first. w (R, K) f32; hist (R, K)
    uint32 histories of the rows' targets; count (R,) int32 window length
    (bit count-1 is its oldest step, bit 0 its newest); table: `_ltp_table`."""
    count = count[:, None]
    for m in range(HISTORY):
        bit = count - 1 - m  # < 0: past the window
        fired = (bit >= 0) & (((hist >> jnp.maximum(bit, 0).astype(jnp.uint32)) & 1) != 0)
        w = jnp.where(fired, jnp.clip(w + table[:, m : m + 1], 0.0, w_max), w)
    return w


def _replay_rows(
    q: Projection,
    dt: float,
    wiring: ProjectionWiring,
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
        q.w_max,
        w.at[rows].get(mode="fill", fill_value=0.0),
        hist.at[posts].get(mode="fill", fill_value=0),
        count.at[rows].get(mode="fill", fill_value=0),
        _ltp_table(q, dt, anchor.at[rows].get(mode="fill", fill_value=0.0), fence),
    )
    if ltd is not None:
        new = jnp.clip(new - ltd.at[posts].get(mode="fill", fill_value=0.0), 0.0, q.w_max)
    return w.at[rows].set(new, mode="drop").reshape(-1)


def _kernel(backend, q: Projection, dt: float, wiring, weights_pre, lag: Lag, **kw) -> tuple[Any, Any, Any]:
    """The backend's `replay_stdp` kernel with the lag's arrays and the rule's
    numbers: (weights, the push's (acc, stale) or None, the next phase or None)."""
    return backend.replay_stdp(
        wiring.out_post.reshape(-1), weights_pre, lag.hist, lag.pending, lag.anchor,
        _decay(q, dt).reshape(1), history=HISTORY, a_plus=q.plasticity.a_plus, w_max=q.w_max, **kw,
    )  # fmt: skip


def deferred_step(
    q: Projection,
    dt: float,
    backend: Any,
    wiring: ProjectionWiring,
    weights_pre: jax.Array,
    x_pre: jax.Array,
    y_post: jax.Array,
    s_pre: jax.Array,
    s_post: jax.Array,
    ids: jax.Array,
    n_ids: jax.Array,
    lag: Lag,
    step: jax.Array,
    fence: Callable[[Any], Any] = _same,
) -> tuple[jax.Array, jax.Array, jax.Array, Lag, jax.Array | None]:
    """`stdp_step` with LTP deferred (see above): the same weights once
    `flush`ed. No synaptic scaling. ids[:n_ids]: the pre population's spike
    list (any order; the backend's raw list), or None where the backend's
    kernel finds the spikers itself (`Plan.listed`: the pre population is
    not listed); step: the step counter (picks the round-robin block, or
    lag.phase does where the kernel carries it); backend: one with a
    `replay_stdp` kernel (one kernel for both sets of rows) or without
    (XLA). Returns (weights, x_pre, y_post, lag, W @ s of the listed
    spikers through the new weights ((N_post,) f32) where the kernel pushed
    them (lag.push given), else None)."""
    n = wiring.pre.shape[0]
    _, ltd, x_new, y_new = trace_step(q, dt, x_pre, y_post, s_pre, s_post, fence)
    fired = s_pre != 0
    hist = (lag.hist << 1) | (s_post != 0).astype(jnp.uint32)
    # Round-robin: block u mod HISTORY of the rows is replayed on step u, so
    # no window outgrows the history; rows that fired are replayed as spikers
    # (the pending LTP, this step's included, then LTD).
    size = -(-n // HISTORY)
    phase = (step % HISTORY).astype(jnp.int32) if lag.phase is None else lag.phase[0][0]
    start = jnp.minimum(phase * size, n - size)
    phase_next = None
    if backend.replay_stdp is not None:  # one kernel for both sets of rows
        w, pushed, phase_next = _kernel(
            backend, q, dt, wiring, weights_pre, lag._replace(hist=hist), scratch=lag.push,
            spikes=s_pre.astype(jnp.uint8), ltd=ltd, ids=ids, n_ids=n_ids,
            start=None if lag.phase is not None else start, phase=lag.phase, block=size, extra=1,
        )  # fmt: skip
    else:
        pushed = None
        count = lag.pending + 1
        block = start + jnp.arange(size, dtype=jnp.int32)
        block = jnp.where(fired[block], n, block)
        w = _replay_rows(q, dt, wiring, weights_pre, hist, count, lag.anchor, block, fence)
        listed = jnp.where(jnp.arange(ids.shape[0]) < n_ids, ids, n)
        w = _replay_rows(q, dt, wiring, w, hist, count, lag.anchor, listed, fence, ltd=ltd)
    r = jnp.arange(n, dtype=jnp.int32)
    done = fired | ((r >= start) & (r < start + size))
    current, push = None, lag.push
    if pushed is not None:
        acc, stale = pushed
        current, push = from_fixed(acc), (stale, acc)  # the two accumulators swap every step
    if phase_next is not None:  # the two phase buffers swap every step, as the accumulators do
        phase_next = (phase_next, lag.phase[0])
    lag = Lag(hist, jnp.where(done, 0, lag.pending + 1), jnp.where(done, x_new, lag.anchor), push, phase_next)
    return w, x_new, y_new, lag, current


def flush(
    q: Projection,
    dt: float,
    backend: Any,
    wiring: ProjectionWiring,
    weights_pre: jax.Array,
    lag: Lag,
    fence: Callable[[Any], Any] = _same,
) -> jax.Array:
    """Every row's pending LTP applied (the end of a burst): the weights
    `stdp_step` would hold, presynaptic order, (N*K,) f32."""
    n = wiring.pre.shape[0]
    every = jnp.arange(n, dtype=jnp.int32)
    if backend.replay_stdp is not None:
        zero = jnp.zeros(lag.hist.shape, jnp.float32)  # no LTD: (N_post,)
        return _kernel(
            backend, q, dt, wiring, weights_pre, lag, spikes=jnp.zeros((n,), jnp.uint8), ltd=zero,
            ids=every, n_ids=jnp.int32(n), start=jnp.int32(0), block=0, extra=0,
        )[0]  # fmt: skip
    return _replay_rows(q, dt, wiring, weights_pre, lag.hist, lag.pending, lag.anchor, every, fence)
