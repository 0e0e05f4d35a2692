"""The brain (jbrain/brain.py): `init_brain`, `step` and `burst` composing
neurons, synapses, plasticity and homeostasis over a circuit, run by a plan.

Every plan this device supports (path x backend x STDP form) against the
XLA reference, bit for bit; burst splits; seeds; the compile count; status
bits and the spike-list re-run; and the circuit features the seed brain does
not use: several populations (Dale's law), delays, conductance synapses, the
COBA preset."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, assert_trees_equal, leaves, small, tiny

from jbrain import backends, brain, synapses
from jbrain import plan as plans
from jbrain.circuit import Circuit, Controller, Neuron, Population, Projection
from jbrain.config import BrainConfig
from jbrain.state import STATUS_NONFINITE, STATUS_SPIKE_OVERFLOW

# A quiet brain: no noise, no bias, no drive, no homeostatic drift.
QUIET = dict(noise_sd=0.0, bias=0.0, osc_amp=0.0, ctrl_gain=0.0, eta_theta=0.0)


def copy(tree):
    """A fresh copy of a state (bursts donate theirs)."""
    return jax.tree.map(jnp.copy, tree)


def concat(metrics: list) -> dict[str, np.ndarray]:
    """Metrics of consecutive bursts joined along T, as host arrays."""
    return {k: np.concatenate([leaves(m)[k] for m in metrics]) for k in leaves(metrics[0])}


def test_no_input_no_noise_no_spikes():
    circuit, plan, wiring, state = tiny(small(**QUIET, neighbour_weight=0.0), seed=3)
    state, m = brain.burst(circuit, plan, wiring, state, None, length=300)
    assert int(np.asarray(m.spikes).sum()) == 0
    assert int(state.status) == 0


# ------------------------------------------------- every plan, bit for bit --

# The ei preset with STDP on EE: a plastic self-projection and a static one
# (EE, II: fixed fan-out, so the event path applies) and two between
# populations of different sizes (EI, IE: gather). The seed preset's plans
# are checked against d666d30's fingerprints in test_compat.py.
EI = small(preset="ei", controller=False, plasticity=True, a_plus=0.01, a_minus=0.012)
LENGTH = 60


def every_plan(circuit: Circuit) -> dict[plans.Plan, str]:
    """{plan: "path/stdp/backend"} of every distinct plan this device
    supports, spikes of every neuron recorded: each path with each STDP
    form it admits, on each backend that runs here. A backend's kernels all
    serve the event path (backends/__init__.py), so a plan without a spike
    list runs on XLA only."""
    platform = "cpu" if jax.default_backend() == "cpu" else "gpu"
    out = {}
    for backend, kind in backends.REGISTRY.items():
        if not kind.supports(platform):
            continue
        for propagation in ("gather", "event"):
            for stdp in ("eager", "deferred"):
                try:
                    plan = plans.resolve(
                        circuit, propagation=propagation, stdp=stdp, backend=backend, record_spikes=circuit.n
                    )
                except ValueError as e:
                    assert "--stdp=deferred cannot run projection 'EE' on the gather path" in str(e)
                    continue
                if backend == "xla" or plan.uses_spike_list:
                    out.setdefault(plan, f"{propagation}/{stdp}/{backend}")
    return out


@functools.cache
def newborn():
    circuit = EI.circuit()
    wiring, state = brain.init_brain(circuit, seed=11)
    return circuit, wiring, state


@functools.cache
def reference():
    """The reference run: gather path, eager STDP, XLA, one burst."""
    circuit, wiring, s0 = newborn()
    plan = plans.resolve(circuit, propagation="gather", stdp="eager", backend="xla", record_spikes=circuit.n)
    return jax.device_get(brain.burst(circuit, plan, wiring, copy(s0), None, length=LENGTH))


def test_every_plan_equals_the_xla_reference_bit_for_bit():
    """Each plan's burst gives the reference's state and metrics (every
    spike, weight and trace) bit for bit: event and gather paths, eager and
    deferred STDP (deferred flushes before the burst ends), XLA and the
    compiled CPU kernels (or Pallas on a GPU), a scan unrolled 3 ways."""
    circuit, wiring, s0 = newborn()
    ref_state, ref_metrics = reference()
    assert ref_metrics.spikes.sum() > 0
    for q in circuit.projections:
        w0, w1 = np.asarray(s0.projections[q.name].weights), ref_state.projections[q.name].weights
        assert (not np.array_equal(w0, w1)) == (q.plasticity is not None), q.name
    found = every_plan(circuit)
    assert {"event/eager/xla", "event/deferred/xla", "gather/eager/xla"} <= set(found.values())
    if jax.default_backend() == "cpu":
        assert {"event/eager/cpu_native", "event/deferred/cpu_native"} <= set(found.values())
    for plan, label in found.items():
        assert plan.paths == (("event", "gather", "gather", "event") if label[0] == "e" else ("gather",) * 4)
    gather = plans.resolve(circuit, propagation="gather", backend="xla", record_spikes=circuit.n)
    found[dataclasses.replace(gather, unroll=3)] = "gather/eager/xla, unroll 3"
    for plan, label in found.items():
        state, m = brain.burst(circuit, plan, wiring, copy(s0), None, length=LENGTH)
        try:
            assert_trees_equal(state, ref_state)
            assert_trees_equal(m, ref_metrics)
        except AssertionError as e:
            raise AssertionError(f"plan {label}: {e}") from e


def test_bcoo_reference_path_runs_the_same_brain_to_float_rounding():
    """The BCOO path sums in float, not fixed point: the same spikes and
    weights as the reference, voltages to rounding."""
    circuit, wiring, s0 = newborn()
    ref_state, ref_metrics = reference()
    plan = plans.resolve(circuit, propagation="bcoo", stdp="eager", backend="xla", record_spikes=circuit.n)
    state, m = brain.burst(circuit, plan, wiring, copy(s0), None, length=LENGTH)
    np.testing.assert_array_equal(np.asarray(m.raster), ref_metrics.raster)
    for q in circuit.projections:
        np.testing.assert_array_equal(
            state.projections[q.name].weights, ref_state.projections[q.name].weights
        )
    np.testing.assert_allclose(state.neurons.v, ref_state.neurons.v, rtol=0, atol=1e-5)


def test_burst_splits_and_single_steps_are_bit_identical():
    """60 plastic steps as one burst == 60 bursts of one step, on a plan of
    each kind that carries state from step to step (the gather path; the
    event path's lists with eager STDP compiled; deferred STDP, which each
    burst flushes before it ends); and 60 calls of `step` == the reference."""
    circuit, wiring, s0 = newborn()
    kinds = {"gather/eager/xla", "event/eager/cpu_native", "event/deferred/xla", "event/deferred/pallas_gpu"}
    for plan, label in every_plan(circuit).items():
        if label not in kinds:
            continue
        one, m_one = brain.burst(circuit, plan, wiring, copy(s0), None, length=LENGTH)
        s, ms = copy(s0), []
        for _ in range(LENGTH):
            s, m = brain.burst(circuit, plan, wiring, s, None, length=1)
            ms.append(m)
        try:
            assert_trees_equal(s, one)
            assert_trees_equal(concat(ms), leaves(m_one))
        except AssertionError as e:
            raise AssertionError(f"plan {label}: {e}") from e
    step = jax.jit(brain.step, static_argnums=(0, 1))
    plan = plans.resolve(circuit, propagation="gather", backend="xla", record_spikes=circuit.n)
    s, ms = copy(s0), []
    for _ in range(LENGTH):
        s, m = step(circuit, plan, wiring, s, None)
        ms.append(jax.tree.map(lambda x: x[None], m))
    assert_trees_equal(s, reference()[0])
    assert_trees_equal(concat(ms), leaves(reference()[1]))


def test_same_seed_same_brain_other_seed_differs():
    circuit = small().circuit()
    plan = plans.resolve(circuit)
    runs = []
    for seed in (1, 1, 2):
        wiring, s = brain.init_brain(circuit, seed=seed)
        s, m = brain.burst(circuit, plan, wiring, s, None, length=100)
        runs.append((wiring, s, m))
    (wa, a, ma), (wb, b, mb), (wc, c, mc) = runs
    assert_trees_equal((wa, a, ma), (wb, b, mb))
    assert not np.array_equal(np.asarray(wa.projections["W"].pre), np.asarray(wc.projections["W"].pre))
    assert not np.array_equal(np.asarray(ma.spikes), np.asarray(mc.spikes))
    assert not np.array_equal(np.asarray(a.neurons.v), np.asarray(c.neurons.v))


def test_one_compile_for_many_bursts():
    circuit, plan, wiring, s = tiny()
    stims = np.zeros((50, circuit.input_channels), np.float32)
    s, _ = brain.burst(circuit, plan, wiring, s, None, length=50)
    s, _ = brain.burst(circuit, plan, wiring, s, stims, length=50)
    before = brain.burst._cache_size()
    for i in range(20):
        s, _ = brain.burst(circuit, plan, wiring, s, stims if i % 2 else None, length=50)
    # an equal circuit and plan built anew are the same static arguments
    again = small().circuit()
    s, _ = brain.burst(again, plans.resolve(again), wiring, s, None, length=50)
    assert brain.burst._cache_size() == before


def test_nonfinite_sets_status_bit():
    circuit, plan, wiring, s = tiny()
    s = s.replace(neurons=s.neurons.replace(v=s.neurons.v.at[5].set(jnp.nan)))
    s, _ = brain.burst(circuit, plan, wiring, s, None, length=3)
    assert int(s.status) == STATUS_NONFINITE


def test_stimulus_drives_its_input_channels():
    """Channels 0-19 (one neuron each) stimulated for 50 steps fire at more
    than twice their unstimulated rate and their neighbours' (spike traces)."""
    circuit, plan, wiring, s = tiny()
    port = circuit.inputs[0]
    assert (port.channels, port.group, port.start) == (256, 1, 0)
    s, _ = brain.burst(circuit, plan, wiring, s, None, length=200)
    stims = np.zeros((50, port.channels), np.float32)
    stims[:, :20] = 1.0
    traces = []
    for x in (None, stims):
        after, _ = brain.burst(circuit, plan, wiring, copy(s), x, length=50)
        traces.append(np.asarray(after.neurons.adapt))
    quiet, driven = traces
    assert driven[:20].mean() > 2 * quiet[:20].mean() and driven[:20].mean() > 2 * driven[20:40].mean()


