"""The training line: atomic per-visitor slots, one run at a time in order, cancel and leave (real threads)."""

from __future__ import annotations

import threading

import pytest

from sparse_demo.train.queue import SlotLimitReached, TrainingQueue


def test_five_simultaneous_reservations_with_limit_three_grant_three():
    q = TrainingQueue()
    start = threading.Barrier(5)
    granted, refused = [], []
    lock = threading.Lock()

    def click():
        start.wait()
        try:
            t = q.reserve("visitor", limit=3)
        except SlotLimitReached:
            with lock:
                refused.append(1)
            return
        with lock:
            granted.append(t)

    threads = [threading.Thread(target=click) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(granted) == 3 and len(refused) == 2
    # another visitor is not affected by this one's slots
    q.reserve("other", limit=3)


def test_kept_models_and_session_state_count_once():
    q = TrainingQueue()
    a = q.reserve("v", limit=2, held=["m1"])
    assert q.wait_turn(a, timeout=1)
    with pytest.raises(SlotLimitReached):
        q.reserve("v", limit=2, held=["m1"])
    assert q.finish(a, kept="m2", folder="/x/m2")
    assert q.kept("v") == {"m2": "/x/m2"}
    with pytest.raises(SlotLimitReached):  # m1 (state) + m2 (kept here)
        q.reserve("v", limit=2, held=["m1", "m2"])
    # a failed or cancelled run gives its slot back
    q2 = TrainingQueue()
    t = q2.reserve("v", limit=1)
    with pytest.raises(SlotLimitReached):
        q2.reserve("v", limit=1)
    q2.finish(t, kept=None)
    q2.reserve("v", limit=1)


def test_one_run_at_a_time_in_order_with_positions():
    q = TrainingQueue()
    tickets = [q.reserve(f"v{i}", limit=1) for i in range(3)]
    assert [q.position(t).text() for t in tickets] == [
        "next in line",
        "2nd in the queue, 1 run ahead",
        "3rd in the queue, 2 runs ahead",
    ]
    running = 0
    peak = 0
    order: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def run(t):
        nonlocal running, peak
        assert q.wait_turn(t, timeout=30)
        with lock:
            running += 1
            peak = max(peak, running)
            order.append(t.visitor)
        go.wait(0.05)
        with lock:
            running -= 1
        q.finish(t, kept=None)

    threads = [threading.Thread(target=run, args=(t,)) for t in reversed(tickets)]  # started in reverse
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert order == ["v0", "v1", "v2"] and peak == 1
    assert q.waiting() == 0


def test_cancel_while_waiting_leaves_the_line_at_once():
    q = TrainingQueue()
    first = q.reserve("a", limit=1)
    second = q.reserve("b", limit=1)
    third = q.reserve("c", limit=1)
    result = {}
    waiter = threading.Thread(target=lambda: result.setdefault("b", q.wait_turn(second)))
    waiter.start()
    assert q.cancel("b") == 1
    waiter.join(5)
    assert not waiter.is_alive() and result["b"] is False
    assert q.position(second) is None and q.position(third).ahead == 1
    assert q.wait_turn(first, timeout=1)


def test_a_visitor_who_leaves_is_cancelled_and_its_running_result_not_kept():
    q = TrainingQueue()
    running = q.reserve("gone", limit=3)
    waiting = q.reserve("gone", limit=3)
    other = q.reserve("stays", limit=3)
    assert q.wait_turn(running, timeout=1)
    mine = q.leave("gone")
    assert {t.number for t in mine} == {running.number, waiting.number}
    assert running.cancel.is_set() and waiting.cancel.is_set() and running.gone
    assert q.position(waiting) is None  # the waiting one left the line at once
    assert q.position(other).ahead == 1  # the running one still holds the turn until its trainer stops
    assert q.finish(running, kept="late model", folder="/x") is False  # the caller deletes the files
    assert q.kept("gone") == {}
    assert q.wait_turn(other, timeout=1)
