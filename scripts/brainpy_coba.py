"""Peer benchmark: the COBA network (Vogels & Abbott 2005; Brette et al. 2007,
benchmark 1, the 'drive' variant used by Brian2's / BrainPy's benchmark
scripts) in BrainPy 2.9 (JAX), timed as a real-time factor.

Model, as in ../shared/peers/brian2_coba.py (variant 'drive') and jbrain's
experiments/configs/coba.flags:
  4000 LIF neurons, NE = 3200 excitatory, NI = 800 inhibitory, dt = 0.1 ms
  dv/dt  = (ge*(Ee - v) + gi*(Ei - v) - (v - El) + I) / taum  (unless refractory)
  dge/dt = -ge/taue ; dgi/dt = -gi/taui     (conductances in units of g_leak)
  taum 20 ms, taue 5 ms, taui 10 ms, Vt -50 mV, Vr -60 mV, El -60 mV,
  Ee 0 mV, Ei -80 mV, I = 20 mV (constant drive, no other input),
  refractory 5 ms, we = 6/10, wi = 67/10, forward Euler,
  v0 ~ N(-55 mV, 5 mV), ge0 = gi0 = 0.
  Connectivity: every (pre, post) pair, E->all and I->all, autapses allowed,
  with probability p = 0.02 (Bernoulli, as Brian2's connect(p=0.02)), spikes
  add we / wi to the target's ge / gi with no delay (seen by v on the next
  step).  --conn fixedprob uses bp.conn.FixedProb(0.02) instead (BrainPy's own
  examples: fixed out-degree round(0.02 * 4000) = 80, same mean synapse count).

Two ways to write it (--api, comma separated; the first one listed is also
copied to the top of the JSON as the headline):
  dyn  (default first) BrainPy's own COBA network, the EINet of the
       HalfProjAlignPostMg docstring shipped in brainpy 2.9 (also
       brainpy/integrators/to_math_expr_test.py): bp.dyn.LifRef +
       bp.dyn.HalfProjAlignPostMg(comm, bp.dyn.Expon, bp.dyn.COBA), scanned by
       bm.for_loop(net.step_run) inside bm.jit.  The comm is the event-driven
       sparse bp.dnn.EventCSRLinear (bm.event.csrmv: brainevent
       BinaryArray @ CSR, transpose) on a CSRConn, instead of the docstring's
       EventJitFPHomoLinear (just-in-time random connectivity), so the graph is
       a stored 2% graph like Brian2's.  Parameters set to Brian2's
       (method='euler', V_initializer N(-55, 5)).
  raw  the same brainevent kernel with no framework layer: jax.jit +
       jax.lax.scan over a pure step that follows Brian2's schedule exactly
       (state update -> threshold -> synapses -> reset, refractoriness by
       integer steps).  Separates BrainPy's framework cost from the kernel and
       checks the dyn rates.

Differences of dyn from Brian2 (raw has none beyond the random streams):
  * BrainPy's AlignPost Expon decays g *before* the neuron integrates, and
    the projection adds the spikes of step t-1 before that decay, so the
    conductance v sees is exactly (1 - dt/tau) x Brian2's (0.98 for ge, 0.99
    for gi): synapses about 2% / 1% weaker.  That is BrainPy's library
    semantics; the weights are not rescaled to hide it.
  * LifRef's refractoriness is (t - t_last_spike) <= tau_ref in float time;
    tau_ref = 5 - dt/2 ms makes it hold v for exactly the 49 steps after the
    spike step, as Brian2's 5 ms does (tau_ref = 5 would be 49 or 50 steps
    depending on float rounding).
  * LifRef fires on v >= Vt (Brian2: v > Vt): no measurable effect.

Timing: build, then a warmup run of --warmup_ms from t = 0 (compile + run,
untimed; its rates are reported, comparable with Brian2's rates from t = 0),
then one untimed run of --duration_ms that compiles the timed program (unless
it is the warmup's length), then --reps timed runs of --duration_ms each,
each ended by jax.block_until_ready.  rtf = wall seconds / model seconds (< 1
is faster than real time).  Rates are spikes / (neurons x model seconds) over
the timed runs.  Only per-step E and I spike counts leave the device.

brainevent's default GPU backend ('cuda_raw') compiles CUDA kernels with nvcc
on first use; if it fails the script retries with --backend jax_raw by itself
(--no-fallback turns that off).  The backend used is in the JSON.

Usage (GPU machine, BrainPy wheels installed as for brainpy_seed.py):
  python3 -m pip install -q --no-index --no-deps --target /tmp/site WHEELS/*.whl
  PYTHONPATH=/tmp/site python3 .bench/brainpy_coba.py --out $OUT/brainpy_coba.json
  ... --api dyn,raw --duration_ms 1000 --warmup_ms 200 --reps 3 --seed 1
Writes JSON to --out (default $OUT/brainpy_coba.json, or /tmp/brainpy_coba.json).
"""

