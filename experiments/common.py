"""Flags shared by every launcher, and the turning of flags into a BrainConfig.

Only launchers import absl.flags; the library gets a validated BrainConfig.
Bad input becomes one line on stderr and exit code 2 (`fail`), never a
traceback.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from absl import app, flags, logging

from jbrain import compile_cache
from jbrain.config import PRESETS, BrainConfig, parse_sheet
from jbrain.plan import BACKENDS, EXCHANGES, PROPAGATIONS, STDP_FORMS

if TYPE_CHECKING:
    from jbrain.session import Session

FLAGS = flags.FLAGS
_D = BrainConfig()
flags.DEFINE_string(
    "compile_cache", "auto",
    "Folder of JAX's persistent compilation cache, so a restart loads the brain's compiled programs: "
    "auto ($JBRAIN_CACHE/xla, else ~/.cache/jbrain/xla; JAX_COMPILATION_CACHE_DIR wins), off, or a path.",
)  # fmt: skip

# One flag per BrainConfig field (help text here; the type from the default).
_HELP = {
    "preset": "Circuit preset: seed (one population), ei (E and I, Dale's law), coba (the COBA benchmark), "
    "cortex (an E/I sheet with regions).",
    "n_neurons": "Number of neurons N (all populations).",
    "fan_in": "Synapses into each neuron K (split between E and I in ei/coba).",
    "inh_fraction": "ei/coba: share of inhibitory neurons (and of each neuron's inputs).",
    "connectivity": "ei/coba wiring: fixed fan-in, or bernoulli (each pair with p = K_E / N_E, K_I / N_I).",
    "dt": "Step length in ms.",
    "tau_m": "Membrane time constant (ms).",
    "v_rest": "Resting voltage (threshold units; mV for coba).",
    "v_reset": "Voltage after a spike and while refractory.",
    "theta_init": "Initial firing threshold.",
    "v_init": "Newborn voltages: uniform U[v_init_a, v_init_b) or normal N(v_init_a, v_init_b).",
    "v_init_a": "Lower bound (uniform) or mean (normal) of the newborn voltages.",
    "v_init_b": "Upper bound (uniform) or standard deviation (normal) of the newborn voltages.",
    "refractory": "Refractory period (steps).",
    "bias": "Bias current per step.",
    "noise_sd": "Membrane noise per step (standard deviation).",
    "tau_adapt": "Time constant of the spike-frequency trace (ms).",
    "adapt_on": "Spike-trace level that enters the ADAPTED mode.",
    "adapt_off": "Spike-trace level that leaves the ADAPTED mode.",
    "adapt_boost": "Extra threshold in the ADAPTED mode.",
    "target_rate": "Target fraction of neurons firing per step, in (0, 1).",
    "eta_theta": "Threshold homeostasis rate (0: fixed thresholds).",
    "theta_min": "Lowest threshold.",
    "theta_max": "Highest threshold.",
    "controller": "Global rate controller (an integral drive on the whole brain's rate).",
    "ctrl_gain": "Controller gain per step.",
    "ctrl_max": "Controller drive limit.",
    "osc_amp": "Amplitude of the controller's slow oscillation.",
    "osc_period": "Period of the slow oscillation (steps).",
    "w_init": "Newborn weights: uniform U[0, w) or constant w (w = w_max or w_inh).",
    "w_max": "Excitatory weights: initial bound and plastic upper bound.",
    "w_inh": "Inhibitory weights (ei/coba): initial bound.",
    "synapse": "Synapse kind: delta (a current) or exp (a conductance, reversal potentials e_exc/e_inh).",
    "tau_exc": "Excitatory conductance decay (ms; synapse=exp).",
    "tau_inh": "Inhibitory conductance decay (ms; synapse=exp).",
    "e_exc": "Excitatory reversal potential (synapse=exp).",
    "e_inh": "Inhibitory reversal potential (synapse=exp).",
    "delay": "Synaptic delay (steps, 1-33).",
    "neighbour_weight": "Neighbour excitation if every neighbour fired (0: none).",
    "radius": "cortex: local wiring radius on the sheet (cells; the sd of a gaussian profile).",
    "profile": "cortex: local wiring profile, uniform over the disc or gaussian.",
    "long_fan_in": "cortex: long-range E synapses per neuron, input -> association -> output (0: none).",
    "local_rule": "cortex: E -> E and I -> I wiring: radius draws, or local (fixed fan-out: the event path).",
    "long_clusters": "cortex: long-range synapses drawn around N places of the pre region (0: anywhere).",
    "wta": "cortex: winner-take-all among the output groups (self-excitation, a shared inhibitory pool).",
    "wta_fan_in": "cortex --wta: synapses per neuron of each winner-take-all projection.",
    "wta_self": "cortex --wta: weight of a group's excitation of itself.",
    "wta_inh": "cortex --wta: weight of the pool's inhibition of the output groups.",
    "teach": "cortex: a teachable brain (/teach): cue memory, clock and teacher ports, the taught readout.",
    "memory_neurons": "cortex --teach: neurons of the memory population M (a block per clock channel).",
    "memory_fan_in": "cortex --teach: synapses per memory neuron from the relay T.",
    "relay_group": "cortex --teach: relay neurons (T) per text channel.",
    "cue_positions": (
        "cortex --teach: the relay hears the message's first P characters at their positions "
        "(0: characters wherever they are)."
    ),
    "memory_tau": "cortex --teach: decay (ms) of the slow relay -> memory synapses (the message's trace).",
    "memory_w": "cortex --teach: mean weight of the relay -> memory synapses (born U[0.5, 1.5) x memory_w).",
    "memory_noise": (
        "cortex --teach: membrane noise per step of the memory, motor and pool neurons "
        "(0: a reply depends only on the message)."
    ),
    "memory_theta": "cortex --teach: firing threshold of the memory neurons (fixed).",
    "memory_tau_m": "cortex --teach: membrane time constant of the memory neurons (ms).",
    "memory_k": "cortex --teach: k-winners-take-all, spikes per step at most in each memory block.",
    "clock_channels": "cortex --teach: clock channels, a memory block each (reply window r drives r mod C).",
    "clock_gain": "cortex --teach: drive per step of a clock block in its reply window.",
    "teach_fan_in": "cortex --teach: synapses per output neuron of the taught readout (memory -> output).",
    "teach_w": "cortex --teach: newborn readout weights ~ U[-teach_w, teach_w).",
    "motor_group": "cortex --teach: motor neurons per output character (the reply's groups).",
    "motor_pool": "cortex --teach: inhibitory pool neurons of the motor layer's winner-take-all.",
    "motor_pool_fan_in": "cortex --teach: motor -> pool and pool -> motor synapses per neuron.",
    "motor_inh": "cortex --teach: weight of each pool -> motor (inhibitory) synapse.",
    "teach_w_max": "cortex --teach: bound of the readout weights, which lie in [-teach_w_max, teach_w_max].",
    "teach_eta": "cortex --teach: delta-rule (LMS) rate per step.",
    "teach_tau": "cortex --teach: time constant (ms) of the delta rule's presynaptic traces.",
    "teach_target": "cortex --teach: drive per step the delta rule gives a taught output neuron.",
    "teacher_gain": "cortex --teach: drive per step of the teacher on the reply's output group.",
    "reward": "cortex --teach: a reward-modulated readout M -> O, so /good and /bad credit the last reply.",
    "reward_eta": "cortex --teach --reward: weight change per unit of dopamine and of eligibility, per step.",
    "reward_w": "cortex --teach --reward: the reward readout's weights are born U[0, reward_w).",
    "reward_w_max": "cortex --teach --reward: the reward readout's weight bound.",
    "working_memory": "cortex --teach: a working memory in short-term facilitation (/recall replays it).",
    "wm_positions": "--working_memory: slots (the message's first characters held).",
    "wm_group": "--working_memory: neurons per (slot, character) assembly.",
    "wm_U": "--working_memory: baseline utilisation U of the assemblies' synapses (0 < U <= 1).",
    "wm_tau_f": "--working_memory: facilitation decay tau_F (ms).",
    "wm_tau_d": "--working_memory: resource recovery tau_D (ms).",
    "wm_J": "--working_memory: weight J of the assemblies' recurrent synapses (a spike delivers J u x).",
    "wm_relay_w": "--working_memory: weight of each relay -> memory synapse.",
    "wm_load": "--working_memory: drive per step of the load gate on the slot being heard.",
    "wm_recall": "--working_memory: steady drive per step of /recall on the slot being read.",
    "wm_noise": "--working_memory: noise sd per step of the memory's neurons.",
    "wm_tau_m": "--working_memory: membrane time constant (ms) of the memory's neurons.",
    "wm_facilitation": "--working_memory: facilitation on (false: u held at U, the ablation).",
    "reward_noise": "cortex --teach --reward: noise (sd per step) of the motor layer, its exploration.",
    "motor_k": "cortex --teach: k-winners-take-all on the motor layer, spikes per step at most (0: off).",
    "motor_self": "cortex --teach: weight of the all-to-all excitation inside each motor group (0: none).",
    "motor_self_tau_d": "cortex --teach: recovery (ms) of the depressing --motor_self synapses (0: none).",
    "reward_a_minus": "cortex --teach --reward: eligibility lost per post-before-pre pairing (a gain is 1).",
    "reward_tau_dopamine": "cortex --teach --reward: dopamine decay (ms); a feedback burst lasts 5 of them.",
    "long_radius": "cortex: radius in cells of each place of --long_clusters.",
    "long_w_max": "cortex: upper bound of the long-range weights under STDP (born like the local ones).",
    "plasticity": "STDP on the excitatory recurrent synapses (on in chat).",
    "tau_pre": "STDP presynaptic trace time constant (ms).",
    "tau_post": "STDP postsynaptic trace time constant (ms).",
    "a_plus": "STDP potentiation per pre-before-post pairing.",
    "a_minus": "STDP depression per post-before-pre pairing.",
    "synaptic_scaling": "Keep each firing neuron's total input weight (eager STDP).",
    "inh_plasticity": "cortex: inhibitory plasticity on I -> E toward the target rate (Vogels et al. 2011).",
    "inh_eta": "Inhibitory plasticity learning rate.",
    "inh_tau": "Inhibitory plasticity trace time constant (ms).",
    "input_channels": "Input channels (one per byte value for the chat).",
    "output_channels": "Readout groups (one per character of the reply alphabet).",
    "io_fraction": "Fraction of the (excitatory) neurons in each of the input and output groups.",
    "input_gain": "Current per step into a stimulated input neuron.",
}
_ENUMS = {
    "preset": list(PRESETS),
    "connectivity": ["fixed", "bernoulli"],
    "v_init": ["uniform", "normal"],
    "w_init": ["uniform", "constant"],
    "synapse": ["delta", "exp"],
    "profile": ["uniform", "gaussian"],
    "local_rule": ["radius", "local"],
}


def define_brain_flags() -> None:
    """Brain flags (all launchers): --seed, one per BrainConfig field
    (defaults: the 200k-neuron seed brain), the plan's overrides, --workdir."""
    flags.DEFINE_integer("seed", 0, "Seed of every random stream (wiring, init, noise).")
    for f in dataclasses.fields(BrainConfig):
        default, help_ = getattr(_D, f.name), _HELP.get(f.name, "")
        if f.name == "sheet":
            flags.DEFINE_string(
                "sheet", "", "seed, cortex: HxW, a 2-D sheet (seed: a torus, 8 neighbours); empty: 1-D ring."
            )
        elif f.name in _ENUMS:
            flags.DEFINE_enum(f.name, default, _ENUMS[f.name], help_)
        elif isinstance(default, bool):
            flags.DEFINE_boolean(f.name, default, help_)
        elif isinstance(default, int):
            flags.DEFINE_integer(f.name, default, help_)
        else:
            flags.DEFINE_float(f.name, default, help_)
    flags.DEFINE_float("tau_stdp", None, "Sets --tau_pre and --tau_post together (ms).")
    define_plan_flags()
    flags.DEFINE_string("workdir", "runs/default", "Folder for brain_debug.log, checkpoints and plots.")


