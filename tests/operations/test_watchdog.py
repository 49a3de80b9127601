"""operations/watchdog.py's restart schedule (pure): per connector, doubling to the cap,
reset once the connector runs again."""

from operations.watchdog import Backoff


def test_restarts_back_off_per_connector_up_to_the_cap_and_reset_when_healthy() -> None:
    backoff = Backoff(first_s=5, cap_s=20)

    delays = []
    now = 0.0
    for _ in range(5):
        assert backoff.due("sink", now)
        delays.append(backoff.restarted("sink", now))
        assert not backoff.due("sink", now + delays[-1] - 0.1), "not before its delay"
        now += delays[-1]
    assert delays == [5, 10, 20, 20, 20]
    assert backoff.due("source", 0.0) and backoff.restarted("source", 0.0) == 5, "its own"

    backoff.healthy("sink")
    assert backoff.due("sink", now) and backoff.restarted("sink", now) == 5, "starts over"
