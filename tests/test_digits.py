"""`jbrain eval digits` (jbrain/evals/digits.py): the bundled data and its
split, the label rules, a tiny unsupervised run against its ablation, the
table and the launcher's one-line errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import jbrain_cli

from jbrain.evals import digits

# a small network for CPU tests: 100 neurons, 1 ms steps, 2 readouts an image (400 training images, 1 epoch)
TINY = digits.Params(n_neurons=100, dt=1.0, readout_repeats=2)


def test_the_bundled_digits_load_and_split_in_stratified_halves():
    images, labels = digits.load()
    assert images.shape == (1797, 64) and images.dtype == np.float32
    assert images.min() == 0 and images.max() == 16
    assert labels.shape == (1797,) and set(np.unique(labels)) == set(range(10))
    assert labels[:10].tolist() == list(range(10))  # the file starts 0, 1, ..., 9
    train, test = digits.split(labels)
    assert (len(train), len(test)) == (901, 896)
    assert not set(train) & set(test) and len(set(train) | set(test)) == 1797
    per_class = np.bincount(labels[train], minlength=10) - np.bincount(labels[test], minlength=10)
    assert set(per_class.tolist()) <= {0, 1}  # every class halved (the odd one to training)
    again, _ = digits.split(labels)
    np.testing.assert_array_equal(train, again)  # fixed: no seed involved


def test_neurons_take_the_class_they_answer_most_and_vote_for_it():
    labels = np.array([0, 0, 1, 1, 2])
    counts = np.array([[5, 0, 1, 0], [3, 0, 0, 0], [0, 4, 0, 0], [1, 6, 0, 0], [0, 0, 2, 0]])  # 5 x 4 neurons
    assignment = digits.assign(counts, labels)
    assert assignment.tolist() == [0, 1, 2, -1]  # the silent neuron is unassigned
    assert digits.classify(counts, assignment).tolist() == [0, 0, 1, 1, 2]
    # a silent image goes to class 0 (every score 0); classes without neurons score 0
    assert digits.classify(np.zeros((1, 4)), assignment).tolist() == [0]


def test_a_tiny_run_learns_the_digits_and_the_ablation_undoes_it():
    record = digits.evaluate(seed=0, params=TINY, epochs=1, n_train=400)
    assert record["task"] == "digits" and record["n_train"] == 400 and record["n_test"] == 896
    assert record["test_accuracy"] >= 0.5  # chance 0.1
    assert record["ablated_accuracy"] <= record["test_accuracy"] - 0.2
    assert record["untrained_accuracy"] <= record["test_accuracy"] - 0.2
    assert record["logistic_accuracy"] > 0.9 and record["kmeans_accuracy"] > 0.9
    for key in ("chance", "target", "anchors", "rows", "params", "seed", "seconds", "ablation"):
        assert key in record
    assert set(record["rows"]) == {"trained", "untrained", "ablated"}
    trained = record["rows"]["trained"]
    assert sum(trained["neurons_per_class"]) + trained["unassigned_neurons"] == 100
    from experiments import eval as eval_cli  # the launcher's table

    lines = eval_cli.table(record).splitlines()
    assert lines[1] == "| model | test accuracy |"
    assert lines[3] == f"| trained (100 neurons, 1 epochs) | {record['test_accuracy']:.3f} |"
    assert any(line.startswith("| k-means, 100 prototypes (reference) |") for line in lines)


def test_responses_do_not_depend_on_the_batching_and_bad_params_are_refused():
    import jax

    images, _ = digits.load()
    net = digits.newborn(TINY, jax.random.PRNGKey(3))
    a = digits.responses(TINY, net, images[:20], jax.random.PRNGKey(4))
    b = digits.responses(TINY, net, images[:20], jax.random.PRNGKey(4), batch=8)
    np.testing.assert_array_equal(a[0], b[0])  # image i's Poisson trains come from its index alone
    np.testing.assert_array_equal(a[1], b[1])
    assert a[1].min() >= TINY.readout_repeats and a[0].shape == (20, 100)
    # the readout sums repeats: the first is the one-presentation readout, the rest add fresh trains
    once = dataclasses.replace(TINY, readout_repeats=1)
    c1, t1 = digits.responses(once, net, images[:20], jax.random.PRNGKey(4))
    assert (a[0] >= c1).all() and a[0].sum() >= TINY.readout_repeats * 0.5 * c1.sum()
    assert (a[1] >= t1 + TINY.readout_repeats - 1).all()
    with pytest.raises(ValueError, match="n_neurons=0: must be in 1..4096"):
        digits.evaluate(params=digits.Params(n_neurons=0))
    with pytest.raises(ValueError, match="max_tries and readout_repeats >= 1"):
        digits.evaluate(params=digits.Params(readout_repeats=0))
    with pytest.raises(ValueError, match="n_train=5: must be in 10..901"):
        digits.evaluate(params=TINY, n_train=5)


def test_eval_digits_bad_flags_are_one_line():
    r = jbrain_cli("eval", "digits", "--digits_neurons=0")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "jbrain eval digits: error: --digits_neurons must be in 1..4096, --digits_epochs >= 1 and "
        "--digits_train in 10..901 (0: all)"
    )
