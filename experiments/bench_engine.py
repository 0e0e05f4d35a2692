"""Engine adapters of the benchmarks: every call that `jbrain bench`
(experiments/benchkit.py) and the drivers in scripts/ make into jbrain's
engine, one small class per thing timed. When the engine's API changes, this
file changes and the harness does not.

    StepBrain          input-free bursts: `jbrain bench` rows, the alive check
    ChatBrain          a chat reply as `jbrain chat` runs it: scripts/bench_reply.py
    CheckpointedBrain  checkpoint save and restore: scripts/bench_checkpoint.py

Timed methods return what the caller must wait for (`benchkit.time_calls`
blocks on it); read-outs copy to the host. Imports of jbrain stay inside the
methods, so importing this module starts no JAX backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class StepBrain:
    """A brain stepped in input-free bursts: `jbrain bench` rows, the alive check.

    `init()` and `burst(steps)` are what is timed; each returns the arrays to
    wait for. The read-outs (`last_rates`, `status`, ...) copy to the host.
    """

    def __init__(
        self,
        n_neurons: int,
        *,
        path: str = "auto",
        fan_in: int = 32,
        plasticity: bool = False,
        stdp: str = "auto",
        seed: int = 0,
    ) -> None:
        from jbrain import plan as plans
        from jbrain.config import BrainConfig

        self.config = BrainConfig(n_neurons=n_neurons, fan_in=fan_in, plasticity=plasticity)
        self.circuit = self.config.circuit()
        self.plan = plans.resolve(self.circuit, propagation=path, stdp=stdp)
        self.seed = seed
        self.wiring = self.state = self.metrics = None
        self.static_order = None

    @property
    def fan_in(self) -> int:
        return self.config.fan_in

    @property
    def target_rate(self) -> float:
        return self.config.target_rate

    def init(self) -> Any:
        """Build the wiring and the state at birth."""
        from jbrain import brain

        self.wiring, self.state = brain.init_brain(self.circuit, seed=self.seed)
        return self.wiring, self.state

    def burst(self, steps: int) -> Any:
        """One burst of `steps` steps without input (one `lax.scan`)."""
        from jbrain import brain

        if self.static_order is None:
            self.static_order = brain.StaticOrder()  # as a Session keeps it
        pre_major = self.static_order.get(self.circuit, self.plan, self.wiring, self.state)
        self.state, self.metrics = brain.burst(
            self.circuit, self.plan, self.wiring, self.state, None, length=steps, pre_major=pre_major
        )
        self.static_order.carried(self.state)
        return self.state

    def last_rates(self) -> tuple[np.ndarray, np.ndarray]:
        """The last burst's per-step firing rate and spike count, (steps,) each."""
        import jax

        rate, spikes = jax.device_get((self.metrics.rate, self.metrics.spikes))
        return np.asarray(rate), np.asarray(spikes)

    def status(self) -> int:
        """The state's status bits (0: no fault)."""
        import jax

        return int(jax.device_get(self.state.status))

    @staticmethod
    def status_names(status: int) -> list[str]:
        from jbrain.state import describe_status

        return describe_status(status)

    @staticmethod
    def nonfinite(status: int) -> bool:
        from jbrain.state import STATUS_NONFINITE

        return bool(status & STATUS_NONFINITE)

    def mean_threshold(self) -> float:
        import jax

        return float(jax.device_get(self.state.neurons.theta.mean()))

    def path(self) -> str:
        """The propagation path the plan runs (`auto` resolved)."""
        return self.plan.paths[0]

    def unroll(self) -> int:
        """The scan's unroll the plan uses."""
        return self.plan.unroll

    def close(self) -> None:
        self.wiring = self.state = self.metrics = None


class ChatBrain:
    """A chat session as `jbrain chat` runs it (scripts/bench_reply.py).

    Timed: `birth()`, `reply(text)` (encode, one reply burst, metrics to the
    host, log lines, decode) and `burst_alone(stims)` (the reply's burst
    without the host work).
    """

    def __init__(self, config: Any, *, seed: int, workdir: str, reply_steps: int, reply_chars: int) -> None:
        from jbrain.text import Codec

        self.config, self.seed, self.workdir = config, seed, workdir
        self.codec = Codec.for_circuit(config.circuit(), reply_steps=reply_steps, reply_chars=reply_chars)
        self.session = None

    def birth(self) -> Any:
        from jbrain.session import Session

        self.session = Session.new(self.config, seed=self.seed, workdir=self.workdir)
        return self.session.state

    def reply(self, text: str) -> str:
        from jbrain.text import reply

        return reply(self.session, self.codec, text)

    def encode(self, text: str) -> Any:
        return self.codec.encode(text)

    def burst_alone(self, stims: Any) -> Any:
        from jbrain import brain

        s = self.session
        state, _, _ = brain.burst_packed_keeping_input(
            s.circuit, s.plan, s.wiring, s.state, stims, length=self.codec.reply_steps
        )
        s.state = state
        return state

    def last_rate(self) -> float:
        return self.session.last_rate

    def close(self) -> None:
        self.session.close()


class CheckpointedBrain:
    """A Session that checkpoints into `workdir` (scripts/bench_checkpoint.py).

    Timed: `open()` (a new brain, or the latest checkpoint restored), `run`,
    `save()` (what the stepping loop waits for), `wait()` (until the
    background write is done), `host_copy()` and `checksums()` (the two parts
    of a save's blocking time), `restore(path)`.
    """

    def __init__(self, config: Any, *, seed: int, workdir: str, keep: int = 2) -> None:
        self.config, self.seed, self.workdir, self.keep = config, seed, workdir, keep
        self.session = None

    def open(self) -> Any:
        from jbrain.session import Session

        self.session = Session.open(self.config, seed=self.seed, workdir=self.workdir, keep=self.keep)
        return self.session.state

    def run(self, steps: int) -> None:
        self.session.run(steps)

    def save(self) -> str | None:
        """Start a save; returns its path once the loop may go on."""
        return self.session.save()

    def wait(self) -> list:
        """Until the background write is done; the errors it reported."""
        return self.session.store.wait()

    def busy(self) -> bool:
        """A background write is still going on."""
        return self.session.store.busy

    def host_copy(self) -> dict[str, Any]:
        from jbrain import checkpoint

        return checkpoint._host_copy(checkpoint._tree(self.session.state))

    @staticmethod
    def nbytes(host: dict[str, Any]) -> int:
        """Bytes of a `host_copy`."""
        from jbrain import checkpoint

        return sum(a.nbytes for a in checkpoint._flat(host).values())

    @staticmethod
    def checksums(host: dict[str, Any]) -> list[int]:
        from jbrain import checkpoint

        return [checkpoint._crc32(a) for a in checkpoint._flat(host).values()]

    @staticmethod
    def restore(path: str, *, onto_cpu: bool = False) -> Any:
        """Read and verify a checkpoint, placed on the default device (or the CPU)."""
        import jax

        from jbrain import checkpoint

        device = jax.devices("cpu")[0] if onto_cpu else None
        return checkpoint.restore(path, device=device).state

    def close(self) -> None:
        self.session.close(save=False)
        self.session = None
