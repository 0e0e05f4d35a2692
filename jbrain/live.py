"""The "alive" loop: a background thread that keeps stepping the brain.

    live = LiveLoop(session, burst=200, stims=zeros, steps_per_s=1000.0)
    live.start()
    with live.hold():          # the reply path: no burst runs inside
        text.reply(session, codec, "hello")
    live.stop()                # finishes the burst in flight, then returns

Every burst is `session.run(burst, stims)` under `session.lock`, so it is
logged like any other steps (the log is flushed after each burst and keeps
growing while the user types). `hold()` keeps the loop from starting a new
burst and takes the same lock: the caller waits at most for the burst in
flight. Passing the reply's all-zero stimulus (same shape, same length) makes
the loop reuse the reply's compiled program instead of compiling another.

Pacing: at most `steps_per_s` steps per wall-clock second (1000 = real time
at dt = 1 ms); 0 runs bursts back to back. A fault in a burst (e.g.
`BrainFault`) stops the loop and is kept in `error` for the caller.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import numpy as np


class LiveLoop:
    """Background bursts on a Session (see the module docstring)."""

    def __init__(
        self,
        session,
        *,
        burst: int,
        stims: np.ndarray | None = None,
        steps_per_s: float = 0.0,
    ):
        if burst <= 0:
            raise ValueError(f"--live_burst={burst} must be a positive number of steps")
        if steps_per_s < 0:
            raise ValueError(f"--live_steps_per_s={steps_per_s} must be >= 0 (0: as fast as possible)")
        self.session = session
        self.burst = burst
        self.stims = stims
        self.steps_per_s = steps_per_s
        self.bursts = 0  # bursts run by this loop
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._cv = threading.Condition()
        self._holds = 0
        self._thread = threading.Thread(target=self._loop, name="jbrain-live", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> LiveLoop:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cv:
                while self._holds and not self._stop.is_set():
                    self._cv.wait()
            if self._stop.is_set():
                break
            t0 = time.perf_counter()
            try:
                self.session.run(self.burst, self.stims)  # its log lines reach the file by themselves
            except BaseException as e:  # handed to the caller (main thread)
                self.error = e
                return
            self.bursts += 1
            if self.steps_per_s > 0:
                rest = self.burst / self.steps_per_s - (time.perf_counter() - t0)
                if rest > 0:
                    self._stop.wait(rest)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Pause the loop between bursts and hold the session lock."""
        with self._cv:
            self._holds += 1
        try:
            with self.session.lock:
                yield
        finally:
            with self._cv:
                self._holds -= 1
                self._cv.notify_all()

    def stop(self, timeout: float | None = None) -> None:
        """Let the burst in flight finish, then end the thread (idempotent)."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
