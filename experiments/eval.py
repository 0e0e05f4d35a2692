"""jbrain eval TASK: evaluations of what a brain learns, each with its
untrained and ablated baselines beside the trained figure (EVALS.md).

Tasks:
  selectivity   eight words, --presentations times each in random order with
                plasticity on; the fraction of association-region neurons
                that prefer one word (a permutation test, with a
                shuffled-label control), before training, after it, and
                with the learned weights put back (jbrain/evals/selectivity.py).

  consistency   20 messages, each sent --sends times at random moments of a
                living brain (it runs on without input for 1-20 bursts of
                --reply_steps before each, as a --live chat brain does);
                leave-one-out nearest-neighbour classification of which
                message caused each reply, on the reply text
                (`accuracy`) and on its window spike counts
                (`counts_accuracy`); chance 1/20 (jbrain/evals/consistency.py).

  associations  a teachable brain (--teach) is taught the pairs of --pairs
                (one `CUE => REPLY` a line; default: 20 pairs shipped in
                jbrain/evals/pairs.txt) --presentations times each in
                shuffled order while it lives on, then tested: exact and
                per-character scores, untrained, ablated, corrupted cues,
                after save and restore, after --retain_steps live steps, and
                after --interference_pairs more pairs
                (jbrain/evals/associations.py).

  digits        scikit-learn's 8 x 8 handwritten digits (bundled: 901
                training, 896 test images, a fixed stratified split), the
                Diehl & Cook 2015 protocol: Poisson-rate input, unsupervised
                STDP into --digits_neurons excitatory neurons with lateral
                inhibition and adaptive thresholds, labels assigned to the
                neurons after training; test accuracy trained, untrained and
                ablated (input weights put back), beside logistic regression
                and k-means with 100 prototypes computed in the same run
                (jbrain/evals/digits.py). It runs its own network: the brain
                flags do not apply to it, --seed does.

  distal-reward the distal reward problem, Izhikevich 2007: 800 E / 200 I
                neurons, 100 synapses onto each, reward-modulated STDP on
                E -> E; a reward 1-3 s after each pre-then-post pairing of one
                chosen synapse, for --distal_seconds of model time; the
                control: as many rewards at random times (Fremaux et al.
                2010). The chosen weight against the others' mean and 99th
                percentile; --plot=PATH draws them (jbrain/evals/distal_reward.py).
                Its own network: the brain flags do not apply, --seed does.

  memory        working memory (--working_memory: short-term facilitation,
                Mongillo et al. 2008): 8 single letters, each sent as a
                message and replayed by /recall after 0, 100, 500, 1000 and
                2000 steps of free-running noisy activity (`single`), the
                same with other text heard in between (`interference`), 4
                letters of one message held at once for 1000 steps
                (`multi`, per item; --multi_trials messages), and single
                letters at 1000 steps with facilitation off (`ablated`);
                chance 1/26 (jbrain/evals/memory.py).
  reward        four cues, four possible replies, each cue with its own rewarded
                reply; the only teacher is /good or /bad after each of --trials
                trials (learn.reward), then the rewarded replies are swapped for
                --reversal more; accuracy over the last 50 of each phase, the
                curve, untrained and ablated (reward readout put back)
                baselines, chance 0.25 (jbrain/evals/reward.py). Needs a
                rewardable brain (--teach --reward); --reply_chars defaults to
                1 and --reply_steps to 40 here (the choice is read in the
                first reply window); --offer drives the four replies' motor
                groups in it, alike for every cue.

  personality   two brains born of one seed, with different histories (taught
                pairs, rewards), probed --probings times each with 20 fixed
                messages; each probing's profile (reply statistics and mood)
                is classified to the nearer brain (`accuracy`, chance 0.5),
                and a brain's profile after save and restore is compared with
                its profile before (`restored_equal`) (jbrain/evals/personality.py).

    jbrain eval selectivity --flagfile=experiments/configs/cortex_small.flags --out=sel.json
    jbrain eval associations --flagfile=experiments/configs/teach_small.flags --out=assoc.json
    jbrain eval consistency --flagfile=experiments/configs/small.flags --out=cons.json
    jbrain eval digits --out=digits.json
    jbrain eval distal-reward --distal_seconds=1200 --out=distal.json --plot=distal.png
    jbrain eval memory --flagfile=experiments/configs/teach_small.flags --working_memory --out=mem.json
    jbrain eval reward --flagfile=experiments/configs/choice_small.flags --out=reward.json
    jbrain eval personality --flagfile=experiments/configs/reward_small.flags --out=personality.json

Writes the JSON record to --out (if given) and prints a table. Model flags
and flagfiles work as in `jbrain run` and `jbrain chat`; selectivity
switches plasticity on, consistency keeps the flags' choice.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from experiments import benchkit, common
from jbrain.text import as_said

FLAGS = flags.FLAGS
common.define_brain_flags()
flags.DEFINE_string("out", "", "Write the JSON record here.")
flags.DEFINE_integer(
    "presentations", 200, "Training presentations of each word (associations: of each pair; default 10)."
)
flags.DEFINE_string(
    "pairs", "", "associations: the pairs file (CUE => REPLY a line); default the shipped 20."
)
flags.DEFINE_integer(
    "interference_pairs", 20, "associations: more pairs taught before the interference test."
)
flags.DEFINE_integer("retain_steps", 50_000, "associations: live steps before the retention test.")
flags.DEFINE_integer("test_reps", 10, "Test presentations of each word, before and after training.")
flags.DEFINE_integer("eval_steps", 100, "Steps per presentation (the word over the first half).")
flags.DEFINE_integer("sends", 10, "consistency: times each message is sent.")
flags.DEFINE_integer("reply_steps", 200, "consistency, associations: steps of one reply burst, as in chat.")
flags.DEFINE_integer("reply_chars", 8, "consistency, associations: characters per reply, as in chat.")
flags.DEFINE_integer("warmup", 2000, "Steps the newborn brain lives before the evaluation.")
flags.DEFINE_integer("digits_neurons", 400, "digits: excitatory neurons (1..4096; the protocol: <= 400).")
flags.DEFINE_integer("digits_epochs", 2, "digits: passes over the training images.")
flags.DEFINE_integer("digits_train", 0, "digits: training images used (10..901; 0: all 901).")
flags.DEFINE_integer("distal_seconds", 1200, "distal-reward: seconds of model time of each run (>= 10).")
flags.DEFINE_float(
    "distal_eta",
    1.25e-4,
    "distal-reward: learning rate of the reward rule (> 0; smaller: more rewards to the cap).",
)
flags.DEFINE_integer("multi_trials", 8, "memory: 4-letter messages held at once (>= 1).")
flags.DEFINE_string("plot", "", "distal-reward: write the weights' plot (PNG) here.")
flags.DEFINE_integer("trials", 300, "reward: trials (cue, reply, /good or /bad) before the reversal.")
flags.DEFINE_integer("reversal", 300, "reward: trials after the rewarded replies are swapped (0: none).")
flags.DEFINE_float(
    "offer", 0.5, "reward: drive (x --teacher_gain) on the four replies' motor groups in the reply window."
)
flags.DEFINE_integer("probings", 8, "personality: probings of each brain (20 messages each).")

TASKS = (
    "selectivity",
    "consistency",
    "associations",
    "digits",
    "distal-reward",
    "memory",
    "reward",
    "personality",
)
TASK = TASKS[0]  # the task of this launch (`launch` sets it)
USAGE = f"usage: jbrain eval {{{','.join(TASKS)}}} [--flags]   (jbrain eval TASK --help for flags)"


def association_misses(taught: list[dict], most: int = 8) -> list[str]:
    """One line per row of the associations table that missed pairs: its
    first `most` misses as cue -> reply said (taught reply)."""
    lines = []
    for name, said, cue in (
        ("trained", "said", "cue"),
        ("corrupted", "corrupted_said", "corrupted_cue"),
        ("after more pairs", "after_more_said", "cue"),
    ):
        missed = [t for t in taught if t[said] is not None and t[said] != as_said(t["reply"], len(t[said]))]
        if missed:
            shown = ", ".join(f"{t[cue]!r} -> {t[said].rstrip()!r} ({t['reply']!r})" for t in missed[:most])
            more = f", and {len(missed) - most} more" if len(missed) > most else ""
            lines.append(f"missed, {name}: {shown}{more}")
    return lines


def table(record: dict) -> str:
    if record["task"] == "memory":
        delays = list(record["single"])
        return "\n".join([
            f"working memory on {record['preset']} ({record['n_neurons']:,} neurons, "
            f"{record['wm_neurons']:,} in the memory; {record['device']}): items right, "
            f"chance {record['chance']:.3f}",
            "| row | " + " | ".join(f"{d} steps" for d in delays) + " |",
            "|---|" + "---|" * len(delays),
            "| single items | " + " | ".join(f"{record['single'][d]:.3f}" for d in delays) + " |",
            "| with other input in between | "
            + " | ".join(f"{record['interference'][d]:.3f}" for d in delays) + " |",
            "| 4 items held at once (per item) | " + " | ".join(
                f"{record['multi']:.3f}" if d == "1000" else "-" for d in delays) + " |",
            "| ablated: facilitation off | " + " | ".join(
                f"{record['ablated']:.3f}" if d == "1000" else "-" for d in delays) + " |",
            "| chance | " + " | ".join(f"{record['chance']:.3f}" for _ in delays) + " |",
            "targets: single >= 0.90 and 4 at once >= 0.80 per item at 1000 steps; anchors: Mi, Katkov & "
            "Tsodyks 2017 (~4 items), Rolls et al. 2013 (9 items), e-prop store-recall (95% at 1,200 ms)",
        ])  # fmt: skip
    if record["task"] == "reward":
        pct = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        rows = [
            ("untrained (newborn, no feedback)", record["untrained_accuracy"]),
            (f"trained: last {50} of {record['trials']} trials", record["last50_accuracy"]),
            ("trained, tested without feedback", record["trained_accuracy"]),
            ("ablated (reward readout put back), no feedback", record["ablated_accuracy"]),
            (f"reversal: first 50 of {record['reversal']} trials", record["reversal_first50_accuracy"]),
            (f"reversal: last 50 of {record['reversal']} trials", record["reversal_accuracy"]),
            ("chance", record["chance"]),
        ]
        curve = ", ".join(f"{c['trial']}: {c['accuracy']:.2f}" for c in record["curve"])
        return "\n".join([
            f"reward learning on {record['preset']} ({record['n_neurons']} neurons, {record['device']}): "
            f"4 cues x 4 replies, /good or /bad after each trial; seed {record['seed']}, "
            f"{record['seconds']:.0f} s",
            "| brain | correct choices |",
            "|---|---|",
            *[f"| {name} | {pct(x)} |" for name, x in rows],
            f"curve (accuracy per {25} trials, by last trial): {curve}",
            "mood at the end of each phase: " + ", ".join(f"{m:+.3f}" for m in record["mood"]),
        ])  # fmt: skip
    if record["task"] == "personality":
        chance = f"{record['chance']:.2f}"
        return "\n".join([
            f"personality on {record['preset']} ({record['n_neurons']} neurons, {record['device']}): "
            f"{record['probes']} probe messages, {record['probings']} probings of each brain; seed "
            f"{record['seed']}, {record['seconds']:.0f} s",
            "| brains | nearest-profile accuracy | chance |",
            "|---|---|---|",
            f"| different histories (taught pairs, rewards) | {record['accuracy']:.3f} | {chance} |",
            f"| control: the same history twice | {record['control_accuracy']:.3f} | {chance} |",
            f"profile after save and restore equals the profile before: {record['restored_equal']}; "
            f"moods {record['moods'][0]:+.3f} and {record['moods'][1]:+.3f}; distance between the brains' "
            f"mean profiles {record['between']:.3f}, between probings of one brain {record['within']:.3f}",
        ])  # fmt: skip
    if record["task"] == "distal-reward":
        cap = record["w_max"]
        rows = [
            ("rewarded pairings", record["chosen_weight"], record["others_mean"], record["others_p99"],
             record["others_max"], record["chosen_rank"], record["reached_cap"]),
            ("control: rewards at random times", record["control_chosen_weight"],
             record["control_others_mean"], record["control_others_p99"], record["control_others_max"],
             record["control_chosen_rank"], record["control_reached_cap"]),
        ]  # fmt: skip
        n = record["plastic_synapses"]
        return "\n".join([
            f"distal reward (Izhikevich 2007) on {record['neurons']} neurons, {record['device']}: "
            f"{record['model_seconds']:,} s of model time, {record['rewards']} rewards "
            f"({record['pairings']} pairings), {record['rate_hz']:.2f} Hz; weights born {record['w0']:g}, "
            f"cap {cap:g}",
            "| run | chosen synapse | others: mean | others: 99th pct | others: max | chosen's rank "
            f"of {n:,} | chosen at cap |",
            "|---|---|---|---|---|---|---|",
            *[f"| {a} | {b:.3f} | {c:.3f} | {d:.3f} | {e:.3f} | {f} | {g} |" for a, b, c, d, e, f, g in rows],
            f"anchor: {record['anchor']}",
        ])  # fmt: skip
    if record["task"] == "associations":

        def pct(x):
            return "-" if x is None else f"{x:.3f}"

        rows = [
            ("untrained", record["untrained_exact"]), ("trained", record["exact"]),
            ("ablated (readout put back)", record["ablated_exact"]),
            ("reference: jax.grad readout of untaught replies", record["readout_exact"]),
            ("corrupted cues (25%)", record["corrupted_exact"]),
            ("reference: ideal matcher of the same corrupted cues", record["corrupted_matcher_exact"]),
            ("after save and restore", record["restored_exact"]),
            (f"after {record['retain_steps']:,} live steps", record["retained_exact"]),
            (f"after {record['interference_pairs']} more pairs", record["interference_exact"]),
        ]  # fmt: skip
        return "\n".join([
            f"associations on {record['preset']} ({record['n_neurons']} neurons, {record['device']}): "
            f"{record['pairs']} pairs x {record['presentations']} presentations",
            "| brain | exact replies |",
            "|---|---|",
            *[f"| {name} | {pct(x)} |" for name, x in rows],
            f"characters right: {record['per_char']:.3f} "
            f"(untrained {record['untrained_per_char']:.3f}, ablated "
            f"{record['ablated_per_char']:.3f}); restored replies equal the unstopped brain's: "
            f"{record['restored_same']}; chance of an exact reply: {record['chance_exact']:.1e}",
            *association_misses(record["taught"]),
        ])  # fmt: skip
    if record["task"] == "digits":
        a = record["anchors"]
        rows = [
            (f"trained ({record['n_neurons']} neurons, {record['epochs']} epochs)", record["test_accuracy"]),
            ("untrained (newborn network)", record["untrained_accuracy"]),
            ("ablated (input weights put back)", record["ablated_accuracy"]),
            ("logistic regression (reference)", record["logistic_accuracy"]),
            ("k-means, 100 prototypes (reference)", record["kmeans_accuracy"]),
            ("anchor: logistic regression, 50/50 splits", a["logistic_regression_digits"]),
            ("anchor: k-means 100, 50/50 splits", a["kmeans_100_digits"]),
            ("anchor: Diehl & Cook, MNIST, 400 neurons", a["diehl_cook_mnist_400"]),
            ("anchor: Diehl & Cook, MNIST, 6,400 neurons", a["diehl_cook_mnist_6400"]),
        ]
        return "\n".join([
            f"digits ({record['n_train']} training, {record['n_test']} test images, {record['device']}; "
            f"seed {record['seed']}, {record['seconds']:.0f} s): unsupervised STDP, Diehl & Cook 2015",
            "| model | test accuracy |",
            "|---|---|",
            *[f"| {name} | {x:.3f} |" for name, x in rows],
            f"target >= {record['target']:.2f}; chance {record['chance']:.2f}",
        ])  # fmt: skip
    if record["task"] == "consistency":
        return "\n".join([
            f"consistency on {record['preset']} ({record['n_neurons']} neurons, {record['device']}): "
            f"{len(record['messages'])} messages x {record['sends']} sends",
            "| measure | nearest-neighbour accuracy | chance |",
            "|---|---|---|",
            f"| reply text (Hamming) | {record['accuracy']:.3f} | {record['chance']:.3f} |",
            f"| window spike counts (cosine) | {record['counts_accuracy']:.3f} | {record['chance']:.3f} |",
            f"distinct replies: {record['distinct_replies']} of {len(record['messages']) * record['sends']}; "
            f"winner's margin over the runner-up per window: {record['margin']:.3f}",
        ])  # fmt: skip
    lines = [
        f"selectivity on {record['preset']} ({record['n_neurons']} neurons, "
        f"{record['association_neurons']} association cells, {record['device']}):",
        "| brain | selective fraction | shuffled-label control | mean response (spikes) |",
        "|---|---|---|---|",
    ]
    for r in record["rows"]:
        lines.append(
            f"| {r['name']} | {r['selective_fraction']:.3f} | {r['shuffled_control']:.3f} | "
            f"{r['mean_response']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    from jbrain.evals import associations, consistency, personality, reward, selectivity  # jax: when running

    if FLAGS.out:
        benchkit.check_out(FLAGS.out)
    task = TASK
    progress = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if task == "digits":
        _digits(progress)
        return
    if task == "distal-reward":
        _distal(progress)
        return
    config = common.brain_config_from_flags()
    if task == "memory":
        _memory(config, progress)
        return
    shared = {
        "seed": FLAGS.seed,
        "warmup": FLAGS.warmup,
        "plan_options": common.plan_options(),
        "progress": progress,
    }
    if task == "selectivity":
        config = config.replace(plasticity=True)
        record = selectivity.evaluate(
            config.circuit(),
            presentations=FLAGS.presentations,
            test_reps=FLAGS.test_reps,
            steps=FLAGS.eval_steps,
            **shared,
        )
    elif task == "reward":
        reply_chars = FLAGS.reply_chars if FLAGS["reply_chars"].present else 1
        reply_steps = FLAGS.reply_steps if FLAGS["reply_steps"].present else reward.REPLY_STEPS
        record = reward.evaluate(
            config, trials=FLAGS.trials, reversal=FLAGS.reversal, test_trials=4 * FLAGS.test_reps,
            reply_steps=reply_steps, reply_chars=reply_chars, offer=FLAGS.offer, **shared,
        )  # fmt: skip
    elif task == "personality":
        record = personality.evaluate(
            config, probings=FLAGS.probings, reply_steps=FLAGS.reply_steps, reply_chars=FLAGS.reply_chars,
            **shared,
        )  # fmt: skip
    elif task == "associations":
        presentations = FLAGS.presentations if FLAGS["presentations"].present else 10
        record = associations.evaluate(
            config, pairs=_pairs(config), presentations=presentations,
            interference_pairs=FLAGS.interference_pairs, retain_steps=FLAGS.retain_steps,
            reply_steps=FLAGS.reply_steps, reply_chars=FLAGS.reply_chars, **shared,
        )  # fmt: skip
    else:
        record = consistency.evaluate(
            config, sends=FLAGS.sends, reply_steps=FLAGS.reply_steps, reply_chars=FLAGS.reply_chars, **shared
        )
    record["config"] = config.to_dict()
    record["device"] = benchkit.device_name()
    if FLAGS.out:
        benchkit.write_json(FLAGS.out, record)  # atomic: never a half-written record
    print(table(record))


def _digits(progress) -> None:
    """jbrain eval digits: its own network (jbrain/evals/digits.py)."""
    from jbrain.evals import digits

    n, epochs, n_train = FLAGS.digits_neurons, FLAGS.digits_epochs, FLAGS.digits_train
    if not (1 <= n <= 4096 and epochs >= 1 and (n_train == 0 or 10 <= n_train <= 901)):
        raise ValueError(
            "--digits_neurons must be in 1..4096, --digits_epochs >= 1 and --digits_train in 10..901 (0: all)"
        )
    record = digits.evaluate(
        seed=FLAGS.seed, params=digits.Params(n_neurons=n), epochs=epochs, n_train=n_train or None,
        progress=progress,
    )  # fmt: skip
    record["device"] = benchkit.device_name()
    if FLAGS.out:
        benchkit.write_json(FLAGS.out, record)
    print(table(record))


def _distal(progress) -> None:
    """jbrain eval distal-reward: its own network (jbrain/evals/distal_reward.py)."""
    from jbrain.evals import distal_reward

    if FLAGS.distal_seconds < 10:
        raise ValueError(f"--distal_seconds={FLAGS.distal_seconds} must be >= 10 (seconds of model time)")
    if not FLAGS.distal_eta > 0:
        raise ValueError(f"--distal_eta={FLAGS.distal_eta} must be > 0")
    if FLAGS.plot:
        from jbrain.plots import pyplot

        pyplot()  # matplotlib missing: say so before minutes of running
        folder = os.path.dirname(os.path.abspath(FLAGS.plot))
        if not os.path.isdir(folder):
            raise ValueError(f"--plot={FLAGS.plot!r}: its folder {folder} does not exist: create it")
    params = distal_reward.Params(eta=FLAGS.distal_eta)
    record = distal_reward.evaluate(
        seed=FLAGS.seed, params=params, model_seconds=FLAGS.distal_seconds, progress=progress
    )
    record["device"] = benchkit.device_name()
    if FLAGS.out:
        benchkit.write_json(FLAGS.out, record)
    if FLAGS.plot:
        distal_reward.plot(record, FLAGS.plot)
    print(table(record))


def _memory(config, progress) -> None:
    """jbrain eval memory (jbrain/evals/memory.py)."""
    from jbrain.evals import memory

    if FLAGS.multi_trials < 1:
        raise ValueError(f"--multi_trials={FLAGS.multi_trials} must be >= 1")
    if not config.working_memory:
        raise ValueError(
            "jbrain eval memory needs a brain with a working memory: add --working_memory "
            "(e.g. --flagfile=experiments/configs/teach_small.flags --working_memory)"
        )
    record = memory.evaluate(
        config, seed=FLAGS.seed, warmup=FLAGS.warmup, multi_trials=FLAGS.multi_trials,
        plan_options=common.plan_options(), progress=progress,
    )  # fmt: skip
    record["config"] = config.to_dict()
    record["device"] = benchkit.device_name()
    if FLAGS.out:
        benchkit.write_json(FLAGS.out, record)
    print(table(record))


def _pairs(config) -> list[tuple[str, str]] | None:
    """--pairs read (None: the default file); a bad file is a flag error."""
    if not FLAGS.pairs:
        return None
    from jbrain.evals import associations
    from jbrain.text import Codec

    codec = Codec(
        reply_steps=FLAGS.reply_steps, reply_chars=FLAGS.reply_chars, input_channels=64, teacher=True
    )
    try:
        return associations.read_pairs(FLAGS.pairs, codec)
    except OSError as e:
        raise ValueError(f"--pairs={FLAGS.pairs}: {e.strerror}: pass a readable file") from None


def launch(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(__doc__.strip() if len(argv) >= 2 else USAGE)
        sys.exit(0 if len(argv) >= 2 else 2)
    task = argv[1]
    if task not in TASKS:
        print(f"jbrain eval: error: unknown task {task!r}; {USAGE}", file=sys.stderr)
        sys.exit(2)
    global TASK
    TASK = task
    common.run_app(f"eval {task}", main, [argv[0], *argv[2:]])


if __name__ == "__main__":
    launch(sys.argv)