def test_metrics_count_each_population_and_readout():
    """pop_counts, out_counts, spikes and rate agree with the raster."""
    circuit, wiring, s0 = newborn()
    _, m = reference()
    raster = m.raster.astype(np.int64)
    assert raster.shape == (LENGTH, circuit.n)
    for i, p in enumerate(circuit.populations):
        lo, hi = circuit.bounds(p.name)
        np.testing.assert_array_equal(m.pop_counts[:, i], raster[:, lo:hi].sum(1))
    r = circuit.readouts[0]
    start = circuit.offset(r.population) + r.start
    groups = raster[:, start : start + r.groups * r.group].reshape(LENGTH, r.groups, r.group).sum(2)
    np.testing.assert_array_equal(m.out_counts, groups)
    np.testing.assert_array_equal(m.spikes, raster.sum(1))
    np.testing.assert_allclose(m.rate, raster.sum(1) / circuit.n, rtol=1e-6)


# ------------------------------------------------------ spike-list overflow --

BUSY = dict(fan_in=16, noise_sd=0.3, bias=0.2, plasticity=True)  # fires ~10-20% per step


def test_overflow_sets_the_bit_and_the_grown_plan_reruns_exactly():
    """A list too small for a step's spikes sets STATUS_SPIKE_OVERFLOW (and
    drops spikes); the plan grown from the burst's peak holds them, and the
    burst re-run with it is the one whose list never overflowed."""
    circuit, tight, wiring, s0 = tiny(small(**BUSY), seed=1, propagation="event", spike_buffer=0.02)
    assert tight.uses_spike_list
    s, m = brain.burst(circuit, tight, wiring, copy(s0), None, length=50)
    assert int(s.status) == STATUS_SPIKE_OVERFLOW
    inexact = np.asarray(s.neurons.v)
    peak = {p.name: int(np.asarray(m.pop_counts)[:, i].max()) for i, p in enumerate(circuit.populations)}
    grown = tight.grown(circuit, peak)
    assert grown.capacity(circuit.n) >= 1.25 * peak["brain"] and grown.spike_buffer >= 0.04
    s, m = brain.burst(circuit, grown, wiring, copy(s0), None, length=50)
    assert int(s.status) == 0
    roomy = dataclasses.replace(tight, spike_buffer=1.0)
    s_ref, m_ref = brain.burst(circuit, roomy, wiring, copy(s0), None, length=50)
    assert_trees_equal((s, m), (s_ref, m_ref))
    assert not np.array_equal(inexact, np.asarray(s_ref.neurons.v))  # the overflowed burst lost spikes