def define_plan_flags() -> None:
    """Overrides of the plan (how this device runs the circuit; jbrain/plan.py)."""
    flags.DEFINE_enum(
        "propagation", "auto", list(PROPAGATIONS),
        "Synaptic path: event (scatter of the spikers' out-synapses), gather, bcoo "
        "(reference); auto = the fastest measured on this device (see BUILD.md).",
    )  # fmt: skip
    flags.DEFINE_enum(
        "stdp", "auto", list(STDP_FORMS),
        "How STDP is applied (the same weights either way): eager, or deferred (LTP replayed "
        "at the pre's next spike; event path); auto = the faster on this device (see BUILD.md).",
    )  # fmt: skip
    flags.DEFINE_enum("backend", "auto", list(BACKENDS), "Kernels: xla (reference), pallas_gpu, cpu_native.")
    flags.DEFINE_float(
        "spike_buffer", 0.1,
        "Spike list capacity, fraction of each population (event path). A burst that overflows it is "
        "re-run with a larger one (exact; a warning says the size).",
    )  # fmt: skip
    flags.DEFINE_integer("unroll", 0, "lax.scan unroll; 0 picks by device.")
    flags.DEFINE_integer(
        "devices", 0,
        "Devices the brain is sharded over (its neuron axis; a mesh of the first N devices of every "
        "process): 0 = all of them, 1 = the single-device program. A sharded brain runs the xla backend, "
        "the gather path and eager STDP (BUILD.md).",
    )  # fmt: skip
    flags.DEFINE_enum(
        "exchange", "auto", list(EXCHANGES),
        "How the shards of a sharded brain (--devices > 1) swap each step's spikes: words (bit-packed, "
        "N/8 bytes), list (each shard's spiking ids, 4 x capacity x devices bytes; capacity from "
        "--spike_buffer, overflow re-runs the burst); auto = the one that moves fewer bytes.",
    )  # fmt: skip
    flags.DEFINE_integer("record_spikes", 0, "Record neurons [0, R) to WORKDIR/spikes.u8 (jbrain/raster.py).")
    flags.DEFINE_integer(
        "record_sheet", 0,
        "Record the spikes of every neuron (1 bit each) for the next STEPS steps to WORKDIR/sheet.bits "
        "(jbrain/sheet.py); `jbrain plot --sheet` draws them. 0: none.",
    )  # fmt: skip