import argparse
import contextlib
import json
import os
import sys
import time
import traceback

import numpy as np

NE, NI = 3200, 800
N = NE + NI
P = dict(
    taum=20.0,
    taue=5.0,
    taui=10.0,
    Vt=-50.0,
    Vr=-60.0,
    El=-60.0,
    Ee=0.0,
    Ei=-80.0,
    I=20.0,
    refractory=5.0,
    we=6.0 / 10.0,
    wi=67.0 / 10.0,
    p=0.02,
    v0_mean=-55.0,
    v0_sd=5.0,
)


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------
# connectivity: presynaptic-major CSR (indices = post ids, indptr over pre)
# --------------------------------------------------------------------------
def build_conn(kind, seed):
    """{'E': (indices, indptr), 'I': (indices, indptr)} as int32 numpy."""
    out = {}
    if kind == "bernoulli":
        rng = np.random.default_rng(seed)
        for name, n_pre in (("E", NE), ("I", NI)):
            m = rng.random((n_pre, N)) < P["p"]  # every pair, autapses allowed
            indptr = np.concatenate([[0], np.cumsum(m.sum(1))]).astype(np.int32)
            indices = np.nonzero(m)[1].astype(np.int32)  # row-major: grouped by pre
            out[name] = (indices, indptr)
    elif kind == "fixedprob":
        import brainpy as bp

        for k, (name, n_pre) in enumerate((("E", NE), ("I", NI))):
            c = bp.conn.FixedProb(P["p"], include_self=True, seed=seed + k, pre=n_pre, post=N)
            indices, indptr = c.require("csr")
            out[name] = (np.asarray(indices, np.int32), np.asarray(indptr, np.int32))
    else:
        raise ValueError(kind)
    return out


# --------------------------------------------------------------------------
# api = dyn : BrainPy's own COBA network (bp.dyn object API)
# --------------------------------------------------------------------------
def build_dyn(seed, conn, dt):
    import brainpy as bp
    import brainpy.math as bm

    class EINet(bp.DynSysGroup):
        def __init__(self):
            super().__init__()
            self.N = bp.dyn.LifRef(
                N,
                V_rest=P["El"],
                V_th=P["Vt"],
                V_reset=P["Vr"],
                tau=P["taum"],
                tau_ref=P["refractory"] - dt / 2,
                method="euler",
                V_initializer=bp.init.Normal(P["v0_mean"], P["v0_sd"]),
            )
            ie, pe = conn["E"]
            ii, pi = conn["I"]
            self.E = bp.dyn.HalfProjAlignPostMg(
                comm=bp.dnn.EventCSRLinear(bp.conn.CSRConn(ie, pe, pre=NE, post=N), weight=P["we"]),
                syn=bp.dyn.Expon.desc(size=N, tau=P["taue"], method="euler"),
                out=bp.dyn.COBA.desc(E=P["Ee"]),
                post=self.N,
            )
            self.I = bp.dyn.HalfProjAlignPostMg(
                comm=bp.dnn.EventCSRLinear(bp.conn.CSRConn(ii, pi, pre=NI, post=N), weight=P["wi"]),
                syn=bp.dyn.Expon.desc(size=N, tau=P["taui"], method="euler"),
                out=bp.dyn.COBA.desc(E=P["Ei"]),
                post=self.N,
            )

        def update(self):
            # spikes of the previous step (the docstring's VarDelay with a
            # None delay returns exactly this)
            spk = self.N.spike.value
            self.E(spk[:NE])
            self.I(spk[NE:])
            s = self.N(P["I"])  # constant 20 mV drive
            return s[:NE].sum(), s[NE:].sum()

    bm.random.seed(seed)
    net = EINet()

    @bm.jit
    def run_chunk(idx):
        return bm.for_loop(net.step_run, idx)

    k0 = [0]

    def run(T):
        idx = np.arange(k0[0], k0[0] + T)
        k0[0] += T
        return run_chunk(idx)

    return run


