"""The "pallas_gpu" backend: Pallas Mosaic GPU kernels for NVIDIA GPUs.

Three kernels, each bit-exact with its XLA counterpart (tests compare them
compiled, under the `gpu` pytest marker):

  push_event   W @ s of an event projection with no spike list: each warp
               votes on its 32 neurons' spikes and walks the ones that fired,
               one lane per out-synapse, adding the K weights (int32 fixed
               point, `synapses.quantize`) into the post accumulator with
               atomics. Integer sums are order-free, so the result is XLA's
               `propagate_event` exactly (that takes a spike list, a gather
               and a scatter: three kernels and a mask).
  spike_list   the neurons that fired, one kernel (XLA's takes four); eager
               STDP walks it.
  replay_stdp  deferred STDP (`plasticity.deferred_step`) over the rows of
               the neurons that fired (each warp votes on its 32, as
               push_event does; or over a spike list) and a round-robin
               block of rows, one kernel per step, which also pushes the
               spikers' new weights (W @ s, as push_event) and advances
               the round robin.

Why SIMT code: Pallas Mosaic GPU (jax.experimental.pallas.mosaic_gpu, the
supported GPU route; Pallas's Triton lowering is deprecated in jax 0.11)
works on warpgroup-wide tiles and has no per-lane gather or scatter, which
is all a sparse brain does. `plgpu.inline_mgpu` hands a kernel body the raw
global-memory refs, and the bodies here emit per-thread MLIR through `_T`:
loads and stores at computed indices, `red`/`atom` atomics, warp votes.
Every kernel runs in CTAs of 128 threads (one warpgroup) over a 1-D grid.

`import_error()` says why the module is unusable on a jax without Mosaic
GPU (the plan then falls back to the "xla" backend with one warning).
"""

from __future__ import annotations

import contextlib
import functools
import math

import jax
import jax.numpy as jnp

from jbrain import synapses

IMPORT_ERROR: str | None = None  # why Mosaic GPU failed to import (`import_error`)
_imported = False


def import_error() -> str | None:
    """Imports Mosaic GPU's modules into this module on first call (~0.2 s
    that a CPU run never pays) and returns why that failed, or None."""
    global IMPORT_ERROR, _imported, ir, arith, gpu, llvm, memref, scf, pl, mu, plgpu
    if not _imported and IMPORT_ERROR is None:
        _imported = True
        try:
            from jax._src.lib.mlir import ir
            from jax._src.lib.mlir.dialects import arith, gpu, llvm, memref, scf
            from jax.experimental import pallas as pl
            from jax.experimental.mosaic.gpu import utils as mu
            from jax.experimental.pallas import mosaic_gpu as plgpu
        except ImportError as e:  # a jax without Pallas's Mosaic GPU backend
            IMPORT_ERROR = f"{type(e).__name__}: {e}"
    return IMPORT_ERROR


def _require() -> None:
    if import_error() is not None:
        raise RuntimeError(f"jbrain's GPU kernels need Pallas Mosaic GPU ({IMPORT_ERROR}): use --backend=xla")


CTA = 128  # threads per CTA (one warpgroup: what a Mosaic GPU program runs on)
WARP = 32
REPLAY_CTAS = 1024  # `replay_stdp`'s grid at most: its threads loop over the rows


