"""The brain: `init_brain` and `step` compose neurons, synapses, homeostasis
and plasticity; `burst` runs T steps as one `lax.scan`.

Contract (jax-md style pure pairs):
    wiring, state = init_brain(config, seed=...)
    state, metrics = step(config, wiring, state, stim)        # one step
    state, metrics = burst(config, wiring, state, stims, length=T)

`stim` is (input_channels,) f32 or None: channel c drives input neurons
[c*G, (c+1)*G) with input_gain * stim[c]. Metrics are computed on the device;
the host reads them once per burst. Delta synapses with one step of delay:
step t integrates W @ s(t-1) and the neighbours' s(t-1). With plasticity,
the STDP update for s(t-1) is applied at the start of step t, just before W
is used (the first use of W after those spikes), so a saved state holds the
weights and traces from before its last spike vector's update.

Weight order: a BrainState always holds the weights post-major (the BCOO's
data). On the event path a burst permutes them once into presynaptic order
(`synapses.to_pre_major`) and works in that order, so a spiker's
out-synapses are one contiguous row; it permutes back at its end (with
plasticity; without, the original array is handed back). With deferred
STDP (`deferred_stdp`) a burst also carries a `plasticity.Lag` of pending
LTP and applies all of it before it ends, so a BrainState outside a burst
holds every update, exactly as with the eager rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbrain import cpu_kernels, homeostasis, kernels, neurons, plasticity, synapses
from jbrain.config import BrainConfig
from jbrain.state import STATUS_NONFINITE, STATUS_SPIKE_OVERFLOW, BrainState, Metrics, Wiring


def init_brain(config: BrainConfig, *, seed: int) -> tuple[Wiring, BrainState]:
    """A newborn brain. One root key is split into named streams
    (wiring, init, run); the run stream's key data seeds the per-step noise."""
    k_wiring, k_init, k_run = jax.random.split(jax.random.key(seed), 3)
    wiring, weights = synapses.init_synapses(config, k_wiring)
    n = config.n_neurons
    state = BrainState(
        v=jax.random.uniform(k_init, (n,), jnp.float32) * 0.5 * config.theta_init,
        theta=jnp.full((n,), config.theta_init, jnp.float32),
        adapt=jnp.zeros((n,), jnp.float32),
        refrac=jnp.zeros((n,), jnp.uint8),
        mode=jnp.zeros((n,), jnp.uint8),
        spikes=jnp.zeros((n,), jnp.uint8),
        x_pre=jnp.zeros((n,), jnp.float32),
        y_post=jnp.zeros((n,), jnp.float32),
        weights=weights,
        ctrl=jnp.zeros((), jnp.float32),
        rate=jnp.asarray(config.target_rate, jnp.float32),
        step=jnp.zeros((), jnp.int32),
        key=jax.random.key_data(k_run).astype(jnp.uint32),
        status=jnp.zeros((), jnp.uint32),
    )
    return wiring, state


def external_input(config: BrainConfig, stim: jax.Array) -> jax.Array:
    """(input_channels,) f32 -> (N,) f32 current on the input population."""
    g = config.input_group
    per_neuron = jnp.repeat(
        stim.astype(jnp.float32) * config.input_gain, g, total_repeat_length=stim.shape[0] * g
    )
    return jnp.pad(per_neuron, (0, config.n_neurons - per_neuron.shape[0]))


