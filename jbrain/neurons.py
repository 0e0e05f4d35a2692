"""Hybrid LIF neuron: leaky membrane, adaptive threshold, refractoriness, modes.

One step (dt = 1 ms; voltages in threshold units), per neuron i:

    v'  = v + (v_rest - v)/tau_m + bias + drive + noise_sd*xi + I_in     (leak + inputs)
    v'  = v_reset                                 if refractory (refrac > 0)
    s   = [refrac == 0] * [v' > theta + adapt_boost*[mode == ADAPTED]]
    v'  = v_reset                                 where s
    a'  = a*exp(-1/tau_adapt) + s                 (spike-frequency trace, ~rate*tau)

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

from jbrain.config import BrainConfig
from jbrain.state import ADAPTED, INTEGRATING, REFRACTORY


def _mix32(x: jax.Array) -> jax.Array:
    """`lowbias32` integer finaliser (uint32 -> uint32), a good avalanche hash."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def gaussian_noise(key: jax.Array, step: jax.Array, n: int) -> jax.Array:
    """(n,) f32 standard normals for this step, by inverse CDF over hashed counters:

        u = (h(seed + i) >> 8 + 1/2) / 2**24 in (0, 1),  z = sqrt(2) erfinv(2u - 1)

    key: (2,) uint32 key data of the run stream; step: () int32. The per-step
    seed mixes both key words with the step, like fold_in. One hash, a log
    and polynomials per neuron (XLA's erfinv): on the 2-core CPU 0.8 ms at
    200k against 2.4 ms for Box-Muller, whose cos is a scalar libm call there.
    24-bit u: |z| <= 5.4, the tail beyond has mass 7e-8.
    """
    seed = _mix32(key[0] ^ _mix32(step.astype(jnp.uint32) + key[1]))
    h = _mix32(jnp.arange(n, dtype=jnp.uint32) + seed)
    u = ((h >> 8).astype(jnp.float32) + 0.5) * (1.0 / 2**24)
    return math.sqrt(2.0) * jax.lax.erf_inv(2.0 * u - 1.0)


def neuron_update(
    config: BrainConfig,
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
    c = config
    refractory = refrac > 0
    v = v + (c.v_rest - v) * (1.0 / c.tau_m) + current
    v = jnp.where(refractory, jnp.float32(c.v_reset), v)
    theta_eff = theta + jnp.where(mode == ADAPTED, jnp.float32(c.adapt_boost), 0.0)
    spikes = jnp.logical_and(~refractory, v > theta_eff)
    v = jnp.where(spikes, jnp.float32(c.v_reset), v)
    v, spikes = fence((v, spikes))
    adapt = adapt * math.exp(-1.0 / c.tau_adapt) + spikes.astype(jnp.float32)
    refrac = jnp.where(spikes, jnp.uint8(c.refractory), jnp.maximum(refrac, 1) - 1).astype(jnp.uint8)
    mode = jnp.where(
        refrac > 0,
        jnp.uint8(REFRACTORY),
        jnp.where(
            adapt >= c.adapt_on,
            jnp.uint8(ADAPTED),
            jnp.where((mode == ADAPTED) & (adapt >= c.adapt_off), jnp.uint8(ADAPTED), jnp.uint8(INTEGRATING)),
        ),
    )
    return v, spikes, adapt, refrac, mode
