"""Listings, predictions and the recommendation view.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

`tbl_car_price` rejects impossible listings with named CHECK constraints, so the
error a person sees in Adminer or psql says which rule was broken.
`tbl_price_prediction` has no foreign key to the listing on purpose: a listing
deleted before its prediction arrives must not make the JDBC sink fail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TRANSMISSIONS = ("Manual", "Automatic", "Semi-Auto", "Other")
FUEL_TYPES = ("Petrol", "Diesel", "Hybrid", "Electric", "Other")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "tbl_car_price",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column(
            "price",
            sa.Integer,
            nullable=True,
            comment="asking price in GBP; NULL when the seller wants a suggestion",
        ),
        sa.Column("transmission", sa.Text, nullable=False),
        sa.Column("mileage", sa.Integer, nullable=False),
        sa.Column("fuel_type", sa.Text, nullable=False),
        sa.Column("tax", sa.Integer, nullable=True, comment="annual road tax in GBP"),
        sa.Column("mpg", sa.Float, nullable=True),
        sa.Column("engine_size", sa.Numeric(3, 1), nullable=False, comment="litres"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.CheckConstraint("btrim(model) <> ''", name="tbl_car_price_model_not_blank"),
        sa.CheckConstraint("year BETWEEN 1900 AND 2100", name="tbl_car_price_year_plausible"),
        sa.CheckConstraint("price IS NULL OR price > 0", name="tbl_car_price_price_positive"),
        sa.CheckConstraint(
            _one_of("transmission", TRANSMISSIONS), name="tbl_car_price_transmission_known"
        ),
        sa.CheckConstraint("mileage >= 0", name="tbl_car_price_mileage_not_negative"),
        sa.CheckConstraint(_one_of("fuel_type", FUEL_TYPES), name="tbl_car_price_fuel_type_known"),
        sa.CheckConstraint("tax IS NULL OR tax >= 0", name="tbl_car_price_tax_not_negative"),
        sa.CheckConstraint("mpg IS NULL OR mpg > 0", name="tbl_car_price_mpg_positive"),
        sa.CheckConstraint(
            "engine_size >= 0 AND engine_size <= 10", name="tbl_car_price_engine_size_plausible"
        ),
        comment="Used-car listings; every change is captured by Debezium.",
    )
    op.create_table(
        "tbl_price_prediction",
        sa.Column(
            "car_id",
            sa.BigInteger,
            primary_key=True,
            autoincrement=False,
            comment="= tbl_car_price.id",
        ),
        sa.Column("predicted_price", sa.Float, nullable=False),
        sa.Column("price_low", sa.Float, nullable=True, comment="lower bound of the 80 % range"),
        sa.Column("price_high", sa.Float, nullable=True, comment="upper bound of the 80 % range"),
        sa.Column("model_version", sa.Text, nullable=False, comment="BentoML model tag"),
        sa.Column(
            "source_committed_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="commit time of the listing change in the source database (Debezium)",
        ),
        sa.Column(
            "written_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("clock_timestamp()"),
            comment="set by the database on insert and update",
        ),
        comment="Predictions written by the Debezium JDBC sink (upsert on car_id).",
    )
    op.execute("""
        CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
        CREATE TRIGGER tbl_car_price_updated_at BEFORE UPDATE ON tbl_car_price
            FOR EACH ROW EXECUTE FUNCTION set_updated_at();

        CREATE FUNCTION set_written_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.written_at := clock_timestamp(); RETURN NEW; END $$;
        CREATE TRIGGER tbl_price_prediction_written_at
            BEFORE INSERT OR UPDATE ON tbl_price_prediction
            FOR EACH ROW EXECUTE FUNCTION set_written_at();
    """)
    op.execute("""
        CREATE VIEW v_car_price_recommendation AS
        SELECT c.id, c.model, c.year, c.transmission, c.mileage, c.fuel_type, c.tax, c.mpg,
               c.engine_size,
               c.price AS asking_price,
               round(p.predicted_price::numeric, 0) AS predicted_price,
               round(p.price_low::numeric, 0) AS price_low,
               round(p.price_high::numeric, 0) AS price_high,
               CASE
                   WHEN p.car_id IS NULL THEN 'pending'
                   WHEN c.price IS NULL THEN 'no asking price'
                   WHEN c.price < coalesce(p.price_low, p.predicted_price * 0.9) THEN 'below range'
                   WHEN c.price > coalesce(p.price_high, p.predicted_price * 1.1) THEN 'above range'
                   ELSE 'fair'
               END AS verdict,
               p.model_version,
               c.updated_at AS listing_updated_at,
               p.written_at AS predicted_at,
               p.written_at - p.source_committed_at AS latency
        FROM tbl_car_price c
        LEFT JOIN tbl_price_prediction p ON p.car_id = c.id;
    """)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_car_price_recommendation")
    op.drop_table("tbl_price_prediction")
    op.drop_table("tbl_car_price")
    op.execute("DROP FUNCTION IF EXISTS set_written_at()")
    op.execute("DROP FUNCTION IF EXISTS set_updated_at()")
