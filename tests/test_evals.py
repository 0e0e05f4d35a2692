"""Evaluations (jbrain/evals): the selectivity statistic on known answers,
the word stimuli, a whole small evaluation, and the `jbrain eval` launcher."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import jbrain_cli, preset_config

from jbrain.evals import consistency, selectivity
from jbrain.text import Codec


def test_neurons_that_prefer_one_word_are_selective_and_noise_is_not():
    rng = np.random.Generator(np.random.PCG64(0))
    n, w, k = 200, 8, 10
    noise = rng.poisson(5.0, (n, w, k))
    assert selectivity.selective_fraction(noise, shuffles=100) < 0.1
    tuned = noise.copy()
    tuned[np.arange(n), rng.integers(0, w, n)] += 10  # each neuron: one word, 10 more spikes
    assert selectivity.selective_fraction(tuned, shuffles=100) > 0.95
    # the shuffled-label control of the tuned responses is at chance
    assert selectivity.shuffled_control(tuned, shuffles=100) < 0.1
    # silent neurons are never selective
    assert selectivity.selective_fraction(np.zeros((5, w, k)), shuffles=20) == 0.0


def test_word_stimuli_are_the_chat_encoding_folded_onto_the_channels():
    full = Codec(reply_steps=100, reply_chars=1).encode("cat")
    np.testing.assert_array_equal(selectivity.word_stims("cat", 100, 256), full)
    folded = selectivity.word_stims("cat", 100, 16)
    assert folded.shape == (100, 16)
    for ch in "cat":
        np.testing.assert_array_equal(folded[:, ord(ch) % 16], full[:, ord(ch)])
    assert not folded[50:].any()  # the second half is silent
    by_char = selectivity.word_stims("Cat", 100, 64)  # one channel per character, case folded
    np.testing.assert_array_equal(
        by_char, Codec(reply_steps=100, reply_chars=1, input_channels=64).encode("cat")
    )


def test_presentations_on_a_paced_brain_start_at_one_phase_of_its_drive():
    paced = preset_config("cortex_small").circuit()
    assert selectivity.drive_period(paced) == 200
    assert selectivity.drive_period(preset_config("ei", n_neurons=2000).circuit()) == 1  # no controller


def test_a_small_evaluation_reports_every_row():
    circuit = preset_config(
        "cortex_small", sheet=(50, 40), n_neurons=2000, radius=5.0, input_channels=16, output_channels=8,
        plasticity=True, osc_period=80.0,
    ).circuit()  # fmt: skip
    record = selectivity.evaluate(circuit, warmup=200, presentations=2, test_reps=3, steps=40, shuffles=20)
    # each 40-step presentation is followed by 40 silent steps to the next 80-step drive period
    assert record["steps_per_presentation"] == 80
    assert [r["name"] for r in record["rows"]] == ["untrained", "trained", "ablated"]
    assert record["association_neurons"] == 30 * 40 * 4 // 5
    assert set(record["plastic_projections"]) == {"EE", "IE", "input_association", "association_output"}
    for r in record["rows"]:
        assert 0.0 <= r["selective_fraction"] <= 1.0 and 0.0 <= r["shuffled_control"] <= 1.0
    with pytest.raises(ValueError, match="selectivity needs plasticity"):
        selectivity.evaluate(selectivity.frozen(circuit))


def test_eval_launcher_errors_are_one_line():
    r = jbrain_cli("eval", "recall")
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "jbrain eval: error: unknown task 'recall'; usage: jbrain eval "
        "{selectivity,consistency,associations,digits,distal-reward,memory,reward,personality} [--flags]   "
        "(jbrain eval TASK --help for flags)\n"
    )
    r = jbrain_cli("eval", "selectivity", "--presentations=0", "--n_neurons=2000")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "jbrain eval selectivity: error: --presentations must be >= 1, --test_reps >= 2 and --eval_steps >= 2"
    )
    r = jbrain_cli("eval", "associations", "--pairs=/no/such/file", "--n_neurons=2000")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "jbrain eval associations: error: --pairs=/no/such/file: No such file or directory: "
        "pass a readable file"
    )
    r = jbrain_cli("eval", "distal-reward", "--distal_seconds=5")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "jbrain eval distal-reward: error: --distal_seconds=5 must be >= 10 (seconds of model time)"
    )
    r = jbrain_cli("eval", "distal-reward", "--distal_eta=0")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == "jbrain eval distal-reward: error: --distal_eta=0.0 must be > 0"
    r = jbrain_cli("eval", "distal-reward", "--plot=/no/such/dir/d.png")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "jbrain eval distal-reward: error: --plot='/no/such/dir/d.png': its folder /no/such/dir does not "
        "exist: create it"
    )


def test_evaluations_refuse_bad_settings_with_the_line_the_launcher_prints():
    """What the tasks themselves refuse (the launcher prints the message
    after "jbrain eval TASK: error: " and exits 2, as above)."""
    from jbrain.evals import personality, reward

    def refused(call) -> str:
        with pytest.raises(ValueError) as e:
            call()
        return str(e.value)

    seed = preset_config("small", n_neurons=2000)
    assert refused(lambda: consistency.evaluate(seed, sends=1)) == (
        "consistency needs at least 2 messages and --sends >= 2"
    )
    assert refused(lambda: reward.evaluate(seed, trials=10)) == (
        "--trials=10 must be >= 50, --reversal=300 0 or >= 50 (accuracy is read over the last 50 trials of "
        "each phase) and --test_reps >= 1 (test trials of each cue)"
    )
    for task, preset in ((reward, "choice_small"), (personality, "reward_small")):
        assert refused(lambda task=task: task.evaluate(seed)) == (
            f"jbrain eval {task.__name__.rsplit('.', 1)[-1]} needs a rewardable brain: pass "
            f"--flagfile=experiments/configs/{preset}.flags (or --teach --reward)"
        )
    assert refused(lambda: personality.evaluate(seed, probings=1)) == (
        "--probings=1 must be >= 2 (classification leaves one probing out)"
    )


def test_nearest_neighbour_accuracy_splits_ties_and_skips_itself():
    labels = np.array([0, 0, 1, 1])
    texts = ["aaaa", "aaab", "zzzz", "zzzy"]  # each reply's nearest is its own message's other reply
    assert consistency.nearest_neighbour_accuracy(consistency.hamming(texts), labels) == 1.0
    same = ["abcd"] * 4  # all tied: 1 of the 3 nearest shares the label
    assert consistency.nearest_neighbour_accuracy(consistency.hamming(same), labels) == pytest.approx(1 / 3)
    counts = np.array([[3, 0], [6, 0], [0, 1], [0, 2]])  # cosine ignores the scale
    assert consistency.nearest_neighbour_accuracy(consistency.cosine_distance(counts), labels) == 1.0
    assert consistency.cosine_distance(np.zeros((2, 3)))[0, 1] == 1.0  # silent replies: far from all
    windows = np.array([[[5, 3, 0], [2, 2, 1]], [[4, 0, 0], [0, 0, 0]]])  # margins 0.25, 0, 1, 0 (silent)
    assert consistency.window_margin(windows) == pytest.approx(1.25 / 4)


def test_a_small_consistency_run_reports_accuracy_against_chance():
    config = preset_config("small", n_neurons=2000)
    record = consistency.evaluate(
        config,
        messages=("cat", "dog", "sun"),
        sends=2,
        warmup=100,
        max_chunks=2,
        reply_steps=40,
        reply_chars=4,
    )
    assert record["gap_steps"] == [40, 80]
    assert record["chance"] == pytest.approx(1 / 3)
    assert 0.0 <= record["accuracy"] <= 1.0 and 0.0 <= record["counts_accuracy"] <= 1.0
    assert 0.0 <= record["margin"] <= 1.0
    assert [len(v) for v in record["replies"].values()] == [2, 2, 2]
    assert all(len(t) == 4 for v in record["replies"].values() for t in v)


def test_the_associations_table_names_each_rows_misses():
    from experiments import eval as eval_cli

    def pair(cue, reply, said, corrupted_cue, corrupted_said, after):
        return {
            "cue": cue, "reply": reply, "said": said, "corrupted_cue": corrupted_cue,
            "corrupted_said": corrupted_said, "after_more_said": after,
        }  # fmt: skip

    taught = [
        pair("cat", "Meow", "meow    ", "cxt", "woof    ", "meow    "),
        pair("dog", "woof", "wo      ", "dqg", "woof    ", None),
    ] + [pair(f"c{i}", "x", "y       ", f"d{i}", "x       ", "x       ") for i in range(9)]
    # replies are compared lower-cased and padded, as the scores are; None: no interference test
    assert eval_cli.association_misses(taught) == [
        "missed, trained: 'dog' -> 'wo' ('woof'), 'c0' -> 'y' ('x'), 'c1' -> 'y' ('x'), 'c2' -> 'y' ('x'), "
        "'c3' -> 'y' ('x'), 'c4' -> 'y' ('x'), 'c5' -> 'y' ('x'), 'c6' -> 'y' ('x'), and 2 more",
        "missed, corrupted: 'cxt' -> 'woof' ('Meow')",
    ]
    assert eval_cli.association_misses(taught[:1]) == ["missed, corrupted: 'cxt' -> 'woof' ('Meow')"]
