"""README's commands run as written (so they cannot rot)."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name: str) -> str:
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def readme_commands() -> list[str]:
    text = _read("README.md")
    block = re.search(r"<!-- readme-commands -->\s*```\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_two_commands_and_ci():
    text = _read("README.md")
    assert "./scripts/jbrain chat" in text and "./scripts/test" in text
    ci = _read(".ci/run")
    assert ci.strip().splitlines()[-1] == "./scripts/test"


def test_readme_tour_commands(tmp_path):
    commands = readme_commands()
    assert len(commands) >= 4
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    for cmd in commands:
        cmd = cmd.replace("./scripts/jbrain", f"{sys.executable} -m jbrain.cli")
        cmd = cmd.replace("runs/", f"{tmp_path}/")
        r = subprocess.run(cmd, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr
    assert (tmp_path / "tour" / "brain_debug.log").exists()
    assert (tmp_path / "tour" / "metrics.png").exists() or any(
        p.suffix == ".png" for p in (tmp_path / "tour").iterdir()
    )
