"""Development probe (GPU): what does a Pallas (Triton) call cost?

    PYTHONPATH=. python3 scripts/diag_launch.py [VARIANTS]   empty kernels
    PYTHONPATH=. python3 scripts/diag_launch.py stdp[:out][:in]   event_stdp, body cut

Empty kernels (the body only reads its program id) that differ in one thing
each: a large operand or not, read-only or aliased to the output, 1-D
whole-array or 2-D blocked (session 6, H200: 0.86 us each, whatever the
operand). `stdp:<parts>` times `kernels.event_stdp` with only those parts
of its body; run one variant per process, since XLA reuses the first
compiled Triton kernel of a name within a process (which made session 5
read a "fixed ~29 us"). Each runs R times in a jitted fori_loop under the
profiler; prints device us per call for every event.
"""

import glob
import os
import sys
import tempfile

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profile_step import device_totals  # noqa: E402

R = 50
WHOLE = pl.no_block_spec


def device_events(fn, arg):
    """{event name: device us per call} for fn(arg) (R calls inside)."""
    jax.block_until_ready(fn(arg()))
    a = arg()
    jax.block_until_ready(a)
    d = tempfile.mkdtemp()
    with jax.profiler.trace(d, create_perfetto_trace=True):
        jax.block_until_ready(fn(a))
    (path,) = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)
    total, _, _ = device_totals(path)
    return {name: us / R for name, us in total.most_common(6)}


def empty(*refs):
    del refs
    pl.program_id(0)


def call(big, variant, grid=625):
    """One empty pallas_call; returns the new `big` (the loop carry)."""
    small = jnp.zeros((1,), jnp.int32)
    params = plgpu.CompilerParams(num_warps=4, num_stages=1)
    if variant == "alias":  # big in, aliased to the output (event_stdp's shape)
        return pl.pallas_call(
            empty,
            out_shape=jax.ShapeDtypeStruct(big.shape, big.dtype),
            grid=(grid,),
            in_specs=[WHOLE, WHOLE],
            out_specs=WHOLE,
            input_output_aliases={1: 0},
            compiler_params=params,
            name="v_alias",
        )(small, big)
    if variant == "alias_blocked":  # big as (rows, 32) blocks, aliased (gather_stdp's shape)
        b2 = big.reshape(-1, 32)
        out = pl.pallas_call(
            empty,
            out_shape=jax.ShapeDtypeStruct(b2.shape, b2.dtype),
            grid=(b2.shape[0] // 128,),
            in_specs=[WHOLE, pl.BlockSpec((128, 32), lambda i: (i, 0))],
            out_specs=pl.BlockSpec((128, 32), lambda i: (i, 0)),
            input_output_aliases={1: 0},
            compiler_params=params,
            name="v_alias_blocked",
        )(small, b2)
        return out.reshape(-1)
    if variant == "readonly":  # big read-only, small output
        out = pl.pallas_call(
            empty,
            out_shape=jax.ShapeDtypeStruct((1,), jnp.int32),
            grid=(grid,),
            in_specs=[WHOLE, WHOLE],
            out_specs=WHOLE,
            compiler_params=params,
            name="v_readonly",
        )(small, big)
        return big + out[0].astype(big.dtype) * 0
    if variant == "small":  # no big operand at all
        out = pl.pallas_call(
            empty,
            out_shape=jax.ShapeDtypeStruct((1,), jnp.int32),
            grid=(grid,),
            in_specs=[WHOLE],
            out_specs=WHOLE,
            compiler_params=params,
            name="v_small",
        )(small)
        return big.at[0].add(out[0].astype(big.dtype) * 0)
    raise ValueError(variant)


def stdp(parts):
    """kernels.event_stdp alone, its body cut to `parts` (set before any compile:
    XLA may reuse a compiled Triton kernel of the same name within a process)."""
    from jbrain import brain, kernels, plasticity, synapses
    from jbrain.config import BrainConfig

    kernels._EVENT_PARTS = parts
    n = 200_000
    cfg = BrainConfig(n_neurons=n, propagation="event", plasticity=True)
    wiring, st = brain.init_brain(cfg, seed=3)
    s = (jax.random.uniform(jax.random.key(0), (n,)) < 0.05).astype(jnp.uint8)
    x = jax.random.exponential(jax.random.key(1), (n,)) * 0.5
    ltp, ltd, _, _ = plasticity.trace_step(cfg, x, x, s)
    raw, count = kernels.spike_list(s, capacity=cfg.spike_capacity)
    w0 = synapses.to_pre_major(wiring, st.weights)

    def body(i, w):
        return kernels.event_stdp(wiring.pre, wiring.out_post, w, s, raw, count, ltp, ltd, w_max=cfg.w_max)

    loop = jax.jit(lambda w: jax.lax.fori_loop(0, R, body, w), donate_argnums=0)
    ev = device_events(loop, lambda: jnp.array(w0))
    top = "  ".join(f"{k[:22]}={v:.2f}" for k, v in ev.items())
    print(f"event_stdp parts={'+'.join(parts) or 'none':7s} spikes={int(count)}  {top}", flush=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1].startswith("stdp"):
        parts = sys.argv[1].split(":")[1:] if ":" in sys.argv[1] else []
        return stdp(tuple(p for p in parts if p))
    print("device:", jax.devices()[0].device_kind, "XLA_FLAGS:", os.environ.get("XLA_FLAGS", ""), flush=True)
    variants = ["small", "readonly", "alias", "alias_blocked"]
    if len(sys.argv) > 1:
        variants = sys.argv[1].split(",")
    for size in (6_400_000, 32_000_000):
        for variant in variants:
            loop = jax.jit(
                lambda b, v=variant: jax.lax.fori_loop(0, R, lambda i, x: call(x, v), b), donate_argnums=0
            )
            ev = device_events(loop, lambda s=size: jnp.ones((s,), jnp.float32))
            top = "  ".join(f"{k[:22]}={v:.2f}" for k, v in ev.items())
            total = sum(ev.values())
            print(f"size={size:>9d} {variant:14s} total={total:7.2f} us  {top}", flush=True)


if __name__ == "__main__":
    main()
