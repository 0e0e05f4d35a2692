"""STDP (jbrain/plasticity.py): the update rule, sparse == dense, bounds,
synaptic scaling, and a word presented 50 times strengthening its synapses."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbrain import brain, plasticity, synapses
from jbrain.config import BrainConfig

stdp = jax.jit(plasticity.stdp_step, static_argnums=0)


def random_inputs(config: BrainConfig, *, seed: int, rate: float = 0.05):
    """A brain's wiring and weights, random traces and spikes (under capacity)."""
    wiring, state = brain.init_brain(config, seed=seed)
    rng = np.random.default_rng(seed)
    n = config.n_neurons
    spikes = jnp.asarray(rng.random(n) < rate)
    x = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    y = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    ids, count = synapses.spike_list(spikes, config.spike_capacity)
    assert int(count) <= config.spike_capacity
    return wiring, state.weights, x, y, spikes, ids, count


def dense_reference(config, wiring, w, x, y, spikes):
    """The rule of plasticity.py as per-synapse `where`s over all N*K synapses."""
    c, (n, k) = config, wiring.pre.shape
    ltp, ltd = c.a_plus * x, c.a_minus * y
    fired = np.asarray(spikes).astype(bool)
    pre = np.asarray(wiring.pre)
    w = np.asarray(w).reshape(n, k)
    w = np.where(fired[:, None], np.clip(w + ltp[pre], 0.0, c.w_max), w)  # LTP on fired rows
    w = np.where(fired[pre], np.clip(w - ltd[:, None], 0.0, c.w_max), w)  # LTD where the pre fired
    if c.synaptic_scaling:
        total = np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        w = np.where(fired[:, None], np.clip(w * (0.5 * k * c.w_max / total), 0.0, c.w_max), w)
    return w.reshape(-1)


@pytest.mark.parametrize("scaling", [False, True])
def test_event_update_equals_the_dense_rule(scaling):
    config = BrainConfig(
        n_neurons=3000, fan_in=16, plasticity=True, a_plus=0.01, a_minus=0.012, synaptic_scaling=scaling
    )
    wiring, w, x, y, spikes, ids, _ = random_inputs(config, seed=1)
    sparse, x2, y2 = stdp(config, wiring, w, x, y, spikes, ids)
    dense = dense_reference(config, wiring, np.asarray(w), np.asarray(x), np.asarray(y), spikes)
    assert not np.array_equal(sparse, w)  # something was learned
    # last-bit differences only: XLA may contract a_plus * x + w into an FMA
    # (and sums rows in another order), NumPy does not
    np.testing.assert_allclose(sparse, dense, rtol=1e-6, atol=1e-8)  # ulp(w_max) = 3.7e-9
    assert np.array_equal(np.asarray(sparse) != np.asarray(w), dense != np.asarray(w))
    s = np.asarray(spikes).astype(np.float32)
    np.testing.assert_allclose(x2, np.asarray(x) * np.exp(-1 / config.tau_pre) + s, rtol=1e-6)
    np.testing.assert_allclose(y2, np.asarray(y) * np.exp(-1 / config.tau_post) + s, rtol=1e-6)


def test_pre_before_post_potentiates_post_before_pre_depresses():
    config = BrainConfig(n_neurons=1000, fan_in=8, plasticity=True, a_plus=0.01, a_minus=0.02)
    wiring, state = brain.init_brain(config, seed=0)
    pre = np.asarray(wiring.pre)
    i, k = 10, 3
    j = int(pre[i, k])  # synapse j -> i is weights[i*K + k]
    e = i * config.fan_in + k
    w = state.weights.at[:].set(0.02)
    n = config.n_neurons

    def one(x_pre, y_post, fired):
        spikes = jnp.zeros(n, bool).at[jnp.asarray(fired, jnp.int32)].set(True)
        ids, _ = synapses.spike_list(spikes, config.spike_capacity)
        return stdp(config, wiring, w, x_pre, y_post, spikes, ids)

    zero = jnp.zeros(n, jnp.float32)
    # j fired earlier (x_pre[j] = 0.5), i fires now: LTP a_plus * x_pre[j]
    w1, x1, y1 = one(zero.at[j].set(0.5), zero, [i])
    assert float(w1[e]) == pytest.approx(0.02 + 0.01 * 0.5)
    assert (
        float(x1[i]) == 1.0 and float(y1[i]) == 1.0 and float(x1[j]) == pytest.approx(0.5 * np.exp(-1 / 20))
    )
    # i fired earlier (y_post[i] = 0.5), j fires now: LTD a_minus * y_post[i]
    w2, _, _ = one(zero, zero.at[i].set(0.5), [j])
    assert float(w2[e]) == pytest.approx(0.02 - 0.02 * 0.5)
    # both fire now, no earlier spikes: no pairing
    w3, _, _ = one(zero, zero, [i, j])
    assert w3[e] == w[e]
    # nothing else changed in the first two
    changed = np.nonzero(np.asarray(w1) != np.asarray(w))[0]
    assert set(changed) <= set(range(i * config.fan_in, (i + 1) * config.fan_in))


def test_weights_stay_in_0_w_max_and_reach_both_bounds():
    config = BrainConfig(n_neurons=3000, plasticity=True, a_plus=0.05, a_minus=0.05, w_max=0.05)
    wiring, state = brain.init_brain(config, seed=2)
    for _ in range(3):
        state, _ = brain.burst(config, wiring, state, None, length=200)
        w = np.asarray(state.weights)
        assert w.min() >= 0.0 and w.max() <= config.w_max and np.isfinite(w).all()
    assert (w == 0.0).mean() > 0.05 and (w == config.w_max).mean() > 0.05


def test_synaptic_scaling_fixes_the_input_total_of_each_neuron_that_fired():
    config = BrainConfig(
        n_neurons=3000, fan_in=16, plasticity=True, a_plus=0.002, a_minus=0.001, synaptic_scaling=True
    )
    wiring, w, x, y, spikes, ids, _ = random_inputs(config, seed=3)
    w2, _, _ = stdp(config, wiring, w, x, y, spikes, ids)
    rows = np.asarray(w2).reshape(config.n_neurons, config.fan_in)
    fired = np.asarray(spikes)
    target = 0.5 * config.fan_in * config.w_max
    free = fired & (rows.max(1) < config.w_max)  # rows where the clip at w_max did not bite
    assert free.sum() > 0.5 * fired.sum()
    np.testing.assert_allclose(rows[free].sum(1), target, rtol=1e-5)
    assert np.all(rows[fired].sum(1) <= target * (1 + 1e-5))
    before = np.asarray(w).reshape(rows.shape)[~fired].sum(1)
    assert np.all(rows[~fired].sum(1) <= before + 1e-7)  # only LTD reaches the others
    assert not np.allclose(rows[~fired].sum(1), target, rtol=1e-3)


def test_plasticity_off_leaves_weights_and_traces_alone():
    config = BrainConfig(n_neurons=3000, plasticity=False)
    wiring, state = brain.init_brain(config, seed=0)
    w0 = np.asarray(state.weights)
    state, _ = brain.burst(config, wiring, state, None, length=100)
    assert np.array_equal(np.asarray(state.weights), w0)
    assert not np.asarray(state.x_pre).any() and not np.asarray(state.y_post).any()


# --------------------------------------------------- learning a word ---

WORD = [3, 7, 11, 20]  # the input channels the word drives
ON, PERIOD = 20, 50  # each presentation: 20 steps of stimulus, 30 of rest


@functools.cache
def word_experiment():
    """50 presentations of one word to a 10k-neuron brain with STDP and
    synaptic scaling (a_plus raised above a_minus so that co-active neurons
    potentiate). Returns the weights before/after, the driven set and the
    wiring, plus a control run without the word."""
    config = BrainConfig(
        n_neurons=10_000,
        input_channels=32,
        io_fraction=0.3,
        plasticity=True,
        a_plus=0.001,
        a_minus=0.0005,
        synaptic_scaling=True,
    )
    n = config.n_neurons
    wiring, state = brain.init_brain(config, seed=0)
    word = np.zeros((PERIOD, config.input_channels), np.float32)
    word[:ON, WORD] = 1.0
    quiet = np.zeros_like(word)
    for _ in range(40):  # let the weights settle under STDP + scaling first
        state, _ = brain.burst(config, wiring, state, quiet, length=PERIOD)
    # Who does the word drive? One presentation, plasticity off, every neuron recorded.
    probe = config.replace(plasticity=False, record_spikes=n)
    _, m = brain.burst(probe, wiring, jax.tree.map(jnp.copy, state), word, length=PERIOD)
    raster = np.asarray(m.raster, np.float32)
    evoked = raster[:ON].mean(0) - raster[ON:].mean(0)  # rate in the stimulus minus rest
    driven = np.zeros(n, bool)
    driven[np.argsort(-evoked)[: len(WORD) * config.input_group]] = True
    elevated = evoked > 0.05
    w0 = np.asarray(state.weights).reshape(n, config.fan_in)
    control = jax.tree.map(jnp.copy, state)
    for _ in range(50):
        state, _ = brain.burst(config, wiring, state, word, length=PERIOD)
        control, _ = brain.burst(config, wiring, control, quiet, length=PERIOD)
    w1 = np.asarray(state.weights).reshape(w0.shape)
    wc = np.asarray(control.weights).reshape(w0.shape)
    return config, np.asarray(wiring.pre), driven, elevated, w0, w1, wc