# --------------------------------------------------------------------------
# api = raw : pure JAX + the same brainevent kernel, Brian2's schedule
# --------------------------------------------------------------------------
def build_raw(seed, conn, dt):
    import brainevent
    import jax
    import jax.numpy as jnp

    ie, pe = conn["E"]
    ii, pi = conn["I"]
    csr_e = brainevent.CSR(
        (jnp.asarray([P["we"]], jnp.float32), jnp.asarray(ie), jnp.asarray(pe)), shape=(NE, N)
    )
    csr_i = brainevent.CSR(
        (jnp.asarray([P["wi"]], jnp.float32), jnp.asarray(ii), jnp.asarray(pi)), shape=(NI, N)
    )
    ref_steps = int(round(P["refractory"] / dt))
    ce = dt / P["taum"]
    de, di = 1.0 - dt / P["taue"], 1.0 - dt / P["taui"]

    def step(carry, _):
        v, ge, gi, last, k = carry
        # Brian2 state updater: not_refractory = (t - lastspike) >= refractory
        active = (k - last) >= ref_steps
        dv = ce * (ge * (P["Ee"] - v) + gi * (P["Ei"] - v) - (v - P["El"]) + P["I"])
        v = jnp.where(active, v + dv, v)
        ge = ge * de
        gi = gi * di
        # thresholder
        spk = (v > P["Vt"]) & active
        # synapses: on_pre ge += we / gi += wi (event-driven CSR^T s)
        ge = ge + brainevent.BinaryArray(spk[:NE]) @ csr_e
        gi = gi + brainevent.BinaryArray(spk[NE:]) @ csr_i
        # resetter
        v = jnp.where(spk, P["Vr"], v)
        last = jnp.where(spk, k, last)
        return (v, ge, gi, last, k + 1), (spk[:NE].sum(), spk[NE:].sum())

    key = jax.random.PRNGKey(seed)
    v0 = P["v0_mean"] + P["v0_sd"] * jax.random.normal(key, (N,), jnp.float32)
    state = [
        (
            v0,
            jnp.zeros((N,), jnp.float32),
            jnp.zeros((N,), jnp.float32),
            jnp.full((N,), -(10**8), jnp.int32),
            jnp.int32(0),
        )
    ]
    fns = {}

    def run(T):
        if T not in fns:
            fns[T] = jax.jit(lambda c: jax.lax.scan(step, c, None, length=T))
        state[0], counts = fns[T](state[0])
        return counts

    return run


BUILDERS = dict(dyn=build_dyn, raw=build_raw)


def rates(counts):
    ce, ci = (np.asarray(c) for c in counts)
    return ce, ci


