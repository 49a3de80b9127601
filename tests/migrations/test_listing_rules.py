"""One definition of a valid listing: the table's constraints and the service's validation.

Every edge value comes from `model.listing_rules` and is tried against BOTH the live
`tbl_car_price` (an INSERT rolled back) and the service's pydantic `Listing`.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from config.settings import REPO_ROOT
from model import listing_rules as rules
from model.api_schema import Listing
from tests.support import FIESTA

VALID: dict[str, Any] = dict(FIESTA)  # one valid listing, shared with the e2e tests
INSERT = (
    "INSERT INTO tbl_car_price (model, year, price, transmission, mileage, fuel_type, "
    "tax, mpg, engine_size) VALUES (%(model)s, %(year)s, %(price)s, %(transmission)s, "
    "%(mileage)s, %(fuel_type)s, %(tax)s, %(mpg)s, %(engine_size)s)"
)
INTEGER_COLUMNS = {"year", "price", "mileage", "tax"}


def _insert(db: psycopg.Connection, listing: dict[str, Any]) -> None:
    with db.transaction(force_rollback=True):
        db.execute(INSERT, listing)


#: what the column's type itself refuses, before any CHECK: engine_size is numeric(3,1)
TYPE_REFUSES = {"engine_size": lambda value: math.isinf(value) or abs(value) >= 99.95}
TYPE_REFUSAL = "numeric field overflow"


def table_refusal(db: psycopg.Connection, listing: dict[str, Any]) -> str | None:
    """None when the table accepts the listing, else what refused it: the name of the CHECK
    constraint, or TYPE_REFUSAL for a number its column cannot hold. Any other error (a
    typo, a lost connection) is no refusal: it fails the test."""
    try:
        _insert(db, listing)
    except psycopg.errors.CheckViolation as exc:
        return exc.diag.constraint_name
    except psycopg.errors.NumericValueOutOfRange:
        return TYPE_REFUSAL
    return None


def refusals_expected(column: str, value: object) -> set[str]:
    """What may refuse `value` in `column`: the column's own rules, or its type."""
    refuses_type = TYPE_REFUSES.get(column)
    if refuses_type is not None and isinstance(value, int | float) and refuses_type(value):
        return {TYPE_REFUSAL}
    return {rule.name for rule in rules.table_rules() if rule.column == column}


def service_accepts(listing: dict[str, Any]) -> bool:
    try:
        Listing.model_validate({k: v for k, v in listing.items() if k not in rules.TABLE_ONLY})
    except ValidationError:
        return False
    return True


def _numbers(column: str, bounds: rules.Range) -> list[float | int]:
    step = 1 if column in INTEGER_COLUMNS else 0.1
    values: list[float | int] = [
        bounds.low - step,
        bounds.low,
        bounds.low + step,
        bounds.high,
        bounds.high + step,
        -bounds.high,
        bounds.high * 10,
    ]
    if column not in INTEGER_COLUMNS:
        values += [math.nan, math.inf, -math.inf]
    return values


def _texts(column: str) -> list[str]:
    limit = rules.TEXT_MAX_CHARS[column]
    known = {"transmission": rules.TRANSMISSIONS, "fuel_type": rules.FUEL_TYPES}.get(column, ())
    return [
        *known,
        "",
        "x" * limit,
        "x" * (limit + 1),
        "\U0001f697" * limit,
        "\U0001f697" * (limit + 1),
        "Fo\tcus",
        " Focus ",
        "\x01",
        "\t\n\r",
        *rules.WHITESPACE,
        rules.WHITESPACE,
        "ST\u00a0",
    ]


def edge_listings() -> list[tuple[str, str, object, dict[str, Any]]]:
    """(label, column, value, listing): every rule's edges, one field changed each."""
    latest = rules.latest_year()
    cases: list[tuple[str, object]] = [
        ("year", y) for y in (rules.MIN_YEAR - 1, rules.MIN_YEAR, latest, latest + 1)
    ]
    for column, bounds in rules.RANGES.items():
        cases += [(column, value) for value in _numbers(column, bounds)]
    for column in rules.TEXT_MAX_CHARS:
        cases += [(column, value) for value in _texts(column)]
    cases += [("tax", None), ("mpg", None), ("price", None)]
    return [
        (f"{column}={value!r:.30}", column, value, dict(VALID, **{column: value}))
        for column, value in cases
    ]


def _known_categories(listing: dict[str, Any]) -> bool:
    """The table-only rule: transmission / fuel_type are known values."""
    return (
        listing["transmission"] in rules.TRANSMISSIONS and listing["fuel_type"] in rules.FUEL_TYPES
    )


def _valid_price(listing: dict[str, Any]) -> bool:
    """The table-only rule on the asking price, which the service never sees."""
    price, bounds = listing["price"], rules.RANGES["price"]
    return price is None or bounds.low < price <= bounds.high


