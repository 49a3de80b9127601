"""`make rescore` (operations/rescore.py): when the next slice may be asked for, and on the real
stack, that a stalled pipeline holds the snapshot at one slice, the rescore still ends, and
one asked for an id range re-prices that range only."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import psycopg

from config.settings import StackSettings
from operations import rescore
from operations.rescore import SLICE, Slicer
from stack.supervisor import Supervisor
from tests.support import copy_listings, end_offsets, wait_for


def _slicer(**fields: object) -> Slicer:
    return Slicer(None, lambda: 0, last_id=1000, rate=100, backlog=500, **fields)  # type: ignore[arg-type]


def test_a_slice_is_asked_for_within_the_rate_and_the_backlog_and_up_to_the_last_id() -> None:
    slicer = _slicer(next_id=1, not_before=5.0)

    assert not slicer.may_ask(now=4.9, waiting=0), "sooner than the rate allows"
    assert slicer.may_ask(now=5.0, waiting=0) and slicer.may_ask(now=5.0, waiting=500)
    assert slicer.may_ask(now=5.0, waiting=None), "no commit yet: nothing waits"
    assert not slicer.may_ask(now=5.0, waiting=501), "live changes wait: none is added"
    assert not _slicer(next_id=1001).may_ask(now=9.0, waiting=0), "past the last listing"


def _signals(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM debezium_signal").fetchone()[0]


def _topic_end(settings: StackSettings) -> int:
    return sum(tp.offset for tp in end_offsets(settings, settings.kafka.cdc_topic))


def test_a_stalled_transformer_holds_the_snapshot_at_one_slice_and_the_rescore_ends_after(
    stack_ready: StackSettings, db: psycopg.Connection
) -> None:
    ids, signals = copy_listings(db, 2000), _signals(db)
    scoped, outside = ids[:1500], ids[1500:]  # the rescore is asked for the first 1,500
    pids = [p.pid for p in Supervisor(stack_ready).processes() if p.name.startswith("transformer")]
    lines: list[str] = []
    result: list[int] = []
    try:
        wait_for(lambda: db.execute("SELECT count(*) FROM tbl_price_prediction WHERE "
                                    "car_id = ANY(%s)", (ids,)).fetchone()[0] == len(ids),
                 timeout=120)  # fmt: skip
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        before, since = _topic_end(stack_ready), db.execute("SELECT now()").fetchone()[0]
        worker = threading.Thread(
            target=lambda: result.append(
                rescore.rescore(stack_ready, 120, 1e6, 10**6, everything=True,
                                ids=(scoped[0], scoped[-1]),
                                say=lambda line, **_: lines.append(line), report_s=0.2)
            )
        )  # fmt: skip
        worker.start()

        def slices() -> int:
            found = [int(n) for line in lines for n in re.findall(r"(\d+) slices\)", line)]
            return max(found, default=0)

        wait_for(lambda: slices() >= 1, timeout=20, interval=0.1)
        time.sleep(4)  # Debezium reads the slice; nothing prices it
        assert slices() == 1, lines
        assert 0 < _topic_end(stack_ready) - before <= SLICE, "one slice, then nothing"
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        worker.join(180)
        assert result == [0], lines
        assert lines[-1].startswith("done: every listing is priced by"), lines

        def repriced(car_ids: list[int]) -> int:
            return db.execute(
                "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s) "
                "AND written_at >= %s",
                (car_ids, since),
            ).fetchone()[0]

        assert repriced(scoped) == len(scoped), "every listing of the range priced again"
        assert repriced(outside) == 0, "no listing outside the range priced again"
        assert _signals(db) == signals, "the signal table is left as it was"
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (ids,))
        wait_for(  # the next test starts from a table without them
            lambda: (
                not db.execute(
                    "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
                ).fetchone()[0]
            ),
            timeout=120,
        )
