"""Fixtures for the end-to-end tests: listings in, predictions out."""

from __future__ import annotations

import psycopg
import pytest

# Re-exported for tests still importing them from here; they live in tests/support.py.
from tests.support import (  # noqa: F401
    FIELDS,
    FIESTA,
    insert_listing,
    prediction,
    served_prediction,
)


@pytest.fixture()
def cleanup(db: psycopg.Connection):
    """Ids of listings a test created; deleted afterwards (their predictions follow)."""
    ids: list[int] = []
    yield ids
    if ids:
        db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (ids,))
