"""Backends (jbrain/backends): the registry and its fallbacks, and each
backend's kernels against the XLA reference, bit for bit.

"pallas_gpu" (Mosaic GPU kernels: no interpreter runs them) is lowered
for CUDA here and compiled under the `gpu` marker on a GPU, where whole
bursts on its plans are compared with XLA's; "cpu_native" runs compiled on
the CPU, with its build's fallbacks.
Whole bursts on every plan of this device: test_brain.py."""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, assert_trees_equal, cli_env, preset_config, small, tiny

from jbrain import backends, brain, plasticity, synapses
from jbrain import plan as plans
from jbrain.backends import cpu_native, pallas_gpu

on_cpu = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU kernels run on the CPU backend")


def plastic_brain(n: int, k: int, seed: int, **flags):
    """(projection, dt, wiring, post-major weights, rng) of a seed brain with STDP."""
    config = small(n_neurons=n, fan_in=k, plasticity=True, a_plus=0.01, a_minus=0.012, **flags)
    circuit, _, wiring, state = tiny(config, seed=seed)
    return circuit.projections[0], circuit.dt, wiring.projections["W"], state.projections["W"].weights


# ----------------------------------------------------------------- registry --


@on_cpu
def test_auto_picks_the_compiled_kernels_on_this_cpu():
    # CI has a compiler: a silent fallback to XLA would hide a broken build
    assert cpu_native.available(), "the CPU kernels failed to build"
    assert backends.pick("cpu") == "cpu_native"
    assert plans.resolve(small().circuit()).backend == "cpu_native"


def test_a_jax_without_pallas_mosaic_gpu_runs_gpus_on_xla_with_one_warning(monkeypatch):
    monkeypatch.setattr(pallas_gpu, "IMPORT_ERROR", "ImportError: cannot import name 'mosaic_gpu'")
    monkeypatch.setattr(backends, "_warned", set())
    circuit = small(plasticity=True).circuit()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert backends.pick("gpu") == "xla"
        assert backends.pick("gpu") == "xla"
        plan = plans.resolve(circuit, platform="gpu")
    assert plan.backend == "xla" and plan.paths == ("event",) and plan.stdp == ("deferred",)
    assert [(w.category, str(w.message)) for w in caught] == [
        (
            RuntimeWarning,
            "jbrain: this jax has no Pallas Mosaic GPU backend "
            "(ImportError: cannot import name 'mosaic_gpu'); running the XLA kernels (slower)",
        )
    ]
    with pytest.raises(ValueError) as e:
        plans.resolve(circuit, platform="gpu", backend="pallas_gpu")
    assert str(e.value) == "--backend=pallas_gpu does not run on this gpu: use --backend=xla or auto"


def test_importing_the_pallas_backend_raises_no_deprecation_warning():
    """The GPU kernels are Mosaic GPU's (Pallas's Triton lowering, deprecated
    in jax 0.11, warned on import): importing them is silent, with
    DeprecationWarnings made errors."""
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "import jbrain.backends"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=cli_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Deprecat" not in done.stderr


# ------------------------------------------ Pallas, lowered here for CUDA --


def _lowers_for_cuda(f, *shapes) -> str:
    """The StableHLO of f lowered for CUDA (no GPU needed): Mosaic GPU
    builds each kernel's MLIR here, so an API it no longer has fails now."""
    return jax.export.export(jax.jit(f), platforms=["cuda"])(*shapes).mlir_module()


