"""jbrain plot: PNGs of a workdir written by `jbrain run` or `jbrain chat`.

    WORKDIR/brain_debug.png   firing rate, mean threshold and mean input vs step
                              (from brain_debug.log)
    WORKDIR/spikes.png        spike raster of the recorded neurons, when the run
                              had --record_spikes=N (spikes.u8 + spikes.json)

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
flags.DEFINE_string("out", "", "Folder for the PNGs; empty: the workdir.")
flags.DEFINE_integer("raster_steps", 2000, "The raster shows the last this many recorded steps.")
flags.DEFINE_integer("max_points", 5000, "Long logs are averaged in blocks down to this many points.")

METRICS_PNG = "brain_debug.png"
RASTER_PNG = "spikes.png"


def main(argv: list[str]) -> None:
    del argv
    if not os.path.isdir(FLAGS.workdir):
        raise ValueError(f"--workdir={FLAGS.workdir!r} is not a folder: pass the --workdir of a run or chat")
    if FLAGS.raster_steps < 1:
        raise ValueError(f"--raster_steps={FLAGS.raster_steps} must be >= 1")
    if FLAGS.max_points < 2:
        raise ValueError(f"--max_points={FLAGS.max_points} must be >= 2")
    try:
        plots.pyplot()
    except plots.MissingExtra as e:
        common.fail("plot", str(e))
    out = FLAGS.out or FLAGS.workdir
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise ValueError(
            f"--out={out!r} cannot be created ({e.strerror or e}): pass a folder you can write to"
        ) from None
    metrics_png = os.path.join(out, METRICS_PNG)
    steps = plots.plot_metrics(
        os.path.join(FLAGS.workdir, LOG_NAME), metrics_png, max_points=FLAGS.max_points
    )
    print(f"wrote {metrics_png} ({steps:,} steps)")
    raster_png = os.path.join(out, RASTER_PNG)
    shown = plots.plot_raster(FLAGS.workdir, raster_png, last_steps=FLAGS.raster_steps)
    if shown is None:
        print("no spike raster: nothing was recorded (run with --record_spikes=N to record N neurons)")
    else:
        print(f"wrote {raster_png} ({shown[0]:,} steps x {shown[1]:,} neurons)")


def launch(argv: list[str]) -> None:
    common.run_app("plot", main, argv)


if __name__ == "__main__":
    launch(sys.argv)
