"""Orbax checkpoints of a brain (the only module that imports orbax).

Layout: one folder per saved step under WORKDIR/checkpoints, written by an
orbax `CheckpointManager`:

    WORKDIR/checkpoints/
      1000/                       a complete checkpoint of step 1000
        arrays/                   the pytree {"state": {...}, "wiring": {...}} as nested dicts
        meta/metadata             JSON, see below
        _CHECKPOINT_METADATA      orbax's own (commit time)
      2000/
      2000.orbax-checkpoint-tmp   a save in progress (or killed): never listed
      3000.corrupt/               a damaged checkpoint, set aside on restore

arrays: every leaf of `BrainState` (per-population neurons: voltages,
  thresholds, modes, refractory counters, spikes; per-projection weights,
  traces and conductances; the controller; step, PRNG key data, status) and
  of `Wiring`, as nested dicts of host NumPy arrays (sub-state fields by
  name, projections by name; absent sub-states omitted), so the files do
  not depend on the device that wrote them.
meta: {"format", "jbrain_version", "config": BrainConfig.to_dict(),
  "circuit": Circuit.to_dict() (for reading; the config rebuilds it), "seed",
  "step", "rate" (firing rate of the last step), "messages", "saved_at" (UTC,
  ISO 8601), "arrays": {"state.neurons.v": {"shape", "dtype", "crc32"}, ...}}.

Upgrades: a checkpoint that lacks a reward projection's eligibility, tag
or dopamine (`state.projections.*.elig|tag|dopamine`) restores with them at
zero, as a newborn brain has them, and a warning (`MIGRATED_REWARD`); one
that lacks a rewardable brain's mood, feedback count and held-reply flag
(`state.reward.*`) restores them as a newborn's (`MIGRATED_MOOD`).
A "jbrain-checkpoint/1" (one population, flat state: jbrain up to
the circuits redesign) restores as the seed preset it was, its arrays moved
into the sub-states (`_from_v1`); the next save writes format 2 beside it.

Safety
  * Atomic: orbax writes into `<step>.orbax-checkpoint-tmp` and renames it
    to `<step>` only when every file is written, so a save killed at any
    moment never looks complete; stale tmp folders are removed on the next
    start.
  * Verified: `restore` checks the metadata, every array's shape, dtype and
    crc32 and the step. `find_latest` tries the newest first and reports the
    ones that fail, so the caller can warn and set them aside.
  * Asynchronous: `Checkpointer.save` blocks only for the device-to-host copy
    and the checksums (orbax's own extra host copy is switched off: ours is
    never touched again); orbax writes the files in a background thread. A
    failed write deletes nothing: older checkpoints are pruned (the newest
    `keep` stay) only after a save has completed.
  * Portable: a restore builds its target from the saved config (abstract
    shapes and dtypes, placed on an explicit device), so a checkpoint written
    on a GPU restores on a CPU-only machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import glob
import inspect
import json
import os
import re
import shutil
import sys
import time
import zlib
from typing import Any

import jax
import numpy as np

import jbrain
from jbrain import brain, shard
from jbrain.circuit import Circuit
from jbrain.config import BrainConfig
from jbrain.state import BrainState, Wiring

FORMAT = "jbrain-checkpoint/2"
FORMAT_V1 = "jbrain-checkpoint/1"
READABLE = (FORMAT, FORMAT_V1)
DIRNAME = "checkpoints"
CORRUPT = ".corrupt"
_STEP = re.compile(r"(0|[1-9]\d*)")
_ASIDE = re.compile(r"(0|[1-9]\d*)\.corrupt(-\d+)?")
_TMP = re.compile(r"(0|[1-9]\d*)\.orbax-checkpoint-tmp.*")
_KINDS = (("complete", _STEP), ("set aside", _ASIDE), ("incomplete", _TMP))


class CheckpointError(RuntimeError):
    """A save that failed (disk full, unwritable folder, ...); one-line message."""


class DamagedCheckpoint(Exception):
    """A checkpoint that cannot be restored; the message says why (one line)."""


@dataclasses.dataclass(frozen=True)
class Restored:
    """A restored brain: config, wiring and state (on the target device)."""

    path: str
    step: int
    config: BrainConfig
    seed: int
    wiring: Wiring
    state: BrainState
    meta: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Entry:
    """A folder under WORKDIR/checkpoints, for listings (`jbrain inspect`).

    kind: "complete", "set aside" (damaged, renamed *.corrupt) or
    "incomplete" (an interrupted save); meta: its JSON, or None with
    `problem` saying why.
    """

    path: str
    step: int
    kind: str
    size: int
    meta: dict[str, Any] | None
    problem: str | None


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(workdir, DIRNAME)


_OS_ERROR = re.compile(r"os_error_code='?(\d+)")
_TS_ERROR = re.compile(r'[A-Z_]+: Error (?:reading|writing) "([^"/]+)[^"]*" in OCDBT database at [^:]*: (.*)')


def one_line(e: BaseException) -> str:
    """A short, single-line description of an exception: an OS error by its
    errno text (e.g. a full disk), a tensorstore error by array and cause."""
    chain = []
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    texts = [" ".join(str(x).split()) for x in chain]
    for x, text in zip(chain, texts, strict=True):
        if isinstance(x, OSError) and x.strerror:
            return x.strerror + (f": {x.filename}" if x.filename else "")
        if m := _OS_ERROR.search(text):
            return f"{os.strerror(int(m.group(1)))} (errno {m.group(1)})"
    for text in reversed(texts):
        if m := _TS_ERROR.search(text):
            text = f"{m.group(1)}: {m.group(2)}"
            break
    else:
        text = " ".join(str(chain[0]).splitlines()[:1]).strip() or type(chain[0]).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------- pytrees ---


def _tree(x: Any) -> Any:
    """A state or wiring pytree as nested dicts of its leaves (None omitted)."""
    if dataclasses.is_dataclass(x):
        return {f.name: _tree(v) for f in dataclasses.fields(x) if (v := getattr(x, f.name)) is not None}
    if isinstance(x, dict):
        return {k: _tree(v) for k, v in x.items()}
    return x


def _untree(like: Any, tree: Any) -> Any:
    """The inverse of `_tree`, shaped like the pytree `like`."""
    if dataclasses.is_dataclass(like):
        return type(like)(
            **{
                f.name: None if (v := getattr(like, f.name)) is None else _untree(v, tree[f.name])
                for f in dataclasses.fields(like)
            }
        )
    if isinstance(like, dict):
        return {k: _untree(v, tree[k]) for k, v in like.items()}
    return tree


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"state.neurons.v": leaf, ...} of nested dicts."""
    out = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        out.update(_flat(v, name + ".") if isinstance(v, dict) else {name: v})
    return out