@pytest.mark.parametrize("k", [32, 12])
def test_the_pallas_kernels_lower_to_mosaic_gpu_calls(k):
    n, cap = 3000, 500
    S = jax.ShapeDtypeStruct
    replay_args = (
        S((n * k,), jnp.int32), S((n * k,), jnp.float32), S((n,), jnp.uint32), S((n,), jnp.int32),
        S((n,), jnp.float32), S((1,), jnp.float32), S((n,), jnp.uint8), S((n,), jnp.float32),
        S((), jnp.int32),
    )  # fmt: skip
    lowered = [
        _lowers_for_cuda(
            pallas_gpu.push_event,
            S((n,), jnp.uint8), S((n, k), jnp.int32), S((n * k,), jnp.float32), S((n,), jnp.int32),
            S((n,), jnp.int32),
        ),
        _lowers_for_cuda(lambda s: pallas_gpu.spike_list(s, capacity=cap), S((n,), jnp.uint8)),
        _lowers_for_cuda(  # over a spike list
            lambda *a: pallas_gpu.replay_stdp(*a, block=63, extra=1, history=32, a_plus=0.01, w_max=1.0),
            *replay_args, S((cap,), jnp.int32), S((), jnp.int32),
        ),
        _lowers_for_cuda(  # voting on the spikes, and pushing
            lambda *a: pallas_gpu.replay_stdp(
                *a[:-2], scratch=(a[-2], a[-1]), block=63, extra=1, history=32, a_plus=0.01, w_max=1.0
            ),
            *replay_args, S((n,), jnp.int32), S((n,), jnp.int32),
        ),
        _lowers_for_cuda(  # its block from a phase, which it advances
            lambda *a: pallas_gpu.replay_stdp(
                *a[:-3], None, phase=(a[-2], a[-1]), block=63, extra=1, history=32, a_plus=0.01, w_max=1.0
            ),
            *replay_args, S((1,), jnp.int32), S((1,), jnp.int32),
        ),
    ]  # fmt: skip
    for text in lowered:
        assert text.count("custom_call @mosaic_gpu") == 1, text[:400]


def test_static_event_projections_push_without_a_spike_list_on_pallas():
    """The Pallas plan lists no population whose event projections are all
    static (the push kernel needs no list) or deferred (the replay kernel
    votes on the spikes), XLA's lists it; eager STDP brings the list back
    (it walks the list)."""
    static = small().circuit()
    assert plans.resolve(static, platform="gpu", backend="pallas_gpu").listed == (False,)
    assert plans.resolve(static, platform="gpu", backend="xla").listed == (True,)
    assert not plans.resolve(static, platform="gpu", backend="pallas_gpu").uses_spike_list
    plastic = small(plasticity=True).circuit()
    deferred = plans.resolve(plastic, platform="gpu", backend="pallas_gpu")
    assert deferred.stdp == ("deferred",) and deferred.listed == (False,)
    assert plans.resolve(plastic, platform="gpu", backend="pallas_gpu", stdp="eager").listed == (True,)
    assert plans.resolve(plastic, platform="gpu", backend="xla").listed == (True,)


def _replay_case(n: int, k: int, seed: int):
    """A deferred-STDP step's inputs: random histories, windows, anchors, LTD,
    a shuffled spike list padded with zeros, a round-robin block."""
    q, dt, wiring, w = plastic_brain(n, k, seed)
    rng = np.random.default_rng(seed)
    lag = plasticity.Lag(
        jnp.asarray(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)),
        jnp.asarray(rng.integers(0, plasticity.HISTORY, n).astype(np.int32)),
        jnp.asarray(rng.exponential(1.0, n).astype(np.float32)),
    )
    ltd = jnp.asarray((0.012 * rng.exponential(1.0, n)).astype(np.float32))
    fired = rng.random(n) < 0.1
    ids = np.concatenate([rng.permutation(np.flatnonzero(fired)), np.zeros(40, int)]).astype(np.int32)
    w_pre = synapses.to_pre_major(wiring, w)
    return q, dt, wiring, w_pre, lag, ltd, fired, ids


def _replay_both(backend, q, dt, wiring, w_pre, lag, ltd, fired, ids, start=700, size=63):
    """(kernel, XLA) weights for one deferred step (listed rows: replay +
    LTD; a block of rows that did not fire: replay), then the flush (every
    row, no LTD)."""
    n = fired.size
    kernel, *_ = plasticity._kernel(
        backend, q, dt, wiring, jnp.array(w_pre), lag, spikes=jnp.asarray(fired, jnp.uint8), ltd=ltd,
        ids=jnp.asarray(ids), n_ids=jnp.int32(fired.sum()), start=jnp.int32(start), block=size, extra=1,
    )  # fmt: skip
    same = lambda t: t
    block = np.arange(start, start + size)
    rows = jnp.asarray(np.where(fired[block], n, block), jnp.int32)
    xla = plasticity._replay_rows(q, dt, wiring, w_pre, lag.hist, lag.pending + 1, lag.anchor, rows, same)
    listed = jnp.asarray(np.where(np.arange(ids.size) < fired.sum(), ids, n), jnp.int32)
    xla = plasticity._replay_rows(
        q, dt, wiring, xla, lag.hist, lag.pending + 1, lag.anchor, listed, same, ltd=ltd
    )
    flush_kernel = plasticity.flush(q, dt, backend, wiring, jnp.array(w_pre), lag)
    flush_xla = plasticity.flush(q, dt, backends.get("xla"), wiring, w_pre, lag)
    return (kernel, xla), (flush_kernel, flush_xla)


