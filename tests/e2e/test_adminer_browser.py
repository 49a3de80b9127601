"""A person's path, in a real browser: log into Adminer, insert a listing with the
"New item" form, and find its predicted price through Adminer's pages.

Playwright (Python) drives Debian's Chromium (/usr/bin/chromium); nothing is downloaded.
The screenshot is kept in test-artifacts/ (and used by the README).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from config.settings import REPO_ROOT, StackSettings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"
# flags for a closed network: no background connections, no sandbox as root
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NEW_LISTING = {
    "model": "Kuga",
    "year": "2019",
    "price": "17250",
    "transmission": "Automatic",
    "fuel_type": "Diesel",
    "tax": "145",
    "mpg": "54.3",
    "engine_size": "2.0",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Chromium missing: `make up` installs Debian's chromium (as root)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _adminer_url(settings: StackSettings, **params: str) -> str:
    pg = settings.postgres
    query = {
        "pgsql": f"{pg.pg_host}:{pg.pg_port}",
        "username": pg.app_db_user,
        "db": pg.pg_database,
        "ns": "public",
        **params,
    }
    return f"{settings.services.adminer_url}?{urlencode(query)}"


def _log_in(page: Page, settings: StackSettings) -> None:
    pg = settings.postgres
    page.goto(settings.services.adminer_url)
    page.select_option('select[name="auth[driver]"]', "pgsql")
    page.fill('input[name="auth[server]"]', f"{pg.pg_host}:{pg.pg_port}")
    page.fill('input[name="auth[username]"]', pg.app_db_user)
    page.fill('input[name="auth[password]"]', pg.app_db_password)
    page.fill('input[name="auth[db]"]', pg.pg_database)
    page.click('input[type="submit"][value="Login"]')
    page.wait_for_selector("text=tbl_car_price")


def _insert_with_new_item_form(page: Page, settings: StackSettings, listing: dict) -> None:
    page.goto(_adminer_url(settings, select="tbl_car_price"))
    # Fill the form only once its page has loaded: Adminer's scripts move the focus to
    # the first field, and a value typed while the page still loads can be lost.
    with page.expect_navigation(wait_until="load"):
        page.click("text=New item")
    for field, value in listing.items():
        page.fill(f'[name="fields[{field}]"]', value)
    for field, value in listing.items():
        expect(page.locator(f'[name="fields[{field}]"]')).to_have_value(value)
    with page.expect_navigation(wait_until="load"):
        page.click('input[type="submit"][value="Save"]')
    # Adminer answers with a .message (done) or an .error (refused, e.g. by a CHECK)
    answer = page.locator(".message, .error").first.inner_text()
    assert "has been inserted" in answer, f"Adminer did not confirm the insert: {answer!r}"


def _unused_mileage(db: psycopg.Connection) -> str:
    """A mileage no listing has yet, so Adminer's filter on it finds exactly our row."""
    while True:
        mileage = random.randint(10_000, 999_999)
        taken = db.execute("SELECT 1 FROM tbl_car_price WHERE mileage = %s", (mileage,))
        if taken.fetchone() is None:
            return str(mileage)


def _first_row(
    page: Page, settings: StackSettings, table: str, column: str, value: str
) -> dict[str, str]:
    """The first row of Adminer's select page for `table` filtered on column = value."""
    page.goto(
        _adminer_url(
            settings,
            select=table,
            **{"where[0][col]": column, "where[0][op]": "=", "where[0][val]": value},
        )
    )
    rows = page.locator("#table tbody tr")
    if rows.count() == 0:
        return {}
    headers = [h.inner_text().strip() for h in page.locator("#table thead th").all()]
    cells = [c.inner_text().strip() for c in rows.first.locator("td").all()]
    # the first cell of a table's row holds the "edit" link, which has no <th>
    return dict(zip(headers, cells[-len(headers) :]))


def _find_prediction(
    page: Page, settings: StackSettings, car_id: int, timeout: float = 20
) -> dict[str, str]:
    """Reload the view's page filtered on the listing until its predicted price shows."""
    deadline = time.monotonic() + timeout
    while True:
        row = _first_row(page, settings, "v_car_price_recommendation", "id", str(car_id))
        if row.get("predicted_price") not in (None, "", "NULL"):
            return row
        if time.monotonic() > deadline:
            pytest.fail(
                f"no predicted price for listing {car_id} in Adminer after {timeout}s: {row}"
            )
        time.sleep(1)


def test_insert_in_adminer_and_see_the_predicted_price(
    stack_ready: StackSettings, browser: Browser, db: psycopg.Connection
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 700})
    car_id = None
    try:
        _log_in(page, stack_ready)
        mileage = _unused_mileage(db)  # finds our row again among the others
        _insert_with_new_item_form(page, stack_ready, dict(NEW_LISTING, mileage=mileage))
        listing = _first_row(page, stack_ready, "tbl_car_price", "mileage", mileage)
        assert listing.get("model") == "Kuga", listing
        car_id = int(listing["id"])
        row = _find_prediction(page, stack_ready, car_id)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "adminer-prediction.png"), full_page=True)

        stored = db.execute(
            "SELECT round(predicted_price::numeric, 0) FROM tbl_price_prediction WHERE car_id = %s",
            (car_id,),
        ).fetchone()
        assert stored is not None
        assert float(row["predicted_price"]) == float(stored[0])
        assert row["model"] == "Kuga" and row["asking_price"] == "17250"
        assert row["verdict"] in {"below range", "fair", "above range"}
    finally:
        page.close()
        if car_id is not None:
            db.execute("DELETE FROM tbl_car_price WHERE id = %s", (car_id,))
