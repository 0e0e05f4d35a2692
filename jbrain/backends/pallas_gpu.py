"""The "pallas_gpu" backend: Pallas (Triton) kernels for NVIDIA GPUs.

Two kernels, each bit-exact with its XLA counterpart (tests run them through
Pallas's interpreter on the CPU, and compiled under the `gpu` pytest marker
on a GPU):

  spike_list   the event path's list of neurons that fired, one kernel (XLA's
               `synapses.spike_list` takes four).
  replay_stdp  deferred STDP (`plasticity.deferred_step`) over that list and
               a round-robin block of rows, one kernel per step.

Everything else runs in XLA (the "xla" backend's functions). Pallas's Triton
lowering is deprecated in jax 0.11 ("will be removed in a future JAX
version"): its deprecation warning is filtered here, where it is imported,
and `IMPORT_ERROR` says why the module is unusable on a jax without it (the
plan then falls back to the "xla" backend with one warning).

`interpret=True` runs the same kernel bodies through Pallas's interpreter (any
backend; for tests).
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp

# jax 0.11 warns at every lowering of a Triton pallas_call; the backend is
# a supported choice of jbrain's plan until Mosaic GPU kernels replace it.
warnings.filterwarnings(
    "ignore", message="The Pallas Triton backend is deprecated", category=DeprecationWarning
)
IMPORT_ERROR: str | None = None
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        from jax.experimental import pallas as pl
        from jax.experimental.pallas import triton as plgpu
    except ImportError as e:  # a jax without Pallas's Triton backend
        IMPORT_ERROR = f"{type(e).__name__}: {e}"
        pl = plgpu = None

LIST_BLOCK = 2048  # neurons per program of `spike_list` (a power of two: Triton's cumsum)


def _compiler_params(num_warps: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return plgpu.CompilerParams(num_warps=num_warps, num_stages=1)


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
        compiler_params=None if interpret else _compiler_params(4),
        name="jbrain_spike_list",
    )(spikes, jnp.zeros((1,), jnp.int32))
    return ids, count[0]


def listed(ids: jax.Array, count: jax.Array, n: int) -> jax.Array:
    """`spike_list`'s ids with the unwritten tail set to n (XLA's padding)."""
    return jnp.where(jnp.arange(ids.shape[0]) < count, ids, n)


def _signed(x: jax.Array) -> jax.Array:
    """Sign bit of f32 x (true for -0.0 too)."""
    return jax.lax.bitcast_convert_type(x, jnp.int32) < 0


REPLAY_WARPS = 4


@functools.partial(
    jax.jit,
    static_argnames=("block", "extra", "history", "a_plus", "w_max", "rows", "interpret"),
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
    rows: int = 16,
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
    listed_programs = -(-ids.shape[0] // rows)
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
        first = jnp.where(listed, p, p - listed_programs) * rows
        limit = jnp.where(listed, jnp.minimum(nid_ref[0], ids_ref.shape[0]), block)

        @pl.when(first < limit)
        def _():
            c = first + jnp.arange(rows, dtype=jnp.int32)
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
                up = w + mul(a, x)  # w >= 0 and a_plus >= 0 (circuit.py): the lower clip is a no-op
                w = jnp.where(on, jnp.minimum(up, w_max), w)
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
        grid=(listed_programs + -(-block // rows),),
        in_specs=[whole] * 11,
        out_specs=(whole,),
        input_output_aliases={10: 0},
        interpret=interpret,
        compiler_params=None if interpret else _compiler_params(REPLAY_WARPS),
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