# ------------------------------------------------------ CPU kernels (FFI) --


@on_cpu
@pytest.mark.parametrize("frac", [0.0, 0.05, 0.5])
def test_native_event_propagate_equals_xla(frac):
    _, _, wiring, _ = plastic_brain(3000, 16, seed=2)
    n, k = 3000, 16
    key = jax.random.key(int(frac * 100))
    spikes = jax.random.uniform(key, (n,)) < frac
    weights = jax.random.uniform(jax.random.fold_in(key, 1), (n * k,)) * 0.05
    ids, _ = synapses.spike_list(spikes, n)
    # the kernel is order-free and skips padding wherever it is
    shuffled = jax.random.permutation(jax.random.fold_in(key, 2), ids)
    native = cpu_native.event_propagate(wiring.out_post, weights, shuffled)
    xla = synapses.propagate_event(wiring, weights, ids)
    assert native.dtype == jnp.float32 and native.shape == (n,)
    np.testing.assert_array_equal(native, xla)
    assert (float(jnp.abs(native).sum()) > 0) == (frac > 0)


@on_cpu
@pytest.mark.parametrize("frac", [0.0, 0.05, 0.5])
def test_native_event_push_equals_xla(frac):
    """The push over the spike vector (no list) gives XLA's listed scatter."""
    _, _, wiring, _ = plastic_brain(3000, 16, seed=2)
    key = jax.random.key(int(frac * 100) + 7)
    spikes = (jax.random.uniform(key, (3000,)) < frac).astype(jnp.uint8)
    weights = jax.random.uniform(jax.random.fold_in(key, 1), (3000 * 16,)) * 0.05
    ids, _ = synapses.spike_list(spikes, 3000)
    want = synapses.propagate_event(wiring, weights, ids)
    got = cpu_native.event_push(wiring.out_post, weights, spikes)
    np.testing.assert_array_equal(got, want)
    assert (float(jnp.abs(want).sum()) > 0) == (frac > 0)


@on_cpu
@pytest.mark.parametrize("frac", [0.02, 0.3])
def test_native_event_stdp_equals_xla(frac):
    q, dt, wiring, _ = plastic_brain(3000, 16, seed=4)
    n, k = 3000, 16
    keys = jax.random.split(jax.random.key(int(frac * 100)), 5)
    spikes = (jax.random.uniform(keys[0], (n,)) < frac).astype(jnp.uint8)
    # weights near both bounds, so that the clips matter; traces large enough to move them
    weights = jax.random.choice(keys[1], jnp.array([0.0, 0.0001, 0.025, 0.0499, 0.05]), (n * k,))
    x_pre = jax.random.exponential(keys[2], (n,)) * 40.0
    y_post = jax.random.exponential(keys[3], (n,)) * 40.0
    ids, count = synapses.spike_list(spikes, n)
    ltp, ltd, _, _ = plasticity.trace_step(q, dt, x_pre, y_post, spikes, spikes)
    shuffled = jax.random.permutation(keys[4], ids)
    native = cpu_native.event_stdp(
        wiring.pre, wiring.out_post, jnp.array(weights), spikes, shuffled, ltp, ltd, w_max=q.w_max
    )
    xla, _, _ = plasticity.stdp_step(q, dt, wiring, weights, x_pre, y_post, spikes, spikes, ids, ids)
    changed = int((np.asarray(xla) != np.asarray(weights)).sum())
    assert changed > int(count) * k  # more than one row per spiker: both LTP and LTD moved weights
    np.testing.assert_array_equal(native, xla)


