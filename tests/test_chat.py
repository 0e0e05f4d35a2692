"""`jbrain chat` end to end (piped stdin, a pseudo-terminal, Ctrl-C) and the live loop."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

from jbrain.config import BrainConfig
from jbrain.live import LiveLoop
from jbrain.session import BrainFault, Session
from jbrain.text import ALPHABET, Codec, reply

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BRAIN = ["--n_neurons=2000"]
REPLY = re.compile(rb"Brain: [" + re.escape(ALPHABET.encode()) + rb"]{8}")


def chat_cmd(*flags: str) -> list[str]:
    return [sys.executable, "-m", "jbrain.cli", "chat", *BRAIN, *flags]


def env() -> dict[str, str]:
    e = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    e.pop("OUT", None)
    return e


def chat(stdin: bytes, *flags: str, workdir) -> subprocess.CompletedProcess:
    return subprocess.run(
        chat_cmd(f"--workdir={workdir}", *flags),
        input=stdin,
        capture_output=True,
        env=env(),
        cwd=ROOT,
        timeout=120,
    )


SCRIPT = (
    b"\n".join(
        [
            b"hello",
            b"/stats",
            b"/help",
            b"/nonsense",
            b"",  # an empty line is a message too
            "caf\u00e9 \U0001f600\ttab and \x01 control".encode(),
            b"x" * 1500,  # over --max_input_chars
            b"\xff\xfe not UTF-8 \r",  # raw bytes and a lone CR
            b"dog",
            b"/quit",
            b"never answered",
        ]
    )
    + b"\n"
)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """The SCRIPT piped through chat: twice with seed 0, once with seed 1."""
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        workdir = tmp_path_factory.mktemp(f"chat_{name}")
        runs[name] = (chat(SCRIPT, f"--seed={seed}", workdir=workdir), workdir)
    return runs


def test_piped_chat_answers_each_line_and_runs_commands(scripted):
    p, workdir = scripted["a"]
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    lines = out.splitlines()
    brain = [ln for ln in lines if ln.startswith("Brain: ")]
    assert len(brain) == 6  # hello, empty, emoji, long, bytes, dog; nothing after /quit
    assert all(REPLY.fullmatch(ln.encode()) for ln in brain), brain
    assert "You:" not in out  # no prompts when piped
    assert lines[0].startswith("Brain: ")
    assert re.fullmatch(r"step 200, firing rate 0\.\d{4}, mean threshold \d\.\d{4}, messages 1", lines[1])
    assert lines[2].startswith("Type a message; the brain answers with 8 characters after a 200-step reply.")
    assert "  /stats   step, firing rate, mean threshold, messages so far" in lines
    assert "unknown command /nonsense" in lines
    assert out.count("  /quit    leave") == 2  # /help, and the help after the unknown command
    err = p.stderr.decode()
    assert "Traceback" not in err
    assert "jbrain chat: input cut from 1,500 to 1,000 characters (--max_input_chars)" in err
    assert re.search(r"jbrain chat done: 6 messages, 1200 steps \(now at step 1200\)", err)
    log = (workdir / "brain_debug.log").read_text().splitlines()
    assert len(log) == 1 + 1200 and log[-1].startswith("1200\t")  # replies are logged steps


def test_same_seed_same_transcript_other_seed_differs(scripted):
    a, b, c = (scripted[k][0] for k in "abc")
    assert a.returncode == b.returncode == c.returncode == 0
    assert a.stdout == b.stdout  # byte-identical
    assert a.stdout != c.stdout


def test_end_of_input_without_quit_exits_0_with_a_summary(tmp_path):
    p = chat(b"one\ntwo", workdir=tmp_path)  # no newline at the end
    assert p.returncode == 0
    assert len(REPLY.findall(p.stdout)) == 2
    assert p.stderr.decode().splitlines()[-1].startswith("jbrain chat done: 2 messages, 400 steps")


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--reply_chars=500", "--reply_chars=500 must be between 1 and 100"),
        ("--max_input_chars=0", "--max_input_chars=0 must be >= 1"),
        ("--n_neurons=500", "--n_neurons=500 is too small for 64 output groups"),
        ("--live=maybe", "flag --live=maybe"),
    ],
)
def test_bad_flags_give_one_line_errors(tmp_path, flag, message):
    p = chat(b"hi\n", flag, workdir=tmp_path)
    assert p.returncode == 2
    err = p.stderr.decode()
    assert err.startswith("jbrain chat: error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err


def test_help_describes_the_chat_and_its_flags():
    p = subprocess.run(chat_cmd("--help"), capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert p.returncode == 0
    assert p.stdout.startswith("jbrain chat: talk to the brain.")
    for flag in (
        "--reply_steps",
        "--reply_chars",
        "--max_input_chars",
        "--[no]live",
        "--n_neurons",
        "--workdir",
    ):
        assert flag in p.stdout


def _read_until(stream, pattern: bytes, timeout: float) -> bytes:
    buf, end = b"", time.monotonic() + timeout
    fd = stream if isinstance(stream, int) else stream.fileno()
    while pattern not in buf and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_live_chat_keeps_stepping_and_ctrl_c_exits_0(tmp_path):
    p = subprocess.Popen(
        chat_cmd(f"--workdir={tmp_path}", "--live", "--live_steps_per_s=0"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        cwd=ROOT,
    )
    try:
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        assert REPLY.search(_read_until(p.stdout, b"\n", 60))
        log = tmp_path / "brain_debug.log"
        deadline = time.monotonic() + 60
        while len(log.read_text().splitlines()) < 1 + 3 * 200 and time.monotonic() < deadline:
            time.sleep(0.1)  # the brain lives on between messages
        assert len(log.read_text().splitlines()) >= 1 + 3 * 200
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    summary = err.decode().strip().splitlines()[-1]
    m = re.fullmatch(r"jbrain chat interrupted: 1 message, (\d+) steps \(now at step (\d+)\).*", summary)
    assert m, summary
    step = int(m.group(2))
    assert step % 200 == 0 and step >= 600  # whole bursts only
    lines = log.read_text().splitlines()
    assert len(lines) == step + 1 and lines[-1].startswith(f"{step}\t")  # flushed


def test_terminal_has_a_prompt_and_ctrl_d_leaves(tmp_path):
    fd, tty = os.openpty()  # chat on a pseudo-terminal: stdin is a tty
    p = subprocess.Popen(
        chat_cmd(f"--workdir={tmp_path}", "--live_steps_per_s=200"),
        stdin=tty,
        stdout=tty,
        stderr=tty,
        env=env(),
        cwd=ROOT,
        start_new_session=True,
    )
    os.close(tty)
    try:
        banner = _read_until(fd, b"You: ", 60)
        assert b"jbrain chat: 2,000 neurons, seed 0, live;" in banner  # live by default
        os.write(fd, b"hi\r")
        answer = _read_until(fd, b"You: ", 60)
        assert REPLY.search(answer), answer
        os.write(fd, b"\x04")  # Ctrl-D
        rest = _read_until(fd, b"jbrain chat done", 60)
        assert b"jbrain chat done: 1 message" in rest, rest
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
        os.close(fd)
    assert (tmp_path / "chat_history").read_text().splitlines()[-1] == "hi"


# ---- the live loop, in process ----


def test_live_loop_steps_in_bursts_and_hold_guards_the_reply_path(tmp_path):
    s = Session.new(BrainConfig(n_neurons=2000), seed=0, workdir=str(tmp_path))
    codec = Codec(reply_steps=40, reply_chars=4)
    live = LiveLoop(s, burst=20, steps_per_s=0).start()
    try:
        deadline = time.monotonic() + 60
        while live.bursts < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert live.bursts >= 3 and live.running
        with live.hold():
            before, bursts = s.step, live.bursts
            time.sleep(0.3)
            assert s.step == before and live.bursts == bursts  # no burst while held
            reply(s, codec, "hello")
            assert s.step == before + 40
        deadline = time.monotonic() + 60
        while live.bursts == bursts and time.monotonic() < deadline:
            time.sleep(0.02)
        assert live.bursts > bursts  # and it goes on afterwards
    finally:
        live.stop()
    assert not live.running and live.error is None
    assert s.step == 20 * live.bursts + 40  # only whole bursts
    s.close()
    assert len((tmp_path / "brain_debug.log").read_text().splitlines()) == s.step + 1


class _FakeSession:
    """Counts steps; fails on the third burst when asked to."""

    def __init__(self, fail_at: int = 0):
        self.lock = threading.RLock()
        self.log = None
        self.step = 0
        self.fail_at = fail_at

    def run(self, length, stims=None):
        if self.fail_at and self.step // length + 1 == self.fail_at:
            raise BrainFault("non-finite voltage")
        self.step += length


def test_live_loop_paces_itself():
    s = _FakeSession()
    live = LiveLoop(s, burst=10, steps_per_s=50).start()  # 5 bursts/s at most
    time.sleep(1.0)
    live.stop()
    assert 1 <= live.bursts <= 7


def test_live_loop_keeps_a_fault_for_the_caller():
    s = _FakeSession(fail_at=3)
    live = LiveLoop(s, burst=10).start()
    deadline = time.monotonic() + 10
    while live.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(live.error, BrainFault) and s.step == 20 and live.bursts == 2
    live.stop()


def test_live_loop_rejects_bad_settings():
    with pytest.raises(ValueError, match=r"--live_burst=0 must be a positive number of steps"):
        LiveLoop(_FakeSession(), burst=0)
    with pytest.raises(ValueError, match=r"--live_steps_per_s=-1 must be >= 0"):
        LiveLoop(_FakeSession(), burst=5, steps_per_s=-1)
