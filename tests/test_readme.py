"""README's commands run as written (so they cannot rot), and do what it
says: logs with a `rate_<population>` column per population for the ei and
coba presets, the plan as JSON, a chat reply, the plot. One liberty: a
`--steps` above 500 (the tour's 2,000, coba's 10,000) runs 500 steps, to keep CI fast."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, cli_env

from jbrain.logs import HEADER

MAX_STEPS = 500


def _read(name: str) -> str:
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def readme_commands() -> list[str]:
    block = re.search(r"<!-- readme-commands -->\s*```\n(.*?)```", _read("README.md"), re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_two_commands_and_ci():
    text = _read("README.md")
    assert "./scripts/jbrain chat" in text and "./scripts/test" in text
    assert _read(".ci/run").strip().splitlines()[-1] == "./scripts/test"


def test_readme_documents_every_preset_flagfile_and_names_no_missing_one():
    text = _read("README.md")
    configs = os.path.join(ROOT, "experiments", "configs")
    for name in re.findall(r"experiments/configs/([a-z0-9_]+)\.flags", text):  # not NAME
        assert os.path.exists(os.path.join(configs, f"{name}.flags")), name
    for file in os.listdir(configs):
        if file.endswith(".flags"):
            name = file.removesuffix(".flags")
            assert f"`{name}`" in text or f"configs/{file}" in text, f"README does not mention {file}"


def _steps(match: re.Match) -> str:
    return f"--steps={min(int(match.group(1)), MAX_STEPS)}"


def tour_chains() -> dict[str, list[str]]:
    """README's tour, its commands grouped by the workdir they share, in
    order (a chat or plot of runs/tour needs the run before it); a command
    without a workdir is a group of its own. The groups run as separate
    tests, so pytest's workers share them."""
    chains: dict[str, list[str]] = {}
    for i, cmd in enumerate(readme_commands()):
        workdir = re.search(r"--workdir=runs/(\S+)", cmd)
        chains.setdefault(workdir.group(1) if workdir else f"command{i}", []).append(cmd)
    return chains


def test_the_tour_has_its_chains():
    chains = tour_chains()
    assert len(readme_commands()) >= 4
    subcommands = [re.search(r"jbrain (\w+)", c).group(1) for c in chains["tour"]]
    assert subcommands == ["run", "chat", "inspect", "plot"], chains["tour"]


@pytest.mark.parametrize("chain", sorted(tour_chains()))
def test_readme_tour_commands(tmp_path, chain):
    commands = tour_chains()[chain]
    for cmd in commands:
        run = cmd.replace("./scripts/jbrain", f"{sys.executable} -m experiments.cli")
        run = run.replace("runs/", f"{tmp_path}/")
        run = re.sub(r"--steps=(\d+)", _steps, run)
        r = subprocess.run(
            run, shell=True, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr, f"{cmd}\n{r.stderr}"
        if " inspect --plan" in cmd:
            plan = json.loads(r.stdout)
            assert plan["backend"] and plan["projections"], cmd
        elif " inspect --circuit" in cmd:
            assert "  region association: rows [20, 80)" in r.stdout, f"{cmd}\n{r.stdout}"
            memory = r"\nmemory: [\d.]+ MB on the device between bursts, [\d.]+ B per neuron"
            assert re.search(memory, r.stdout), f"{cmd}\n{r.stdout}"
        elif " chat" in cmd:
            assert re.fullmatch(r"(taught: .* => .*\n)*(Brain: .{8}\n)+", r.stdout), f"{cmd}\n{r.stdout}"
        elif " plot --sheet" in cmd:
            assert re.match(r"wrote .*/sheet\.png", r.stdout), f"{cmd}\n{r.stdout}"
            assert "sheet.gif" in r.stdout, f"{cmd}\n{r.stdout}"
        elif " plot" in cmd:
            assert re.match(r"wrote .*/brain_debug\.png \([\d,]+ steps\)\n", r.stdout), f"{cmd}\n{r.stdout}"
        elif " run" in cmd:
            assert r.stdout.startswith("jbrain run done: "), f"{cmd}\n{r.stdout}"
            workdir = re.search(r"--workdir=runs/(\S+)", cmd).group(1)
            head = (tmp_path / workdir / "brain_debug.log").read_text().split("\n", 1)[0]
            preset = re.search(r"configs/(\w+)\.flags", cmd)
            # several populations (ei, coba, cortex): a rate column each; one population: the five columns
            if preset and preset.group(1) in ("ei", "coba", "cortex_small"):
                assert head == HEADER + "\trate_E\trate_I", cmd
            else:
                assert head == HEADER, cmd
    if chain == "tour":
        assert (tmp_path / "tour" / "brain_debug.log").exists()
        assert any(p.suffix == ".png" for p in (tmp_path / "tour").iterdir())
