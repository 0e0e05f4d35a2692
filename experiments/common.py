"""Flags shared by every launcher, and the turning of flags into a BrainConfig.

Only launchers import absl.flags; the library gets a validated BrainConfig.
Bad input becomes one line on stderr and exit code 2 (`fail`), never a
traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from absl import app, flags, logging

from jbrain.config import PROPAGATIONS, STDP_MODES, BrainConfig, parse_sheet

if TYPE_CHECKING:
    from jbrain.session import Session

FLAGS = flags.FLAGS
_D = BrainConfig()


def define_brain_flags() -> None:
    """Brain flags (all launchers). Defaults are the 200k-neuron seed brain."""
    flags.DEFINE_integer("seed", 0, "Seed of every random stream (wiring, init, noise).")
    flags.DEFINE_integer("n_neurons", _D.n_neurons, "Number of neurons N.")
    flags.DEFINE_integer("fan_in", _D.fan_in, "Synapses per neuron K (in and out).")
    flags.DEFINE_string("sheet", "", "HxW: a 2-D sheet (torus, 8 neighbours); empty: 1-D ring.")
    flags.DEFINE_float("target_rate", _D.target_rate, "Fraction of neurons firing per step, in (0, 1).")
    flags.DEFINE_float("noise_sd", _D.noise_sd, "Membrane noise per step (threshold units).")
    flags.DEFINE_float("bias", _D.bias, "Global bias current per step.")
    flags.DEFINE_float("w_max", _D.w_max, "Initial weights ~ U[0, w_max); plastic upper bound.")
    flags.DEFINE_enum(
        "propagation",
        _D.propagation,
        list(PROPAGATIONS),
        "Synaptic path: event (scatter of the spikers' out-synapses), gather, bcoo "
        "(reference); auto = the fastest measured on this device (see BUILD.md).",
    )
    flags.DEFINE_float(
        "spike_buffer",
        _D.spike_buffer,
        "Spike list capacity, fraction of N (event path, STDP). A burst that overflows it is "
        "re-run with a larger one (exact; a warning says the size).",
    )
    flags.DEFINE_integer("unroll", _D.unroll, "lax.scan unroll; 0 picks by device.")
    flags.DEFINE_integer("record_spikes", 0, "Record neurons [0, R) to WORKDIR/spikes.u8 (jbrain/raster.py).")
    flags.DEFINE_string("workdir", "runs/default", "Folder for brain_debug.log, checkpoints and plots.")
    flags.DEFINE_boolean("plasticity", False, "STDP on the synaptic weights (on in chat).")
    flags.DEFINE_float("a_plus", _D.a_plus, "STDP potentiation per pre-before-post pairing.")
    flags.DEFINE_float("a_minus", _D.a_minus, "STDP depression per post-before-pre pairing.")
    flags.DEFINE_float("tau_stdp", _D.tau_pre, "STDP trace time constant (ms), pre and post.")
    flags.DEFINE_boolean("synaptic_scaling", False, "Keep each firing neuron's total input weight.")
    flags.DEFINE_enum(
        "stdp",
        _D.stdp,
        list(STDP_MODES),
        "How STDP is applied (the same weights either way): eager, or deferred (LTP replayed "
        "at the pre's next spike; event path); auto = the faster on this device (see BUILD.md).",
    )


def brain_config_from_flags(**overrides) -> BrainConfig:
    """Validated BrainConfig from the flags (ValueError names the flag)."""
    return BrainConfig(
        n_neurons=FLAGS.n_neurons,
        fan_in=FLAGS.fan_in,
        sheet=parse_sheet(FLAGS.sheet),
        target_rate=FLAGS.target_rate,
        noise_sd=FLAGS.noise_sd,
        bias=FLAGS.bias,
        w_max=FLAGS.w_max,
        propagation=FLAGS.propagation,
        spike_buffer=FLAGS.spike_buffer,
        unroll=FLAGS.unroll,
        record_spikes=FLAGS.record_spikes,
        plasticity=FLAGS.plasticity,
        a_plus=FLAGS.a_plus,
        a_minus=FLAGS.a_minus,
        tau_pre=FLAGS.tau_stdp,
        tau_post=FLAGS.tau_stdp,
        synaptic_scaling=FLAGS.synaptic_scaling,
        stdp=FLAGS.stdp,
        **overrides,
    )


def define_checkpoint_flags() -> None:
    """Checkpoint flags (launchers that keep a brain in WORKDIR: run, chat)."""
    flags.DEFINE_integer("save_every", 50_000, "Autosave every N steps; 0: save only on exit and /save.")
    flags.DEFINE_integer("keep", 3, "Checkpoints kept in WORKDIR/checkpoints (the newest).")
    flags.DEFINE_boolean("fresh", False, "Start a new brain; earlier checkpoints move to checkpoints.old-*.")


# flag -> the BrainConfig fields it sets (flags not listed set the field of their name)
_FLAG_FIELDS = {"tau_stdp": ("tau_pre", "tau_post")}


def explicit_fields() -> set[str]:
    """Config fields (and "seed") set by flags the user passed: on a restored
    brain these override the checkpoint's values; the rest come from it."""
    names = set()
    for name in ("seed", *BrainConfig.__dataclass_fields__, *_FLAG_FIELDS):
        if name in FLAGS and FLAGS[name].present:
            names.update(_FLAG_FIELDS.get(name, (name,)))
    return names