def brain_config_from_flags(**overrides) -> BrainConfig:
    """Validated BrainConfig from the flags (ValueError names the flag)."""
    values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(BrainConfig)}
    values["sheet"] = parse_sheet(FLAGS.sheet)
    if FLAGS.tau_stdp is not None:
        values["tau_pre"] = values["tau_post"] = FLAGS.tau_stdp
    values.update(overrides)
    return BrainConfig(**values)


def plan_options() -> dict:
    """The plan flags as `plan.resolve` keyword arguments."""
    names = (
        "propagation", "stdp", "backend", "spike_buffer", "unroll", "record_spikes", "record_sheet",
        "devices", "exchange",
    )  # fmt: skip
    return {name: FLAGS[name].value for name in names}


def define_checkpoint_flags() -> None:
    """Checkpoint flags (launchers that keep a brain in WORKDIR: run, chat)."""
    flags.DEFINE_integer("save_every", 50_000, "Autosave every N steps; 0: save only on exit and /save.")
    flags.DEFINE_integer("keep", 3, "Checkpoints kept in WORKDIR/checkpoints (the newest).")
    flags.DEFINE_boolean("fresh", False, "Start a new brain; earlier checkpoints move to checkpoints.old-*.")


def define_distributed_flags() -> None:
    """Multi-host flags (run): one process per host, joined by `jax.distributed`."""
    flags.DEFINE_string(
        "coordinator", "",
        "HOST:PORT of process 0's coordination service (a multi-host run, BUILD.md); every process "
        "passes the same one. Empty: a single process.",
    )  # fmt: skip
    flags.DEFINE_integer("num_processes", None, "Processes of a multi-host run (with --coordinator).")
    flags.DEFINE_integer(
        "process_id",
        None,
        "This process's index in a multi-host run, 0 .. num_processes-1 (with --coordinator).",
    )


