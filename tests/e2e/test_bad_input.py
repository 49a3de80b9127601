"""A bad-input matrix through the real pipeline (issue 9): no listing stops pricing, and
none stays silently unpriced.

Three doors: SQL the table refuses (the named CHECK constraint is in the error), listings
refused by the model's rules, and raw messages produced onto the CDC topic. The table and
the model agree on every rule (model/listing_rules.py), so no SQL row reaches the model
to be refused there: that path is driven by raw CDC events of a real listing with a bad
row, which end as a 'refused' prediction. After every case the transformer runs with the
same pid, both connectors are RUNNING and a normal listing is priced within 10 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from confluent_kafka import Message, Producer

from config.settings import StackSettings
from model.listing_rules import latest_year
from operations.connectors import all_states
from stack.supervisor import Supervisor
from tests.support import (
    FIESTA,
    committed_offsets,
    end_offsets,
    insert_listing,
    read_until,
    wait_for,
)
from transformer.records import prediction_key

PRICED_WITHIN_S = 10
SINK_GROUP = "connect-car-price-predictions-sink"  # Connect's group of a sink: connect-<name>


def row(car_id: int, **changes: object) -> dict:
    return {"id": car_id, **FIESTA, **changes}


def envelope(car_id: int, lsn: int | None, op: str = "u", **changes: object) -> bytes:
    source = {"ts_ms": int(time.time() * 1000), "lsn": lsn, "table": "tbl_car_price"}
    return json.dumps({"op": op, "before": None, "after": row(car_id, **changes),
                       "source": source}).encode()  # fmt: skip


def key(car_id: int) -> bytes:
    return json.dumps({"id": car_id}, separators=(",", ":")).encode()  # as Debezium writes it


class Pipeline:
    """The shared setup: one producer, one supervisor view, the transformer's first pid."""

    def __init__(self, settings: StackSettings, db: psycopg.Connection) -> None:
        self.settings, self.db, self.kafka = settings, db, settings.kafka
        self.supervisor = Supervisor(settings)
        self.pid = self.transformer_pid()
        self.producer = Producer({
            **settings.kafka_admin(),
            "partitioner": "murmur2_random",  # the partition Connect would pick for a key
            "message.max.bytes": self.kafka.kafka_max_message_bytes,
        })  # fmt: skip
        self.ids: list[int] = []

    def transformer_pid(self) -> int:
        return next(p.pid for p in self.supervisor.processes() if p.name == "transformer")

    def listing(self, **changes: object) -> int:
        car_id = insert_listing(self.db, dict(FIESTA, **changes))
        self.ids.append(car_id)
        return car_id

    def prediction(self, car_id: int) -> dict | None:
        cursor = self.db.execute(
            "SELECT status, reason, refused_field, predicted_price, source_lsn "
            "FROM tbl_price_prediction WHERE car_id = %s",
            (car_id,),
        )
        found = cursor.fetchone()
        return dict(zip([c.name for c in cursor.description], found)) if found else None

    def priced(self, car_id: int, timeout: float = 30) -> dict:
        def status() -> dict | None:
            found = self.prediction(car_id)
            return found if found and found["status"] == "priced" else None

        return wait_for(status, timeout=timeout, interval=0.2)  # type: ignore[return-value]

    def refused(self, car_id: int) -> dict:
        """The listing's prediction once it is a refusal."""

        def status() -> dict | None:
            found = self.prediction(car_id)
            return found if found and found["status"] == "refused" else None

        return wait_for(status)  # type: ignore[return-value]

    def produce(self, value: bytes | None, raw_key: bytes | None) -> Message:
        delivered: list[Message] = []
        self.producer.produce(
            self.kafka.cdc_topic, value, raw_key, on_delivery=lambda _e, m: delivered.append(m)
        )
        assert self.producer.flush(30) == 0
        assert delivered[0].error() is None, delivered[0].error()
        return delivered[0]

    def dead_letter(self, start: list, sent: Message) -> dict[str, bytes]:
        """The DLQ copy of `sent`, found by its source partition and offset."""

        def ours(message: Message) -> bool:
            headers = dict(message.headers() or [])
            return headers.get("dlq.source.partition") == str(sent.partition()).encode() and (
                headers.get("dlq.source.offset") == str(sent.offset()).encode()
            )

        seen = read_until(self.settings, start, lambda got: any(map(ours, got)), timeout=30)
        found = [m for m in seen if ours(m)]
        assert found, f"no dead letter for offset {sent.offset()} of partition {sent.partition()}"
        return {name: value or b"" for name, value in found[0].headers() or []}

    def through_the_sink(self, start: list, car_id: int, lsn: int) -> None:
        """Wait until the transformer's record of the change at `lsn` is on the predictions
        topic and the sink has committed past it: the table then holds what the database
        made of it (a message priced later on another partition proves nothing)."""

        def ours(message: Message) -> bool:
            if message.key() != prediction_key(car_id) or message.value() is None:
                return False
            value = json.loads(message.value())
            return value.get("payload", value).get("source_lsn") == lsn

        seen = read_until(self.settings, start, lambda got: any(map(ours, got)), timeout=30)
        record = next((m for m in seen if ours(m)), None)
        assert record is not None, f"no prediction record of the change at {lsn}"
        topic, partition = self.kafka.predictions_topic, record.partition()
        wait_for(
            lambda: (
                committed_offsets(self.settings, SINK_GROUP, topic)[partition] > record.offset()
            ),
            timeout=60,
        )

    def assert_healthy(self) -> None:
        """Same transformer process, both connectors RUNNING, a normal listing priced fast."""
        car_id = self.listing(mileage=10_000 + len(self.ids))
        started = time.monotonic()
        self.priced(car_id, timeout=PRICED_WITHIN_S)
        assert time.monotonic() - started <= PRICED_WITHIN_S
        assert self.transformer_pid() == self.pid, "the transformer was restarted"
        states = {s.name: (s.state, {state for _, state in s.tasks}) for s in all_states(
            self.settings.connect)}  # fmt: skip
        assert states == {
            "car-price-predictions-sink": ("RUNNING", {"RUNNING"}),
            "car-price-source": ("RUNNING", {"RUNNING"}),
        }


