"""Host-side handle on a living brain: runs bursts, checks status, logs.

`Session` is the one mutable object of jbrain. It owns (config, wiring,
state), calls the jitted `burst`, reads the metrics once per burst, checks the
status bits and appends to the debug log. Launchers (run, chat) build one.
"""

from __future__ import annotations

import os
import threading

import jax
import numpy as np

from jbrain import brain
from jbrain.config import BrainConfig
from jbrain.logs import LOG_NAME, DebugLog
from jbrain.raster import SpikeRecorder
from jbrain.state import STATUS_NONFINITE, STATUS_SPIKE_OVERFLOW, BrainState, Wiring


class BrainFault(RuntimeError):
    """The brain's state went bad (non-finite values); stepping stopped."""


class Session:
    """A brain plus its log. Thread-safe: `lock` guards every state change."""

    def __init__(
        self,
        config: BrainConfig,
        wiring: Wiring,
        state: BrainState,
        *,
        workdir: str | None = None,
        seed: int | None = None,
    ):
        self.config = config
        self.wiring = wiring
        self.state = state
        self.seed = seed
        self.workdir = workdir
        self.lock = threading.RLock()
        self.step = int(state.step)
        self.last_rate = float(state.rate)
        self.messages = 0
        self.overflow_warned = False
        self.warnings: list[str] = []
        self.log = DebugLog(os.path.join(workdir, LOG_NAME), start_step=self.step) if workdir else None
        # --record_spikes=R: WORKDIR/spikes.u8 + spikes.json (format in raster.py)
        self.spikes = (
            SpikeRecorder.open(workdir, config.record_spikes, start_step=self.step) if workdir else None
        )

    @classmethod
    def new(cls, config: BrainConfig, *, seed: int, workdir: str | None = None) -> Session:
        wiring, state = brain.init_brain(config, seed=seed)
        return cls(config, wiring, state, workdir=workdir, seed=seed)

    def run(self, length: int, stims: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Advance `length` steps as one burst; returns host metrics (T-leading).

        stims: (length, input_channels) f32 or None. Raises BrainFault on
        non-finite state (the previous state is not kept: stop and restore).
        """
        with self.lock:
            first = self.step + 1
            self.state, metrics = brain.burst(self.config, self.wiring, self.state, stims, length=length)
            host, status = jax.device_get((metrics, self.state.status))
            host = {k: np.asarray(v) for k, v in host.items()}
            self.step += length
            self.last_rate = float(host["rate"][-1])
            if self.log is not None:
                self.log.append(first, host)
            if self.spikes is not None:
                self.spikes.append(first, host["raster"])
            self._check(int(status))
            return host

    def _check(self, status: int) -> None:
        if status & STATUS_NONFINITE:
            if self.log is not None:
                self.log.flush()
            raise BrainFault(
                f"non-finite voltage, threshold or weight by step {self.step}: the model "
                "diverged; restore a checkpoint or lower the gains (e.g. --w_max)"
            )
        if status & STATUS_SPIKE_OVERFLOW and not self.overflow_warned:
            self.overflow_warned = True
            self.warnings.append(
                f"more than {self.config.spike_capacity} neurons fired in one step; those steps "
                "used the (exact, slower) gather path: raise --spike_buffer if this recurs"
            )

    def mean_threshold(self) -> float:
        with self.lock:
            return float(self.state.theta.mean())

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self.spikes is not None:
            self.spikes.close()