def start_distributed() -> None:
    """`jax.distributed.initialize` from --coordinator, --num_processes and
    --process_id, before anything touches a device (ValueError, one line,
    for a combination that cannot work). No --coordinator: nothing."""
    address, count, index = FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id
    if not address:
        if count is not None or index is not None:
            raise ValueError(
                "--num_processes and --process_id need --coordinator=HOST:PORT (process 0's address, "
                "the same on every host)"
            )
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--coordinator={address!r} must be HOST:PORT, e.g. --coordinator=10.0.0.1:1234")
    if count is None or index is None:
        raise ValueError(f"--coordinator={address} needs --num_processes=P and --process_id=I (0 .. P-1)")
    if count < 1 or not 0 <= index < count:
        raise ValueError(
            f"--process_id={index} must be in 0 .. --num_processes-1 = {count - 1} (and --num_processes >= 1)"
        )
    import jax  # only a multi-host launcher pays for it here

    try:
        jax.distributed.initialize(coordinator_address=address, num_processes=count, process_id=index)
    except RuntimeError as e:  # e.g. jax's backend was started already
        raise ValueError(
            f"--coordinator={address}: jax.distributed.initialize failed ({' '.join(str(e).split())})"
        ) from None


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
    from jbrain.backends import cpu_native
    from jbrain.session import Session  # jax and orbax: only for launchers that step a brain

    cpu_native.start_build()  # compiles (first run only) while the brain is born or restored
    session = Session.open(
        config,
        seed=FLAGS.seed,
        workdir=workdir,
        fresh=FLAGS.fresh,
        explicit=explicit_fields() | set(always),
        save_every=FLAGS.save_every,
        keep=FLAGS.keep,
        plan_options=plan_options(),
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
        probe = os.path.join(path, f".write_test-{os.getpid()}")  # one per process: hosts may share WORKDIR
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
            # absl words a missing flagfile "ERROR:: Unable to open flagfile: ..."
            fail(prog, f"{str(e).removeprefix('ERROR:: ')} (see `jbrain {prog} --help`)")
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
            compile_cache.enable(FLAGS.compile_cache)
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
