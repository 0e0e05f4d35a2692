"""The engine: analytic neuron behaviour, modes, reproducibility, compile count."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbrain import brain, homeostasis, neurons
from jbrain.config import BrainConfig
from jbrain.state import ADAPTED, INTEGRATING, REFRACTORY, STATUS_NONFINITE

# A quiet brain: no noise, no bias, no drive, no homeostatic drift.
QUIET = dict(noise_sd=0.0, bias=0.0, osc_amp=0.0, ctrl_gain=0.0, eta_theta=0.0)


def small(**kw) -> BrainConfig:
    return BrainConfig(n_neurons=kw.pop("n_neurons", 2000), **kw)


def test_subthreshold_lif_matches_closed_form():
    """dv = (v_rest - v)/tau + I  =>  v_t = v_inf + (v_0 - v_inf) (1 - 1/tau)^t, v_inf = v_rest + tau I."""
    cfg = small(**QUIET, tau_m=20.0, v_rest=0.1)
    n, current, steps = 64, 0.02, 150  # v_inf = 0.1 + 0.4 = 0.5 < theta = 1
    v0 = jnp.linspace(-0.5, 0.9, n, dtype=jnp.float32)
    v, theta = v0, jnp.ones(n, jnp.float32)
    adapt, refrac, mode = jnp.zeros(n), jnp.zeros(n, jnp.uint8), jnp.zeros(n, jnp.uint8)
    for _ in range(steps):
        v, spikes, adapt, refrac, mode = neurons.neuron_update(
            cfg, v, theta, adapt, refrac, mode, jnp.full(n, current, jnp.float32)
        )
        assert not bool(spikes.any())
    v_inf = 0.1 + 20.0 * current
    expected = v_inf + (np.asarray(v0) - v_inf) * (1 - 1 / 20.0) ** steps
    np.testing.assert_allclose(np.asarray(v), expected, rtol=0, atol=2e-5)


def test_refractory_period_and_modes():
    """A strongly driven neuron spikes once, is REFRACTORY for `refractory` steps,
    fires again, and with enough recent spikes enters ADAPTED (raised threshold)."""
    cfg = small(**QUIET, refractory=3, adapt_on=2.5, adapt_off=1.0, tau_adapt=100.0)
    n = 1
    v, theta = jnp.zeros(n), jnp.ones(n)
    adapt, refrac, mode = jnp.zeros(n), jnp.zeros(n, jnp.uint8), jnp.zeros(n, jnp.uint8)
    spike_steps, modes = [], []
    for t in range(20):
        v, s, adapt, refrac, mode = neurons.neuron_update(
            cfg, v, theta, adapt, refrac, mode, jnp.full(n, 5.0)
        )
        if bool(s[0]):
            spike_steps.append(t)
            assert float(v[0]) == cfg.v_reset
        modes.append(int(mode[0]))
    # period refractory + 1 while the threshold is low enough; then the boost
    # (adapt_boost=0.5 < 5.0) still lets it fire: the spacing never drops below 4
    assert spike_steps[0] == 0
    assert min(np.diff(spike_steps)) == cfg.refractory + 1
    assert modes[0] == REFRACTORY and modes[1] == REFRACTORY and modes[2] == REFRACTORY
    # three spikes put a >= adapt_on: after the refractory period it is ADAPTED
    third = spike_steps[2]
    assert modes[third + cfg.refractory] == ADAPTED
    # with the drive removed the trace decays below adapt_off: back to INTEGRATING
    for _ in range(300):
        v, s, adapt, refrac, mode = neurons.neuron_update(cfg, v, theta, adapt, refrac, mode, jnp.zeros(n))
    assert int(mode[0]) == INTEGRATING


def test_no_input_no_noise_no_spikes():
    cfg = small(**QUIET, neighbour_weight=0.0)
    wiring, state = brain.init_brain(cfg, seed=3)
    state, m = brain.burst(cfg, wiring, state, None, length=300)
    assert int(np.asarray(m.spikes).sum()) == 0
    assert int(state.status) == 0


def test_noise_is_standard_normal_and_keyed():
    key = jnp.array([1, 2], jnp.uint32)
    z = np.asarray(neurons.gaussian_noise(key, jnp.int32(7), 200_000))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    for k, p in ((1, 0.682689), (2, 0.954500), (3, 0.997300)):  # Gaussian mass within k sd
        assert abs(np.mean(np.abs(z) < k) - p) < 4 * math.sqrt(p * (1 - p) / z.size)
    z2 = np.asarray(neurons.gaussian_noise(key, jnp.int32(8), 200_000))
    z3 = np.asarray(neurons.gaussian_noise(jnp.array([1, 3], jnp.uint32), jnp.int32(7), 200_000))
    assert abs(np.corrcoef(z, z2)[0, 1]) < 0.01 and abs(np.corrcoef(z, z3)[0, 1]) < 0.01


def test_controller_and_threshold_homeostasis():
    cfg = small(osc_amp=0.0)
    ctrl, drive = homeostasis.controller_step(cfg, jnp.float32(0.0), jnp.float32(0.0), jnp.int32(0))
    assert float(ctrl) == pytest.approx(cfg.ctrl_gain * cfg.target_rate)  # too quiet: drive up
    ctrl, _ = homeostasis.controller_step(cfg, jnp.float32(0.0), jnp.float32(0.5), jnp.int32(0))
    assert float(ctrl) < 0  # too busy: drive down
    theta = homeostasis.threshold_step(cfg, jnp.ones(2), jnp.array([True, False]))
    np.testing.assert_allclose(
        np.asarray(theta), [1 + cfg.eta_theta * (1 - cfg.target_rate), 1 - cfg.eta_theta * cfg.target_rate]
    )


def _tree_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _concat(ms):
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *ms)


@pytest.mark.parametrize(
    "path, plasticity, stdp",
    [
        ("gather", False, "auto"),
        ("event", False, "auto"),
        ("event", True, "eager"),
        ("event", True, "deferred"),
    ],
)
def test_burst_splits_are_bit_identical(path, plasticity, stdp):
    """1,000 steps as one burst == ten bursts of 100 == 1,000 single steps
    (deferred STDP too: each burst applies what it deferred before it ends)."""
    cfg = small(propagation=path, n_neurons=3000, plasticity=plasticity, stdp=stdp)
    wiring, s0 = brain.init_brain(cfg, seed=11)
    copy = lambda s: jax.tree.map(jnp.copy, s)  # noqa: E731 (bursts donate their input)

    one, m_one = brain.burst(cfg, wiring, copy(s0), None, length=1000)
    s, ms = copy(s0), []
    for _ in range(10):
        s, m = brain.burst(cfg, wiring, s, None, length=100)
        ms.append(m)
    ten, m_ten = s, _concat(ms)
    s, ms = copy(s0), []
    for _ in range(1000):
        s, m = brain.step_jit(cfg, wiring, s)
        ms.append(jax.tree.map(lambda x: np.asarray(x)[None], m))
    single, m_single = s, _concat(ms)

    assert int(np.asarray(m_one.spikes).sum()) > 0
    assert _tree_equal(one, ten) and _tree_equal(one, single)
    assert _tree_equal(m_one, m_ten) and _tree_equal(m_one, m_single)


@pytest.mark.parametrize("plasticity, stdp", [(False, "auto"), (True, "eager"), (True, "deferred")])
def test_event_path_equals_gather_path(plasticity, stdp):
    """The event path (spike list, weights in presynaptic order for the whole
    burst, STDP on that order, applied at once or deferred) gives the gather
    path's brain bit for bit, weights included."""
    event = small(propagation="event", n_neurons=2500, plasticity=plasticity, stdp=stdp)
    gather = event.replace(propagation="gather", stdp="auto")
    wiring, s0 = brain.init_brain(event, seed=12)
    s_ev, m_ev = brain.burst(event, wiring, jax.tree.map(jnp.copy, s0), None, length=300)
    s_ga, m_ga = brain.burst(gather, wiring, jax.tree.map(jnp.copy, s0), None, length=300)
    assert int(np.asarray(m_ev.spikes).sum()) > 0
    assert _tree_equal(s_ev, s_ga) and _tree_equal(m_ev, m_ga)
    changed = np.asarray(s_ev.weights) != np.asarray(s0.weights)
    assert changed.any() == plasticity