def test_the_table_and_the_service_agree_on_every_edge(db: psycopg.Connection) -> None:
    disagreements = []
    for label, column, value, listing in edge_listings():
        service = service_accepts(listing)
        expected = service and _known_categories(listing) and _valid_price(listing)
        refusal = table_refusal(db, listing)
        if (refusal is None) != expected:
            disagreements.append(
                f"{label}: table {'accepts' if not expected else 'refuses'}, "
                f"service {'accepts' if service else 'refuses'}"
            )
        elif refusal is not None and refusal not in refusals_expected(column, value):
            disagreements.append(f"{label}: refused by {refusal}, not by a {column} rule")
    assert not disagreements, "\n".join(disagreements)


def test_the_edges_include_both_verdicts(db: psycopg.Connection) -> None:
    """Guards the agreement test against edges that are all accepted or all refused."""
    verdicts = {service_accepts(listing) for *_, listing in edge_listings()}
    assert verdicts == {True, False}


def test_the_live_table_has_exactly_the_rules_validated(db: psycopg.Connection) -> None:
    rows = db.execute(
        "SELECT conname, convalidated, obj_description(oid, 'pg_constraint') "
        "FROM pg_constraint WHERE conrelid = 'tbl_car_price'::regclass AND contype = 'c'"
    ).fetchall()
    assert {name: (valid, says) for name, valid, says in rows} == {
        rule.name: (True, rule.says) for rule in rules.table_rules()
    }


LATEST = rules.latest_year()


@pytest.mark.parametrize(
    ("field", "value", "constraint"),
    [
        ("mpg", math.nan, "tbl_car_price_mpg_over_0_to_500"),
        ("mpg", math.inf, "tbl_car_price_mpg_over_0_to_500"),
        ("mpg", -math.inf, "tbl_car_price_mpg_over_0_to_500"),
        ("mpg", 0, "tbl_car_price_mpg_over_0_to_500"),
        ("mpg", 500.5, "tbl_car_price_mpg_over_0_to_500"),
        ("engine_size", math.nan, "tbl_car_price_engine_size_0_to_10"),
        ("engine_size", 10.1, "tbl_car_price_engine_size_0_to_10"),
        ("model", "\t", "tbl_car_price_model_not_blank"),
        ("model", "\n\r\t \u00a0\u3000", "tbl_car_price_model_not_blank"),
        ("model", "", "tbl_car_price_model_not_blank"),
        ("model", "x" * 101, "tbl_car_price_model_at_most_100_chars"),
        ("year", LATEST + 1, "tbl_car_price_year_1900_to_next_year"),
        ("year", 1899, "tbl_car_price_year_1900_to_next_year"),
        ("mileage", -1, "tbl_car_price_mileage_0_to_1000000"),
        ("mileage", 1_000_001, "tbl_car_price_mileage_0_to_1000000"),
        ("tax", -1, "tbl_car_price_tax_0_to_5000"),
        ("tax", 5001, "tbl_car_price_tax_0_to_5000"),
        ("price", 0, "tbl_car_price_price_over_0_to_10000000"),
        ("price", 10_000_001, "tbl_car_price_price_over_0_to_10000000"),
        ("transmission", "Telepathic", "tbl_car_price_transmission_known"),
        ("fuel_type", "Steam", "tbl_car_price_fuel_type_known"),
        ("fuel_type", "x" * 21, "tbl_car_price_fuel_type_at_most_20_chars"),
    ],
)
def test_each_rule_refuses_with_its_name(
    db: psycopg.Connection, field: str, value: object, constraint: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as error:
        _insert(db, dict(VALID, **{field: value}))
    assert f'violates check constraint "{constraint}"' in str(error.value)
    assert error.value.diag.constraint_name == constraint


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("year", LATEST),
        ("year", 1900),
        ("model", "x" * 100),
        ("model", "Focus\tST"),
        ("mpg", 500),
        ("mpg", None),
        ("tax", 0),
        ("engine_size", 0),
        ("mileage", 1_000_000),
    ],
)
def test_edge_values_inside_the_rules_are_accepted(
    db: psycopg.Connection, field: str, value: object
) -> None:
    _insert(db, dict(VALID, **{field: value}))


def test_the_rule_comment_says_what_is_wrong(db: psycopg.Connection) -> None:
    says = db.execute(
        "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint "
        "WHERE conname = 'tbl_car_price_mpg_over_0_to_500'"
    ).fetchone()
    assert says == ("mpg is a finite number above 0 and at most 500",)


def test_the_readme_lists_every_rule_once() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for rule in rules.table_rules():
        assert readme.count(f"| `{rule.name}` | {rule.says}") == 1, rule.name
