"""Host-side handle on a living brain: runs bursts, checks status, logs.

`Session` is the one mutable object of jbrain. It owns (config, circuit,
plan, wiring, state), calls the jitted `burst`, reads the metrics once per
burst, checks the status bits (re-running a burst whose spike list
overflowed with a grown plan) and appends to the debug log. Launchers (run,
chat) build one with `Session.open`, which restores the workdir's latest
checkpoint (jbrain/checkpoint.py); `save()`, the autosave
(`checkpoint.Autosave`) and `close()` write new ones. Recordings: the first
R neurons every step (`plan.record_spikes`, jbrain/raster.py) and, for a
budget of steps, every neuron bit-packed (`record_sheet`, jbrain/sheet.py).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Collection

import jax
import numpy as np

from jbrain import brain, checkpoint, shard
from jbrain import plan as plans
from jbrain.config import SHAPE_FIELDS, BrainConfig
from jbrain.logs import LOG_NAME, DebugLog
from jbrain.raster import SpikeRecorder
from jbrain.sheet import SheetRecorder
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
        plan: plans.Plan | None = None,
        workdir: str | None = None,
        seed: int | None = None,
        store: checkpoint.Checkpointer | None = None,
        save_every: int = 0,
        messages: int = 0,
        record_sheet: int = 0,
    ):
        """plan: how to run it (default: `plan.resolve` with every option auto).
        record_sheet: steps whose spikes (all neurons) go to WORKDIR/sheet.bits
        from the next one on (needs a workdir); the plan's `record_sheet` is
        on while they last, then off (one more compile)."""
        self.config = config
        self.circuit = config.circuit()
        self.plan = plan or plans.resolve(self.circuit)
        # several devices: the arrays laid out over the plan's mesh (jbrain/shard.py)
        self.wiring = shard.put(self.plan.devices, wiring)
        self.state = shard.put(self.plan.devices, state)
        self.seed = seed
        self.workdir = workdir
        self.lock = threading.RLock()
        self.step = int(state.step)
        self._static_order = brain.StaticOrder()  # static weights in presynaptic order, between bursts
        self.last_rate = float(state.homeostasis.rate)
        self.messages = messages
        self.warnings: list[str] = []
        self.notes: list[str] = []  # what `open` did (restored, flags applied, ...)
        self.faulted = False
        # checkpoints: the store, the autosave policy, the step saved last
        self.store = store
        self.autosave = checkpoint.Autosave(save_every, self.step)
        self.saved_step: int | None = None
        pops = [(p.name, p.size) for p in self.circuit.populations]
        # a multi-process run (jax.distributed): every process steps the brain, process 0 writes
        # the log and the recordings into the shared WORKDIR (checkpoints: orbax's primary host)
        writer = workdir if jax.process_index() == 0 else None
        if record_sheet and jax.process_count() > 1:
            raise ValueError(
                f"--record_sheet={record_sheet} does not run over {jax.process_count()} processes: "
                "record the sheet on one host (drop --coordinator)"
            )
        self.log = (
            DebugLog(os.path.join(writer, LOG_NAME), start_step=self.step, populations=pops)
            if writer
            else None
        )
        # --record_spikes=R: WORKDIR/spikes.u8 + spikes.json (format in raster.py)
        self.spikes = (
            SpikeRecorder.open(writer, self.plan.record_spikes, start_step=self.step) if writer else None
        )
        # --record_sheet=STEPS: WORKDIR/sheet.bits + sheet.json (format in sheet.py)
        self.sheet = (
            SheetRecorder.open(workdir, self.circuit, record_sheet, start_step=self.step) if workdir else None
        )
        self.plan = dataclasses.replace(self.plan, record_sheet=self.sheet is not None)

    @classmethod
    def new(
        cls,
        config: BrainConfig,
        *,
        seed: int,
        workdir: str | None = None,
        plan: plans.Plan | None = None,
        record_sheet: int = 0,
    ) -> Session:
        wiring, state = brain.init_brain(config.circuit(), seed=seed)
        return cls(config, wiring, state, plan=plan, workdir=workdir, seed=seed, record_sheet=record_sheet)

    @classmethod
    def open(
        cls,
        config: BrainConfig,
        *,
        seed: int,
        workdir: str,
        fresh: bool = False,
        explicit: Collection[str] = (),
        save_every: int = 0,
        keep: int = 3,
        device: jax.Device | None = None,
        plan_options: dict | None = None,
    ) -> Session:
        """The brain of `workdir`: its latest checkpoint restored, or a new one.

        Restoring, the checkpoint's config and seed win, except for the config
        fields named in `explicit` (the flags the user passed), which are
        applied over it. An explicit shape field (n_neurons, fan_in, sheet)
        that differs is a ValueError naming the fields, and nothing on disk
        changes. Newer checkpoints that fail to restore (truncated, corrupt)
        are set aside as `<step>.corrupt`, one warning each. fresh: a new
        brain; earlier checkpoints move to `checkpoints.old-<UTC time>`.
        save_every: autosave period in steps (0: only `save()` and `close()`);
        keep: checkpoints kept; device: where a restored brain goes (default
        device if None); plan_options: keyword arguments of `plan.resolve`
        (propagation, stdp, backend, spike_buffer, unroll, record_spikes,
        record_sheet: also the session's budget of recorded sheet steps;
        devices: the devices the brain is sharded over, 0 all; a checkpoint
        saved on any number of devices restores onto these).
        What happened is in `notes` and `warnings`.
        """
        checkpoint.Autosave(save_every, 0)  # validates --save_every before anything changes
        devices = shard.check_devices((plan_options or {}).get("devices", 1))  # ... and --devices
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"--keep={keep} must be >= 1 (checkpoints kept in WORKDIR/checkpoints)")
        ckdir = checkpoint.checkpoint_dir(workdir)
        notes, warnings, restored = [], [], None
        first = jax.process_index() == 0  # the process that changes WORKDIR (multi-process runs)
        if fresh:  # a plan the flags cannot have fails here, before the old brain is moved aside
            plans.resolve(config.circuit(), **(plan_options or {}))
            moved = checkpoint.archive(ckdir) if first else None
            if moved:
                notes.append(f"--fresh: a new brain; the previous checkpoints were moved to {moved}")
            _barrier("jbrain-fresh")  # the others wait until the old brain is moved aside
        else:
            restored, bad = checkpoint.find_latest(ckdir, device=device, devices=devices)
            if restored is not None:
                config, applied = _merge_config(restored, config, explicit)
                saved_at = restored.meta.get("saved_at")
                notes.append(
                    f"restored step {restored.step} from {restored.path} (saved {saved_at})"
                    + (f"; flags applied over the checkpoint: {', '.join(applied)}" if applied else "")
                )
                if "migrated" in restored.meta:
                    warnings.append(f"checkpoint {restored.path} was {restored.meta['migrated']}")
                if "seed" in explicit and seed != restored.seed:
                    warnings.append(
                        f"--seed={seed} is ignored: the restored brain was born with seed {restored.seed} "
                        "(pass --fresh for a new brain)"
                    )
            for path, reason in bad:
                try:
                    moved = f"moved to {checkpoint.set_aside(path)}" if first else "left to process 0"
                except OSError as e:
                    moved = f"could not move it aside ({checkpoint.one_line(e)})"
                warnings.append(f"checkpoint {path} is damaged ({reason}): skipped and {moved}")
            if bad:
                warnings.append(
                    f"restored the previous checkpoint, step {restored.step}"
                    if restored is not None
                    else "no checkpoint could be restored: starting a new brain"
                )
        plan = plans.resolve(config.circuit(), **(plan_options or {}))
        store = checkpoint.Checkpointer(ckdir, keep=keep)
        if restored is None:
            wiring, state = brain.init_brain(config.circuit(), seed=seed)
            messages = 0
        else:
            wiring, state, seed = restored.wiring, restored.state, restored.seed
            messages = int(restored.meta.get("messages", 0))
        session = cls(
            config,
            wiring,
            state,
            plan=plan,
            workdir=workdir,
            seed=seed,
            store=store,
            save_every=save_every,
            messages=messages,
            record_sheet=int((plan_options or {}).get("record_sheet", 0)),
        )
        if restored is not None:
            session.saved_step = restored.step
        if session.sheet is not None:
            notes.append(
                f"recording the spikes of all {session.circuit.n} neurons for steps {session.step + 1}-"
                f"{session.step + session.sheet.left} to {session.sheet.data_path}"
            )
        session.notes += notes
        session.warnings += warnings
        return session

    def run(
        self, length: int, stims: np.ndarray | None = None, *, teaching: bool = False, feedback: bool = False
    ) -> dict[str, np.ndarray]:
        """Advance `length` steps as one burst; returns host metrics (T-leading).

        stims: (length, input_channels) f32 or None. teaching: run the
        teaching program (`Plan.teaching`: the delta rule learns from the
        stimulus's teacher channels). feedback: run the feedback program
        (`Plan.feedback`: the reward rule's weights follow the held tag;
        `learn.reward`). Raises BrainFault on non-finite state (the previous
        state is not kept: stop and restore).
        """
        with self.lock:
            first = self.step + 1
            host, status, words = self._burst(length, stims, teaching, feedback)
            self.step += length
            self.last_rate = float(host["rate"][-1])
            if self.log is not None:
                self.log.append(first, host)
            if self.spikes is not None:
                self.spikes.append(first, host["raster"])
            if words is not None and not self.sheet.take(first, words):
                # the budget is spent (its last rows are written in the background):
                # back to the program without the recording
                self.plan = dataclasses.replace(self.plan, record_sheet=False)
            if self.sheet is not None and self.sheet.error is not None:
                self._sheet_lost()
            self._check(int(status))
            if self.store is not None:
                self._report(self.store.poll())
                # every process of a multi-process run saves at the same steps (orbax syncs them)
                if self.autosave.due(self.step, busy=self.store.busy and jax.process_count() == 1):
                    self.save()
            return host

    def _burst(
        self, length: int, stims: np.ndarray | None, teaching: bool, feedback: bool = False
    ) -> tuple[dict, int, jax.Array | None]:
        """One exact burst: (host metrics, status bits, the sheet's words
        (T, W) uint32 on the device when the plan records them, else None).

        A spike list that overflowed (STATUS_SPIKE_OVERFLOW) left its steps
        incomplete, so the burst is run again from the state before it with a
        list that fits the busiest step (JAX MD's neighbour-list idiom: the
        host reallocates outside jit; one more compile). Bursts that can
        overflow do not donate their input, so that state is still there.
        """
        first = None  # (plan, peak spikes) of the first overflow
        while True:
            listed = self.plan.uses_spike_list
            run = brain.burst_packed_keeping_input if listed else brain.burst_packed
            plan = self.plan
            if teaching or feedback:
                plan = dataclasses.replace(plan, teaching=teaching, feedback=feedback)
            pre_major = self._static_order.get(self.circuit, plan, self.wiring, self.state)
            state, packed, raster = run(
                self.circuit, plan, self.wiring, self.state, stims, length=length, pre_major=pre_major
            )
            words = None
            if self.plan.record_sheet:  # the words go to the recorder's thread, not through this copy
                packed, words = brain.split_sheet(self.circuit, packed)
                words = _host_bound(words)
            # one device-to-host copy (status is packed in); an empty raster is made here
            packed = np.asarray(packed)
            raster = np.asarray(raster) if raster.size else np.zeros(raster.shape, raster.dtype)
            status = brain.packed_status(packed)
            host = dict(brain.unpack_metrics(self.circuit, packed, raster, xp=np).items())
            if not (listed and status & STATUS_SPIKE_OVERFLOW) or self.plan.spike_buffer >= 1.0:
                self.state = state
                self._static_order.carried(state)
                if first is not None:
                    old, peak = first
                    over = old.overflowed(self.circuit, peak) if any(old.listed) else []
                    if over:
                        worst = max(over, key=lambda p: peak[p.name] / p.size)
                        what = (
                            f"{peak[worst.name]} neurons of {worst.name} fired in one step, more than the "
                            f"spike list holds ({old.capacity(worst.size)})"
                        )
                    else:  # the sharded brain's spike-list exchange (brain.exchange_list)
                        what = (
                            f"a shard's spikes in one step outgrew the spike-list exchange "
                            f"({old.exchange_capacity(self.circuit.n)} ids a shard)"
                        )
                    self.warnings.append(
                        f"{what}: the burst was re-run exactly with "
                        f"--spike_buffer={self.plan.spike_buffer:.3g} (set it that high to avoid the re-run)"
                    )
                return host, int(status), words
            pops = self.circuit.populations
            peak = {p.name: int(np.max(host["pop_counts"][:, i])) for i, p in enumerate(pops)}
            first = first or (self.plan, peak)
            self.plan = self.plan.grown(self.circuit, peak)

    def _sheet_lost(self) -> None:
        """A write of the sheet failed: a warning, and the brain runs on without the recording."""
        rec, self.sheet = self.sheet, None
        rec.close()
        self.plan = dataclasses.replace(self.plan, record_sheet=False)
        self.warnings.append(
            f"{rec.data_path} stopped after {rec.steps} steps ({rec.error}); the brain keeps running: "
            "free disk space or fix WORKDIR, then record again with --record_sheet"
        )

    def _check(self, status: int) -> None:
        if status & STATUS_NONFINITE:
            self.faulted = True  # never checkpoint this state
            self._flush_log()
            raise BrainFault(
                f"non-finite voltage, threshold or weight by step {self.step}: the model "
                "diverged; restore a checkpoint or lower the gains (e.g. --w_max)"
            )

    def _flush_log(self) -> None:
        """Wait for the debug log's writer; a write error becomes a warning."""
        if self.log is not None:
            try:
                self.log.flush()
            except OSError as e:
                self._log_lost(e)

    def _log_lost(self, error: OSError) -> None:
        self.warnings.append(
            f"{self.log.path} is missing lines ({checkpoint.one_line(error)}); the brain keeps "
            "running: free disk space or fix WORKDIR"
        )

    def copy_weights(self, names: Collection[str]) -> dict[str, jax.Array]:
        """{projection: a copy of its weights}: the state's own arrays die
        with the next burst that donates them (bursts without a spike list
        do), a copy outlives it (e.g. to put learned weights back later)."""
        return {n: jax.numpy.copy(self.state.projections[n].weights) for n in names}

    def set_weights(self, weights: dict[str, jax.Array]) -> None:
        """Put {projection: weights} ((N_post*K,) f32 each, e.g. from
        `copy_weights`) in place of the projections' weights."""
        p = self.state.projections
        self.state = self.state.replace(
            projections={**p, **{n: p[n].replace(weights=w) for n, w in weights.items()}}
        )

    def hold_reply(self) -> None:
        """After a reply burst: hold its eligibility for its feedback
        (`brain.hold_eligibility`, tag <- c on every reward projection) and
        note, in the state, that a reply awaits credit (`reply_held`).
        Nothing for a brain without reward projections."""
        with self.lock:
            if brain.reward_projections(self.circuit):
                self.state = brain.hold_eligibility(self.circuit, self.state)

    @property
    def reply_held(self) -> bool:
        """Whether a reply awaits /good or /bad (`state.reward.held`: part of
        the state, so a restored brain can still credit its last reply)."""
        with self.lock:
            return self.state.reward is not None and bool(self.state.reward.held)

    @property
    def mood(self) -> float | None:
        """The brain's mood (`state.reward.mood`, in [-1, 1]), None without reward synapses."""
        with self.lock:
            return None if self.state.reward is None else float(self.state.reward.mood)

    def mean_threshold(self) -> float:
        with self.lock:
            return float(self.state.neurons.theta.mean())

    def save(self, *, wait: bool = False) -> str | None:
        """Checkpoint the current step to WORKDIR/checkpoints/<step>.

        Blocks for the device-to-host copy only; the files are written in the
        background (wait=True: until written). Returns the checkpoint's folder
        (also when this step is saved already), or None if it failed: then a
        warning is queued, the brain keeps running and older checkpoints are
        untouched.
        """
        with self.lock:
            if self.store is None:
                self.warnings.append("nothing saved: this brain has no checkpoint folder (no workdir)")
                return None
            if self.faulted:
                self.warnings.append(f"step {self.step} not saved: the state is non-finite")
                return None
            if self.saved_step != self.step:
                self._flush_log()  # the log is never behind a checkpoint
                try:
                    self.store.save(
                        config=self.config,
                        circuit=self.circuit,
                        wiring=self.wiring,
                        state=self.state,
                        seed=-1 if self.seed is None else self.seed,
                        rate=self.last_rate,
                        messages=self.messages,
                    )
                except checkpoint.CheckpointError as e:
                    self._report([(self.step, str(e))])
                    return None
                self.saved_step = self.step
            if wait:
                self._report(self.store.wait())
                if self.saved_step is None:
                    return None
            return self.store.path(self.step)

    def _report(self, errors: list[tuple[int, str]]) -> None:
        """Warnings for failed saves, (step, error) each; a failed step is saved again."""
        for step, error in errors:
            if step == self.saved_step:
                self.saved_step = None
            where = f"step {step}: " if step >= 0 else ""
            self.warnings.append(
                f"checkpoint not saved ({where}{error}); the brain keeps running and earlier "
                "checkpoints are untouched: free disk space or fix WORKDIR/checkpoints"
            )

    def close(self, *, save: bool = True) -> str | None:
        """Save a last checkpoint (unless save=False or the state is faulted),
        wait for the writes, close the files. Returns the last checkpoint's
        folder, or None (nothing saved; see `warnings`). Idempotent."""
        path = None
        with self.lock:
            if self.store is not None:
                if save and not self.faulted:
                    path = self.save()
                self._report(self.store.close())
                if self.saved_step != self.step:
                    path = None
                self.store = None
        if self.log is not None:
            try:
                self.log.close()
            except OSError as e:
                self._log_lost(e)
        if self.spikes is not None:
            self.spikes.close()
        if self.sheet is not None:
            self.sheet.close()
            if self.sheet.error is not None:
                self._sheet_lost()
        return path


def _barrier(name: str) -> None:
    """Every process of a multi-process run waits here for the others."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _host_bound(words: jax.Array) -> jax.Array:
    """Start a burst's sheet words on their way to the host: into pinned
    host memory where the device has it, a DMA that runs beside the next
    burst (a copy into ordinary pageable memory waits for the device's
    work instead, stalling it); on a CPU they are in host memory already."""
    device = next(iter(words.devices()))
    if device.platform == "cpu" or "pinned_host" not in {m.kind for m in device.addressable_memories()}:
        return words
    return jax.device_put(words, jax.sharding.SingleDeviceSharding(device, memory_kind="pinned_host"))


def _merge_config(
    restored: checkpoint.Restored, config: BrainConfig, explicit: Collection[str]
) -> tuple[BrainConfig, list[str]]:
    """The restored config with the explicitly passed fields applied over it.

    Returns (config, ["--field=value", ...] applied). A shape field that
    differs is a ValueError naming every differing field and the fix.
    """
    saved = restored.config
    fields = {f for f in explicit if f in BrainConfig.__dataclass_fields__}
    clash = [f for f in SHAPE_FIELDS if f in fields and getattr(config, f) != getattr(saved, f)]
    if clash:
        keep = " ".join(f"--{f}={_flag(getattr(saved, f))}" for f in clash)
        raise ValueError(
            ", ".join(f"--{f}={_flag(getattr(config, f))}" for f in clash)
            + " conflicts with the checkpoint's "
            + ", ".join(f"{f}={_flag(getattr(saved, f))}" for f in clash)
            + f" in {os.path.dirname(restored.path)}: drop the flag (or, after a flagfile, pass {keep}) "
            "to continue that brain, or pass --fresh to start a new one (the old checkpoints are kept "
            "aside)"
        )
    changes = {f: getattr(config, f) for f in sorted(fields) if getattr(config, f) != getattr(saved, f)}
    return saved.replace(**changes), [f"--{f}={_flag(v)}" for f, v in changes.items()]


def _flag(value) -> str:
    """A config value as written on the command line (sheet as HxW)."""
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if value is None:
        return "''"
    return str(value)
