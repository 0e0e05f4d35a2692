"""The live loop (jbrain/live.py): background bursts, `hold()` for the
reply path (a Chat with a live loop answers between bursts), pacing, faults
kept for the caller, bad settings."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from conftest import small

from jbrain import plan as plans
from jbrain.chat import Chat
from jbrain.live import LiveLoop
from jbrain.session import BrainFault, Session
from jbrain.text import Codec


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_live_loop_steps_in_bursts_and_a_chat_answers_under_its_hold(tmp_path):
    s = Session.new(small(), seed=0, workdir=str(tmp_path))
    codec = Codec(reply_steps=40, reply_chars=4)
    live = LiveLoop(s, burst=20, steps_per_s=0).start()
    out = io.StringIO()
    chat = Chat(s, codec, live=live, out=out, err=io.StringIO())
    try:
        assert wait_for(lambda: live.bursts >= 3) and live.running
        with live.hold():
            before, bursts = s.step, live.bursts
            time.sleep(0.3)
            assert s.step == before and live.bursts == bursts  # no burst while held
        assert chat.handle("hello")  # the reply runs under the same hold
        assert out.getvalue().startswith("Brain: ") and len(out.getvalue()) == len("Brain: ....\n")
        bursts = live.bursts
        assert wait_for(lambda: live.bursts > bursts)  # and the brain goes on afterwards
    finally:
        live.stop()
    assert not live.running and live.error is None
    assert s.step == 20 * live.bursts + 40  # only whole bursts, and the reply
    s.close()
    assert len((tmp_path / "brain_debug.log").read_text().splitlines()) == s.step + 1


def test_a_live_loop_reusing_the_reply_stimulus_shape_adds_no_compile(tmp_path, monkeypatch):
    from jbrain import brain

    traces = []
    real_step = brain._step

    def counting_step(*args, **kwargs):
        traces.append(1)  # runs only while jax traces a burst
        return real_step(*args, **kwargs)

    monkeypatch.setattr(brain, "_step", counting_step)
    config = small(n_neurons=1601)  # a size no other test compiles
    s = Session.new(config, seed=0, plan=plans.resolve(config.circuit(), propagation="gather"))
    codec = Codec(reply_steps=30, reply_chars=3)
    live = LiveLoop(s, burst=30, stims=np.zeros((30, 256), np.float32), steps_per_s=0).start()
    chat = Chat(s, codec, live=live, out=io.StringIO(), err=io.StringIO())
    try:
        assert wait_for(lambda: live.bursts >= 2)
        chat.handle("hi")
        chat.handle("there")
    finally:
        live.stop()
    assert live.error is None and len(traces) == 1


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
    fast = LiveLoop(_FakeSession(), burst=10, steps_per_s=0).start()
    time.sleep(0.2)
    fast.stop()
    assert fast.bursts > 7  # unpaced, a fake burst takes no time


def test_live_loop_keeps_a_fault_for_the_caller():
    s = _FakeSession(fail_at=3)
    live = LiveLoop(s, burst=10).start()
    assert wait_for(lambda: not live.running, 10)
    assert isinstance(live.error, BrainFault) and str(live.error) == "non-finite voltage"
    assert s.step == 20 and live.bursts == 2
    live.stop()  # idempotent after the thread ended


def test_live_loop_rejects_bad_settings():
    with pytest.raises(ValueError) as e:
        LiveLoop(_FakeSession(), burst=0)
    assert str(e.value) == "--live_burst=0 must be a positive number of steps"
    with pytest.raises(ValueError) as e:
        LiveLoop(_FakeSession(), burst=5, steps_per_s=-1)
    assert str(e.value) == "--live_steps_per_s=-1 must be >= 0 (0: as fast as possible)"