def _crc32(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


def _describe(tree: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """{"state.v": {"shape", "dtype", "crc32"}, ...} of host arrays."""
    return {
        name: {"shape": list(a.shape), "dtype": str(a.dtype), "crc32": _crc32(a)}
        for name, a in _flat(tree).items()
    }


def _host_copy(tree: dict[str, Any]) -> dict[str, Any]:
    """Owned host copies of whole arrays (a view of a CPU buffer could be
    donated under us; a sharded array is gathered, `shard.to_host`)."""
    return jax.tree.map(
        lambda v: (
            v if isinstance(v, np.ndarray) and v.flags.owndata and v.flags.c_contiguous else np.array(v)
        ),
        shard.to_host(tree),
    )


@functools.lru_cache(maxsize=8)
def abstract_brain(config: BrainConfig) -> tuple[Wiring, BrainState]:
    """Shapes and dtypes of (wiring, state) for `config`, without computing them."""
    circuit = config.circuit()
    return jax.eval_shape(lambda: brain.init_brain(circuit, seed=0))


def _target(config: BrainConfig, device: jax.Device, devices: int = 1) -> dict[str, Any]:
    """The restore target: nested dicts of placed ShapeDtypeStructs, on
    `device`, or (devices > 1) laid out over the first `devices` devices as
    a sharded brain is (`shard.shardings`: the neuron axis split)."""
    wiring, state = abstract_brain(config)
    tree = {"state": _tree(state), "wiring": _tree(wiring)}
    if devices > 1:
        place = lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
        return jax.tree.map(place, tree, shard.shardings(devices, tree))
    sharding = jax.sharding.SingleDeviceSharding(device)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def _v1_target(config: BrainConfig, device: jax.Device, devices: int = 1) -> dict[str, Any]:
    """A format-1 checkpoint's layout: flat state and wiring of the one population."""
    t = _target(config, device, devices)
    s, w = t["state"], t["wiring"]["projections"]["W"]
    return {
        "state": {
            **s["neurons"],
            **{k: v for k, v in s["projections"]["W"].items() if k != "g"},
            **s["homeostasis"],
            **{k: s[k] for k in ("step", "key", "status")},
        },
        "wiring": dict(w),
    }


def _from_v1(tree: dict[str, Any]) -> dict[str, Any]:
    """A format-1 tree in format 2's nested layout (the seed's projection is "W")."""
    s, w = tree["state"], tree["wiring"]
    neurons = {k: s[k] for k in ("v", "theta", "adapt", "refrac", "mode", "spikes")}
    return {
        "state": {
            "neurons": neurons,
            "projections": {"W": {k: s[k] for k in ("weights", "x_pre", "y_post")}},
            "homeostasis": {k: s[k] for k in ("ctrl", "rate")},
            **{k: s[k] for k in ("step", "key", "status")},
        },
        "wiring": {"projections": {"W": dict(w)}},
    }


# ---------------------------------------------------------------- reading ---


def read_meta(path: str) -> dict[str, Any]:
    """The metadata JSON of a checkpoint folder (DamagedCheckpoint if unreadable)."""
    file = os.path.join(path, "meta", "metadata")
    try:
        with open(file, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise DamagedCheckpoint("its metadata file is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedCheckpoint(f"its metadata is unreadable ({one_line(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") not in READABLE:
        raise DamagedCheckpoint(f"its metadata is not a {FORMAT} record")
    return meta


def restore(path: str, *, device: jax.Device | None = None, devices: int = 1) -> Restored:
    """Restore and verify the checkpoint folder `path` onto `device`.

    device: where the arrays go (default: the default device, jax.devices()[0]);
    devices > 1: sharded over the first `devices` devices instead (orbax
    reads each shard into place: explicit target shardings), whatever the
    number of devices that saved it. Raises DamagedCheckpoint naming the
    first problem found.
    """
    meta = read_meta(path)
    try:
        config = BrainConfig.from_dict(meta["config"])
        step, seed = int(meta["step"]), int(meta["seed"])
        saved = meta["arrays"]
    except (KeyError, TypeError, ValueError) as e:
        raise DamagedCheckpoint(f"its metadata is inconsistent ({one_line(e)})") from None
    name = os.path.basename(os.path.normpath(path))
    m = _STEP.fullmatch(name) or _ASIDE.fullmatch(name)
    if m and int(m.group(1)) != step:
        raise DamagedCheckpoint(f"its metadata says step {step}")
    v1 = meta["format"] == FORMAT_V1
    if v1 and config.preset != "seed":
        raise DamagedCheckpoint(f"a {FORMAT_V1} record of a non-seed preset")
    target = (_v1_target if v1 else _target)(config, device or jax.devices()[0], devices)
    like_wiring, like_state = abstract_brain(config)
    lesioned = isinstance(saved, dict) and "state.neurons.lesion" in saved
    if lesioned:  # a brain with silenced neurons (`brain.lesion`) keeps them
        n = like_state.neurons.v.shape[0]
        like_state = like_state.replace(
            neurons=like_state.neurons.replace(lesion=jax.ShapeDtypeStruct((n,), np.uint8))
        )
        sharding = target["state"]["neurons"]["v"].sharding  # laid out as the voltages
        target["state"]["neurons"]["lesion"] = jax.ShapeDtypeStruct((n,), np.uint8, sharding=sharding)
    if config.teach and isinstance(saved, dict) and "wiring.projections.pool_motor.pre" not in saved:
        tree = _from_pre_motor(path, config, seed, saved, device or jax.devices()[0])
        meta = {**meta, "migrated": MIGRATED_PRE_MOTOR}
    else:
        # reward-rule arrays a checkpoint may lack (written before the brain had them): start at zero
        flat = _flat(target)
        fill = {
            name: t
            for name, t in flat.items()
            if isinstance(saved, dict)
            and (_REWARD_LEAF.fullmatch(name) or _MOOD_LEAF.fullmatch(name))
            and name not in saved
        }
        for name, t in flat.items():
            info = saved.get(name) if isinstance(saved, dict) else None
            if name in fill:
                continue
            if not info or list(info.get("shape", ())) != list(t.shape) or info.get("dtype") != str(t.dtype):
                raise DamagedCheckpoint(f"array {name} does not match its config")
        if fill:
            loaded = _flat(_load(path, _unflat({k: t for k, t in flat.items() if k not in fill}), saved))
            zeros = {k: jax.device_put(np.zeros(t.shape, t.dtype), t.sharding) for k, t in fill.items()}
            tree = _unflat({**loaded, **zeros})
            said = [
                why
                for pattern, why in ((_REWARD_LEAF, MIGRATED_REWARD), (_MOOD_LEAF, MIGRATED_MOOD))
                if any(pattern.fullmatch(k) for k in fill)
            ]
            meta = {**meta, "migrated": "; and ".join(said)}
        else:
            tree = _load(path, target, saved)
        if v1:
            tree = _from_v1(tree)
    state = _untree(like_state, tree["state"])
    if int(state.step) != step:
        raise DamagedCheckpoint(f"its state is at step {int(state.step)}, not {step}")
    return Restored(
        path=path,
        step=step,
        config=config,
        seed=seed,
        wiring=_untree(like_wiring, tree["wiring"]),
        state=state,
        meta=meta,
    )


MIGRATED_PRE_MOTOR = (
    "written before teachable brains had a motor layer: the sheet, relay and memory are restored; "
    "the taught readout now ends on the motor layer, so it starts afresh (teach the pairs again)"
)


_REWARD_LEAF = re.compile(r"state\.projections\.[^.]+\.(elig|tag|dopamine)")
MIGRATED_REWARD = (
    "written without the reward rule's eligibility, tag and dopamine: they start at zero "
    "(the weights and everything else are restored)"
)


_MOOD_LEAF = re.compile(r"state\.reward\.(mood|feedbacks|held)")
MIGRATED_MOOD = (
    "written before a rewardable brain kept its mood and held reply in its state: mood 0, no "
    "feedback counted, no reply held (the weights and everything else are restored)"
)


def _load(path: str, target: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """The arrays of checkpoint `path` as `target` lays them out, each
    checked against its saved crc32 (DamagedCheckpoint if not)."""
    _drop_abandoned_orbax_reads()
    try:
        ocp = _orbax()
        with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckptr:
            # orbax takes absolute paths only (a relative WORKDIR, the chat's default, is not)
            arrays = os.path.join(os.path.abspath(path), "arrays")
            tree = ckptr.restore(arrays, args=ocp.args.StandardRestore(target))
    except Exception as e:  # tensorstore and orbax raise many types
        raise DamagedCheckpoint(f"its arrays do not load ({one_line(e)})") from None
    for name, x in _flat(tree).items():
        if _crc32(shard.host_array(x)) != saved[name]["crc32"]:
            raise DamagedCheckpoint(f"checksum mismatch in {name}")
    return tree


def _orbax():
    """orbax.checkpoint, imported on first use: a start that neither restores
    nor saves never pays for its import."""
    import orbax.checkpoint as ocp

    return ocp


def _drop_abandoned_orbax_reads() -> None:
    """Install (once) a filter for the tracebacks that orbax's sibling reads
    print when one array of a damaged checkpoint fails; the failure itself
    reaches the caller as one DamagedCheckpoint line. orbax then closes its
    event loop with the other reads still in flight, and each one, when
    tensorstore finishes it, reports through `sys.unraisablehook`:
      * "Exception ignored in <coroutine ...>" for its coroutine, collected
        any time later (at exit, even), and
      * RuntimeError("Event loop is closed") from `call_soon_threadsafe`,
        called from tensorstore's thread (no Python frame above it) to wake
        the closed loop.
    Such reports come at any time later, so the filter stays; it drops only
    these two kinds."""
    if getattr(sys.unraisablehook, "_drops_orbax_reads", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        code = getattr(unraisable.object, "cr_code", None)
        if code is not None and "orbax" in code.co_filename:
            return
        if unraisable.object is None and _wakes_a_closed_loop(unraisable.exc_value):
            return
        previous(unraisable)

    hook._drops_orbax_reads = True
    sys.unraisablehook = hook


def _wakes_a_closed_loop(e: BaseException | None) -> bool:
    """Whether `e` is asyncio's "Event loop is closed" raised by a
    `call_soon_threadsafe` that native code (tensorstore) called: the
    traceback's outermost Python frame is that method itself."""
    tb = getattr(e, "__traceback__", None)
    return (
        isinstance(e, RuntimeError)
        and str(e) == "Event loop is closed"
        and tb is not None
        and tb.tb_frame.f_code.co_name == "call_soon_threadsafe"
    )


def _unflat(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `_flat`: nested dicts from {"state.neurons.v": leaf, ...}."""
    tree: dict[str, Any] = {}
    for name, leaf in flat.items():
        node = tree
        *parents, last = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = leaf
    return tree


def _from_pre_motor(path: str, config: BrainConfig, seed: int, saved: dict, device: jax.Device) -> dict:
    """The tree (state and wiring, on `device`) of a teachable brain saved
    before the motor layer (populations E, I, T, M; the readout M -> the
    sheet's output region) in today's circuit (E, I, T, M, O, P; readout
    M -> O). Populations are laid out in order, so every per-neuron array
    saved is today's first N_old entries; the motor layer and pool take
    their newborn values, as do the readout (its post changed) and the
    pool's projections. Everything else is the saved brain, bit for bit."""
    sharding = jax.sharding.SingleDeviceSharding(device)
    layout = {  # the saved arrays, as they were written
        name: jax.ShapeDtypeStruct(tuple(info["shape"]), np.dtype(info["dtype"]), sharding=sharding)
        for name, info in saved.items()
    }
    old = _flat(_load(path, _unflat(layout), saved))
    wiring, state = brain.init_brain(config.circuit(), seed=seed)
    merged = {}
    for name, new in _flat({"state": _tree(state), "wiring": _tree(wiring)}).items():
        was = old.get(name)
        if "memory_output" in name or was is None:
            merged[name] = new
        elif was.shape == new.shape:
            merged[name] = was
        elif name.startswith("state.neurons.") and was.shape[1:] == new.shape[1:] and was.shape[0] < len(new):
            merged[name] = np.concatenate([np.asarray(was), np.asarray(new)[was.shape[0] :]])
        else:
            raise DamagedCheckpoint(f"array {name} does not match its config")
    return _unflat({name: jax.device_put(x, device) for name, x in merged.items()})


def _check_dir(directory: str) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"{directory} exists but is not a folder: move it away, or pass another --workdir")


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError as e:
        raise ValueError(f"cannot read {directory} ({one_line(e)}): check its permissions") from None


def complete_steps(directory: str) -> list[int]:
    """Steps of the complete checkpoints in `directory`, ascending."""
    _check_dir(directory)
    if not os.path.isdir(directory):
        return []
    steps = [int(n) for n in _names(directory) if _STEP.fullmatch(n)]
    return sorted(s for s in steps if os.path.isdir(os.path.join(directory, str(s))))


def find_latest(
    directory: str, *, device: jax.Device | None = None, devices: int = 1
) -> tuple[Restored | None, list[tuple[str, str]]]:
    """The newest checkpoint that restores (onto `device`, or sharded over
    `devices`: `restore`), and the newer ones that did not.

    Returns (restored or None, [(path, reason), ...]). Changes nothing on disk.
    """
    bad = []
    for step in reversed(complete_steps(directory)):
        path = os.path.join(directory, str(step))
        try:
            return restore(path, device=device, devices=devices), bad
        except DamagedCheckpoint as e:
            bad.append((path, str(e)))
    return None, bad


def _size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def list_checkpoints(directory: str) -> list[Entry]:
    """Every checkpoint folder in `directory` (complete, set aside, incomplete),
    by step. Reads only the metadata, never the arrays."""
    _check_dir(directory)
    if not os.path.isdir(directory):
        return []
    entries = []
    for name in _names(directory):
        path = os.path.join(directory, name)
        if not os.path.isdir(path):
            continue
        found = [(k, m) for k, p in _KINDS if (m := p.fullmatch(name))]
        if not found:
            continue
        kind, m = found[0]
        meta, problem = None, None
        if kind == "incomplete":
            problem = "an interrupted save"
        else:
            try:
                meta = read_meta(path)
            except DamagedCheckpoint as e:
                problem = str(e)
        entries.append(Entry(path, int(m.group(1)), kind, _size(path), meta, problem))
    order = {"complete": 0, "set aside": 1, "incomplete": 2}
    return sorted(entries, key=lambda e: (e.step, order[e.kind]))


# ---------------------------------------------------------- moving aside ---


def _free_name(path: str) -> str:
    if not os.path.exists(path):
        return path
    i = 2
    while os.path.exists(f"{path}-{i}"):
        i += 1
    return f"{path}-{i}"


def set_aside(path: str) -> str:
    """Rename a damaged checkpoint folder to `<step>.corrupt` (kept, never
    listed as a step again). Returns the new path."""
    new = _free_name(os.path.normpath(path) + CORRUPT)
    os.rename(path, new)
    return new


def archive(directory: str) -> str | None:
    """Move a checkpoints folder aside for a new brain (`--fresh`): renamed
    to `checkpoints.old-<UTC time>`; nothing is deleted. None if empty."""
    _check_dir(directory)
    if not os.path.isdir(directory) or not os.listdir(directory):
        return None
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    new = _free_name(f"{os.path.normpath(directory)}.old-{stamp}")
    try:
        os.rename(directory, new)
    except OSError as e:
        raise ValueError(f"--fresh: cannot move {directory} aside ({one_line(e)})") from None
    return new


# ----------------------------------------------------------------- saving ---


def _new(cls: Any, **kwargs: Any) -> Any:
    """cls(**kwargs) without the options this orbax version does not know.

    The tuning options here (no extra host copy, synchronous folder creation)
    appeared in later orbax releases; older ones work without them.
    """
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return cls(**kwargs)


class Autosave:
    """The autosave policy: a checkpoint every `every` steps (0: never),
    skipped (and retried at the next burst) while a save is still being
    written, so a slow disk never stalls the brain."""

    def __init__(self, every: int, step: int):
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"--save_every={every} must be >= 0 steps (0: save only on exit and /save)")
        self.every = every
        self.mark = step // every if every else 0

    def due(self, step: int, *, busy: bool) -> bool:
        """Whether to save at `step` (marks the period as saved when True)."""
        if not self.every or step // self.every <= self.mark or busy:
            return False
        self.mark = step // self.every
        return True


class Checkpointer:
    """Asynchronous saves of one brain into `directory`, keeping the newest `keep`.

    `save(...)` blocks for the host copy only and returns the folder the
    checkpoint will have; `poll()` (non-blocking) and `wait()` return the
    (step, one-line error) of background writes that failed. Not thread-safe: the
    caller (Session) serialises calls.
    """

    def __init__(self, directory: str, *, keep: int):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"--keep={keep} must be >= 1 (checkpoints kept in WORKDIR/{DIRNAME})")
        _check_dir(directory)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create {directory} ({one_line(e)}): pass another --workdir") from None
        self.directory = directory
        self.keep = keep
        self._orbax_manager = None  # made by the first save (`_manager`)
        self._wiring: tuple[Wiring, dict[str, np.ndarray], dict[str, dict]] | None = None
        self._errors: list[tuple[int, str]] = []
        self.pending: int | None = None  # step of the save being written

    @property
    def _manager(self):
        """orbax's CheckpointManager, made on first use (the first save):
        importing orbax is a good part of a chat's start-up (BENCHMARKS.md),
        and a session may never save."""
        if self._orbax_manager is not None:
            return self._orbax_manager
        ocp = _orbax()
        manager = ocp.CheckpointManager(
            os.path.abspath(self.directory),
            options=_new(
                ocp.CheckpointManagerOptions,
                max_to_keep=self.keep,
                cleanup_tmp_directories=True,
                enable_async_checkpointing=True,
                save_root_metadata=False,
                # Folders are made in save() itself: a folder that cannot be
                # made fails at once, instead of stalling orbax's writer
                # threads until their signal timeout (minutes).
                async_options=_new(ocp.AsyncOptions, create_directories_asynchronously=False),
            ),
            item_handlers={
                # The arrays are our own host copies, never touched again:
                # orbax need not copy them once more before its background write.
                "arrays": ocp.PyTreeCheckpointHandler(
                    type_handler_registry=ocp.type_handlers.create_type_handler_registry(
                        (np.ndarray, _new(ocp.type_handlers.NumpyHandler, deepcopy_host_arrays=False)),
                        (np.number, ocp.type_handlers.ScalarHandler()),
                        (jax.Array, ocp.type_handlers.ArrayHandler()),  # unused; keeps orbax quiet
                    )
                ),
                "meta": ocp.JsonCheckpointHandler(),
            },
        )
        # orbax removes a previous run's unfinished (tmp) folders in a thread
        # of its own, awaited only by the first save: wait for it here, so that
        # nothing lists or deletes in the folder once the store is open
        # (a folder moved away meanwhile failed that thread, and with it the
        # next save). A private method of orbax (0.12); where it is gone, the first save waits as before.
        getattr(manager, "_maybe_await_cleanup_tmp_directory", lambda: None)()
        self._orbax_manager = manager
        return manager

    def path(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def _wiring_host(self, wiring: Wiring) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        # The wiring never changes: one host copy (and its checksums) for every save.
        if self._wiring is None or self._wiring[0] is not wiring:
            host = _host_copy(_tree(wiring))
            self._wiring = (wiring, host, _describe({"wiring": host}))
        return self._wiring[1], self._wiring[2]

    def save(
        self,
        *,
        config: BrainConfig,
        circuit: Circuit,
        wiring: Wiring,
        state: BrainState,
        seed: int,
        rate: float,
        messages: int = 0,
    ) -> str:
        """Start saving `state`; returns the checkpoint's folder (at once if
        this step is saved already). A save still being written is waited for
        first. Raises CheckpointError (one line)."""
        self._finish()
        try:
            step = int(shard.host_array(state.step))
            if step in self._manager.all_steps() and os.path.isdir(self.path(step)):
                return self.path(step)
            wiring_host, wiring_info = self._wiring_host(wiring)
            tree = {"state": _host_copy(_tree(state)), "wiring": wiring_host}
            meta = {
                "format": FORMAT,
                "jbrain_version": jbrain.__version__,
                "config": config.to_dict(),
                "circuit": circuit.to_dict(),
                "seed": int(seed),
                "step": step,
                "rate": float(rate),
                "messages": int(messages),
                "saved_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "arrays": _describe({"state": tree["state"]}) | wiring_info,
            }
            ocp = _orbax()
            saved = self._manager.save(
                step,
                args=ocp.args.Composite(arrays=ocp.args.PyTreeSave(tree), meta=ocp.args.JsonSave(meta)),
            )
        except Exception as e:  # OSError, orbax's ValueErrors, a deleted (donated) array, ...
            self._cleanup_tmp()
            raise CheckpointError(one_line(e)) from None
        if not saved:
            raise CheckpointError(f"a checkpoint of step {step} or later already exists in {self.directory}")
        self.pending = step
        return self.path(step)

    @property
    def busy(self) -> bool:
        """A save is still being written (a new one would wait for it)."""
        return self.pending is not None and self._manager.is_saving_in_progress()

    def poll(self) -> list[tuple[int, str]]:
        """Non-blocking: errors of saves that finished and failed (drained)."""
        if self.pending is not None and not self.busy:
            self._finish()
        errors, self._errors = self._errors, []
        return errors

    def wait(self) -> list[tuple[int, str]]:
        """Block until the save in flight is written; errors of failed saves (drained)."""
        self._finish()
        errors, self._errors = self._errors, []
        return errors

    def _finish(self) -> None:
        if self.pending is None:
            return
        step, self.pending = self.pending, None
        try:
            self._manager.wait_until_finished()
        except Exception as e:
            self._cleanup_tmp()
            self._errors.append((step, one_line(e)))
            return
        if not os.path.isdir(self.path(step)):
            self._errors.append((step, "the checkpoint folder is missing after the save"))

    def _cleanup_tmp(self, settle_s: float = 3.0) -> None:
        # Called after a failed save: every tmp folder is a failed one. The
        # save's other writes (tensorstore threads) may still land for a
        # moment after the first error and re-create folders, so remove until
        # none is seen twice in a row, 50 ms apart (or settle_s passed).
        pattern = os.path.join(glob.escape(self.directory), "*.orbax-checkpoint-tmp*")
        deadline, clean = time.monotonic() + settle_s, 0
        while clean < 2 and time.monotonic() < deadline:
            found = glob.glob(pattern)
            for tmp in found:
                shutil.rmtree(tmp, ignore_errors=True)
            clean = 0 if found else clean + 1
            time.sleep(0.05)
        if self._orbax_manager is not None:
            with contextlib.suppress(Exception):
                self._orbax_manager.reload()

    def close(self) -> list[tuple[int, str]]:
        """Wait for the save in flight and release orbax's threads; errors (drained)."""
        errors = self.wait()
        if self._orbax_manager is None:  # never saved: orbax was never started
            return errors
        try:
            self._manager.close()
        except Exception as e:
            errors.append((-1, one_line(e)))
        return errors
