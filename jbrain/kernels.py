"""Pallas (Triton) kernel: the gather path with STDP fused in, for GPUs.

With plasticity on, one pass over the post-major synapse rows applies the
STDP update for the spike vector s (`plasticity.py`: LTP where the row's
neuron fired, LTD where the pre fired, then scaling) and computes I = W' @ s:

    for each post i (ROWS rows per program), synapses e = i*K + k:
        pre  = pre_ids[e]                      (N*K int32, read once)
        fp   = s[pre]     (bit test of the spike mask)
        fi   = s[i]
        w    = weights[e], loaded and stored back only where fp or fi
        w    = clip(w + a_plus x_pre[pre]) where fi; clip(w - a_minus y_post[i])
               where fp; row scaling where fi
        I[i] = sum_k fp * quantize(w)          (int32 fixed point, exact)

Why: in XLA the update is a spike list, row gathers and scatters, and an
overflow fallback as `lax.cond` around which XLA copies the 4*N*K-byte
weights twice per step. Here the weights are updated in place
(input_output_aliases), there is no spike list (so no overflow) and no
atomics: the result does not depend on scheduling. On an H200 at 200k
neurons it took the chat reply (200 plastic steps) from 25.0 to ~15 ms.
Without plasticity XLA's own gather is faster (~20 vs ~40 us at 200k), so
this kernel is used only with plasticity.

`interpret=True` runs the same kernel body through Pallas's interpreter (any
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


def use_kernels(fan_in: int) -> bool:
    """The Pallas kernel runs on GPUs when K is a power of two (a Triton
    block is (ROWS, K)); XLA elsewhere."""
    return jax.default_backend() == "gpu" and fan_in & (fan_in - 1) == 0


EVENT_KERNEL = True
"""Whether the event path runs as Pallas kernels on GPUs (`event_stdp`) or
as XLA gathers and scatters; scripts/probe_variants.py times both."""


def use_event_kernel(config) -> bool:
    """`event_stdp` serves the event path on GPUs (K a power of two), except
    with synaptic scaling (a row rescale after LTD: XLA's STDP)."""
    return EVENT_KERNEL and use_kernels(config.fan_in) and not (config.plasticity and config.synaptic_scaling)


class _Mem:
    """Masked gathers: Triton pointer ops, or whole-array jnp ops in interpret
    mode (masked lanes read `other`)."""

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

    def atomic_add(self, ref, idx, val, mask):
        if self.interpret:  # programs run one after another
            ref[...] = ref[...].at[jnp.where(mask, idx, ref.shape[0])].add(val, mode="drop")
        else:
            plgpu.atomic_add(ref, idx, val, mask=mask)


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


EVENT_ROWS = 64  # listed spikers per program of the event kernels
EVENT_WARPS = 4


def _event_call(kernel, n_programs: int, outs, aliases: dict, args, interpret: bool, name: str):
    whole = pl.no_block_spec
    return pl.pallas_call(
        kernel,
        out_shape=outs,
        grid=(n_programs,),
        in_specs=[whole] * len(args),
        out_specs=tuple(whole for _ in outs),
        input_output_aliases=aliases,
        interpret=interpret,
        compiler_params=None if interpret else plgpu.CompilerParams(num_warps=EVENT_WARPS, num_stages=1),
        name=name,
    )(*args)


@functools.partial(jax.jit, static_argnames=("w_max", "interpret"))
def event_stdp(
    wiring_pre: jax.Array,
    out_post: jax.Array,
    weights_pre: jax.Array,
    ids: jax.Array,
    ltp: jax.Array | None,
    ltd: jax.Array | None,
    *,
    w_max: float,
    interpret: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """The event path in two Pallas kernels over the spike list (GPUs):
    (acc (N,) int32 = fixed-point W' @ s, W' in presynaptic order).

    Equals `plasticity.stdp_step(pre_major=True)` (without synaptic scaling)
    then `synapses.propagate_event`, bit for bit:
      LTP  per listed post i: w[pre[i,k]*K + k] = clip(w + ltp[pre[i,k]], 0, w_max)
      LTD  per listed pre j, its contiguous row e = j*K + k:
           w[e] = clip(w[e] - ltd[out_post[j,k]], 0, w_max), then
           acc[out_post[j,k]] += quantize(w[e])   (int32 atomics: exact)
    XLA does the same in ~6 gathers and scatters per step, each a kernel with
    its own round trip through memory. ltp = ltd = None: propagation only
    (no LTP kernel, no weight stores). wiring_pre, out_post (N, K) int32;
    weights_pre (N*K,) f32, updated in place (do not reuse it); ids (C,)
    int32 padded with N.
    """
    n, k = out_post.shape
    learn = ltp is not None
    mem = _Mem(interpret)
    programs = -(-ids.shape[0] // EVENT_ROWS)

    def listed(ids_ref):
        slot = jnp.arange(k, dtype=jnp.int32)[None, :]
        c = pl.program_id(0) * EVENT_ROWS + jnp.arange(EVENT_ROWS, dtype=jnp.int32)
        row_ok = c < ids_ref.shape[0]
        i = mem.load(ids_ref, c, row_ok, jnp.int32(n))
        ok = (i < n)[:, None] & (slot >= 0)  # (ROWS, K)
        return i[:, None] * k + slot, ok, slot  # flat positions of the row, mask

    def ltp_kernel(ids_ref, pre_ref, ltp_ref, w_in_ref, w_ref):
        del w_in_ref  # aliased with w_ref
        row, ok, slot = listed(ids_ref)
        pres = mem.load(pre_ref, row, ok, jnp.int32(0))
        pos = pres * k + slot  # the post's in-synapses, in presynaptic order
        w = mem.load(w_ref, pos, ok, 0.0)
        w = jnp.clip(w + mem.load(ltp_ref, pres, ok, 0.0), 0.0, w_max)
        mem.store(w_ref, pos, w, ok)

    def prop_kernel(ids_ref, post_ref, *refs):
        # inputs, then outputs; the zero accumulator (and, learning, the
        # weights) are aliased with outputs: use the output refs
        if learn:
            ltd_ref, _, _, w_ref, acc_ref = refs
        else:
            w_ref, _, acc_ref = refs
        row, ok, _ = listed(ids_ref)
        posts = mem.load(post_ref, row, ok, jnp.int32(0))
        w = mem.load(w_ref, row, ok, 0.0)
        if learn:
            w = jnp.clip(w - mem.load(ltd_ref, posts, ok, 0.0), 0.0, w_max)
            mem.store(w_ref, row, w, ok)
        mem.atomic_add(acc_ref, posts, quantize(w), ok)

    f32 = jax.ShapeDtypeStruct(weights_pre.shape, weights_pre.dtype)
    i32 = jax.ShapeDtypeStruct((n,), jnp.int32)
    zeros = jnp.zeros((n,), jnp.int32)
    post_flat = out_post.reshape(-1)
    if not learn:
        (acc,) = _event_call(
            prop_kernel, programs, (i32,), {3: 0}, (ids, post_flat, weights_pre, zeros),
            interpret, "jbrain_event",
        )  # fmt: skip
        return acc, weights_pre
    (w,) = _event_call(
        ltp_kernel, programs, (f32,), {3: 0}, (ids, wiring_pre.reshape(-1), ltp, weights_pre),
        interpret, "jbrain_event_ltp",
    )  # fmt: skip
    w, acc = _event_call(
        prop_kernel, programs, (f32, i32), {3: 0, 4: 1}, (ids, post_flat, ltd, w, zeros),
        interpret, "jbrain_event_ltd",
    )  # fmt: skip
    return acc, w
