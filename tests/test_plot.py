"""Spike recording (`--record_spikes`) and `jbrain plot`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jbrain import plots
from jbrain.config import BrainConfig
from jbrain.logs import HEADER
from jbrain.raster import SpikeRecorder, read_spikes
from jbrain.session import Session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"


def cli(*args: str, pre: str = "") -> subprocess.CompletedProcess:
    """`python -m jbrain.cli ARGS`; `pre` is Python run before the CLI (e.g. to hide a module)."""
    code = f"{pre}\nimport sys\nfrom jbrain.cli import main\nmain(['jbrain', *sys.argv[1:]])"
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    env.pop("OUT", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


def test_session_records_the_spikes_of_the_first_r_neurons(tmp_path):
    s = Session.new(BrainConfig(n_neurons=2000, record_spikes=50), seed=0, workdir=str(tmp_path))
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
    with pytest.raises(ValueError, match="contiguous"):
        SpikeRecorder(d, 4, start_step=8).append(20, np.zeros((1, 4), np.uint8))
    assert SpikeRecorder.open(d, 0, start_step=0) is None  # a new brain recording nothing
    assert read_spikes(d) is None and not (tmp_path / "spikes.u8").exists()


def test_run_records_and_plot_draws_both_pngs(tmp_path):
    p = cli("run", "--n_neurons=2000", "--steps=300", "--record_spikes=64", f"--workdir={tmp_path}")
    assert p.returncode == 0, p.stderr
    assert os.path.getsize(tmp_path / "spikes.u8") == 300 * 64
    p = cli("plot", f"--workdir={tmp_path}", "--raster_steps=100")
    assert p.returncode == 0, p.stderr
    assert f"wrote {tmp_path}/brain_debug.png (300 steps)" in p.stdout
    assert f"wrote {tmp_path}/spikes.png (100 steps x 64 neurons)" in p.stdout
    for name in ("brain_debug.png", "spikes.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG


def test_plot_without_a_recording_draws_the_metrics_only(tmp_path):
    (tmp_path / "brain_debug.log").write_text(
        HEADER
        + "\n"
        + "".join(f"{i}\t{i}\t0.05\t0.01\t1.0\n" for i in range(1, 51))
        + "51\t3\t0.0"  # half a line
    )
    p = cli("plot", f"--workdir={tmp_path}")
    assert p.returncode == 0, p.stderr
    assert (
        "(50 steps)" in p.stdout
        and "no spike raster: nothing was recorded (run with --record_spikes=N" in p.stdout
    )
    assert not (tmp_path / "spikes.png").exists()


def test_plot_errors_are_one_line(tmp_path):
    p = cli("plot", f"--workdir={tmp_path / 'nowhere'}")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"jbrain plot: error: --workdir='{tmp_path / 'nowhere'}' is not a folder: " + (
        "pass the --workdir of a run or chat"
    )
    p = cli("plot", f"--workdir={tmp_path}")
    assert p.returncode == 2
    assert p.stderr.strip().startswith(f"jbrain plot: error: no debug log at {tmp_path}/brain_debug.log: run")
    (tmp_path / "brain_debug.log").write_text(HEADER + "\n")
    p = cli("plot", f"--workdir={tmp_path}")
    assert p.returncode == 2 and "has no steps yet: run the brain first" in p.stderr
    (tmp_path / "brain_debug.log").write_text("hello\n")
    p = cli("plot", f"--workdir={tmp_path}")
    assert p.returncode == 2 and "is not a jbrain debug log" in p.stderr


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path):
    p = cli("plot", f"--workdir={tmp_path}", pre="import sys; sys.modules['matplotlib'] = None")
    assert p.returncode == 2
    assert p.stderr.strip() == (
        "jbrain plot: error: matplotlib is not installed: install it with pip install 'jbrain[plot]'"
    )


def test_long_logs_are_averaged_down(tmp_path):
    log = tmp_path / "brain_debug.log"
    n = 10_000
    log.write_text(HEADER + "\n" + "".join(f"{i}\t1\t{i % 2}\t0.0\t1.0\n" for i in range(1, n + 1)))
    cols = plots.load_metrics(str(log))
    assert cols["step"].shape == (n,)
    x, y = plots._downsample(cols["step"], cols["rate"], 1000)
    assert x.shape == (1000,) and np.allclose(y, 0.5)
    assert plots.plot_metrics(str(log), str(tmp_path / "m.png"), max_points=1000) == n
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG
