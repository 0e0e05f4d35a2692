"""The compiled CPU kernel (XLA FFI) against XLA's event path, and its build."""

import os
import stat
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jbrain import brain, cpu_kernels, plasticity, synapses
from jbrain.config import BrainConfig

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU kernels run on the CPU backend")


def test_kernel_is_built_here():
    # CI has a compiler: a silent fallback to XLA would hide a broken build
    assert cpu_kernels.available(), "the CPU kernels failed to build"


@pytest.mark.parametrize("frac", [0.0, 0.05, 0.5])
def test_event_propagate_matches_xla_bit_for_bit(monkeypatch, frac):
    n, k = 3000, 16
    cfg = BrainConfig(n_neurons=n, fan_in=k, propagation="event")
    wiring, _ = brain.init_brain(cfg, seed=2)
    key = jax.random.key(int(frac * 100))
    spikes = jax.random.uniform(key, (n,)) < frac
    weights = jax.random.uniform(jax.random.fold_in(key, 1), (n * k,)) * cfg.w_max
    ids, _ = synapses.spike_list(spikes, n)
    # the kernel is order-free and skips padding wherever it is
    shuffled = jax.random.permutation(jax.random.fold_in(key, 2), ids)
    native = cpu_kernels.event_propagate(wiring.out_post, weights, shuffled)
    monkeypatch.setenv("JBRAIN_NATIVE", "0")
    xla = synapses.propagate_event(wiring, weights, ids)
    assert native.dtype == jnp.float32 and native.shape == (n,)
    assert np.array_equal(np.asarray(native), np.asarray(xla))
    assert (float(jnp.abs(native).sum()) > 0) == (frac > 0)


@pytest.mark.parametrize("frac", [0.02, 0.3])
def test_event_stdp_matches_xla_bit_for_bit(monkeypatch, frac):
    n, k = 3000, 16
    cfg = BrainConfig(n_neurons=n, fan_in=k, propagation="event", plasticity=True, w_max=0.05)
    wiring, _ = brain.init_brain(cfg, seed=4)
    key = jax.random.key(int(frac * 100))
    keys = jax.random.split(key, 5)
    spikes = (jax.random.uniform(keys[0], (n,)) < frac).astype(jnp.uint8)
    # weights near both bounds, so that the clips matter; traces large enough to move them
    weights = jax.random.choice(keys[1], jnp.array([0.0, 0.0001, 0.025, 0.0499, 0.05]), (n * k,))
    x_pre = jax.random.exponential(keys[2], (n,)) * 40.0
    y_post = jax.random.exponential(keys[3], (n,)) * 40.0
    ids, count = synapses.spike_list(spikes, n)
    ltp, ltd, _, _ = plasticity.trace_step(cfg, x_pre, y_post, spikes)
    shuffled = jax.random.permutation(keys[4], ids)
    native = cpu_kernels.event_stdp(
        wiring.pre, wiring.out_post, jnp.array(weights), spikes, shuffled, ltp, ltd, w_max=cfg.w_max
    )
    monkeypatch.setenv("JBRAIN_NATIVE", "0")
    xla, _, _ = plasticity.stdp_step(cfg, wiring, weights, x_pre, y_post, spikes, ids, pre_major=True)
    changed = int((np.asarray(xla) != np.asarray(weights)).sum())
    assert changed > int(count) * k  # more than one row per spiker: both LTP and LTD moved weights
    assert np.array_equal(np.asarray(native), np.asarray(xla))


@pytest.mark.parametrize("plasticity", [False, True])
def test_bursts_identical_with_and_without_the_kernel(monkeypatch, plasticity):
    cfg = BrainConfig(n_neurons=4000, propagation="event", plasticity=plasticity)
    runs = []
    for native in ("1", "0"):
        monkeypatch.setenv("JBRAIN_NATIVE", native)
        brain.burst.clear_cache()  # the switch is read at trace time
        wiring, state = brain.init_brain(cfg, seed=7)
        hlo = brain.burst.lower(cfg, wiring, state, None, length=120).as_text()
        assert ("jbrain_event_propagate" in hlo) == (native == "1")
        assert ("jbrain_event_stdp" in hlo) == (native == "1" and plasticity)
        assert brain.deferred_stdp(cfg) == (native == "0" and plasticity)  # auto: XLA defers LTP
        state, metrics = brain.burst(cfg, wiring, state, None, length=120)
        runs.append(jax.device_get((state, metrics)))
    brain.burst.clear_cache()
    (s1, m1), (s0, m0) = runs
    assert int(m1.spikes.sum()) > 0
    for a, b in zip(jax.tree.leaves((s1, m1)), jax.tree.leaves((s0, m0)), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """A new build state and an empty cache folder."""
    monkeypatch.setattr(cpu_kernels, "_build_state", cpu_kernels._Build())
    monkeypatch.setenv("JBRAIN_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_no_compiler_falls_back_with_one_warning(monkeypatch, fresh_build):
    monkeypatch.setenv("CXX", str(fresh_build / "no-such-compiler"))
    with pytest.warns(RuntimeWarning) as caught:
        assert not cpu_kernels.available()
    assert len(caught) == 1
    assert str(caught[0].message) == (
        "jbrain: CPU kernels unavailable, the event path runs in XLA (slower): "
        "no C++ compiler found: install g++ (or set CXX to one)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        assert not cpu_kernels.available()


def test_failed_build_warns_with_the_compiler_error_and_leaves_nothing(monkeypatch, fresh_build):
    cxx = fresh_build / "badcc"
    cxx.write_text("#!/bin/sh\necho 'cpu_kernels.cc:1: error: boom' >&2\nexit 1\n")
    cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CXX", str(cxx))
    expected = r"badcc failed on .*cpu_kernels\.cc: cpu_kernels\.cc:1: error: boom$"
    with pytest.warns(RuntimeWarning, match=expected):
        assert not cpu_kernels.available()
    assert os.listdir(fresh_build / "cache") == []  # no half-written library


def test_build_is_cached_by_source_and_compiler(fresh_build, capsys):
    cache = fresh_build / "cache"
    cache.mkdir()
    stale, running = cache / ".build-dead.so", cache / ".build-running.so"
    stale.write_text("half a library")
    running.write_text("a build in progress")
    os.utime(stale, (0, 0))  # a build killed long ago
    assert cpu_kernels.main() == 0
    path = capsys.readouterr().out.strip()
    assert os.path.dirname(path) == str(fresh_build / "cache") and path.endswith(".so")
    mtime = os.stat(path).st_mtime_ns
    assert cpu_kernels.main() == 0  # found, not rebuilt
    assert capsys.readouterr().out.strip() == path
    assert os.stat(path).st_mtime_ns == mtime
    # the dead build's leftover is gone; a recent one may still be running
    assert sorted(os.listdir(cache)) == [running.name, os.path.basename(path)]