# ---------------------------------------- populations, delays, conductances --


def test_inhibitory_projections_subtract_excitatory_ones_add():
    """ei: the synaptic input is +W @ s from E and -W @ s from I (weights
    are magnitudes; the sign is the pre population's), into each post range."""
    circuit, wiring, s0 = newborn()
    plan = plans.resolve(circuit, propagation="gather")
    (e0, e1), (i0, i1) = circuit.bounds("E"), circuit.bounds("I")
    rng = np.random.default_rng(0)
    fired = jnp.asarray((rng.random(circuit.n) < 0.2).astype(np.uint8))
    w = {q.name: s0.projections[q.name].weights for q in circuit.projections}

    def current(q, s):
        return np.asarray(synapses.propagate_gather(wiring.projections[q], w[q], s, "cpu"))

    for who in ("E", "I"):
        lo, hi = circuit.bounds(who)
        s = jnp.zeros(circuit.n, jnp.uint8).at[lo:hi].set(fired[lo:hi])
        state = s0.replace(neurons=s0.neurons.replace(spikes=s))
        i_syn, *_ = brain.synaptic_input(circuit, plan, wiring, state, {}, lambda t: t)
        i_syn = np.asarray(i_syn)
        sign = 1.0 if who == "E" else -1.0
        np.testing.assert_array_equal(i_syn[e0:e1], sign * current(who + "E", s[lo:hi]))
        np.testing.assert_array_equal(i_syn[i0:i1], sign * current(who + "I", s[lo:hi]))
        assert ((sign * i_syn) >= 0).all() and ((sign * i_syn) > 0).mean() > 0.5


