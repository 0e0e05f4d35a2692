"""brain_debug.log (jbrain/logs.py): the five columns and, for circuits of
several populations, one `rate_<population>` column each; lines in step
order from the writer thread, flush waits for them, a restart cuts the lines
past its step, and a write error surfaces at flush."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import preset_config

from jbrain import logs
from jbrain.session import Session

EI = (("E", 1600), ("I", 400))


def metrics(spikes: list[int], pop_counts: list[list[int]] | None = None) -> dict[str, np.ndarray]:
    s = np.asarray(spikes, np.int32)
    m = {"spikes": s, "rate": s / 1000.0, "mean_input": s * 0.5, "mean_threshold": np.ones(len(s))}
    if pop_counts is not None:
        m["pop_counts"] = np.asarray(pop_counts, np.int32)
    return m


def test_one_population_keeps_exactly_the_five_columns(tmp_path):
    assert logs.HEADER == "step\tspikes\trate\tmean_input\tmean_threshold"
    path = str(tmp_path / logs.LOG_NAME)
    log = logs.DebugLog(path, populations=[("brain", 2000)])
    log.append(1, metrics([3, 4], pop_counts=[[3], [4]]))
    log.close()
    assert (tmp_path / logs.LOG_NAME).read_text(encoding="utf-8").splitlines() == [
        logs.HEADER,
        "1\t3\t0.003000\t1.500000\t1.000000",
        "2\t4\t0.004000\t2.000000\t1.000000",
    ]


def test_several_populations_add_a_rate_column_each(tmp_path):
    path = str(tmp_path / logs.LOG_NAME)
    log = logs.DebugLog(path, populations=EI)
    log.append(1, metrics([20, 0], pop_counts=[[16, 4], [0, 0]]))
    log.append(3, metrics([3], pop_counts=[[0, 3]]))
    log.close()
    lines = (tmp_path / logs.LOG_NAME).read_text(encoding="utf-8").splitlines()
    assert lines == [
        logs.HEADER + "\trate_E\trate_I",
        "1\t20\t0.020000\t10.000000\t1.000000\t0.010000\t0.010000",
        "2\t0\t0.000000\t0.000000\t1.000000\t0.000000\t0.000000",
        "3\t3\t0.003000\t1.500000\t1.000000\t0.000000\t0.007500",
    ]
    cols = logs.read_log(path)
    assert list(cols) == ["step", "spikes", "rate", "mean_input", "mean_threshold", "rate_E", "rate_I"]
    np.testing.assert_allclose(cols["rate_I"], [0.01, 0.0, 0.0075])


def test_a_two_population_brain_logs_rates_that_add_up(tmp_path):
    s = Session.new(preset_config("ei", n_neurons=2000), seed=0, workdir=str(tmp_path))
    s.run(200)
    s.close()
    cols = logs.read_log(str(tmp_path / logs.LOG_NAME))
    assert [c for c in cols if c.startswith("rate_")] == ["rate_E", "rate_I"]
    # spikes per neuron of each population, weighted by its size, give the whole brain's
    sizes = {p.name: p.size for p in s.circuit.populations}
    total = cols["rate_E"] * sizes["E"] + cols["rate_I"] * sizes["I"]
    np.testing.assert_allclose(total, cols["spikes"], atol=1e-5 * s.circuit.n)
    assert cols["rate_E"][-100:].mean() > 0 and cols["rate_I"][-100:].mean() > 0


def test_writer_keeps_order_and_flush_waits(tmp_path):
    path = str(tmp_path / logs.LOG_NAME)
    log = logs.DebugLog(path)
    for burst in range(30):  # queued faster than the writer's pause
        log.append(1 + 3 * burst, metrics([burst, burst + 1, burst + 2]))
    log.flush()
    lines = (tmp_path / logs.LOG_NAME).read_text(encoding="utf-8").splitlines()
    assert lines[0] == logs.HEADER and len(lines) == 1 + 90
    assert lines[1] == "1\t0\t0.000000\t0.000000\t1.000000"
    assert lines[-1] == "90\t31\t0.031000\t15.500000\t1.000000"
    read = logs.read_log(path)
    np.testing.assert_array_equal(read["step"], np.arange(1, 91))
    log.close()
    log.close()  # idempotent


@pytest.mark.parametrize("populations", [(), EI], ids=["one", "two"])
def test_restart_cuts_lines_after_its_step(tmp_path, populations):
    path = str(tmp_path / logs.LOG_NAME)
    counts = [[3, 2]] * 10 if populations else None
    log = logs.DebugLog(path, populations=populations)
    log.append(1, metrics([5] * 10, counts))
    log.close()
    with open(path, "a", encoding="utf-8") as f:
        f.write("11\t9\t0.0")  # half a line of a killed run
    log = logs.DebugLog(path, start_step=4, populations=populations)  # a brain restored at step 4
    log.append(5, metrics([7, 7], counts and counts[:2]))
    log.close()
    read = logs.read_log(path)
    np.testing.assert_array_equal(read["step"], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(read["spikes"], [5, 5, 5, 5, 7, 7])
    assert len(read) == 5 + len(populations)  # the header was kept


def test_write_error_is_raised_at_flush(tmp_path, monkeypatch):
    log = logs.DebugLog(str(tmp_path / logs.LOG_NAME))

    def full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logs, "format_lines", full)
    log.append(1, metrics([1]))
    with pytest.raises(OSError, match="No space left on device"):
        log.flush()
    log.flush()  # reported once
    log.close()


def test_lines_reach_the_file_without_flush(tmp_path):
    """The writer flushes each batch: a live brain's log grows by itself."""
    path = tmp_path / logs.LOG_NAME
    log = logs.DebugLog(str(path))
    log.append(1, metrics([4, 5]))
    deadline = time.monotonic() + 10.0
    while path.read_text(encoding="utf-8").count("\n") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.read_text(encoding="utf-8").splitlines()[1:] == [
        "1\t4\t0.004000\t2.000000\t1.000000",
        "2\t5\t0.005000\t2.500000\t1.000000",
    ]
    log.close()
