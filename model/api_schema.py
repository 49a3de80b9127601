"""Request and response shapes of the price service, with their validation rules.

Validation errors are pydantic `ValidationError`s; BentoML turns them into HTTP 400
with a JSON body whose `detail[*].loc` names the field and the listing index, e.g.
`["listings", 3, "mileage"]`. Numbers must be JSON numbers (strict types): a string
where a number belongs is a caller bug worth surfacing, not guessing around.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import InitErrorDetails

from model import listing_rules as rules
from model.listing_rules import MIN_YEAR

#: Largest batch one request may carry (bounds memory per request).
MAX_BATCH = 10_000

StrictFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _text(column: str) -> Any:
    return Annotated[str, Field(min_length=1, max_length=rules.TEXT_MAX_CHARS[column],
                                strict=True)]


def _number(column: str) -> Any:
    """A finite number within the column's range from `model.listing_rules`."""
    bounds = rules.RANGES[column]
    low = {"ge": bounds.low} if bounds.low_inclusive else {"gt": bounds.low}
    return Annotated[StrictFloat, Field(le=bounds.high, **low)]


ModelName = _text("model")
Transmission = _text("transmission")
FuelType = _text("fuel_type")
Mileage = _number("mileage")
Tax = _number("tax")
Mpg = _number("mpg")
EngineSize = _number("engine_size")


def _check_year(year: int) -> int:
    latest = rules.latest_year()
    if year > latest:
        raise ValueError(f"year {year} is too far in the future (latest allowed {latest})")
    return year


class Listing(BaseModel):
    """One car listing, with the database's field names (the Kafka transformer's contract)."""

    model_config = ConfigDict(extra="ignore")

    model: ModelName
    year: Annotated[int, Field(strict=True, ge=MIN_YEAR)]
    transmission: Transmission
    mileage: Mileage
    fuel_type: FuelType
    tax: Tax | None = None
    mpg: Mpg | None = None
    engine_size: EngineSize

    @field_validator("model", "transmission", "fuel_type")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if rules.is_blank(value):
            raise ValueError("must not be blank (whitespace only)")
        return value

    @field_validator("year")
    @classmethod
    def _not_future(cls, value: int) -> int:
        return _check_year(value)


class PricePrediction(BaseModel):
    """Answer for one listing, in request order."""

    predicted_price: float
    price_low: float
    price_high: float
    model_version: str


Listings = Annotated[list[Listing], Field(max_length=MAX_BATCH)]

#: Seed-project request: CSV column names; `model` may carry the leading space.
SEED_TO_LISTING: dict[str, str] = {
    "model": "model",
    "year": "year",
    "transmission": "transmission",
    "mileage": "mileage",
    "fuelType": "fuel_type",
    "tax": "tax",
    "mpg": "mpg",
    "engineSize": "engine_size",
}
_LISTING_TO_SEED = {v: k for k, v in SEED_TO_LISTING.items()}
_ROWS = TypeAdapter(list[Listing])


def listings_to_columns(listings: list[Listing]) -> dict[str, list[Any]]:
    """Column-wise values with the training (CSV) names, ready for `FeatureSpec.transform`."""
    return {
        seed_name: [getattr(item, field) for item in listings]
        for seed_name, field in SEED_TO_LISTING.items()
    }


def seed_columns_to_listings(columns: Mapping[str, Mapping[str, Any] | None]) -> list[Listing]:
    """Validate a pandas `to_json()` (column-oriented) body; errors name column and row key.

    Row order follows the keys of the `model` column, as pandas wrote them.
    """
    keys = list((columns.get("model") or {}).keys())
    problems: list[InitErrorDetails] = []
    for column, values in columns.items():
        if values is None or column not in SEED_TO_LISTING:
            continue
        for extra in sorted(set(values) - set(keys)):
            problems.append(
                {
                    "type": "value_error",
                    "loc": (column, extra),
                    "input": values[extra],
                    "ctx": {"error": ValueError("row key not present in column 'model'")},
                }
            )
    rows: list[dict[str, Any]] = []
    for key in keys:
        row: dict[str, Any] = {}
        for seed_name, field in SEED_TO_LISTING.items():
            values = columns.get(seed_name)
            if values is not None and key in values:
                row[field] = values[key]
        rows.append(row)
    try:
        listings = _ROWS.validate_python(rows)
    except ValidationError as exc:
        for error in exc.errors():
            index, *rest = error["loc"]
            field = rest[0] if rest else "model"
            detail: InitErrorDetails = {
                "type": error["type"],
                "loc": (_LISTING_TO_SEED.get(str(field), str(field)), keys[int(index)]),
                "input": error.get("input"),
            }
            if "ctx" in error:
                detail["ctx"] = error["ctx"]
            problems.append(detail)
        listings = []
    if problems:
        raise ValidationError.from_exception_data("SeedRequest", problems)
    return listings
