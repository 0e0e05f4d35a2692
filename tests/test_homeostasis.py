"""Homeostasis (jbrain/homeostasis.py): the controller and the threshold
rule by the numbers, and the rate bands they hold on small brains: the seed
(ring and sheet) with its controller, the `ei` preset without one."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small, tiny

from jbrain import brain, homeostasis
from jbrain.circuit import Circuit, Controller, Neuron, Population
from jbrain.state import STATUS_NONFINITE


def test_controller_integrates_the_rate_error_within_its_limit():
    circuit = small(osc_amp=0.0, ctrl_gain=0.01, ctrl_max=0.02).circuit()
    c = circuit.controller
    ctrl, drive = homeostasis.controller_step(circuit, jnp.float32(0.0), jnp.float32(0.0), jnp.int32(0))
    assert float(ctrl) == pytest.approx(c.gain * c.target_rate) and float(drive) == float(ctrl)  # quiet: up
    ctrl, _ = homeostasis.controller_step(circuit, jnp.float32(0.0), jnp.float32(0.5), jnp.int32(0))
    assert float(ctrl) == pytest.approx(-c.gain * 0.45)  # busy: down
    ctrl, _ = homeostasis.controller_step(circuit, jnp.float32(0.0), jnp.float32(1.0), jnp.int32(0))
    assert float(ctrl) == pytest.approx(-0.0095)
    ctrl, _ = homeostasis.controller_step(circuit, jnp.float32(-0.015), jnp.float32(1.0), jnp.int32(0))
    assert float(ctrl) == pytest.approx(-c.limit)  # clipped at -ctrl_max


def test_controller_drive_oscillates_with_its_period():
    circuit = small(osc_amp=0.01, osc_period=200.0).circuit()
    rate = jnp.float32(circuit.controller.target_rate)  # no error: the drive is the oscillation alone
    for t, want in ((0, 0.0), (50, 0.01), (100, 0.0), (150, -0.01), (250, 0.01)):
        _, drive = homeostasis.controller_step(circuit, jnp.float32(0.0), rate, jnp.int32(t))
        assert float(drive) == pytest.approx(want, abs=1e-6), t


def test_thresholds_move_toward_each_populations_target_and_stay_clipped():
    def neuron(eta):
        return Neuron(eta_theta=eta, theta=1.0, theta_min=0.5, theta_max=1.02)

    circuit = Circuit(
        (Population("A", 2, "E", neuron(0.01), 0.05), Population("B", 2, "I", neuron(0.1), 0.2)),
        controller=Controller(False),
    )
    theta = homeostasis.threshold_step(circuit, jnp.ones(4), jnp.array([True, False, True, False]))
    np.testing.assert_allclose(
        np.asarray(theta), [1.0 + 0.01 * 0.95, 1.0 - 0.01 * 0.05, 1.02, 1.0 - 0.1 * 0.2], rtol=1e-6
    )  # B's first: 1 + 0.1 * 0.8 clipped at theta_max
    theta = homeostasis.threshold_step(circuit, jnp.full(4, 0.5), jnp.zeros(4, bool))
    np.testing.assert_array_equal(np.asarray(theta), 0.5)  # clipped at theta_min


def _rates(circuit, plan, wiring, state, steps: int, burst: int = 1000):
    """(state, (steps, P) per-population rates, (steps,) whole-brain rates)."""
    pops, rates = [], []
    sizes = np.array([p.size for p in circuit.populations])
    for _ in range(steps // burst):
        state, m = brain.burst(circuit, plan, wiring, state, None, length=burst)
        pops.append(np.asarray(m.pop_counts) / sizes)
        rates.append(np.asarray(m.rate))
    return state, np.concatenate(pops), np.concatenate(rates)


def _longest_silence(rate: np.ndarray) -> int:
    return int(np.diff(np.flatnonzero(np.concatenate([[1], rate > 0, [1]]))).max() - 1)


@pytest.mark.parametrize("sheet", [None, (40, 50)], ids=["ring", "sheet"])
def test_seed_brain_holds_its_target_rate(sheet):
    """After 1,000 warm-up steps the 500-step moving mean of the rate stays
    in target +- 0.01 for 3,000 steps; never 50 silent steps; never above 50%."""
    circuit, plan, wiring, state = tiny(small(sheet=sheet))
    state, _, _ = _rates(circuit, plan, wiring, state, 1000)
    state, _, r = _rates(circuit, plan, wiring, state, 3000)
    moving = np.convolve(r, np.ones(500) / 500, mode="valid")
    assert abs(moving - circuit.controller.target_rate).max() <= 0.01
    assert r.max() <= 0.5 and _longest_silence(r) < 50
    assert int(state.status) & STATUS_NONFINITE == 0
    assert math.isfinite(float(state.neurons.theta.mean()))


def test_ei_preset_holds_each_populations_target_rate_without_the_controller():
    """The `ei` preset (2,000 neurons, 20% inhibitory, --controller=false):
    its thresholds fall from 1 to where E and I each fire at the target;
    after 3,000 steps every population's 1,000-step moving mean stays within
    target +- 0.01 for 3,000 steps, and the controller never acted."""
    circuit, plan, wiring, state = tiny(small(preset="ei", controller=False))
    assert [p.name for p in circuit.populations] == ["E", "I"]
    state, _, _ = _rates(circuit, plan, wiring, state, 3000)
    state, pops, r = _rates(circuit, plan, wiring, state, 3000)
    for i, p in enumerate(circuit.populations):
        moving = np.convolve(pops[:, i], np.ones(1000) / 1000, mode="valid")
        assert abs(moving - p.target_rate).max() <= 0.01, p.name
    assert r.max() <= 0.5 and _longest_silence(r) < 50
    assert float(state.homeostasis.ctrl) == 0.0
    assert int(state.status) == 0
