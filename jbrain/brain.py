"""The brain: `init_brain` and `step` compose neurons, synapses, homeostasis
and plasticity over a circuit; `burst` runs T steps as one `lax.scan`.

Contract (jax-md style pure pairs; circuit and plan are static):
    wiring, state = init_brain(circuit, seed=...)
    state, metrics = step(circuit, plan, wiring, state, stim)       # one step
    state, metrics = burst(circuit, plan, wiring, state, stims, length=T)

`stim` is (input_channels,) f32 or None: channel c of input port p drives
its neurons with gain * stim[c] (ports in the circuit's order). Metrics are
computed on the device; the host reads them once per burst.

Step t, in order: for each projection q (the circuit's order), the spikes
s_pre(t - delay) of its pre population arrive: STDP for s(t-1) first (when
plastic: the first use of W_q after those spikes), then W_q @ s_pre on the
plan's path; their sum per post neuron with the neighbours' excitation is
the synaptic input. Then one fused neuron update for every population
(neurons.py), thresholds (homeostasis.py), metrics. So a saved state holds
the weights and traces from before its last spike vector's update.

Weight order: a BrainState always holds each projection's weights
post-major (its BCOO's data). On the event path a burst permutes them once
into presynaptic order (`synapses.to_pre_major`), so a spiker's out-synapses
are one contiguous row, and back at its end (with plasticity; without, the
original array is handed back). With deferred STDP a burst also carries a
`plasticity.Lag` per projection and applies all of it before it ends, so a
BrainState outside a burst holds every update, exactly as with the eager rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbrain import backends, homeostasis, neurons, plasticity, shard, synapses
from jbrain.circuit import Circuit, InputPort, Projection
from jbrain.plan import Plan
from jbrain.state import (
    STATUS_NONFINITE,
    STATUS_SPIKE_OVERFLOW,
    BrainState,
    HomeostasisState,
    Metrics,
    NeuronState,
    ProjectionState,
    RewardState,
    Wiring,
)

# A rewardable brain's mood is an exponential average of its rewards over
# about this many feedbacks (`RewardState`): slow enough that one /bad does
# not turn it, fast enough that a run of them shows within a conversation.
MOOD_FEEDBACKS = 20


def footprint(circuit: Circuit) -> dict[str, int]:
    """Bytes a brain of `circuit` holds on its device between bursts (its
    Wiring and BrainState; nothing is allocated: jax.eval_shape of
    `init_brain`). "synapses": the arrays with one entry per synapse (each
    projection's pre ids, out-table, weights, eligibility and tag),
    "neurons": everything else (neuron state, traces, controller, keys),
    "total": both; "synapse_count" and "neuron_count" to divide by. A burst
    needs a few neuron-sized buffers more (spike lists, currents), and the
    donated state is rewritten in place."""
    wiring, state = jax.eval_shape(functools.partial(init_brain, circuit, seed=0))
    syn = n_syn = 0
    for q in circuit.projections:
        count = synapses.span_size(circuit, q, "post") * q.fan_in
        n_syn += count
        for leaf in jax.tree.leaves((wiring.projections[q.name], state.projections[q.name])):
            if leaf.size == count:
                syn += leaf.size * leaf.dtype.itemsize
    total = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves((wiring, state)))
    return {"total": total, "synapses": syn, "neurons": total - syn, "synapse_count": n_syn,
            "neuron_count": circuit.n}  # fmt: skip


def init_brain(circuit: Circuit, *, seed: int) -> tuple[Wiring, BrainState]:
    """A newborn brain. One root key is split into named streams (wiring,
    init, run); projection i's wiring stream is fold_in(wiring, i), the
    first projection's the wiring stream itself (as a one-projection brain
    has always had); the run stream's key data seeds the per-step noise."""
    k_wiring, k_init, k_run = jax.random.split(jax.random.key(seed), 3)
    n = circuit.n
    wirings, projections = {}, {}
    for i, q in enumerate(circuit.projections):
        key = k_wiring if i == 0 else jax.random.fold_in(k_wiring, i)
        pw, weights = synapses.init_projection(circuit, i, key)
        n_pre, n_post = synapses.span_size(circuit, q, "pre"), synapses.span_size(circuit, q, "post")
        wirings[q.name] = pw
        projections[q.name] = ProjectionState(
            weights=weights,
            x_pre=jnp.zeros((n_pre,), jnp.float32),
            y_post=jnp.zeros((n_post,), jnp.float32),
            g=jnp.zeros((n_post,), jnp.float32) if q.synapse in ("exp", "slow") else None,
            **(_reward_fields(weights) if _is_reward(q) else {}),
            **(_stp_fields(q, n_pre) if q.stp is not None else {}),
        )
    state = BrainState(
        neurons=NeuronState(
            v=_initial_voltage(circuit, k_init),
            theta=jnp.broadcast_to(neurons.neuron_values(circuit, "theta"), (n,)).astype(jnp.float32),
            adapt=jnp.zeros((n,), jnp.float32),
            refrac=jnp.zeros((n,), jnp.uint8),
            mode=jnp.zeros((n,), jnp.uint8),
            spikes=jnp.zeros((n,), jnp.uint8),
            history=jnp.zeros((n,), jnp.uint32) if circuit.max_delay > 1 else None,
        ),
        projections=projections,
        homeostasis=HomeostasisState(
            ctrl=jnp.zeros((), jnp.float32),
            rate=jnp.asarray(circuit.controller.target_rate, jnp.float32),
        ),
        step=jnp.zeros((), jnp.int32),
        key=jax.random.key_data(k_run).astype(jnp.uint32),
        status=jnp.zeros((), jnp.uint32),
        reward=_newborn_reward() if any(_is_reward(q) for q in circuit.projections) else None,
    )
    return Wiring(projections=wirings), state


def _newborn_reward() -> RewardState:
    """Mood 0, no feedback received, no reply held."""
    return RewardState(
        mood=jnp.zeros((), jnp.float32), feedbacks=jnp.zeros((), jnp.int32), held=jnp.zeros((), jnp.uint8)
    )


