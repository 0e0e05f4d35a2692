"""Hybrid LIF neuron: leaky membrane, adaptive threshold, refractoriness, modes.

One step of dt ms, per neuron i (parameters per population, circuit.Neuron):

    v'  = v + (v_rest - v) dt/tau_m + I_in                  (leak + every input)
    v'  = v_reset                                 if refractory (refrac > 0)
    s   = [refrac == 0] * [v' > theta + adapt_boost*[mode == ADAPTED]]
    v'  = v_reset                                 where s
    a'  = a*exp(-dt/tau_adapt) + s                (spike-frequency trace, ~rate*tau)

Modes (uint8 state machine), evaluated after the spike:

    REFRACTORY   entry: the neuron spiked (refrac <- `refractory` steps).
                 while in it: v is clamped at v_reset, no spike is possible.
                 exit: refrac counts down to 0 -> ADAPTED if a' >= adapt_on,
                 else INTEGRATING.
    INTEGRATING  the default: integrates its inputs; threshold theta.
                 exit: spike -> REFRACTORY; a' >= adapt_on -> ADAPTED.
    ADAPTED      a burster: recent firing drove a' >= adapt_on. Its threshold
                 is raised by adapt_boost, which ends the burst.
                 exit: spike -> REFRACTORY; a' < adapt_off -> INTEGRATING
                 (hysteresis: adapt_off < adapt_on).

xi ~ N(0, 1) comes from a counter-based hash of (run key, step, neuron id) and
the inverse normal CDF, so noise is fused into this elementwise update and
does not depend on how steps are grouped into bursts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jbrain.circuit import Circuit
from jbrain.state import ADAPTED, INTEGRATING, REFRACTORY


def per_neuron(circuit: Circuit, values: list[Any], dtype: Any = jnp.float32) -> Any:
    """One value per population -> the Python scalar when all are equal
    (a constant folded into the fused update, as one population has), else
    an (N,) array selected by neuron index (iota compares, fused too; no
    N-sized constant in the program)."""
    if all(v == values[0] for v in values):
        return values[0]
    i = jax.lax.iota(jnp.int32, circuit.n)
    out = jnp.asarray(values[-1], dtype)
    for p, v in reversed(list(zip(circuit.populations[:-1], values[:-1], strict=True))):
        out = jnp.where(i < circuit.bounds(p.name)[1], jnp.asarray(v, dtype), out)
    return out


def neuron_values(circuit: Circuit, field: str, dtype: Any = jnp.float32) -> Any:
    """`per_neuron` of one `circuit.Neuron` field."""
    return per_neuron(circuit, [getattr(p.neuron, field) for p in circuit.populations], dtype)


def _mix32(x: jax.Array) -> jax.Array:
    """`lowbias32` integer finaliser (uint32 -> uint32), a good avalanche hash."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def gaussian_noise(
    key: jax.Array, step: jax.Array, n: int, fence: Callable[[Any], Any] = lambda t: t
) -> jax.Array:
    """(n,) f32 standard normals for this step, by inverse CDF over hashed counters:

        u = (h(seed + i) >> 8 + 1/2) / 2**24 in (0, 1),  z = sqrt(2) erfinv(2u - 1)

    key: (2,) uint32 key data of the run stream; step: () int32. The per-step
    seed mixes both key words with the step, like fold_in. One hash, a log
    and polynomials per neuron (XLA's erfinv): several times cheaper on CPUs
    than Box-Muller, whose cos is a scalar libm call there (BENCHMARKS.md notes).
    24-bit u: |z| <= 5.42, the tail beyond has mass 1e-7. `fence`
    (`brain.materialize`) computes u in a loop of its own on CPUs: fused
    with the hash, erfinv's loop is compiled to much slower code (the same
    numbers either way).
    """
    seed = _mix32(key[0] ^ _mix32(step.astype(jnp.uint32) + key[1]))
    h = _mix32(jnp.arange(n, dtype=jnp.uint32) + seed)
    u = fence(unit_interval(h))
    return math.sqrt(2.0) * jax.lax.erf_inv(2.0 * u - 1.0)


