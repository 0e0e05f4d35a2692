"""jbrain inspect: list the checkpoints of a workdir and print the saved brain;
with --plan, the plan this device would run the flags' circuit with.

One line per checkpoint folder in WORKDIR/checkpoints: step, when it was saved
(UTC), its size on disk and the firing rate at save; damaged checkpoints that
a restore set aside (*.corrupt) and interrupted saves are listed with what is
wrong. Then the circuit of the newest complete checkpoint (its populations
with their ranges, places and regions, projections and ports) and its
config as JSON. Reads only the metadata: nothing is restored or changed.

--circuit: the circuit the model flags and flagfiles describe (populations,
regions of the sheet with their places and sizes, projections, ports),
without a workdir, and the device memory such a brain holds (bytes per
neuron and per synapse; nothing is allocated).

--plan: the resolved plan as JSON (`backend`, each projection's path and
STDP form, spike-list capacities, unroll; jbrain/plan.py) for the model
flags and flagfiles given, exactly as `jbrain run` would resolve it here.
"""

from __future__ import annotations

import json
import os
import sys

from absl import flags

from experiments import common
from jbrain import brain, checkpoint
from jbrain.config import BrainConfig

FLAGS = flags.FLAGS
common.define_brain_flags()
flags.DEFINE_boolean("plan", False, "Print the resolved plan (JSON) for the model flags, and nothing else.")
flags.DEFINE_boolean("circuit", False, "Print the flags' circuit (with its regions), and nothing else.")


def human_size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # unreachable


def report(workdir: str) -> str:
    """The listing and the saved config (text, several lines)."""
    directory = checkpoint.checkpoint_dir(workdir)
    entries = checkpoint.list_checkpoints(directory)
    if not entries:
        return f"no checkpoints in {directory}"
    rows = [("step", "saved (UTC)", "size", "rate", "")]
    for e in entries:
        meta = e.meta or {}
        saved = str(meta.get("saved_at", "-")).replace("T", " ").removesuffix("+00:00")
        rate = f"{meta['rate']:.4f}" if isinstance(meta.get("rate"), int | float) else "-"
        note = ""
        if e.kind != "complete" or e.problem is not None:
            note = f"{e.kind}: {e.problem}" if e.problem else e.kind
        if e.kind == "set aside":
            note += f" ({os.path.basename(e.path)})"
        rows.append((str(e.step), saved, human_size(e.size), rate, note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"checkpoints in {directory}:"]
    for r in rows:
        cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3].rjust(widths[3])]
        lines.append(("  " + "  ".join(cells) + ("  " + r[4] if r[4] else "")).rstrip())
    good = [e for e in entries if e.kind == "complete" and e.meta is not None]
    if good:
        meta = good[-1].meta
        lines.append(
            f"config of step {meta['step']} (jbrain {meta.get('jbrain_version', '?')}, "
            f"seed {meta.get('seed', '?')}, {meta.get('messages', 0)} chat messages):"
        )
        try:
            lines += BrainConfig.from_dict(meta.get("config") or {}).circuit().describe()
        except (TypeError, ValueError) as e:
            lines.append(f"(its circuit cannot be rebuilt: {e})")
        lines.append(json.dumps(meta.get("config"), indent=1, sort_keys=True))
    else:
        lines.append("no complete checkpoint with readable metadata")
    return "\n".join(lines)


def plan_json() -> str:
    """The plan of the flags' circuit on this device, as JSON."""
    from jbrain import plan  # jax: only when asked

    circuit = common.brain_config_from_flags().circuit()
    return plan.resolve(circuit, **common.plan_options()).to_json(circuit)


def footprint_line(circuit) -> str:
    """One line: the device memory the brain holds between bursts (brain.footprint)."""
    f = brain.footprint(circuit)
    per_syn = f"{f['synapses'] / f['synapse_count']:.1f}" if f["synapse_count"] else "-"
    return (
        f"memory: {human_size(f['total'])} on the device between bursts, "
        f"{f['total'] / f['neuron_count']:.1f} B per neuron ({per_syn} B per synapse x "
        f"{f['synapse_count']:,} synapses, {f['neurons'] / f['neuron_count']:.1f} B of neuron state)"
    )


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.plan:
        print(plan_json())
        return
    if FLAGS.circuit:
        circuit = common.brain_config_from_flags().circuit()
        print("\n".join([*circuit.describe(), footprint_line(circuit)]))
        return
    if not os.path.isdir(FLAGS.workdir):
        raise ValueError(f"--workdir={FLAGS.workdir!r} is not a folder: pass the workdir of a brain")
    print(report(FLAGS.workdir))


def launch(argv: list[str]) -> None:
    common.run_app("inspect", main, argv)


if __name__ == "__main__":
    launch(sys.argv)
