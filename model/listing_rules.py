"""What a valid listing is: the one definition behind the table's CHECK constraints
(migration 0003) and the price service's request validation (`model.api_schema`).

Why one place: when the table accepts a row the model refuses, the listing can never be
priced; every bound below is therefore enforced on both sides, except the two rules the
model does not need (asking `price`, which it never sees, and the known `transmission` /
`fuel_type` values: the service prices unknown categories as "Other"), so the table is
never looser than the service.

Numbers must be finite: a range with both ends refuses NaN and ±Infinity in Postgres too
(NaN sorts above every number there, so `mpg > 0` alone would let it through). A NULL
passes a CHECK; the nullable columns (price, tax, mpg) are optional for the service too.

Changing a rule here needs a new migration: the constraints are DDL. The test
`tests/migrations/test_listing_rules.py` fails while the live table and these rules differ.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

TABLE = "tbl_car_price"

#: Oldest model year accepted; anything older is a typo, not a used-car listing.
MIN_YEAR = 1900
#: Longest text per column, in characters (Postgres `char_length`, Python `len`).
TEXT_MAX_CHARS: dict[str, int] = {"model": 100, "transmission": 20, "fuel_type": 20}
#: Values the table knows (the service maps any other to "Other").
TRANSMISSIONS = ("Manual", "Automatic", "Semi-Auto", "Other")
FUEL_TYPES = ("Petrol", "Diesel", "Hybrid", "Electric", "Other")
#: Every character Python's `str.isspace()` is true for: text made only of these is blank,
#: on both sides (Postgres' own `\s` class depends on the locale, so it is spelled out).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True)
class Range:
    """A closed range of finite numbers, optionally open at the low end."""

    low: float
    high: float
    low_inclusive: bool = True

    def words(self) -> str:
        low = f"at least {_human(self.low)}" if self.low_inclusive else f"above {_human(self.low)}"
        return f"a finite number {low} and at most {_human(self.high)}"


def _human(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


#: Numeric columns (the service never sees `price`).
RANGES: dict[str, Range] = {
    "price": Range(0, 10_000_000, low_inclusive=False),
    "mileage": Range(0, 1_000_000),
    "tax": Range(0, 5_000),
    "mpg": Range(0, 500, low_inclusive=False),
    "engine_size": Range(0, 10),
}
#: Columns the service does not validate (see the module docstring).
TABLE_ONLY = ("price",)


def latest_year(today: dt.date | None = None) -> int:
    """Next year, in UTC as the table's CHECK computes it: a car of next year's model
    year can be listed before New Year."""
    return (today or dt.datetime.now(dt.UTC).date()).year + 1


def is_blank(text: str) -> bool:
    return not text.strip(WHITESPACE)  # in C: a per-character loop was ~5 % of /predict


@dataclass(frozen=True)
class Rule:
    """One named CHECK constraint: `name` is what the violation error says."""

    name: str
    column: str
    check: str
    says: str


def _sql_number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _range_rule(column: str, bounds: Range) -> Rule:
    low_op = ">=" if bounds.low_inclusive else ">"
    low_word = "" if bounds.low_inclusive else "over_"
    low, high = _sql_number(bounds.low), _sql_number(bounds.high)
    return Rule(
        f"{TABLE}_{column}_{low_word}{low}_to_{high}",
        column,
        f"{column} {low_op} {low} AND {column} <= {high}",
        f"{column} is {bounds.words()}",
    )


def _not_blank_pattern() -> str:
    r"""A Postgres regex matching any character that is not blank: `[^\u0009...]`."""
    return "[^" + "".join(f"\\u{ord(char):04x}" for char in WHITESPACE) + "]"


def _one_of(column: str, values: tuple[str, ...]) -> Rule:
    listed = ", ".join(f"'{value}'" for value in values)
    return Rule(
        f"{TABLE}_{column}_known",
        column,
        f"{column} IN ({listed})",
        f"{column} is one of {', '.join(values)}",
    )


def table_rules() -> tuple[Rule, ...]:
    """Every CHECK constraint of `tbl_car_price`, in column order."""
    rules = [
        Rule(
            f"{TABLE}_model_not_blank",
            "model",
            f"model ~ '{_not_blank_pattern()}'",
            "model has a character that is not whitespace "
            "(tabs, newlines, no-break spaces count as blank)",
        ),
        Rule(
            f"{TABLE}_year_{MIN_YEAR}_to_next_year",
            "year",
            f"year >= {MIN_YEAR} AND "
            "year <= extract(year FROM now() AT TIME ZONE 'UTC')::integer + 1",
            f"year is from {MIN_YEAR} to next year (UTC)",
        ),
        _range_rule("price", RANGES["price"]),
        _one_of("transmission", TRANSMISSIONS),
        _range_rule("mileage", RANGES["mileage"]),
        _one_of("fuel_type", FUEL_TYPES),
        _range_rule("tax", RANGES["tax"]),
        _range_rule("mpg", RANGES["mpg"]),
        _range_rule("engine_size", RANGES["engine_size"]),
    ]
    for column, limit in TEXT_MAX_CHARS.items():
        rules.append(
            Rule(
                f"{TABLE}_{column}_at_most_{limit}_chars",
                column,
                f"char_length({column}) <= {limit}",
                f"{column} has at most {limit} characters",
            )
        )
    return tuple(rules)