class _T:
    """One CUDA thread's view, as MLIR emitters (call inside an inline_mgpu
    body). Integers are i32 (uint32 data too: shifts and compares say which),
    floats f32; `ref` arguments are the kernel's global-memory memrefs."""

    def __init__(self):
        self.i32 = ir.IntegerType.get_signless(32)
        self.f32 = ir.F32Type.get()
        self.index = ir.IndexType.get()
        block = arith.index_cast(self.i32, gpu.block_dim(gpu.Dimension.x))
        self.tid = arith.index_cast(self.i32, gpu.thread_id(gpu.Dimension.x))
        cta = arith.index_cast(self.i32, gpu.block_id(gpu.Dimension.x))
        self.gid = arith.addi(arith.muli(cta, block), self.tid)
        self.lane = arith.andi(self.tid, self.c(WARP - 1))

    # constants and arithmetic
    def c(self, v: int | float):
        return mu.c(v, self.f32 if isinstance(v, float) else self.i32)

    def add(self, a, b):
        return arith.addi(a, b)

    def sub(self, a, b):
        return arith.subi(a, b)

    def mul(self, a, b):
        return arith.muli(a, b)

    def lt(self, a, b):  # signed
        return arith.cmpi(arith.CmpIPredicate.slt, a, b)

    def ne(self, a, b):
        return arith.cmpi(arith.CmpIPredicate.ne, a, b)

    def eq(self, a, b):
        return arith.cmpi(arith.CmpIPredicate.eq, a, b)

    def min(self, a, b):
        return arith.minsi(a, b)

    def max(self, a, b):
        return arith.maxsi(a, b)

    def select(self, cond, a, b):
        return arith.select(cond, a, b)

    def both(self, a, b):
        return arith.andi(a, b)

    def asm(self, text: str, constraints: str, *args, result=None):
        return llvm.inline_asm(
            result or self.i32, list(args), text, constraints, has_side_effects=False, asm_dialect=0
        )

    def quantize(self, w):
        """`synapses.quantize`: f32 weight -> int32 fixed point, round half up
        (w * 2**F is exact, so an FMA gives the same integer)."""
        scale = self.c(float(2**synapses.WEIGHT_FRAC_BITS))
        return arith.fptosi(self.i32, arith.addf(arith.mulf(w, scale), self.c(0.5)))

    def mul_rn(self, a, b):
        """a * b in f32, rounded on its own (never contracted into an FMA)."""
        return self.asm("mul.rn.f32 $0, $1, $2;", "=f,f,f", a, b, result=self.f32)

    # memory
    def load(self, ref, i):
        return memref.load(ref, [arith.index_cast(self.index, i)])

    def store(self, ref, i, v) -> None:
        memref.store(v, ref, [arith.index_cast(self.index, i)])

    def _ptr(self, ref, i):
        return mu.getelementptr(mu.memref_ptr(ref), [i], self.i32)

    def red_add(self, ref, i, v) -> None:
        """ref[i] += v (int32, atomic, no result)."""
        llvm.inline_asm(
            ir.Type.parse("!llvm.void"), [self._ptr(ref, i), v], "red.add.s32 [$0], $1;", "l,r",
            has_side_effects=True,
        )  # fmt: skip

    def atom_add(self, ref, i, v):
        """old = ref[i]; ref[i] += v (int32, atomic); returns old."""
        return llvm.inline_asm(
            self.i32, [self._ptr(ref, i), v], "atom.add.s32 $0, [$1], $2;", "=r,l,r", has_side_effects=True
        )

    # the warp
    def ballot(self, pred):
        """Bit l: lane l's pred (all 32 lanes vote)."""
        x = arith.extui(self.i32, pred)
        return self.asm(
            "{ .reg .pred p; setp.ne.u32 p, $1, 0; vote.sync.ballot.b32 $0, p, 0xffffffff; }", "=r,r", x
        )

    def popc(self, x):
        return self.asm("popc.b32 $0, $1;", "=r,r", x)

    def lowest_bit(self, x):
        """Index of x's lowest set bit (x != 0)."""
        return self.asm("{ .reg .b32 r; brev.b32 r, $1; clz.b32 $0, r; }", "=r,r", x)

    def from_lane(self, x, lane: int):
        return mu._warp_bcast(x, lane)

    # control flow
    def when(self, cond):
        """`with t.when(cond):` emits the block under scf.if."""
        return mu.when(cond)

    def if_else(self, cond, then, otherwise):
        """scf.if with one i32 result: then() where cond, else otherwise()."""
        op = scf.IfOp(cond, [self.i32], has_else=True)
        with ir.InsertionPoint(op.then_block):
            scf.yield_([then()])
        with ir.InsertionPoint(op.else_block):
            scf.yield_([otherwise()])
        return op.result

    @contextlib.contextmanager
    def rows(self, first, end, stride: int):
        """for r in range(first, end, stride) (i32; end may be dynamic)."""
        op = scf.ForOp(first, end, self.c(stride))
        with ir.InsertionPoint(op.body):
            yield op.induction_variable
            scf.yield_([])

    def loop(self, count, carry):
        """for _ in range(count) with one i32 carry (mu.fori)."""
        return mu.fori(count, carry)


