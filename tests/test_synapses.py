"""Synapses (jbrain/synapses.py): the structure each connectivity rule
wires, and every propagation path against the BCOO reference W @ s."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small, tiny

from jbrain import brain, synapses
from jbrain.circuit import Circuit, Controller, Placement, Population, Projection
from jbrain.state import STATUS_SPIKE_OVERFLOW


@pytest.fixture(scope="module")
def seed_brain():
    """The seed circuit (2,000 neurons, K = 32): its wiring and weights."""
    circuit, _, wiring, state = tiny(seed=5)
    return circuit, wiring.projections["W"], state.projections["W"].weights


def _dense(wiring, weights, n_pre: int) -> np.ndarray:
    """(N_post, N_pre) W, duplicates summed."""
    return np.asarray(synapses.to_bcoo(wiring, weights, n_pre).todense())


# ------------------------------------------------------------ wiring rules --


def test_random_wiring_between_equal_sizes_has_fixed_fan_in_and_fan_out(seed_brain):
    circuit, wiring, _ = seed_brain
    n, k = circuit.n, circuit.projections[0].fan_in
    pre, out_post = np.asarray(wiring.pre), np.asarray(wiring.out_post)
    assert pre.shape == out_post.shape == (n, k)
    assert (pre != np.arange(n)[:, None]).all()  # no self-synapses
    for kk in range(k):  # each column is a permutation and out_post inverts it
        assert np.array_equal(np.sort(pre[:, kk]), np.arange(n))
        assert np.array_equal(out_post[pre[:, kk], kk], np.arange(n))
    dense = _dense(wiring, jnp.ones(n * k), n)
    assert np.array_equal(dense.sum(axis=1), np.full(n, k))  # fan-in
    assert np.array_equal(dense.sum(axis=0), np.full(n, k))  # fan-out


@pytest.mark.parametrize("n", [1, 2, 1000, 65_537])
def test_the_wiring_permutation_is_jax_random_permutation(n):
    """The seed's wiring sorts in NumPy on CPUs (`_permutation`): the same
    numbers as jax.random.permutation, so a seed still gives its brain
    (ties of the 32-bit sort keys are kept in order, as jax's stable sort
    keeps them: at n = 65,537, seed 1's second round has a tie)."""
    for seed in range(3):
        key = jax.random.key(seed)
        want = np.asarray(jax.random.permutation(key, n))
        assert np.array_equal(np.asarray(synapses._permutation(key, n)), want)
        batched = jax.vmap(lambda k: synapses._permutation(k, n))(jax.random.split(key, 3))
        for row, k in zip(np.asarray(batched), jax.random.split(key, 3), strict=True):
            assert np.array_equal(row, np.asarray(jax.random.permutation(k, n)))


def test_random_wiring_between_populations_has_fixed_fan_in_from_the_pre():
    """ei: E (1,600) -> I (400) with K_E = 26 and I -> E with K_I = 6; no
    fixed fan-out (no out-table: the event path does not apply)."""
    circuit, _, wiring, _ = tiny(small(preset="ei", controller=False))
    assert [(q.name, q.fan_in) for q in circuit.projections] == [("EE", 26), ("EI", 26), ("IE", 6), ("II", 6)]
    ei, ie = wiring.projections["EI"], wiring.projections["IE"]
    assert ei.pre.shape == (400, 26) and ie.pre.shape == (1600, 6)
    assert ei.out_post is None and ie.out_post is None
    for pw, n_pre in ((ei, 1600), (ie, 400)):
        pre = np.asarray(pw.pre)
        assert pre.min() >= 0 and pre.max() < n_pre
        assert len(np.unique(pre)) > 0.9 * min(n_pre, pre.size)  # spread over the whole pre population
    assert wiring.projections["EE"].out_post.shape == (1600, 26)  # equal sizes: a fixed fan-out
    assert wiring.projections["II"].out_post.shape == (400, 6)


def _rules_circuit() -> Circuit:
    """A hand-made circuit with one projection per rule: a 10 x 15 rectangle
    at (5, 7) of a 20 x 30 sheet with radius wiring on itself, one-to-one,
    all-to-all groups of 6, bernoulli p = 0.05 from 400 to 300 neurons and
    40 distinct partners of 400 for each of 150."""
    sheet = Population("S", 150, placement=Placement("rect", 5, 7, 10, 15))
    a, b = Population("A", 150), Population("B", 300)
    c = Population("C", 400, "I")
    return Circuit(
        (sheet, a, b, c),
        (
            Projection("radius", "S", "S", "radius", fan_in=12, radius=3.0),
            Projection("one", "S", "A", "one_to_one", fan_in=1),
            Projection("groups", "A", "A", "groups", fan_in=6, group=6),
            Projection("bern", "C", "B", "bernoulli", fan_in=48, p=0.05, w_lo=0.02, w_hi=0.04, w_max=0.04),
            Projection("dist", "C", "A", "distinct", fan_in=40),
        ),
        sheet=(20, 30),
        controller=Controller(False),
    )


@pytest.fixture(scope="module")
def rules():
    circuit = _rules_circuit()
    wiring, state = brain.init_brain(circuit, seed=3)
    return circuit, wiring.projections, {k: np.asarray(v.weights) for k, v in state.projections.items()}


def test_radius_wiring_stays_within_the_radius_on_the_sheet(rules):
    """Every partner lies within the radius (plus half a cell per axis, as
    offsets round to cells) on the rectangle's torus, never the cell itself,
    and partners fill the disk: mean distance ~ 2R/3, most cells drawn."""
    circuit, wiring, _ = rules
    q, p = circuit.projections[0], circuit.population("S").placement
    pre = np.asarray(wiring["radius"].pre)
    assert pre.shape == (150, 12)
    post = np.broadcast_to(np.arange(150)[:, None], pre.shape)
    dr = (pre // p.width - post // p.width + p.height // 2) % p.height - p.height // 2
    dc = (pre % p.width - post % p.width + p.width // 2) % p.width - p.width // 2
    dist = np.hypot(dr, dc)
    assert dist.max() <= q.radius + np.sqrt(0.5)
    assert (dist > 0).all()
    assert dist.mean() == pytest.approx(2 * q.radius / 3, rel=0.15)
    disk = {(r, c) for r in range(-3, 4) for c in range(-3, 4) if 0 < np.hypot(r, c) <= 2.5}
    drawn = set(zip(dr.reshape(-1).tolist(), dc.reshape(-1).tolist(), strict=True))
    assert len(disk & drawn) == len(disk)


def test_one_to_one_and_groups_wiring(rules):
    circuit, wiring, _ = rules
    one = np.asarray(wiring["one"].pre)
    np.testing.assert_array_equal(one, np.arange(150)[:, None])
    groups = wiring["groups"]
    dense = _dense(groups, jnp.ones(150 * 6), 150)
    block = np.kron(np.eye(25), np.ones((6, 6)))  # all-to-all inside each group, self included
    np.testing.assert_array_equal(dense, block)
    assert groups.out_post is None


def test_distinct_rows_draw_different_partners_uniformly(rules):
    """Rule "distinct": every post hears 40 different pres of the 400, and
    every pre is drawn about 150 * 40 / 400 = 15 times (binomial spread)."""
    _, wiring, _ = rules
    pre = np.asarray(wiring["dist"].pre)
    assert pre.shape == (150, 40) and pre.min() >= 0 and pre.max() < 400
    assert all(len(set(row)) == 40 for row in pre.tolist())
    drawn = np.bincount(pre.reshape(-1), minlength=400)
    assert drawn.mean() == 15 and drawn.std() == pytest.approx(np.sqrt(15 * 0.9), rel=0.25)
    assert wiring["dist"].out_post is None


def test_bernoulli_rows_are_distinct_draws_padded_with_zero_weights(rules):
    """Post i has c_i ~ Binomial(400, 0.05) distinct partners (mean 20,
    variance 19) in its first c_i slots; the padding slots point at pre 0
    with weight 0 (so a spike of neuron 0 adds nothing through them)."""
    circuit, wiring, weights = rules
    pre = np.asarray(wiring["bern"].pre)
    w = weights["bern"].reshape(300, 48)
    valid = w != 0  # real weights ~ U[0.02, 0.04)
    assert (w[valid] >= 0.02).all() and (w[valid] < 0.04).all()
    counts = valid.sum(axis=1)
    assert (valid == (np.arange(48)[None, :] < counts[:, None])).all()  # real slots first
    assert (pre[~valid] == 0).all()
    for i in range(300):
        assert len(set(pre[i, : counts[i]])) == counts[i]
    assert counts.mean() == pytest.approx(20, abs=4 * np.sqrt(19 / 300))
    assert counts.var() == pytest.approx(19, rel=0.35)
    assert counts.max() < 48  # the width is never reached
    # neuron 0 fires: the current is its real synapses' weights only
    s = jnp.zeros(400, jnp.uint8).at[0].set(1)
    got = np.asarray(synapses.propagate_gather(wiring["bern"], jnp.asarray(weights["bern"]), s, "cpu"))
    want = np.where(valid & (pre == 0), w, 0.0).sum(axis=1)
    np.testing.assert_allclose(got, want, atol=2**-19)
    assert (got > 0).sum() == (valid & (pre == 0)).any(axis=1).sum() > 0


def test_weights_are_born_uniform_in_w_lo_w_hi_or_constant(seed_brain):
    circuit, _, weights = seed_brain
    q, w = circuit.projections[0], np.asarray(weights)
    assert w.min() >= q.w_lo and w.max() < q.w_hi
    assert w.mean() == pytest.approx((q.w_lo + q.w_hi) / 2, rel=0.02)
    _, _, _, state = tiny(small(w_init="constant", w_max=0.03))
    np.testing.assert_array_equal(np.asarray(state.projections["W"].weights), np.float32(0.03))


# ---------------------------------------------------------------- paths --


@pytest.mark.parametrize("frac", [0.0, 0.01, 0.05, 0.2, 1.0])
def test_paths_match_bcoo(seed_brain, frac):
    """gather (bytes on CPUs, a bitmask on GPUs) == BCOO @ s to float
    rounding; the event path == gather bit for bit while the list holds the
    spikes; past its capacity exactly the listed (lowest-id) spikes, and the
    overflow bit tells the host."""
    circuit, wiring, _ = seed_brain
    n, k, capacity = circuit.n, circuit.projections[0].fan_in, 200
    key = jax.random.key(int(frac * 1000))
    spikes = (jax.random.uniform(key, (n,)) < frac).astype(jnp.uint8)
    weights = jax.random.uniform(jax.random.fold_in(key, 1), (n * k,)) * 0.05
    ref = np.asarray(synapses.propagate_bcoo(wiring, weights, spikes))
    gather = synapses.propagate_gather(wiring, weights, spikes, "cpu")
    np.testing.assert_allclose(np.asarray(gather), ref, rtol=0, atol=1e-5)
    assert np.array_equal(
        np.asarray(gather), np.asarray(synapses.propagate_gather(wiring, weights, spikes, "gpu"))
    )
    ids, count = synapses.spike_list(spikes, capacity)
    event = synapses.propagate_event(wiring, synapses.to_pre_major(wiring, weights), ids)
    status = synapses.overflow_status(count, capacity)
    assert int(count) == int(spikes.sum())
    overflow = int(count) > capacity
    assert int(status) == (STATUS_SPIKE_OVERFLOW if overflow else 0)
    if not overflow:
        assert np.array_equal(np.asarray(event), np.asarray(gather))  # fixed point: bit-identical
    else:
        listed = jnp.zeros_like(spikes).at[ids].set(1, mode="drop")
        assert int(listed.sum()) == capacity
        assert np.array_equal(np.asarray(ids), np.flatnonzero(np.asarray(spikes))[:capacity])
        want = synapses.propagate_gather(wiring, weights, listed, "cpu")
        assert np.array_equal(np.asarray(event), np.asarray(want))


def test_pre_major_order_is_the_out_synapse_rows(seed_brain):
    """Entry j*K + k of the presynaptic order is out-synapse (j, k): synapse
    (out_post[j, k], k) of the BCOO, whose pre is j; to_post_major inverts
    it exactly."""
    circuit, wiring, _ = seed_brain
    n, k = circuit.n, circuit.projections[0].fan_in
    weights = jax.random.uniform(jax.random.key(3), (n * k,))
    w_pre = np.asarray(synapses.to_pre_major(wiring, weights)).reshape(n, k)
    out_post, pre = np.asarray(wiring.out_post), np.asarray(wiring.pre)
    slot = np.arange(k)[None, :]
    np.testing.assert_array_equal(pre[out_post, slot], np.broadcast_to(np.arange(n)[:, None], (n, k)))
    np.testing.assert_array_equal(w_pre, np.asarray(weights)[out_post * k + slot])
    back = synapses.to_post_major(wiring, jnp.asarray(w_pre.reshape(-1)))
    assert np.array_equal(np.asarray(back), np.asarray(weights))


def test_spike_list_is_the_ascending_nonzero_ids_padded_with_n():
    spike_list = jax.jit(synapses.spike_list, static_argnums=1)
    for n in (33, 1000, 70_001):
        for frac in (0.0, 0.05, 0.6):
            s = (jax.random.uniform(jax.random.key(n), (n,)) < frac).astype(jnp.uint8)
            cap = max(1, n // 10)
            ids, count = spike_list(s, cap)
            (ref,) = jnp.nonzero(s, size=cap, fill_value=n)
            assert np.array_equal(np.asarray(ids), np.asarray(ref))
            assert int(count) == int(s.sum())


def test_neighbour_input_ring_and_sheet():
    """Ring: w/2 to each of 2 neighbours; rectangle: w/8 to each of 8, on a
    torus (a corner's neighbours wrap around)."""
    sheet = Population("p", 42, placement=Placement("rect", 0, 0, 6, 7), neighbour_weight=0.08)
    s = np.zeros((6, 7), np.uint8)
    s[0, 0] = 1
    got = np.asarray(synapses.neighbour_input(sheet, jnp.asarray(s.reshape(-1)))).reshape(6, 7)
    expect = np.zeros((6, 7))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                expect[dy % 6, dx % 7] = 0.08 / 8
    np.testing.assert_allclose(got, expect, atol=1e-7)
    ring = Population("r", 50, neighbour_weight=0.08)
    r = np.zeros(50, np.uint8)
    r[0] = 1
    got = np.asarray(synapses.neighbour_input(ring, jnp.asarray(r)))
    assert got[1] == got[49] == pytest.approx(0.04) and got.sum() == pytest.approx(0.08)
    # the CPU's padded shifts give the roll's numbers, the wrapped ends included
    for fired in (r, np.roll(r, -1), (np.random.default_rng(0).random(50) < 0.3).astype(np.uint8)):
        rolled = synapses.neighbour_input(ring, jnp.asarray(fired), "gpu")
        np.testing.assert_array_equal(synapses.neighbour_input(ring, jnp.asarray(fired), "cpu"), rolled)
