"""The GPU kernels (jbrain/kernels.py), run through Pallas's interpreter on the
CPU: the fused gather+STDP update equals `plasticity.stdp_step` (bit for bit
without scaling) and its current equals the XLA gather of the updated
weights; the spike-list kernel lists what XLA's list holds; the event-STDP
kernel equals `stdp_step(pre_major=True)` bit for bit; the deferred-STDP
kernel equals its XLA twin (`plasticity._replay_rows`) bit for bit."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jbrain import brain, kernels, plasticity, synapses
from jbrain.config import BrainConfig


def setup(n: int, k: int, rate: float, seed: int, **flags):
    config = BrainConfig(n_neurons=n, fan_in=k, **flags)
    wiring, state = brain.init_brain(config, seed=seed)
    rng = np.random.default_rng(seed)
    spikes = jnp.asarray((rng.random(n) < rate).astype(np.uint8))
    return config, wiring, np.asarray(state.weights), spikes, rng


@pytest.mark.parametrize("masked_load", [True, False])
@pytest.mark.parametrize("scaling", [False, True])
@pytest.mark.parametrize("n,k,rate", [(3000, 32, 0.05), (1001, 8, 0.3)])
def test_fused_stdp_equals_stdp_step(n, k, rate, scaling, masked_load, monkeypatch):
    monkeypatch.setattr(kernels, "MASKED_LOAD", masked_load)
    kernels.gather_stdp.clear_cache()  # the flag is read at trace time
    config, wiring, w, spikes, rng = setup(
        n, k, rate, seed=7, plasticity=True, a_plus=0.01, a_minus=0.012, synaptic_scaling=scaling
    )
    x = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    y = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    ids, _ = synapses.spike_list(spikes, n)  # room for every spike
    w_ref, x_ref, y_ref = plasticity.stdp_step(config, wiring, jnp.asarray(w), x, y, spikes, ids)
    ltp, ltd, x_new, y_new = plasticity.trace_step(config, x, y, spikes)
    acc, w_new = kernels.gather_stdp(
        wiring.pre, jnp.asarray(w), synapses.pack_spikes(spikes), ltp, ltd,
        w_max=config.w_max, scaling=scaling, interpret=True,
    )  # fmt: skip
    changed = np.asarray(w_ref) != w
    assert changed.mean() > 0.04  # LTP rows and LTD columns both moved weights
    if scaling:  # row sums may be added in another order: last-bit differences
        np.testing.assert_allclose(w_new, w_ref, rtol=1e-6, atol=1e-9)
    else:
        np.testing.assert_array_equal(w_new, w_ref)
    np.testing.assert_array_equal(x_new, x_ref)
    np.testing.assert_array_equal(y_new, y_ref)
    # the current is W' @ s with the updated weights
    np.testing.assert_array_equal(synapses.from_fixed(acc), synapses.propagate_gather(wiring, w_new, spikes))


def test_kernel_only_on_gpus_with_power_of_two_fan_in():
    on_gpu = kernels.jax.default_backend() == "gpu"
    assert kernels.use_kernels(32) == on_gpu
    assert not kernels.use_kernels(12)  # a Triton block is (ROWS, K): K must be a power of two


def test_which_configs_build_a_spike_list():
    """Only those can overflow it, so only their bursts keep their input (Session re-runs)."""
    on_gpu = brain.jax.default_backend() == "gpu"
    assert brain.uses_spike_list(BrainConfig(n_neurons=1000, propagation="event"))
    assert not brain.uses_spike_list(BrainConfig(n_neurons=1000, propagation="gather"))
    assert not brain.uses_spike_list(BrainConfig(n_neurons=1000, propagation="bcoo"))
    plastic = BrainConfig(n_neurons=1000, propagation="gather", plasticity=True)
    assert brain.uses_spike_list(plastic) == (not on_gpu)  # GPUs: the fused kernel
    assert brain.uses_spike_list(plastic.replace(fan_in=12))  # no kernel for K = 12


@pytest.mark.parametrize("n,rate,capacity", [(5000, 0.05, 500), (4099, 0.4, 4099), (3000, 0.05, 60)])
def test_spike_list_kernel_lists_the_neurons_that_fired(n, rate, capacity):
    spikes = jnp.asarray((np.random.default_rng(n).random(n) < rate).astype(np.uint8))
    raw, count = kernels.spike_list(spikes, capacity=capacity, interpret=True)
    ids, count_xla = synapses.spike_list(spikes, capacity)
    fired = np.flatnonzero(np.asarray(spikes))
    assert int(count) == int(count_xla) == len(fired)  # counted in full, even past the capacity
    got = np.asarray(kernels.listed(raw, count, n))
    assert got.shape == (capacity,)
    kept = min(len(fired), capacity)
    # on a GPU the order is free; every listed id fired, none twice, the tail is padding
    assert set(got[:kept]) <= set(fired) and len(set(got[:kept])) == kept
    np.testing.assert_array_equal(got[kept:], n)
    # the interpreter runs programs in order, so there it is XLA's list exactly
    np.testing.assert_array_equal(got, ids)


@pytest.mark.parametrize("n,k,rate", [(3000, 32, 0.05), (1001, 12, 0.3)])
def test_event_stdp_kernel_equals_stdp_step(n, k, rate):
    config, wiring, w, spikes, rng = setup(
        n, k, rate, seed=3, plasticity=True, a_plus=0.01, a_minus=0.012, propagation="event"
    )
    w_pre = synapses.to_pre_major(wiring, jnp.asarray(w))
    x = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    y = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    ids, _ = synapses.spike_list(spikes, n)
    w_ref, _, _ = plasticity.stdp_step(config, wiring, w_pre, x, y, spikes, ids, pre_major=True)
    ltp, ltd, _, _ = plasticity.trace_step(config, x, y, spikes)
    raw, count = kernels.spike_list(spikes, capacity=n, interpret=True)
    w_new = kernels.event_stdp(
        wiring.pre, wiring.out_post, jnp.array(w_pre), spikes, raw, count, ltp, ltd,
        w_max=config.w_max, interpret=True,
    )  # fmt: skip
    changed = np.asarray(w_ref) != np.asarray(w_pre)
    assert changed.mean() > 0.04  # LTP rows and LTD rows both moved weights
    np.testing.assert_array_equal(w_new, w_ref)
    # the synapses of a pair that both fired got LTP then LTD, from the out-row
    both = np.asarray(spikes)[np.asarray(wiring.out_post)].reshape(-1) & np.repeat(np.asarray(spikes), k)
    assert both.any() and changed[both.astype(bool)].any()


@pytest.mark.parametrize("a_plus", [0.01, -0.002])
def test_replay_stdp_kernel_equals_xla(a_plus):
    """One `kernels.replay_stdp` call (listed rows: replay + LTD; a block of
    rows that did not fire: replay) == XLA's two passes; and the burst-end
    flush (every row, no LTD) == XLA's."""
    n, k = 2000, 16
    config, wiring, w, _, rng = setup(
        n, k, 0.1, seed=4, plasticity=True, a_plus=a_plus, a_minus=0.012, propagation="event", stdp="deferred"
    )
    hist = jnp.asarray(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32))
    pending = jnp.asarray(rng.integers(0, plasticity.HISTORY, n).astype(np.int32))
    anchor = jnp.asarray(rng.exponential(1.0, n).astype(np.float32))
    ltd = jnp.asarray((0.012 * rng.exponential(1.0, n)).astype(np.float32))
    fired = rng.random(n) < 0.1
    ids = np.concatenate([rng.permutation(np.flatnonzero(fired)), np.zeros(40, int)]).astype(np.int32)
    start, size, lag = 700, 63, plasticity.Lag(hist, pending, anchor)
    xla = lambda w, rows, count, **kw: plasticity._replay_rows(  # noqa: E731
        config, wiring, w, hist, count, anchor, jnp.asarray(rows, jnp.int32), lambda t: t, **kw
    )
    block = np.arange(start, start + size)
    want = xla(jnp.asarray(w), np.where(fired[block], n, block), pending + 1)
    want = xla(want, np.where(np.arange(ids.size) < fired.sum(), ids, n), pending + 1, ltd=ltd)
    got = plasticity._kernel(
        config, wiring, jnp.asarray(w), lag, spikes=jnp.asarray(fired, jnp.uint8), ltd=ltd,
        ids=jnp.asarray(ids), n_ids=jnp.int32(fired.sum()), start=jnp.int32(start), block=size, extra=1,
        interpret=True,
    )  # fmt: skip
    assert (np.asarray(want) != w).mean() > 0.02
    np.testing.assert_array_equal(got, want)
    every = np.arange(n)
    want = xla(jnp.asarray(w), every, pending)
    got = plasticity._kernel(
        config, wiring, jnp.asarray(w), lag, spikes=jnp.zeros(n, jnp.uint8), ltd=jnp.zeros(n),
        ids=jnp.asarray(every, jnp.int32), n_ids=jnp.int32(n), start=jnp.int32(0), block=0, extra=0,
        interpret=True,
    )  # fmt: skip
    assert (np.asarray(want) != w).mean() > 0.1
    np.testing.assert_array_equal(got, want)