QUIET_NEURON = Neuron(bias=0.0, noise_sd=0.0, eta_theta=0.0, v_init=("uniform", 0.0, 0.0))


def _kicked(circuit: Circuit, kick: dict[str, int]):
    """A newborn brain of `circuit` (every voltage 0) with neuron kick[p] of
    population p set far above threshold: it fires on step 1."""
    wiring, state = brain.init_brain(circuit, seed=0)
    v = state.neurons.v
    for name, i in kick.items():
        v = v.at[circuit.offset(name) + i].set(5.0)
    return wiring, state.replace(neurons=state.neurons.replace(v=v))


@pytest.mark.parametrize("delay", [2, 33])
def test_a_spike_arrives_exactly_delay_steps_later(delay):
    """A -> B one-to-one with weight 0.3: A[1] fires on step 1 and B[1]
    receives 0.3 on step 1 + delay, nothing before or after; whether run
    as one burst or step by step (the spike history crosses bursts)."""
    a, b = Population("A", 4, "E", QUIET_NEURON), Population("B", 4, "E", QUIET_NEURON)
    q = Projection("AB", "A", "B", "one_to_one", fan_in=1, w_lo=0.3, w_hi=0.3, w_max=0.3, delay=delay)
    circuit = Circuit((a, b), (q,), controller=Controller(False))
    wiring, s0 = _kicked(circuit, {"A": 1})
    steps = delay + 4
    plan = plans.resolve(circuit, record_spikes=circuit.n)
    assert plan.paths == (("csr",) if plan.backend == "cpu_native" else ("gather",))
    state, m = brain.burst(circuit, plan, wiring, copy(s0), None, length=steps)
    gather = plans.resolve(circuit, record_spikes=circuit.n, propagation="gather")
    assert_trees_equal(brain.burst(circuit, gather, wiring, copy(s0), None, length=steps)[0], state)
    raster = np.asarray(m.raster)
    assert raster.sum() == 1 and raster[0, 1] == 1  # A[1] fired on step 1, nothing else fired
    arrived = np.flatnonzero(np.asarray(m.mean_input))
    np.testing.assert_array_equal(arrived, [delay])  # step 1 + delay
    assert float(m.mean_input[delay]) == pytest.approx(0.3 / circuit.n)
    v_b = 0.3 * (1 - 1 / 20) ** (steps - 1 - delay)
    np.testing.assert_allclose(np.asarray(state.neurons.v), [0] * 5 + [v_b, 0, 0], rtol=1e-5)
    s = copy(s0)
    for _ in range(steps):
        s, _ = brain.burst(circuit, plan, wiring, s, None, length=1)
    assert_trees_equal(s, state)