@on_cpu
@pytest.mark.parametrize("frac", [0.05, 0.4])
def test_native_kernels_on_long_lists_equal_xla(frac):
    # lists long enough to be split over threads (cpu_kernels.cc, Threads): at 0.4,
    # 8,000 spikers x 32 synapses give every core of this machine a share
    q, dt, wiring, _ = plastic_brain(20000, 32, seed=5)
    n, k = 20000, 32
    keys = jax.random.split(jax.random.key(7), 5)
    spikes = (jax.random.uniform(keys[0], (n,)) < frac).astype(jnp.uint8)
    weights = jax.random.choice(keys[1], jnp.array([0.0, 0.0001, 0.025, 0.0499, 0.05]), (n * k,))
    x_pre = jax.random.exponential(keys[2], (n,)) * 40.0
    y_post = jax.random.exponential(keys[3], (n,)) * 40.0
    ids, _ = synapses.spike_list(spikes, n)
    shuffled = jax.random.permutation(keys[4], ids)
    native = cpu_native.event_propagate(wiring.out_post, weights, shuffled)
    np.testing.assert_array_equal(native, synapses.propagate_event(wiring, weights, ids))
    ltp, ltd, _, _ = plasticity.trace_step(q, dt, x_pre, y_post, spikes, spikes)
    native = cpu_native.event_stdp(
        wiring.pre, wiring.out_post, jnp.array(weights), spikes, shuffled, ltp, ltd, w_max=q.w_max
    )
    xla, _, _ = plasticity.stdp_step(q, dt, wiring, weights, x_pre, y_post, spikes, spikes, ids, ids)
    np.testing.assert_array_equal(native, xla)


@on_cpu
def test_native_kernels_split_over_more_threads_than_cores_equal_xla(tmp_path):
    # $JBRAIN_CPU_THREADS=3 (read once per process): three shares of each list, whatever the cores
    env = dict(cli_env(), JBRAIN_CPU_THREADS="3")
    test = "tests/test_backends.py::test_native_kernels_on_long_lists_equal_xla"
    report = tmp_path / "report.xml"
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", f"--junitxml={report}",
         test],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert 'tests="2"' in report.read_text() and 'failures="0"' in report.read_text()


@on_cpu
def test_the_native_plan_calls_the_kernels_and_the_xla_plan_does_not():
    circuit, _, wiring, state = tiny(small(plasticity=True))
    for backend, stdp in (("cpu_native", "eager"), ("xla", "eager"), ("cpu_native", "deferred")):
        plan = plans.resolve(circuit, propagation="event", stdp=stdp, backend=backend)
        hlo = brain.burst.lower(circuit, plan, wiring, state, None, length=20).as_text()
        native = backend == "cpu_native"
        assert ("jbrain_event_propagate" in hlo) == native, (backend, stdp)
        assert ("jbrain_event_stdp" in hlo) == (native and stdp == "eager"), (backend, stdp)
        assert "jbrain_event_push" not in hlo  # plastic: STDP walks the list
    # static: the push, no list
    circuit, _, wiring, state = tiny(small())
    plan = plans.resolve(circuit, propagation="event", backend="cpu_native")
    assert plan.listed == (False,)
    hlo = brain.burst.lower(circuit, plan, wiring, state, None, length=20).as_text()
    assert "jbrain_event_push" in hlo and "jbrain_event_propagate" not in hlo


@on_cpu
@pytest.mark.parametrize("frac", [0.0, 0.05, 0.5])
def test_native_csr_push_equals_the_gather(frac):
    """The csr push (no out-table: coba's Bernoulli projections, with
    padding slots and populations of different sizes) gives the gather's
    sums bit for bit."""
    circuit, _, wiring, state = tiny(preset_config("coba", n_neurons=1000))
    for q in circuit.projections:
        pw, w = wiring.projections[q.name], state.projections[q.name].weights
        n_pre, n_post = synapses.span_size(circuit, q, "pre"), synapses.span_size(circuit, q, "post")
        key = jax.random.fold_in(jax.random.key(int(frac * 100)), n_pre)
        spikes = (jax.random.uniform(key, (n_pre,)) < frac).astype(jnp.uint8)
        want = synapses.propagate_gather(pw, w, spikes, "cpu")
        got = cpu_native.csr_push(cpu_native.csr_order(pw.pre, n_pre), w, spikes, n_post)
        np.testing.assert_array_equal(got, want, err_msg=q.name)
        assert (float(jnp.abs(want).sum()) > 0) == (frac > 0)


