"""brain_debug.log (jbrain/logs.py): lines in step order from the writer
thread, flush waits for them, a restart cuts the lines past its step, and a
write error surfaces at flush."""

from __future__ import annotations

import time

import numpy as np
import pytest

from jbrain import logs


def metrics(spikes: list[int]) -> dict[str, np.ndarray]:
    s = np.asarray(spikes, np.int32)
    return {"spikes": s, "rate": s / 1000.0, "mean_input": s * 0.5, "mean_threshold": np.ones(len(s))}


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


def test_restart_cuts_lines_after_its_step(tmp_path):
    path = str(tmp_path / logs.LOG_NAME)
    log = logs.DebugLog(path)
    log.append(1, metrics([5] * 10))
    log.close()
    log = logs.DebugLog(path, start_step=4)  # a brain restored at step 4
    log.append(5, metrics([7, 7]))
    log.close()
    read = logs.read_log(path)
    np.testing.assert_array_equal(read["step"], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(read["spikes"], [5, 5, 5, 5, 7, 7])


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


def test_session_turns_a_log_write_error_into_a_warning(tmp_path, monkeypatch):
    from jbrain.config import BrainConfig
    from jbrain.session import Session

    session = Session.new(BrainConfig(n_neurons=1000, output_channels=8), seed=0, workdir=str(tmp_path))
    monkeypatch.setattr(logs, "format_lines", lambda *_: (_ for _ in ()).throw(OSError(28, "No space left")))
    session.run(10)
    session.run(10)  # the brain keeps running
    assert session.step == 20
    session.close(save=False)
    assert session.warnings == [
        f"{tmp_path / logs.LOG_NAME} is missing lines (No space left); the brain keeps "
        "running: free disk space or fix WORKDIR"
    ]
