"""jbrain stress: the recovery measures on synthetic traces (exact numbers),
each perturbation on a tiny cortex (it really perturbs), the record's
schema, and the launcher's one-line errors."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from conftest import jbrain_cli, once_per_run, preset_config, small

from jbrain import brain, stress
from jbrain import plan as plans

SP = 0.05  # the set point of the synthetic traces


def _trace(*parts: tuple[int, float]) -> np.ndarray:
    """Concatenated constant stretches (steps, rate)."""
    return np.concatenate([np.full(n, r) for n, r in parts])


# ------------------------------------------------------- the measures --


def test_moving_mean_is_trailing_and_nan_before_a_full_window():
    m = stress.moving_mean(np.arange(6.0), window=3)
    np.testing.assert_allclose(m[2:], [1.0, 2.0, 3.0, 4.0])
    assert np.isnan(m[:2]).all()
    assert np.isnan(stress.moving_mean(np.ones(5), window=200)).all()


def test_recovery_counts_from_the_end_of_the_perturbation():
    # 200 steps of history at the set point, 100 steps at 0.02, then the set point again:
    # the window at end + k holds c = 199 - k low steps (k >= 99), m = 0.05 - 0.03 c / 200,
    # within 10% when c <= 33, i.e. from k = 166 on, and it stays there.
    rate = _trace((200, SP), (100, 0.02), (1000, SP))
    assert stress.recovery_steps(rate, 300, SP) == 166


def test_recovery_must_stay_within_for_500_steps():
    # As above, then a 50-step dip to 0.02 at k = 400..449 (t = 700..749): the moving mean
    # leaves the band for t in [733, 915] (34 or more low steps in its window), so k = 166
    # does not hold for 500 steps; the first that does is t = 916, k = 616.
    rate = _trace((200, SP), (100, 0.02), (400, SP), (50, 0.02), (1050, SP))
    assert rate.size == 1800
    assert stress.recovery_steps(rate, 300, SP) == 616
    # the same dip inside the band (a rate 10% lower) changes nothing
    rate = _trace((200, SP), (100, 0.02), (400, SP), (50, 0.9 * SP), (1050, SP))
    assert stress.recovery_steps(rate, 300, SP) == 166


def test_recovery_is_null_when_never_within_or_not_held_inside_the_window():
    assert stress.recovery_steps(_trace((200, SP), (2000, 1.2 * SP)), 200, SP) is None
    # within from k = 166 (t = 466), but the window ends at t = 965: the hold to t = 966 is unseen
    rate = _trace((200, SP), (100, 0.02), (666, SP))
    assert stress.recovery_steps(rate, 300, SP) is None
    assert stress.recovery_steps(_trace((200, SP), (100, 0.02), (667, SP)), 300, SP) == 166


def test_recovery_is_zero_when_the_rate_never_leaves_the_band():
    assert stress.recovery_steps(_trace((200, SP), (600, 1.05 * SP)), 200, SP) == 0


def test_longest_silence():
    assert stress.longest_silence([1, 0, 0, 3, 0, 0, 0, 2, 0]) == 3
    assert stress.longest_silence([0, 0]) == 2
    assert stress.longest_silence([4, 1]) == 0


def test_summarize_flags_recovered_and_ran_away():
    rate = _trace((200, SP), (100, 0.4), (1300, SP))
    spikes = np.concatenate([np.full(200, -1), np.full(100, 800), np.full(1300, 100)])
    spikes[600:650] = 0
    rate[600:650] = 0.0
    row = stress.summarize("x", rate, spikes, onset=200, start=300, target_rate=SP, target_steps=500)
    assert row["peak_rate"] == pytest.approx(0.4) and row["ran_away"]
    assert row["longest_silence"] == 50
    k = row["recovery_steps"]
    assert k == stress.recovery_steps(rate, 300, SP) and k is not None and k > 500 and not row["recovered"]
    row = stress.summarize("x", rate, spikes, onset=200, start=300, target_rate=SP, target_steps=2000)
    assert row["recovered"]
    assert row["rate_before"] == pytest.approx(SP) and row["rate_during"] == pytest.approx(0.4)


def test_set_point_is_the_size_weighted_target(cortex):
    c = cortex
    pops = tuple(
        dataclasses.replace(p, target_rate=r) for p, r in zip(c.populations, (0.04, 0.09), strict=True)
    )
    c = dataclasses.replace(c, populations=pops)
    assert [p.size for p in c.populations] == [1600, 400]
    assert stress.set_point(c) == pytest.approx((1600 * 0.04 + 400 * 0.09) / 2000)


def test_the_perturbation_list():
    names = [p.name for p in stress.PERTURBATIONS]
    assert names == [
        "input_x10", "drive_off", "exc_weights_x1.5", "exc_weights_x0.5",
        "inh_silenced_20pct", "neurons_removed_10pct",
    ]  # fmt: skip
    assert [p.steps for p in stress.PERTURBATIONS] == [200, 500, 1000, 1000, 1000, 0]


# ------------------------------------------------ perturbing a brain --


@pytest.fixture(scope="module")
def cortex():
    """A 50 x 40 cortex (2,000 neurons: 1,600 E, 400 I) with cortex_small's flags."""
    config = preset_config(
        "cortex_small", sheet=(50, 40), n_neurons=2000, input_channels=16, output_channels=8
    )
    return config.circuit()


@pytest.fixture(scope="module")
def newborn(cortex):
    # under jit: one program instead of a compile per op (the values are the same for this preset)
    return jax.jit(brain.init_brain, static_argnames=("circuit", "seed"))(cortex, seed=0)


