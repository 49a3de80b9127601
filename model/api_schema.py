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

#: Largest batch one request may carry, on every route (bounds memory per request).
MAX_BATCH = 10_000
#: Largest request body; a full batch of typical listings is ~1.8 MB. Bigger bodies get
#: HTTP 413 before they are read (model/body_limit.py).
MAX_BODY_BYTES = 8 * 1024 * 1024

StrictFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _text(column: str) -> Any:
    return Annotated[str, Field(min_length=1, max_length=rules.TEXT_MAX_CHARS[column], strict=True)]


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
    """One car listing, with the database's field names (the Kafka transformer's contract).

    Unknown fields are refused (HTTP 400 naming them): a misspelt optional field such as
    `engine_szie` would otherwise be priced as if it were missing.
    """

    model_config = ConfigDict(extra="forbid")

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


class PredictRequest(BaseModel):
    """Body of `POST /predict`: `{"listings": [...]}` and nothing else."""

    model_config = ConfigDict(extra="forbid")

    listings: Listings


#: One seed column: pandas' `{"0": value, ...}` (`DataFrame.to_json()`) or a JSON array.
SeedColumn = dict[str, Any] | list[Any]


class SeedRequest(BaseModel):
    """Body of `POST /predict_seed`: the seed project's CSV columns (`price` is ignored)."""

    model_config = ConfigDict(extra="forbid")

    model: SeedColumn
    year: SeedColumn
    transmission: SeedColumn
    mileage: SeedColumn
    fuelType: SeedColumn  # noqa: N815 - the seed's (and the CSV's) column name
    engineSize: SeedColumn  # noqa: N815
    tax: SeedColumn | None = None
    mpg: SeedColumn | None = None
    price: SeedColumn | None = None


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


def _as_keyed(values: Mapping[str, Any] | list[Any]) -> dict[str, Any]:
    """An array column becomes pandas' index form: position i is row key "i"."""
    return {str(i): v for i, v in enumerate(values)} if isinstance(values, list) else dict(values)


def seed_columns_to_listings(
    columns: Mapping[str, Mapping[str, Any] | list[Any] | None],
) -> list[Listing]:
    """Validate a seed body (arrays or pandas index objects); errors name column and row.

    Row order follows the `model` column (its keys, as pandas wrote them, or its array
    positions); when `model` is an array, errors name rows by position (an integer).
    """
    by_position = isinstance(columns.get("model"), list)
    keyed = {name: _as_keyed(v) for name, v in columns.items() if v is not None}
    oversized: list[InitErrorDetails] = [
        {
            "type": "too_long",
            "loc": (name,),
            "input": None,
            "ctx": {"field_type": "Column", "max_length": MAX_BATCH, "actual_length": len(v)},
        }
        for name, v in keyed.items()
        if len(v) > MAX_BATCH
    ]
    if oversized:  # the same cap as /predict's, checked before any row is built
        raise ValidationError.from_exception_data("SeedRequest", oversized)
    keys = list(keyed.get("model", {}).keys())

    def row_ref(key: str) -> str | int:
        return int(key) if by_position else key

    problems: list[InitErrorDetails] = []
    for column, values in keyed.items():
        if column not in SEED_TO_LISTING:
            continue
        for extra in sorted(set(values) - set(keys)):
            problems.append(
                {
                    "type": "value_error",
                    "loc": (column, row_ref(extra)),
                    "input": values[extra],
                    "ctx": {"error": ValueError("row not present in column 'model'")},
                }
            )
    rows: list[dict[str, Any]] = []
    for key in keys:
        row: dict[str, Any] = {}
        for seed_name, field in SEED_TO_LISTING.items():
            values = keyed.get(seed_name)
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
                "loc": (_LISTING_TO_SEED.get(str(field), str(field)), row_ref(keys[int(index)])),
                "input": error.get("input"),
            }
            if "ctx" in error:
                detail["ctx"] = error["ctx"]
            problems.append(detail)
        listings = []
    if problems:
        raise ValidationError.from_exception_data("SeedRequest", problems)
    return listings
