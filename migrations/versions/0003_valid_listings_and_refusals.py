"""One definition of a valid listing; every listing priced or refused; newest state wins.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Listings. `tbl_car_price`'s CHECK constraints are replaced by `RULES`, written out as
`model.listing_rules` defined them on this revision's day (the definition the price
service validates with too), so the table never accepts a listing the model refuses.
They are literals: a migration is frozen history, and a later rule belongs in a new
migration (tests/migrations/test_listing_rules.py checks that table and model agree).
Each constraint is named after its rule (`tbl_car_price_mpg_over_0_to_500`) and
commented with it in words. The year rule uses `now()`: Postgres allows a
non-immutable CHECK and assumes it never turns a stored row invalid, which holds here
because the upper bound (next year, UTC) only ever grows.
Existing rows: each constraint is added NOT VALID (new and changed rows are checked at
once), then VALIDATEd when no stored row breaks it. When rows do, the constraint stays
NOT VALID and the migration logs how many and which ids; fix or delete them, then
`ALTER TABLE tbl_car_price VALIDATE CONSTRAINT <name>`. Nothing is changed silently.

Predictions. `tbl_price_prediction` gains
- `status` 'priced' | 'refused' (default 'priced', so records without it, as the
  transformer wrote them before, still upsert), `reason` and `refused_field`: a refused
  listing has a reason and no prices; a priced one has prices and a model version;
- `source_lsn`, Debezium's `source.lsn` of the listing change the record answers.
  Changes to one row are serialised by its row lock, so per listing a larger LSN is a
  newer state.

Newest state wins, in the database, whatever the delivery order (DLQ replay, consumer
group reset, a partition moving between transformer instances mid-batch). The JDBC sink
upserts with `INSERT ... ON CONFLICT (car_id) DO UPDATE`; the BEFORE INSERT OR UPDATE
trigger `tbl_price_prediction_newest_wins` returns NULL, which skips the write without
an error, when
- the stored row has a larger `source_lsn` (UPDATE), or
- `tbl_price_prediction_deleted` holds the listing at the same or a larger position.
Deletes leave that trace: a record with status 'deleted' and the delete's LSN (what
the transformer sends for a Debezium delete) is never stored: the trigger records
(car_id, lsn) in `tbl_price_prediction_deleted`, deletes the older prediction and skips
the write. A tombstone (the sink's `delete.enabled`) still deletes the row, and the
AFTER DELETE trigger records the deleted row's own `source_lsn` as the trace, so a
re-delivered older event cannot bring the prediction back. A deleted listing has no row
in `tbl_price_prediction` and none in the view. Records without `source_lsn` (the
transformer before issue 9) are applied as they come, as before.
To re-price everything on purpose, TRUNCATE both tables (TRUNCATE fires no row trigger).

Downgrade: refused rows are deleted (the old schema cannot hold a row without a price;
those listings show 'pending'), the new columns, the trace table, the triggers and the
rule constraints are dropped, and 0001's constraints come back (NOT VALID + VALIDATE,
as above).
"""

from __future__ import annotations

import logging

from alembic import context, op
from psycopg import sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

PREDICTIONS = "tbl_price_prediction"
DELETED = "tbl_price_prediction_deleted"
VIEW = "v_car_price_recommendation"