def _is_reward(q: Projection) -> bool:
    return q.plasticity is not None and q.plasticity.rule == "reward"


def _reward_fields(weights: jax.Array) -> dict[str, jax.Array]:
    """A reward projection's newborn eligibility, tag (zeros like its
    weights) and dopamine (0)."""
    zeros = lambda: jnp.zeros(weights.shape, jnp.float32)  # noqa: E731  (two buffers: both are donated)
    return {"elig": zeros(), "tag": zeros(), "dopamine": jnp.zeros((), jnp.float32)}


def _stp_fields(q: Projection, n_pre: int) -> dict[str, jax.Array]:
    """A short-term-plastic projection's newborn u = U and x = 1, (N_pre,) each."""
    return {"stp_u": jnp.full((n_pre,), q.stp.U, jnp.float32), "stp_x": jnp.ones((n_pre,), jnp.float32)}


def stp_release(q: Projection, dt: float, u: jax.Array, x: jax.Array, s_pre: jax.Array):
    """One step of short-term plasticity (`circuit.STP`): (u, x, r) after
    the spikes s_pre (N_pre,) arrive; r = u x s (N_pre,) f32, the fraction
    of resources each pre releases onto its synapses this step."""
    t = q.stp
    s = s_pre.astype(jnp.float32)
    u = t.U + (u - t.U) * math.exp(-dt / t.tau_f)
    x = 1.0 - (1.0 - x) * math.exp(-dt / t.tau_d)
    # facilitation off (the ablation): u held at U
    u = u + t.U * (1.0 - u) * s if t.facilitation else jnp.full_like(u, t.U)
    r = u * x * s
    return u, x - r, r


def lesion(circuit: Circuit, state: BrainState, silenced: Any) -> BrainState:
    """The state with neurons `silenced` ((N,) bool, or None to restore
    every neuron) unable to fire from the next step on. Changes the state's
    structure (one more (N,) uint8 leaf): the next burst compiles anew."""
    ns = state.neurons
    mask = None if silenced is None else jnp.asarray(silenced, jnp.bool_).astype(jnp.uint8)
    if mask is not None and mask.shape != (circuit.n,):
        raise ValueError(f"lesion: the mask has shape {mask.shape}, not ({circuit.n},)")
    return state.replace(neurons=ns.replace(lesion=mask))


def _initial_voltage(circuit: Circuit, key: jax.Array) -> jax.Array:
    """(N,) f32: lo + u (hi - lo), u ~ U[0, 1), or mean + sd z, z ~ N(0, 1),
    by population (`circuit.Neuron.v_init`)."""
    n = circuit.n
    kinds = [p.neuron.v_init[0] for p in circuit.populations]
    u = jax.random.uniform(key, (n,), jnp.float32)
    z = jax.random.normal(jax.random.fold_in(key, 1), (n,), jnp.float32) if "normal" in kinds else None
    parts = []
    for p in circuit.populations:
        kind, a, b = p.neuron.v_init
        parts.append((a, b - a) if kind == "uniform" else (a, b))
    a = neurons.per_neuron(circuit, [x[0] for x in parts])
    b = neurons.per_neuron(circuit, [x[1] for x in parts])
    if z is None:
        return a + u * b
    is_u = neurons.per_neuron(circuit, [k == "uniform" for k in kinds], jnp.bool_)
    return a + jnp.where(is_u, u, z) * b


def external_input(circuit: Circuit, stim: jax.Array) -> jax.Array:
    """(input_channels,) f32 -> (N,) f32 current on the input ports' neurons:
    gain * stim[c] on the neurons of each port's channel c."""
    current, first = None, 0
    for port in circuit.inputs:
        if port.name == "reward":  # a neuromodulator: it drives no neuron (`reward_signal`)
            first += port.channels
            continue
        part = port_values(circuit, port, stim[first : first + port.channels] * port.gain)
        first += port.channels
        current = part if current is None else current + part
    return current if current is not None else jnp.zeros((circuit.n,), jnp.float32)


def port_values(circuit: Circuit, port: InputPort, values: jax.Array) -> jax.Array:
    """(channels,) f32 -> (N,) f32: values[c] on the neurons of the port's
    channel c, 0 elsewhere."""
    s = values.astype(jnp.float32)
    if port.region:  # patches on the sheet: a scatter to the listed neurons
        cells = jnp.asarray(circuit.port_neurons(port), jnp.int32)
        return (
            jnp.zeros((circuit.n,), jnp.float32)
            .at[cells]
            .set(jnp.broadcast_to(s[:, None], cells.shape), unique_indices=True)
        )
    per_neuron = jnp.repeat(s, port.group, total_repeat_length=port.channels * port.group)
    start = circuit.offset(port.population) + port.start
    return jnp.pad(per_neuron, (start, circuit.n - start - per_neuron.shape[0]))


def teacher_signal(circuit: Circuit, stim: jax.Array | None) -> tuple[jax.Array, jax.Array] | None:
    """(T (N,) f32, on () bool) from the stimulus's "teacher" port: each
    neuron's teacher target (its channel's value: 1 speak, 0 stay quiet, -1
    a taught silence, in which every group's drive is taught to turn
    negative so that no group answers) and whether any teacher channel is
    nonzero this step; None without a teacher port or stimulus."""
    if stim is None:
        return None
    first = 0
    for port in circuit.inputs:
        if port.name == "teacher":
            values = stim[first : first + port.channels]
            return port_values(circuit, port, values), jnp.any(values != 0)
        first += port.channels
    return None


def reward_channel(circuit: Circuit) -> int:
    """The stimulus column of the "reward" port's channel (ValueError without one)."""
    first = 0
    for port in circuit.inputs:
        if port.name == "reward":
            return first
        first += port.channels
    raise ValueError(f"the {circuit.name} circuit has no reward port")


def reward_signal(circuit: Circuit, stim: jax.Array | None) -> jax.Array:
    """() f32: the reward delivered this step, the stimulus's "reward" port
    channel (0 without a reward port or stimulus). It feeds the dopamine of
    every reward-rule projection (plasticity.reward_step)."""
    first = 0
    for port in circuit.inputs:
        if port.name == "reward" and stim is not None:
            return stim[first].astype(jnp.float32)
        first += port.channels
    return jnp.zeros((), jnp.float32)


