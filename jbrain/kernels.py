"""Pallas (Triton) kernels for GPUs; XLA does the same work elsewhere.

Four kernels, each bit-exact with its XLA counterpart (tests run them
through Pallas's interpreter on the CPU; scripts/check_kernels_gpu.py
compiles them on a GPU):

  spike_list   the event path's list of neurons that fired, one kernel (XLA's
               `synapses.spike_list` takes four): 200k 28.8 -> 25.6 us/step,
               1M 69.5 -> 60.5 on an H200 (session 5).
  replay_stdp  deferred STDP (`plasticity.deferred_step`) over that list and
               a round-robin block of rows, one kernel per step: the plastic
               step 53.5 -> 38.1 us at 200k, 254 -> 109 at 1M, 3,426 ->
               1,418 at 10M on an H200 (session 7).
  event_stdp   STDP over that list on presynaptic-order weights, no atomics;
               off (`EVENT_STDP`): no faster than XLA's STDP in a burst.
  gather_stdp  the gather path with STDP fused in (below).

gather_stdp. With plasticity on, one pass over the post-major synapse rows
applies the STDP update for the spike vector s (`plasticity.py`: LTP where the
row's neuron fired, LTD where the pre fired, then scaling) and computes
I = W' @ s:

    for each post i (ROWS rows per program), synapses e = i*K + k:
        pre  = pre_ids[e]                      (N*K int32, read once)
        fp   = s[pre]     (bit test of the spike mask)
        fi   = s[i]
        w    = weights[e], loaded and stored back only where fp or fi
        w    = clip(w + a_plus x_pre[pre]) where fi; clip(w - a_minus y_post[i])
               where fp; row scaling where fi
        I[i] = sum_k fp * quantize(w)          (int32 fixed point, exact)

The weights are updated in place (input_output_aliases), there is no spike
list (so no overflow) and no atomics. On an H200 at 200k neurons it took the
chat reply (200 plastic steps) from 25.0 to ~15 ms. Without plasticity XLA's
own gather is faster (~20 vs ~40 us at 200k), so it is used only with
plasticity.

`interpret=True` runs the same kernel bodies through Pallas's interpreter (any
backend; for tests).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from jbrain.synapses import quantize

ROWS = 128  # post rows per program (tuned on an H200: scripts/sweep_kernel.py)
WARPS = 4  # warps per program
MASKED_LOAD = True
"""Load only the weights a spike touches (fewer bytes, scalar predicated
loads) or the whole block (16-byte vector loads). The whole-block variant is
not yet measured: scripts/probe_variants.py times both."""


def on_gpu() -> bool:
    """Pallas (Triton) kernels run on GPUs; XLA does the same work elsewhere."""
    return jax.default_backend() == "gpu"


def use_kernels(fan_in: int) -> bool:
    """The fused gather+STDP kernel runs on GPUs when K is a power of two (a
    Triton block is (ROWS, K)); XLA elsewhere."""
    return on_gpu() and fan_in & (fan_in - 1) == 0


class _Mem:
    """Masked gathers and scatters: Triton pointer ops, or whole-array jnp ops
    in interpret mode (masked lanes read `other`; programs run one after
    another there, so a scatter is a plain update)."""

    def __init__(self, interpret: bool):
        self.interpret = interpret

    def load(self, ref, idx, mask, other):
        if self.interpret:
            return jnp.where(mask, ref[...][jnp.where(mask, idx, 0)], other)
        return plgpu.load(ref.at[idx], mask=mask, other=other)

    def store(self, ref, idx, val, mask):
        if self.interpret:
            ref[...] = ref[...].at[jnp.where(mask, idx, ref.shape[0])].set(val, mode="drop")
        else:
            plgpu.store(ref.at[idx], val, mask=mask)


def _fired(mem: _Mem, mask_ref, ids, valid):
    """Bit test of the spike mask (uint32 words) for neuron ids (any shape)."""
    word = mem.load(mask_ref, ids >> 5, valid, jnp.uint32(0))
    return valid & (((word >> (ids & 31).astype(jnp.uint32)) & jnp.uint32(1)) != 0)


@functools.partial(jax.jit, static_argnames=("w_max", "scaling", "interpret"))
def gather_stdp(
    pre: jax.Array,
    weights: jax.Array,
    mask: jax.Array,
    ltp: jax.Array,
    ltd: jax.Array,
    *,
    w_max: float,
    scaling: bool,
    interpret: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """(acc (N,) int32 = fixed-point W' @ s, W' = weights after STDP for s).

    pre (N, K) int32; weights (N*K,) f32, post-major, updated in place (the
    caller must not reuse it); mask (ceil(N/32),) uint32 spike bitmask of s;
    ltp = a_plus * x_pre, ltd = a_minus * y_post, (N,) f32, traces before s.
    """
    n, k = pre.shape
    mem = _Mem(interpret)
    target = 0.5 * k * w_max

    def kernel(pre_ref, mask_ref, ltp_ref, ltd_ref, w_in_ref, acc_ref, w_ref):
        # pre_ref, w_ref, acc_ref: this program's (ROWS, K) / (ROWS,) blocks,
        # read and written whole; mask, ltp, ltd: whole arrays, gathered from.
        del w_in_ref  # aliased with w_ref
        rows = pl.program_id(0) * ROWS + jnp.arange(ROWS, dtype=jnp.int32)
        row_ok = (rows < n)[:, None]  # the last block may run past N
        pres = pre_ref[...]
        fp = _fired(mem, mask_ref, pres, row_ok)  # (ROWS, K): the pre fired
        fi = _fired(mem, mask_ref, rows[:, None], row_ok)  # (ROWS, 1): the post fired
        touched = fp | fi
        w = plgpu.load(w_ref, mask=touched, other=0.0) if MASKED_LOAD else w_ref[...]
        w = jnp.where(fi, jnp.clip(w + mem.load(ltp_ref, pres, fi & row_ok, 0.0), 0.0, w_max), w)
        w = jnp.where(fp, jnp.clip(w - mem.load(ltd_ref, rows[:, None], row_ok, 0.0), 0.0, w_max), w)
        if scaling:
            total = jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1e-12)
            w = jnp.where(fi, jnp.clip(w * (target / total), 0.0, w_max), w)
        plgpu.store(w_ref, w, mask=touched)
        acc_ref[...] = jnp.sum(jnp.where(fp, quantize(w), 0), axis=1)

    rows_k = pl.BlockSpec((ROWS, k), lambda i: (i, 0))
    whole = pl.no_block_spec
    acc, weights = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((n,), jnp.int32), jax.ShapeDtypeStruct((n, k), weights.dtype)),
        grid=(-(-n // ROWS),),
        in_specs=[rows_k, whole, whole, whole, rows_k],
        out_specs=(pl.BlockSpec((ROWS,), lambda i: (i,)), rows_k),
        input_output_aliases={4: 1},
        interpret=interpret,
        compiler_params=None if interpret else plgpu.CompilerParams(num_warps=WARPS, num_stages=1),
        name="jbrain_gather_stdp",
    )(pre, mask, ltp, ltd, weights.reshape(n, k))
    return acc, weights.reshape(-1)


LIST_BLOCK = 2048  # neurons per program of `spike_list` (a power of two: Triton's cumsum)
EVENT_ROWS = 32  # listed spikers per program of `event_stdp`
EVENT_WARPS = 4
EVENT_STDP = False
"""Whether the event path's STDP runs as `event_stdp` (else XLA's, on the
Pallas spike list). Off: on an H200 at 200k (session 6) the kernel takes 21.5
us alone (in-row part 16.5: a random trace load and weight update per synapse), XLA's STDP
~25 us in four kernels, yet plastic replies took 13.6 against 13.5 ms.
(Session 5's "fixed ~29 us whatever the body" was XLA reusing the first
compiled kernel of that name within the process.)"""
# Development knob: scripts/diag_launch.py stdp:<parts> times the kernel with parts cut.
_EVENT_PARTS = ("out", "in")


@functools.partial(jax.jit, static_argnames=("capacity", "interpret"))
def spike_list(spikes: jax.Array, *, capacity: int, interpret: bool = False) -> tuple[jax.Array, jax.Array]:
    """(ids (C,) int32, count () int32): the neurons that fired, one kernel.

    Each program compacts LIST_BLOCK neurons (a prefix sum in registers) and
    reserves its slice of the list with one atomic add on a counter, so the
    list is in no fixed order on a GPU (ascending in interpret mode). Every
    consumer is order-free: `event_stdp` writes disjoint weights and the
    scatter-add sums in int32. Only positions < min(count, C) are written;
    `listed` masks the rest. XLA's `synapses.spike_list` (ascending, padded)
    takes four kernels: a bitmask, popcounts, a prefix by matmul, a scatter.
    """
    n = spikes.shape[0]
    mem = _Mem(interpret)

    def kernel(s_ref, zero_ref, ids_ref, count_ref):
        del zero_ref  # aliased with count_ref
        idx = pl.program_id(0) * LIST_BLOCK + jnp.arange(LIST_BLOCK, dtype=jnp.int32)
        fired = mem.load(s_ref, idx, idx < n, jnp.uint8(0)) != 0
        f = fired.astype(jnp.int32)
        start = plgpu.atomic_add(count_ref, jnp.int32(0), jnp.sum(f))  # the counter before this block
        pos = start + jnp.cumsum(f) - f
        mem.store(ids_ref, pos, idx, fired & (pos < capacity))

    ids, count = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((capacity,), jnp.int32), jax.ShapeDtypeStruct((1,), jnp.int32)),
        grid=(-(-n // LIST_BLOCK),),
        in_specs=[pl.no_block_spec, pl.no_block_spec],
        out_specs=(pl.no_block_spec, pl.no_block_spec),
        input_output_aliases={1: 1},
        interpret=interpret,
        compiler_params=None if interpret else plgpu.CompilerParams(num_warps=4, num_stages=1),
        name="jbrain_spike_list",
    )(spikes, jnp.zeros((1,), jnp.int32))
    return ids, count[0]


def listed(ids: jax.Array, count: jax.Array, n: int) -> jax.Array:
    """`spike_list`'s ids with the unwritten tail set to n (XLA's padding)."""
    return jnp.where(jnp.arange(ids.shape[0]) < count, ids, n)


@functools.partial(jax.jit, static_argnames=("w_max", "interpret"), donate_argnames=("weights_pre",))
def event_stdp(
    pre: jax.Array,
    out_post: jax.Array,
    weights_pre: jax.Array,
    spikes: jax.Array,
    ids: jax.Array,
    count: jax.Array,
    ltp: jax.Array,
    ltd: jax.Array,
    *,
    w_max: float,
    interpret: bool = False,
) -> jax.Array:
    """STDP for the spike vector s on presynaptic-order weights, one kernel
    over the spike list (GPUs). Equals `plasticity.stdp_step(pre_major=True)`
    without synaptic scaling, bit for bit. Per listed neuron j:
      out-row e = j*K + k (contiguous), post i = out_post[j, k]:
          w = clip(w + ltp[j], 0, w_max) if s[i]     (LTP of a pair that both fired)
          w = clip(w - ltd[i], 0, w_max)              (LTD: pre j fired)
      in-row, pre p = pre[j, k], entry p*K + k, where s[p] = 0:
          w = clip(w + ltp[p], 0, w_max)              (LTP: post j fired)
    The writes are disjoint (out-rows belong to neurons that fired, the in-row
    entries written to neurons that did not), so programs need no atomics and
    the list's order does not matter. Programs past `count` return at once.
    pre, out_post (N, K) int32; weights_pre (N*K,) f32, updated in place;
    spikes (N,) uint8; ids (C,), count () from `spike_list`; ltp, ltd (N,) f32.
    Returns the weights (N*K,) f32.
    """
    n, k = pre.shape
    kp = pl.next_power_of_2(k)  # Triton blocks are powers of two: pad the row
    mem = _Mem(interpret)

    def kernel(pre_ref, post_ref, ids_ref, count_ref, sltp_ref, sltd_ref, w_in_ref, w_ref):
        # sltp, sltd: ltp, ltd with the sign bit set where the neuron fired,
        # so one random load gives both (|x| is exact; -0.0 marks ltd = 0).
        del w_in_ref  # aliased with w_ref
        first = pl.program_id(0) * EVENT_ROWS
        count = count_ref[0]

        @pl.when(first < count)
        def _():
            c = first + jnp.arange(EVENT_ROWS, dtype=jnp.int32)
            row_ok = c < jnp.minimum(count, ids_ref.shape[0])
            j = mem.load(ids_ref, c, row_ok, jnp.int32(0))
            slot = jnp.arange(kp, dtype=jnp.int32)[None, :]
            ok = row_ok[:, None] & (slot < k)  # (ROWS, KP)
            e = j[:, None] * k + slot
            if "out" in _EVENT_PARTS:  # out-row of j: LTP where the post fired too, then LTD
                posts = mem.load(post_ref, e, ok, jnp.int32(0))
                w = mem.load(w_ref, e, ok, 0.0)
                d = mem.load(sltd_ref, posts, ok, 0.0)
                both = ok & _signed(d)
                ltp_j = jnp.abs(mem.load(sltp_ref, j, row_ok, 0.0))[:, None]  # j fired
                w = jnp.where(both, jnp.clip(w + ltp_j, 0.0, w_max), w)
                w = jnp.clip(w - jnp.abs(d), 0.0, w_max)
                mem.store(w_ref, e, w, ok)
            if "in" in _EVENT_PARTS:  # in-row of j: LTP on the synapses whose pre did not fire
                pres = mem.load(pre_ref, e, ok, jnp.int32(0))
                up = mem.load(sltp_ref, pres, ok, -1.0)  # masked lanes read as fired: skipped
                only = ok & ~_signed(up)
                pos = pres * k + slot
                w_in = mem.load(w_ref, pos, only, 0.0)
                w_in = jnp.clip(w_in + up, 0.0, w_max)
                mem.store(w_ref, pos, w_in, only)

    fired = spikes != 0
    sltp, sltd = jnp.where(fired, -ltp, ltp), jnp.where(fired, -ltd, ltd)  # -0.0 where a zero fired
    whole = pl.no_block_spec
    (weights,) = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct(weights_pre.shape, weights_pre.dtype),),
        grid=(-(-ids.shape[0] // EVENT_ROWS),),
        in_specs=[whole] * 7,
        out_specs=(whole,),
        input_output_aliases={6: 0},
        interpret=interpret,
        compiler_params=None if interpret else plgpu.CompilerParams(num_warps=EVENT_WARPS, num_stages=1),
        name="jbrain_event_stdp",
    )(pre.reshape(-1), out_post.reshape(-1), ids, count.reshape(1), sltp, sltd, weights_pre)
    return weights


def _signed(x: jax.Array) -> jax.Array:
    """Sign bit of f32 x (true for -0.0 too)."""
    return jax.lax.bitcast_convert_type(x, jnp.int32) < 0


REPLAY_ROWS = 16  # out-rows per program of `replay_stdp` (H200, 200k: 16/32/64 rows 37.2/38.3/39.4 us/step)
REPLAY_WARPS = 4


@functools.partial(
    jax.jit,
    static_argnames=("block", "extra", "history", "a_plus", "w_max", "interpret"),
    donate_argnames=("weights_pre",),
)
def replay_stdp(
    out_post: jax.Array,
    weights_pre: jax.Array,
    hist: jax.Array,
    pending: jax.Array,
    anchor: jax.Array,
    decay: jax.Array,
    spikes: jax.Array,
    ltd: jax.Array,
    ids: jax.Array,
    n_ids: jax.Array,
    start: jax.Array,
    *,
    block: int,
    extra: int,
    history: int,
    a_plus: float,
    w_max: float,
    interpret: bool = False,
) -> jax.Array:
    """Deferred STDP (`plasticity.deferred_step`) in place, one kernel, bit
    for bit `plasticity._replay_rows`. Two sets of out-rows: the listed
    neurons ids[:n_ids] (replay, then LTD), and rows [start, start + block)
    that did not fire (replay only; `block` = 0: none). For out-row j, e =
    j*K + k, post i = out_post[j, k], window g = pending[j] + extra:
        x = anchor[j]
        for m < g:  if bit g-1-m of hist[i]:  w = clip(w + a_plus*x, 0, w_max)
                    x = x * decay
        w = clip(w - ltd[i], 0, w_max)                      (listed rows)
    Products are rounded on their own (PTX mul.rn: never an FMA with w) and
    `decay` is an operand (a constant could be folded into decay**m), so x
    follows `trace_step`'s decay exactly. Rows are disjoint: no atomics.
    out_post (N*K,) int32; weights_pre (N*K,) f32; hist (N,) uint32;
    pending (N,) int32 (g <= history <= 32); anchor, ltd (N,) f32; decay (1,)
    f32; spikes (N,) uint8; ids (C,) int32; n_ids, start (1,) int32.
    Returns the weights."""
    n = hist.shape[0]
    k = out_post.shape[0] // n
    kp = pl.next_power_of_2(k)
    listed_programs = -(-ids.shape[0] // REPLAY_ROWS)
    mem = _Mem(interpret)

    def mul(a, b):
        if interpret:  # XLA: a lone multiply, rounded like trace_step's
            return a * b
        (out,) = plgpu.elementwise_inline_asm(
            "mul.rn.f32 $0, $1, $2;",
            args=[a, b],
            constraints="=f,f,f",
            pack=1,
            result_shape_dtypes=[jax.ShapeDtypeStruct(a.shape, jnp.float32)],
        )
        return out

    def kernel(
        post_ref,
        hist_ref,
        pend_ref,
        anchor_ref,
        decay_ref,
        s_ref,
        ltd_ref,
        ids_ref,
        nid_ref,
        start_ref,
        w_in_ref,
        w_ref,
    ):
        del w_in_ref  # aliased with w_ref
        p = pl.program_id(0)
        listed = p < listed_programs
        first = jnp.where(listed, p, p - listed_programs) * REPLAY_ROWS
        limit = jnp.where(listed, jnp.minimum(nid_ref[0], ids_ref.shape[0]), block)

        @pl.when(first < limit)
        def _():
            c = first + jnp.arange(REPLAY_ROWS, dtype=jnp.int32)
            row_ok = c < limit
            j = jnp.where(listed, mem.load(ids_ref, c, row_ok & listed, jnp.int32(0)), start_ref[0] + c)
            fired = mem.load(s_ref, j, row_ok & ~listed, jnp.uint8(0)) != 0
            row_ok = row_ok & ~fired  # block rows that fired are the listed rows' (same call)
            slot = jnp.arange(kp, dtype=jnp.int32)[None, :]
            ok = row_ok[:, None] & (slot < k)
            e = j[:, None] * k + slot
            posts = mem.load(post_ref, e, ok, jnp.int32(0))
            w = mem.load(w_ref, e, ok, 0.0)
            g = mem.load(pend_ref, j, row_ok, jnp.int32(0))[:, None] + extra
            # the window's oldest step at bit 31, the next ones below it, zeros after
            h = mem.load(hist_ref, posts, ok, jnp.uint32(0))
            h = jnp.where(g > 0, h << (32 - jnp.maximum(g, 1)).astype(jnp.uint32), jnp.uint32(0))
            x = mem.load(anchor_ref, j, row_ok, 0.0)[:, None]
            d = jnp.full(x.shape, decay_ref[0], jnp.float32)
            a = jnp.full(x.shape, a_plus, jnp.float32)
            for m in range(history):
                on = jax.lax.bitcast_convert_type(h, jnp.int32) < 0
                up = w + mul(a, x)  # w >= 0, so with a_plus >= 0 the lower clip is a no-op
                w = jnp.where(on, jnp.minimum(up, w_max) if a_plus >= 0 else jnp.clip(up, 0.0, w_max), w)
                if m + 1 < history:
                    h = h << jnp.uint32(1)
                    x = mul(x, d)
            down = mem.load(ltd_ref, posts, ok & listed, 0.0)  # 0: block rows keep w
            w = jnp.clip(w - down, 0.0, w_max)
            mem.store(w_ref, e, w, ok)

    whole = pl.no_block_spec
    (weights,) = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct(weights_pre.shape, weights_pre.dtype),),
        grid=(listed_programs + -(-block // REPLAY_ROWS),),
        in_specs=[whole] * 11,
        out_specs=(whole,),
        input_output_aliases={10: 0},
        interpret=interpret,
        compiler_params=None if interpret else plgpu.CompilerParams(num_warps=REPLAY_WARPS, num_stages=1),
        name="jbrain_replay_stdp",
    )(
        out_post,
        hist,
        pending,
        anchor,
        decay,
        spikes,
        ltd,
        ids,
        n_ids.reshape(1),
        start.reshape(1),
        weights_pre,
    )
    return weights
