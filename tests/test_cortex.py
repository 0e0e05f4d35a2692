"""The cortex preset: a sheet shared by E and I grids, regions, local and
long-range wiring, ports on patches, inhibitory plasticity, lesions, and a
small sheet that holds its rate without the global controller."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import leaves, preset_config, tiny

from jbrain import brain, checkpoint, plasticity, plots
from jbrain.circuit import STDP, Placement, Projection, tiles
from jbrain.config import BrainConfig
from jbrain.plan import resolve
from jbrain.session import Session

# 50 x 40 = 2,000 positions: 1,600 E, 400 I; regions of 10 / 30 / 10 rows
# (too small for the chat's 256 input channels: 16 channels, 8 readout groups)
SMALL = {"sheet": (50, 40), "n_neurons": 2000, "radius": 5.0, "input_channels": 16, "output_channels": 8}


def cortex(**kw) -> BrainConfig:
    return preset_config("cortex_small", **{**SMALL, **kw})


@pytest.fixture(scope="module")
def circuit():
    return cortex().circuit()


def _place(circuit, name):
    """(sheet row, sheet col) of every neuron of population `name`."""
    return circuit.population(name).placement.cells()


def test_e_and_i_tile_the_sheet_one_neuron_per_position(circuit):
    h, w = circuit.sheet
    seen = np.zeros((h, w), np.int64)
    for p in circuit.populations:
        rows, cols = _place(circuit, p.name)
        np.add.at(seen, (rows, cols), 1)
    assert (seen == 1).all()
    rows_i, _ = _place(circuit, "I")
    assert set(np.unique(rows_i % 5)) == {4}  # one row in five is inhibitory
    assert circuit.population("I").size / circuit.n == pytest.approx(0.2)


def test_regions_are_bands_and_projections_between_them_use_their_neurons(circuit):
    assert [(r.name, r.row, r.height) for r in circuit.regions] == [
        ("input", 0, 10), ("association", 10, 30), ("output", 40, 10)
    ]  # fmt: skip
    q = next(q for q in circuit.projections if q.name == "input_association")
    rows, _ = _place(circuit, "E")
    a, b = circuit.span(q, "pre")
    assert (rows[a:b] < 10).all() and rows[:a].size == 0 and (rows[b:] >= 10).all()
    a, b = circuit.span(q, "post")
    assert ((rows[a:b] >= 10) & (rows[a:b] < 40)).all()
    assert b - a == 30 * 40 * 4 // 5


def test_local_wiring_lies_within_the_radius_on_the_torus(circuit):
    wiring, _ = brain.init_brain(circuit, seed=3)
    h, w = circuit.sheet
    for q in circuit.projections:
        if q.rule != "radius":
            continue
        pre = np.asarray(wiring.projections[q.name].pre)
        pr, pc = _place(circuit, q.pre)
        qr, qc = _place(circuit, q.post)
        dr = np.abs(pr[pre] - qr[:, None])
        dc = np.abs(pc[pre] - qc[:, None])
        dr, dc = np.minimum(dr, h - dr), np.minimum(dc, w - dc)
        # a uniform offset within the radius, then at most 2 rows to the pre's nearest grid row
        assert (np.sqrt(dc**2 + np.maximum(dr - 2, 0) ** 2) <= q.radius + 1).all(), q.name
        if q.pre == q.post:
            assert not (pre == np.arange(pre.shape[0])[:, None]).any(), f"{q.name} has self-synapses"


def test_gaussian_profile_draws_closer_partners_more_often():
    c = cortex(profile="gaussian", radius=3.0, local_rule="radius").circuit()
    wiring, _ = brain.init_brain(c, seed=0)
    pre = np.asarray(wiring.projections["EE"].pre)
    pc = _place(c, "E")[1]
    dc = np.abs(pc[pre] - pc[:, None])
    dc = np.minimum(dc, c.sheet[1] - dc)
    assert np.mean(dc <= 3) > 0.6 and (dc > 6).any()  # sd 3 columns: most within one sd-ish, tails exist


def test_ports_are_patches_of_their_regions(circuit):
    cells_in = circuit.port_neurons(circuit.inputs[0])
    cells_out = circuit.port_neurons(circuit.readouts[0])
    assert cells_in.shape == (16, circuit.inputs[0].group)
    assert cells_out.shape == (8, circuit.readouts[0].group)
    rows, cols = _place(circuit, "E")
    for cells, lo, hi in ((cells_in, 0, 10), (cells_out, 40, 50)):
        r, c = rows[cells], cols[cells]
        assert ((r >= lo) & (r < hi)).all()
        assert len(np.unique(cells)) == cells.size  # patches do not overlap
        # each patch is compact: its neurons lie within a few cells of each other
        assert (np.ptp(c, axis=1) < 10).all() and (np.ptp(r, axis=1) < 10).all()


def test_a_stimulus_drives_exactly_its_patch(circuit):
    stim = jnp.zeros((circuit.input_channels,), jnp.float32).at[5].set(1.0)
    current = np.asarray(brain.external_input(circuit, stim))
    port = circuit.inputs[0]
    expected = np.zeros(circuit.n, np.float32)
    expected[circuit.port_neurons(port)[5]] = port.gain
    np.testing.assert_array_equal(current, expected)


def test_vogels_rule_moves_inhibition_toward_the_target_rate():
    """A post above its target strengthens its inhibitory synapses, a post
    below it weakens them (the mean drift of the rule)."""
    rule = STDP(20.0, 20.0, 0.01, 0.0, False, "vogels", 0.05)
    q = Projection("IE", "I", "E", plasticity=rule, w_hi=0.1, w_max=1.0)
    rng = np.random.Generator(np.random.PCG64(0))
    n, k = 200, 4
    pre = jnp.asarray(rng.integers(0, n, (n, k)), jnp.int32)
    from jbrain.state import ProjectionWiring

    wiring = ProjectionWiring(pre=pre, out_post=None)
    for post_rate, direction in ((0.2, 1), (0.01, -1)):
        w = jnp.full((n * k,), 0.5, jnp.float32)
        x, y = jnp.zeros(n), jnp.zeros(n)
        for _ in range(600):
            s_pre = jnp.asarray(rng.random(n) < 0.05, jnp.uint8)
            s_post = jnp.asarray(rng.random(n) < post_rate, jnp.uint8)
            w, x, y = plasticity.dense_step(q, 1.0, wiring, w, x, y, s_pre, s_post)
        change = float(jnp.mean(w)) - 0.5
        assert change * direction > 0.02, (post_rate, change)


def test_vogels_needs_a_target_and_equal_time_constants():
    with pytest.raises(ValueError, match="vogels rule needs tau_pre == tau_post"):
        dataclasses.replace(
            cortex().circuit(),
            projections=(
                Projection("IE", "I", "E", plasticity=STDP(20.0, 10.0, rule="vogels", target=0.05)),
            ),
        )
    with pytest.raises(ValueError, match="STDP rule=.oja.: use hebbian, vogels, delta or reward"):
        dataclasses.replace(
            cortex().circuit(), projections=(Projection("IE", "I", "E", plasticity=STDP(rule="oja")),)
        )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sheet": None, "n_neurons": 2000}, "--preset=cortex needs --sheet=HxW"),
        ({"inh_fraction": 0.3}, "--inh_fraction=0.3: the cortex puts one row in `every`"),
        ({"sheet": (40, 50)}, "the cortex needs H to be a multiple of 25"),
        ({"profile": "square"}, "--profile='square': use uniform or gaussian"),
        ({"long_clusters": 3}, "--long_clusters=3 must be >= 0 and divide --long_fan_in=16"),
        (
            {"long_clusters": 2, "long_radius": 1.0},
            "radius=1.0 holds about 3 cells, fewer than the 8 partners",
        ),
    ],
)
def test_bad_cortex_flags_are_one_line_errors(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")) as e:
        cortex(**fields).circuit()
    assert "\n" not in str(e.value)


def test_bad_placements_and_regions_name_the_fix():
    with pytest.raises(ValueError, match="takes rows \\(3, 1\\) of every 5: use distinct sorted rows"):
        c = cortex().circuit()
        e = c.populations[0]
        bad = dataclasses.replace(e, placement=Placement("rect", 0, 0, 40, 40, 5, (3, 1)))
        dataclasses.replace(c, populations=(bad, c.populations[1]))
    c = cortex().circuit()
    q = dataclasses.replace(c.projections[-1], post_region="nowhere")
    with pytest.raises(ValueError, match="no region named 'nowhere'"):
        dataclasses.replace(c, projections=(*c.projections[:-1], q))


def test_lesioned_neurons_never_fire_and_survive_a_checkpoint(tmp_path):
    config = cortex()
    session = Session.open(config, seed=1, workdir=str(tmp_path), keep=2)
    circuit = session.circuit
    mask = np.zeros(circuit.n, bool)
    mask[::3] = True
    session.state = brain.lesion(circuit, session.state, mask)
    session.run(300)
    assert not np.asarray(session.state.neurons.spikes)[mask].any()
    assert np.asarray(session.state.neurons.spikes)[~mask].any()
    back = checkpoint.restore(session.save(wait=True))
    np.testing.assert_array_equal(np.asarray(back.state.neurons.lesion), mask.astype(np.uint8))
    assert leaves(back.state).keys() == leaves(session.state).keys()
    with pytest.raises(ValueError, match=r"lesion: the mask has shape \(5,\), not \(2000,\)"):
        brain.lesion(circuit, session.state, np.zeros(5, bool))


def test_a_small_cortex_holds_each_population_near_its_target_without_a_regulating_controller():
    """Thresholds and inhibitory plasticity hold the rates (the controller's
    gain is 0: it only paces the 5 Hz drive, which the rate spectrum shows)."""
    config = cortex()
    assert config.ctrl_gain == 0 and config.inh_plasticity and config.osc_period == 200
    session = Session.new(config, seed=0, plan=resolve(config.circuit()))
    session.run(4000)
    m = session.run(1000)
    counts = m["pop_counts"].mean(axis=0)
    sizes = np.array([p.size for p in session.circuit.populations])
    rates = counts / sizes
    assert np.all(np.abs(rates - config.target_rate) < 0.2 * config.target_rate), rates
    trace = m["pop_counts"].sum(axis=1) / sizes.sum()
    freqs, power = plots.power_spectrum(trace, 1.0)
    peak, share, _ = plots.spectral_peak(freqs, power)
    assert peak == pytest.approx(5.0, abs=1.0) and share > 0.5, (peak, share)
    # the inhibitory weights moved (the rule acted) and stayed magnitudes
    w = np.asarray(session.state.projections["IE"].weights)
    born = np.asarray(brain.init_brain(session.circuit, seed=0)[1].projections["IE"].weights)
    assert (w >= 0).all() and not np.array_equal(w, born)


def test_every_cortex_path_runs_the_same_numbers():
    """gather (auto on the radius rule) and the bcoo reference agree on the
    cortex's spikes over a short run (fixed-point sums: bit for bit)."""
    config = cortex(plasticity=True)
    runs = {}
    for path in ("gather", "bcoo"):
        circuit, plan, wiring, state = tiny(config, seed=2, propagation=path)
        state, m = brain.burst(circuit, plan, wiring, state, None, length=60)
        runs[path] = np.asarray(m.spikes)
    # bcoo sums in float: the same spikes over a short run, not guaranteed bit-identical weights
    np.testing.assert_array_equal(runs["gather"], runs["bcoo"])
    assert jax.tree.structure(state) is not None


