"""The sharded brain's checks, run by tests/test_sharding.py in subprocesses
(the device count is fixed when jax starts: XLA_FLAGS sets 4 CPU devices). Prints one JSON line: what differs
(empty lists when everything is bit-identical).

    python tests/sharded.py presets STEPS WORKDIR  2 and 4 devices against 1;
                                                 saved on D, restored on D';
                                                 a sharded plan's bad options
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BURST = 250


def configs(plastic: bool = True) -> dict:
    from conftest import preset_config

    return {
        "seed": preset_config("small", n_neurons=2048, plasticity=plastic),
        # the cortex with its long-range projections, STDP and inhibitory plasticity, on a tiny sheet
        "cortex": preset_config("cortex_small", sheet=(25, 48), n_neurons=1200, radius=4, plasticity=plastic),
        "coba": preset_config("coba", n_neurons=2000),
    }


def born(config, *, jit: bool = True) -> tuple:
    """(wiring, state) of a newborn brain as host arrays, so that every run
    starts from the same values (`init_brain` under jit: the cortex's wiring
    is built several times faster than op by op)."""
    import jax

    from jbrain import brain

    init = jax.jit(brain.init_brain, static_argnames=("circuit", "seed")) if jit else brain.init_brain
    return jax.tree.map(np.asarray, init(config.circuit(), seed=5))


def session(config, devices: int, newborn: tuple, **options):
    from jbrain import plan as plans
    from jbrain.session import Session

    plan = plans.resolve(config.circuit(), devices=devices, **options)
    return Session(config, *newborn, plan=plan, seed=5)


def snapshot(s, metrics: list[dict]) -> dict[str, np.ndarray]:
    """Every state leaf (whole, on the host) and the integer metrics."""
    from conftest import leaves

    from jbrain import shard

    out = leaves(shard.to_host(s.state))
    for name in ("spikes", "out_counts", "pop_counts"):
        out[f"metrics.{name}"] = np.concatenate([m[name] for m in metrics])
    return out


def differ(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a if k not in b or a[k].tobytes() != b[k].tobytes())


def run(config, devices: int, steps: int, newborn: tuple, **options) -> tuple[dict, object]:
    s = session(config, devices, newborn, **options)
    metrics = [s.run(min(BURST, steps)) for _ in range(max(1, steps // BURST))]
    return snapshot(s, metrics), s


def presets(steps: int) -> dict:
    """Each preset on 1 device (its own plan) against 2 (the words
    exchange; the seed also on 4), and the seed and cortex on 2 with the spike-list exchange
    (the cortex's delayed projections exchange older spikes too); the seed
    also with lists too short for its busiest steps (its bursts re-run with
    longer ones, exactly)."""
    out = {}
    for name, config in configs().items():
        newborn = born(config)
        ref, s = run(config, 1, steps, newborn)
        out[name] = {
            "plan_1": [s.plan.backend, list(s.plan.paths)],
            "spikes": int(ref["metrics.spikes"].sum()),
        }
        runs = [(2, {})]
        if name == "seed":  # 4 shards: the seed's (the other presets' 2-shard runs cover their projections)
            runs.append((4, {}))
        if name != "coba":
            runs.append((2, {"exchange": "list"}))
        if name == "seed":
            runs.append((2, {"exchange": "list", "spike_buffer": 0.01}))
        for d, options in runs:
            got, s = run(config, d, steps, newborn, **options)
            plan = s.plan
            assert plan.devices == d and plan.paths == ("gather",) * len(plan.paths)
            assert plan.exchange == options.get("exchange", "words")
            key = str(d) + "".join(f" {k}={v}" for k, v in options.items())
            out[name][key] = differ(ref, got)
            if "spike_buffer" in options:
                out[name]["overflow"] = [plan.spike_buffer, s.warnings]
    return out


def checkpoints(workdir: str) -> dict:
    """A seed brain (plasticity on) saved after 250 steps on D devices and
    restored on D' devices runs 250 more steps as the uninterrupted
    one-device run does."""
    from jbrain.session import Session

    config = configs()["seed"]
    ref, _ = run(config, 1, 2 * BURST, born(config, jit=False))  # as Session.open gives it birth
    out = {}
    for saved_on, restored_on in ((4, 1), (4, 2), (1, 4)):
        folder = os.path.join(workdir, f"{saved_on}to{restored_on}")
        first = Session.open(config, seed=5, workdir=folder, plan_options={"devices": saved_on})
        m1 = first.run(BURST)
        first.close()
        second = Session.open(config, seed=5, workdir=folder, plan_options={"devices": restored_on})
        assert second.step == BURST and second.plan.devices == restored_on, second.notes
        m2 = second.run(BURST)
        got = snapshot(second, [m1, m2])
        second.close()
        out[f"{saved_on}->{restored_on}"] = differ(ref, got)
    return out


def chats() -> dict:
    """The chat on a sharded brain: the seed brain's replies and /stats,
    and the teachable cortex (k-WTA memory blocks, the delta rule in
    teaching bursts, the relay, clock and teacher ports) taught a pair (one
    teaching burst: asking it back would compile two more cortex programs),
    on 1 and 2 devices: the transcripts and every state leaf after them."""
    import io

    from conftest import preset_config

    from jbrain.chat import Chat
    from jbrain.text import Codec

    teach = preset_config(
        "cortex_small", teach=True, sheet=(25, 48), n_neurons=1200, radius=4, memory_neurons=256,
        teach_fan_in=128, motor_group=4,
    )  # fmt: skip
    script = {
        "seed": (configs()["seed"], ["hello", "/stats", "again"]),
        "teach": (teach, ["/teach hi => ok", "/stats"]),
    }
    out = {}
    for name, (config, lines) in script.items():
        newborn = born(config)
        runs = {}
        for d in (1, 2):
            text = io.StringIO()
            s = session(config, d, newborn)
            chat = Chat(s, Codec.for_circuit(s.circuit), out=text, err=text)
            for line in lines:
                chat.handle(line)
            runs[d] = (text.getvalue(), _state(s))
        out[name] = {
            "transcript": runs[1][0],
            "2": [runs[2][0] == runs[1][0], differ(runs[1][1], runs[2][1])],
        }
    return out


def _state(s) -> dict[str, np.ndarray]:
    from conftest import leaves

    from jbrain import shard

    return leaves(shard.to_host(s.state))


def sharded_birth() -> list[str]:
    """`experiments.bench_shard.born`: the seed brain born partitioned over
    4 devices against born whole and then split (with the wiring's sorts
    in XLA, as on GPUs: a partitioned program cannot call the host's).
    The leaves that differ, and those not laid out as `shard.shardings` says."""
    import jax
    from conftest import leaves

    from jbrain import shard, synapses

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from experiments import bench_shard

    circuit = configs()["seed"].circuit()
    on_host, synapses.sorts_on_host = synapses.sorts_on_host, lambda: False
    try:  # the rest of this process (the chats) sorts as CPUs do
        whole = bench_shard.born(circuit, 4, sharded=False)
        parts = bench_shard.born(circuit, 4, sharded=True)
    finally:
        synapses.sorts_on_host = on_host
    placed = jax.tree.map(lambda x, s: x.sharding == s, parts, shard.shardings(4, parts))
    misplaced = [path for path, ok in leaves(placed).items() if not ok]
    return differ(leaves(shard.to_host(whole)), leaves(shard.to_host(parts))) + misplaced


def errors() -> list[str]:
    """The one-line errors of options a sharded plan cannot run."""
    from jbrain import plan as plans

    circuit, out = configs()["seed"].circuit(), []
    for options in ({"devices": 5}, {"devices": 2, "backend": "cpu_native", "propagation": "event"}):
        try:
            plans.resolve(circuit, **options)
        except ValueError as e:
            out.append(str(e))
    return out


def main(argv: list[str]) -> None:
    what = argv[1]
    if what == "presets":  # one process: jax starts once, the seed's programs compile once
        out = {"presets": presets(int(argv[2])), "checkpoints": checkpoints(argv[3]), "errors": errors()}
        out["sharded_birth"] = sharded_birth()
        out["chats"] = chats()
        print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