def materialize(plan: Plan, tree: Any, step: jax.Array) -> Any:
    """Compute `tree` once, in its own kernels, before its consumers run.

    XLA:CPU fuses a cheap elementwise producer into each consumer and so
    re-evaluates the membrane update once per output (v, adapt, refrac, mode,
    theta, count); it drops optimization barriers before fusion. A conditional
    with a run-time predicate is opaque to fusion and costs nothing on a CPU.
    On GPUs the barriers in `step` suffice (a conditional there would cost a
    device-to-host sync per step), so this is the identity.
    """
    if plan.platform != "cpu":
        return tree
    return jax.lax.cond(step >= 0, lambda t: t, lambda t: jax.tree.map(jnp.zeros_like, t), tree)


def _population(circuit: Circuit, x: jax.Array, name: str) -> jax.Array:
    """The slice of a shared-axis array (N, ...) that is population `name`."""
    a, b = circuit.bounds(name)
    return x if (a, b) == (0, circuit.n) else x[a:b]


def _span(circuit: Circuit, x: jax.Array, q: Projection, end: str) -> jax.Array:
    """The slice of a shared-axis array that is projection q's pre or post span."""
    a, b = circuit.span(q, end)
    return x if (a, b) == (0, circuit.n) else x[a:b]


def _delayed(plan: Plan, neurons_state: NeuronState, delay: int) -> jax.Array:
    """(N,) uint8 spikes of step t - delay (delay 1: the last step's; on
    several devices, every shard's: `_step` exchanged them, and this
    exchanges the older ones)."""
    if delay == 1:
        return neurons_state.spikes
    bit = jnp.uint32(delay - 2)
    return exchange_spikes(plan, ((neurons_state.history >> bit) & 1).astype(jnp.uint8))


def exchange_spikes(plan: Plan, spikes: jax.Array) -> jax.Array:
    """(N,) uint8 spikes split over the plan's devices -> the whole vector
    on every device (one device: `spikes`). plan.exchange "words": each
    shard packs its spikes into uint32 words (`sheet_words`: 32 neurons a
    word), the words are all-gathered, and unpacked (neuron i is bit i % 32
    of word i // 32). "list": `exchange_list`. The same vector either way."""
    if plan.devices == 1:
        return spikes
    if plan.exchange == "list":
        return exchange_list(plan, spikes)[0]
    n = spikes.shape[0]
    words = shard.split(plan.devices, jax.lax.bitcast_convert_type(sheet_words(spikes), jnp.uint32))
    words = shard.replicated(plan.devices, words)  # the all-gather: N/32 words
    bits = (words[:, None] >> jnp.arange(32, dtype=jnp.uint32)) & jnp.uint32(1)
    # held whole on every device: its readers slice locally instead of gathering it again
    return shard.replicated(plan.devices, bits.reshape(-1)[:n].astype(jnp.uint8))