def test_chat_runs_on_the_small_cortex_through_its_patches():
    """The chat's 64 character channels and 64 readout groups fit
    cortex_small's input and output regions; a message gets an 8-character
    reply."""
    from jbrain.text import ALPHABET, Codec, reply

    config = preset_config("cortex_small", plasticity=True)
    session = Session.new(config, seed=0, plan=resolve(config.circuit()))
    codec = Codec.for_circuit(session.circuit)
    answers = [reply(session, codec, "hello") for _ in range(2)]
    assert all(len(a) == 8 and set(a) <= set(ALPHABET) for a in answers)
    assert session.step == 400
    # the reply is read from the output region: its groups saw spikes
    assert session.run(200, codec.encode("hello"))["out_counts"].sum() > 0


def test_patchy_long_range_synapses_come_from_a_few_places_of_the_pre_region():
    """--long_clusters=C: each post's K long-range synapses lie within
    long_radius (+ the grid's row snap) of C places of the pre region, K/C
    around each, and all inside that region."""
    c = cortex(long_clusters=4, long_radius=2.0).circuit()
    wiring, _ = brain.init_brain(c, seed=3)
    q = next(x for x in c.projections if x.name == "input_association")
    assert (q.rule, q.clusters, q.fan_in) == ("patchy", 4, 16)
    a, _ = c.span(q, "pre")
    pre = np.asarray(wiring.projections[q.name].pre) + a - c.offset("E")
    rows, cols = _place(c, "E")
    r, col = rows[pre], cols[pre]
    region = next(x for x in c.regions if x.name == "input")
    assert ((r >= region.row) & (r < region.row + region.height)).all()
    for i in range(0, pre.shape[0], 97):
        for k in range(4):  # slots k, k+4, k+8, k+12 share a centre
            sr, sc = r[i, k::4], col[i, k::4]
            dc = np.abs(sc[:, None] - sc[None, :])
            dr = np.abs(sr[:, None] - sr[None, :])
            dr, dc = np.minimum(dr, region.height - dr), np.minimum(dc, c.sheet[1] - dc)  # torus of the span
            assert (dr <= 2 * 2 + 2).all() and (dc <= 2 * 2).all()
    assert any("patchy r=2 uniform x4 places" in line for line in c.describe())