def synaptic_input(
    config: BrainConfig,
    wiring: Wiring,
    state: BrainState,
    fence: Callable[[Any], Any],
    lag: plasticity.Lag | None = None,
) -> tuple[jax.Array, jax.Array, tuple[jax.Array, jax.Array, jax.Array], plasticity.Lag | None]:
    """W @ s(t-1) on the configured path, after the STDP update for s(t-1)
    when plasticity is on: (I (N,) f32, status bits () uint32,
    (weights, x_pre, y_post) for the new state, lag). On the event path
    `state.weights` is in presynaptic order (see `pre_major`); with deferred
    STDP (`deferred_stdp`) `lag` holds the pending LTP (`plasticity.Lag`).
    Status: SPIKE_OVERFLOW when a spike list was used and s(t-1) did not fit
    (the step is then inexact; `Session.run` re-runs such bursts with a
    larger list). `fence` materialises STDP's trace increments (`materialize`)."""
    path = propagation(config)
    s, weights = state.spikes, state.weights
    learned = (weights, state.x_pre, state.y_post)
    if _fused_stdp(config):  # GPU: STDP and W @ s in one Pallas pass (kernels.py)
        ltp, ltd, x_pre, y_post = plasticity.trace_step(config, state.x_pre, state.y_post, s, fence)
        acc, weights = kernels.gather_stdp(
            wiring.pre, weights, synapses.pack_spikes(s), ltp, ltd,
            w_max=config.w_max, scaling=config.synaptic_scaling,
        )  # fmt: skip
        return synapses.from_fixed(acc), jnp.uint32(0), (weights, x_pre, y_post), lag
    status = jnp.uint32(0)
    if uses_spike_list(config):  # one spike list serves STDP and the event path
        if kernels.on_gpu():  # one Pallas kernel, in no fixed order (every consumer is order-free)
            raw, count = kernels.spike_list(s, capacity=config.spike_capacity)
            ids = kernels.listed(raw, count, config.n_neurons)
        else:
            ids, count = synapses.spike_list(s, config.spike_capacity)
        status = synapses.overflow_status(count, config.spike_capacity)
    if lag is not None:  # deferred STDP (plasticity.py), then the event path
        weights, x_pre, y_post, lag = plasticity.deferred_step(
            config, wiring, weights, state.x_pre, state.y_post, s, raw if kernels.on_gpu() else ids,
            count, lag, state.step, fence,
        )  # fmt: skip
        return synapses.propagate_event(wiring, weights, ids), status, (weights, x_pre, y_post), lag
    if config.plasticity and _kernel_stdp(config):  # one kernel over the list: Pallas or C++
        ltp, ltd, x_pre, y_post = plasticity.trace_step(config, state.x_pre, state.y_post, s, fence)
        if kernels.on_gpu():
            weights = kernels.event_stdp(
                wiring.pre, wiring.out_post, weights, s, raw, count, ltp, ltd, w_max=config.w_max
            )
        else:
            weights = cpu_kernels.event_stdp(
                wiring.pre, wiring.out_post, weights, s, ids, ltp, ltd, w_max=config.w_max
            )
        learned = (weights, x_pre, y_post)
    elif config.plasticity:
        learned = plasticity.stdp_step(
            config, wiring, weights, state.x_pre, state.y_post, s, ids,
            pre_major=pre_major(config), fence=fence,
        )  # fmt: skip
        weights = learned[0]
    if path == "gather":
        current = synapses.propagate_gather(wiring, weights, s)
    elif path == "bcoo":
        current = synapses.propagate_bcoo(wiring, weights, s)
    else:
        current = synapses.propagate_event(wiring, weights, ids)
    return current, status, learned, lag


def propagation(config: BrainConfig) -> str:
    """The path `step` takes: --propagation, or for `auto` the fastest one
    measured. GPU: event, with its spike list as one Pallas kernel
    (`kernels.spike_list`; H200, session 5: 200k / 1M 25.6 / 60.5 us/step
    against gather's 32 / 107), plasticity included (deferred STDP, one
    kernel: 38.1 us/step at 200k against 64.8 for the fused gather+STDP
    kernel; chat reply 9.5 ms, session 7). 2-core CPU: event, its scatter
    compiled (`cpu_kernels`; 200k: 2.0 against gather's 7.0 ms/step, session
    6); without a C++ compiler, gather unless plasticity is on (XLA's event
    path, 5.8 ms/step, beats gather only on some CPUs)."""
    if config.propagation != "auto":
        return config.propagation
    if jax.default_backend() == "cpu":
        return "event" if config.plasticity or cpu_kernels.available() else "gather"
    return "event"


def _fused_stdp(config: BrainConfig) -> bool:
    return config.plasticity and propagation(config) == "gather" and kernels.use_kernels(config.fan_in)


