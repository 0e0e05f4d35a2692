"""`brain_debug.log`: one tab-separated line per step, written once per burst.

Format (text, UTF-8):
    step	spikes	rate	mean_input	mean_threshold
    1	812	0.004060	0.012345	0.999812
    ...
`step` counts from 1 (the step just taken); floats have 6 decimals, so the
same run always writes byte-identical lines. A circuit of more than one
population appends one column `rate_<population>` per population (spikes
per neuron of that population per step), in the circuit's order.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np

HEADER = "step\tspikes\trate\tmean_input\tmean_threshold"
LOG_NAME = "brain_debug.log"


_YIELD_S = 0.002  # the writer's pause before each batch of queued bursts
_LINE = "%d\t%d\t%.6f\t%.6f\t%.6f\n"


def header(populations: Sequence[tuple[str, int]] = ()) -> str:
    """The header line: the five columns, then `rate_<name>` per population
    when there are more than one ((name, size) pairs)."""
    if len(populations) <= 1:
        return HEADER
    return HEADER + "".join(f"\trate_{name}" for name, _ in populations)


def format_lines(
    first_step: int, metrics: Mapping[str, np.ndarray], populations: Sequence[tuple[str, int]] = ()
) -> str:
    """Lines for steps first_step, first_step+1, ... (host numpy metrics;
    `pop_counts` (T, P) is read when there are P > 1 populations).

    One `%` over the whole burst (C-level formatting, not per-line f-strings)."""
    spikes = np.asarray(metrics["spikes"]).tolist()
    steps = range(first_step, first_step + len(spikes))
    cols = [np.asarray(metrics[k]).tolist() for k in ("rate", "mean_input", "mean_threshold")]
    line = _LINE
    if len(populations) > 1:
        counts = np.asarray(metrics["pop_counts"], np.float64)
        sizes = np.array([size for _, size in populations], np.float64)
        rates = (counts / sizes).T.tolist()
        cols += rates
        line = _LINE[:-1] + "\t%.6f" * len(populations) + "\n"
    values = [v for row in zip(steps, spikes, *cols, strict=True) for v in row]
    return line * len(spikes) % tuple(values)


class DebugLog:
    """Appends per-step metrics to WORKDIR/brain_debug.log.

    A new file gets the header. On restart (a restored brain at step S) lines
    after S are cut, so the log continues exactly where the state does.
    Lines are formatted, written and flushed to the file by a writer thread,
    in order: a chat reply does not wait for its 200 lines, and the
    file grows burst by burst. `flush` and `close` wait for every line
    appended before them; an error of the writer is raised there, once.
    """

    def __init__(self, path: str, *, start_step: int = 0, populations: Sequence[tuple[str, int]] = ()):
        self.path = path
        self.populations = tuple(populations)
        if start_step == 0 or not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(header(self.populations) + "\n")
        else:
            _truncate_after(path, start_step)
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the run)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: Exception | None = None
        self._writer = threading.Thread(target=self._write, name="jbrain-debug-log", daemon=True)
        self._writer.start()

    def append(self, first_step: int, metrics: Mapping[str, np.ndarray]) -> None:
        """Queue the lines of steps first_step, ... (the arrays must not change after)."""
        self._queue.put((first_step, metrics))

    def _write(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            # Let the burst's caller finish first (a chat reply decodes right
            # after its burst): the lines are then written while it waits on
            # the device or the user, not competing for the GIL. Everything
            # queued meanwhile is written in the same turn.
            time.sleep(_YIELD_S)
            while not self._queue.empty():
                batch.append(self._queue.get())
            waiting = []  # flush markers, set once their lines are flushed
            for item in batch:
                if item is None:  # close
                    stop = True
                elif isinstance(item, threading.Event):
                    waiting.append(item)
                elif self._error is None:
                    try:
                        self._f.write(format_lines(*item, self.populations))
                    except Exception as e:  # raised by the next flush or close
                        self._error = e
            if self._error is None:
                try:
                    self._f.flush()
                except Exception as e:
                    self._error = e
            for event in waiting:
                event.set()

    def flush(self) -> None:
        """Wait until every queued line is written and flushed."""
        if self._writer.is_alive():
            done = threading.Event()
            self._queue.put(done)
            done.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join()
        if not self._f.closed:
            self._f.flush()
            self._f.close()
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _truncate_after(path: str, step: int) -> None:
    """Keep the header and the lines of steps <= step."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    keep = [lines[0]] if lines else [HEADER + "\n"]
    for line in lines[1:]:
        head = line.split("\t", 1)[0]
        if head.isdigit() and int(head) <= step and line.endswith("\n"):
            keep.append(line)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(keep)
    os.replace(tmp, path)


def read_log(path: str) -> dict[str, np.ndarray]:
    """Parse a debug log into columns by header name (for plots and tests)."""
    with open(path, encoding="utf-8") as f:
        cols = f.readline().rstrip("\n").split("\t")
    data = np.loadtxt(path, delimiter="\t", skiprows=1, ndmin=2)
    return {c: data[:, i] for i, c in enumerate(cols)}
