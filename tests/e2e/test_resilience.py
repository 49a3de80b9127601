"""The pipeline under failure, on the real stack: BentoML down, transformer killed.

Nothing is lost: after recovery every live listing has a prediction of its latest change,
no deleted one has any, and none went to the DLQ. Nothing is duplicated: the transformer
works at least once, so a crash replays what it had not committed, and only that; a
replayed state gets the same answer again, at most once more, and never wins over a
newer one.
"""

from __future__ import annotations

import os
import signal

import psycopg
import pytest

from config.settings import StackSettings
from stack.readiness import bentoml_ready, transformer_ready
from stack.supervisor import Supervisor
from tests.support import (
    FIESTA,
    behind,
    committed_offsets,
    end_offsets,
    insert_listing,
    json_or_none,
    prediction,
    read_to_end,
    served_prediction,
    wait_for,
)
from transformer.settings import Settings as TransformerSettings


@pytest.fixture()
def supervisor(stack_ready: StackSettings) -> Supervisor:
    return Supervisor(stack_ready)


def _process(supervisor: Supervisor, name: str) -> tuple[str, int]:
    return next((p.state, p.pid) for p in supervisor.processes() if p.name == name)


def _dead_letters_of(settings: StackSettings, start: list, ids: list[int]) -> list[dict]:
    """The dlq.* headers of the DLQ records since `start` whose key (the CDC key, `{"id": ...}`)
    is one of `ids`."""
    wanted, letters = set(ids), []
    for message in read_to_end(settings, start):
        try:
            key = json_or_none(message.key())
        except ValueError:
            continue
        if isinstance(key, dict) and key.get("id") in wanted:
            letters.append({k: v.decode() for k, v in message.headers() or [] if k[:4] == "dlq."})
    return letters


def test_bentoml_down_holds_the_listing_and_resumes_by_itself(
    stack_ready: StackSettings, supervisor: Supervisor, db: psycopg.Connection, cleanup: list[int]
) -> None:
    dlq_start = end_offsets(stack_ready, stack_ready.kafka.dlq_topic)
    transformer = _process(supervisor, "transformer")
    supervisor.stop_program("bentoml")
    try:
        car_id = insert_listing(db, dict(FIESTA, mileage=42424))
        cleanup.append(car_id)
        wait_for(lambda: transformer_ready(stack_ready) is None, timeout=5)
        # the transformer waits and retries: no prediction, no crash, no DLQ
        with pytest.raises(pytest.fail.Exception):
            wait_for(lambda: prediction(db, car_id), timeout=6, interval=0.5)
        assert _process(supervisor, "transformer") == transformer, "it crashed"
    finally:
        supervisor.start_program("bentoml")
    wait_for(lambda: bentoml_ready(stack_ready) is None, timeout=60)
    row = wait_for(lambda: prediction(db, car_id), timeout=60, interval=0.5)
    served = served_prediction(stack_ready, dict(FIESTA, mileage=42424))
    assert row["predicted_price"] == pytest.approx(served["predicted_price"], abs=0.01)
    assert _process(supervisor, "transformer") == transformer, "it crashed"
    assert _dead_letters_of(stack_ready, dlq_start, [car_id]) == []


def _records_since(settings: StackSettings, start: list) -> int:
    ends = end_offsets(settings, start[0].topic)
    return sum(end.offset for end in ends) - sum(tp.offset for tp in start)


def _cdc_states(messages: list) -> dict[tuple[int, int], tuple[int, int]]:
    """(car_id, lsn) of every change event -> (partition, offset) on the CDC topic."""
    states = {}
    for message in messages:
        value = json_or_none(message.value())
        if value is not None:
            car_id = json_or_none(message.key())["id"]
            states[car_id, value["source"]["lsn"]] = (message.partition(), message.offset())
    return states


def _prediction_records(messages: list, ids: set[int]) -> list[tuple[int, dict | None, int, int]]:
    """(car_id, payload or None for a tombstone, partition, offset) of our listings' records."""
    records = []
    for message in messages:
        car_id = json_or_none(message.key())["car_id"]
        if car_id in ids:
            value = json_or_none(message.value())
            records.append((car_id, value, message.partition(), message.offset()))
    return records


