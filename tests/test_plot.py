"""Spike recording (the plan's `record_spikes`, jbrain/raster.py) and the
plots (jbrain/plots.py, `jbrain plot`): per-population rates, the rate
spectra, and the recorded sheet (`--record_sheet`, jbrain/sheet.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import matplotlib.figure
import numpy as np
import pytest
from conftest import ROOT, cli_env, jbrain_cli, preset_config, small
from PIL import Image

from jbrain import plan as plans
from jbrain import plots, sheet
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
    lines = p.stdout.decode().splitlines()
    assert lines[0] == f"wrote {tmp_path}/brain_debug.png (300 steps)"
    assert lines[-1] == f"wrote {tmp_path}/spikes.png (100 steps x 64 neurons)"
    peak = r"peak \d+\.\d Hz, \d+% of the power within \d+\.\d-\d+\.\d Hz"
    assert [re.fullmatch(f"spectrum of (\\w+): {peak}", line)[1] for line in lines[1:-1]] == [
        "rate",
        "rate_E",
        "rate_I",
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
    assert plots.plot_metrics(str(tmp_path / "two.log"), str(tmp_path / "two.png"))[0] == 20
    assert plots.plot_metrics(str(tmp_path / "one.log"), str(tmp_path / "one.png"))[0] == 20
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
        "spectrum of rate: flat (no power once the mean and trend are removed)",
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
    assert plots.plot_metrics(str(log), str(tmp_path / "m.png"), max_points=1000)[0] == n
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG


# ---------------------------------------------------------------- spectra ---


def test_the_spectrum_of_a_sine_peaks_at_its_frequency_in_hz():
    """A 40 Hz sine sampled every 1 ms (25 steps a period) over a mean and
    a little noise: the peak is at 40 Hz and holds nearly all the power;
    the same samples 0.1 ms apart are a 400 Hz sine."""
    rng = np.random.default_rng(0)
    t = np.arange(4000)
    x = 0.05 + 0.01 * np.sin(2 * np.pi * t / 25) + 0.0005 * rng.standard_normal(t.size)
    freqs, power = plots.power_spectrum(x, 1.0, segment=250)
    assert freqs.shape == power.shape == (126,)
    assert freqs[1] == pytest.approx(4.0) and freqs[-1] == pytest.approx(500.0)  # fs / L and Nyquist
    assert power[0] < 1e-5 * power.max()  # mean and trend removed: only the window leakage is left
    peak, share, half = plots.spectral_peak(freqs, power)
    assert peak == pytest.approx(40.0) and share > 0.95 and half == pytest.approx(8.0)
    # power in x-units^2 / Hz: its integral is the variance of the sine, a^2 / 2
    assert power.sum() * freqs[1] == pytest.approx(0.01**2 / 2, rel=0.05)
    freqs, power = plots.power_spectrum(x, 0.1, segment=250)
    assert plots.spectral_peak(freqs, power)[0] == pytest.approx(400.0)
    # white noise: no peak stands out
    freqs, power = plots.power_spectrum(rng.standard_normal(4000), 1.0)
    assert plots.spectral_peak(freqs, power)[1] < 0.2


def test_a_flat_or_short_trace():
    freqs, power = plots.power_spectrum(np.full(100, 0.05), 1.0)
    assert freqs.shape == (51,) and not power.any()  # shorter than a segment: one segment of 100
    peak, share, _ = plots.spectral_peak(freqs, power)
    assert np.isnan(peak) and share == 0.0
    with pytest.raises(ValueError, match=r"a spectrum needs a trace of >= 4 samples, got shape \(3,\)"):
        plots.power_spectrum(np.zeros(3), 1.0)
    cols = {"rate": np.zeros(10)}
    assert plots.rate_spectra(cols, 1.0) == []


def test_plot_reads_dt_from_the_newest_checkpoint_and_prints_the_peaks(tmp_path):
    """A log whose rates oscillate with a period of 16 steps, in a workdir
    whose checkpoint says dt = 0.5 ms: 125 Hz, for the rate of all and of E."""
    t = np.arange(1, 1025)  # one Welch segment of 1,024 samples: 125 Hz is bin 64
    wave = 0.05 + 0.02 * np.sin(2 * np.pi * t / 16)
    body = "".join(f"{i}\t1\t{r:.6f}\t0.0\t1.0\t{r:.6f}\t0.05\n" for i, r in zip(t, wave, strict=True))
    (tmp_path / "brain_debug.log").write_text(HEADER + "\trate_E\trate_I\n" + body)
    assert plots.workdir_dt(str(tmp_path)) == (1.0, "default")
    for step, dt in ((500, 0.25), (1000, 0.5)):
        meta = tmp_path / "checkpoints" / str(step) / "meta"
        meta.mkdir(parents=True)
        (meta / "metadata").write_text(json.dumps({"circuit": {"dt": dt}}))
    assert plots.workdir_dt(str(tmp_path)) == (0.5, f"{tmp_path}/checkpoints/1000/meta/metadata")
    p = jbrain_cli("plot", f"--workdir={tmp_path}")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[1].startswith("spectrum of rate: peak 125.0 Hz, ")
    assert lines[2].startswith("spectrum of rate_E: peak 125.0 Hz, ")
    assert lines[3] == "spectrum of rate_I: flat (no power once the mean and trend are removed)"
    assert (tmp_path / "brain_debug.png").read_bytes()[:8] == PNG


# ------------------------------------------------------------------ sheet ---

# 1,600 E and 400 I on 50 x 40
CORTEX = {"sheet": (50, 40), "n_neurons": 2000, "radius": 5.0, "input_channels": 16, "output_channels": 8}
CORTEX_FLAGS = (
    "--flagfile=experiments/configs/cortex_small.flags", "--sheet=50x40", "--n_neurons=2000", "--radius=5",
    "--input_channels=16", "--output_channels=8",
)  # fmt: skip


def test_the_sheet_maps_each_neurons_spikes_to_its_cell(tmp_path):
    """A recording where neuron i fires at steps i % 7 == t % 7: every cell
    of the sheet counts the spikes of the neuron placed there, E and I apart."""
    circuit = preset_config("cortex_small", **CORTEX).circuit()
    rec = sheet.SheetRecorder(str(tmp_path), circuit, 30)
    ids = np.arange(circuit.n)
    spikes = np.stack([(ids % 7 == t % 7) for t in range(30)]).astype(np.uint8)
    words = np.packbits(spikes, axis=1, bitorder="little")
    words = np.pad(words, ((0, 0), (0, 4 * sheet.words_per_step(circuit.n) - words.shape[1]))).view("<u4")
    assert rec.take(1, words[:20]) == 10 and rec.take(21, words[20:]) == 0
    rec.close()
    got = plots.load_sheet(str(tmp_path), last_steps=12)
    assert got.first_step == 19 and np.array_equal(got.spikes, spikes[18:])
    e, i = got.counts(0, 12)
    for name, grid in (("E", e), ("I", i)):
        rows, cols = circuit.population(name).placement.cells()
        want = spikes[18:, circuit.offset(name) + np.arange(circuit.population(name).size)].sum(0)
        np.testing.assert_array_equal(grid[rows, cols], want)
    assert e.sum() + i.sum() == spikes[18:].sum()
    # I takes the last row of every five, E the others
    np.testing.assert_array_equal(got.owner[:, 0], np.tile([1, 1, 1, 1, -1], 10))


def test_run_records_the_sheet_and_plot_draws_it(tmp_path):
    p = jbrain_cli(
        "run", *CORTEX_FLAGS, "--steps=60", "--burst=30", "--record_sheet=50", f"--workdir={tmp_path}"
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert (
        f"recording the spikes of all 2000 neurons for steps 1-50 to {tmp_path}/sheet.bits"
        in p.stderr.decode()
    )
    assert os.path.getsize(tmp_path / "sheet.bits") == 50 * 63 * 4
    p = jbrain_cli("plot", "--sheet", f"--workdir={tmp_path}", "--sheet_steps=20", "--gif_frames=40")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == [
        f"wrote {tmp_path}/sheet.png (steps 31-50, 20 steps)",
        f"wrote {tmp_path}/sheet.gif (40 frames)",
    ]
    assert (tmp_path / "sheet.png").read_bytes()[:8] == PNG
    with Image.open(tmp_path / "sheet.gif") as gif:
        assert gif.n_frames == 40 and gif.size == (600, 750)  # 40 x 50 cells, 15 pixels each


def test_plot_sheet_without_a_sheet_or_a_recording_says_how_to_record_one(tmp_path):
    hint = (
        "run with --record_sheet=STEPS and a sheet preset, e.g. `jbrain run "
        f"--flagfile=experiments/configs/cortex_small.flags --record_sheet=200 --workdir={tmp_path}`"
    )
    p = jbrain_cli("plot", "--sheet", f"--workdir={tmp_path}")
    assert p.returncode == 2 and p.stdout == b""
    assert p.stderr.decode() == f"jbrain plot: error: no sheet recording in {tmp_path}: {hint}\n"
    rec = sheet.SheetRecorder(str(tmp_path), small().circuit(), 5)
    rec.take(1, np.zeros((5, 63), np.uint32))
    rec.close()
    p = jbrain_cli("plot", "--sheet", f"--workdir={tmp_path}")
    assert p.returncode == 2
    assert p.stderr.decode() == (
        f"jbrain plot: error: the brain recorded in {tmp_path} has no sheet (circuit 'seed' lies on a ring): "
        f"{hint}\n"
    )


@pytest.mark.parametrize("command", ["run", "chat"])
def test_a_negative_record_sheet_is_a_one_line_error_exit_2(command, tmp_path):
    p = jbrain_cli(command, "--n_neurons=2000", "--record_sheet=-3", f"--workdir={tmp_path}", stdin=b"hi\n")
    assert p.returncode == 2 and p.stdout == b""
    assert p.stderr.decode() == (
        f"jbrain {command}: error: --record_sheet=-3 must be >= 0: the steps whose spikes go to "
        "WORKDIR/sheet.bits (0: none)\n"
    )
