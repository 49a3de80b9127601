"""Ship a new model on the real stack: train → deploy (no failed request) → rescore.

A model is trained on generated data (never the real file) into the stack's own BentoML
store; afterwards the model that served before is deployed again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest

from config.settings import REPO_ROOT, StackSettings
from model.client import serving_info
from tests.model.support import make_ford_like
from tests.support import (
    FIELDS,
    generated_listing,
    insert_listing,
    prediction,
    served_prediction,
    wait_for,
)

LISTINGS = 600  # a few incremental snapshot chunks
EDITED = 6
# Training, even on 800 generated rows, takes minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(2400)


def _env(settings: StackSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BENTOML_MODEL_TAG", None)
    env.setdefault("BENTOML_HOME", str(settings.state_dir / "bentoml"))
    return env


def _run(settings: StackSettings, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO_ROOT,
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _train(settings: StackSettings, csv: Path, reports: Path) -> str:
    result = _run(
        settings,
        "model.train",
        "--data",
        str(csv),
        "--report-dir",
        str(reports),
        "--quiet",
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    return next(
        line.split()[-1] for line in result.stdout.splitlines() if line.startswith("model: ")
    )


@pytest.fixture(scope="module")
def models(stack_ready: StackSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """{"before": the serving tag, "before_mae": its holdout MAE, "new": a model trained
    on generated data}."""
    root = tmp_path_factory.mktemp("lifecycle")
    make_ford_like(800, seed=41).to_csv(root / "generated.csv", index=False)
    before = serving_info(stack_ready.services.bentoml_url)
    tags = {
        "before": before["model_version"],
        "before_mae": before["metrics"]["mae"],
        "new": _train(stack_ready, root / "generated.csv", root / "reports"),
    }
    yield tags
    restored = _run(stack_ready, "model.deploy", "--tag", tags["before"], "--force")
    assert restored.returncode == 0, restored.stderr


def _hammer(url: str, stop: threading.Event, answers: list[tuple[int, str]]) -> None:
    """Price one listing in a loop, recording (status, model_version) of every answer."""
    body = {"listings": [{k: v for k, v in generated_listing(0).items() if k != "price"}]}
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            response = client.post(f"{url}/predict", json=body)
            version = response.json()[0]["model_version"] if response.status_code == 200 else ""
            answers.append((response.status_code, version))


def test_deploy_switches_without_a_failed_request_then_rescore_reprices_everything(
    stack_ready: StackSettings, db: psycopg.Connection, models: dict
) -> None:
    url = stack_ready.services.bentoml_url
    ids: list[int] = []
    try:
        for i in range(LISTINGS):
            ids.append(insert_listing(db, generated_listing(i)))
        wait_for(lambda: all(prediction(db, i) for i in (ids[0], ids[-1])), timeout=120)

        # Deploy while a client keeps asking: every answer is a 200, old then new version.
        stop, answers = threading.Event(), []
        hammer = threading.Thread(target=_hammer, args=(url, stop, answers))
        hammer.start()
        try:
            wait_for(lambda: answers, timeout=60, interval=0.1)  # the old model answers first
            deployed = _run(stack_ready, "model.deploy", "--tag", models["new"], "--force")
            assert deployed.returncode == 0, deployed.stdout + deployed.stderr
            # the deploy returns once the service answers with the new model: the hammer
            # sees it too, at its own pace (one request at a time)
            wait_for(lambda: answers[-1][1] == models["new"], timeout=60, interval=0.1)
        finally:
            stop.set()
            hammer.join(30)
        assert {status for status, _ in answers} == {200}, answers
        versions = [v for _, v in answers]
        assert versions[0] == models["before"] and versions[-1] == models["new"]
        switch = versions.index(models["new"])
        assert set(versions[switch:]) == {models["new"]}, "never back to the old model"

        # Rescore, editing listings while it runs: each keeps the price of its newest state.
        rescore = subprocess.Popen(
            [sys.executable, "-m", "operations.rescore", "--stall-timeout", "90"],
            cwd=REPO_ROOT,
            env=_env(stack_ready),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        edited = ids[:: LISTINGS // EDITED][:EDITED]
        for round_ in range(1, 4):
            for car_id in edited:
                db.execute(
                    "UPDATE tbl_car_price SET mileage = mileage + %s, year = %s WHERE id = %s",
                    (1000 * round_, 2013 + round_, car_id),
                )
            time.sleep(0.3)
        output, _ = rescore.communicate(timeout=600)
        assert rescore.returncode == 0, output
        assert "incremental snapshot" in output and "done" in output, output

        not_moved = db.execute(
            "SELECT count(*) FROM tbl_car_price c LEFT JOIN tbl_price_prediction p "
            "ON p.car_id = c.id WHERE p.model_version IS DISTINCT FROM %s",
            (models["new"],),
        ).fetchone()[0]
        assert not_moved == 0
        columns = ", ".join(FIELDS)
        for car_id in edited:
            row = db.execute(
                f"SELECT {columns} FROM tbl_car_price WHERE id = %s", (car_id,)
            ).fetchone()
            state = {k: float(v) if isinstance(v, Decimal) else v for k, v in zip(FIELDS, row)}
            newest = served_prediction(stack_ready, state)
            # the last write for this listing may still be on its way: wait for it
            wait_for(
                lambda car_id=car_id, newest=newest: (
                    (prediction(db, car_id) or {}).get("predicted_price")
                    == newest["predicted_price"]
                ),
                timeout=60,
            )
    finally:
        if ids:
            db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (ids,))


def test_worse_model_is_refused_unless_forced(stack_ready: StackSettings, models: dict) -> None:
    """With the generated-data model serving (MAE a few hundred GBP on its easy holdout),
    the previous model is far more than 2 % worse: refused, then deployed with --force."""
    url = stack_ready.services.bentoml_url
    if serving_info(url)["model_version"] != models["new"]:
        assert _run(stack_ready, "model.deploy", "--tag", models["new"], "--force").returncode == 0
    new_mae = serving_info(url)["metrics"]["mae"]
    old_mae = models["before_mae"]
    assert old_mae > new_mae * 1.02, "precondition: the old model must look worse here"
    refused = _run(stack_ready, "model.deploy", "--tag", models["before"])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "refused" in refused.stderr and "MAE" in refused.stderr
    assert serving_info(url)["model_version"] == models["new"]
    forced = _run(stack_ready, "model.deploy", "--tag", models["before"], "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert serving_info(url)["model_version"] == models["before"]