def _call(body, n_threads: int, args, inout, out_shape, name: str):
    """Run `body(t, *refs)` on ceil(n_threads / CTA) CTAs. t: `_T`; refs:
    global-memory memrefs of `args` (read), then of `inout` (arrays the
    kernel updates in place: passed as mutable jax Refs, which a Mosaic GPU
    kernel aliases in and out), then of fresh outputs of `out_shape`.
    Returns (the updated `inout` arrays, the outputs)."""
    refs = [jax.new_ref(x) for x in inout]

    def kernel(*all_refs):
        @plgpu.inline_mgpu(arg_types=tuple(plgpu.RefType() for _ in all_refs))
        def simt(ctx, *raw):
            del ctx
            body(_T(), *raw)

        simt(*all_refs)

    mesh = plgpu.Mesh(grid=(max(1, -(-n_threads // CTA)),), grid_names=("cta",))
    outs = pl.kernel(
        kernel, out_type=tuple(out_shape), mesh=mesh, compiler_params=plgpu.CompilerParams(), name=name
    )(*args, *refs)
    return [r[...] for r in refs], list(outs)


def _spike(t: _T, ref, n: int, i=None):
    """Did neuron i (default: this thread's gid) fire? (n,) uint8 spike ref."""
    i = t.gid if i is None else i
    inside = t.lt(i, t.c(n))
    s = t.load(ref, t.min(i, t.c(n - 1)))
    return t.both(inside, arith.cmpi(arith.CmpIPredicate.ne, s, mu.c(0, s.type)))


PUSH_AT_ONCE = 4  # spikers a warp reads before it adds at K <= 32 (loads in flight, not one latency each)


@jax.jit
def push_event(
    spikes: jax.Array, out_post: jax.Array, weights_pre: jax.Array, zero: jax.Array, stale: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(acc, stale zeroed): acc (n_post,) int32 is `zero` (all zeros on entry)
    plus the fixed-point sum of the out-weights of the neurons that fired,
    acc[out_post[j, k]] += quantize(w[j*K + k]) for every j with spikes[j];
    spikes (N,) uint8; out_post (N, K) int32; weights_pre (N*K,) f32
    (presynaptic order). `synapses.from_fixed(acc)` gives W @ s.

    The same launch also zeroes `stale` (n_post,) int32, the accumulator of
    the step before, which that step's neuron update has read: a burst
    carries the two buffers (`push_scratch`) and swaps them every step, so
    no step copies a fresh zero accumulator in (a kernel of its own).

    Each warp votes on its 32 neurons, then takes its spikers PUSH_AT_ONCE
    at a time, lowest lane first: lane l reads out-synapses l, l + 32, ...
    of each (one coalesced read of a row), all the reads before any add,
    so a warp whose neighbours fired together (the ring's excitation
    clusters spikes) waits one memory latency per PUSH_AT_ONCE spikers, not
    per spiker."""
    _require()
    n, k = out_post.shape
    n_post = zero.shape[0]
    chunks = -(-k // WARP)
    at_once = max(1, PUSH_AT_ONCE // chunks)  # registers: 2 per chunk per spiker in flight
    threads = -(-n // CTA) * CTA

    def body(t, s_ref, post_ref, w_ref, acc_ref, stale_ref):
        with t.rows(t.gid, t.c(n_post), threads) as i:
            t.store(stale_ref, i, t.c(0))
        fired = t.ballot(_spike(t, s_ref, n))
        first = t.sub(t.gid, t.lane)
        rounds = arith.divui(t.add(t.popc(fired), t.c(at_once - 1)), t.c(at_once))

        @t.loop(rounds, fired)
        def _(i, left):
            del i
            pending = []
            for _ in range(at_once):
                valid = t.ne(left, t.c(0))
                pre = t.add(first, t.select(valid, t.lowest_bit(left), t.c(0)))
                left = arith.andi(left, t.sub(left, t.c(1)))  # 0 stays 0
                for chunk in range(chunks):
                    slot = t.add(t.lane, t.c(chunk * WARP))
                    ok = valid if k % WARP == 0 else t.both(valid, t.lt(slot, t.c(k)))
                    e = t.select(ok, t.add(t.mul(pre, t.c(k)), slot), t.c(0))
                    pending.append((ok, t.load(post_ref, e), t.load(w_ref, e)))
            for ok, post, w in pending:
                with t.when(ok):
                    t.red_add(acc_ref, post, t.quantize(w))
            return left

    (acc, stale), _ = _call(
        body, n, (spikes, out_post.reshape(-1), weights_pre), [zero, stale], [], name="jbrain_push_event"
    )
    return acc, stale


def push_scratch(n_post: int) -> tuple[jax.Array, jax.Array]:
    """`push_event`'s two accumulators at a burst's start: (zero, stale)."""
    return jnp.zeros((n_post,), jnp.int32), jnp.zeros((n_post,), jnp.int32)


LIST_BYTES = 8  # neurons per lane of `spike_list`: a warp lists 256 with one atomic


@functools.partial(jax.jit, static_argnames=("capacity",))
def spike_list(spikes: jax.Array, *, capacity: int) -> tuple[jax.Array, jax.Array]:
    """(ids (C,) int32, count () int32): the neurons that fired, one kernel.

    Lane l of a warp takes LIST_BYTES adjacent neurons; a scan over the
    warp's lanes (shuffles) gives each lane the spikers before it, lane 0
    reserves the warp's slice of the list with one atomic add on the
    counter (one per 256 neurons: one per 32 contended too much), and each
    lane writes its spikers' ids in order from there. The slices' order
    follows the atomics, so the list is in no fixed order. Every consumer is
    order-free: `event_stdp` writes disjoint weights and the scatter-add sums
    in int32. Only positions < min(count, C) are written; `listed` masks the
    rest. XLA's `synapses.spike_list` (ascending, padded) takes four
    kernels: a bitmask, popcounts, a prefix by matmul, a scatter.
    """
    _require()
    n = spikes.shape[0]

    def body(t, s_ref, count_ref, ids_ref):
        first = t.mul(t.gid, t.c(LIST_BYTES))
        fired = []
        for b in range(LIST_BYTES):
            i = t.add(first, t.c(b))
            fired.append(_spike(t, s_ref, n, i))
        mine = functools.reduce(t.add, [arith.extui(t.i32, f) for f in fired])
        upto = mine  # inclusive scan over the warp's lanes
        for d in (1, 2, 4, 8, 16):
            below = t.asm(f"shfl.sync.up.b32 $0, $1, {d}, 0, 0xffffffff;", "=r,r", upto)
            upto = t.select(t.lt(t.lane, t.c(d)), upto, t.add(upto, below))
        total = t.from_lane(upto, WARP - 1)
        start = t.if_else(
            t.both(t.eq(t.lane, t.c(0)), t.ne(total, t.c(0))),
            lambda: t.atom_add(count_ref, t.c(0), total),
            lambda: t.c(0),
        )
        pos = t.sub(t.add(t.from_lane(start, 0), upto), mine)
        for b, f in enumerate(fired):
            with t.when(t.both(f, t.lt(pos, t.c(capacity)))):
                t.store(ids_ref, pos, t.add(first, t.c(b)))
            pos = t.add(pos, arith.extui(t.i32, f))

    (count,), (ids,) = _call(
        body, -(-n // LIST_BYTES), (spikes,), [jnp.zeros((1,), jnp.int32)],
        [jax.ShapeDtypeStruct((capacity,), jnp.int32)], name="jbrain_spike_list",
    )  # fmt: skip
    return ids, count[0]


def listed(ids: jax.Array, count: jax.Array, n: int) -> jax.Array:
    """`spike_list`'s ids with the unwritten tail set to n (XLA's padding)."""
    return jnp.where(jnp.arange(ids.shape[0]) < count, ids, n)


@functools.partial(
    jax.jit,
    static_argnames=("block", "extra", "history", "a_plus", "w_max"),
    donate_argnames=("weights_pre",),
)
def replay_stdp(
    out_post: jax.Array,
    weights_pre: jax.Array,
    hist: jax.Array,
    pending: jax.Array,
    anchor: jax.Array,
    decay: jax.Array,
    spikes: jax.Array,
    ltd: jax.Array,
    start: jax.Array | None,
    ids: jax.Array | None = None,
    n_ids: jax.Array | None = None,
    scratch: tuple[jax.Array, jax.Array] | None = None,
    phase: tuple[jax.Array, jax.Array] | None = None,
    *,
    block: int,
    extra: int,
    history: int,
    a_plus: float,
    w_max: float,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None, jax.Array | None]:
    """Deferred STDP (`plasticity.deferred_step`) in place, one kernel, bit
    for bit `plasticity._replay_rows`. Two sets of out-rows: the listed
    neurons ids[:n_ids] (replay, then LTD), and rows [start, start + block)
    that did not fire (replay only; `block` = 0: none). For out-row j, e =
    j*K + k, post i = out_post[j, k], window g = pending[j] + extra:
        x = anchor[j]
        for m < g:  if bit g-1-m of hist[i]:  w = min(w + a_plus*x, w_max)
                    x = x * decay
        w = clip(w - ltd[i], 0, w_max)                      (listed rows)
    Products are rounded on their own (PTX mul.rn: never an FMA with w) and
    `decay` is an operand (a constant could be folded into decay**m), so x
    follows `trace_step`'s decay exactly. A row takes L = min(32, K rounded
    up to a power of two) adjacent lanes, lane l its slots l, l + L, ...;
    the grid (at most REPLAY_CTAS CTAs) strides over the listed rows up to
    n_ids (not the list's capacity), then the block. Rows are disjoint: no
    atomics for the weights.

    Without `ids` (None) the kernel lists nothing: each warp votes on its 32
    neurons' `spikes`, as `push_event` does, and replays the rows of those
    that fired (32 lanes a row), then takes rows of the block a warp at a
    time. No spike list, so no list kernel, no zeroed counter and no
    overflow; the rows and the arithmetic are the listed mode's.

    With `scratch` = (zero, stale), `push_event`'s two accumulators, the
    same launch also pushes the listed rows: acc[i] += quantize(w) for every
    listed out-synapse after its update (atomics), so acc is
    `synapses.propagate_event` of the new weights over the list, in int32
    and so bit for bit; and it zeroes `stale` for the next step. One kernel
    instead of the replay, XLA's gather and scatter-add and a fresh zero
    accumulator: the listed rows are in registers already.

    With `phase` = (p, spare) instead of `start` (None), the block starts
    at min(p * block, N - block) (`deferred_step`'s round robin, p = step
    mod history) and the kernel writes (p + 1) mod history into `spare`,
    which the burst carries to the next step, swapped with p: computed by
    XLA, the start was a one-thread kernel of its own every step.

    out_post (N*K,) int32; weights_pre (N*K,) f32; hist (N_post,) uint32;
    pending (N,) int32 (g <= history <= 32); anchor (N,), ltd (N_post,) f32;
    decay (1,) f32; spikes (N,) uint8; ids (C,) int32; n_ids, start, p,
    spare (1,) int32; zero, stale (N_post,) int32. Returns (the weights,
    (acc, stale zeroed) or None, the next phase or None)."""
    _require()
    if history > 32:
        raise ValueError(f"replay_stdp: history {history} > 32 bits of a uint32")
    n = pending.shape[0]
    n_post = hist.shape[0]
    k = out_post.shape[0] // n
    vote = ids is None
    cap = 0 if vote else ids.shape[0]
    lanes = WARP if vote else min(WARP, 1 << max(0, math.ceil(math.log2(k))))
    if phase is not None and not (block and history & (history - 1) == 0):
        raise ValueError("replay_stdp: a phase needs a block and a power-of-two history")
    names = ["post", "hist", "pend", "anchor", "decay", "s", "ltd", "start" if phase is None else "phase"]
    names += ([] if vote else ["ids", "nid"]) + ["w"] + (["acc", "stale"] if scratch is not None else [])
    names += [] if phase is None else ["phase_out"]

    def body(t, *refs):
        r = dict(zip(names, refs, strict=True))
        post_ref, hist_ref, pend_ref, anchor_ref, w_ref = r["post"], r["hist"], r["pend"], r["anchor"], r["w"]
        push = scratch is not None
        if push:
            acc_ref = r["acc"]
            with t.rows(t.gid, t.c(n_post), grid) as i:
                t.store(r["stale"], i, t.c(0))
        decay_ref, s_ref, ltd_ref = r["decay"], r["s"], r["ltd"]
        d = t.load(decay_ref, t.c(0))
        a = t.c(float(a_plus))
        cap_w = t.c(float(w_max))
        first_slot = arith.andi(t.gid, t.c(lanes - 1))

        def replay(j, listed: bool):
            g = t.add(t.load(pend_ref, j), t.c(extra))
            x0 = t.load(anchor_ref, j)
            for chunk in range(-(-k // lanes)):
                slot = t.add(first_slot, t.c(chunk * lanes))
                with contextlib.nullcontext() if k % lanes == 0 else t.when(t.lt(slot, t.c(k))):
                    e = t.add(t.mul(j, t.c(k)), slot)
                    post = t.load(post_ref, e)
                    w = t.load(w_ref, e)
                    # the window's oldest step at bit 31, the next ones below it, zeros after
                    h = arith.shli(t.load(hist_ref, post), t.sub(t.c(32), t.max(g, t.c(1))))

                    # the window's g steps only (past them h is 0: nothing changes); g is
                    # the row's, so a row's lanes loop alike
                    @t.loop(g, [w, h, x0])
                    def window(m, carry):
                        del m
                        w, h, x = carry
                        up = arith.minimumf(arith.addf(w, t.mul_rn(a, x)), cap_w)  # w, a_plus >= 0
                        return [t.select(t.lt(h, t.c(0)), up, w), arith.shli(h, t.c(1)), t.mul_rn(x, d)]

                    w = window.results[0]
                    if listed:
                        down = t.load(ltd_ref, post)
                        w = arith.minimumf(arith.maximumf(arith.subf(w, down), t.c(0.0)), cap_w)
                    t.store(w_ref, e, w)
                    if listed and push:  # into the post's sum
                        t.red_add(acc_ref, post, t.quantize(w))

        # grid-stride: this thread's row slot, every `stride` rows
        slot0 = arith.shrui(t.gid, t.c(lanes.bit_length() - 1))
        if vote:  # the warp's spikers, lowest lane first (the ballot is the whole warp's)
            fired = t.ballot(_spike(t, s_ref, n))
            first = t.sub(t.gid, t.lane)

            @t.loop(t.popc(fired), fired)
            def _(i, left):
                del i
                replay(t.add(first, t.lowest_bit(left)), listed=True)
                return arith.andi(left, t.sub(left, t.c(1)))

        else:
            with t.rows(slot0, t.min(t.load(r["nid"], t.c(0)), t.c(cap)), stride) as c:
                replay(t.load(r["ids"], c), listed=True)
        if block:
            if phase is not None:  # the block's start from the phase p, and p + 1 for the next step
                p = t.load(r["phase"], t.c(0))
                start0 = t.min(t.mul(p, t.c(block)), t.c(n - block))
                with t.when(t.eq(t.gid, t.c(0))):
                    t.store(r["phase_out"], t.c(0), arith.andi(t.add(p, t.c(1)), t.c(history - 1)))
            else:
                start0 = t.load(r["start"], t.c(0))
            with t.rows(slot0, t.c(block), stride) as c:
                j = t.add(start0, c)
                # rows that fired are the listed rows' (replayed above, with LTD)
                with t.when(t.eq(arith.extui(t.i32, t.load(s_ref, j)), t.c(0))):
                    replay(j, listed=False)

    # a thread per pre neuron to vote, else as many as the rows need (at most REPLAY_CTAS CTAs)
    threads = -(-n // WARP) * WARP if vote else min(REPLAY_CTAS * CTA, (cap + block) * lanes)
    grid = -(-threads // CTA) * CTA  # threads of the whole grid
    stride = grid // lanes  # row slots of the whole grid
    id_args = () if vote else (ids, n_ids.reshape(1))
    where, spare = (start.reshape(1), ()) if phase is None else (phase[0], phase[1:])
    (weights, *rest), _ = _call(
        body, threads, (out_post, hist, pending, anchor, decay, spikes, ltd, where, *id_args),
        [weights_pre, *(scratch or ()), *spare], [], name="jbrain_replay_stdp",
    )  # fmt: skip
    pushed = tuple(rest[:2]) if scratch is not None else None
    return weights, pushed, (rest[-1] if phase is not None else None)