#: The CHECK constraints of `tbl_car_price` this revision adds: (name, check, comment).
RULES = (
    (
        "tbl_car_price_model_not_blank",
        "model ~ '[^\\u0009\\u000a\\u000b\\u000c\\u000d\\u001c\\u001d\\u001e\\u001f\\u002"
        "0\\u0085\\u00a0\\u1680\\u2000\\u2001\\u2002\\u2003\\u2004\\u2005\\u2006\\u2007\\"
        "u2008\\u2009\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]'",
        "model has a character that is not whitespace "
        "(tabs, newlines, no-break spaces count as blank)",
    ),
    (
        "tbl_car_price_year_1900_to_next_year",
        "year >= 1900 AND year <= extract(year FROM now() AT TIME ZONE 'UTC')::integer + 1",
        "year is from 1900 to next year (UTC)",
    ),
    (
        "tbl_car_price_price_over_0_to_10000000",
        "price > 0 AND price <= 10000000",
        "price is a finite number above 0 and at most 10,000,000",
    ),
    (
        "tbl_car_price_transmission_known",
        "transmission IN ('Manual', 'Automatic', 'Semi-Auto', 'Other')",
        "transmission is one of Manual, Automatic, Semi-Auto, Other",
    ),
    (
        "tbl_car_price_mileage_0_to_1000000",
        "mileage >= 0 AND mileage <= 1000000",
        "mileage is a finite number at least 0 and at most 1,000,000",
    ),
    (
        "tbl_car_price_fuel_type_known",
        "fuel_type IN ('Petrol', 'Diesel', 'Hybrid', 'Electric', 'Other')",
        "fuel_type is one of Petrol, Diesel, Hybrid, Electric, Other",
    ),
    (
        "tbl_car_price_tax_0_to_5000",
        "tax >= 0 AND tax <= 5000",
        "tax is a finite number at least 0 and at most 5,000",
    ),
    (
        "tbl_car_price_mpg_over_0_to_500",
        "mpg > 0 AND mpg <= 500",
        "mpg is a finite number above 0 and at most 500",
    ),
    (
        "tbl_car_price_engine_size_0_to_10",
        "engine_size >= 0 AND engine_size <= 10",
        "engine_size is a finite number at least 0 and at most 10",
    ),
    (
        "tbl_car_price_model_at_most_100_chars",
        "char_length(model) <= 100",
        "model has at most 100 characters",
    ),
    (
        "tbl_car_price_transmission_at_most_20_chars",
        "char_length(transmission) <= 20",
        "transmission has at most 20 characters",
    ),
    (
        "tbl_car_price_fuel_type_at_most_20_chars",
        "char_length(fuel_type) <= 20",
        "fuel_type has at most 20 characters",
    ),
)


#: The CHECK constraints of revision 0001, replaced here and restored by downgrade.
CHECKS_0001 = {
    "tbl_car_price_model_not_blank": "btrim(model) <> ''",
    "tbl_car_price_year_plausible": "year BETWEEN 1900 AND 2100",
    "tbl_car_price_price_positive": "price IS NULL OR price > 0",
    "tbl_car_price_transmission_known": (
        "transmission IN ('Manual', 'Automatic', 'Semi-Auto', 'Other')"
    ),
    "tbl_car_price_mileage_not_negative": "mileage >= 0",
    "tbl_car_price_fuel_type_known": (
        "fuel_type IN ('Petrol', 'Diesel', 'Hybrid', 'Electric', 'Other')"
    ),
    "tbl_car_price_tax_not_negative": "tax IS NULL OR tax >= 0",
    "tbl_car_price_mpg_positive": "mpg IS NULL OR mpg > 0",
    "tbl_car_price_engine_size_plausible": "engine_size >= 0 AND engine_size <= 10",
}

#: (name, check, rule in words) of the prediction table.
PREDICTION_CHECKS = (
    (
        "tbl_price_prediction_status_known",
        "status IN ('priced', 'refused')",
        "status is priced or refused",
    ),
    (
        "tbl_price_prediction_priced_has_prices",
        "status <> 'priced' OR (predicted_price IS NOT NULL AND price_low IS NOT NULL "
        "AND price_high IS NOT NULL AND model_version IS NOT NULL)",
        "a priced listing has a price, its price range and a model version",
    ),
    (
        "tbl_price_prediction_refused_has_reason_no_price",
        "status <> 'refused' OR (reason IS NOT NULL AND predicted_price IS NULL "
        "AND price_low IS NULL AND price_high IS NULL)",
        "a refused listing has a reason and no price",
    ),
)

