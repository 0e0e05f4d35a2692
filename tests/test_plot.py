"""Spike recording (the plan's `record_spikes`, jbrain/raster.py) and the
plots (jbrain/plots.py, `jbrain plot`), per-population rates included."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import matplotlib.figure
import numpy as np
import pytest
from conftest import ROOT, cli_env, jbrain_cli, small

from jbrain import plan as plans
from jbrain import plots
from jbrain.logs import HEADER
from jbrain.raster import SpikeRecorder, read_spikes
from jbrain.session import Session

PNG = b"\x89PNG\r\n\x1a\n"


def test_session_records_the_spikes_of_the_first_r_neurons(tmp_path):
    config = small()
    plan = plans.resolve(config.circuit(), record_spikes=50)
    s = Session.new(config, seed=0, workdir=str(tmp_path), plan=plan)
    m1 = s.run(30)
    m2 = s.run(20)
    s.close()
    meta = json.loads((tmp_path / "spikes.json").read_text())
    assert meta == {
        "format": "jbrain-spikes/1",
        "neurons": 50,
        "first_step": 1,
        "dtype": "uint8",
        "layout": "row-major (steps, neurons)",
    }
    raw = np.fromfile(tmp_path / "spikes.u8", np.uint8).reshape(-1, 50)  # the documented format
    assert raw.shape == (50, 50)
    np.testing.assert_array_equal(raw, np.concatenate([m1["raster"], m2["raster"]]))
    assert raw.any() and set(np.unique(raw)) <= {0, 1}
    # the rows are the neurons' spikes: their sum is part of the step's spike count
    assert np.all(raw.sum(1) <= np.concatenate([m1["spikes"], m2["spikes"]]))
    # and the last row is the state's spikes of those neurons
    np.testing.assert_array_equal(raw[-1], np.asarray(s.state.neurons.spikes)[:50])
    first, spikes = read_spikes(str(tmp_path))
    assert first == 1 and np.array_equal(spikes, raw)


def test_a_restored_brain_continues_the_recording_and_a_new_one_restarts(tmp_path):
    d = str(tmp_path)
    rec = SpikeRecorder(d, 4, start_step=0)
    rec.append(1, np.ones((10, 4), np.uint8))
    rec.close()
    rec = SpikeRecorder(d, 4, start_step=6)  # a brain restored at step 6: rows 7.. are cut
    assert rec.next_step == 7
    rec.append(7, np.zeros((2, 4), np.uint8))
    rec.close()
    first, spikes = read_spikes(d)
    assert first == 1 and spikes.shape == (8, 4) and spikes[:6].all() and not spikes[6:].any()
    with pytest.raises(ValueError) as e:
        SpikeRecorder(d, 4, start_step=8).append(20, np.zeros((1, 4), np.uint8))
    assert str(e.value) == "spike rows must be contiguous: got step 20, not 9"
    assert SpikeRecorder.open(d, 0, start_step=0) is None  # a new brain recording nothing
    assert read_spikes(d) is None and not (tmp_path / "spikes.u8").exists()


def test_a_two_population_run_is_recorded_and_plotted(tmp_path):
    """`jbrain run` of the ei preset: its log has rate_E and rate_I, and
    `jbrain plot` draws the metrics and the raster."""
    p = jbrain_cli(
        "run", "--flagfile=experiments/configs/ei.flags", "--n_neurons=4000", "--steps=300",
        "--record_spikes=64", f"--workdir={tmp_path}",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert os.path.getsize(tmp_path / "spikes.u8") == 300 * 64
    head = (tmp_path / "brain_debug.log").read_text().splitlines()[0]
    assert head == HEADER + "\trate_E\trate_I"
    p = jbrain_cli("plot", f"--workdir={tmp_path}", "--raster_steps=100")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == [
        f"wrote {tmp_path}/brain_debug.png (300 steps)",
        f"wrote {tmp_path}/spikes.png (100 steps x 64 neurons)",
    ]
    for name in ("brain_debug.png", "spikes.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG


def _log(path, rows: int, populations: tuple[str, ...] = ()) -> None:
    head = HEADER + "".join(f"\trate_{p}" for p in populations)
    body = "".join(
        f"{i}\t{i}\t0.05\t0.01\t1.0" + "".join(f"\t{0.01 * (k + 1)}" for k in range(len(populations))) + "\n"
        for i in range(1, rows + 1)
    )
    path.write_text(head + "\n" + body)


@pytest.fixture
def drawn(monkeypatch):
    """The rate panel's lines (label, y data) of every figure saved."""
    figures = []
    save = matplotlib.figure.Figure.savefig

    def spy(fig, *args, **kwargs):
        figures.append([(line.get_label(), line.get_ydata()) for line in fig.axes[0].lines])
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    return figures


