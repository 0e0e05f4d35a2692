"""Recorded spike trains (`--record_spikes=R`): WORKDIR/spikes.u8 + spikes.json.

Format
    spikes.u8    raw uint8, row-major (steps, R): one row of R bytes per step,
                 byte j = 1 if neuron j (of neurons [0, R)) fired that step, else 0.
                 Rows are appended once per burst; the step count is size / R.
    spikes.json  {"format": "jbrain-spikes/1", "neurons": R, "first_step": S,
                  "dtype": "uint8", "layout": "row-major (steps, neurons)"}
                 row i holds step S + i (steps count from 1, as in brain_debug.log).

Read it with `read_spikes(workdir)` or, in plain NumPy,
    np.fromfile("spikes.u8", np.uint8).reshape(-1, R)
"""

from __future__ import annotations

import json
import os

import numpy as np

DATA_NAME = "spikes.u8"
META_NAME = "spikes.json"
FORMAT = "jbrain-spikes/1"


class SpikeRecorder:
    """Appends (T, R) uint8 rasters to WORKDIR/spikes.u8 (one write per burst).

    A new brain (start_step 0) starts a new recording; a restored brain at
    step S continues one whose rows cover steps <= S, cut after S, like the
    debug log. Anything else starts a new recording at step S + 1.
    """

    def __init__(self, workdir: str, neurons: int, *, start_step: int = 0):
        self.neurons = neurons
        self.data_path = os.path.join(workdir, DATA_NAME)
        self.meta_path = os.path.join(workdir, META_NAME)
        meta = _read_meta(self.meta_path)
        keep = 0
        if start_step > 0 and meta is not None and meta.get("neurons") == neurons:
            first = int(meta.get("first_step", 0))
            have = os.path.getsize(self.data_path) // neurons if os.path.exists(self.data_path) else 0
            if first >= 1 and first <= start_step + 1 <= first + have:
                keep = start_step + 1 - first
        if keep:
            first_step = int(meta["first_step"])
            with open(self.data_path, "r+b") as f:
                f.truncate(keep * neurons)
        else:
            first_step = start_step + 1
            open(self.data_path, "wb").close()
        with open(self.meta_path, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "format": FORMAT,
                    "neurons": neurons,
                    "first_step": first_step,
                    "dtype": "uint8",
                    "layout": "row-major (steps, neurons)",
                },
                f,
                indent=1,
            )
            f.write("\n")
        self.first_step = first_step
        self.next_step = first_step + keep
        self._f = open(self.data_path, "ab")  # noqa: SIM115 (kept open for the run)

    @classmethod
    def open(cls, workdir: str, neurons: int, *, start_step: int = 0) -> SpikeRecorder | None:
        """A recorder, or None when nothing is recorded (R = 0). A new brain
        that records nothing removes a stale recording from an earlier brain."""
        if neurons > 0:
            return cls(workdir, neurons, start_step=start_step)
        if start_step == 0:
            for name in (DATA_NAME, META_NAME):
                path = os.path.join(workdir, name)
                if os.path.exists(path):
                    os.remove(path)
        return None

    def append(self, first_step: int, raster: np.ndarray) -> None:
        """raster: (T, R) uint8, the spikes of steps first_step .. first_step+T-1."""
        raster = np.ascontiguousarray(raster, np.uint8)
        if raster.ndim != 2 or raster.shape[1] != self.neurons:
            raise ValueError(f"raster has shape {raster.shape}, expected (T, {self.neurons})")
        if first_step != self.next_step:
            raise ValueError(f"spike rows must be contiguous: got step {first_step}, not {self.next_step}")
        self._f.write(raster.tobytes())
        self._f.flush()
        self.next_step += raster.shape[0]

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def _read_meta(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def read_spikes(workdir: str) -> tuple[int, np.ndarray] | None:
    """(first_step, spikes (steps, R) uint8 memmap) of a recording, or None if absent."""
    meta = _read_meta(os.path.join(workdir, META_NAME))
    data = os.path.join(workdir, DATA_NAME)
    if meta is None or not os.path.exists(data):
        return None
    r = int(meta["neurons"])
    steps = os.path.getsize(data) // r
    if steps == 0:
        return int(meta["first_step"]), np.zeros((0, r), np.uint8)
    return int(meta["first_step"]), np.memmap(data, np.uint8, mode="r", shape=(steps, r))