def _by_name(name: str) -> tuple[int, stress.Perturbation]:
    return next((i, p) for i, p in enumerate(stress.PERTURBATIONS) if p.name == name)


def test_excitatory_weights_scale_and_divide_back(cortex, newborn):
    _, state = newborn
    for name, factor in (("exc_weights_x1.5", 1.5), ("exc_weights_x0.5", 0.5)):
        i, p = _by_name(name)
        a = stress.apply(cortex, state, p, seed=0, index=i)
        back = stress.lift(cortex, a.state, p)
        for q in cortex.projections:
            w0 = np.asarray(state.projections[q.name].weights)
            w1 = np.asarray(a.state.projections[q.name].weights)
            scale = factor if cortex.population(q.pre).sign == "E" else 1.0
            np.testing.assert_allclose(w1, w0 * scale, rtol=1e-6, err_msg=q.name)
            np.testing.assert_allclose(np.asarray(back.projections[q.name].weights), w0, rtol=1e-6)


def test_drive_off_zeroes_the_bias_only(cortex, newborn):
    i, p = _by_name("drive_off")
    a = stress.apply(cortex, newborn[1], p, seed=0, index=i)
    assert all(q.neuron.bias == 0.0 for q in a.circuit.populations)
    assert a.circuit.projections == cortex.projections and a.state is newborn[1]


def test_silencing_draws_from_i_and_lesions_until_lifted(cortex, newborn):
    _, state = newborn
    i, p = _by_name("inh_silenced_20pct")
    a = stress.apply(cortex, state, p, seed=3, index=i)
    lo, hi = cortex.bounds("I")
    chosen = np.flatnonzero(a.mask)
    assert chosen.size == 80 and (chosen >= lo).all() and (chosen < hi).all()
    assert a.active == 2000 - 80 and a.note == ""
    np.testing.assert_array_equal(np.asarray(a.state.neurons.lesion), a.mask.astype(np.uint8))
    again = stress.apply(cortex, state, p, seed=3, index=i)
    np.testing.assert_array_equal(again.mask, a.mask)  # the draw is seeded
    assert stress.lift(cortex, a.state, p).neurons.lesion is None
    # the seed preset has no I population: 20% of all neurons, with a note
    seed_circuit = small().circuit()
    _, seed_state = brain.init_brain(seed_circuit, seed=0)
    b = stress.apply(seed_circuit, seed_state, p, seed=3, index=i)
    assert int(b.mask.sum()) == 400 and "no inhibitory population" in b.note


def test_removed_neurons_never_fire(cortex, newborn):
    wiring, state = newborn
    i, p = _by_name("neurons_removed_10pct")
    a = stress.apply(cortex, state, p, seed=0, index=i)
    assert int(a.mask.sum()) == 200 and a.active == 1800
    with pytest.raises(ValueError, match="permanent"):
        stress.lift(cortex, a.state, p)
    plan = plans.resolve(cortex, record_spikes=cortex.n)
    _, _, raster = brain.burst_packed_keeping_input(cortex, plan, wiring, a.state, None, length=100)
    raster = np.asarray(raster)
    assert raster[:, a.mask].sum() == 0
    assert raster[:, ~a.mask].sum() > 0


@pytest.fixture(scope="module")
def record(cortex):
    """The whole record on the tiny cortex with the seed baseline at 2,000 neurons (short windows)."""
    return once_per_run(
        "stress_record",
        lambda: stress.evaluate(
            cortex, seed=0, warmup=1500, after=600, after_permanent=600, baseline=small().circuit()
        ),
    )


def test_record_has_the_schema(record):
    assert isinstance(record["preset"], str) and isinstance(record["device"], str)
    assert record["n_neurons"] == 2000 and record["seed"] == 0 and record["warmup"] == 1500
    assert record["set_point"] == pytest.approx(0.05)
    names = [p.name for p in stress.PERTURBATIONS]
    for part in (record, record["baseline"]):
        assert [r["name"] for r in part["perturbations"]] == names
        for r in part["perturbations"]:
            assert r["recovery_steps"] is None or isinstance(r["recovery_steps"], int)
            assert isinstance(r["peak_rate"], float) and 0.0 <= r["peak_rate"] <= 1.0
            assert isinstance(r["longest_silence"], int) and isinstance(r["recovered"], bool)
    assert record["baseline"]["preset"] == "seed" and record["baseline"]["n_neurons"] == 2000
    assert "set_point" in record["baseline"]
    assert "no inhibitory population" in record["baseline"]["perturbations"][4]["note"]
    table = stress.format_table(record)
    assert all(f"| {n} |" in table for n in names) and "| seed |" in table


def test_each_perturbation_moves_the_rate(record):
    rows = {r["name"]: r for r in record["perturbations"]}
    assert rows["input_x10"]["rate_during"] > 2 * rows["input_x10"]["rate_before"]
    # the thresholds pull the rate back within the 500 steps: the mean over them still drops clearly
    assert rows["drive_off"]["rate_during"] < 0.85 * rows["drive_off"]["rate_before"]
    assert rows["neurons_removed_10pct"]["silenced"] == 200


# ---------------------------------------------------------- launcher --


@pytest.mark.parametrize(
    "flag, says",
    [("--baseline=ei", "--baseline='ei' is unknown"), ("--warmup=10", "--warmup=10 must be >= 200")],
)
def test_cli_bad_flag_is_one_line(flag, says):
    r = jbrain_cli("stress", flag, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert err.strip().count("\n") == 0 and err.startswith("jbrain stress: error: ") and says in err
