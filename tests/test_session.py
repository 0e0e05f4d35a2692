"""Session (jbrain/session.py): the plan it runs with, the exact re-run of a
burst whose spike list overflowed, faults, log errors as warnings, and the
sheet recording (--record_sheet, jbrain/sheet.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_trees_equal, preset_config, small

from jbrain import brain, checkpoint, logs, sheet, synapses
from jbrain import plan as plans
from jbrain.circuit import Circuit
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
    event = {"propagation": "event", "backend": "xla"}  # a spike list (the others push static projections)
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


# ------------------------------------------------- --record_sheet (jbrain/sheet.py) ---


def _unpacked(path, neurons: int, steps: int) -> np.ndarray:
    """sheet.bits read as its docstring says, in plain NumPy: (steps, neurons) 0/1."""
    w = -(-neurons // 32)
    bits = np.fromfile(path, "<u4")[: steps * w].reshape(steps, w)
    return np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, :neurons]


def test_the_sheet_is_every_neurons_spikes_and_its_budget_ends_exactly(tmp_path):
    """--record_sheet=250 over bursts of 100: the bits equal the raster of all
    N neurons (record_spikes = N) of the same run for steps 1-250, mid-burst
    included; after them the plan runs without the recording."""
    config = small()
    c = config.circuit()
    plan = plans.resolve(c, record_spikes=c.n)
    s = Session.new(config, seed=0, workdir=str(tmp_path), plan=plan, record_sheet=250)
    assert s.plan == dataclasses.replace(plan, record_sheet=True)
    got, recording = [], []
    for _ in range(4):
        recording.append(s.plan.record_sheet)
        got.append(s.run(100))
    assert recording == [True, True, True, False]
    assert s.plan == plan  # the budget is spent: the plain program again
    s.close()
    raster = np.concatenate([m["raster"] for m in got])
    meta = json.loads((tmp_path / "sheet.json").read_text())
    assert {k: v for k, v in meta.items() if k != "circuit"} == {
        "format": "jbrain-sheet/1",
        "first_step": 1,
        "steps": 250,
        "neurons": 2000,
        "words_per_step": 63,
        "dtype": "<u4",
        "bits": "neuron i is bit i % 32 of word i // 32",
    }
    assert Circuit.from_dict(meta["circuit"]) == c
    assert os.path.getsize(tmp_path / "sheet.bits") == 250 * 63 * 4
    bits = _unpacked(tmp_path / "sheet.bits", c.n, 250)
    assert bits.any() and np.array_equal(bits, raster[:250])
    got_meta, words = sheet.read_sheet(str(tmp_path))
    assert got_meta == meta and np.array_equal(sheet.unpack(words, c.n), bits)


def test_recording_the_sheet_changes_nothing_else(tmp_path):
    """Two populations (the sheet's words sit between the population counts
    and the floats of the packed metrics): the same metrics, log and state
    with and without the recording."""
    config = preset_config("ei", n_neurons=2000)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Session.new(config, seed=0, workdir=str(tmp_path / "a"), record_sheet=150)
    b = Session.new(config, seed=0, workdir=str(tmp_path / "b"))
    for _ in range(2):
        ma, mb = a.run(100), b.run(100)
        for k in (
            "spikes",
            "rate",
            "mean_input",
            "mean_threshold",
            "mean_voltage",
            "pop_counts",
            "out_counts",
        ):
            np.testing.assert_array_equal(ma[k], mb[k], err_msg=k)
    assert_trees_equal(a.state, b.state)
    a.close(save=False)
    b.close(save=False)
    assert (tmp_path / "a" / logs.LOG_NAME).read_bytes() == (tmp_path / "b" / logs.LOG_NAME).read_bytes()
    assert not (tmp_path / "b" / "sheet.bits").exists()
    # the words are the packed spikes, counted per population as the metrics count them
    bits = sheet.unpack(sheet.read_sheet(str(tmp_path / "a"))[1], 2000)
    e = config.circuit().population("E").size
    np.testing.assert_array_equal(bits[100:150, :e].sum(1), ma["pop_counts"][:50, 0])
    np.testing.assert_array_equal(bits[100:150, e:].sum(1), ma["pop_counts"][:50, 1])


def test_sheet_words_are_pack_spikes_bit_for_bit():
    rng = np.random.default_rng(0)
    for n in (1, 31, 32, 33, 2000, 2049):
        s = jnp.asarray((rng.random(n) < 0.4).astype(np.uint8))
        words = np.asarray(brain.sheet_words(s)).view(np.uint32)
        np.testing.assert_array_equal(words, np.asarray(synapses.pack_spikes(s)))
        np.testing.assert_array_equal(sheet.unpack(words[None], n)[0], np.asarray(s))


def test_each_recording_session_starts_a_new_recording(tmp_path):
    d = str(tmp_path)
    s = Session.open(small(), seed=0, workdir=d, plan_options={"record_sheet": 30})
    s.run(20)
    s.close()
    assert sheet.read_meta(d)["steps"] == 20
    # a restored brain that records nothing leaves the recording alone
    s = Session.open(small(), seed=0, workdir=d)
    assert not s.plan.record_sheet and s.sheet is None
    s.run(20)
    s.close()
    assert sheet.read_meta(d)["steps"] == 20
    # a restored brain that records: a new recording from its next step, announced
    s = Session.open(small(), seed=0, workdir=d, plan_options={"record_sheet": 10})
    assert s.notes[-1] == f"recording the spikes of all 2000 neurons for steps 41-50 to {d}/sheet.bits"
    s.run(20)
    s.close()
    meta, words = sheet.read_sheet(d)
    assert (meta["first_step"], meta["steps"], words.shape) == (41, 10, (10, 63))
    # a half-written burst past the sidecar's count is not read
    with open(tmp_path / "sheet.bits", "ab") as f:
        f.write(b"\xff" * 100)
    assert sheet.read_sheet(d)[1].shape == (10, 63)
    # a new brain that records nothing removes an earlier brain's recording
    s = Session.open(small(), seed=0, workdir=d, fresh=True)
    s.close(save=False)
    assert sheet.read_sheet(d) is None and not (tmp_path / "sheet.bits").exists()


def test_a_negative_record_sheet_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError) as e:
        Session.open(small(), seed=0, workdir=str(tmp_path), plan_options={"record_sheet": -5})
    assert str(e.value) == (
        "--record_sheet=-5 must be >= 0: the steps whose spikes go to WORKDIR/sheet.bits (0: none)"
    )


class _FullDisk:
    """A file whose every write fails as on a full disk."""

    def write(self, data):
        raise OSError(28, "No space left on device")

    def close(self):
        pass


def test_a_failed_sheet_write_is_a_warning_and_the_brain_runs_on(tmp_path):
    s = Session.new(small(), seed=0, workdir=str(tmp_path), record_sheet=500)
    s.sheet._f.close()
    s.sheet._f = _FullDisk()
    s.run(100)
    for _ in range(600):  # the writer thread fails in the background
        if s.sheet.error is not None:
            break
        time.sleep(0.05)
    assert s.warnings == [] and s.plan.record_sheet
    s.run(100)  # sees the error: a warning, and the plan stops recording
    assert s.sheet is None and not s.plan.record_sheet
    assert s.warnings == [
        f"{tmp_path}/sheet.bits stopped after 0 steps (OSError: [Errno 28] No space left on device); the "
        "brain keeps running: free disk space or fix WORKDIR, then record again with --record_sheet"
    ]
    s.run(100)
    s.close(save=False)
    assert sheet.read_sheet(str(tmp_path))[0]["steps"] == 0


def test_a_small_backlog_waits_for_the_writer_and_loses_nothing(tmp_path):
    c = small().circuit()
    rec = sheet.SheetRecorder(str(tmp_path), c, 100, backlog_bytes=1)  # one burst at a time
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**32, (100, 63), dtype=np.uint32)
    for k in range(10):
        assert rec.take(1 + 10 * k, jnp.asarray(words[10 * k : 10 * k + 10])) == 90 - 10 * k
    rec.close()
    meta, got = sheet.read_sheet(str(tmp_path))
    assert meta["steps"] == 100 and np.array_equal(got, words)


def test_static_weights_are_permuted_once_and_again_only_when_they_change():
    """Session keeps a static projection's weights in presynaptic order from
    burst to burst (brain.StaticOrder, CPU plans): the bursts equal bursts
    that permute them themselves, and a state with other weights (here
    halved, as a stress test rescales them) is permuted again, not run with
    the stale order."""
    session = Session.new(small(), seed=1)
    reference = Session.new(small(), seed=1)
    assert session.plan.platform == "cpu" and brain.static_projections(session.circuit, session.plan) == ["W"]

    def plain_burst(s: Session, length: int) -> None:  # what a burst without the kept order does
        s.state, _, _ = brain.burst_packed(s.circuit, s.plan, s.wiring, s.state, None, length=length)

    def order(s: Session):  # the order the next burst gets
        return s._static_order.get(s.circuit, s.plan, s.wiring, s.state)["W"]

    session.run(30)
    kept = order(session)
    session.run(30)
    assert order(session) is kept
    plain_burst(reference, 30)
    plain_burst(reference, 30)
    assert_trees_equal(session.state, reference.state)

    def halve(s: Session) -> None:
        w = s.state.projections["W"]
        s.state = s.state.replace(projections={"W": w.replace(weights=w.weights * jnp.float32(0.5))})

    halve(session)
    halve(reference)
    session.run(40)
    plain_burst(reference, 40)
    assert_trees_equal(session.state, reference.state)
    assert order(session) is not kept
