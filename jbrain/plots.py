"""PNG plots of a workdir: the debug log's metrics and the recorded spike raster.

Matplotlib is an optional extra (`pip install 'jbrain[plot]'`); it is imported
only here, lazily, with the Agg backend (no display needed).

    plot_metrics(log_path, png_path)   firing rate, mean threshold, mean input vs step
    plot_raster(workdir, png_path)     spikes of the recorded neurons vs step
"""

from __future__ import annotations

import os

import numpy as np

from jbrain.logs import HEADER
from jbrain.raster import read_spikes

NEEDED = ("step", "rate", "mean_threshold", "mean_input")  # debug-log columns plotted
INSTALL_HINT = "matplotlib is not installed: install it with pip install 'jbrain[plot]'"


class MissingExtra(ImportError):
    """An optional dependency is missing; the message says how to install it."""


def pyplot():
    """matplotlib.pyplot on the Agg backend; MissingExtra says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra(INSTALL_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Block means of (x, y) to at most max_points points (long logs stay readable)."""
    n = x.shape[0]
    if n <= max_points:
        return x, y
    block = -(-n // max_points)
    m = n // block * block
    return x[:m].reshape(-1, block).mean(1), y[:m].reshape(-1, block).mean(1)


def load_metrics(log_path: str) -> dict[str, np.ndarray]:
    """Columns of brain_debug.log (a line still being written is skipped):
    the five base columns and the per-population `rate_<name>` ones;
    ValueError if the log is missing, malformed or empty."""
    if not os.path.exists(log_path):
        raise ValueError(f"no debug log at {log_path}: run `jbrain run` or `jbrain chat` with this --workdir")
    with open(log_path, encoding="utf-8", errors="replace") as f:
        head = f.readline().rstrip("\n")
        body = [line for line in f if line.endswith("\n")]
    names = head.split("\t")
    if not set(NEEDED) <= set(names):
        raise ValueError(
            f"{log_path} is not a jbrain debug log: its first line is {head[:60]!r}, expected {HEADER!r}"
        )
    if not body:
        raise ValueError(f"{log_path} has no steps yet: run the brain first")
    try:
        data = np.loadtxt(body, delimiter="\t", ndmin=2)
    except ValueError as e:
        raise ValueError(f"{log_path} has a malformed line ({e})") from None
    if data.shape[1] != len(names):
        raise ValueError(f"{log_path} has {data.shape[1]} columns but its header names {len(names)}")
    keep = [*NEEDED, *(c for c in names if c.startswith("rate_"))]
    return {c: data[:, names.index(c)] for c in keep}


def plot_metrics(log_path: str, png_path: str, *, max_points: int = 5000) -> int:
    """Stacked panels from the debug log: firing rate (with one line per
    population when the log has `rate_<name>` columns), mean threshold,
    mean input. Returns the number of steps plotted."""
    cols = load_metrics(log_path)
    plt = pyplot()
    panels = (
        ("rate", "firing rate", "tab:red"),
        ("mean_threshold", "mean threshold", "tab:blue"),
        ("mean_input", "mean input", "tab:green"),
    )
    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(10, 7), constrained_layout=True)
    pops = [c for c in cols if c.startswith("rate_")]
    for ax, (key, label, color) in zip(axes, panels, strict=True):
        x, y = _downsample(cols["step"], cols[key], max_points)
        ax.plot(x, y, color=color, linewidth=0.8, label="all" if pops else None)
        if key == "rate" and pops:
            for c in pops:
                ax.plot(*_downsample(cols["step"], cols[c], max_points), linewidth=0.8, label=c[5:])
            ax.legend(loc="upper right", fontsize="small")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step (1 ms)")
    n = cols["step"].shape[0]
    axes[0].set_title(f"{os.path.basename(log_path)}: {n:,} steps")
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return n


def plot_raster(workdir: str, png_path: str, *, last_steps: int = 2000) -> tuple[int, int] | None:
    """Raster of the last `last_steps` recorded steps; None if nothing was recorded.

    Returns (steps plotted, neurons)."""
    rec = read_spikes(workdir)
    if rec is None or rec[1].shape[0] == 0:
        return None
    first_step, spikes = rec
    plt = pyplot()
    total, r = spikes.shape
    start = max(0, total - last_steps)
    window = np.asarray(spikes[start:])
    t, i = np.nonzero(window)
    fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
    size = float(np.clip(2000.0 / r, 0.5, 25.0))  # tick height shrinks with the neuron count
    ax.scatter(t + first_step + start, i, s=size, marker="|", color="black", linewidths=0.6)
    ax.set_xlim(first_step + start - 0.5, first_step + total - 0.5)
    ax.set_ylim(-0.5, r - 0.5)
    ax.set_xlabel("step (1 ms)")
    ax.set_ylabel("neuron")
    ax.set_title(f"spikes of neurons [0, {r}), steps {first_step + start}-{first_step + total - 1}")
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return window.shape[0], r