def open_session(prog: str, config: BrainConfig, workdir: str, *, always: tuple[str, ...] = ()) -> Session:
    """Session.open from the flags (restore unless --fresh); prints its notes
    and warnings on stderr. `always`: fields the launcher sets whatever the
    checkpoint says (chat: plasticity)."""
    from jbrain import cpu_kernels
    from jbrain.session import Session  # jax and orbax: only for launchers that step a brain

    cpu_kernels.start_build()  # compiles (first run only) while the brain is born or restored
    session = Session.open(
        config,
        seed=FLAGS.seed,
        workdir=workdir,
        fresh=FLAGS.fresh,
        explicit=explicit_fields() | set(always),
        save_every=FLAGS.save_every,
        keep=FLAGS.keep,
    )
    for note in session.notes:
        print(f"jbrain {prog}: {note}", file=sys.stderr, flush=True)
    while session.warnings:
        print(f"jbrain {prog}: warning: {session.warnings.pop(0)}", file=sys.stderr, flush=True)
    return session


def prepare_workdir(path: str) -> str:
    """Create WORKDIR and check that it is writable (ValueError names --workdir)."""
    if not path:
        raise ValueError("--workdir is empty: pass a folder, e.g. --workdir=runs/mybrain")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        reason = e.strerror or str(e)
        raise ValueError(
            f"--workdir={path!r} is not writable ({reason}): pass a folder you can write to"
        ) from None
    return path


def fail(prog: str, message: str) -> None:
    """One-line error on stderr, exit code 2."""
    print(f"jbrain {prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def flags_parser(prog: str) -> Callable[[list[str]], list[str]]:
    """An absl flags parser that turns flag errors into `fail` (exit 2)."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return FLAGS(argv)
        except flags.Error as e:
            fail(prog, f"{e} (see `jbrain {prog} --help`)")
        return []  # unreachable

    return parse


def _not_orbax(record) -> bool:
    return "orbax" not in record.pathname


def run_app(prog: str, main: Callable[[list[str]], None], argv: list[str]) -> None:
    """app.run with one-line errors for bad flags and bad values."""

    def guarded(args: list[str]) -> None:
        logging.set_verbosity(logging.WARNING)  # no backend-probing chatter
        # orbax logs a failed background save with its traceback; jbrain
        # reports it as a one-line warning instead (jbrain/checkpoint.py)
        logging.get_absl_logger().addFilter(_not_orbax)
        if len(args) > 1:
            fail(prog, f"unexpected argument {args[1]!r}: every option is a --flag")
        try:
            main(args)
        except ValueError as e:
            fail(prog, str(e))

    if any(a in ("-h", "--help", "-help", "--helpshort") for a in argv[1:]):
        print(launcher_help(prog, main.__module__))  # absl's would show jbrain.cli's doc, exit 1
        sys.exit(0)
    app.run(guarded, argv=argv, flags_parser=flags_parser(prog))


def launcher_help(prog: str, module: str) -> str:
    """`jbrain PROG --help`: the launcher's docstring, its own flags, then the brain flags."""
    parts = [(sys.modules[module].__doc__ or f"jbrain {prog}").strip(), ""]
    for name in (module, __name__):
        text = FLAGS.module_help(name)
        if text:
            parts += [text, ""]
    if FLAGS.module_help(__name__):
        parts.append("--flagfile=experiments/configs/small.flags loads a preset (see experiments/configs/).")
    parts.append("--helpfull lists every flag.")
    return "\n".join(parts)