def deferred_stdp(config: BrainConfig) -> bool:
    """Whether STDP defers LTP to the pre's next spike (`plasticity.deferred_step`;
    the same weights bit for bit): --stdp, or for `auto` (event path, no
    synaptic scaling) wherever it drops a costly random in-row update: GPUs
    (H200, 200k plastic step 53.5 -> 38.1 us) and CPUs without the compiled
    kernels (XLA, 2-core CPU, five runs: 13-29% faster at 200k, a tie at
    20k; session 7). With them, CPUs keep the eager rule: `cpu_kernels.event_stdp` does the in-row update
    cheaply (5.4 ms at 200k)."""
    if not (config.plasticity and pre_major(config)) or config.synaptic_scaling:
        return False
    if config.stdp != "auto":
        return config.stdp == "deferred"
    return kernels.on_gpu() or not cpu_kernels.available()


def _kernel_stdp(config: BrainConfig) -> bool:
    """STDP as one kernel over the spike list: `kernels.event_stdp` on GPUs
    (only with `kernels.EVENT_STDP`, off while XLA's STDP is faster there),
    `cpu_kernels.event_stdp` on CPUs (200k plastic step: 24.6 -> 5.4 ms).
    Event path only, and no synaptic scaling (a row rescale needs every
    update to the row first, i.e. a second pass)."""
    if not pre_major(config) or config.synaptic_scaling:
        return False
    return kernels.EVENT_STDP and kernels.on_gpu() or cpu_kernels.available()


def uses_spike_list(config: BrainConfig) -> bool:
    """Whether `step` builds a spike list (event path, or XLA's STDP), i.e.
    whether a burst can report STATUS_SPIKE_OVERFLOW."""
    return not _fused_stdp(config) and (propagation(config) == "event" or config.plasticity)


def pre_major(config: BrainConfig) -> bool:
    """Whether bursts work on the weights in presynaptic order (the event
    path: a spiker's out-synapses are one contiguous row; on an H200 a
    per-burst copy in this order took 1M neurons from 106 to 69 us/step and
    10M from 1,287 to 683).
    `burst` and `step` convert at their start and end, so a BrainState
    outside them always holds the BCOO's post-major order."""
    return propagation(config) == "event"


def materialize(tree: Any, step: jax.Array) -> Any:
    """Compute `tree` once, in its own kernels, before its consumers run.

    XLA:CPU fuses a cheap elementwise producer into each consumer and so
    re-evaluates the membrane update once per output (v, adapt, refrac, mode,
    theta, count); it drops optimization barriers before fusion. A conditional
    with a run-time predicate is opaque to fusion and costs nothing on a CPU.
    On GPUs the barriers in `step` suffice (a conditional there would cost a
    device-to-host sync per step), so this is the identity.
    """
    if jax.default_backend() != "cpu":
        return tree
    return jax.lax.cond(step >= 0, lambda t: t, lambda t: jax.tree.map(jnp.zeros_like, t), tree)


def step(
    config: BrainConfig, wiring: Wiring, state: BrainState, stim: jax.Array | None = None
) -> tuple[BrainState, Metrics]:
    """Advance the brain by one step (pure). See the module docstring. On the
    event path each call permutes the weights into presynaptic order and
    back; `burst` does that once per burst."""
    state, lag, release = _working_order(config, wiring, state)
    state, metrics, lag = _step(config, wiring, state, stim, lag)
    return release(state, lag), metrics


def _working_order(
    config: BrainConfig, wiring: Wiring, state: BrainState
) -> tuple[BrainState, plasticity.Lag | None, Callable[[BrainState, Any], BrainState]]:
    """(state in the path's weight order, the deferred-STDP lag or None,
    release(state, lag): applies what the lag holds and restores the BCOO's
    order). Without plasticity the weights do not change, so the release
    hands back the original array instead of permuting again."""
    if not pre_major(config):
        return state, None, lambda s, lag: s
    post = state.weights
    state = state.replace(weights=synapses.to_pre_major(wiring, post))
    if not config.plasticity:
        return state, None, lambda s, lag: s.replace(weights=post)

    def release(s: BrainState, lag: plasticity.Lag | None) -> BrainState:
        w = s.weights
        if lag is not None:
            w = plasticity.flush(config, wiring, w, lag, lambda t: materialize(t, s.step))
        return s.replace(weights=synapses.to_post_major(wiring, w))

    lag = plasticity.lag_init(state.x_pre) if deferred_stdp(config) else None
    return state, lag, release


