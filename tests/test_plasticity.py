"""STDP (jbrain/plasticity.py): the rule by the numbers on every form
(event `stdp_step`, `dense_step`, deferred LTP + `flush`), bounds and Dale's
law over plastic runs, synaptic scaling, and a word presented 50 times
strengthening the synapses among its neurons."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small, tiny

from jbrain import backends, brain, plasticity, synapses
from jbrain import plan as plans
from jbrain.circuit import STDP, Circuit, Controller, Population, Projection

T0 = jnp.int32(0)  # a step counter for one-off updates (traced: see `fence`)
CPU_PLAN = plans.resolve(small().circuit(), platform="cpu", backend="xla")


def fence(step):
    """What a step fences the STDP increments with. `step` must be traced (a
    jit argument): with a constant predicate XLA folds the conditional away
    and may contract w + a*x into an FMA."""
    return lambda tree: brain.materialize(CPU_PLAN, tree, step)


@functools.partial(jax.jit, static_argnums=(0, 1))
def stdp_event(q, dt, wiring, w_pre, x, y, s_pre, s_post, ids_pre, ids_post, step):
    return plasticity.stdp_step(q, dt, wiring, w_pre, x, y, s_pre, s_post, ids_pre, ids_post, fence(step))


@functools.partial(jax.jit, static_argnums=(0, 1))
def stdp_dense(q, dt, wiring, w, x, y, s_pre, s_post, step):
    return plasticity.dense_step(q, dt, wiring, w, x, y, s_pre, s_post, fence(step))


def random_inputs(config, *, seed: int, rate: float = 0.05):
    """A brain's projection, wiring and post-major weights, random traces and
    spikes (every spike listed)."""
    circuit, _, wiring, state = tiny(config, seed=seed)
    rng = np.random.default_rng(seed)
    n = circuit.n
    spikes = jnp.asarray((rng.random(n) < rate).astype(np.uint8))
    x = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    y = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    return circuit, wiring.projections["W"], state.projections["W"].weights, x, y, spikes


def dense_reference(q, dt, pre, w, x, y, s_pre, s_post):
    """The rule of plasticity.py as per-synapse NumPy `where`s over all synapses
    (post-major weights); returns (weights, x_pre', y_post')."""
    r, (n_post, k) = q.plasticity, pre.shape
    ltp, ltd = r.a_plus * x, r.a_minus * y
    f_pre, f_post = np.asarray(s_pre).astype(bool), np.asarray(s_post).astype(bool)
    w = np.asarray(w).reshape(n_post, k)
    w = np.where(f_post[:, None], np.clip(w + ltp[pre], 0.0, q.w_max), w)  # LTP on fired rows
    w = np.where(f_pre[pre], np.clip(w - ltd[:, None], 0.0, q.w_max), w)  # LTD where the pre fired
    if r.scaling:
        total = np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        w = np.where(f_post[:, None], np.clip(w * (0.5 * k * q.w_max / total), 0.0, q.w_max), w)
    x2 = np.asarray(x) * np.exp(-dt / r.tau_pre) + f_pre
    y2 = np.asarray(y) * np.exp(-dt / r.tau_post) + f_post
    return w.reshape(-1), x2, y2


@pytest.mark.parametrize("scaling", [False, True])
def test_event_and_dense_updates_equal_the_rule(scaling):
    """`stdp_step` (spike lists, presynaptic order) and `dense_step` (every
    synapse) give the same weights, bit for bit without scaling, and the
    NumPy rule to the last bit (XLA may round a product or a row sum apart)."""
    config = small(fan_in=16, plasticity=True, a_plus=0.01, a_minus=0.012, synaptic_scaling=scaling)
    circuit, wiring, w, x, y, spikes = random_inputs(config, seed=1)
    q, dt, n = circuit.projections[0], circuit.dt, circuit.n
    ids, _ = synapses.spike_list(spikes, n)
    w_pre, x_ev, y_ev = stdp_event(
        q, dt, wiring, synapses.to_pre_major(wiring, w), x, y, spikes, spikes, ids, ids, T0
    )
    event = np.asarray(synapses.to_post_major(wiring, w_pre))
    dense, x_de, y_de = stdp_dense(q, dt, wiring, w, x, y, spikes, spikes, T0)
    ref, x_ref, y_ref = dense_reference(q, dt, np.asarray(wiring.pre), w, x, y, spikes, spikes)
    w0 = np.asarray(w)
    assert (ref != w0).mean() > 0.04  # LTP rows and LTD columns both moved weights
    if scaling:
        np.testing.assert_allclose(event, np.asarray(dense), rtol=1e-6, atol=1e-9)
    else:
        np.testing.assert_array_equal(event, np.asarray(dense))
    np.testing.assert_allclose(event, ref, rtol=1e-6, atol=1e-8)  # ulp(w_max) = 3.7e-9
    assert np.array_equal(event != w0, ref != w0)
    for got in (x_ev, x_de):
        np.testing.assert_allclose(np.asarray(got), x_ref, rtol=1e-6)
    for got in (y_ev, y_de):
        np.testing.assert_allclose(np.asarray(got), y_ref, rtol=1e-6)


def test_dense_update_between_populations_of_different_sizes():
    """A plastic projection A (300) -> B (200): pre and post traces and
    spikes of different populations, the NumPy rule."""
    rule = STDP(a_plus=0.01, a_minus=0.012)
    circuit = Circuit(
        (Population("A", 300), Population("B", 200)),
        (Projection("AB", "A", "B", fan_in=16, plasticity=rule),),
        controller=Controller(False),
    )
    wiring, state = brain.init_brain(circuit, seed=2)
    pw, w = wiring.projections["AB"], state.projections["AB"].weights
    rng = np.random.default_rng(2)
    s_pre = jnp.asarray((rng.random(300) < 0.1).astype(np.uint8))
    s_post = jnp.asarray((rng.random(200) < 0.1).astype(np.uint8))
    x = jnp.asarray(rng.exponential(1.0, 300).astype(np.float32))
    y = jnp.asarray(rng.exponential(1.0, 200).astype(np.float32))
    q = circuit.projections[0]
    got, x2, y2 = stdp_dense(q, circuit.dt, pw, w, x, y, s_pre, s_post, T0)
    ref, x_ref, y_ref = dense_reference(q, circuit.dt, np.asarray(pw.pre), w, x, y, s_pre, s_post)
    assert (ref != np.asarray(w)).mean() > 0.04
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6, atol=1e-8)
    assert x2.shape == (300,) and y2.shape == (200,)
    np.testing.assert_allclose(np.asarray(x2), x_ref, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(y2), y_ref, rtol=1e-6)


def test_pre_before_post_potentiates_post_before_pre_depresses():
    circuit, _, wiring, state = tiny(small(fan_in=8, plasticity=True, a_plus=0.01, a_minus=0.02))
    q, n, k = circuit.projections[0], circuit.n, 8
    pw = wiring.projections["W"]
    i, slot = 10, 3
    j = int(pw.pre[i, slot])  # synapse j -> i is weights[i*K + slot] (post-major)
    e = i * k + slot
    w = jnp.full(n * k, 0.02, jnp.float32)

    def one(x_pre, y_post, fired):
        spikes = jnp.zeros(n, jnp.uint8).at[jnp.asarray(fired, jnp.int32)].set(1)
        ids, _ = synapses.spike_list(spikes, n)
        w_pre, x, y = stdp_event(q, circuit.dt, pw, synapses.to_pre_major(pw, w), x_pre, y_post,
                                 spikes, spikes, ids, ids, T0)  # fmt: skip
        return np.asarray(synapses.to_post_major(pw, w_pre)), np.asarray(x), np.asarray(y)

    zero = jnp.zeros(n, jnp.float32)
    # j fired earlier (x_pre[j] = 0.5), i fires now: LTP a_plus * x_pre[j]
    w1, x1, y1 = one(zero.at[j].set(0.5), zero, [i])
    assert w1[e] == pytest.approx(0.02 + 0.01 * 0.5)
    assert x1[i] == 1.0 and y1[i] == 1.0 and x1[j] == pytest.approx(0.5 * np.exp(-1 / 20))
    # i fired earlier (y_post[i] = 0.5), j fires now: LTD a_minus * y_post[i]
    w2, _, _ = one(zero, zero.at[i].set(0.5), [j])
    assert w2[e] == pytest.approx(0.02 - 0.02 * 0.5)
    # both fire now, no earlier spikes: no pairing
    w3, _, _ = one(zero, zero, [i, j])
    assert w3[e] == np.float32(0.02)
    # LTP touched only i's in-row
    changed = np.flatnonzero(w1 != np.float32(0.02))
    assert set(changed) <= set(range(i * k, (i + 1) * k)) and e in changed


def test_weights_stay_magnitudes_and_dale_holds_over_a_plastic_run():
    """The ei circuit with STDP on EE and on the inhibitory IE, strong enough
    to drive weights to both bounds for 600 steps: every weight stays in
    [0, w_max] (many sit at 0: clipped, never flipped), and the inhibitory
    projections still only subtract."""
    base = small(preset="ei", controller=False, plasticity=True, a_plus=0.05, a_minus=0.05)
    circuit = base.circuit()
    rule = circuit.projections[0].plasticity
    circuit = dataclasses.replace(
        circuit,
        projections=tuple(
            dataclasses.replace(q, plasticity=rule) if q.name == "IE" else q for q in circuit.projections
        ),
    )
    assert [q.plasticity is not None for q in circuit.projections] == [True, False, True, False]
    plan = plans.resolve(circuit)
    wiring, state = brain.init_brain(circuit, seed=2)
    w0 = {name: np.asarray(p.weights) for name, p in state.projections.items()}
    for _ in range(3):
        state, m = brain.burst(circuit, plan, wiring, state, None, length=200)
        assert int(np.asarray(m.spikes).sum()) > 0
        for q in circuit.projections:
            w = np.asarray(state.projections[q.name].weights)
            assert w.min() >= 0.0 and w.max() <= q.w_max and np.isfinite(w).all(), q.name
    for name in ("EE", "IE"):
        w = np.asarray(state.projections[name].weights)
        q = circuit.projections[[p.name for p in circuit.projections].index(name)]
        assert (w == 0.0).mean() > 0.05 and (w == q.w_max).mean() > 0.01, name
    for name in ("EI", "II"):  # not plastic: untouched
        assert np.array_equal(np.asarray(state.projections[name].weights), w0[name])
    # I's spikes only ever lower the input of their posts
    s = jnp.zeros(circuit.n, jnp.uint8).at[circuit.bounds("I")[0] :].set(1)
    quiet = state.replace(neurons=state.neurons.replace(spikes=s, v=jnp.zeros(circuit.n)))
    i_syn, *_ = brain.synaptic_input(circuit, plans.resolve(circuit, propagation="gather"), wiring, quiet, {},
                                     lambda t: t)  # fmt: skip
    assert (np.asarray(i_syn) <= 0).all() and (np.asarray(i_syn) < 0).mean() > 0.9


def test_synaptic_scaling_fixes_the_input_total_of_each_neuron_that_fired():
    config = small(fan_in=16, plasticity=True, a_plus=0.002, a_minus=0.001, synaptic_scaling=True)
    circuit, wiring, w, x, y, spikes = random_inputs(config, seed=3)
    q, n, k = circuit.projections[0], circuit.n, 16
    w2, _, _ = stdp_dense(q, circuit.dt, wiring, w, x, y, spikes, spikes, T0)
    rows = np.asarray(w2).reshape(n, k)
    fired = np.asarray(spikes).astype(bool)
    target = 0.5 * k * q.w_max
    free = fired & (rows.max(1) < q.w_max)  # rows where the clip at w_max did not bite
    assert free.sum() > 0.5 * fired.sum()
    np.testing.assert_allclose(rows[free].sum(1), target, rtol=1e-5)
    assert np.all(rows[fired].sum(1) <= target * (1 + 1e-5))
    before = np.asarray(w).reshape(rows.shape)[~fired].sum(1)
    assert np.all(rows[~fired].sum(1) <= before + 1e-7)  # only LTD reaches the others
    assert not np.allclose(rows[~fired].sum(1), target, rtol=1e-3)


def test_plasticity_off_leaves_weights_and_traces_alone():
    circuit, plan, wiring, state = tiny(small(plasticity=False))
    w0 = np.asarray(state.projections["W"].weights)
    state, m = brain.burst(circuit, plan, wiring, state, None, length=100)
    assert int(np.asarray(m.spikes).sum()) > 0
    ps = state.projections["W"]
    assert np.array_equal(np.asarray(ps.weights), w0)
    assert not np.asarray(ps.x_pre).any() and not np.asarray(ps.y_post).any()


def test_deferred_ltp_equals_stdp_step_over_long_silences():
    """120 steps of given spikes: `deferred_step` (LTP replayed at the pre's
    next spike or its round-robin turn) then `flush` == `stdp_step` at every
    step, bit for bit, with neurons silent for longer than the history."""
    circuit, _, wiring, state = tiny(small(fan_in=16, plasticity=True, a_plus=0.01, a_minus=0.012), seed=5)
    q, dt, n = circuit.projections[0], circuit.dt, circuit.n
    pw, xla = wiring.projections["W"], backends.get("xla")
    rng = np.random.default_rng(5)
    quiet = np.arange(n) < 300  # silent for steps 10..100: windows past HISTORY
    w_eager = w_lazy = synapses.to_pre_major(pw, state.projections["W"].weights)
    x_e = y_e = x_l = y_l = jnp.zeros(n, jnp.float32)
    lag = plasticity.lag_init(x_l, n)

    @jax.jit
    def eager(w, x, y, spikes, ids, t):
        return plasticity.stdp_step(q, dt, pw, w, x, y, spikes, spikes, ids, ids, fence(t))

    @jax.jit
    def lazy(w, x, y, spikes, ids, count, lag, t):
        return plasticity.deferred_step(q, dt, xla, pw, w, x, y, spikes, spikes, ids, count, lag, t, fence(t))

    for t in range(120):
        fired = rng.random(n) < 0.08
        fired[quiet] &= not 10 <= t < 100
        spikes = jnp.asarray(fired.astype(np.uint8))
        ids, count = synapses.spike_list(spikes, n)
        w_eager, x_e, y_e = eager(w_eager, x_e, y_e, spikes, ids, t)
        w_lazy, x_l, y_l, lag, pushed = lazy(w_lazy, x_l, y_l, spikes, ids, count, lag, t)
        assert pushed is None  # XLA pushes after the update (`propagate_event`)
        assert int(np.asarray(lag.pending).max()) < plasticity.HISTORY
    assert not np.array_equal(w_lazy, w_eager)  # LTP was pending ...
    flush = jax.jit(lambda w, lag, t: plasticity.flush(q, dt, xla, pw, w, lag, fence(t)))
    np.testing.assert_array_equal(flush(w_lazy, lag, 120), w_eager)  # ... and is the same once applied
    np.testing.assert_array_equal(x_l, x_e)
    np.testing.assert_array_equal(y_l, y_e)
    w0 = np.asarray(synapses.to_pre_major(pw, state.projections["W"].weights))
    assert (np.asarray(w_eager) != w0).mean() > 0.5


# --------------------------------------------------- learning a word ---

WORD = [3, 7, 11, 20]  # the input channels the word drives
ON, PERIOD = 20, 50  # each presentation: 20 steps of stimulus, 30 of rest


@functools.cache
def word_experiment():
    """50 presentations of one word to a 5,000-neuron brain with STDP and
    synaptic scaling (a_plus raised above a_minus so that co-active neurons
    potentiate). Returns the weights before/after, the driven set and the
    wiring, plus a control run without the word."""
    config = small(
        n_neurons=5000,
        input_channels=24,
        io_fraction=0.3,
        plasticity=True,
        a_plus=0.001,
        a_minus=0.0005,
        synaptic_scaling=True,
    )
    circuit, plan, wiring, state = tiny(config)
    n, channels, group = circuit.n, circuit.input_channels, circuit.inputs[0].group
    word = np.zeros((PERIOD, channels), np.float32)
    word[:ON, WORD] = 1.0
    quiet = np.zeros_like(word)
    for _ in range(40):  # let the weights settle under STDP + scaling first
        state, _ = brain.burst(circuit, plan, wiring, state, quiet, length=PERIOD)
    # Who does the word drive? One presentation, plasticity off, every neuron recorded.
    probe = config.replace(plasticity=False).circuit()
    probe_plan = plans.resolve(probe, record_spikes=n)
    _, m = brain.burst(probe, probe_plan, wiring, jax.tree.map(jnp.copy, state), word, length=PERIOD)
    raster = np.asarray(m.raster, np.float32)
    evoked = raster[:ON].mean(0) - raster[ON:].mean(0)  # rate in the stimulus minus rest
    driven = np.zeros(n, bool)
    driven[np.argsort(-evoked)[: len(WORD) * group]] = True
    elevated = evoked > 0.05
    k = circuit.projections[0].fan_in
    w0 = np.asarray(state.projections["W"].weights).reshape(n, k)
    control = jax.tree.map(jnp.copy, state)
    for _ in range(50):
        state, _ = brain.burst(circuit, plan, wiring, state, word, length=PERIOD)
        control, _ = brain.burst(circuit, plan, wiring, control, quiet, length=PERIOD)
    w1 = np.asarray(state.projections["W"].weights).reshape(w0.shape)
    wc = np.asarray(control.projections["W"].weights).reshape(w0.shape)
    return group, np.asarray(wiring.projections["W"].pre), driven, elevated, w0, w1, wc


def test_a_word_presented_50_times_strengthens_the_synapses_among_its_neurons():
    group, pre, driven, elevated, w0, w1, wc = word_experiment()
    stimulated = np.zeros_like(driven)
    for c in WORD:
        stimulated[c * group : (c + 1) * group] = True
    assert (driven & stimulated).sum() >= 0.9 * driven.sum()  # the measure finds the word's neurons
    post = np.broadcast_to(np.arange(driven.size)[:, None], pre.shape)
    among = driven[pre] & driven[post]  # pre AND post driven by the word
    # untouched: neither end responds to the word, and the postsynaptic neuron
    # has no driven input (synaptic scaling rescales whole rows)
    clean_row = ~driven[pre].any(axis=1)
    untouched = ~elevated[pre] & ~elevated[post] & clean_row[:, None]
    assert among.sum() > 200 and untouched.sum() > 10_000

    gain = w1[among].mean() - w0[among].mean()
    assert gain > 0.2 * w0[among].mean()
    assert wc[among].mean() == pytest.approx(w0[among].mean(), rel=0.05)  # no word, no gain

    change = (w1 - w0)[untouched]
    noise = change.std() / np.sqrt(change.size)  # standard error of the mean change
    assert abs(change.mean()) < 4 * noise
    assert abs(change.mean()) < 0.02 * gain