@pytest.fixture(scope="module")
def pipeline(stack_ready: StackSettings) -> Iterator[Pipeline]:
    with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as db:
        shared = Pipeline(stack_ready, db)
        yield shared
        if shared.ids:
            db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (shared.ids,))


# (a) SQL the table refuses: (column overrides, the constraint named in the error)
SQL_REFUSED = {
    "model_only_tabs_and_newlines": ({"model": "\t\n"}, "tbl_car_price_model_not_blank"),
    "model_ideographic_space": ({"model": "\u3000"}, "tbl_car_price_model_not_blank"),
    "model_101_chars": ({"model": "x" * 101}, "tbl_car_price_model_at_most_100_chars"),
    "model_1mb": ({"model": "x" * 1_000_000}, "tbl_car_price_model_at_most_100_chars"),
    "year_1850": ({"year": 1850}, "tbl_car_price_year_1900_to_next_year"),
    "year_after_next": ({"year": latest_year() + 1}, "tbl_car_price_year_1900_to_next_year"),
    "mpg_nan": ({"mpg": float("nan")}, "tbl_car_price_mpg_over_0_to_500"),
    "mpg_infinity": ({"mpg": float("inf")}, "tbl_car_price_mpg_over_0_to_500"),
    "mileage_negative": ({"mileage": -1}, "tbl_car_price_mileage_0_to_1000000"),
    "engine_size_11": ({"engine_size": 11}, "tbl_car_price_engine_size_0_to_10"),
    "tax_over_5000": ({"tax": 5001}, "tbl_car_price_tax_0_to_5000"),
    "transmission_unknown": ({"transmission": "Warp"}, "tbl_car_price_transmission_known"),
    "price_zero": ({"price": 0}, "tbl_car_price_price_over_0_to_10000000"),
}


@pytest.mark.parametrize("case", SQL_REFUSED)
def test_sql_the_table_refuses_names_its_constraint(pipeline: Pipeline, case: str) -> None:
    changes, constraint = SQL_REFUSED[case]

    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_listing(pipeline.db, dict(FIESTA, **changes))

    assert refused.value.diag.constraint_name == constraint
    assert constraint in str(refused.value)
    pipeline.assert_healthy()


# (b) a real listing whose CDC event carries a row the model's rules refuse:
# (row overrides, the refused field); each ends as a visible 'refused' prediction
ROW_REFUSED = {
    "year_1850": ({"year": 1850}, "year"),
    "year_2999": ({"year": 2999}, "year"),
    "mileage_text": ({"mileage": "lots"}, "mileage"),
    "model_missing": ({"model": None}, "model"),
    "model_blank": ({"model": "\u2003\t"}, "model"),
    "engine_size_boolean": ({"engine_size": True}, "engine_size"),
}