@on_cpu
def test_csr_bursts_equal_gather_bursts():
    """A coba brain (conductance synapses) on the csr plan steps exactly as
    on the gather plan: the same sums, and the floats after them round alike."""
    circuit, _, wiring, state = tiny(preset_config("coba", n_neurons=1000), seed=1)
    csr = plans.resolve(circuit, backend="cpu_native")
    assert csr.paths == ("csr",) * 4
    hlo = brain.burst.lower(circuit, csr, wiring, state, None, length=20).as_text()
    copy = lambda: jax.tree.map(jnp.copy, state)  # noqa: E731  (a burst donates its state)
    got = brain.burst(circuit, csr, wiring, copy(), None, length=300)
    gather = plans.resolve(circuit, propagation="gather")
    want = brain.burst(circuit, gather, wiring, copy(), None, length=300)
    assert int(np.asarray(want[1]["pop_counts"]).sum()) > 0  # it fired
    assert_trees_equal(got, want)
    assert "jbrain_csr_push" in hlo and "jbrain_csr_order" in hlo


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """A new build state and an empty cache folder."""
    monkeypatch.setattr(cpu_native, "_build_state", cpu_native._Build())
    monkeypatch.setenv("JBRAIN_CACHE", str(tmp_path / "cache"))
    return tmp_path


@on_cpu
def test_no_compiler_falls_back_with_one_warning(monkeypatch, fresh_build):
    monkeypatch.setenv("CXX", str(fresh_build / "no-such-compiler"))
    with pytest.warns(RuntimeWarning) as caught:
        assert not cpu_native.available()
    assert len(caught) == 1
    assert str(caught[0].message) == (
        "jbrain: CPU kernels unavailable, the event path runs in XLA (slower): "
        "no C++ compiler found: install g++ (or set CXX to one)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        assert not cpu_native.available()
        assert backends.pick("cpu") == "xla"


@on_cpu
def test_failed_build_warns_with_the_compiler_error_and_leaves_nothing(monkeypatch, fresh_build):
    cxx = fresh_build / "badcc"
    cxx.write_text("#!/bin/sh\necho 'cpu_kernels.cc:1: error: boom' >&2\nexit 1\n")
    cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CXX", str(cxx))
    expected = r"badcc failed on .*cpu_kernels\.cc: cpu_kernels\.cc:1: error: boom$"
    with pytest.warns(RuntimeWarning, match=expected):
        assert not cpu_native.available()
    assert os.listdir(fresh_build / "cache") == []  # no half-written library


@on_cpu
def test_a_compiler_without_march_native_builds_portable_code(monkeypatch, fresh_build, capsys):
    """The build asks for -march=native; a compiler that refuses it gets the
    same source without it, and the library loads."""
    cxx = fresh_build / "oldcc"
    real = cpu_native.compiler()
    cxx.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -march=native "*) echo "oldcc: error: unknown -march=native" >&2; exit 1;; esac\n'
        f'exec {real} "$@"\n'
    )
    cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CXX", str(cxx))
    assert cpu_native.main() == 0
    path = capsys.readouterr().out.strip()
    assert path == cpu_native.library_path(str(cxx))
    assert os.listdir(fresh_build / "cache") == [os.path.basename(path)]
    ctypes.CDLL(path)  # a loadable library


def test_a_build_belongs_to_its_cpu(monkeypatch):
    """Native code is keyed by the CPU it was built for: a cache folder
    shared with another machine never hands it this machine's library."""
    here = cpu_native.library_path("/usr/bin/c++")
    monkeypatch.setattr(cpu_native, "_cpu_identity", lambda: "model name : another CPU\nflags : sse2\n")
    assert cpu_native.library_path("/usr/bin/c++") != here


def test_build_is_cached_by_source_and_compiler(fresh_build, capsys):
    cache = fresh_build / "cache"
    cache.mkdir()
    stale, running = cache / ".build-dead.so", cache / ".build-running.so"
    stale.write_text("half a library")
    running.write_text("a build in progress")
    os.utime(stale, (0, 0))  # a build killed long ago
    assert cpu_native.main() == 0
    path = capsys.readouterr().out.strip()
    assert os.path.dirname(path) == str(fresh_build / "cache") and path.endswith(".so")
    mtime = os.stat(path).st_mtime_ns
    assert cpu_native.main() == 0  # found, not rebuilt
    assert capsys.readouterr().out.strip() == path
    assert os.stat(path).st_mtime_ns == mtime
    # the dead build's leftover is gone; a recent one may still be running
    assert sorted(os.listdir(cache)) == [running.name, os.path.basename(path)]