def test_wta_groups_excite_their_own_patch_and_share_one_inhibitory_pool():
    """--wta: output_self draws every partner from the post's own readout
    patch (never itself); the pool projections stay inside the output region."""
    c = cortex(wta=True).circuit()
    wiring, _ = brain.init_brain(c, seed=4)
    # a restore takes the shapes by tracing init_brain: the patch draw must trace
    shapes, _ = checkpoint.abstract_brain(cortex(wta=True))
    assert shapes.projections["output_self"].pre.shape == wiring.projections["output_self"].pre.shape
    q = next(x for x in c.projections if x.name == "output_self")
    assert (q.rule, q.group, q.pre_region) == ("patch", 8, "output")
    a, b = c.span(q, "pre")
    first = a - c.offset("E")
    tile = tiles(c.region_of("output"), 8, c.population("E").placement)[first : first + b - a]
    pre = np.asarray(wiring.projections["output_self"].pre)
    assert (tile[pre] == tile[:, None]).all()
    assert not (pre == np.arange(b - a)[:, None]).any()
    groups = c.port_neurons(c.readouts[0]) - a  # the readout's groups lie in the patches of the same number
    assert all((tile[g] == i).all() for i, g in enumerate(groups))
    names = {x.name: x for x in c.projections}
    assert names["output_pool"].post == "I" and names["pool_output"].pre == "I"
    assert {names[n].post_region for n in ("output_pool", "pool_output")} == {"output"}
    bad = dataclasses.replace(q, fan_in=500)
    with pytest.raises(ValueError, match="patches of region 'output' holds .* too few for fan_in=500"):
        dataclasses.replace(c, projections=(*c.projections[:-3], bad))