def unit_interval(h: jax.Array) -> jax.Array:
    """uint32 hashes -> f32 u = ((h >> 8) + 1/2) / 2**24, capped at 1 - 2**-24:
    the top value rounds to 1.0 in f32, which would make z infinite (and a
    noiseless neuron's 0 * inf a NaN)."""
    u = ((h >> 8).astype(jnp.float32) + 0.5) * (1.0 / 2**24)
    return jnp.minimum(u, jnp.float32(1.0 - 2.0**-24))


def _k_winners(circuit: Circuit, spikes: jax.Array, margin: jax.Array) -> jax.Array:
    """(N,) bool: the spikes that k-WTA keeps. In each block
    (`Population.kwta`) only the k neurons above threshold with the largest
    margin v - theta keep their spike: at most k, ties at the k-th margin
    going to the lower index (`lax.top_k`), so a block never fires more than
    k (the fixed-point bound of its out-projections counts on it)."""
    parts = []
    for p in circuit.populations:
        a, b = circuit.bounds(p.name)
        s, (k, blocks) = spikes[a:b], p.kwta
        if k:
            m = jnp.where(s, margin[a:b], -jnp.inf).reshape(blocks, -1)
            top, idx = jax.lax.top_k(m, k)
            rows = jnp.arange(blocks)[:, None]
            s = jnp.zeros(m.shape, bool).at[rows, idx].set(top > -jnp.inf).reshape(-1)
        parts.append(s)
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


def neuron_update(
    circuit: Circuit,
    v: jax.Array,
    theta: jax.Array,
    adapt: jax.Array,
    refrac: jax.Array,
    mode: jax.Array,
    current: jax.Array,
    fence: Callable[[Any], Any] = lambda tree: tree,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Advance the membrane and mode machine by one step.

    v, theta, adapt: (N,) f32; refrac, mode: (N,) uint8;
    current: (N,) f32, everything added to v this step (drive, bias, noise, I_in).
    Returns (v, spikes (N,) bool, adapt, refrac, mode). `theta` is read only:
    its homeostatic update lives in `homeostasis.py`. `fence` materialises
    (v, s) before the bookkeeping reads them (see `brain.materialize`).
    """
    dt = circuit.dt
    pops = circuit.populations
    leak = per_neuron(circuit, [dt / p.neuron.tau_m for p in pops])
    v_rest, v_reset = neuron_values(circuit, "v_rest"), neuron_values(circuit, "v_reset")
    boost = neuron_values(circuit, "adapt_boost")
    decay = per_neuron(circuit, [math.exp(-dt / p.neuron.tau_adapt) for p in pops])
    on, off = neuron_values(circuit, "adapt_on"), neuron_values(circuit, "adapt_off")
    refractory = refrac > 0
    v = v + (v_rest - v) * leak + current
    v = jnp.where(refractory, jnp.float32(v_reset) if isinstance(v_reset, float) else v_reset, v)
    v_old = v
    theta_eff = theta + jnp.where(
        mode == ADAPTED, jnp.float32(boost) if isinstance(boost, float) else boost, 0.0
    )
    above = jnp.logical_and(~refractory, v > theta_eff)
    # every neuron above threshold is reset: the spikers, and k-WTA's losers (inhibited)
    v = jnp.where(above, jnp.float32(v_reset) if isinstance(v_reset, float) else v_reset, v)
    spikes = _k_winners(circuit, above, v_old - theta_eff) if any(p.kwta[0] for p in pops) else above
    v, spikes = fence((v, spikes))
    adapt = adapt * decay + spikes.astype(jnp.float32)
    steps = neuron_values(circuit, "refractory", jnp.uint8)
    steps = jnp.uint8(steps) if isinstance(steps, int) else steps
    refrac = jnp.where(spikes, steps, jnp.maximum(refrac, 1) - 1).astype(jnp.uint8)
    mode = jnp.where(
        refrac > 0,
        jnp.uint8(REFRACTORY),
        jnp.where(
            adapt >= on,
            jnp.uint8(ADAPTED),
            jnp.where((mode == ADAPTED) & (adapt >= off), jnp.uint8(ADAPTED), jnp.uint8(INTEGRATING)),
        ),
    )
    return v, spikes, adapt, refrac, mode
