"""Homeostasis: per-neuron threshold adaptation and a global controller.

Per neuron (s in {0, 1} the spike of this step; constants of its population):
    theta <- clip(theta + eta_theta * (s - target_rate), theta_min, theta_max)
so each neuron's long-run rate is pulled to its population's target_rate
(off where eta_theta = 0).

Global (scalar, integral controller on last step's rate r of the whole
brain; `circuit.Controller`, off when not enabled):
    g     <- clip(g + gain * (target_rate - r), -limit, limit)
    drive  = g + osc_amp * sin(2 pi t / osc_period)
The drive is added to every neuron's membrane; the slow oscillation keeps the
network from freezing into a fixed pattern.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jbrain.circuit import Circuit
from jbrain.neurons import neuron_values, per_neuron


def controller_step(
    circuit: Circuit, ctrl: jax.Array, rate: jax.Array, step: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """() f32 controller integral, () f32 last rate, () int32 step -> (ctrl, drive)."""
    c = circuit.controller
    ctrl = jnp.clip(ctrl + c.gain * (c.target_rate - rate), -c.limit, c.limit)
    phase = (step % jnp.int32(max(1, round(c.osc_period * 1000)))).astype(jnp.float32)
    osc = c.osc_amp * jnp.sin(phase * (2.0 * math.pi / c.osc_period))
    return ctrl, ctrl + osc


def threshold_step(circuit: Circuit, theta: jax.Array, spikes: jax.Array) -> jax.Array:
    """(N,) f32 thresholds, (N,) bool spikes -> adapted thresholds."""
    pops = circuit.populations
    if all(p.neuron.eta_theta == 0 for p in pops):
        return theta
    eta = neuron_values(circuit, "eta_theta")
    target = per_neuron(circuit, [p.target_rate for p in pops])
    theta = theta + eta * (spikes.astype(jnp.float32) - target)
    return jnp.clip(theta, neuron_values(circuit, "theta_min"), neuron_values(circuit, "theta_max"))