@pytest.mark.parametrize("case", ROW_REFUSED)
def test_a_row_the_model_refuses_is_a_visible_refused_prediction(
    pipeline: Pipeline, case: str
) -> None:
    changes, field = ROW_REFUSED[case]
    car_id = pipeline.listing()
    lsn = pipeline.priced(car_id)["source_lsn"]
    dlq_start = end_offsets(pipeline.settings, pipeline.kafka.dlq_topic)

    sent = pipeline.produce(envelope(car_id, lsn + 1, **changes), key(car_id))

    refused = pipeline.refused(car_id)
    assert (refused["refused_field"], refused["predicted_price"]) == (field, None)
    assert refused["reason"].startswith(f"{field}: ")
    verdict = pipeline.db.execute(
        "SELECT verdict FROM v_car_price_recommendation WHERE id = %s", (car_id,)
    ).fetchone()[0]
    assert verdict == f"refused: {refused['reason']}"
    assert pipeline.dead_letter(dlq_start, sent)["dlq.reason"] == b"invalid_listing"
    pipeline.assert_healthy()


def _huge(car_id: int) -> bytes:
    """A valid-JSON event just under the topic's limit: a ~1 MB model name."""
    size = 1_040_000
    return envelope(car_id, None, model="x" * (size - len(envelope(car_id, None, model=""))))


# (c) raw messages on the CDC topic: (value, key, the DLQ reason); `ID` is a real listing
ID = -1
RAW = {
    "not_json": (b"{not json", key(ID), "invalid_json"),
    "invalid_utf8": (b'{"op": "c", "after": "\xc3\x28"}', key(ID), "invalid_json"),
    "int_of_5000_digits": (
        b'{"op": "c", "after": {"id": ' + b"9" * 5000 + b"}}",
        key(ID),
        "invalid_json",
    ),  # fmt: skip
    "nested_100k_deep": (b"[" * 100_000, key(ID), "invalid_json"),
    "json_array": (b"[1, 2, 3]", key(ID), "invalid_envelope"),
    "json_null": (b"null", key(ID), "invalid_envelope"),
    "missing_op": (b'{"after": {"id": 1}}', key(ID), "invalid_envelope"),
    "op_not_a_string": (b'{"op": 7, "after": {}}', key(ID), "invalid_envelope"),
    "after_not_an_object": (b'{"op": "c", "after": "Fiesta"}', key(ID), "invalid_envelope"),
    "unknown_op": (b'{"op": "z", "after": {}}', key(ID), "unsupported_op"),
    "truncate_op": (b'{"op": "t"}', key(ID), "unsupported_op"),
    # a keyless record is refused by the broker itself (the CDC topic is compacted)
    "tombstone_with_empty_key": (None, b"", "invalid_json"),
    "tombstone_with_odd_key": (None, b'{"id": "seven"}', "invalid_key"),
    "key_not_json": (b'{"op": "c", "after": {"model": "Ka"}}', b"\xff\xfe\x00", "invalid_json"),
    "key_id_infinite": (
        b'{"op": "c", "after": {"model": "Ka"}}',
        b'{"id": 1e400}',
        "invalid_key",
    ),  # fmt: skip
    "key_id_20_digits": (
        b'{"op": "c", "after": {"model": "Ka"}}',
        b'{"id": 99999999999999999999}',
        "invalid_key",
    ),  # fmt: skip
    "huge_near_the_limit": (b"", key(ID), "invalid_listing"),  # value built from the listing
}


@pytest.mark.parametrize("case", RAW)
def test_a_raw_message_goes_to_the_dlq_with_its_reason(pipeline: Pipeline, case: str) -> None:
    value, raw_key, reason = RAW[case]
    car_id = pipeline.listing()
    raw_key = key(car_id) if raw_key == key(ID) else raw_key
    if case == "huge_near_the_limit":  # its refusal must land after the listing's price
        pipeline.priced(car_id)
        value = _huge(car_id)
    dlq_start = end_offsets(pipeline.settings, pipeline.kafka.dlq_topic)

    sent = pipeline.produce(value, raw_key)

    headers = pipeline.dead_letter(dlq_start, sent)
    assert headers["dlq.reason"] == reason.encode() and headers["dlq.error"]
    if case == "huge_near_the_limit":
        assert headers["dlq.trimmed"] == b"true"
        assert headers["dlq.original.size"] == str(len(value)).encode()
        # the listing's row becomes the refusal of this event (its model name, 1 MB long)
        refused = pipeline.refused(car_id)
        assert (refused["refused_field"], refused["predicted_price"]) == ("model", None)
        assert refused["reason"].startswith("model: "), refused
    pipeline.assert_healthy()