def exchange_list(plan: Plan, spikes: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The spike-list exchange: ((N,) uint8 spikes whole on every device,
    status bits). Each shard compacts its spiking neurons into C =
    `plan.exchange_capacity(N)` ascending global ids (`synapses.spike_list`,
    padded with N), the (D, C) lists are all-gathered, and every device
    scatters them into a zero vector: 4 C D bytes a step instead of N/8. A
    shard with more than C spikes sets STATUS_SPIKE_OVERFLOW (its extra
    spikes are lost: the session re-runs the burst with a grown plan)."""
    d, n = plan.devices, spikes.shape[0]
    m, cap = -(-n // d), plan.exchange_capacity(n)
    padded = spikes if m * d == n else jnp.pad(spikes, (0, m * d - n))

    def local(s: jax.Array) -> tuple[jax.Array, jax.Array]:
        ids, count = synapses.spike_list(s, cap)  # local ids, padded with m
        first = jax.lax.axis_index(shard.AXIS) * m
        ids = jnp.where(ids < m, ids + first, n)
        over = jax.lax.pmax(synapses.overflow_status(count, cap), shard.AXIS)
        return jax.lax.all_gather(ids, shard.AXIS, tiled=True), over

    ids, status = jax.shard_map(
        local,
        mesh=shard.mesh(d),
        in_specs=shard.P(shard.AXIS),
        out_specs=(shard.P(), shard.P()),
        check_vma=False,
    )(padded)
    whole = jnp.zeros((n,), jnp.uint8).at[ids].set(jnp.uint8(1), mode="drop", unique_indices=False)
    return shard.replicated(d, whole), status


def step(
    circuit: Circuit, plan: Plan, wiring: Wiring, state: BrainState, stim: jax.Array | None = None
) -> tuple[BrainState, Metrics]:
    """Advance the brain by one step (pure). See the module docstring. On the
    event path each call permutes the weights into presynaptic order and
    back; `burst` does that once per burst."""
    state, lags, release = _working_order(circuit, plan, wiring, state)
    state, metrics, lags = _step(circuit, plan, wiring, state, stim, lags)
    return release(state, lags), metrics


def _working_order(
    circuit: Circuit, plan: Plan, wiring: Wiring, state: BrainState, pre_major: dict | None = None
) -> tuple[BrainState, dict, Callable[[BrainState, dict], BrainState]]:
    """(state with event-path weights in presynaptic order, {projection:
    its deferred-STDP lag, the scratch its push carries from step to
    step, or its csr table}, release(state, lags): applies what the lags hold and restores
    the BCOO's order). A projection without plasticity keeps its weights,
    so the release hands back the original array. pre_major: the static
    projections' weights in presynaptic order, already permuted
    (`StaticOrder`), else each is permuted here."""
    backend = backends.get(plan.backend)
    original, lags, projections = {}, {}, dict(state.projections)
    for q, path, form in zip(circuit.projections, plan.paths, plan.stdp, strict=True):
        if path == "csr":  # static: the table is the lag, the weights stay post-major
            n_pre = synapses.span_size(circuit, q, "pre")
            lags[q.name] = backend.csr_order(wiring.projections[q.name].pre, n_pre)
        if path != "event":
            continue
        ps = projections[q.name]
        original[q.name] = ps.weights
        if pre_major is not None and q.name in pre_major:
            weights_pre = pre_major[q.name]
        else:
            weights_pre = synapses.to_pre_major(wiring.projections[q.name], ps.weights)
        projections[q.name] = ps.replace(weights=weights_pre)
        if form == "deferred":  # a replay kernel also pushes (`push_scratch`: its accumulators)
            n_post = synapses.span_size(circuit, q, "post")
            step = state.step if backend.replay_stdp is not None else None  # the kernel carries the phase
            lags[q.name] = plasticity.lag_init(ps.x_pre, n_post, backend.push_scratch(n_post), step)
        elif form is None and backend.push_event is not None:
            scratch = backend.push_scratch(synapses.span_size(circuit, q, "post"))
            if scratch is not None:
                lags[q.name] = scratch

    def release(s: BrainState, lags: dict) -> BrainState:
        out = dict(s.projections)
        for q, form in zip(circuit.projections, plan.stdp, strict=True):
            if q.name not in original:
                continue
            if q.plasticity is None:
                out[q.name] = out[q.name].replace(weights=original[q.name])
                continue
            pw, w = wiring.projections[q.name], out[q.name].weights
            if form == "deferred":
                fence = lambda t: materialize(plan, t, s.step)  # noqa: B023
                w = plasticity.flush(q, circuit.dt, backend, pw, w, lags[q.name], fence)
            out[q.name] = out[q.name].replace(weights=synapses.to_post_major(pw, w))
        return s.replace(projections=out)

    return state.replace(projections=projections), lags, release


def _spike_lists(circuit: Circuit, plan: Plan, spikes: jax.Array) -> tuple[dict, jax.Array]:
    """{population: (ids padded with N_p, raw ids, count)} for the listed
    populations, and the overflow status bits."""
    backend = backends.get(plan.backend)
    lists, status = {}, jnp.uint32(0)
    for p, on in zip(circuit.populations, plan.listed, strict=True):
        if on:
            cap = plan.capacity(p.size)
            lists[p.name] = backend.spike_list(_population(circuit, spikes, p.name), cap)
            status = status | synapses.overflow_status(lists[p.name][2], cap)
    return lists, status


def projection_step(
    circuit: Circuit,
    plan: Plan,
    index: int,
    wiring: Wiring,
    state: BrainState,
    lists: dict,
    lag: plasticity.Lag | None,
    fence: Callable[[Any], Any],
    teacher: tuple[jax.Array, jax.Array] | None = None,
    reward: jax.Array | None = None,
) -> tuple[jax.Array, ProjectionState, plasticity.Lag | None]:
    """Projection `index`'s W @ s_pre(t - delay), (N_post,) f32, after its
    STDP update for s(t-1) when plastic (the delta rule: in teaching bursts
    only, with `teacher_signal`'s (T, on); the reward rule with this step's
    `reward_signal`); its new sub-state and lag."""
    q, path, form = circuit.projections[index], plan.paths[index], plan.stdp[index]
    backend = backends.get(plan.backend)
    pw, ps = wiring.projections[q.name], state.projections[q.name]
    s_pre = _span(circuit, _delayed(plan, state.neurons, q.delay), q, "pre")
    s_post = _span(circuit, state.neurons.spikes, q, "post")
    w, x_pre, y_post, dt = ps.weights, ps.x_pre, ps.y_post, circuit.dt
    if path == "event" and form is None and backend.push_event is not None:
        current, lag = backend.push_event(pw, w, s_pre, lag)  # no spike list; `lag`: its scratch
    elif path == "csr":  # `lag`: the burst's table of synapses by pre
        current = backend.csr_push(lag, w, s_pre, synapses.span_size(circuit, q, "post"))
    elif path == "event":
        ids, raw, count = lists.get(q.pre, (None, None, None))  # none: the backend's kernel votes
        current = None
        if form == "deferred":
            w, x_pre, y_post, lag, current = plasticity.deferred_step(
                q, dt, backend, pw, w, x_pre, y_post, s_pre, s_post, raw, count, lag,
                state.step, fence,
            )  # fmt: skip
        elif (
            form == "eager"
            and backend.event_stdp is not None
            and q.pre == q.post
            and not q.plasticity.scaling
        ):
            ltp, ltd, x_pre, y_post = plasticity.trace_step(q, dt, x_pre, y_post, s_pre, s_post, fence)
            w = backend.event_stdp(pw.pre, pw.out_post, w, s_pre, ids, ltp, ltd, w_max=q.w_max)
        elif form == "eager":
            ids_post = lists[q.post][0]
            w, x_pre, y_post = plasticity.stdp_step(
                q, dt, pw, w, x_pre, y_post, s_pre, s_post, ids, ids_post, fence
            )
        if current is None:  # else the replay kernel pushed the spikers' new rows
            current = backend.propagate_event(pw, w, ids)
    else:
        if form == "delta":
            if plan.teaching and teacher is not None:
                target = _span(circuit, teacher[0], q, "post")
                w, x_pre = plasticity.delta_step(q, dt, pw, w, x_pre, s_pre, target, teacher[1])
        elif form == "reward":
            w, elig, dopamine, x_pre, y_post = plasticity.reward_step(
                q, dt, pw, w, ps.elig, ps.tag, ps.dopamine, x_pre, y_post, s_pre, s_post,
                0.0 if reward is None else reward, feedback=plan.feedback, fence=fence,
            )  # fmt: skip
            ps = ps.replace(elig=elig, dopamine=dopamine)
        elif form is not None:
            w, x_pre, y_post = plasticity.dense_step(q, dt, pw, w, x_pre, y_post, s_pre, s_post, fence)
        if q.stp is not None:  # w_ij u_j x_j s_j: a float gather over the fixed-width rows
            u, x, r = stp_release(q, dt, ps.stp_u, ps.stp_x, s_pre)
            ps = ps.replace(stp_u=u, stp_x=x)
            n_post, k = pw.pre.shape
            current = (w.reshape(n_post, k) * r[pw.pre]).sum(axis=1)
        elif path == "gather":
            current = synapses.propagate_gather(pw, w, s_pre, plan.platform)
        else:
            current = synapses.propagate_bcoo(pw, w, s_pre)
    return current, ps.replace(weights=w, x_pre=x_pre, y_post=y_post), lag


def synaptic_input(
    circuit: Circuit,
    plan: Plan,
    wiring: Wiring,
    state: BrainState,
    lags: dict,
    fence: Callable[[Any], Any],
    teacher: tuple[jax.Array, jax.Array] | None = None,
    reward: jax.Array | None = None,
) -> tuple[jax.Array | None, jax.Array, dict, dict]:
    """(I_syn (N,) f32 or None without projections, status bits, new
    projection sub-states, lags). Delta synapses add sign * W @ s; exp and
    slow synapses integrate g <- g exp(-dt/tau_syn) + W @ s; exp adds
    g (e_rev - v) dt/tau_m of the post, slow sign * g (1 - exp(-dt/tau_syn))."""
    lists, status = _spike_lists(circuit, plan, state.neurons.spikes)
    per_post: dict[str, jax.Array] = {}
    projections, lags = dict(state.projections), dict(lags)
    for i, q in enumerate(circuit.projections):
        current, ps, lag = projection_step(
            circuit, plan, i, wiring, state, lists, lags.get(q.name), fence, teacher, reward
        )
        if lag is not None:
            lags[q.name] = lag
        if q.synapse in ("exp", "slow"):
            decay = math.exp(-circuit.dt / q.tau_syn)
            # the current in memory first (CPU), whatever its path: fused with a
            # gather's sums, XLA:CPU would round g differently than after a csr push
            g = ps.g * decay + fence(current)
            ps = ps.replace(g=g)
            if q.synapse == "exp":
                post = circuit.population(q.post)
                v = _span(circuit, state.neurons.v, q, "post")
                current = g * (q.e_rev - v) * (circuit.dt / post.neuron.tau_m)
            else:
                current = g * (1.0 - decay)
        if q.synapse != "exp" and circuit.population(q.pre).sign == "I":
            current = -current
        projections[q.name] = ps
        (a, b), (pa, pb) = circuit.span(q, "post"), circuit.bounds(q.post)
        if (a, b) != (pa, pb):  # a region of the post population: zero elsewhere
            current = jnp.pad(current, (a - pa, pb - b))
        per_post[q.post] = current if q.post not in per_post else per_post[q.post] + current
    if not per_post:
        return None, status, projections, lags
    if len(circuit.populations) == 1:
        return per_post[circuit.populations[0].name], status, projections, lags
    parts = [per_post.get(p.name, jnp.zeros((p.size,), jnp.float32)) for p in circuit.populations]
    return jnp.concatenate(parts), status, projections, lags


def neighbour_input(circuit: Circuit, spikes: jax.Array, platform: str) -> jax.Array | None:
    """(N,) f32 local excitation of each population's neighbours, or None."""
    if all(p.neighbour_weight == 0 for p in circuit.populations):
        return None
    parts = [
        synapses.neighbour_input(p, _population(circuit, spikes, p.name), platform)
        if p.neighbour_weight
        else jnp.zeros((p.size,), jnp.float32)
        for p in circuit.populations
    ]
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


def _step(
    circuit: Circuit,
    plan: Plan,
    wiring: Wiring,
    state: BrainState,
    stim: jax.Array | None,
    lags: dict,
) -> tuple[BrainState, Metrics, dict]:
    n = circuit.n
    ns = state.neurons
    fence = lambda t: materialize(plan, t, state.step)  # see `materialize`; identity on GPUs
    teacher = teacher_signal(circuit, stim) if plan.teaching else None
    # several devices: every shard reads the whole last spike vector (exchanged once)
    heard, exchanged = state, jnp.uint32(0)
    if plan.devices > 1:
        if plan.exchange == "list":  # a shard's list can overflow: now, or for a delayed vector
            whole, exchanged = exchange_list(plan, ns.spikes)
            for delay in sorted({q.delay for q in circuit.projections if q.delay > 1}):
                bits = ((ns.history >> jnp.uint32(delay - 2)) & 1).astype(jnp.uint8)
                exchanged = exchanged | exchange_list(plan, bits)[1]
        else:
            whole = exchange_spikes(plan, ns.spikes)
        heard = state.replace(neurons=ns.replace(spikes=whole))
    reward = reward_signal(circuit, stim) if any(f == "reward" for f in plan.stdp) else None
    i_syn, status, projections, lags = synaptic_input(
        circuit, plan, wiring, heard, lags, fence, teacher, reward
    )
    status = status | exchanged
    # Fusion fences (kept by XLA:GPU). Without them XLA fuses the 32-wide
    # gather and the noise hash into every reduction that reads them (metrics,
    # isfinite), recomputing them inside poorly parallel reduction kernels.
    # A GPU plan whose every projection scatters (event) needs none on I_syn:
    # the scatter's sums are in memory already, and the fixed-point -> f32
    # conversion fuses into the update instead of running as a kernel of its own.
    if i_syn is None:
        i_syn = jax.lax.optimization_barrier(jnp.zeros((n,), jnp.float32))
    elif plan.platform != "gpu" or any(p != "event" for p in plan.paths):
        i_syn = jax.lax.optimization_barrier(i_syn)
    i_nbr = neighbour_input(circuit, heard.neurons.spikes, plan.platform)
    if i_nbr is not None:  # several devices: from the whole spike vector, on every device (no exchange)
        i_nbr = shard.replicated(plan.devices, i_nbr)
    i_in = i_syn if i_nbr is None else i_syn + i_nbr
    bias = neurons.neuron_values(circuit, "bias")
    ctrl = state.homeostasis.ctrl
    if circuit.controller.enabled:
        ctrl, drive = homeostasis.controller_step(circuit, ctrl, state.homeostasis.rate, state.step)
        current = i_in + (bias + drive)
    else:
        current = i_in + bias
    if any(p.neuron.noise_sd for p in circuit.populations):
        noise_sd = neurons.neuron_values(circuit, "noise_sd")
        current = current + noise_sd * neurons.gaussian_noise(state.key, state.step, n, fence)
    if stim is not None and circuit.inputs:
        # The stimulus current in its own kernel (CPU; `materialize`). Fused
        # into the neuron update, its pad and gather made XLA:CPU emit that
        # loop (noise, leak, input sum) as scalar code on one device but as
        # 8-wide vector code on several (SPMD slices the pad), and the two
        # round differently (FMA contraction, it seems): voltages differed in
        # their last bit. Read from memory, the loop is the same vector code
        # on any number of devices.
        current = current + fence(external_input(circuit, stim))
    v, spikes, adapt, refrac, mode = neurons.neuron_update(
        circuit, ns.v, ns.theta, ns.adapt, ns.refrac, ns.mode, current, fence=fence
    )
    if ns.lesion is not None:  # silenced neurons integrate but never fire
        spikes = spikes & (ns.lesion == 0)
    theta = homeostasis.threshold_step(circuit, ns.theta, spikes)
    # the uint8 spikes (state, spike list, readouts) are converted inside the
    # update's kernel: after the fence the conversion is a kernel of its own
    v, spikes_u8, adapt, refrac, mode, theta = jax.lax.optimization_barrier(
        (v, spikes.astype(jnp.uint8), adapt, refrac, mode, theta)
    )
    # One stacked reduction gives the count and the three means (one kernel,
    # not four). Sums of 0/1 in float32 are exact below 2**24 neurons; beyond,
    # the count gets its own integer reduction. A NaN/inf anywhere in v or
    # theta makes its sum non-finite. Weights need no check: STDP only adds
    # bounded trace terms and clips.
    rows = [i_in, theta, v]
    exact_f32 = n < 2**24
    if exact_f32:
        rows.append(spikes_u8.astype(jnp.float32))
    sums = population_sums(plan, rows)
    count = sums[3].astype(jnp.int32) if exact_f32 else jnp.sum(spikes_u8, dtype=jnp.int32)
    mean_input, mean_threshold, mean_voltage = sums[0] / n, sums[1] / n, sums[2] / n
    finite = jnp.isfinite(sums[1]) & jnp.isfinite(sums[2])
    status = state.status | status | jnp.where(finite, jnp.uint32(0), jnp.uint32(STATUS_NONFINITE))
    rate = count.astype(jnp.float32) / n
    history = ns.history
    if history is not None:
        history = (history << jnp.uint32(1)) | ns.spikes.astype(jnp.uint32)
    new_state = state.replace(
        neurons=ns.replace(
            v=v, theta=theta, adapt=adapt, refrac=refrac, mode=mode, spikes=spikes_u8, history=history
        ),  # a lesion mask, if any, carries over
        projections=projections,
        homeostasis=HomeostasisState(ctrl=ctrl, rate=rate),
        step=state.step + 1,
        status=status,
    )
    new_state = shard.constrain(plan.devices, new_state)  # each leaf keeps its layout (several devices)
    if len(circuit.populations) == 1:
        pop_counts = count[None]
    else:
        pop_counts = jnp.stack(
            [_population(circuit, spikes_u8, p.name).sum(dtype=jnp.int32) for p in circuit.populations]
        )
    metrics = Metrics(
        spikes=count,
        rate=rate,
        mean_input=mean_input,
        mean_threshold=mean_threshold,
        mean_voltage=mean_voltage,
        out_counts=readout_counts(circuit, spikes_u8),
        pop_counts=pop_counts,
        raster=spikes_u8[: plan.record_spikes],
    )
    return new_state, metrics, lags


def readout_counts(circuit: Circuit, spikes: jax.Array) -> jax.Array:
    """(output_channels,) int32 spikes per readout group (readouts in order)."""
    parts = []
    for r in circuit.readouts:
        if r.region:  # patches on the sheet: gather the listed neurons
            cells = jnp.asarray(circuit.port_neurons(r), jnp.int32)
            parts.append(spikes[cells].sum(axis=1, dtype=jnp.int32))
            continue
        start = circuit.offset(r.population) + r.start
        block = spikes[start : start + r.groups * r.group].reshape(r.groups, r.group)
        parts.append(block.sum(axis=1, dtype=jnp.int32))
    if not parts:
        return jnp.zeros((0,), jnp.int32)
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


def population_sums(plan: Plan, rows: list[jax.Array]) -> jax.Array:
    """(R,) f32 sums of R rows of shape (N,). GPU: one variadic reduction of
    every row at once (`lax.reduce` over a tuple: one kernel, not R), which
    ran faster than a sum over the stacked (R, N) array (BENCHMARKS.md,
    session 25). CPU: one sum per row."""
    if plan.platform == "cpu":
        return jnp.stack([r.sum() for r in rows])
    zeros = tuple(jnp.zeros((), r.dtype) for r in rows)
    sums = jax.lax.reduce(
        tuple(rows), zeros, lambda a, b: tuple(x + y for x, y in zip(a, b, strict=True)), (0,)
    )
    return jnp.stack(sums)


def sheet_words(spikes: jax.Array) -> jax.Array:
    """(N,) uint8 0/1 spikes -> (ceil(N/32),) int32 words whose bits are
    `synapses.pack_spikes(spikes)`'s (neuron i is bit i % 32 of word i // 32).

    Elementwise only, no reduction: four spike bytes b0..b3 read as one
    little-endian uint32 x = sum_j b_j 2^(8j) give x * 0x01020408 = sum_j,k
    b_j 2^(8j + 24 - 7k) (mod 2^32), whose 16 partial products fall on
    distinct bits (no carries), so bits 24..27 hold b0..b3:
        nibble = ((x * 0x01020408) >> 24) & 15 = b0 + 2 b1 + 4 b2 + 8 b3,
    and a word ORs eight nibbles, nibble m shifted by 4m. Runs every step
    of a recorded burst: a reduction over the bits there fuses with the
    neuron update inside the unrolled scan on GPUs, and the 32-lane uint32
    shift-and-sum of `pack_spikes` is slow on XLA:CPU."""
    n = spikes.shape[0]
    words = -(-n // 32)
    b = jnp.pad((spikes != 0).astype(jnp.uint8), (0, words * 32 - n)).reshape(words * 8, 4)
    x = jax.lax.bitcast_convert_type(b, jnp.uint32)
    nibbles = (((x * jnp.uint32(0x01020408)) >> 24) & jnp.uint32(15)).reshape(words, 8)
    out = nibbles[:, 0]
    for m in range(1, 8):
        out = out | (nibbles[:, m] << (4 * m))
    return jax.lax.bitcast_convert_type(out, jnp.int32)


def _burst_packed(circuit, plan, wiring, state, stims, length, pre_major=None):
    """`burst`'s scan, its per-step metrics left packed: (state, packed (T,
    1 + output_channels + P' + W + 5) int32: spikes, out_counts, the P
    populations' counts (only when P > 1), the step's spikes of all N
    neurons as W = ceil(N/32) bit-packed words (only when
    `plan.record_sheet`, see `sheet_words`; else W = 0), then rate, mean
    input, threshold and voltage bit-cast, then the status bits after the
    step; raster (T, record_spikes) uint8); see `unpack_metrics`,
    `unpack_sheet` and `packed_status`. Each scan output costs a
    dynamic-update-slice kernel per step, so one array instead of several;
    and the host reads one array, status included. pre_major: see
    `StaticOrder`."""
    # The overflow bit describes this burst only (the host re-runs it).
    state = state.replace(status=state.status & ~jnp.uint32(STATUS_SPIKE_OVERFLOW))
    if plan.teaching:  # the delta rule's pre traces start afresh in each teaching burst
        projections = dict(state.projections)
        for q in circuit.projections:
            if q.plasticity is not None and q.plasticity.rule == "delta":
                ps = projections[q.name]
                projections[q.name] = ps.replace(x_pre=jnp.zeros_like(ps.x_pre))
        state = state.replace(projections=projections)
    if plan.feedback and state.reward is not None and stims is not None:
        # The feedback's reward r (its first step, `learn.reward`) arrives as
        # dopamine minus what the brain expected, its mood m: delta = r - m
        # (a critic: Fremaux et al. 2010, reward-modulated STDP learns only
        # from reward minus expected reward); then m <- m + (r - m) / n.
        r = reward_signal(circuit, stims[0])
        rs = state.reward
        stims = stims.at[0, reward_channel(circuit)].set(r - rs.mood)
        state = state.replace(
            reward=rs.replace(
                mood=rs.mood + (r - rs.mood) * (1.0 / MOOD_FEEDBACKS),
                feedbacks=rs.feedbacks + 1,
                held=jnp.zeros_like(rs.held),
            )
        )
    state, lags, release = _working_order(circuit, plan, wiring, state, pre_major)
    many = len(circuit.populations) > 1

    def body(carry, stim):
        carry, m, lags = _step(circuit, plan, wiring, carry[0], stim, carry[1])
        floats = jnp.stack([m.rate, m.mean_input, m.mean_threshold, m.mean_voltage])
        sheet = [sheet_words(carry.neurons.spikes)] if plan.record_sheet else []
        packed = jnp.concatenate(
            [m.spikes[None], m.out_counts]
            + ([m.pop_counts] if many else [])
            + sheet
            + [
                jax.lax.bitcast_convert_type(floats, jnp.int32),
                jax.lax.bitcast_convert_type(carry.status, jnp.int32)[None],
            ]
        )
        return (carry, lags), (packed, m.raster)

    unroll = max(1, min(plan.unroll, length))
    (state, lags), (packed, raster) = jax.lax.scan(body, (state, lags), stims, length=length, unroll=unroll)
    # several devices: the host reads one replicated array (and the raster) per burst
    packed, raster = shard.replicated(plan.devices, packed), shard.replicated(plan.devices, raster)
    return release(state, lags), packed, raster


def unpack_metrics(circuit: Circuit, packed, raster, xp: Any = jnp) -> Metrics:
    """Metrics (T axis) from `_burst_packed`'s arrays; xp=np on the host."""
    floats = (
        packed[:, -5:-1].view(np.float32)
        if xp is np
        else jax.lax.bitcast_convert_type(packed[:, -5:-1], jnp.float32)
    )
    c = circuit.output_channels
    p = len(circuit.populations)
    pops = packed[:, 1 + c : 1 + c + p] if p > 1 else packed[:, :1]
    return Metrics(
        spikes=packed[:, 0],
        rate=floats[:, 0],
        mean_input=floats[:, 1],
        mean_threshold=floats[:, 2],
        mean_voltage=floats[:, 3],
        out_counts=packed[:, 1 : 1 + c],
        pop_counts=pops,
        raster=raster,
    )


def unpack_sheet(circuit: Circuit, packed, xp: Any = jnp) -> Any:
    """(T, W) uint32 bit-packed spikes of all N neurons per step from
    `_burst_packed`'s `packed` (neuron i is bit i % 32 of word i // 32, W =
    ceil(N/32); `sheet_words`); W = 0 when the plan did not record the
    sheet. xp=np on the host (a view, no copy)."""
    words = packed[:, _sheet_start(circuit) : -5]
    if xp is np:
        return words.view(np.uint32)
    return jax.lax.bitcast_convert_type(words, jnp.uint32)


def _split_sheet(circuit: Circuit, packed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(packed without the sheet's words, the words (T, W) uint32), on the
    device: the host reads the small metrics at once and the words in the
    background (jbrain/sheet.py), while the next burst runs."""
    rest = jnp.concatenate([packed[:, : _sheet_start(circuit)], packed[:, -5:]], axis=1)
    return rest, unpack_sheet(circuit, packed)


split_sheet = jax.jit(_split_sheet, static_argnames=("circuit",))


def _sheet_start(circuit: Circuit) -> int:
    """The packed column of the sheet's first word: after the spike count,
    the readout counts and (P > 1) the population counts."""
    p = len(circuit.populations)
    return 1 + circuit.output_channels + (p if p > 1 else 0)


def packed_status(packed: np.ndarray) -> int:
    """The burst's final status bits (the state's) from host `packed`."""
    return int(np.uint32(packed[-1, -1].view(np.uint32)))


def _burst(circuit, plan, wiring, state, stims, length, pre_major=None):
    state, packed, raster = _burst_packed(circuit, plan, wiring, state, stims, length, pre_major)
    return state, unpack_metrics(circuit, packed, raster)


def _reward_projections(circuit: Circuit, state: BrainState, fields: Callable[[ProjectionState], dict]):
    out = dict(state.projections)
    for q in circuit.projections:
        if _is_reward(q):
            out[q.name] = out[q.name].replace(**fields(out[q.name]))
    return state.replace(projections=out)


def _held(state: BrainState, held: int) -> BrainState:
    if state.reward is None:
        return state
    return state.replace(reward=state.reward.replace(held=jnp.full((), held, jnp.uint8)))


def _hold(circuit: Circuit, state: BrainState) -> BrainState:
    return _held(_reward_projections(circuit, state, lambda ps: {"tag": ps.elig + 0.0}), 1)


def _spend(circuit: Circuit, state: BrainState) -> BrainState:
    state = _reward_projections(
        circuit,
        state,
        lambda ps: {
            "elig": jnp.zeros_like(ps.elig),
            "tag": jnp.zeros_like(ps.tag),
            "dopamine": jnp.zeros_like(ps.dopamine),
        },
    )
    return _held(state, 0)


hold_eligibility = jax.jit(_hold, static_argnames=("circuit",), donate_argnames=("state",))
hold_eligibility.__doc__ = """The state with every reward projection's tag set to
its eligibility (tag <- c): a reply's eligibility held, without decay, for
its delayed feedback (`learn.reward`); `reward.held` <- 1. `state` is donated."""
spend_feedback = jax.jit(_spend, static_argnames=("circuit",), donate_argnames=("state",))
spend_feedback.__doc__ = """The state after a feedback burst: every reward
projection's eligibility, tag and dopamine back to 0 (the feedback spent on
the reply it credited; later live steps credit nothing, and the next reply's
tag holds that reply's pairings alone, not the decayed rest of this one's);
`reward.held` <- 0. `state` is donated."""


def reward_projections(circuit: Circuit) -> list[str]:
    """Names of the projections with the reward rule (what /good and /bad change)."""
    return [q.name for q in circuit.projections if _is_reward(q)]


def static_projections(circuit: Circuit, plan: Plan) -> list[str]:
    """The projections whose weights a burst permutes into presynaptic order
    and hands back unchanged: event path, no plasticity."""
    pairs = zip(circuit.projections, plan.paths, strict=True)
    return [q.name for q, path in pairs if path == "event" and q.plasticity is None]


def _pre_major(circuit: Circuit, plan: Plan, wiring: Wiring, state: BrainState) -> dict:
    return {
        name: synapses.to_pre_major(wiring.projections[name], state.projections[name].weights)
        for name in static_projections(circuit, plan)
    }


_pre_major_jit = jax.jit(_pre_major, static_argnames=("circuit", "plan"))


class StaticOrder:
    """The static projections' weights in presynaptic order, kept from burst
    to burst for `burst(..., pre_major=)` on CPUs.

    A burst of an event projection first permutes its weights into
    presynaptic order (a gather of all N*K synapses at random, the largest
    per-burst cost of a CPU step; on GPUs a small one, not worth the copy's
    memory). Static weights never change, so a caller that runs burst
    after burst (Session, `jbrain bench`) permutes them once: `get`
    returns the permuted weights of `state` ({} when nothing to keep, on
    GPUs or with no static event projection), computed anew whenever the
    state's weight arrays are not the ones they were computed from; after
    a burst, `carried(new_state)` records that its static weights are the
    ones that went in (a burst hands them back unchanged). A state from
    anywhere else (a restore, `Session.set_weights`, a stress test's
    rescaled weights) holds other arrays, so they are permuted again: a
    stale order is never used."""

    def __init__(self) -> None:
        self._source: tuple = ()  # ((name, the weight array it was computed from), ...)
        self._value: dict = {}

    def get(self, circuit: Circuit, plan: Plan, wiring: Wiring, state: BrainState) -> dict:
        names = static_projections(circuit, plan) if plan.platform == "cpu" else []
        if not names:
            return {}
        source = tuple((n, state.projections[n].weights) for n in names)
        same = len(source) == len(self._source) and all(
            n == m and w is v for (n, w), (m, v) in zip(source, self._source, strict=True)
        )
        if not same:
            self._source, self._value = source, _pre_major_jit(circuit, plan, wiring, state)
        return self._value

    def carried(self, state: BrainState) -> None:
        self._source = tuple((n, state.projections[n].weights) for n, _ in self._source)


_STATIC = ("circuit", "plan", "length")
burst = jax.jit(_burst, static_argnames=_STATIC, donate_argnames=("state",))
burst.__doc__ = """Run `length` steps as one `lax.scan` (one compiled program per
(circuit, plan, length, stims is None)). stims: (length, input_channels) f32
or None. `state` is donated: do not reuse it. pre_major (optional): the
static projections' weights already in presynaptic order, from a
`StaticOrder` kept by the caller. Returns (state, Metrics with a T axis)."""

burst_packed = jax.jit(_burst_packed, static_argnames=_STATIC, donate_argnames=("state",))
burst_packed_keeping_input = jax.jit(_burst_packed, static_argnames=_STATIC)
burst_packed.__doc__ = """`burst` returning (state, packed, raster) for the host
(`unpack_metrics(..., xp=np)`): what `Session` runs. `burst_packed_keeping_input`:
the same without donation, so the host can re-run the burst from its input
state (spike-list overflow) without copying it first."""
