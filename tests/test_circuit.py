"""Circuits as data (jbrain/circuit.py) and the presets (jbrain/config.py)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from conftest import small

from jbrain import brain
from jbrain.circuit import (
    STDP,
    Circuit,
    InputPort,
    Neuron,
    Placement,
    Population,
    Projection,
    Readout,
    bernoulli_width,
)
from jbrain.config import PRESETS, BrainConfig


def two(**proj) -> Circuit:
    """E (100) and I (50) with one projection E -> I (fields overridable)."""
    pops = (Population("E", 100), Population("I", 50, sign="I"))
    q = Projection(**{"name": "EI", "pre": "E", "post": "I", "fan_in": 8, **proj})
    return Circuit(pops, (q,))


def test_presets_build_valid_hashable_circuits():
    seed = small().circuit()
    assert [p.name for p in seed.populations] == ["brain"]
    assert [q.name for q in seed.projections] == ["W"]
    assert seed.input_channels == 256 and seed.output_channels == 64
    ei = small(preset="ei").circuit()
    assert [(p.name, p.size, p.sign) for p in ei.populations] == [("E", 1600, "E"), ("I", 400, "I")]
    assert {q.name: (q.pre, q.post, q.fan_in) for q in ei.projections} == {
        "EE": ("E", "E", 26),
        "EI": ("E", "I", 26),
        "IE": ("I", "E", 6),
        "II": ("I", "I", 6),
    }
    assert hash(seed) == hash(small().circuit()) and seed == small().circuit()
    assert hash(seed) != hash(ei)
    assert set(PRESETS) == {"seed", "ei", "coba", "cortex"}


def test_a_circuit_survives_json():
    for config in (small(plasticity=True, sheet=(40, 50)), small(preset="ei"), small(preset="coba")):
        c = config.circuit()
        assert Circuit.from_dict(c.to_dict()) == c


def test_plasticity_lives_only_on_the_excitatory_recurrent_projection():
    ei = small(preset="ei", plasticity=True).circuit()
    assert {q.name for q in ei.projections if q.plasticity is not None} == {"EE"}
    assert ei.projections[0].plasticity == STDP(20.0, 20.0, 0.0005, 0.000525, False)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: two(pre="X"), "projection 'EI': no population named 'X'"),
        (lambda: two(rule="ring"), "projection 'EI': rule='ring' must be one of random, distinct, bernoulli"),
        (lambda: two(fan_in=0), "projection 'EI': fan_in=0 must be a positive integer"),
        (lambda: two(fan_in=101), "fan_in=101 must be smaller than the pre population (100)"),
        (
            lambda: two(rule="distinct", fan_in=101),
            "projection 'EI': a distinct projection draws fan_in=101 different partners of 100",
        ),
        (lambda: two(delay=0), "projection 'EI': delay=0 must be an integer between 1 and 33 steps"),
        (lambda: two(w_hi=0.1, w_max=0.05), "need 0 <= w_lo <= w_hi <= w_max"),
        (lambda: two(synapse="alpha"), "synapse='alpha' must be 'delta', 'exp' or 'slow'"),
        (lambda: two(synapse="exp", e_rev=-80.0), "e_rev=-80.0 does not match its E pre population"),
        (lambda: two(rule="one_to_one", fan_in=1), "one_to_one needs pre and post of the same size"),
        (lambda: two(rule="radius", radius=3.0), "rule 'radius' needs both populations placed on the sheet"),
        (lambda: two(rule="bernoulli", p=0.1, fan_in=3), "fan_in=3 is too narrow for p=0.1 of 100"),
        (
            lambda: two(rule="bernoulli", p=0.1, fan_in=bernoulli_width(100, 0.1), plasticity=STDP()),
            "bernoulli projections cannot be plastic",
        ),
        (lambda: Circuit(()), "a circuit needs at least one population"),
        (lambda: Circuit((Population("E", 10), Population("E", 5))), "population names repeat"),
        (lambda: Circuit((Population("E", 10, sign="X"),)), "population 'E': sign='X' must be 'E' or 'I'"),
        (lambda: Circuit((Population("E", 10, target_rate=1.5),)), "target_rate=1.5 must lie strictly"),
        (lambda: Circuit((Population("E", 10, neuron=Neuron(tau_m=0.0)),)), "tau_m=0.0 must be > 0 ms"),
        (
            lambda: Circuit((Population("E", 10, placement=Placement("rect", 0, 0, 2, 5)),), sheet=(4, 5)),
            "both sides of its rectangle must be >= 3",
        ),
        (
            lambda: Circuit((Population("E", 12, placement=Placement("rect", 2, 0, 3, 4)),), sheet=(4, 4)),
            "its rectangle leaves the 4x4 sheet",
        ),
        (
            lambda: Circuit((Population("E", 10),), inputs=(InputPort("text", "E", 4, 3),)),
            "input 'text': 4 groups of 3 from 0 do not fit population 'E' (10 neurons)",
        ),
        (
            lambda: Circuit((Population("E", 10),), readouts=(Readout("out", "F", 2, 2),)),
            "readout 'out': no population named 'F'",
        ),
        (lambda: Circuit((Population("E", 10),), dt=0.0), "dt=0.0 must be > 0 ms (--dt)"),
    ],
)
def test_bad_circuits_are_one_line_errors_naming_the_field(make, message):
    with pytest.raises(ValueError) as e:
        make()
    assert message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"preset": "brainstem"}, "--preset='brainstem' is unknown: use one of seed, ei, coba, cortex"),
        ({"n_neurons": 0}, "--n_neurons must be a positive integer (got 0)"),
        ({"fan_in": 3000}, "--fan_in=3000 must be smaller than --n_neurons=2000"),
        ({"sheet": (40, 40)}, "--sheet=40x40 has 1600 cells but --n_neurons=2000"),
        (
            {"preset": "ei", "sheet": (40, 50)},
            "--sheet is an option of --preset=seed or cortex, not --preset=ei",
        ),  # noqa: E501
        ({"target_rate": 0.0}, "--target_rate=0.0 must lie strictly between 0 and 1"),
        ({"connectivity": "bernoulli"}, "--connectivity=bernoulli applies to --preset=ei or coba"),
        ({"synapse": "alpha"}, "--synapse='alpha': use delta or exp"),
        ({"n_neurons": 500}, "--n_neurons=500 is too small for 64 output groups: use at least 640"),
    ],
)
def test_bad_config_fields_are_one_line_errors_naming_the_flag(fields, message):
    with pytest.raises(ValueError) as e:
        small(**fields).circuit()
    assert message in str(e.value)


def test_the_fixed_point_bound_counts_the_spikes_a_step_can_carry():
    """w_max times the synapses that can fire at once must fit a quarter of
    the int32 sum (512 in weight units): all fan_in of them, or, from a
    k-winners-take-all population, at most k per block."""

    def wide(kwta, w_max):
        pops = (Population("M", 4096, kwta=kwta), Population("O", 64))
        q = Projection("MO", "M", "O", fan_in=2048, w_lo=0.0, w_hi=0.0, w_max=w_max)
        return Circuit(pops, (q,))

    with pytest.raises(ValueError) as e:
        wide((0, 1), 0.25)
    assert str(e.value).endswith(
        "projection 'MO': w_max * 2048 synapses that can fire at once = 512 is too large for the "
        "fixed-point synaptic sum: lower --w_max"
    )
    assert wide((8, 8), 1.0).projections[0].w_max == 1.0  # 64 spikes a step: 64 < 512
    with pytest.raises(ValueError, match="w_max \\* 64 synapses that can fire at once = 512 is too large"):
        wide((8, 8), 8.0)


def test_populations_share_one_axis_in_order():
    c = small(preset="ei").circuit()
    assert c.n == 2000 and c.bounds("E") == (0, 1600) and c.bounds("I") == (1600, 2000)
    assert c.describe()[1] == "  population E: 1600 E neurons [0, 1600), ring, target rate 0.05"


def test_dale_sign_comes_from_the_pre_population():
    """Weights are magnitudes: an inhibitory pre's spikes lower the post's
    voltage, an excitatory pre's raise it, whatever the weights."""
    pops = (
        Population("E", 40, neuron=Neuron(noise_sd=0.0, bias=0.0)),
        Population("I", 40, sign="I", neuron=Neuron(noise_sd=0.0, bias=0.0)),
        Population("P", 40, neuron=Neuron(noise_sd=0.0, bias=0.0)),
    )
    projs = (
        Projection("EP", "E", "P", "one_to_one", 1, w_lo=0.1, w_hi=0.1, w_max=0.1),
        Projection("IP", "I", "P", "one_to_one", 1, w_lo=0.3, w_hi=0.3, w_max=0.3),
    )
    from jbrain import plan as plans
    from jbrain.circuit import Controller

    c = Circuit(pops, projs, controller=Controller(enabled=False))
    plan = plans.resolve(c)
    wiring, state = brain.init_brain(c, seed=0)
    spikes = np.zeros(120, np.uint8)
    spikes[:20] = 1  # E 0-19 fire
    spikes[40:50] = 1  # I 0-9 fire
    v = np.zeros(120, np.float32)
    state = state.replace(neurons=state.neurons.replace(spikes=spikes, v=v))
    state, _ = jax.jit(brain.step, static_argnums=(0, 1))(c, plan, wiring, state)
    dv = np.asarray(state.neurons.v)[80:] - 0.0
    assert np.allclose(dv[:10], 0.1 - 0.3, atol=1e-6)  # both
    assert np.allclose(dv[10:20], 0.1, atol=1e-6)  # E only
    assert np.allclose(dv[20:], 0.0)


def test_dataclasses_are_frozen():
    c = small().circuit()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.dt = 2.0  # type: ignore[misc]
    assert BrainConfig.from_dict({"n_neurons": 2000, "propagation": "event"}) == small()
