"""Helpers and fixtures for the end-to-end tests: listings in, predictions out."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from config.settings import StackSettings

FIELDS = (
    "model",
    "year",
    "price",
    "transmission",
    "mileage",
    "fuel_type",
    "tax",
    "mpg",
    "engine_size",
)
FIESTA = dict(
    model="Fiesta",
    year=2018,
    price=9995,
    transmission="Manual",
    mileage=24000,
    fuel_type="Petrol",
    tax=145,
    mpg=65.7,
    engine_size=1.0,
)


def insert_listing(db: psycopg.Connection, listing: dict) -> int:
    columns = ", ".join(FIELDS)
    values = ", ".join(f"%({field})s" for field in FIELDS)
    return db.execute(
        f"INSERT INTO tbl_car_price ({columns}) VALUES ({values}) RETURNING id", listing
    ).fetchone()[0]


def prediction(db: psycopg.Connection, car_id: int) -> dict | None:
    row = db.execute(
        "SELECT predicted_price, price_low, price_high, model_version, "
        "source_committed_at, written_at FROM tbl_price_prediction "
        "WHERE car_id = %s",
        (car_id,),
    ).fetchone()
    keys = (
        "predicted_price",
        "price_low",
        "price_high",
        "model_version",
        "source_committed_at",
        "written_at",
    )
    return dict(zip(keys, row)) if row else None


def served_prediction(settings: StackSettings, listing: dict) -> dict:
    body = {"listings": [{key: value for key, value in listing.items() if key != "price"}]}
    response = httpx.post(f"{settings.services.bentoml_url}/predict", json=body, timeout=10)
    response.raise_for_status()
    return response.json()[0]


@pytest.fixture()
def cleanup(db: psycopg.Connection):
    """Ids of listings a test created; deleted afterwards (their predictions follow)."""
    ids: list[int] = []
    yield ids
    if ids:
        db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (ids,))
