"""Pytrees of a brain: `Wiring` (fixed at birth) and `BrainState` (changes),
each made of per-component sub-states.

Neuron arrays have the shared neuron axis first, N = circuit.n (every
population a contiguous range of it), so a multi-device version can shard
it. A projection q from pre (size N_pre) to post (size N_post) with fan-in
K has its own arrays, keyed by its name.
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
class ProjectionWiring:
    """A projection's synapse indices (never change; not donated).

    pre:      (N_post, K) int32  pre index (within the pre population) of
              synapse (i, k); row i is post i's fan-in. This is the column
              buffer of the projection's BCOO (post x pre): synapse e = i*K + k.
    out_post: (N_pre, K) int32   the transpose table (pre j's k-th out-synapse
              ends on post out_post[j, k], synapse out_post[j, k]*K + k), when
              the fan-out is fixed (rule "random" between equal sizes); else
              None, and the event path does not apply.
    """

    pre: jax.Array
    out_post: jax.Array | None


@chex.dataclass(frozen=True)
class Wiring:
    """What never changes after birth: {projection name: ProjectionWiring}."""

    projections: dict


@chex.dataclass(frozen=True)
class NeuronState:
    """The neurons of every population, (N,) each.

    v: f32 membrane voltage; theta: f32 adaptive threshold; adapt: f32
    spike-frequency trace a <- a exp(-dt/tau_adapt) + s; refrac: uint8
    refractory steps left; mode: uint8 INTEGRATING / REFRACTORY / ADAPTED;
    spikes: uint8 spikes of the last step; history: uint32 spikes of the 32
    steps before it (bit b: b + 2 steps ago), or None when every delay is 1;
    lesion: uint8, 1 where a neuron is silenced (it integrates but never
    fires; `jbrain stress` and `brain.lesion` set it), or None (none is).
    """

    v: jax.Array
    theta: jax.Array
    adapt: jax.Array
    refrac: jax.Array
    mode: jax.Array
    spikes: jax.Array
    history: jax.Array | None = None
    lesion: jax.Array | None = None


@chex.dataclass(frozen=True)
class ProjectionState:
    """A projection's changing arrays.

    weights: (N_post*K,) f32 magnitudes >= 0 = the BCOO's data, post-major
    (the sign comes from the pre population); x_pre (N_pre,), y_post
    (N_post,) f32 STDP traces (zeros, untouched, without plasticity); g
    (N_post,) f32 conductance of an "exp" synapse, None for "delta".
    Reward-modulated STDP (rule "reward"; None for every other projection):
    elig (N_post*K,) f32 eligibility traces c, post-major like the weights;
    tag (N_post*K,) f32 the eligibility held for a reply's delayed feedback
    (`learn.reward`: copied from c at the end of a reply, read, without
    decay, by the feedback burst, then cleared); dopamine () f32 the
    dopamine level d this projection sees.
    Short-term plasticity (`circuit.STP`; None for every other projection):
    stp_u (N_pre,) f32 each pre neuron's utilisation u (facilitation),
    stp_x (N_pre,) f32 its available resources x (depression): what a
    working memory holds.
    """

    weights: jax.Array
    x_pre: jax.Array
    y_post: jax.Array
    g: jax.Array | None = None
    elig: jax.Array | None = None
    tag: jax.Array | None = None
    dopamine: jax.Array | None = None
    stp_u: jax.Array | None = None
    stp_x: jax.Array | None = None


@chex.dataclass(frozen=True)
class HomeostasisState:
    """The global controller: ctrl () f32 integral g; rate () f32 the whole
    brain's firing rate of the last step (spikes per neuron)."""

    ctrl: jax.Array
    rate: jax.Array


@chex.dataclass(frozen=True)
class RewardState:
    """What a rewardable brain (`--reward`) keeps of its feedback beside its
    synapses: its mood and whether a reply awaits credit.

    mood: () f32, the brain's mood m, an exponential average of the
    rewards r in [-1, 1] it received, one update per feedback burst
    (`brain.MOOD_FEEDBACKS` = n: m <- m + (r - m) / n, so m weighs the
    last ~n feedbacks; 0 at birth); feedbacks: () int32 feedback bursts
    received (/good and /bad); held: () uint8, 1 while a reply's
    eligibility is held for its feedback (set by `brain.hold_eligibility`
    at the end of a reply, cleared by the feedback burst that credits it).
    """

    mood: jax.Array
    feedbacks: jax.Array
    held: jax.Array


@chex.dataclass(frozen=True)
class BrainState:
    """Everything that changes (carried through `lax.scan`, donated).

    neurons: NeuronState; projections: {name: ProjectionState};
    homeostasis: HomeostasisState; step: () int32 steps since birth; key:
    (2,) uint32 key data of the run stream (noise); status: () uint32
    sticky status bits; reward: RewardState of a brain with reward-rule
    projections, else None.
    """

    neurons: NeuronState
    projections: dict
    homeostasis: HomeostasisState
    step: jax.Array
    key: jax.Array
    status: jax.Array
    reward: RewardState | None = None


@chex.dataclass(frozen=True)
class Metrics:
    """Per-step metrics (scan outputs; each field gains a leading T axis).

    spikes () int32, rate, mean_input (mean synaptic + neighbour input),
    mean_threshold, mean_voltage () f32; out_counts (output_channels,)
    int32 spikes per readout group (the chat decoder reads these);
    pop_counts (P,) int32 spikes per population; raster (record_spikes,)
    uint8 spikes of neurons [0, R).
    """

    spikes: jax.Array
    rate: jax.Array
    mean_input: jax.Array
    mean_threshold: jax.Array
    mean_voltage: jax.Array
    out_counts: jax.Array
    pop_counts: jax.Array
    raster: jax.Array