def test_exp_conductance_decays_and_drives_toward_its_reversal_potential():
    """Exp synapses, dt 0.5 ms: after A[1] (E, e_rev 4) and C[2] (I, e_rev
    -2) fire on step 1, B's conductances g <- g exp(-dt/tau_syn) + W @ s and
    voltages v <- v + (v_rest - v) dt/tau_m + g (e_rev - v) dt/tau_m follow
    the recurrence: B[1] depolarises, B[2] hyperpolarises."""
    neuron = dataclasses.replace(QUIET_NEURON, theta=1.0, tau_m=20.0)
    pops = tuple(Population(p, 4, "I" if p == "C" else "E", neuron) for p in "ABC")
    exc = Projection("AB", "A", "B", "one_to_one", fan_in=1, w_lo=0.2, w_hi=0.2, w_max=0.2,
                     synapse="exp", tau_syn=5.0, e_rev=4.0)  # fmt: skip
    inh = Projection("CB", "C", "B", "one_to_one", fan_in=1, w_lo=0.5, w_hi=0.5, w_max=0.5,
                     synapse="exp", tau_syn=10.0, e_rev=-2.0)  # fmt: skip
    circuit = Circuit(pops, (exc, inh), dt=0.5, controller=Controller(False))
    plan = plans.resolve(circuit)
    wiring, state = _kicked(circuit, {"A": 1, "C": 2})
    b0 = circuit.offset("B")
    g = {"AB": 0.0, "CB": 0.0}
    v = np.zeros(4)
    for t in range(1, 31):
        state, _ = brain.burst(circuit, plan, wiring, state, None, length=1)
        drive = np.zeros(4)
        for q, i in ((exc, 1), (inh, 2)):
            decayed = g[q.name] * math.exp(-0.5 / q.tau_syn)
            g[q.name] = decayed + (q.w_hi if t == 2 else 0.0)  # the spike of step 1 arrives on step 2
            drive[i] = g[q.name] * (q.e_rev - v[i]) * 0.5 / 20.0
            got = float(state.projections[q.name].g[i])
            assert got == pytest.approx(g[q.name], rel=1e-5, abs=1e-12), (t, q.name)
        v = v + (0.0 - v) * 0.5 / 20.0 + drive
        np.testing.assert_allclose(np.asarray(state.neurons.v[b0 : b0 + 4]), v, rtol=1e-5, atol=1e-7)
    assert v[1] > 0.05 and v[2] < -0.05 and v[0] == v[3] == 0.0


def _flagfile(name: str) -> BrainConfig:
    """The BrainConfig of experiments/configs/NAME.flags (`--field=value` lines)."""
    types = typing.get_type_hints(BrainConfig)
    kw = {}
    with open(os.path.join(ROOT, "experiments", "configs", f"{name}.flags")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, value = line.removeprefix("--").split("=", 1)
            kind = types[key]
            kw[key] = value == "true" if kind is bool else kind(value) if kind in (int, float, str) else value
    return BrainConfig(**kw)


def test_coba_preset_fires_e_and_i_at_its_benchmark_rates():
    """COBA (Vogels & Abbott 2005): 3,200 E and 800 I conductance neurons,
    2% connectivity, dt 0.1 ms: over 0.5 s of model time both populations
    fire at 15-30 Hz (Brian2's: about 20), never silent, never all at once."""
    config = _flagfile("coba")
    circuit, plan, wiring, state = tiny(config, seed=0)
    assert [(p.name, p.size) for p in circuit.populations] == [("E", 3200), ("I", 800)]
    assert {q.synapse for q in circuit.projections} == {"exp"} and circuit.dt == 0.1
    counts = []
    for _ in range(5):
        state, m = brain.burst(circuit, plan, wiring, state, None, length=1000)
        counts.append(np.asarray(m.pop_counts))
    counts = np.concatenate(counts)
    hz = counts.sum(0) / np.array([3200, 800]) / 0.5
    assert ((hz > 15) & (hz < 30)).all(), hz
    per_ms = counts.reshape(-1, 10, 2).sum(1)  # 1 ms bins
    assert (per_ms.sum(1) > 0).mean() > 0.9 and per_ms.max() < 0.5 * 4000
    assert int(state.status) == 0


def test_population_sums_on_a_gpu_plan_is_one_reduction_with_the_rows_sums():
    """The GPU form (one variadic reduce over every row) sums what the CPU
    form sums row by row: exactly for 0/1 spikes, to rounding for floats."""
    rng = np.random.default_rng(0)
    rows = [
        jnp.asarray(rng.normal(size=5000), jnp.float32),
        jnp.asarray(rng.random(5000) < 0.05, jnp.float32),
    ]
    gpu = jax.jit(lambda *r: brain.population_sums(types.SimpleNamespace(platform="gpu"), list(r)))
    text = gpu.lower(*rows).as_text()
    assert text.count("stablehlo.reduce(") == 1
    got, want = gpu(*rows), brain.population_sums(types.SimpleNamespace(platform="cpu"), rows)
    assert got.shape == (2,) and got[1] == want[1] == float(np.sum(np.asarray(rows[1])))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-3)
