"""`make rolling-restart`'s order (the restart itself runs under load in
tests/faults/test_cluster.py)."""

from __future__ import annotations

from operations.rolling_restart import restart_order


def test_a_rolling_restart_ends_with_the_active_controller() -> None:
    assert restart_order(range(1, 4), 1) == [2, 3, 1]
    assert restart_order(range(1, 4), 3) == [1, 2, 3]
    assert restart_order(range(1, 4), None) == [1, 2, 3]
