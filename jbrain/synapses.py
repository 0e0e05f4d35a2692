"""A projection's sparse synapse matrix W (post x pre) and three ways to compute W @ s.

Wiring (rule "random" between populations of one size, the seed's): K
random cyclic permutations. For each k, sigma_k = pi_k c pi_k^-1 with pi_k a
uniform random permutation and c the shift i -> i+1, so sigma_k is a random
N-cycle: no fixed points (no self-synapses) and a bijection. Synapse (i, k)
runs from pre = sigma_k(i) to post = i. Hence every neuron has exactly K
inputs (fixed fan-in) AND exactly K outputs (fixed fan-out): the row-major
BCOO gathers in fixed-width rows, and the event-driven scatter reads
fixed-width rows of the transpose with no padding. (Two of a neuron's K
inputs can share a presynaptic neuron with probability ~K^2/2N.) Other rules
(`circuit.Projection`) have a fixed fan-in only: gather and bcoo.

Paths, all returning I = W @ s_pre, (N_post,) f32:
  gather  one fused gather over the BCOO's own buffers (data, column indices),
          fixed-width rows: I_i = sum_k w[i,k] s[pre[i,k]]. Touches N*K synapses.
  event   only the out-synapses of neurons that spiked: a spike list of static
          size C (the plan's capacity), then a scatter-add of C*K weights, read
          as contiguous rows of the weights in presynaptic order
          (`to_pre_major`, the order a burst on this path works in). Touches
          ~rate*N*K synapses. If more than C neurons spike in a step, the step
          sets STATUS_SPIKE_OVERFLOW and the host re-runs the burst with a
          larger list (as JAX MD does with neighbour lists): no conditional in
          the step. Backends (jbrain/backends) implement the list and the
          scatter as kernels with the same numbers.
  bcoo    `jax.experimental.sparse` BCOO @ s (float; the reference).

gather and event accumulate in int32 fixed point (WEIGHT_FRAC_BITS), which is
associative: they agree bit for bit, on any device, whatever the atomic order.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbrain.circuit import WEIGHT_FRAC_BITS, Circuit, Population, Projection, tiles
from jbrain.state import STATUS_SPIKE_OVERFLOW, ProjectionWiring

_SCALE = float(2**WEIGHT_FRAC_BITS)


def init_projection(circuit: Circuit, index: int, key: jax.Array) -> tuple[ProjectionWiring, jax.Array]:
    """Wiring and weights of projection `index`: (ProjectionWiring,
    weights (N_post*K,) f32 ~ w_lo + U[0, 1) (w_hi - w_lo), post-major)."""
    q = circuit.projections[index]
    n_pre, n_post = span_size(circuit, q, "pre"), span_size(circuit, q, "post")
    k = q.fan_in
    k_perm, k_w = jax.random.split(key)
    out_post = None
    if q.rule == "random" and n_pre == n_post:
        pre, out_post = _cyclic_tables(k_perm, n_post, k)
    elif q.rule == "random":
        pre = jax.random.randint(k_perm, (n_post, k), 0, n_pre, jnp.int32)
    elif q.rule == "distinct":
        pre = _distinct_table(k_perm, n_pre, n_post, k)
    elif q.rule == "bernoulli":
        pre, valid = _bernoulli_table(k_perm, n_pre, n_post, q.p, k)
    elif q.rule == "one_to_one":
        pre = jnp.arange(n_post, dtype=jnp.int32)[:, None]
    elif q.rule == "classes":  # post i hears the fan_in pres of class (i // group) mod C
        classes = (jnp.arange(n_post, dtype=jnp.int32) // q.group) % (n_pre // k)
        pre = classes[:, None] * k + jnp.arange(k, dtype=jnp.int32)
    elif q.rule == "groups":
        i = jnp.arange(n_post, dtype=jnp.int32)[:, None]
        pre = (i // q.group) * q.group + jnp.arange(k, dtype=jnp.int32)
    elif q.rule == "patch":
        pre = _patch_table(circuit, q, k_perm)
    elif q.rule == "local":
        pl = circuit.population(q.pre).placement
        pre, out_post = _local_tables(k_perm, n_post // pl.width, pl.width, k, _local_reach(pl, q.radius))
    else:
        pre = _radius_table(circuit, q, k_perm)
    if q.w_lo == q.w_hi:
        weights = jnp.full((n_post * k,), q.w_hi, jnp.float32)
    else:
        weights = q.w_lo + jax.random.uniform(k_w, (n_post * k,), jnp.float32) * (q.w_hi - q.w_lo)
    if q.rule == "bernoulli":  # padding slots: pre 0 with weight 0, never plastic
        weights = jnp.where(valid.reshape(-1), weights, 0.0)
    return ProjectionWiring(pre=pre, out_post=out_post), weights


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _bernoulli_table(
    key: jax.Array, n_pre: int, n_post: int, p: float, k: int
) -> tuple[jax.Array, jax.Array]:
    """(pre (N_post, K) int32, valid (N_post, K) bool): post i has
    c_i ~ Binomial(N_pre, p) (cut at K) distinct pres, drawn without
    replacement; slots past c_i are padding (pre 0)."""
    k_count, k_rows = jax.random.split(key)
    counts = jax.random.binomial(k_count, n_pre, p, shape=(n_post,))
    counts = jnp.minimum(counts, k).astype(jnp.int32)
    # k distinct pres per row: the k largest of N_pre uniform keys (one top_k over all rows)
    _, pre = jax.lax.top_k(jax.random.uniform(k_rows, (n_post, n_pre)), k)
    pre = pre.astype(jnp.int32)
    valid = jnp.arange(k, dtype=jnp.int32)[None, :] < counts[:, None]
    return jnp.where(valid, pre, 0), valid


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _distinct_table(key: jax.Array, n_pre: int, n_post: int, k: int) -> jax.Array:
    """(N_post, K) int32: each post's K different pres, drawn without
    replacement (the K largest of N_pre uniform keys per post, sorted by
    key, not by index)."""
    _, pre = jax.lax.top_k(jax.random.uniform(key, (n_post, n_pre)), k)
    return pre.astype(jnp.int32)


def span_size(circuit: Circuit, q: Projection, end: str) -> int:
    """Neurons at the pre or post `end` of projection q (`Circuit.span`)."""
    a, b = circuit.span(q, end)
    return b - a


def _radius_table(circuit: Circuit, q: Projection, key: jax.Array) -> jax.Array:
    """(N_post, K) pre indices (within the pre span) drawn around each post's
    place on the sheet (rule "radius"), or around `clusters` places per post
    (rule "patchy": centres at uniformly drawn pre neurons, slot k around
    centre k mod clusters): offsets (dr, dc) uniform over the disc of radius
    `q.radius` cells (profile "uniform") or N(0, radius^2) per axis
    ("gaussian"), rounded to cells; the point is snapped to the nearest
    grid row of the pre population (`Placement.take`), wrapped on the pre
    span as on a torus. A post never draws itself (it steps a column away)."""
    pre_pop, post_pop = circuit.population(q.pre), circuit.population(q.post)
    pre_p, post_p = pre_pop.placement, post_pop.placement
    (a_pre, b_pre), (a_post, b_post) = circuit.span(q, "pre"), circuit.span(q, "post")
    first_pre = (a_pre - circuit.offset(q.pre)) // pre_p.width
    rows_pre = (b_pre - a_pre) // pre_p.width
    n_post, k = b_post - a_post, q.fan_in
    i = np.arange(n_post)
    if q.rule == "radius":  # around the post's own place
        first_post = (a_post - circuit.offset(q.post)) // post_p.width
        row = jnp.asarray(post_p.sheet_row(first_post + i // post_p.width), jnp.int32)[:, None]
        col = jnp.asarray(post_p.col + i % post_p.width, jnp.int32)[:, None]
    k_a, k_r = jax.random.split(key)
    if q.rule == "patchy":  # around `clusters` random places of the pre span (any post placement)
        key, k_c = jax.random.split(key)
        k_a, k_r = jax.random.split(key)
        centre = jax.random.randint(k_c, (n_post, q.clusters), 0, b_pre - a_pre, jnp.int32)
        centre = jnp.tile(centre, (1, k // q.clusters))  # slot k around centre k mod clusters
        sheet_rows = jnp.asarray(pre_p.sheet_row(np.arange(pre_p.height)), jnp.int32)
        row = sheet_rows[first_pre + centre // pre_p.width]
        col = pre_p.col + centre % pre_p.width
    if q.profile == "gaussian":
        dr = jnp.round(q.radius * jax.random.normal(k_a, (n_post, k), jnp.float32))
        dc = jnp.round(q.radius * jax.random.normal(k_r, (n_post, k), jnp.float32))
    else:
        angle = jax.random.uniform(k_a, (n_post, k), jnp.float32) * (2 * np.pi)
        rho = q.radius * jnp.sqrt(jax.random.uniform(k_r, (n_post, k), jnp.float32))
        dr, dc = jnp.round(rho * jnp.sin(angle)), jnp.round(rho * jnp.cos(angle))
    dr, dc = dr.astype(jnp.int32), dc.astype(jnp.int32)
    if q.pre == q.post:  # the cell itself: step one cell away instead
        dc = jnp.where((dr == 0) & (dc == 0), 1, dc)
    # sheet row -> nearest pre grid row: per offset o in a block of `every`
    # rows, the nearest taken row (this block, the one before or after)
    t, every = len(pre_p.take), pre_p.every
    best = []
    for o in range(every):
        cands = [(abs(o - (x + d * every)), d, j) for d in (-1, 0, 1) for j, x in enumerate(pre_p.take)]
        _, d, j = min(cands)
        best.append((d, j))
    d_tab = jnp.asarray([b[0] for b in best], jnp.int32)
    j_tab = jnp.asarray([b[1] for b in best], jnp.int32)
    rel = row + dr - pre_p.row
    block, o = jnp.floor_divide(rel, every), jnp.mod(rel, every)
    grid_row = (block + d_tab[o]) * t + j_tab[o]
    r = jnp.mod(grid_row - first_pre, rows_pre)
    c = jnp.mod(col + dc - pre_p.col, pre_p.width)
    pre = r * pre_p.width + c
    if q.pre == q.post and a_pre == a_post:  # snapped onto itself: the next column
        own = jnp.asarray(i, jnp.int32)[:, None]
        pre = jnp.where(pre == own, r * pre_p.width + jnp.mod(c + 1, pre_p.width), pre)
    return pre.astype(jnp.int32)


def _patch_table(circuit: Circuit, q: Projection, key: jax.Array) -> jax.Array:
    """(N_post, K) pre indices (within the span, pre == post) of rule
    "patch": each neuron's K partners uniform over the other neurons of its
    own patch (`circuit.tiles`), with replacement."""
    a, b = circuit.span(q, "pre")
    first = a - circuit.offset(q.pre)
    every = tiles(circuit.region_of(q.pre_region), q.group, circuit.population(q.pre).placement)
    tile = every[first : first + (b - a)]
    order = np.argsort(tile, kind="stable")  # span neurons grouped by patch
    start = np.searchsorted(tile[order], tile)  # first slot of each neuron's patch in `order`
    size = np.bincount(tile)[tile]
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)  # each neuron's own slot in `order`
    # the draw stays a jax array (traceable: checkpoints take shapes by eval_shape)
    u = jax.random.randint(key, (b - a, q.fan_in), 0, 2**30) % jnp.asarray(size - 1)[:, None]
    u = u + (u >= jnp.asarray(rank - start)[:, None])  # skip the neuron itself
    return jnp.asarray(order, jnp.int32)[jnp.asarray(start)[:, None] + u]


def _local_reach(placement, radius: float) -> tuple[int, float, float]:
    """(tile, shift radius in grid rows, in grid columns) of the "local"
    rule: tiles of t = max(1, floor(radius / 3)) cells, shifts within
    radius - t*sqrt(2) sheet cells (at least 1), converted to grid rows by
    the placement's density of rows (len(take) of every `every`)."""
    t = max(1, int(radius // 3))
    reach = max(1.0, radius - t * math.sqrt(2.0))
    return t, reach * len(placement.take) / placement.every, reach


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _local_tables(
    key: jax.Array, rows: int, width: int, k: int, reach: tuple[int, float, float]
) -> tuple[jax.Array, jax.Array]:
    """(pre (N, K), out_post (N, K)) int32 of the "local" rule on a rows x
    width grid (a torus), N = rows * width: slot k is a bijection sigma_k
    of the grid (so fan-in = fan-out = K, and the event path applies) that
    moves every cell by a short distance:
        sigma_k = shift by (dy_k, dx_k)  o  permute rows within blocks of t
                  (per column)  o  permute columns within blocks of t (per row)
    with (dy_k, dx_k) uniform over the ellipse of the shift radii (grid rows,
    grid columns) and the blocks at a random offset per slot; so each
    synapse spans less than radius sheet cells. Synapse (i, k) runs from
    pre[i, k] = sigma_k(i) to post i; out_post[j, k] = sigma_k^-1(j)."""
    t, reach_rows, reach_cols = reach
    n = rows * width

    def block_perm(kk: jax.Array, lines: int, length: int) -> jax.Array:
        """(lines, length): in each line a random permutation that keeps every
        position within its block of t (blocks start at a random offset)."""
        k_off, k_u = jax.random.split(kk)
        off = jax.random.randint(k_off, (), 0, t)
        p = (jnp.arange(length) - off) % length  # position along the line, from the offset
        block = p // t
        u = jax.random.uniform(k_u, (lines, length))
        order = jnp.argsort(block[None, :] * 2.0 + u, axis=1)  # positions, shuffled within blocks
        by_p = jnp.argsort(p)  # position p's index
        # the element at sorted slot s (index order[s]) moves to the index holding position s
        dest = (
            jnp.zeros((lines, length), jnp.int32)
            .at[jnp.arange(lines)[:, None], order]
            .set(by_p[None, :].astype(jnp.int32))
        )
        return dest  # dest[line, c] = where c goes

    def one(kk: jax.Array) -> jax.Array:
        k_c, k_r, k_a, k_d = jax.random.split(kk, 4)
        r = jnp.arange(n, dtype=jnp.int32) // width
        c = jnp.arange(n, dtype=jnp.int32) % width
        c1 = block_perm(k_c, rows, width)[r, c]
        r1 = block_perm(k_r, width, rows)[c1, r]
        angle = jax.random.uniform(k_a, ()) * (2 * jnp.pi)
        rho = jnp.sqrt(jax.random.uniform(k_d, ()))
        dy = jnp.round(rho * reach_rows * jnp.sin(angle)).astype(jnp.int32)
        dx = jnp.round(rho * reach_cols * jnp.cos(angle)).astype(jnp.int32)
        # permutations move a cell by less than t: a shift of t or more in one axis leaves no fixed point
        dx = jnp.where((jnp.abs(dy) < t) & (jnp.abs(dx) < t), t, dx)
        pre = ((r1 + dy) % rows) * width + (c1 + dx) % width
        return pre.astype(jnp.int32)

    pre = jax.lax.map(one, jax.random.split(key, k))  # (K, N)
    out = (
        jnp.zeros((k, n), jnp.int32)
        .at[jnp.arange(k)[:, None], pre]
        .set(jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (k, n)))
    )
    return pre.T, out.T


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """int32 stable argsort of uint32 keys along the last axis: one sort of
    (key << 32 | index) as uint64, ties broken by index (about 2x faster
    than NumPy's stable argsort)."""
    n = keys.shape[-1]
    both = (np.asarray(keys).astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
    both.sort(axis=-1)
    return (both & np.uint64(0xFFFFFFFF)).astype(np.int32)


def sorts_on_host() -> bool:
    """Whether the wiring's permutations sort in NumPy, through a host
    callback (`_permutation`): on CPUs. A birth partitioned over several
    devices with such callbacks stalled in their collectives (8 CPU
    devices, 2 cores), so on CPUs a sharded brain is born whole (on one
    device) and then split (experiments/bench_shard.py)."""
    return jax.default_backend() == "cpu"


def _permutation(key: jax.Array, n: int) -> jax.Array:
    """(n,) int32: `jax.random.permutation(key, n)`, the same numbers. As
    jax's shuffle: ceil(3 ln n / ln(2^32 - 1)) rounds (2 for n = 200k), each
    a stable sort of the ids by fresh 32-bit keys. On CPUs each sort runs
    in NumPy through a callback (`_stable_argsort`), several times faster
    than XLA:CPU's sort; the seed's 200k-neuron wiring sorts 64 times."""
    x = jnp.arange(n, dtype=jnp.int32)
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        key, sub = jax.random.split(key)
        bits = jax.random.bits(sub, (n,), jnp.uint32)
        if sorts_on_host():
            order = jax.pure_callback(
                _stable_argsort,
                jax.ShapeDtypeStruct((n,), jnp.int32),
                bits,
                vmap_method="broadcast_all",
            )
            x = x[order]
        else:
            _, x = jax.lax.sort_key_val(bits, x)
    return x


@functools.partial(jax.jit, static_argnums=(1, 2))
def _cyclic_tables(key: jax.Array, n: int, k: int) -> tuple[jax.Array, jax.Array]:
    def one(kk):
        perm = _permutation(kk, n)
        inv = jnp.zeros((n,), jnp.int32).at[perm].set(jnp.arange(n, dtype=jnp.int32))
        pre = perm[(inv + 1) % n]  # sigma(i)
        post = perm[(inv - 1) % n]  # sigma^-1(j)
        return pre, post

    pre, out_post = jax.lax.map(one, jax.random.split(key, k))  # (K, N) each, one permutation at a time
    return pre.T, out_post.T


def to_bcoo(wiring: ProjectionWiring, weights: jax.Array, n_pre: int) -> Any:
    """W as a `jax.experimental.sparse.BCOO` (N_post x N_pre), row-major:
    entry e = i*K + k is (i, pre[i, k]). Imported here: the module (and the
    scipy.sparse it loads) adds ~0.2 s to every launch that never uses it."""
    from jax.experimental import sparse

    n, k = wiring.pre.shape
    rows = jnp.arange(n * k, dtype=jnp.int32) // k
    idx = jnp.stack([rows, wiring.pre.reshape(-1)], axis=1)
    return sparse.BCOO((weights, idx), shape=(n, n_pre), indices_sorted=True, unique_indices=False)


def quantize(w: jax.Array) -> jax.Array:
    """f32 weight -> int32 fixed point, round half up for w >= 0.

    w * 2**F is exact, so this is the same integer in XLA and in the Mosaic
    GPU push (even if it is contracted into an FMA): all paths agree bit for bit.
    """
    return (w * _SCALE + 0.5).astype(jnp.int32)


def from_fixed(acc: jax.Array) -> jax.Array:
    return acc.astype(jnp.float32) * (1.0 / _SCALE)


def pack_spikes(spikes: jax.Array) -> jax.Array:
    """(N,) uint8/bool -> (ceil(N/32),) uint32 bitmask; neuron i is bit i%32 of word i//32.

    32x smaller than the uint8 spikes: at 1M neurons the mask (125 KB) stays in
    L1 for the random reads of the gather path.
    """
    n = spikes.shape[0]
    words = -(-n // 32)
    bits = jnp.pad((spikes != 0).astype(jnp.uint32), (0, words * 32 - n)).reshape(words, 32)
    return jnp.sum(bits << jnp.arange(32, dtype=jnp.uint32), axis=1, dtype=jnp.uint32)


def _fired(mask: jax.Array, ids: jax.Array) -> jax.Array:
    """Bit test: did neurons `ids` (any shape, int32) fire? -> bool."""
    word = mask[ids >> 5]
    return ((word >> (ids & 31).astype(jnp.uint32)) & 1) != 0


def propagate_gather(
    wiring: ProjectionWiring, weights: jax.Array, spikes: jax.Array, platform: str
) -> jax.Array:
    """I = W @ s by a fixed-width gather. spikes (N_pre,) uint8/bool -> (N_post,) f32."""
    n, k = wiring.pre.shape
    # XLA:CPU gathers bytes faster than bits; GPUs read the (N/32,) bitmask
    fired = spikes[wiring.pre] != 0 if platform == "cpu" else _fired(pack_spikes(spikes), wiring.pre)
    q = jnp.where(fired, quantize(weights.reshape(n, k)), 0)
    return from_fixed(q.sum(axis=1))


_ROW = 256  # prefix sums run as (rows, 256) @ triangular matrices


def _exclusive_prefix(x: jax.Array) -> jax.Array:
    """Exclusive prefix sum of small non-negative int32 counts (M,), x <= 32.

    jnp.cumsum lowers to an associative scan: ~2 log2(M) kernels, each a full
    pass (costly at 10M neurons). Here: two triangular matmuls in exact
    float32 (Precision.HIGHEST; every partial sum < 2**24 thanks to a hi/lo
    split of the row totals), a few kernels whatever the size.
    """
    m = x.shape[0]
    rows = -(-m // _ROW)
    xr = jnp.pad(x, (0, rows * _ROW - m)).reshape(rows, _ROW).astype(jnp.float32)
    i = jnp.arange(_ROW)
    strict_upper = (i[:, None] < i[None, :]).astype(jnp.float32)  # sum over j < col
    within = jnp.matmul(xr, strict_upper, precision=jax.lax.Precision.HIGHEST)  # (rows, ROW)
    totals = xr.sum(axis=1).astype(jnp.int32)  # <= 32 * 256
    r = jnp.arange(rows)
    before = (r[:, None] < r[None, :]).astype(jnp.float32)  # (rows, rows)
    hi, lo = (totals >> 8).astype(jnp.float32), (totals & 255).astype(jnp.float32)
    hp = jax.lax.Precision.HIGHEST
    offset = (jnp.matmul(hi, before, precision=hp).astype(jnp.int32) << 8) + jnp.matmul(
        lo, before, precision=hp
    ).astype(jnp.int32)
    return (within.astype(jnp.int32) + offset[:, None]).reshape(-1)[:m]


def spike_list(spikes: jax.Array, capacity: int) -> tuple[jax.Array, jax.Array]:
    """(ids (C,) int32 ascending, padded with N; count () int32) of neurons that fired.

    Stream compaction over the bitmask: popcount per 32-neuron word, exclusive
    prefix over words, then each fired neuron writes its id to
    offset[word] + popcount(lower bits of its word). Ids past C are dropped
    (count > C tells the caller).
    """
    n = spikes.shape[0]
    mask = pack_spikes(spikes)
    per_word = jax.lax.population_count(mask).astype(jnp.int32)
    offset = _exclusive_prefix(per_word)
    count = offset[-1] + per_word[-1]
    b = jnp.arange(32, dtype=jnp.uint32)
    below = mask[:, None] & ((jnp.uint32(1) << b) - jnp.uint32(1))  # (W, 32)
    pos = offset[:, None] + jax.lax.population_count(below).astype(jnp.int32)
    fired = ((mask[:, None] >> b) & 1) != 0
    pos = jnp.where(fired, pos, capacity).reshape(-1)
    neuron = jnp.arange(pos.shape[0], dtype=jnp.int32)
    ids = jnp.full((capacity,), n, jnp.int32).at[pos].set(neuron, mode="drop")
    return ids, count


def _slots(k: int) -> jax.Array:
    return jnp.arange(k, dtype=jnp.int32)


def to_pre_major(wiring: ProjectionWiring, weights: jax.Array) -> jax.Array:
    """Post-major weights (the BCOO's data) -> presynaptic order, (N*K,) f32.

    Entry j*K + k is out-synapse (j, k), i.e. synapse (out_post[j, k], k):
    a spiker's out-weights become one contiguous row (128 B at K = 32)
    instead of K random 4-byte reads. The event path runs a burst in this
    order (`brain.burst` converts once at its start and end)."""
    k = wiring.pre.shape[1]
    return weights[(wiring.out_post * k + _slots(k)).reshape(-1)]


def to_post_major(wiring: ProjectionWiring, weights_pre: jax.Array) -> jax.Array:
    """Inverse of `to_pre_major`: synapse (i, k) is entry pre[i, k]*K + k there."""
    k = wiring.pre.shape[1]
    return weights_pre[(wiring.pre * k + _slots(k)).reshape(-1)]


def propagate_event(wiring: ProjectionWiring, weights_pre: jax.Array, ids: jax.Array) -> jax.Array:
    """I = W @ s touching only the out-synapses of the listed spikes (XLA).

    weights_pre: (N*K,) f32 in presynaptic order (`to_pre_major`); ids: (C,)
    from `spike_list`, padded with N. Per spiker: one contiguous row of K
    weights and one of K targets, then a scatter-add into an int32
    accumulator. Returns I (N,) f32. If more than C neurons fired, the
    unlisted ones are missing: the caller sets STATUS_SPIKE_OVERFLOW and the
    host re-runs the burst with a larger list.
    """
    n, k = wiring.out_post.shape
    posts = wiring.out_post.at[ids].get(mode="fill", fill_value=n)  # (C, K)
    q = quantize(weights_pre.reshape(n, k).at[ids].get(mode="fill", fill_value=0.0))
    return from_fixed(jnp.zeros((n,), jnp.int32).at[posts].add(q, mode="drop"))


def overflow_status(count: jax.Array, capacity: int) -> jax.Array:
    """STATUS_SPIKE_OVERFLOW if `count` spikes do not fit a list of `capacity`."""
    return jnp.where(count > capacity, jnp.uint32(STATUS_SPIKE_OVERFLOW), jnp.uint32(0))


def propagate_bcoo(wiring: ProjectionWiring, weights: jax.Array, spikes: jax.Array) -> jax.Array:
    """I = W @ s with `jax.experimental.sparse` (the reference; float sums)."""
    return to_bcoo(wiring, weights, spikes.shape[0]) @ spikes.astype(jnp.float32)


def neighbour_input(population: Population, spikes: jax.Array, platform: str = "gpu") -> jax.Array:
    """Local excitation from last step's spikes of one population, (size,) f32.

    Ring: (w/2) (s[i-1] + s[i+1]). Rectangle H x W (a torus): (w/8) * sum of
    the 8 neighbours. w = neighbour_weight, the input if every neighbour fired.
    """
    # Counts in uint8 (at most 8), converted once: a roll is a copy, and
    # XLA:CPU copies bytes 4x faster than float32.
    s = spikes.astype(jnp.uint8)
    w = population.neighbour_weight
    if population.placement.kind == "ring":
        if platform == "cpu":
            # the same counts as zero-padded shifts plus the two wrapped ends: XLA:CPU
            # vectorizes a padded shift, not a roll's concatenate (BENCHMARKS.md, CPU)
            t = jnp.pad(s[:-1], (1, 0)) + jnp.pad(s[1:], (0, 1))
            t = t.at[0].add(s[-1]).at[-1].add(s[0])
        else:  # GPUs: the roll, which XLA:GPU fuses into the kernel that reads it
            t = jnp.roll(s, 1) + jnp.roll(s, -1)
        return (0.5 * w) * t.astype(jnp.float32)
    p = population.placement
    g = s.reshape(p.height, p.width)
    rows = jnp.roll(g, 1, axis=0) + g + jnp.roll(g, -1, axis=0)
    box = jnp.roll(rows, 1, axis=1) + rows + jnp.roll(rows, -1, axis=1)
    return ((w / 8.0) * (box - g).astype(jnp.float32)).reshape(-1)