def test_a_killed_transformer_loses_nothing_and_duplicates_nothing(
    stack_ready: StackSettings, supervisor: Supervisor, db: psycopg.Connection, cleanup: list[int]
) -> None:
    kafka, group = stack_ready.kafka, TransformerSettings().transformer_group_id
    # from a caught-up transformer (earlier tests' deletions may still be on their way), so
    # that what it commits before the kill is this test's work
    wait_for(lambda: sum(behind(stack_ready, group, kafka.cdc_topic).values()) == 0, timeout=60)
    cdc_start = end_offsets(stack_ready, kafka.cdc_topic)
    predictions_start = end_offsets(stack_ready, kafka.predictions_topic)
    dlq_start = end_offsets(stack_ready, kafka.dlq_topic)
    ids = [insert_listing(db, dict(FIESTA, mileage=1000 + i)) for i in range(300)]
    cleanup.extend(ids)

    # Mid-stream: frozen at once (it can neither produce nor commit), looked at, then killed,
    # so what is measured here is the state it dies in.
    transformer_pid = _process(supervisor, "transformer")[1]
    os.kill(transformer_pid, signal.SIGSTOP)
    try:
        # Debezium goes on: every insert reaches the topic
        wait_for(lambda: _records_since(stack_ready, cdc_start) >= len(ids), timeout=30)
        committed = committed_offsets(stack_ready, group, kafka.cdc_topic)
        lag = behind(stack_ready, group, kafka.cdc_topic)
        unpriced = db.execute(
            "SELECT count(*) FROM tbl_car_price c LEFT JOIN tbl_price_prediction p "
            "ON p.car_id = c.id WHERE c.id = ANY(%s) AND p.car_id IS NULL",
            (ids,),
        ).fetchone()[0]
        produced = end_offsets(stack_ready, kafka.predictions_topic)
    finally:
        os.kill(transformer_pid, signal.SIGKILL)  # no chance to commit
    produced_at_kill = {tp.partition: tp.offset for tp in produced}
    assert sum(lag.values()) > 0 and unpriced > 0, (
        f"nothing in flight: lag {lag}, {unpriced} unpriced"
    )
    assert any(committed[tp.partition] > tp.offset for tp in cdc_start), (
        f"killed before it committed any of the listings: {committed}, started at {cdc_start}"
    )

    updated = ids[::6]
    db.execute("UPDATE tbl_car_price SET mileage = mileage + 50000 WHERE id = ANY(%s)", (updated,))
    deleted = ids[1::6]
    db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (deleted,))
    live = sorted(set(ids) - set(deleted))

    # supervisor restarts it; the group hands it the partitions; it replays from the commit
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) FROM tbl_price_prediction p "
                "JOIN tbl_car_price c ON c.id = p.car_id "
                # the commit time (ms) of the listing's latest change is at or after its updated_at
                "WHERE c.id = ANY(%s) AND p.source_committed_at >= date_trunc('milliseconds', "
                "c.updated_at)",
                (live,),
            ).fetchone()[0]
            == len(live)
        ),
        timeout=120,
        interval=1,
    )
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (deleted,)
            ).fetchone()[0]
            == 0
        ),
        timeout=30,
    )
    assert _process(supervisor, "transformer")[0] == "RUNNING"
    wait_for(lambda: sum(behind(stack_ready, group, kafka.cdc_topic).values()) == 0, timeout=30)

    states = _cdc_states(read_to_end(stack_ready, cdc_start))
    records = _prediction_records(read_to_end(stack_ready, predictions_start), set(ids))
    by_state: dict[tuple[int, int, str], list[dict]] = {}
    for car_id, payload, partition, offset in records:
        if payload is None:  # a tombstone, after its 'deleted' record
            continue
        state = (car_id, payload["source_lsn"])
        assert state in states, f"a record for a state that never was: {payload}"
        cdc_partition, cdc_offset = states[state]
        # produced after the kill: must answer an event the dead one had not committed
        assert offset < produced_at_kill[partition] or cdc_offset >= committed[cdc_partition], (
            f"after the restart, {payload} answers offset {cdc_offset} of partition "
            f"{cdc_partition}, committed ({committed[cdc_partition]}) before the kill"
        )
        by_state.setdefault((*state, payload["status"]), []).append(payload)
    replayed = sum(len(copies) == 2 for copies in by_state.values())
    print(f"\nkilled with lag {lag}, {unpriced} unpriced; {replayed} states answered twice")
    for state, copies in by_state.items():
        assert len(copies) <= 2, f"{state} answered {len(copies)} times after one crash"
        answers = {(c.get("predicted_price"), c.get("model_version")) for c in copies}
        assert len(answers) == 1, f"{state} answered differently on replay: {answers}"

    # each live listing answers its newest state, with the serving model
    rows = dict(
        (car_id, (status, lsn, version))
        for car_id, status, lsn, version in db.execute(
            "SELECT car_id, status, source_lsn, model_version FROM tbl_price_prediction "
            "WHERE car_id = ANY(%s)",
            (ids,),
        )
    )
    newest = {}
    for car_id, lsn in states:
        newest[car_id] = max(lsn, newest.get(car_id, lsn))
    serving = served_prediction(stack_ready, FIESTA)["model_version"]
    assert rows == {car_id: ("priced", newest[car_id], serving) for car_id in live}
    assert _dead_letters_of(stack_ready, dlq_start, ids) == []
