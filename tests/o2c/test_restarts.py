"""The restart back-off of ``o2c up``, on a hand-driven clock."""

from __future__ import annotations

from o2c.restarts import RestartPolicy, Restarts


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_first_crash_restarts_at_once_then_waits_double_up_to_the_cap() -> None:
    policy = RestartPolicy(base_s=1.0, cap_s=30.0, stable_s=30.0)
    assert [policy.delay(n) for n in range(1, 9)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_crash_loop_backs_off_and_a_stable_run_starts_over() -> None:
    clock = Clock()
    restarts = Restarts(RestartPolicy(base_s=1.0, cap_s=4.0, stable_s=10.0), clock)
    restarts.started("credit")
    clock.now = 100.0  # ran long: a one-off crash
    assert restarts.exited("credit", -9) == 0.0
    assert restarts.due("credit")
    waits = []
    for _ in range(4):  # each restart dies at once
        restarts.started("credit")
        clock.now += 0.5
        waits.append(restarts.exited("credit", 3))
        assert restarts.waiting("credit") and not restarts.due("credit")
        status = restarts.status("credit", running=False)
        assert status["state"] == "backoff" and status["restart_in_s"] == waits[-1]
        clock.now += waits[-1]
        assert restarts.due("credit")
    assert waits == [1.0, 2.0, 4.0, 4.0]

    restarts.started("credit")
    assert restarts.status("credit", running=True)["crashes_in_a_row"] == 5
    clock.now += 10.0  # stable now
    assert restarts.status("credit", running=True) == {
        "state": "running", "restarts": 5, "crashes_in_a_row": 0, "last_exit_code": 3, "restart_in_s": None}
    assert restarts.exited("credit", -9) == 0.0  # a crash after a stable run is restarted at once


def test_a_child_stopped_on_purpose_is_not_restarted() -> None:
    restarts = Restarts(RestartPolicy(), Clock())
    restarts.started("orders")
    restarts.exited("orders", 0)
    restarts.forget("orders")
    assert not restarts.waiting("orders") and not restarts.due("orders")
    assert restarts.status("orders", running=False)["state"] == "stopped"