def test_the_rate_panel_has_a_line_per_population(tmp_path, drawn):
    _log(tmp_path / "two.log", 20, ("E", "I"))
    _log(tmp_path / "one.log", 20)
    assert plots.plot_metrics(str(tmp_path / "two.log"), str(tmp_path / "two.png")) == 20
    assert plots.plot_metrics(str(tmp_path / "one.log"), str(tmp_path / "one.png")) == 20
    two, one = drawn
    assert [label for label, _ in two] == ["all", "E", "I"]
    np.testing.assert_allclose(two[1][1], 0.01)
    np.testing.assert_allclose(two[2][1], 0.02)
    assert len(one) == 1 and one[0][0].startswith("_")  # one population: one unlabelled line
    assert (tmp_path / "two.png").read_bytes()[:8] == PNG


def test_plot_without_a_recording_draws_the_metrics_only(tmp_path):
    _log(tmp_path / "brain_debug.log", 50)
    with open(tmp_path / "brain_debug.log", "a") as f:
        f.write("51\t3\t0.0")  # half a line, still being written
    p = jbrain_cli("plot", f"--workdir={tmp_path}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == [
        f"wrote {tmp_path}/brain_debug.png (50 steps)",
        "no spike raster: nothing was recorded (run with --record_spikes=N to record N neurons)",
    ]
    assert not (tmp_path / "spikes.png").exists()


def test_bad_logs_are_errors_naming_the_file(tmp_path):
    log = tmp_path / "brain_debug.log"
    with pytest.raises(ValueError) as e:
        plots.load_metrics(str(log))
    assert str(e.value) == f"no debug log at {log}: run `jbrain run` or `jbrain chat` with this --workdir"
    log.write_text(HEADER + "\n")
    with pytest.raises(ValueError, match=r"has no steps yet: run the brain first$"):
        plots.load_metrics(str(log))
    log.write_text("hello\n1\t2\n")
    with pytest.raises(ValueError) as e:
        plots.load_metrics(str(log))
    assert str(e.value) == f"{log} is not a jbrain debug log: its first line is 'hello', expected {HEADER!r}"
    log.write_text(HEADER + "\trate_E\n1\t2\t0.1\t0.1\t1.0\n")
    with pytest.raises(ValueError) as e:
        plots.load_metrics(str(log))
    assert str(e.value) == f"{log} has 5 columns but its header names 6"


def test_plot_errors_are_one_line_exit_2(tmp_path):
    p = jbrain_cli("plot", f"--workdir={tmp_path / 'nowhere'}")
    assert p.returncode == 2 and p.stdout == b""
    assert p.stderr.decode() == (
        f"jbrain plot: error: --workdir='{tmp_path / 'nowhere'}' is not a folder: "
        "pass the --workdir of a run or chat\n"
    )
    p = jbrain_cli("plot", f"--workdir={tmp_path}")
    assert p.returncode == 2
    assert p.stderr.decode() == (
        f"jbrain plot: error: no debug log at {tmp_path}/brain_debug.log: run `jbrain run` or "
        "`jbrain chat` with this --workdir\n"
    )


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from experiments.cli import main\nmain(['jbrain', *sys.argv[1:]])"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, "plot", f"--workdir={tmp_path}"],
        capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2
    assert (
        p.stderr
        == "jbrain plot: error: matplotlib is not installed: install it with pip install 'jbrain[plot]'\n"
    )


def test_long_logs_are_averaged_down(tmp_path):
    log = tmp_path / "brain_debug.log"
    n = 10_000
    log.write_text(HEADER + "\n" + "".join(f"{i}\t1\t{i % 2}\t0.0\t1.0\n" for i in range(1, n + 1)))
    cols = plots.load_metrics(str(log))
    assert cols["step"].shape == (n,)
    x, y = plots._downsample(cols["step"], cols["rate"], 1000)
    assert x.shape == (1000,) and np.allclose(y, 0.5)
    np.testing.assert_allclose(x[:2], [5.5, 15.5])  # block means of the steps
    assert plots.plot_metrics(str(log), str(tmp_path / "m.png"), max_points=1000) == n
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG
