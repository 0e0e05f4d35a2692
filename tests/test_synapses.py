"""Every propagation path against the BCOO reference W @ s; wiring invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbrain import brain, synapses
from jbrain.config import BrainConfig
from jbrain.session import Session
from jbrain.state import STATUS_SPIKE_OVERFLOW


@pytest.fixture(scope="module")
def small_brain():
    cfg = BrainConfig(n_neurons=5000, fan_in=16, propagation="event", spike_buffer=0.1)
    wiring, state = brain.init_brain(cfg, seed=5)
    return cfg, wiring, state


def test_wiring_is_fixed_fan_in_and_fan_out(small_brain):
    cfg, wiring, _ = small_brain
    n, k = cfg.n_neurons, cfg.fan_in
    pre, out_post = np.asarray(wiring.pre), np.asarray(wiring.out_post)
    assert pre.shape == out_post.shape == (n, k)
    assert (pre != np.arange(n)[:, None]).all()  # no self-synapses
    for kk in range(k):  # each column is a permutation and out_post inverts it
        assert np.array_equal(np.sort(pre[:, kk]), np.arange(n))
        assert np.array_equal(out_post[pre[:, kk], kk], np.arange(n))
    bcoo = synapses.to_bcoo(wiring, jnp.ones(n * k))
    dense = np.asarray(bcoo.todense())
    assert np.array_equal(dense.sum(axis=1), np.full(n, k))  # fan-in
    assert np.array_equal(dense.sum(axis=0), np.full(n, k))  # fan-out


@pytest.mark.parametrize("frac", [0.0, 0.01, 0.05, 0.2, 1.0])
def test_paths_match_bcoo(small_brain, frac):
    cfg, wiring, state = small_brain
    n = cfg.n_neurons
    key = jax.random.key(int(frac * 1000))
    spikes = (jax.random.uniform(key, (n,)) < frac).astype(jnp.uint8)
    weights = jax.random.uniform(jax.random.fold_in(key, 1), (n * cfg.fan_in,)) * cfg.w_max
    ref = np.asarray(synapses.to_bcoo(wiring, weights) @ spikes.astype(jnp.float32))
    gather = synapses.propagate_gather(wiring, weights, spikes)
    ids, count = synapses.spike_list(spikes, cfg.spike_capacity)
    event = synapses.propagate_event(wiring, synapses.to_pre_major(wiring, weights), ids)
    status = synapses.overflow_status(count, cfg.spike_capacity)
    np.testing.assert_allclose(np.asarray(gather), ref, rtol=0, atol=1e-5)
    assert int(count) == int(spikes.sum())
    overflow = int(count) > cfg.spike_capacity
    assert bool(int(status) & STATUS_SPIKE_OVERFLOW) == overflow
    if not overflow:
        assert np.array_equal(np.asarray(event), np.asarray(gather))  # fixed point: bit-identical
    else:  # exactly the listed (lowest-id) spikes, and the bit tells the host
        listed = jnp.zeros_like(spikes).at[ids].set(1, mode="drop")
        assert int(listed.sum()) == cfg.spike_capacity
        assert np.array_equal(
            np.asarray(event), np.asarray(synapses.propagate_gather(wiring, weights, listed))
        )


def test_pre_major_order_is_the_out_synapse_rows(small_brain):
    """Entry j*K + k of the presynaptic order is out-synapse (j, k), which ends
    on out_post[j, k]; to_post_major inverts it exactly."""
    cfg, wiring, _ = small_brain
    n, k = cfg.n_neurons, cfg.fan_in
    weights = jax.random.uniform(jax.random.key(3), (n * k,))
    w_pre = np.asarray(synapses.to_pre_major(wiring, weights)).reshape(n, k)
    dense = np.asarray(synapses.to_bcoo(wiring, weights).todense())  # (post, pre)
    out_post = np.asarray(wiring.out_post)
    for j in (0, 17, n - 1):
        np.testing.assert_array_equal(w_pre[j], dense[out_post[j], j])
    back = synapses.to_post_major(wiring, jnp.asarray(w_pre.reshape(-1)))
    assert np.array_equal(np.asarray(back), np.asarray(weights))


def test_spike_list_matches_nonzero():
    for n in (33, 1000, 70_001):
        for frac in (0.0, 0.05, 0.6):
            s = (jax.random.uniform(jax.random.key(n), (n,)) < frac).astype(jnp.uint8)
            cap = max(1, n // 10)
            ids, count = synapses.spike_list(s, cap)
            (ref,) = jnp.nonzero(s, size=cap, fill_value=n)
            assert np.array_equal(np.asarray(ids), np.asarray(ref))
            assert int(count) == int(s.sum())


@pytest.mark.parametrize("plasticity", [False, True])
def test_overflow_is_rerun_exactly_with_a_larger_list(plasticity):
    """A burst that overflows the spike list sets the bit; Session re-runs it
    with a list that fits, and the brain is exactly the one whose list never
    overflowed (no spike is dropped)."""
    base = dict(n_neurons=3000, fan_in=16, noise_sd=0.3, bias=0.2, propagation="event", plasticity=plasticity)
    tight, roomy = BrainConfig(**base, spike_buffer=0.02), BrainConfig(**base, spike_buffer=1.0)
    wiring, s = brain.init_brain(tight, seed=1)
    s_tight, _ = brain.burst(tight, wiring, jax.tree.map(jnp.copy, s), None, length=50)
    assert int(s_tight.status) & STATUS_SPIKE_OVERFLOW  # this brain fires > 2% per step

    session = Session.new(tight, seed=1)
    ref = Session.new(roomy, seed=1)
    for _ in range(3):
        got, want = session.run(50), ref.run(50)
        assert np.array_equal(got["spikes"], want["spikes"])
    assert session.config.spike_buffer > 0.02 and int(session.state.status) == 0
    for name in ("v", "theta", "weights", "x_pre", "spikes"):
        assert np.array_equal(getattr(session.state, name), getattr(ref.state, name)), name
    peak = int(np.max(got["spikes"]))
    assert (
        len(session.warnings) == 1
        and "the burst was re-run exactly with --spike_buffer=" in session.warnings[0]
    )
    assert session.config.spike_capacity >= peak


def test_neighbour_input_sheet_is_8_neighbourhood():
    cfg = BrainConfig(n_neurons=6 * 7, fan_in=2, sheet=(6, 7), output_channels=2)
    s = np.zeros((6, 7), np.uint8)
    s[0, 0] = 1  # a corner: neighbours wrap around the torus
    got = np.asarray(synapses.neighbour_input(cfg, jnp.asarray(s.reshape(-1)))).reshape(6, 7)
    expect = np.zeros((6, 7))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                expect[dy % 6, dx % 7] = cfg.neighbour_weight / 8
    np.testing.assert_allclose(got, expect, atol=1e-7)
    ring = BrainConfig(n_neurons=50, fan_in=2, output_channels=2)
    r = np.zeros(50, np.uint8)
    r[0] = 1
    got = np.asarray(synapses.neighbour_input(ring, jnp.asarray(r)))
    assert got[1] == got[49] == pytest.approx(ring.neighbour_weight / 2) and got.sum() == pytest.approx(
        ring.neighbour_weight
    )