def test_a_word_presented_50_times_strengthens_the_synapses_among_its_neurons():
    config, pre, driven, elevated, w0, w1, wc = word_experiment()
    g = config.input_group
    stimulated = np.zeros_like(driven)
    for c in WORD:
        stimulated[c * g : (c + 1) * g] = True
    assert (driven & stimulated).sum() >= 0.9 * driven.sum()  # the measure finds the word's neurons
    post = np.broadcast_to(np.arange(config.n_neurons)[:, None], pre.shape)
    among = driven[pre] & driven[post]  # pre AND post driven by the word
    # untouched: neither end responds to the word, and the postsynaptic neuron
    # has no driven input (synaptic scaling rescales whole rows)
    clean_row = ~driven[pre].any(axis=1)
    untouched = ~elevated[pre] & ~elevated[post] & clean_row[:, None]
    assert among.sum() > 200 and untouched.sum() > 20_000

    gain = w1[among].mean() - w0[among].mean()
    assert gain > 0.2 * w0[among].mean()  # observed: +64%
    assert wc[among].mean() == pytest.approx(w0[among].mean(), rel=0.05)  # no word, no gain

    change = (w1 - w0)[untouched]
    noise = change.std() / np.sqrt(change.size)  # standard error of the mean change
    assert abs(change.mean()) < 4 * noise
    assert abs(change.mean()) < 0.02 * gain


def test_deferred_ltp_equals_stdp_step_over_long_silences():
    """120 steps of given spikes: `deferred_step` (LTP replayed at the pre's
    next spike or its round-robin turn) then `flush` == `stdp_step` at every
    step, bit for bit, with neurons silent for longer than the history."""
    config = BrainConfig(
        n_neurons=1500, fan_in=16, plasticity=True, a_plus=0.01, a_minus=0.012, propagation="event"
    )
    wiring, state = brain.init_brain(config, seed=5)
    n, rng = config.n_neurons, np.random.default_rng(5)
    quiet = np.arange(n) < 300  # silent for steps 10..100: windows past HISTORY
    w_eager = w_lazy = synapses.to_pre_major(wiring, state.weights)
    x_e = y_e = x_l = y_l = jnp.zeros(n, jnp.float32)
    lag = plasticity.Lag(jnp.zeros(n, jnp.uint32), jnp.zeros(n, jnp.int32), x_l)

    def fence(t):  # as in a step (a run-time predicate, else XLA folds the cond): no FMA on CPUs
        return lambda tree: brain.materialize(tree, t)

    @jax.jit
    def eager(w, x, y, spikes, ids, t):
        return plasticity.stdp_step(config, wiring, w, x, y, spikes, ids, pre_major=True, fence=fence(t))

    @jax.jit
    def lazy(w, x, y, spikes, ids, count, lag, t):
        return plasticity.deferred_step(config, wiring, w, x, y, spikes, ids, count, lag, t, fence(t))

    for t in range(120):
        fired = rng.random(n) < 0.08
        fired[quiet] &= not 10 <= t < 100
        spikes = jnp.asarray(fired.astype(np.uint8))
        ids, count = synapses.spike_list(spikes, n)
        w_eager, x_e, y_e = eager(w_eager, x_e, y_e, spikes, ids, t)
        w_lazy, x_l, y_l, lag = lazy(w_lazy, x_l, y_l, spikes, ids, count, lag, t)
        assert int(np.asarray(lag.pending).max()) < plasticity.HISTORY
    assert not np.array_equal(w_lazy, w_eager)  # LTP was pending ...
    w_lazy = jax.jit(lambda w, lag, t: plasticity.flush(config, wiring, w, lag, fence(t)))(w_lazy, lag, 120)
    np.testing.assert_array_equal(w_lazy, w_eager)  # ... and is the same once applied
    np.testing.assert_array_equal(x_l, x_e)
    w0 = np.asarray(synapses.to_pre_major(wiring, state.weights))
    assert (np.asarray(w_eager) != w0).mean() > 0.5
