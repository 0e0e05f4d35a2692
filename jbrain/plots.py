"""Plots of a workdir: the debug log's metrics and rate spectra, the recorded
spike raster, and the recorded sheet (a PNG snapshot and a GIF).

Matplotlib is an optional extra (`pip install 'jbrain[plot]'`; Pillow, which
writes the GIF, comes with it); both are imported only here, lazily, with
the Agg backend (no display needed).

    plot_metrics(log_path, png_path)   firing rate, mean threshold, mean input vs step,
                                       and the power spectra of the rate traces
    plot_raster(workdir, png_path)     spikes of the recorded neurons vs step
    plot_sheet(workdir, png, gif)      spike counts on the 2-D sheet, regions outlined
    power_spectrum, spectral_peak      Welch power spectrum of a trace, and its peak
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re

import numpy as np

from jbrain import sheet
from jbrain.circuit import Circuit
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


def pillow_image():
    """PIL.Image (Pillow, matplotlib's own dependency); MissingExtra says how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise MissingExtra("Pillow is not installed: install it with pip install 'jbrain[plot]'") from None
    return Image


# ------------------------------------------------------------ spectra ---


def power_spectrum(x: np.ndarray, dt_ms: float, *, segment: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """One-sided power spectral density of a trace sampled every `dt_ms`, by
    Welch's method: segments of L = min(segment, T) samples overlapping by
    half, each less its mean and its least-squares slope (d_n = x_n - mean -
    b (n - (L-1)/2)) and times a Hann window w, averaged:

        P(f_k) = 2 |sum_n w_n d_n e^(-2 pi i k n / L)|^2 / (fs sum_n w_n^2),
        f_k = k fs / L, k = 0 .. L/2, fs = 1000 / dt_ms Hz

    (the DC and Nyquist bins are not doubled). x: (T,) any real units, T >=
    4. Returns (freqs (L//2 + 1,) Hz, power (L//2 + 1,) in x-units^2 / Hz);
    sum(power) * fs / L is the variance of d (Parseval, up to the windowing).
    Averaging segments trades frequency resolution (fs / L) for a steadier
    estimate; the default L = 1024 resolves ~1 Hz at dt = 1 ms, fine enough
    for the slow (theta, delta) rhythms. Removing each segment's trend, not only its mean, keeps slow
    drifts (a newborn brain's rate settling under homeostasis) out of the
    lowest bins, where they would hide an oscillation; the DC bin holds only
    the window's leakage (`spectral_peak` skips it), and a constant trace
    has no power."""
    x = np.asarray(x, np.float64)
    if x.ndim != 1 or x.shape[0] < 4:
        raise ValueError(f"a spectrum needs a trace of >= 4 samples, got shape {x.shape}")
    if not dt_ms > 0:
        raise ValueError(f"dt={dt_ms} must be > 0 ms")
    n = x.shape[0]
    length = min(segment, n)
    hop = max(1, length // 2)
    starts = np.arange(0, n - length + 1, hop)
    segs = np.stack([x[s : s + length] for s in starts])
    t = np.arange(length) - (length - 1) / 2.0
    centred = segs - segs.mean(axis=1, keepdims=True)
    slope = (centred @ t) / max(float(t @ t), 1e-300)
    # a constant segment is exactly 0 (x - mean(x) is not, in floating point)
    segs = np.where(np.ptp(segs, axis=1, keepdims=True) == 0, 0.0, centred - slope[:, None] * t)
    window = np.hanning(length + 2)[1:-1]  # no zero end points: short segments keep their samples
    fs = 1000.0 / dt_ms
    spec = np.abs(np.fft.rfft(segs * window, axis=1)) ** 2
    power = spec.mean(axis=0) / (fs * np.sum(window**2))
    power[1 : length // 2 + (length % 2)] *= 2.0  # one-sided: every bin but DC and Nyquist
    return np.fft.rfftfreq(length, d=dt_ms / 1000.0), power


def spectral_peak(freqs: np.ndarray, power: np.ndarray, *, half_width: int = 2) -> tuple[float, float, float]:
    """The strongest non-zero frequency of a spectrum and how much of the
    power lies near it: (peak Hz, share, band half-width Hz), share = the
    power of the bins within `half_width` bins of the peak (the Hann
    window's main lobe is 2 bins each side) over the power of every bin
    above 0 Hz, in [0, 1]. A flat trace (no power) gives (nan, 0, nan)."""
    body = power[1:]
    total = float(body.sum())
    if body.size == 0 or not total > 0:
        return float("nan"), 0.0, float("nan")
    k = int(np.argmax(body))
    band = float(body[max(0, k - half_width) : k + half_width + 1].sum())
    df = float(freqs[1] - freqs[0])
    return float(freqs[k + 1]), band / total, half_width * df


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """A rate trace's spectrum (`power_spectrum`) and its peak (`spectral_peak`)."""

    name: str  # the debug-log column: "rate" or "rate_<population>"
    freqs: np.ndarray  # (F,) Hz
    power: np.ndarray  # (F,) rate^2 / Hz
    peak_hz: float
    share: float
    band_hz: float

    def describe(self) -> str:
        """One line: the peak and its share of the power."""
        if self.share == 0.0:
            return f"spectrum of {self.name}: flat (no power once the mean and trend are removed)"
        return (
            f"spectrum of {self.name}: peak {self.peak_hz:.1f} Hz, {100 * self.share:.0f}% of the power "
            f"within {max(0.0, self.peak_hz - self.band_hz):.1f}-{self.peak_hz + self.band_hz:.1f} Hz"
        )


def rate_spectra(cols: dict[str, np.ndarray], dt_ms: float, *, segment: int = 1024) -> list[Spectrum]:
    """Spectra of the debug log's `rate` and every `rate_<population>` column
    (`load_metrics`); empty when the log has fewer than 16 steps."""
    if cols["rate"].shape[0] < 16:
        return []
    out = []
    for name in ["rate", *(c for c in cols if c.startswith("rate_"))]:
        f, p = power_spectrum(cols[name], dt_ms, segment=segment)
        out.append(Spectrum(name, f, p, *spectral_peak(f, p)))
    return out


_STEP_DIR = re.compile(r"\d+")


def workdir_dt(workdir: str) -> tuple[float, str]:
    """The step length dt (ms) of WORKDIR's brain and where it was read:
    the newest checkpoint's metadata (its circuit), else the sheet
    recording's sidecar, else (1.0, "default"). Reads JSON only."""
    folders = glob.glob(os.path.join(glob.escape(workdir), "checkpoints", "*"))
    steps = sorted((int(os.path.basename(f)), f) for f in folders if _STEP_DIR.fullmatch(os.path.basename(f)))
    for _, folder in reversed(steps):
        path = os.path.join(folder, "meta", "metadata")
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
            return float(meta.get("circuit", meta.get("config"))["dt"]), path
        except (OSError, ValueError, TypeError, KeyError):
            continue
    meta = sheet.read_meta(workdir)
    if meta is not None and "dt" in meta.get("circuit", {}):
        return float(meta["circuit"]["dt"]), os.path.join(workdir, sheet.META_NAME)
    return 1.0, "default"


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


def plot_metrics(
    log_path: str, png_path: str, *, max_points: int = 5000, dt_ms: float = 1.0
) -> tuple[int, list[Spectrum]]:
    """Stacked panels from the debug log: firing rate (with one line per
    population when the log has `rate_<name>` columns), mean threshold,
    mean input vs step, and the power spectra of the rate traces in Hz
    (`rate_spectra`, dt_ms: the step length), their peaks marked. Returns
    (the number of steps plotted, the spectra)."""
    cols = load_metrics(log_path)
    spectra = rate_spectra(cols, dt_ms)
    plt = pyplot()
    panels = (
        ("rate", "firing rate", "tab:red"),
        ("mean_threshold", "mean threshold", "tab:blue"),
        ("mean_input", "mean input", "tab:green"),
    )
    fig = plt.figure(figsize=(10, 9.5), constrained_layout=True)
    grid = fig.add_gridspec(len(panels) + 1, 1, height_ratios=[1] * len(panels) + [1.2])
    axes = [fig.add_subplot(grid[0])]
    axes += [fig.add_subplot(grid[i], sharex=axes[0]) for i in range(1, len(panels))]
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
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel(f"step ({dt_ms:g} ms)")
    n = cols["step"].shape[0]
    axes[0].set_title(f"{os.path.basename(log_path)}: {n:,} steps")
    _spectrum_panel(fig.add_subplot(grid[len(panels)]), spectra, dt_ms)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return n, spectra


def _spectrum_panel(ax, spectra: list[Spectrum], dt_ms: float) -> None:
    """Power vs frequency per rate trace (log power when every value is
    positive), in the rate panel's colours, each peak marked with a dot;
    the legend gives each peak's frequency and share of the power."""
    ax.set_xlabel(f"frequency (Hz; dt = {dt_ms:g} ms)")
    ax.set_ylabel("power (rate^2 / Hz)")
    ax.grid(alpha=0.3)
    if not spectra:
        ax.text(0.5, 0.5, "too few steps for a spectrum", ha="center", va="center", transform=ax.transAxes)
        return
    for i, sp in enumerate(spectra):
        color = "tab:red" if sp.name == "rate" else f"C{i - 1}"  # as in the rate panel
        label = "all" if sp.name == "rate" else sp.name[5:]
        if sp.share > 0:
            label += f": peak {sp.peak_hz:.1f} Hz, {100 * sp.share:.0f}% of the power"
        ax.plot(sp.freqs[1:], sp.power[1:], color=color, linewidth=0.9, label=label)
        if sp.share > 0:
            k = int(np.argmin(np.abs(sp.freqs - sp.peak_hz)))
            ax.plot([sp.peak_hz], [sp.power[k]], "o", color=color, markersize=6, markeredgecolor="black")
    if all(np.all(sp.power[1:] > 0) for sp in spectra):
        ax.set_yscale("log")
    ax.set_xlim(0, spectra[0].freqs[-1])
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(
        "power spectrum of the rate (Welch; mean and trend removed), peaks marked", fontsize="medium"
    )


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


# -------------------------------------------------------------- sheet ---

NO_SHEET_HINT = (
    "run with --record_sheet=STEPS and a sheet preset, e.g. `jbrain run "
    "--flagfile=experiments/configs/cortex_small.flags --record_sheet=200 --workdir={workdir}`"
)


@dataclasses.dataclass(frozen=True)
class SheetRecording:
    """A sheet recording mapped to the sheet: `load_sheet`'s result.

    circuit: the recorded brain's; first_step: the step of row 0; spikes
    (T, N) uint8 0/1; rows, cols (N,) int64: each neuron's sheet cell, -1
    for neurons not on the sheet; sign (N,) int8: +1 excitatory, -1
    inhibitory; owner (H, W) int8: the sign of the neuron at each cell, 0
    where none."""

    circuit: Circuit
    first_step: int
    spikes: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    sign: np.ndarray
    owner: np.ndarray

    def counts(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Spikes per cell summed over recorded rows [start, stop), split by
        sign: (E counts (H, W), I counts (H, W)) int64."""
        h, w = self.circuit.sheet
        total = self.spikes[start:stop].sum(axis=0, dtype=np.int64)
        on = self.rows >= 0
        out = []
        for s in (1, -1):
            grid = np.zeros((h, w), np.int64)
            keep = on & (self.sign == s)
            grid[self.rows[keep], self.cols[keep]] = total[keep]
            out.append(grid)
        return out[0], out[1]


def load_sheet(workdir: str, *, last_steps: int | None = None) -> SheetRecording:
    """WORKDIR's sheet recording (jbrain/sheet.py), its last `last_steps`
    rows (all when None). ValueError (one line, with the fix) when there is
    no recording or the recorded brain has no sheet."""
    rec = sheet.read_sheet(workdir)
    if rec is None or rec[1].shape[0] == 0:
        raise ValueError(f"no sheet recording in {workdir}: " + NO_SHEET_HINT.format(workdir=workdir))
    meta, words = rec
    circuit = Circuit.from_dict(meta["circuit"])
    cells = sheet.sheet_cells(circuit)
    if circuit.sheet is None or not cells:
        raise ValueError(
            f"the brain recorded in {workdir} has no sheet (circuit {circuit.name!r} lies on a ring): "
            + NO_SHEET_HINT.format(workdir=workdir)
        )
    start = 0 if last_steps is None else max(0, words.shape[0] - last_steps)
    spikes = sheet.unpack(np.asarray(words[start:]), circuit.n)
    n = circuit.n
    rows, cols = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    sign = np.zeros(n, np.int8)
    owner = np.zeros(circuit.sheet, np.int8)
    for _, s, ids, r, c in cells:
        rows[ids], cols[ids] = r, c
        sign[ids] = 1 if s == "E" else -1
        owner[r, c] = sign[ids[0]]
    return SheetRecording(circuit, int(meta["first_step"]) + start, spikes, rows, cols, sign, owner)


def plot_sheet(
    workdir: str,
    png_path: str,
    gif_path: str | None = None,
    *,
    last_steps: int = 20,
    max_frames: int = 400,
    frame_ms: int = 60,
    scale: int = 0,
) -> dict[str, int]:
    """The recorded sheet (`--record_sheet`) of WORKDIR.

    png_path: a snapshot, the spikes per neuron over the last `last_steps`
    recorded steps at each neuron's sheet cell; excitatory cells on a
    black-red-yellow scale, inhibitory cells on a black-blue-cyan one (each
    with its colour bar), cells without a neuron grey; the circuit's
    regions outlined and named. gif_path: an animation of the last
    `max_frames` recorded steps, one frame per step (`frame_ms` each), the
    same colours, each cell showing its spikes with a trail that halves
    every step (so waves are visible); cells magnified `scale` times (0:
    about 600 pixels wide). Returns {"steps": T shown in the PNG,
    "frames": GIF frames, "first": first step shown, "last": last step}.
    ValueError: see `load_sheet`."""
    rec = load_sheet(workdir, last_steps=max(last_steps, max_frames if gif_path else 0))
    plt = pyplot()
    from matplotlib import patches
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    circuit = rec.circuit
    h, w = circuit.sheet
    total = rec.spikes.shape[0]
    start = max(0, total - last_steps)
    e, i = rec.counts(start, total)
    e_max, i_max = max(1, int(e.max())), max(1, int(i.max()))
    e_map, i_map = _colormap("E"), _colormap("I")
    rgb = np.full((h, w, 3), 0.5)
    rgb[rec.owner > 0] = e_map(e[rec.owner > 0] / e_max)[:, :3]
    rgb[rec.owner < 0] = i_map(i[rec.owner < 0] / i_max)[:, :3]
    fig, ax = plt.subplots(figsize=(11, 8 * h / w + 1.2), constrained_layout=True)
    ax.imshow(rgb, interpolation="nearest", origin="upper")
    for r in circuit.regions:
        ax.add_patch(
            patches.Rectangle(
                (r.col - 0.5, r.row - 0.5), r.width, r.height, fill=False, edgecolor="white", linewidth=1.5
            )
        )
        ax.text(
            r.col + 1, r.row + 1, r.name, color="white", fontsize="small", va="top", ha="left",
            bbox={"facecolor": "black", "alpha": 0.6, "pad": 1.5, "edgecolor": "none"},
        )  # fmt: skip
    first, last = rec.first_step + start, rec.first_step + total - 1
    ax.set_title(
        f"{circuit.name}: spikes per neuron on the {h}x{w} sheet, steps {first}-{last} "
        f"({total - start} steps of {circuit.dt:g} ms)"
    )
    ax.set_xlabel("sheet column")
    ax.set_ylabel("sheet row")
    for cmap, vmax, name in ((i_map, i_max, "inhibitory (I)"), (e_map, e_max, "excitatory (E)")):  # E nearest
        bar = fig.colorbar(ScalarMappable(Normalize(0, vmax), cmap), ax=ax, shrink=0.8, pad=0.01)
        bar.set_label(f"spikes per {name} neuron")
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    frames = 0
    if gif_path:
        frames = _sheet_gif(rec, gif_path, max_frames=max_frames, frame_ms=frame_ms, scale=scale)
    return {"steps": total - start, "frames": frames, "first": first, "last": last}


_COLOURS = {"E": ["black", "#b00000", "#ff6000", "#ffff40"], "I": ["black", "#1040ff", "#40c0ff", "#c0ffff"]}


def _colormap(sign: str):
    """Black to bright: red-yellow for excitatory cells, blue-cyan for inhibitory ones."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(f"jbrain_{sign}", _COLOURS[sign])


def _sheet_gif(rec: SheetRecording, gif_path: str, *, max_frames: int, frame_ms: int, scale: int) -> int:
    """The GIF of `plot_sheet` (Pillow, a palette image per frame)."""
    Image = pillow_image()
    from PIL import ImageDraw

    circuit = rec.circuit
    h, w = circuit.sheet
    scale = scale or max(1, 600 // w)
    total = rec.spikes.shape[0]
    start = max(0, total - max_frames)
    on = rec.rows >= 0
    # trail: a_t = s_t + a_{t-1} / 2, in [0, 2); levels 0..63 per sign in a 128-colour palette
    e_lut = (_colormap("E")(np.linspace(0, 1, 64))[:, :3] * 255).astype(np.uint8)
    i_lut = (_colormap("I")(np.linspace(0, 1, 64))[:, :3] * 255).astype(np.uint8)
    palette = np.concatenate([e_lut, i_lut, [[128, 128, 128], [255, 255, 255]]]).astype(np.uint8)
    grey, white = 128, 129
    base = np.full((h, w), grey, np.uint8)
    trail = np.zeros(circuit.n, np.float32)
    e_cells = on & (rec.sign > 0)
    i_cells = on & (rec.sign < 0)
    images = []
    outline = np.zeros((h * scale, w * scale), bool)
    for r in circuit.regions:
        r0, c0 = r.row * scale, r.col * scale
        r1, c1 = (r.row + r.height) * scale - 1, (r.col + r.width) * scale - 1
        outline[r0, c0 : c1 + 1] = outline[r1, c0 : c1 + 1] = True
        outline[r0 : r1 + 1, c0] = outline[r0 : r1 + 1, c1] = True
    for t in range(total):
        trail = trail * 0.5 + rec.spikes[t]
        if t < start:
            continue
        level = np.minimum(63, (trail * 32).astype(np.int64)).astype(np.uint8)
        frame = base.copy()
        frame[rec.rows[e_cells], rec.cols[e_cells]] = level[e_cells]
        frame[rec.rows[i_cells], rec.cols[i_cells]] = 64 + level[i_cells]
        big = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
        big[outline] = white
        img = Image.fromarray(big, mode="P")
        img.putpalette(palette.reshape(-1).tolist() + [0] * (3 * (256 - palette.shape[0])))
        draw = ImageDraw.Draw(img)
        draw.text((4, 4), f"step {rec.first_step + t}", fill=white)
        for r in circuit.regions:
            draw.text((r.col * scale + 4, r.row * scale + (16 if r.row == 0 else 4)), r.name, fill=white)
        images.append(img)
    images[0].save(
        gif_path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0, optimize=False
    )
    return len(images)