VIEW_0001_COLUMNS = """
        SELECT c.id, c.model, c.year, c.transmission, c.mileage, c.fuel_type, c.tax, c.mpg,
               c.engine_size,
               c.price AS asking_price,
               round(p.predicted_price::numeric, 0) AS predicted_price,
               round(p.price_low::numeric, 0) AS price_low,
               round(p.price_high::numeric, 0) AS price_high,
               CASE
                   WHEN p.car_id IS NULL THEN 'pending'{refused}
                   WHEN c.price IS NULL THEN 'no asking price'
                   WHEN c.price < coalesce(p.price_low, p.predicted_price * 0.9) THEN 'below range'
                   WHEN c.price > coalesce(p.price_high, p.predicted_price * 1.1) THEN 'above range'
                   ELSE 'fair'
               END AS verdict,
               p.model_version,
               c.updated_at AS listing_updated_at,
               p.written_at AS predicted_at,
               p.written_at - p.source_committed_at AS latency{extra}
        FROM tbl_car_price c
        LEFT JOIN tbl_price_prediction p ON p.car_id = c.id"""

VIEW_0003 = VIEW_0001_COLUMNS.format(
    refused="\n                   WHEN p.status = 'refused' THEN 'refused: ' || p.reason",
    extra=",\n               p.status, p.reason, p.refused_field, p.source_lsn",
)
VIEW_0001 = VIEW_0001_COLUMNS.format(refused="", extra="")

NEWEST_WINS = f"""
CREATE FUNCTION prediction_newest_wins() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deleted_at bigint;
BEGIN
    IF NEW.source_lsn IS NULL THEN
        -- no position (records from before issue 9): applied as they come
        IF TG_OP = 'INSERT' AND NEW.status = 'deleted' THEN
            DELETE FROM {PREDICTIONS} WHERE car_id = NEW.car_id;
            RETURN NULL;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.source_lsn > NEW.source_lsn THEN
        RETURN NULL;  -- the stored prediction answers a newer state
    END IF;
    SELECT d.source_lsn INTO deleted_at FROM {DELETED} d WHERE d.car_id = NEW.car_id;
    IF deleted_at >= NEW.source_lsn THEN
        RETURN NULL;  -- the listing was deleted at or after this position
    END IF;
    IF TG_OP = 'INSERT' AND NEW.status = 'deleted' THEN
        INSERT INTO {DELETED} AS d (car_id, source_lsn) VALUES (NEW.car_id, NEW.source_lsn)
            ON CONFLICT (car_id) DO UPDATE
            SET source_lsn = greatest(d.source_lsn, EXCLUDED.source_lsn),
                deleted_at = clock_timestamp();
        DELETE FROM {PREDICTIONS} p WHERE p.car_id = NEW.car_id
            AND (p.source_lsn IS NULL OR p.source_lsn <= NEW.source_lsn);
        RETURN NULL;  -- a deletion is a trace, never a row
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tbl_price_prediction_newest_wins BEFORE INSERT OR UPDATE ON {PREDICTIONS}
    FOR EACH ROW EXECUTE FUNCTION prediction_newest_wins();

CREATE FUNCTION prediction_deleted_trace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.source_lsn IS NOT NULL THEN
        INSERT INTO {DELETED} AS d (car_id, source_lsn) VALUES (OLD.car_id, OLD.source_lsn)
            ON CONFLICT (car_id) DO UPDATE
            SET source_lsn = greatest(d.source_lsn, EXCLUDED.source_lsn);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tbl_price_prediction_deleted_trace AFTER DELETE ON {PREDICTIONS}
    FOR EACH ROW EXECUTE FUNCTION prediction_deleted_trace();
"""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _role(attribute: str) -> str:
    name = context.config.attributes["roles"][attribute][0]
    return sql.Identifier(name).as_string(op.get_bind().connection.dbapi_connection)


