"""The whole brain's spikes, bit-packed (`--record_sheet=STEPS`): WORKDIR/sheet.bits + sheet.json.

Format
    sheet.bits   raw little-endian uint32, row-major (steps, W), W = ceil(N/32):
                 one row per step; neuron i fired that step iff bit i % 32 of
                 word i // 32 is set (`synapses.pack_spikes`). Rows are
                 appended once per burst, by a writer thread.
    sheet.json   {"format": "jbrain-sheet/1", "first_step": S, "steps": T,
                  "neurons": N, "words_per_step": W, "dtype": "<u4",
                  "bits": "neuron i is bit i % 32 of word i // 32",
                  "circuit": Circuit.to_dict()}
                 row i holds step S + i (steps count from 1, as in
                 brain_debug.log). Only the first T rows are complete: the
                 sidecar is rewritten (a temp file renamed over it) after
                 each burst's rows reach the file, so a run killed mid-write
                 leaves a recording of whole steps.

Each recording session (a `jbrain run` or `jbrain chat` with
--record_sheet) starts a new recording of its next STEPS steps; a new brain
that records nothing removes an earlier brain's recording.

Read it with `read_sheet(workdir)`, or in plain NumPy:
    bits = np.fromfile("sheet.bits", "<u4")[: T * W].reshape(T, W)
    spikes = np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, :N]

Sheet positions: population p with a "rect" placement puts its neuron i
(global index circuit.offset(p) + i) on sheet cell (rows[i], cols[i]),
rows, cols = p.placement.cells() (`sheet_cells`).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from typing import Any

import numpy as np

from jbrain.circuit import Circuit

DATA_NAME = "sheet.bits"
META_NAME = "sheet.json"
FORMAT = "jbrain-sheet/1"
BACKLOG_BYTES = 1 << 30  # words that may wait for the disk (device or host memory)
BITS = "neuron i is bit i % 32 of word i // 32"


def words_per_step(neurons: int) -> int:
    """W = ceil(N/32) uint32 words per step."""
    return -(-neurons // 32)


class SheetRecorder:
    """Writes (T, W) uint32 bit-packed spikes to WORKDIR/sheet.bits for a
    budget of `steps` steps (the rows past it are dropped), then stops.

    `take(first_step, words)` counts the burst against the budget at once
    and hands the words (NumPy, or a jax array: `Session` starts its copy
    into pinned host memory) to a writer thread, which copies them to the
    host, appends them and rewrites the sidecar, while the next bursts run. A disk slower than the brain
    makes words wait: up to `backlog_bytes` of them (a budget of that
    size never waits), beyond which `take` blocks until the writer catches
    up. A write error stops the recording and is kept in `error`; `close`
    waits for every write.
    """

    def __init__(
        self,
        workdir: str,
        circuit: Circuit,
        steps: int,
        *,
        start_step: int = 0,
        backlog_bytes: int = BACKLOG_BYTES,
    ):
        if steps <= 0:
            raise ValueError(f"--record_sheet={steps}: a recorder needs a budget of >= 1 steps")
        self.circuit = circuit
        self.neurons = circuit.n
        self.words = words_per_step(circuit.n)
        self.left = steps
        self.first_step = start_step + 1
        self.next_step = self.first_step  # of the next burst `take` accepts
        self.steps = 0  # written, counted in the sidecar
        self.error: str | None = None
        self.data_path = os.path.join(workdir, DATA_NAME)
        self.meta_path = os.path.join(workdir, META_NAME)
        self._circuit = circuit.to_dict()
        self._write_meta()  # 0 steps first: the old rows are no longer taken as complete
        self._f = open(self.data_path, "wb")  # noqa: SIM115 (kept open for the run)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._backlog = backlog_bytes
        self._pending = 0  # bytes queued and not yet written
        self._room = threading.Condition()
        self._writer = threading.Thread(target=self._write, name="jbrain-sheet", daemon=True)
        self._writer.start()

    @classmethod
    def open(cls, workdir: str, circuit: Circuit, steps: int, *, start_step: int = 0) -> SheetRecorder | None:
        """A recorder, or None when nothing is recorded (steps = 0). A new
        brain that records nothing removes a stale recording of an earlier brain."""
        if steps > 0:
            return cls(workdir, circuit, steps, start_step=start_step)
        if start_step == 0:
            for name in (META_NAME, DATA_NAME):  # the sidecar first: no rows without it
                path = os.path.join(workdir, name)
                if os.path.exists(path):
                    os.remove(path)
        return None

    def take(self, first_step: int, words: Any) -> int:
        """words: (T, W) uint32 (NumPy or device array), the spikes of steps
        first_step .. first_step+T-1; the first min(T, budget left) rows
        are queued for writing. Returns the budget left (0: done)."""
        if len(words.shape) != 2 or words.shape[1] != self.words or words.dtype != np.uint32:
            raise ValueError(
                f"sheet words have shape {tuple(words.shape)} {words.dtype}, "
                f"expected (T, {self.words}) uint32"
            )
        if first_step != self.next_step:
            raise ValueError(f"sheet rows must be contiguous: got step {first_step}, not {self.next_step}")
        rows = min(words.shape[0], self.left)
        self.next_step += words.shape[0]
        if rows and self.left and self._writer.is_alive():
            size = rows * self.words * 4
            with self._room:  # wait while the backlog is full (at least one burst always fits)
                self._room.wait_for(lambda: self._pending == 0 or self._pending + size <= self._backlog)
                self._pending += size
            self._queue.put((words, rows, size))
            self.left -= rows
            if self.left == 0:
                self._queue.put(None)  # the writer stops after these rows
        return self.left

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain: nothing more is written after an error
            words, rows, size = item
            host = None
            try:
                host = np.ascontiguousarray(np.asarray(words)[:rows], "<u4")
                self._f.write(host.data)
                self._f.flush()
                self.steps += rows
                self._write_meta()  # after the rows: the count never runs ahead of the file
            except Exception as e:  # noqa: BLE001 (reported by the session as a warning)
                self.error = f"{type(e).__name__}: {e}"
            words = host = None  # the burst's memory goes now, not at the next one
            with self._room:
                self._pending -= size
                self._room.notify_all()
        self._f.close()

    def _write_meta(self) -> None:
        meta = {
            "format": FORMAT,
            "first_step": self.first_step,
            "steps": self.steps,
            "neurons": self.neurons,
            "words_per_step": self.words,
            "dtype": "<u4",
            "bits": BITS,
            "circuit": self._circuit,
        }
        tmp = self.meta_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
            f.write("\n")
        os.replace(tmp, self.meta_path)

    def close(self) -> None:
        """Wait until every queued burst is written; close the file. Idempotent."""
        if self._writer.is_alive():
            if self.left:
                self.left = 0
                self._queue.put(None)
            self._writer.join()


def read_meta(workdir: str) -> dict | None:
    """The sidecar of WORKDIR's recording, or None if there is none."""
    try:
        with open(os.path.join(workdir, META_NAME), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def read_sheet(workdir: str) -> tuple[dict, np.ndarray] | None:
    """(sidecar, words (steps, W) uint32) of WORKDIR's recording, or None if
    absent. Only the steps the sidecar counts are read (a burst being
    written is not)."""
    meta = read_meta(workdir)
    data = os.path.join(workdir, DATA_NAME)
    if meta is None or not os.path.exists(data):
        return None
    steps, w = int(meta["steps"]), int(meta["words_per_step"])
    steps = min(steps, os.path.getsize(data) // (4 * w))
    if steps == 0:
        return meta, np.zeros((0, w), np.uint32)
    return meta, np.memmap(data, "<u4", mode="r", shape=(steps, w))


def unpack(words: np.ndarray, neurons: int) -> np.ndarray:
    """(T, W) uint32 bit-packed spikes -> (T, neurons) uint8 0/1 (the inverse
    of `synapses.pack_spikes` per row)."""
    words = np.ascontiguousarray(words, "<u4")
    bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")
    return bits[:, :neurons]


def sheet_cells(circuit: Circuit) -> list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]:
    """Per population placed on the sheet ("rect"), in the circuit's order:
    (name, sign "E" or "I", global neuron ids, sheet rows, sheet columns),
    the three arrays (size,) int64 each. Empty for a circuit without a
    sheet (the seed ring)."""
    out = []
    for p in circuit.populations:
        if p.placement.kind != "rect":
            continue
        rows, cols = p.placement.cells()
        ids = circuit.offset(p.name) + np.arange(p.size)
        out.append((p.name, p.sign, ids, np.asarray(rows, np.int64), np.asarray(cols, np.int64)))
    return out


def sheet_counts(circuit: Circuit, spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spike counts on the sheet: spikes (T, N) 0/1 -> (counts (H, W) int64,
    the summed spikes of the neuron at each cell over the T steps; owner
    (H, W) int8, +1 where an excitatory population's neuron sits, -1 an
    inhibitory one's, 0 where none).
    ValueError if the circuit has no sheet."""
    if circuit.sheet is None or not sheet_cells(circuit):
        raise ValueError(f"circuit {circuit.name!r} has no sheet (a ring): nothing to map")
    h, w = circuit.sheet
    counts = np.zeros((h, w), np.int64)
    owner = np.zeros((h, w), np.int8)
    total = np.asarray(spikes).sum(axis=0, dtype=np.int64)
    for _, sign, ids, rows, cols in sheet_cells(circuit):
        counts[rows, cols] = total[ids]
        owner[rows, cols] = 1 if sign == "E" else -1
    return counts, owner