def _cdc_events(pipeline: Pipeline, start: list, car_id: int, count: int) -> list[Message]:
    def mine(seen: list[Message]) -> list[Message]:
        return [m for m in seen if m.key() == key(car_id) and m.value() is not None]

    return mine(read_until(pipeline.settings, start, lambda seen: len(mine(seen)) >= count))


def test_an_old_event_replayed_never_replaces_a_newer_prediction(pipeline: Pipeline) -> None:
    start = end_offsets(pipeline.settings, pipeline.kafka.cdc_topic)
    car_id = pipeline.listing(mileage=5_000)
    old = pipeline.priced(car_id)
    pipeline.db.execute("UPDATE tbl_car_price SET mileage = 90000 WHERE id = %s", (car_id,))
    newer = wait_for(lambda: (p := pipeline.priced(car_id))["source_lsn"] > old["source_lsn"] and p)
    first, *_ = _cdc_events(pipeline, start, car_id, 2)

    predictions = end_offsets(pipeline.settings, pipeline.kafka.predictions_topic)
    pipeline.produce(first.value(), first.key())  # the create again, after the update
    pipeline.through_the_sink(predictions, car_id, json.loads(first.value())["source"]["lsn"])

    assert pipeline.prediction(car_id) == newer
    pipeline.assert_healthy()


def test_a_replayed_event_after_a_delete_does_not_bring_the_prediction_back(
    pipeline: Pipeline,
) -> None:
    start = end_offsets(pipeline.settings, pipeline.kafka.cdc_topic)
    car_id = pipeline.listing(mileage=6_000)
    pipeline.priced(car_id)
    [created] = _cdc_events(pipeline, start, car_id, 1)
    pipeline.db.execute("DELETE FROM tbl_car_price WHERE id = %s", (car_id,))
    wait_for(lambda: pipeline.prediction(car_id) is None)

    predictions = end_offsets(pipeline.settings, pipeline.kafka.predictions_topic)
    pipeline.produce(created.value(), created.key())
    pipeline.through_the_sink(predictions, car_id, json.loads(created.value())["source"]["lsn"])

    assert pipeline.prediction(car_id) is None
    pipeline.assert_healthy()
    trace = pipeline.db.execute(
        "SELECT source_lsn FROM tbl_price_prediction_deleted WHERE car_id = %s", (car_id,)
    ).fetchone()
    assert trace is not None and trace[0] >= json.loads(created.value())["source"]["lsn"]


def test_a_refused_update_replaces_the_price_and_a_valid_one_prices_again(
    pipeline: Pipeline,
) -> None:
    car_id = pipeline.listing(mileage=7_000)
    lsn = pipeline.priced(car_id)["source_lsn"]

    pipeline.produce(envelope(car_id, lsn + 1, year=1850), key(car_id))
    refused = pipeline.refused(car_id)
    assert (refused["refused_field"], refused["predicted_price"]) == ("year", None)
    assert refused["reason"].startswith("year: ") and refused["source_lsn"] == lsn + 1, refused
    pipeline.db.execute("UPDATE tbl_car_price SET mileage = 8000 WHERE id = %s", (car_id,))

    priced = pipeline.priced(car_id)
    assert priced["predicted_price"] > 0 and priced["reason"] is None
    assert priced["source_lsn"] > lsn + 1


def test_the_price_service_itself_refuses_a_future_year(stack_ready: StackSettings) -> None:
    """What the transformer's own check mirrors: the model's 400 names the field."""
    listing = {k: v for k, v in dict(FIESTA, year=latest_year() + 1).items() if k != "price"}
    response = httpx.post(
        f"{stack_ready.services.bentoml_url}/predict", json={"listings": [listing]}, timeout=10
    )
    assert response.status_code == 400
    assert ["listings", 0, "year"] in [error["loc"] for error in response.json()["detail"]]
