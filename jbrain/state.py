"""Pytrees of a brain: `Wiring` (fixed at birth) and `BrainState` (changes).

Every per-neuron array has the neuron axis first, so a later multi-GPU version
can shard it. Shapes use N = n_neurons, K = fan_in.
"""

from __future__ import annotations

import chex
import jax

# Neuron modes (uint8). See `neurons.py` for the entry/exit rules.
INTEGRATING = 0
REFRACTORY = 1
ADAPTED = 2

# Status bits (uint32, sticky: OR-ed every step, read by the host per burst;
# SPIKE_OVERFLOW is cleared at the start of each burst, which it describes).
STATUS_NONFINITE = 1 << 0  # a voltage, threshold or weight became NaN/inf
STATUS_SPIKE_OVERFLOW = 1 << 1  # spike list full: the burst is inexact, re-run it with a larger one
STATUS_NAMES = {
    STATUS_NONFINITE: "non-finite value in the state",
    STATUS_SPIKE_OVERFLOW: "spike buffer overflow (the burst must be re-run with a larger --spike_buffer)",
}


def describe_status(status: int) -> list[str]:
    """Names of the bits set in `status`."""
    return [name for bit, name in STATUS_NAMES.items() if status & bit]


@chex.dataclass(frozen=True)
class Wiring:
    """What never changes after birth (not donated).

    pre:      (N, K) int32  presynaptic id of synapse (i, k); row i is neuron i's
              fan-in. This is the column buffer of the BCOO (post x pre):
              synapse e = i*K + k has indices (e // K, pre.ravel()[e]).
    out_post: (N, K) int32  the transpose table: neuron j's k-th out-synapse
              ends on out_post[j, k], which is synapse out_post[j, k]*K + k.
    """

    pre: jax.Array
    out_post: jax.Array


@chex.dataclass(frozen=True)
class BrainState:
    """Everything that changes (carried through `lax.scan`, donated).

    v:        (N,) f32   membrane voltage (threshold units)
    theta:    (N,) f32   adaptive threshold
    adapt:    (N,) f32   spike-frequency trace, a <- a*exp(-1/tau_adapt) + s
    refrac:   (N,) uint8 refractory steps left
    mode:     (N,) uint8 INTEGRATING / REFRACTORY / ADAPTED
    spikes:   (N,) uint8 spikes of the last step (1 = fired)
    x_pre:    (N,) f32   presynaptic STDP trace
    y_post:   (N,) f32   postsynaptic STDP trace
    weights:  (N*K,) f32 synaptic weights = the BCOO's data, post-major
    ctrl:     ()  f32    population controller integral g
    rate:     ()  f32    firing rate of the last step
    step:     ()  int32  steps taken since birth
    key:      (2,) uint32 key data of the run stream (noise)
    status:   ()  uint32 sticky status bits
    """

    v: jax.Array
    theta: jax.Array
    adapt: jax.Array
    refrac: jax.Array
    mode: jax.Array
    spikes: jax.Array
    x_pre: jax.Array
    y_post: jax.Array
    weights: jax.Array
    ctrl: jax.Array
    rate: jax.Array
    step: jax.Array
    key: jax.Array
    status: jax.Array


@chex.dataclass(frozen=True)
class Metrics:
    """Per-step metrics (scan outputs; each field gains a leading T axis).

    spikes (int32), rate, mean_input (mean synaptic + neighbour input),
    mean_threshold, mean_voltage (f32), out_counts (output_channels,) int32:
    spikes per output group (the chat decoder reads these), raster
    (record_spikes,) uint8: spikes of neurons [0, R).
    """

    spikes: jax.Array
    rate: jax.Array
    mean_input: jax.Array
    mean_threshold: jax.Array
    mean_voltage: jax.Array
    out_counts: jax.Array
    raster: jax.Array
