"""jbrain stress: perturb a warmed-up brain and measure how it recovers.

A new brain of the flags' circuit lives --warmup steps; then each
perturbation starts from that same warmed state (jbrain/stress.py has the
exact definitions):

  input_x10              10.0 on every input channel (a chat character is 1.0), 200 steps
  drive_off              the bias current 0, 500 steps
  exc_weights_x1.5       excitatory weights x1.5 for 1,000 steps, then divided back
  exc_weights_x0.5       excitatory weights x0.5 for 1,000 steps, then divided back
  inh_silenced_20pct     20% of the inhibitory neurons silenced for 1,000 steps
  neurons_removed_10pct  10% of all neurons silenced for good

and is observed for --after steps after it ends (the removal: --after_permanent
steps from its onset). Per perturbation: recovery_steps (from the end, or
the removal's onset, to the first step whose 200-step moving mean rate is
within 10% of the target rate and stays there for 500 steps; null if
never), peak_rate, longest_silence (steps without a spike), recovered
(within 500 steps; the removal: 2,000), ran_away (peak above 0.3).
--baseline=seed runs the same on the seed preset (its defaults, homeostasis
and its global controller) at the same --n_neurons, in the same run.

    jbrain stress --flagfile=experiments/configs/cortex_small.flags --out=stress.json

Prints a markdown table; --out writes the JSON record (EVALS.md).
"""

from __future__ import annotations

import sys

from absl import flags

from experiments import benchkit, common
from jbrain.config import BrainConfig

FLAGS = flags.FLAGS
common.define_brain_flags()
flags.DEFINE_string("out", "", "Write the JSON record here (its folder must exist).")
flags.DEFINE_string(
    "baseline", "seed", "Also stress the seed preset (its defaults) at the same --n_neurons; empty: skip it."
)
flags.DEFINE_integer("warmup", 5000, "Steps the newborn brain lives before the perturbations (>= 200).")
flags.DEFINE_integer("after", 2000, "Steps observed after a reversible perturbation ends (> 500).")
flags.DEFINE_integer("after_permanent", 3000, "Steps observed after the removal's onset (> 500).")

BASELINES = ("seed",)


def baseline_config(config: BrainConfig, name: str) -> BrainConfig | None:
    """The baseline brain: preset `name` with its defaults at config's
    n_neurons, or None for an empty name (ValueError names --baseline)."""
    if not name:
        return None
    if name not in BASELINES:
        raise ValueError(
            f"--baseline={name!r} is unknown: use seed (the seed preset at the same --n_neurons) "
            "or --baseline= to skip the baseline"
        )
    return BrainConfig(preset=name, n_neurons=config.n_neurons)


def main(argv: list[str]) -> None:
    del argv
    import jax

    from jbrain import stress  # jax: only when running

    stress.check_windows(warmup=FLAGS.warmup, after=FLAGS.after, after_permanent=FLAGS.after_permanent)
    if FLAGS.out:
        benchkit.check_out(FLAGS.out)
    config = common.brain_config_from_flags()
    base = baseline_config(config, FLAGS.baseline)
    try:
        record = stress.evaluate(
            config.circuit(),
            seed=FLAGS.seed,
            warmup=FLAGS.warmup,
            after=FLAGS.after,
            after_permanent=FLAGS.after_permanent,
            baseline=None if base is None else base.circuit(),
            plan_options=common.plan_options(),
            progress=lambda msg: print(f"jbrain stress: {msg}", file=sys.stderr, flush=True),
        )
    except stress.StressFault as e:
        common.fail("stress", f"{e} (lower the gains, e.g. --w_max, or check the circuit)")
    record.update(preset=config.preset, device=benchkit.device_name(), jax=jax.__version__)
    record.update(jbrain=benchkit.git_revision(), config=config.to_dict())
    if base is not None:
        record["baseline"].update(device=record["device"], config=base.to_dict())
    if FLAGS.out:
        benchkit.write_json(FLAGS.out, record)  # atomic: never a half-written record
    print(stress.format_table(record))


def launch(argv: list[str]) -> None:
    common.run_app("stress", main, argv)


if __name__ == "__main__":
    launch(sys.argv)