# ------------------------------------------------ Pallas, compiled (GPU) --


@pytest.mark.gpu
@pytest.mark.parametrize("case", ["natural", "random30%", "K=12", "N=200,003"])
def test_compiled_pallas_push_equals_the_xla_scatter(case):
    # N=200,003: the last block's threads past N vote "no spike"
    n, k = (200_003 if case == "N=200,003" else 200_000), 12 if case == "K=12" else 32
    circuit, plan, wiring, state = tiny(small(n_neurons=n, fan_in=k), propagation="event", backend="xla")
    if case == "natural":
        state, _ = brain.burst(circuit, plan, wiring, state, None, length=300)
        spikes = state.neurons.spikes
    else:
        spikes = jnp.asarray((np.random.default_rng(0).random(n) < 0.3).astype(np.uint8))
    pw = wiring.projections["W"]
    w_pre = synapses.to_pre_major(pw, state.projections["W"].weights)
    ids, _ = synapses.spike_list(spikes, n)
    want = synapses.propagate_event(pw, w_pre, ids)
    zero, _ = backends.PallasGPU.push_scratch(n)
    stale = jnp.arange(n, dtype=jnp.int32) + 1  # the step before's accumulator
    got, (zeroed, acc) = backends.PallasGPU.push_event(pw, w_pre, spikes, (zero, stale))
    assert float(jnp.abs(want).sum()) > 0
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(zeroed, np.zeros(n, np.int32))  # ready for the next step's push
    np.testing.assert_array_equal(synapses.from_fixed(acc), want)


@pytest.mark.gpu
@pytest.mark.parametrize("case", ["natural", "random30%"])
def test_compiled_pallas_spike_list_lists_what_xla_lists(case):
    n = 200_000
    if case == "natural":
        circuit, plan, wiring, state = tiny(small(n_neurons=n))
        state, _ = brain.burst(circuit, plan, wiring, state, None, length=300)
        spikes = state.neurons.spikes
    else:
        spikes = jnp.asarray((np.random.default_rng(0).random(n) < 0.3).astype(np.uint8))
    fired = np.flatnonzero(np.asarray(spikes))
    assert len(fired) > 0
    for capacity in (n, 1000):
        raw, count = pallas_gpu.spike_list(spikes, capacity=capacity)
        ids, count_xla = synapses.spike_list(spikes, capacity)
        assert int(count) == int(count_xla) == len(fired)
        kept = min(len(fired), capacity)
        got = np.asarray(raw)[:kept]
        assert len(np.unique(got)) == kept and np.isin(got, fired).all()
        if kept == len(fired):  # all listed, in some order
            np.testing.assert_array_equal(np.sort(got), np.asarray(ids)[:kept])


@pytest.mark.gpu
def test_compiled_pallas_replay_stdp_equals_xla():
    q, dt, wiring, w_pre, lag, ltd, fired, ids = _replay_case(20_000, 32, seed=4)
    (kernel, xla), (flush_kernel, flush_xla) = _replay_both(
        backends.PallasGPU, q, dt, wiring, w_pre, lag, ltd, fired, ids, start=7000, size=625
    )
    assert (np.asarray(xla) != np.asarray(w_pre)).mean() > 0.02
    np.testing.assert_array_equal(kernel, xla)
    np.testing.assert_array_equal(flush_kernel, flush_xla)


