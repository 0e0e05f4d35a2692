"""jbrain plot: pictures of a workdir written by `jbrain run` or `jbrain chat`.

    WORKDIR/brain_debug.png   firing rate, mean threshold and mean input vs step,
                              and the power spectrum of the rate (all, and per
                              population) with its peak marked (from brain_debug.log;
                              dt from the newest checkpoint, else 1 ms); one line
                              per rate trace on stdout: peak frequency and its share
                              of the power
    WORKDIR/spikes.png        spike raster of the recorded neurons, when the run
                              had --record_spikes=N (spikes.u8 + spikes.json)

With --sheet, instead (a run with --record_sheet=STEPS of a brain on a 2-D sheet,
e.g. --flagfile=experiments/configs/cortex_small.flags; sheet.bits + sheet.json):

    WORKDIR/sheet.png         spikes per neuron over the last --sheet_steps recorded
                              steps at each neuron's sheet position, excitatory and
                              inhibitory cells in their own colours, regions outlined
    WORKDIR/sheet.gif         the last --gif_frames recorded steps, one frame each

Needs matplotlib: pip install 'jbrain[plot]'.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from experiments import common
from jbrain import plots
from jbrain.logs import LOG_NAME

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "runs/default", "Workdir of a run or chat (holds brain_debug.log).")
flags.DEFINE_string("out", "", "Folder for the pictures; empty: the workdir.")
flags.DEFINE_integer("raster_steps", 2000, "The raster shows the last this many recorded steps.")
flags.DEFINE_integer("max_points", 5000, "Long logs are averaged in blocks down to this many points.")
flags.DEFINE_boolean("sheet", False, "Draw the recorded sheet (sheet.png, sheet.gif) instead; see above.")
flags.DEFINE_integer("sheet_steps", 20, "--sheet: sheet.png sums the spikes of the last this many steps.")
flags.DEFINE_integer("gif_frames", 400, "--sheet: sheet.gif shows the last this many recorded steps.")
flags.DEFINE_integer("gif_ms", 60, "--sheet: milliseconds per frame of sheet.gif.")

METRICS_PNG = "brain_debug.png"
RASTER_PNG = "spikes.png"
SHEET_PNG = "sheet.png"
SHEET_GIF = "sheet.gif"


def main(argv: list[str]) -> None:
    del argv
    if not os.path.isdir(FLAGS.workdir):
        raise ValueError(f"--workdir={FLAGS.workdir!r} is not a folder: pass the --workdir of a run or chat")
    for name in ("raster_steps", "sheet_steps", "gif_frames", "gif_ms"):
        if FLAGS[name].value < 1:
            raise ValueError(f"--{name}={FLAGS[name].value} must be >= 1")
    if FLAGS.max_points < 2:
        raise ValueError(f"--max_points={FLAGS.max_points} must be >= 2")
    try:
        plots.pyplot()
        if FLAGS.sheet:
            plots.pillow_image()
    except plots.MissingExtra as e:
        common.fail("plot", str(e))
    out = FLAGS.out or FLAGS.workdir
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise ValueError(
            f"--out={out!r} cannot be created ({e.strerror or e}): pass a folder you can write to"
        ) from None
    if FLAGS.sheet:
        plot_sheet(out)
        return
    metrics_png = os.path.join(out, METRICS_PNG)
    dt_ms, _ = plots.workdir_dt(FLAGS.workdir)
    steps, spectra = plots.plot_metrics(
        os.path.join(FLAGS.workdir, LOG_NAME), metrics_png, max_points=FLAGS.max_points, dt_ms=dt_ms
    )
    print(f"wrote {metrics_png} ({steps:,} steps)")
    for spectrum in spectra:
        print(spectrum.describe())
    raster_png = os.path.join(out, RASTER_PNG)
    shown = plots.plot_raster(FLAGS.workdir, raster_png, last_steps=FLAGS.raster_steps)
    if shown is None:
        print("no spike raster: nothing was recorded (run with --record_spikes=N to record N neurons)")
    else:
        print(f"wrote {raster_png} ({shown[0]:,} steps x {shown[1]:,} neurons)")


def plot_sheet(out: str) -> None:
    """--sheet: sheet.png and sheet.gif (a missing recording or sheet is a ValueError with the fix)."""
    png, gif = os.path.join(out, SHEET_PNG), os.path.join(out, SHEET_GIF)
    shown = plots.plot_sheet(
        FLAGS.workdir,
        png,
        gif,
        last_steps=FLAGS.sheet_steps,
        max_frames=FLAGS.gif_frames,
        frame_ms=FLAGS.gif_ms,
    )
    print(f"wrote {png} (steps {shown['first']}-{shown['last']}, {shown['steps']} steps)")
    print(f"wrote {gif} ({shown['frames']} frames)")


def launch(argv: list[str]) -> None:
    common.run_app("plot", main, argv)


if __name__ == "__main__":
    launch(sys.argv)