def _add_check(table: str, key: str, name: str, check: str, says: str | None) -> None:
    """Add NOT VALID (checks new and changed rows), then VALIDATE when no row breaks it."""
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check}) NOT VALID")
    if says:
        op.execute(f"COMMENT ON CONSTRAINT {name} ON {table} IS {_quote(says)}")
    count, keys = (
        op.get_bind()
        .exec_driver_sql(
            f"SELECT count(*), (array_agg({key} ORDER BY {key}))[1:10] FROM {table} "
            f"WHERE ({check}) IS FALSE"
        )
        .one()
    )
    if count == 0:
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
    else:
        log.warning(
            "%s stays NOT VALID: %d stored row(s) break it (%s %s); fix them, then "
            "ALTER TABLE %s VALIDATE CONSTRAINT %s",
            name,
            count,
            key,
            keys,
            table,
            name,
        )


def upgrade() -> None:
    for name in CHECKS_0001:
        op.execute(f"ALTER TABLE tbl_car_price DROP CONSTRAINT IF EXISTS {name}")
    for name, check, says in RULES:
        _add_check("tbl_car_price", "id", name, check, says)

    op.execute(f"""
        ALTER TABLE {PREDICTIONS}
            ADD COLUMN status text NOT NULL DEFAULT 'priced',
            ADD COLUMN reason text,
            ADD COLUMN refused_field text,
            ADD COLUMN source_lsn bigint,
            ALTER COLUMN predicted_price DROP NOT NULL,
            ALTER COLUMN model_version DROP NOT NULL;
        COMMENT ON COLUMN {PREDICTIONS}.status IS
            'priced: the prices answer the listing''s state; refused: see reason';
        COMMENT ON COLUMN {PREDICTIONS}.reason IS 'why the listing was refused';
        COMMENT ON COLUMN {PREDICTIONS}.refused_field IS 'the listing field refused, if one';
        COMMENT ON COLUMN {PREDICTIONS}.source_lsn IS
            'Debezium source.lsn of the listing change answered; a smaller one never wins';
        CREATE TABLE {DELETED} (
            car_id bigint PRIMARY KEY,
            source_lsn bigint NOT NULL,
            deleted_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        COMMENT ON TABLE {DELETED} IS
            'Position of each deleted listing: older predictions for it are ignored';
    """)
    for name, check, says in PREDICTION_CHECKS:
        _add_check(PREDICTIONS, "car_id", name, check, says)
    op.execute(NEWEST_WINS)
    op.execute(f"CREATE OR REPLACE VIEW {VIEW} AS {VIEW_0003}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON {DELETED} TO {_role('sink')}")
    op.execute(f"GRANT SELECT ON {DELETED} TO {_role('app')}")


def downgrade() -> None:
    op.execute(f"""
        DROP VIEW {VIEW};
        DROP TRIGGER tbl_price_prediction_newest_wins ON {PREDICTIONS};
        DROP TRIGGER tbl_price_prediction_deleted_trace ON {PREDICTIONS};
        DROP FUNCTION prediction_newest_wins();
        DROP FUNCTION prediction_deleted_trace();
        DROP TABLE {DELETED};
        DELETE FROM {PREDICTIONS} WHERE status = 'refused';
        ALTER TABLE {PREDICTIONS}
            DROP COLUMN status, DROP COLUMN reason, DROP COLUMN refused_field,
            DROP COLUMN source_lsn,
            ALTER COLUMN predicted_price SET NOT NULL,
            ALTER COLUMN model_version SET NOT NULL;
        CREATE VIEW {VIEW} AS {VIEW_0001};
        GRANT SELECT ON {VIEW} TO {_role("app")};
    """)
    for name, _check, _says in RULES:
        op.execute(f"ALTER TABLE tbl_car_price DROP CONSTRAINT IF EXISTS {name}")
    for name, check in CHECKS_0001.items():
        _add_check("tbl_car_price", "id", name, check, None)
