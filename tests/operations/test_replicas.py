"""operations/replicas.py's reading of partition metadata (pure; the live cluster is
read in tests/stack/test_topics.py and tests/faults/test_cluster.py)."""

from operations.replicas import lagging


def test_under_replicated_means_an_isr_missing_a_replica_or_no_leader() -> None:
    parts = {
        ("cdc", 0): (1, [1, 2, 3], [3, 1, 2]),  # complete, in another order
        ("cdc", 1): (2, [1, 2, 3], [2, 3]),  # broker 1 fell behind
        ("cdc", 2): (-1, [1], [1]),  # no leader
    }

    assert lagging(parts) == ["cdc-1", "cdc-2"]