def test_local_rule_slots_are_short_bijections_of_the_grid():
    """--local_rule=local: every slot of E -> E and I -> I is a permutation
    (fan-in = fan-out = K), out_post inverts it, no self-synapse, and every
    synapse spans less than the radius on the sheet."""
    c = cortex(local_rule="local", radius=6.0).circuit()
    wiring, _ = brain.init_brain(c, seed=5)
    h, w = c.sheet
    for name in ("EE", "II"):
        q = next(q for q in c.projections if q.name == name)
        assert q.rule == "local"
        pre = np.asarray(wiring.projections[name].pre)
        out = np.asarray(wiring.projections[name].out_post)
        n, k = pre.shape
        for s in range(k):
            assert np.array_equal(np.sort(pre[:, s]), np.arange(n)), f"{name} slot {s} is not a bijection"
            np.testing.assert_array_equal(pre[out[:, s], s], np.arange(n))
        assert not (pre == np.arange(n)[:, None]).any()
        rows, cols = _place(c, q.pre)
        dr = np.abs(rows[pre] - rows[:, None])
        dc = np.abs(cols[pre] - cols[:, None])
        dr, dc = np.minimum(dr, h - dr), np.minimum(dc, w - dc)
        assert (np.sqrt(dr**2 + dc**2) < q.radius + 2).all(), name  # + the row snap of the grid
    from jbrain.plan import event_capable

    assert [event_capable(c, i) for i in range(len(c.projections))] == [
        True,
        False,
        False,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("stdp", ["eager", "deferred"])
def test_local_rule_event_path_equals_gather_bit_for_bit(stdp):
    # only E -> E plastic (the deferred form needs the event path on every plastic projection)
    config = cortex(local_rule="local", radius=6.0, plasticity=True, inh_plasticity=False, long_fan_in=0)
    runs = {}
    for path in ("event", "gather"):
        form = stdp if path == "event" else "eager"
        circuit, plan, wiring, state = tiny(config, seed=4, propagation=path, stdp=form, backend="xla")
        assert plan.paths[0] == path  # EE
        state, m = brain.burst(circuit, plan, wiring, state, None, length=150)
        runs[path] = (np.asarray(m.spikes), leaves(state))
    np.testing.assert_array_equal(runs["event"][0], runs["gather"][0])
    for key, value in runs["gather"][1].items():
        np.testing.assert_array_equal(runs["event"][1][key], value, err_msg=key)