@pytest.mark.gpu
def test_compiled_pallas_replay_stdp_pushes_what_xla_pushes():
    """With the push's accumulators, the replay kernel's weights are XLA's
    and its sums XLA's scatter-add of the updated spikers' rows, over a
    spike list or voting on the spikes, its block given by a start or by a
    phase (which it advances); it zeroes the stale accumulator."""
    q, dt, wiring, w_pre, lag, ltd, fired, ids = _replay_case(20_000, 32, seed=4)
    n = fired.size
    zero, _ = backends.PallasGPU.push_scratch(n)
    stale = jnp.arange(n, dtype=jnp.int32) + 1  # the step before's accumulator
    (_, xla), _ = _replay_both(
        backends.PallasGPU, q, dt, wiring, w_pre, lag, ltd, fired, ids, start=11 * 625, size=625
    )
    listed = jnp.asarray(np.where(np.arange(ids.size) < fired.sum(), ids, n), jnp.int32)
    want = synapses.propagate_event(wiring, xla, listed)
    assert float(jnp.abs(want).sum()) > 0
    phase = (jnp.array([11], jnp.int32), jnp.array([-1], jnp.int32))  # phase 11: rows from 11 x 625
    for by_list, by_phase in ((True, False), (False, False), (False, True)):
        w, (acc, zeroed), following = plasticity._kernel(
            backends.PallasGPU, q, dt, wiring, jnp.array(w_pre), lag, scratch=(zero, stale),
            spikes=jnp.asarray(fired, jnp.uint8), ltd=ltd, block=625, extra=1,
            **({"ids": jnp.asarray(ids), "n_ids": jnp.int32(fired.sum())} if by_list else {}),
            **({"start": None, "phase": phase} if by_phase else {"start": jnp.int32(11 * 625)}),
        )  # fmt: skip
        np.testing.assert_array_equal(w, xla)
        np.testing.assert_array_equal(synapses.from_fixed(acc), want)
        np.testing.assert_array_equal(zeroed, np.zeros(n, np.int32))
        assert (following is not None) == by_phase
        if by_phase:
            assert np.asarray(following).tolist() == [12]


@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["seed", "ei"])
def test_static_bursts_on_the_pallas_plan_equal_xla(preset):
    """200,000 neurons, 300 steps without plasticity: the Pallas plan pushes
    every spike (no list) and gives XLA's event plan's brain bit for bit."""
    config = small(n_neurons=200_000, preset=preset)
    circuit = config.circuit()
    wiring, s0 = brain.init_brain(circuit, seed=5)
    pallas = plans.resolve(circuit, propagation="event")
    assert pallas.backend == "pallas_gpu" and not pallas.uses_spike_list
    xla = plans.resolve(circuit, propagation="event", backend="xla")
    got = brain.burst(circuit, pallas, wiring, jax.tree.map(jnp.copy, s0), None, length=300)
    want = brain.burst(circuit, xla, wiring, jax.tree.map(jnp.copy, s0), None, length=300)
    assert int(np.asarray(want[1].spikes).sum()) > 0
    assert_trees_equal(jax.device_get(got), jax.device_get(want))


@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["seed", "ei"])
def test_plastic_bursts_on_the_pallas_plans_equal_xla(preset):
    """200,000 neurons, 300 plastic steps: the Pallas plans (eager and
    deferred STDP on the event path) and XLA's event plans give the gather
    reference's brain bit for bit; deferred on Pallas, one burst of 300 ==
    ten bursts of 30."""
    config = small(n_neurons=200_000, preset=preset, plasticity=True, a_plus=0.01, a_minus=0.012)
    if preset == "ei":
        config = config.replace(controller=False)
    circuit = config.circuit()
    wiring, s0 = brain.init_brain(circuit, seed=5)
    assert backends.pick("gpu") == "pallas_gpu"

    def run(plan, bursts=1):
        s = jax.tree.map(jnp.copy, s0)
        for _ in range(bursts):
            s, m = brain.burst(circuit, plan, wiring, s, None, length=300 // bursts)
        return jax.device_get((s, m.spikes))

    ref = run(plans.resolve(circuit, propagation="gather", backend="xla"))
    assert ref[1].sum() > 0
    for backend in ("pallas_gpu", "xla"):
        for stdp in ("eager", "deferred"):
            plan = plans.resolve(circuit, propagation="event", stdp=stdp, backend=backend)
            assert plan.backend == backend
            assert_trees_equal(run(plan)[0], ref[0])
    deferred = plans.resolve(circuit, propagation="event", stdp="deferred", backend="pallas_gpu")
    assert_trees_equal(run(deferred, bursts=10)[0], ref[0])


@pytest.mark.gpu
def test_compiling_the_pallas_kernels_raises_no_deprecation_warning():
    """With warnings shown (-W default), a process that compiles and runs
    jbrain's Mosaic GPU kernels prints no deprecation (jax 0.11 warned at
    every lowering of the Triton kernels they replace)."""
    code = (
        "import jax, jax.numpy as jnp\n"
        "from jbrain.backends import pallas_gpu\n"
        "jax.block_until_ready(pallas_gpu.spike_list(jnp.zeros(12_345, jnp.uint8), capacity=77))\n"
    )
    p = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert "deprecated" not in p.stderr.lower(), p.stderr
