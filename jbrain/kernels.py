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


class _Mem:
    """Masked gathers: Triton pointer ops, or whole-array jnp ops in interpret
    mode (masked lanes read `other`)."""

    def __init__(self, interpret: bool):
        self.interpret = interpret

    def load(self, ref, idx, mask, other):
        if self.interpret:
            return jnp.where(mask, ref[...][jnp.where(mask, idx, 0)], other)
        return plgpu.load(ref.at[idx], mask=mask, other=other)


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