def _step(
    config: BrainConfig,
    wiring: Wiring,
    state: BrainState,
    stim: jax.Array | None,
    lag: plasticity.Lag | None = None,
) -> tuple[BrainState, Metrics, plasticity.Lag | None]:
    n = config.n_neurons
    fence = lambda t: materialize(t, state.step)  # see `materialize`; identity on GPUs
    i_syn, status, (weights, x_pre, y_post), lag = synaptic_input(config, wiring, state, fence, lag)
    # Fusion fences (kept by XLA:GPU). Without them XLA fuses the 32-wide
    # gather and the noise hash into every reduction that reads them (metrics,
    # isfinite), recomputing them 4x inside poorly parallel reduction kernels:
    # 174 -> ~35 us/step at 200k on an H200.
    i_syn = jax.lax.optimization_barrier(i_syn)
    i_nbr = synapses.neighbour_input(config, state.spikes)
    ctrl, drive = homeostasis.controller_step(config, state.ctrl, state.rate, state.step)
    current = (
        i_syn
        + i_nbr
        + (config.bias + drive)
        + config.noise_sd * neurons.gaussian_noise(state.key, state.step, n)
    )
    if stim is not None:
        current = current + external_input(config, stim)
    v, spikes, adapt, refrac, mode = neurons.neuron_update(
        config,
        state.v,
        state.theta,
        state.adapt,
        state.refrac,
        state.mode,
        current,
        fence=fence,
    )
    theta = homeostasis.threshold_step(config, state.theta, spikes)
    v, spikes, adapt, refrac, mode, theta = jax.lax.optimization_barrier(
        (v, spikes, adapt, refrac, mode, theta)
    )
    # One stacked reduction gives the count and the three means (one kernel,
    # not four). Sums of 0/1 in float32 are exact below 2**24 neurons; beyond,
    # the count gets its own integer reduction. A NaN/inf anywhere in v or
    # theta makes its sum non-finite. Weights need no check: STDP only adds
    # bounded trace terms and clips.
    rows = [i_syn + i_nbr, theta, v]
    exact_f32 = n < 2**24
    if exact_f32:
        rows.append(spikes.astype(jnp.float32))
    sums = population_sums(rows)
    count = sums[3].astype(jnp.int32) if exact_f32 else jnp.sum(spikes, dtype=jnp.int32)
    mean_input, mean_threshold, mean_voltage = sums[0] / n, sums[1] / n, sums[2] / n
    finite = jnp.isfinite(sums[1]) & jnp.isfinite(sums[2])
    status = state.status | status | jnp.where(finite, jnp.uint32(0), jnp.uint32(STATUS_NONFINITE))
    rate = count.astype(jnp.float32) / n
    spikes_u8 = spikes.astype(jnp.uint8)
    out = spikes_u8[config.output_start :].reshape(config.output_channels, config.output_group)
    new_state = state.replace(
        v=v,
        theta=theta,
        adapt=adapt,
        refrac=refrac,
        mode=mode,
        spikes=spikes_u8,
        x_pre=x_pre,
        y_post=y_post,
        weights=weights,
        ctrl=ctrl,
        rate=rate,
        step=state.step + 1,
        status=status,
    )
    metrics = Metrics(
        spikes=count,
        rate=rate,
        mean_input=mean_input,
        mean_threshold=mean_threshold,
        mean_voltage=mean_voltage,
        out_counts=out.sum(axis=1, dtype=jnp.int32),
        raster=spikes_u8[: config.record_spikes],
    )
    return new_state, metrics, lag


def population_sums(rows: list[jax.Array]) -> jax.Array:
    """(R,) f32 sums of R rows of shape (N,). GPU: one stacked reduction (one
    kernel, not R). CPU: one sum per row, as a stack would first copy the
    rows into an (R, N) array."""
    if jax.default_backend() == "cpu":
        return jnp.stack([r.sum() for r in rows])
    return jnp.stack(rows).sum(axis=1)


