"""Session (jbrain/session.py): the plan it runs with, the exact re-run of a
burst whose spike list overflowed, faults, and log errors as warnings."""

from __future__ import annotations

import os
import re

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_trees_equal, preset_config, small

from jbrain import checkpoint, logs
from jbrain.session import BrainFault, Session

OVERFLOW = re.compile(
    r"(\d+) neurons of (\w+) fired in one step, more than the spike list holds \((\d+)\): the burst was "
    r"re-run exactly with --spike_buffer=([\d.]+) \(set it that high to avoid the re-run\)"
)


def test_open_resolves_the_plan_for_the_restored_circuit_with_the_options_given(tmp_path):
    s = Session.open(small(plasticity=True), seed=0, workdir=str(tmp_path))
    s.run(20)
    s.close()
    # flags not passed (plasticity here) come from the checkpoint, and so does the plan's STDP
    r = Session.open(small(), seed=0, workdir=str(tmp_path), plan_options={"propagation": "gather"})
    assert r.step == 20 and r.config.plasticity
    assert r.plan.paths == ("gather",) and r.plan.stdp == ("eager",)
    r.close(save=False)
    with pytest.raises(ValueError) as e:
        Session.open(
            small(), seed=0, workdir=str(tmp_path), plan_options={"stdp": "deferred", "propagation": "gather"}
        )
    assert str(e.value) == (
        "--stdp=deferred cannot run projection 'W' on the gather path: use --stdp=eager, "
        "or drop --propagation / --synaptic_scaling"
    )


def test_a_bad_plan_flag_with_fresh_changes_nothing_on_disk(tmp_path):
    s = Session.open(small(plasticity=True), seed=0, workdir=str(tmp_path))
    s.run(20)
    s.close()
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match="--stdp=deferred cannot run projection 'W' on the gather path"):
        Session.open(
            small(plasticity=True),
            seed=0,
            workdir=str(tmp_path),
            fresh=True,
            plan_options={"stdp": "deferred", "propagation": "gather"},
        )
    assert sorted(os.listdir(tmp_path)) == before == ["brain_debug.log", "checkpoints"]


@pytest.mark.parametrize("preset", ["seed", "ei"])
def test_a_spike_list_overflow_reruns_the_burst_exactly_with_a_grown_plan(preset, tmp_path):
    config = small() if preset == "seed" else preset_config("ei", n_neurons=2000)
    event = {"propagation": "event"}  # a spike list on every backend
    s = Session.open(
        config, seed=0, workdir=str(tmp_path / "tiny"), plan_options={**event, "spike_buffer": 0.01}
    )
    big = Session.open(
        config, seed=0, workdir=str(tmp_path / "big"), plan_options={**event, "spike_buffer": 1.0}
    )
    first = s.plan
    assert first.uses_spike_list and first.capacity(config.n_neurons) == 20
    got = [s.run(200) for _ in range(2)]
    want = [big.run(200) for _ in range(2)]
    # the re-run bursts equal bursts that never overflowed, metrics, state and log
    for g, w in zip(got, want, strict=True):
        for k in ("spikes", "rate", "pop_counts", "out_counts"):
            np.testing.assert_array_equal(g[k], w[k], err_msg=k)
    assert_trees_equal(s.state, big.state)
    assert int(s.state.status) == 0  # no overflow bit left behind
    # one warning per re-run, naming the population and the --spike_buffer it ran with
    assert big.warnings == [] and s.warnings
    found = [OVERFLOW.fullmatch(w) for w in s.warnings]
    assert all(found), s.warnings
    pop = {p.name: p for p in s.circuit.populations}
    assert found[0].group(3) == str(first.capacity(pop[found[0].group(2)].size))
    assert int(found[0].group(1)) > int(found[0].group(3))
    assert found[-1].group(4) == f"{s.plan.spike_buffer:.3g}"
    peak = np.max(np.concatenate([g["pop_counts"] for g in got]), axis=0)
    assert all(
        s.plan.capacity(p.size) >= n for p, n in zip(s.circuit.populations, peak, strict=True)
    )  # the grown plan holds the busiest step
    # the model and the checkpoint are untouched: only the plan grew
    assert s.config == config and s.circuit == config.circuit()
    a_path, b_path = s.close(), big.close()
    ra, rb = checkpoint.restore(a_path), checkpoint.restore(b_path)
    assert ra.meta["arrays"] == rb.meta["arrays"] and ra.meta["config"] == rb.meta["config"]
    assert (tmp_path / "tiny" / "brain_debug.log").read_bytes() == (
        tmp_path / "big" / "brain_debug.log"
    ).read_bytes()
    again = Session.open(config, seed=0, workdir=str(tmp_path / "tiny"), plan_options=event)
    assert again.plan.spike_buffer == 0.1  # the grown capacity was not saved with the brain
    again.close(save=False)


def test_a_non_finite_state_stops_with_a_fault_and_is_never_saved(tmp_path):
    s = Session.open(small(), seed=0, workdir=str(tmp_path))
    s.run(20)
    assert s.save(wait=True) == str(tmp_path / "checkpoints" / "20")
    n = s.state.neurons
    s.state = s.state.replace(neurons=n.replace(v=n.v.at[7].set(jnp.nan)))
    with pytest.raises(BrainFault) as e:
        s.run(20)
    assert str(e.value) == (
        "non-finite voltage, threshold or weight by step 40: the model diverged; restore a checkpoint "
        "or lower the gains (e.g. --w_max)"
    )
    assert s.save() is None
    assert s.warnings == ["step 40 not saved: the state is non-finite"]
    assert s.close() is None
    assert checkpoint.complete_steps(str(tmp_path / "checkpoints")) == [20]
    # the log has every step up to the fault (flushed before raising)
    lines = (tmp_path / logs.LOG_NAME).read_text().splitlines()
    assert len(lines) == 41 and lines[-1].startswith("40\t")


def test_a_log_write_error_becomes_a_warning_and_the_brain_keeps_running(tmp_path, monkeypatch):
    session = Session.new(small(), seed=0, workdir=str(tmp_path))

    def full(*_):
        raise OSError(28, "No space left")

    monkeypatch.setattr(logs, "format_lines", full)
    session.run(10)
    session.run(10)  # the brain keeps running
    assert session.step == 20
    session.close(save=False)
    assert session.warnings == [
        f"{tmp_path / logs.LOG_NAME} is missing lines (No space left); the brain keeps "
        "running: free disk space or fix WORKDIR"
    ]


def test_save_without_a_workdir_warns(tmp_path):
    s = Session.new(small(), seed=0)
    s.run(10)
    assert s.save(wait=True) is None
    assert s.warnings == ["nothing saved: this brain has no checkpoint folder (no workdir)"]
    assert s.close() is None
