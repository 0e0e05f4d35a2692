"""Homeostasis: per-neuron threshold adaptation and a population controller.

Per neuron (s in {0, 1} the spike of this step):
    theta <- clip(theta + eta_theta * (s - target_rate), theta_min, theta_max)
so each neuron's long-run rate is pulled to target_rate.

Population (scalar, integral controller on last step's rate r):
    g     <- clip(g + ctrl_gain * (target_rate - r), -ctrl_max, ctrl_max)
    drive  = g + osc_amp * sin(2 pi t / osc_period)
The drive is added to every neuron's membrane; the slow oscillation keeps the
network from freezing into a fixed pattern.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jbrain.config import BrainConfig


def controller_step(
    config: BrainConfig, ctrl: jax.Array, rate: jax.Array, step: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """() f32 controller integral, () f32 last rate, () int32 step -> (ctrl, drive)."""
    c = config
    ctrl = jnp.clip(ctrl + c.ctrl_gain * (c.target_rate - rate), -c.ctrl_max, c.ctrl_max)
    phase = (step % jnp.int32(max(1, round(c.osc_period * 1000)))).astype(jnp.float32)
    osc = c.osc_amp * jnp.sin(phase * (2.0 * math.pi / c.osc_period))
    return ctrl, ctrl + osc


def threshold_step(config: BrainConfig, theta: jax.Array, spikes: jax.Array) -> jax.Array:
    """(N,) f32 thresholds, (N,) bool spikes -> adapted thresholds."""
    c = config
    theta = theta + c.eta_theta * (spikes.astype(jnp.float32) - c.target_rate)
    return jnp.clip(theta, c.theta_min, c.theta_max)
