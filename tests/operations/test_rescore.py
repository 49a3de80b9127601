"""`make rescore` (operations/rescore.py): when the next slice may be asked for and how its
size follows the backlog, and on the real stack, that a stalled pipeline holds the snapshot
at the slices in flight, the rescore still ends, one asked for an id range re-prices that
range only, and one interrupted by SIGKILL is finished by running it again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import psycopg

from config.settings import StackSettings
from operations import rescore
from operations.rescore import DEPTH, SLICE, Slicer
from stack.supervisor import Supervisor
from tests.support import copy_listings, end_offsets, wait_for


def _slicer(**fields: object) -> Slicer:
    return Slicer(None, lambda: 0, last_id=1000, rate=100, backlog=500, **fields)  # type: ignore[arg-type]


def _delete(db: psycopg.Connection, ids: list[int], timeout: float) -> None:
    """Delete the test's listings and wait until their predictions are gone too, so the next
    test starts from a table without them."""
    db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (ids,))
    wait_for(
        lambda: (
            not db.execute(
                "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
            ).fetchone()[0]
        ),
        timeout=timeout,
    )


def test_a_slice_is_asked_for_within_the_rate_the_backlog_the_depth_and_up_to_the_last_id() -> None:
    slicer = _slicer(next_id=1, not_before=5.0)

    assert not slicer.may_ask(now=4.9, waiting=0), "sooner than the rate allows"
    assert slicer.may_ask(now=5.0, waiting=0) and slicer.may_ask(now=5.0, waiting=500)
    assert slicer.may_ask(now=5.0, waiting=None), "no commit yet: nothing waits"
    assert not slicer.may_ask(now=5.0, waiting=501), "live changes wait: none is added"
    assert not _slicer(next_id=1001).may_ask(now=9.0, waiting=0), "past the last listing"
    in_flight = [(1, 64, None), (65, 128, None)]
    assert not _slicer(next_id=129, pending=in_flight).may_ask(now=9.0, waiting=0), "depth 2"
    assert _slicer(next_id=129, pending=in_flight[:1]).may_ask(now=9.0, waiting=0)


def test_the_slice_grows_while_the_backlog_stays_under_its_bound_and_halves_when_it_does_not() -> (
    None
):
    slicer = _slicer(size=SLICE, max_size=4 * SLICE, slices=1, pending=[(1, 64, None)] * 9)

    slicer.observe(100)
    slicer.priced_one()
    assert slicer.size == 2 * SLICE, "priced with room to spare: one step more"
    slicer.slices = 2
    slicer.priced_one()
    slicer.priced_one()
    slicer.priced_one()
    assert slicer.size == 4 * SLICE, "never past max_size"
    slicer.slices = 3
    slicer.observe(501)
    assert slicer.size == 2 * SLICE, "a live change would queue: halved"
    slicer.observe(900)
    assert slicer.size == 2 * SLICE, "once per slice asked: the ones in flight were sized before"
    slicer.priced_one()
    assert slicer.size == 2 * SLICE, "a slice priced during the backlog does not grow the next"
    slicer.slices = 4
    slicer.observe(600)
    slicer.slices = 5
    slicer.observe(600)
    slicer.slices = 6
    slicer.observe(600)
    assert slicer.size == SLICE, "never under one step"


def _signals(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM debezium_signal").fetchone()[0]


def _topic_end(settings: StackSettings) -> int:
    return sum(tp.offset for tp in end_offsets(settings, settings.kafka.cdc_topic))


def test_a_stalled_transformer_holds_the_snapshot_at_the_slices_in_flight_and_it_ends_after(
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
                rescore.rescore(stack_ready, 120, everything=True,
                                ids=(scoped[0], scoped[-1]),
                                say=lambda line, **_: lines.append(line), report_s=0.2)
            )
        )  # fmt: skip
        worker.start()

        def slices() -> int:
            found = [int(n) for line in lines for n in re.findall(r"(\d+) slices\b", line)]
            return max(found, default=0)

        wait_for(lambda: slices() >= 1, timeout=20, interval=0.1)
        wait_for(lambda: _topic_end(stack_ready) > before, timeout=30, interval=0.1)
        time.sleep(4)  # Debezium has read a slice; with nothing priced no more may come
        assert slices() <= DEPTH, lines
        assert 0 < _topic_end(stack_ready) - before <= DEPTH * SLICE, "the slices in flight only"
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
        _delete(db, ids, timeout=120)


def test_a_rescore_killed_midway_and_a_transformer_killed_are_finished_by_running_it_again(
    stack_ready: StackSettings, db: psycopg.Connection
) -> None:
    """Issue 20: a rescore interrupted by a fault is resumable. The listings' predictions are
    marked as an older model's, so `make rescore` (no `--everything`) owes them a price; the
    rescore process is SIGKILLed midway, a transformer is SIGKILLed while the second run goes
    on, and the second run ends with every one of them on the serving version."""
    ids = copy_listings(db, 6000)
    first, last = ids[0], ids[-1]

    def on_old() -> int:
        return db.execute(
            "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s) "
            "AND model_version = 'an-older-model'",
            (ids,),
        ).fetchone()[0]

    try:
        wait_for(lambda: db.execute("SELECT count(*) FROM tbl_price_prediction WHERE "
                                    "car_id = ANY(%s)", (ids,)).fetchone()[0] == len(ids),
                 timeout=180)  # fmt: skip
        db.execute(  # same source_lsn: the newest-wins trigger lets it through
            "UPDATE tbl_price_prediction SET model_version = 'an-older-model' "
            "WHERE car_id = ANY(%s)",
            (ids,),
        )
        assert on_old() == len(ids)
        command = [sys.executable, "-m", "operations.rescore", "--ids", str(first), str(last)]
        first_run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: on_old() < len(ids) - 500, timeout=120, interval=0.05)
            assert first_run.poll() is None, "killed midway, not after the end"
            first_run.send_signal(signal.SIGKILL)
            assert first_run.wait(10) == -signal.SIGKILL
        finally:
            if first_run.poll() is None:
                first_run.kill()
        left = on_old()
        assert 0 < left < len(ids), "the rescore was killed midway"

        lines: list[str] = []
        result: list[int] = []
        worker = threading.Thread(
            target=lambda: result.append(
                rescore.rescore(stack_ready, 120, ids=(first, last),
                                say=lambda line, **_: lines.append(line), report_s=0.2)
            )
        )  # fmt: skip
        worker.start()
        wait_for(lambda: on_old() < left or not worker.is_alive(), timeout=60, interval=0.05)
        assert worker.is_alive() and 0 < on_old() < left, "the transformer dies mid-rescore"
        transformer = next(
            p for p in Supervisor(stack_ready).processes() if p.name.startswith("transformer")
        )
        os.kill(transformer.pid, signal.SIGKILL)  # supervisor starts it again
        worker.join(300)
        assert result == [0], lines
        assert lines[-1].startswith("done: every listing is priced by"), lines
        assert on_old() == 0, "every listing of the range is on the serving version"
        assert any("ETA" in line for line in lines), "progress shows an ETA"
    finally:
        _delete(db, ids, timeout=180)


def test_a_rescore_goes_on_through_connect_killed_under_it(
    stack_ready: StackSettings, db: psycopg.Connection
) -> None:
    """Connect (the Debezium source and the JDBC sink) SIGKILLed mid-rescore: supervisor
    starts it again, Debezium resumes from its offsets, and the same rescore ends with every
    listing on the serving version."""
    ids = copy_listings(db, 6000)
    since = db.execute("SELECT now()").fetchone()[0]

    def repriced() -> int:
        return db.execute(
            "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s) AND written_at >= %s",
            (ids, since),
        ).fetchone()[0]

    lines: list[str] = []
    result: list[int] = []
    try:
        wait_for(lambda: db.execute("SELECT count(*) FROM tbl_price_prediction WHERE "
                                    "car_id = ANY(%s)", (ids,)).fetchone()[0] == len(ids),
                 timeout=180)  # fmt: skip
        since = db.execute("SELECT now()").fetchone()[0]
        worker = threading.Thread(
            target=lambda: result.append(
                rescore.rescore(stack_ready, 240, everything=True, ids=(ids[0], ids[-1]),
                                say=lambda line, **_: lines.append(line), report_s=0.5)
            )
        )  # fmt: skip
        worker.start()
        wait_for(lambda: repriced() > 300 or not worker.is_alive(), timeout=60, interval=0.05)
        assert worker.is_alive() and repriced() < len(ids), "killed midway, not after the end"
        connect = next(
            p for p in Supervisor(stack_ready).processes() if p.name.startswith("connect")
        )
        os.kill(connect.pid, signal.SIGKILL)  # supervisor starts it again
        worker.join(420)
        assert result == [0], lines
        assert repriced() == len(ids), "every listing of the range priced again"
    finally:
        _delete(db, ids, timeout=300)
