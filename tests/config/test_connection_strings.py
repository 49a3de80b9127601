"""Connection strings survive passwords and names holding every awkward character."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from config.settings import PostgresSettings

AWKWARD = "p@ss:w/o%rd#1'2\"3 4\\5&6?7=8"


def _settings() -> PostgresSettings:
    return PostgresSettings(
        pg_superuser_password=AWKWARD,
        app_db_password="x",
        cdc_db_password="x",
        sink_db_password="x",
        pg_port=5999,
    )


def test_sqlalchemy_url_keeps_password_host_and_database() -> None:
    url = make_url(_settings().url().render_as_string(hide_password=False))
    assert (url.password, url.username, url.host, url.port, url.database) == (
        AWKWARD,
        "postgres",
        "127.0.0.1",
        5999,
        "car_database",
    )


def test_libpq_dsn_keeps_every_part() -> None:
    parts = conninfo_to_dict(_settings().dsn(user="car_app", password=AWKWARD, database="d b"))
    assert parts == {
        "host": "127.0.0.1",
        "port": "5999",
        "dbname": "d b",
        "user": "car_app",
        "password": AWKWARD,
    }