def bench_one(api, args, conn):
    import jax

    dt = args.dt
    warm = max(1, int(round(args.warmup_ms / dt)))
    dur = max(1, int(round(args.duration_ms / dt)))
    t0 = time.perf_counter()
    run = BUILDERS[api](args.seed, conn, dt)
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    c = jax.block_until_ready(run(warm))
    t_warm = time.perf_counter() - t0
    we_, wi_ = rates(c)
    t_compile = None
    if dur != warm:  # compile the timed program
        t0 = time.perf_counter()
        jax.block_until_ready(run(dur))
        t_compile = time.perf_counter() - t0

    times, ce, ci = [], [], []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        c = jax.block_until_ready(run(dur))
        times.append(time.perf_counter() - t0)
        e, i = rates(c)
        ce.append(e)
        ci.append(i)
    model_s = dur * dt / 1000.0
    ce, ci = np.stack(ce), np.stack(ci)
    best, med = min(times), float(np.median(times))
    return dict(
        api=api,
        N=N,
        NE=NE,
        NI=NI,
        dt_ms=dt,
        duration_ms=dur * dt,
        warmup_ms=warm * dt,
        reps=args.reps,
        steps_per_run=dur,
        build_s=round(t_build, 3),
        warmup_run_s=round(t_warm, 3),  # includes its compile
        compile_plus_first_run_s=None if t_compile is None else round(t_compile, 3),
        wall_s=times,
        wall_s_best=best,
        wall_s_median=med,
        rtf_best=best / model_s,
        rtf_median=med / model_s,
        us_per_step_best=best / dur * 1e6,
        rate_e_hz=float(ce.sum() / (NE * model_s * args.reps)),
        rate_i_hz=float(ci.sum() / (NI * model_s * args.reps)),
        rate_e_hz_per_run=[float(x) for x in ce.sum(1) / (NE * model_s)],
        rate_i_hz_per_run=[float(x) for x in ci.sum(1) / (NI * model_s)],
        # from t = 0, like Brian2's 'rate_e_hz' over its first second
        rate_e_hz_warmup=float(we_.sum() / (NE * warm * dt / 1000.0)),
        rate_i_hz_warmup=float(wi_.sum() / (NI * warm * dt / 1000.0)),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration_ms", type=float, default=1000.0)
    ap.add_argument("--warmup_ms", type=float, default=200.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--platform", default=None, help="cpu / gpu / cuda; default: jax's pick")
    ap.add_argument("--out", default=None, help="JSON path")
    ap.add_argument("--api", default="dyn,raw", help="comma list of dyn, raw")
    ap.add_argument("--conn", default="bernoulli", choices=["bernoulli", "fixedprob"])
    ap.add_argument("--dt", type=float, default=0.1, help="ms")
    ap.add_argument(
        "--backend",
        default=None,
        help="brainevent backend: cuda_raw, jax_raw, cusparse (gpu) / "
        "numba, jax_raw (cpu); default: brainevent's",
    )
    ap.add_argument(
        "--no-fallback", action="store_true", help="don't retry with jax_raw when the default backend fails"
    )
    args = ap.parse_args()

    if args.platform:
        os.environ["JAX_PLATFORMS"] = args.platform
    import jax

    if args.platform:
        jax.config.update("jax_platforms", args.platform)
    import brainevent
    import brainpy as bp
    import brainpy.math as bm

    bm.set_dt(args.dt)
    platform = jax.default_backend()
    dev = jax.devices()[0]
    info = dict(
        python=sys.version.split()[0],
        jax=jax.__version__,
        brainpy=bp.__version__,
        brainevent=brainevent.__version__,
        platform=platform,
        device_kind=dev.device_kind,
        devices=[str(d) for d in jax.devices()],
    )
    log(json.dumps(info))

    if args.backend:
        brainevent.config.set_backend(platform, args.backend)
    backend = args.backend or brainevent.binary_csrmv_p.defaults.get(platform)

    t0 = time.perf_counter()
    conn = build_conn(args.conn, args.seed)
    t_conn = time.perf_counter() - t0
    n_syn = dict(E=int(conn["E"][1][-1]), I=int(conn["I"][1][-1]))
    log(f"conn {args.conn}: {n_syn['E']:,} E + {n_syn['I']:,} I synapses ({t_conn:.2f} s)")

    rows = []
    for api in args.api.split(","):
        tried = []
        while True:
            used = backend
            try:
                r = bench_one(api, args, conn)
                r.update(backend=used, conn=args.conn, n_syn_e=n_syn["E"], n_syn_i=n_syn["I"])
                if tried:
                    r["failed_backends"] = tried
                rows.append(r)
                log(
                    f"{api:4s} [{used}] {r['duration_ms']:.0f} ms x {args.reps}: "
                    f"wall best {r['wall_s_best']:.4f} s, median {r['wall_s_median']:.4f} s; "
                    f"rtf best {r['rtf_best']:.4f}, median {r['rtf_median']:.4f}; "
                    f"E {r['rate_e_hz']:.2f} Hz, I {r['rate_i_hz']:.2f} Hz "
                    f"(warmup from t=0: E {r['rate_e_hz_warmup']:.2f}, "
                    f"I {r['rate_i_hz_warmup']:.2f}); warmup run {r['warmup_run_s']} s"
                )
                break
            except Exception as e:  # record; maybe fall back to jax_raw
                msg = f"{type(e).__name__}: {str(e)[:1500]}"
                log(f"{api} backend={used} FAILED: {msg}")
                traceback.print_exc(limit=3)
                tried.append(dict(backend=used, error=msg))
                if not args.no_fallback and used != "jax_raw":
                    backend = "jax_raw"
                    brainevent.config.set_backend(platform, backend)
                    continue
                rows.append(dict(api=api, failed=tried))
                break
        with contextlib.suppress(Exception):
            jax.clear_caches()

    log("\n| api | backend | wall s best | wall s median | rtf best | rtf median | E Hz | I Hz |")
    log("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "failed" in r:
            log(f"| {r['api']} | - | FAILED | | | | | |")
        else:
            log(
                f"| {r['api']} | {r['backend']} | {r['wall_s_best']:.4f} | "
                f"{r['wall_s_median']:.4f} | {r['rtf_best']:.4f} | "
                f"{r['rtf_median']:.4f} | {r['rate_e_hz']:.2f} | {r['rate_i_hz']:.2f} |"
            )

    res = dict(
        model="COBA",
        variant="drive",
        params=P,
        conn=args.conn,
        n_syn_e=n_syn["E"],
        n_syn_i=n_syn["I"],
        seed=args.seed,
        info=info,
        rows=rows,
    )
    ok = [r for r in rows if "failed" not in r]
    if ok:  # headline: the first api that ran
        h = ok[0]
        res.update(
            {
                k: h[k]
                for k in (
                    "api",
                    "N",
                    "dt_ms",
                    "duration_ms",
                    "wall_s",
                    "wall_s_best",
                    "wall_s_median",
                    "rtf_best",
                    "rtf_median",
                    "rate_e_hz",
                    "rate_i_hz",
                    "backend",
                )
            }
        )
    res.update(platform=platform, device_kind=dev.device_kind, brainpy=bp.__version__, jax=jax.__version__)
    fn = args.out or os.path.join(os.environ.get("OUT") or "/tmp", "brainpy_coba.json")
    os.makedirs(os.path.dirname(os.path.abspath(fn)), exist_ok=True)
    with open(fn, "w") as f:
        json.dump(res, f, indent=1)
    log("wrote", fn)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