def test_seeds():
    cfg = small()
    runs = {}
    for seed in (1, 1, 2):
        wiring, s = brain.init_brain(cfg, seed=seed)
        s, m = brain.burst(cfg, wiring, s, None, length=200)
        runs.setdefault(seed, []).append((s, np.asarray(m.spikes)))
    (a, ma), (b, mb) = runs[1]
    (c, mc) = runs[2][0]
    assert _tree_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(ma, mc)
    assert not np.array_equal(np.asarray(a.v), np.asarray(c.v))


def test_one_compile_for_many_bursts():
    cfg = small(n_neurons=1500)
    wiring, s = brain.init_brain(cfg, seed=0)
    s, _ = brain.burst(cfg, wiring, s, None, length=50)
    before = brain.burst._cache_size()
    for _ in range(25):
        s, _ = brain.burst(cfg, wiring, s, None, length=50)
    assert brain.burst._cache_size() == before


def test_nonfinite_sets_status_bit():
    cfg = small()
    wiring, s = brain.init_brain(cfg, seed=0)
    s = s.replace(v=s.v.at[5].set(jnp.nan))
    s, _ = brain.burst(cfg, wiring, s, None, length=3)
    assert int(s.status) & STATUS_NONFINITE


def test_stimulus_drives_its_input_channel():
    cfg = small(n_neurons=20_000)
    wiring, s = brain.init_brain(cfg, seed=0)
    s, _ = brain.burst(cfg, wiring, s, None, length=200)
    stims = np.zeros((50, cfg.input_channels), np.float32)
    stims[:, 7] = 1.0
    g = cfg.input_group
    rates = []
    for x in (None, stims):
        s2, _ = brain.burst(cfg, wiring, jax.tree.map(jnp.copy, s), x, length=50)
        rates.append(float(np.asarray(s2.adapt[7 * g : 8 * g]).mean()))
    assert rates[1] > 2 * rates[0]


@pytest.mark.parametrize("preset", [dict(n_neurons=20_000), dict(n_neurons=10_000, sheet=(100, 100))])
def test_alive_not_exploding(preset):
    """After 1,000 warm-up steps the 1,000-step moving mean of the rate stays in
    target +- 0.01 for 20,000 steps; never 50 silent steps; never above 50%."""
    cfg = BrainConfig(**preset)
    wiring, s = brain.init_brain(cfg, seed=0)
    s, _ = brain.burst(cfg, wiring, s, None, length=1000)
    rates = []
    for _ in range(20):
        s, m = brain.burst(cfg, wiring, s, None, length=1000)
        rates.append(np.asarray(m.rate))
    r = np.concatenate(rates)
    moving = np.convolve(r, np.ones(1000) / 1000, mode="valid")
    assert abs(moving - cfg.target_rate).max() <= 0.01
    assert r.max() <= 0.5
    silent = np.diff(np.flatnonzero(np.concatenate([[1], r > 0, [1]]))).max() - 1
    assert silent < 50
    assert int(s.status) & STATUS_NONFINITE == 0
    assert math.isfinite(float(s.theta.mean()))