def resolved_unroll(config: BrainConfig) -> int:
    """The scan unroll: --unroll, or by device when 0 (8 on GPU; 1 on CPU,
    where unrolling makes XLA:CPU slower)."""
    return config.unroll or (1 if jax.default_backend() == "cpu" else 8)


def _burst_packed(config, wiring, state, stims, length):
    """`burst`'s scan, its per-step metrics left packed: (state, packed (T,
    1 + output_channels + 5) int32: spikes, out_counts, then rate, mean
    input, threshold and voltage bit-cast, then the status bits after the
    step; raster (T, record_spikes) uint8); see `unpack_metrics` and
    `packed_status`. Each scan output costs a dynamic-update-slice kernel
    per step, so one array instead of six (plus the raster, when recorded);
    and the host reads one array, status included, not eight."""
    # The overflow bit describes this burst only (the host re-runs it).
    state = state.replace(status=state.status & ~jnp.uint32(STATUS_SPIKE_OVERFLOW))
    state, lag, release = _working_order(config, wiring, state)

    def body(carry, stim):
        carry, m, lag = _step(config, wiring, carry[0], stim, carry[1])
        floats = jnp.stack([m.rate, m.mean_input, m.mean_threshold, m.mean_voltage])
        packed = jnp.concatenate(
            [
                m.spikes[None],
                m.out_counts,
                jax.lax.bitcast_convert_type(floats, jnp.int32),
                jax.lax.bitcast_convert_type(carry.status, jnp.int32)[None],
            ]
        )
        return (carry, lag), (packed, m.raster)

    (state, lag), (packed, raster) = jax.lax.scan(
        body, (state, lag), stims, length=length, unroll=max(1, min(resolved_unroll(config), length))
    )
    return release(state, lag), packed, raster


def unpack_metrics(packed, raster, xp: Any = jnp) -> Metrics:
    """Metrics (T axis) from `_burst_packed`'s arrays; xp=np on the host."""
    floats = (
        packed[:, -5:-1].view(np.float32)
        if xp is np
        else jax.lax.bitcast_convert_type(packed[:, -5:-1], jnp.float32)
    )
    return Metrics(
        spikes=packed[:, 0],
        rate=floats[:, 0],
        mean_input=floats[:, 1],
        mean_threshold=floats[:, 2],
        mean_voltage=floats[:, 3],
        out_counts=packed[:, 1:-5],
        raster=raster,
    )


def packed_status(packed: np.ndarray) -> int:
    """The burst's final status bits (the state's) from host `packed`."""
    return int(np.uint32(packed[-1, -1].view(np.uint32)))


def _burst(config, wiring, state, stims, length):
    state, packed, raster = _burst_packed(config, wiring, state, stims, length)
    return state, unpack_metrics(packed, raster)


burst = jax.jit(_burst, static_argnames=("config", "length"), donate_argnames=("state",))
burst.__doc__ = """Run `length` steps as one `lax.scan` (one compiled program per
(config, length, stims is None)). stims: (length, input_channels) f32 or None.
`state` is donated: do not reuse it. Returns (state, Metrics with a T axis)."""

burst_keeping_input = jax.jit(_burst, static_argnames=("config", "length"))
burst_keeping_input.__doc__ = """`burst` without donation: the input state stays
valid, so the host can re-run the burst from it (spike-list overflow) without
copying it first. Costs a second state's memory while it runs."""

burst_packed = jax.jit(_burst_packed, static_argnames=("config", "length"), donate_argnames=("state",))
burst_packed_keeping_input = jax.jit(_burst_packed, static_argnames=("config", "length"))
burst_packed.__doc__ = """`burst` returning (state, packed, raster) for the host
(`unpack_metrics(..., xp=np)`): what `Session` runs. `burst_packed_keeping_input`:
the same without donation (see `burst_keeping_input`)."""

step_jit = jax.jit(step, static_argnames=("config",))
