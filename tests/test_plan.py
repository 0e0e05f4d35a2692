"""The plan (jbrain/plan.py): resolved once per (circuit, device), static."""

from __future__ import annotations

import json

import pytest
from conftest import preset_config, small

from jbrain import backends
from jbrain import plan as plans


def test_auto_on_a_cpu_picks_the_measured_fastest():
    seed = small(plasticity=True).circuit()
    native = backends.CpuNative.supports("cpu")
    p = plans.resolve(seed, platform="cpu")
    assert p.backend == ("cpu_native" if native else "xla")
    assert p.paths == ("event",) and p.stdp == ("eager" if native else "deferred",)
    assert p.listed == (True,) and p.unroll == 1 and p.platform == "cpu"
    off = plans.resolve(small().circuit(), platform="cpu", backend="xla")
    assert off.paths == ("gather",) and off.stdp == (None,) and off.listed == (False,)


def test_auto_on_a_gpu_defers_stdp_on_the_event_path():
    p = plans.resolve(small(plasticity=True).circuit(), platform="gpu", backend="xla")
    assert p.paths == ("event",) and p.stdp == ("deferred",) and p.unroll == 8


def test_projections_without_a_fixed_fan_out_take_gather():
    ei = small(preset="ei", plasticity=True).circuit()
    p = plans.resolve(ei, platform="cpu", backend="xla", propagation="event")
    assert dict(zip([q.name for q in ei.projections], p.paths, strict=True)) == {
        "EE": "event",
        "EI": "gather",
        "IE": "gather",
        "II": "event",
    }
    assert p.stdp == ("deferred", None, None, None)
    assert p.listed == (True, True)


def test_static_projections_without_an_out_table_take_csr_on_the_native_backend():
    if not backends.CpuNative.supports("cpu"):
        pytest.skip("the CPU kernels did not build here")
    ei = small(preset="ei", plasticity=True).circuit()
    names = [q.name for q in ei.projections]
    p = plans.resolve(ei, platform="cpu")
    assert dict(zip(names, p.paths, strict=True)) == {"EE": "event", "EI": "csr", "IE": "csr", "II": "event"}
    # asked for, gather stays gather; XLA has no csr push; a plastic projection keeps its path
    assert "csr" not in plans.resolve(ei, platform="cpu", propagation="gather").paths
    assert "csr" not in plans.resolve(ei, platform="cpu", backend="xla").paths
    cortex = preset_config("cortex_small", sheet=(25, 48), n_neurons=1200, radius=4, plasticity=True)
    circuit = cortex.circuit()
    paths = dict(zip([q.name for q in circuit.projections], plans.resolve(circuit).paths, strict=True))
    assert paths["EI"] == "csr" and paths["IE"] == "gather"  # IE: inhibitory plasticity


def test_the_plan_is_json_with_a_backend_field():
    c = small(plasticity=True).circuit()
    d = json.loads(plans.resolve(c, backend="xla", spike_buffer=0.2).to_json(c))
    assert d["backend"] == "xla"
    assert d["projections"] == {"W": {"path": "event", "stdp": "deferred"}}
    assert d["spike_capacity"] == {"brain": 400}
    assert d["record_sheet"] is False


def test_record_sheet_is_a_budget_of_steps_and_the_plan_only_says_whether():
    c = small().circuit()
    on = plans.resolve(c, record_sheet=200)
    assert on.record_sheet is True and plans.resolve(c, record_sheet=0).record_sheet is False
    assert json.loads(on.to_json(c))["record_sheet"] is True
    assert hash(on) != hash(plans.resolve(c))  # a static argument: its own compiled program


def test_grown_plan_holds_the_peak_and_never_touches_the_circuit():
    c = small().circuit()
    p = plans.resolve(c, backend="xla", propagation="event")
    g = p.grown(c, {"brain": 900})
    assert g.capacity(2000) >= 900 * 1.25 and g.spike_buffer == pytest.approx(0.5625)
    assert p.grown(c, {"brain": 10}).spike_buffer == 0.2  # at least doubles
    assert hash(g) != hash(p) and c == small().circuit()
    # a small population (a pool that fires as one) lists all its neurons at any fraction
    assert [p.capacity(n) for n in (1, 64, 256, 257, 2000)] == [1, 64, 256, 26, 200]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"propagation": "fast"}, "--propagation='fast' is unknown: use one of auto, event, gather, bcoo"),
        ({"stdp": "lazy"}, "--stdp='lazy' is unknown: use one of auto, eager, deferred"),
        ({"backend": "tpu"}, "--backend='tpu' is unknown"),
        ({"spike_buffer": 0.0}, "--spike_buffer=0.0 must be in (0, 1]"),
        ({"unroll": -1}, "--unroll=-1 must be >= 0 (0 picks by device)"),
        ({"record_spikes": 5000}, "--record_spikes=5000 must be between 0 and the 2000 neurons"),
        (
            {"record_sheet": -1},
            "--record_sheet=-1 must be >= 0: the steps whose spikes go to WORKDIR/sheet.bits (0: none)",
        ),
        (
            {"stdp": "deferred", "propagation": "gather"},
            "--stdp=deferred cannot run projection 'W' on the gather path: use --stdp=eager",
        ),
        ({"backend": "pallas_gpu", "platform": "cpu"}, "--backend=pallas_gpu does not run on this cpu"),
    ],
)
def test_requests_the_device_cannot_honour_are_one_line_errors(options, message):
    with pytest.raises(ValueError) as e:
        plans.resolve(small(plasticity=True).circuit(), **options)
    assert message in str(e.value)


def test_deferred_refuses_synaptic_scaling():
    with pytest.raises(ValueError, match="cannot run projection 'W' on synaptic scaling"):
        plans.resolve(small(plasticity=True, synaptic_scaling=True).circuit(), stdp="deferred")


def test_a_projection_past_int32_synapse_ids_runs_the_gather_path(monkeypatch):
    """N * K >= 2**31 synapses (67,108,864 neurons at K = 32) overflow the
    int32 synapse ids of the event, bcoo and csr paths: auto picks gather
    (eager STDP, no spike list), an explicit request is a one-line error.
    The config no longer refuses such a brain."""
    from jbrain.config import BrainConfig

    huge = BrainConfig(n_neurons=70_000_000, plasticity=True).circuit()  # metadata only: nothing allocated
    p = plans.resolve(huge, platform="gpu", backend="xla")
    assert p.paths == ("gather",) and p.stdp == ("eager",) and p.listed == (False,)
    largest_event = BrainConfig(n_neurons=67_000_000).circuit()
    assert plans.resolve(largest_event, platform="gpu", backend="xla").paths == ("event",)
    with pytest.raises(ValueError) as e:
        plans.resolve(huge, platform="gpu", backend="xla", propagation="event")
    assert str(e.value) == (
        "--propagation=event cannot run projection 'W': its 2,240,000,000 synapses exceed int32 "
        "synapse ids (2,147,483,647); use --propagation=gather or auto"
    )
    monkeypatch.setattr(plans, "MAX_FLAT_SYNAPSES", 2000 * 32 - 1)  # the same rule on a tiny brain
    assert plans.resolve(small().circuit(), platform="cpu").paths == ("gather",)
