"""The real `bentoml serve` process answering HTTP (model/service.py, api_schema.py).

One server per module, trained on generated data in a throw-away BentoML store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

from model import bench
from model.api_schema import SEED_TO_LISTING
from tests.model.support import TrainedModel, bentoml_serve, make_ford_like, raw_request

CSV_TO_DB = SEED_TO_LISTING  # the CSV's column names → the DB's field names
# The module's first test also trains the model: minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(1800)


def listings(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """Listings in the /predict contract, generated (never the real data)."""
    frame = make_ford_like(n, seed=seed).drop(columns=["price"]).rename(columns=CSV_TO_DB)
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="module")
def server(
    synthetic_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "bentoml-serve.log"
    with bentoml_serve(synthetic_model.bentoml_home, log) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def model_tag(synthetic_model: TrainedModel) -> str:
    return json.loads((synthetic_model.report_dir / "metrics.json").read_text())["model_tag"]


def predict(client: httpx.Client, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post("/predict", json={"listings": items})
    assert response.status_code == 200, response.text
    return response.json()


def test_one_listing(client: httpx.Client, model_tag: str) -> None:
    [answer] = predict(client, listings(1))
    assert set(answer) == {"predicted_price", "price_low", "price_high", "model_version"}
    assert answer["model_version"] == model_tag
    assert model_tag.startswith("car_price_xgb:")
    assert 0 < answer["price_low"] <= answer["predicted_price"] <= answer["price_high"]


def test_batch_of_2000_keeps_order(client: httpx.Client) -> None:
    items = listings(2000)
    answers = predict(client, items)
    assert len(answers) == 2000
    # Order check: each sampled listing priced alone must match its slot in the batch.
    for index in (0, 1, 777, 1999):
        assert predict(client, [items[index]])[0] == answers[index]
    assert all(a["price_low"] <= a["predicted_price"] <= a["price_high"] for a in answers)


def test_empty_batch(client: httpx.Client) -> None:
    assert predict(client, []) == []


def _bad(field: str, value: Any) -> dict[str, Any]:
    item = listings(1, seed=5)[0]
    if value is KeyError:
        del item[field]
    else:
        item[field] = value
    return item


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("mileage", KeyError, "missing"),
        ("model", KeyError, "missing"),
        ("year", "2017", "int_type"),
        ("mileage", "lots", "float_type"),
        ("fuel_type", 3, "string_type"),
        ("mileage", -10, "greater_than_equal"),
        ("year", 1850, "greater_than_equal"),
        ("year", 2999, "value_error"),
        ("engine_size", -1.0, "greater_than_equal"),
        ("model", "   ", "value_error"),
    ],
)
def test_bad_listing_is_400_naming_field_and_index(
    client: httpx.Client, field: str, value: Any, error_type: str
) -> None:
    items = listings(3)
    items[2] = _bad(field, value)
    response = client.post("/predict", json={"listings": items})
    assert response.status_code == 400, response.text
    errors = response.json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(["listings", 2, field], error_type)]


def test_body_without_listings_is_400(client: httpx.Client) -> None:
    response = client.post("/predict", json={"cars": []})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["listings"]


def test_unseen_model_and_fuel_still_priced(client: httpx.Client) -> None:
    item = listings(1)[0] | {
        "model": "Ranger Raptor",
        "fuel_type": "Electric",
        "transmission": "CVT",
    }
    [answer] = predict(client, [item])
    assert 0 < answer["price_low"] <= answer["predicted_price"] <= answer["price_high"]


def test_missing_or_null_tax_and_mpg_still_priced(client: httpx.Client) -> None:
    full = listings(1, seed=21)[0]
    without = {k: v for k, v in full.items() if k not in ("tax", "mpg")}
    nulls = full | {"tax": None, "mpg": None}
    answers = predict(client, [full, without, nulls])
    assert all(a["predicted_price"] > 0 for a in answers)
    assert answers[1] == answers[2], "absent and null must mean the same thing"


def test_seed_columnar_request(client: httpx.Client) -> None:
    frame = make_ford_like(2, seed=3)  # `model` keeps its leading space, `price` is present
    response = client.post(
        "/predict_seed", content=frame.to_json(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    prices = response.json()
    assert len(prices) == 2
    same_cars = json.loads(
        frame.drop(columns=["price"]).rename(columns=CSV_TO_DB).to_json(orient="records")
    )
    assert prices == [a["predicted_price"] for a in predict(client, same_cars)]


def test_seed_request_errors_name_column_and_row(client: httpx.Client) -> None:
    body = json.loads(make_ford_like(3, seed=3).to_json())
    body["mileage"]["1"] = -5
    del body["engineSize"]["2"]
    response = client.post("/predict_seed", json=body)
    assert response.status_code == 400
    locs = sorted(tuple(e["loc"]) for e in response.json()["detail"])
    assert locs == [("engineSize", "2"), ("mileage", "1")]


@pytest.mark.parametrize("path", ["/readyz", "/livez", "/metrics"])
def test_bentoml_probes(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    if path == "/metrics":
        assert "bentoml_service_request" in response.text


def test_bench_runs_against_the_service(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    port = server.rsplit(":", 1)[1]
    assert bench.main(["--host", "127.0.0.1", "--port", port, "--scale", "0.01"]) == 0
    table = capsys.readouterr().out
    assert "listings/request" in table and "rows/s" in table
    assert (
        len([line for line in table.splitlines() if line.strip().startswith(("1 ", "2000 "))]) == 2
    )


def test_bench_refuses_non_loopback() -> None:
    with pytest.raises(SystemExit, match="non-loopback"):
        bench.ensure_loopback("192.0.2.10")


# --- the seed README's request, unknown fields, batch cap, body limit (issues 11, 13) ---

#: The seed project's README request, verbatim (columns as JSON arrays).
SEED_README_BODY = (
    '{"model": ["C-MAX", "EcoSport"], "year": [2014, 2019], "price": [8295, 18995], '
    '"transmission": ["Semi-Auto", "Automatic"], "mileage": [40000, 1400], '
    '"fuelType": ["Diesel", "Petrol"], "tax": [160, 150], "mpg": [50.4, 44.1], '
    '"engineSize": [2.0, 1.0]}'
)


def as_arrays(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """The seed README's form: one JSON array per column."""
    return {column: json.loads(frame[column].to_json(orient="values")) for column in frame}


def test_seed_readme_array_request(client: httpx.Client) -> None:
    response = client.post(
        "/predict_seed", content=SEED_README_BODY, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    body = json.loads(SEED_README_BODY)
    cars = [{CSV_TO_DB[c]: body[c][i] for c in body if c != "price"} for i in range(2)]
    assert response.json() == [a["predicted_price"] for a in predict(client, cars)]


def test_seed_array_and_index_forms_agree(client: httpx.Client) -> None:
    frame = make_ford_like(5, seed=8)
    as_index = client.post("/predict_seed", json=json.loads(frame.to_json()))
    by_arrays = client.post("/predict_seed", json=as_arrays(frame))
    assert as_index.status_code == by_arrays.status_code == 200, (as_index.text, by_arrays.text)
    assert as_index.json() == by_arrays.json()
    assert len(by_arrays.json()) == 5


def test_seed_array_errors_name_column_and_position(client: httpx.Client) -> None:
    body = as_arrays(make_ford_like(3, seed=3))
    body["mileage"][1] = -5
    body["engineSize"] = body["engineSize"][:2]
    response = client.post("/predict_seed", json=body)
    assert response.status_code == 400, response.text
    locs = sorted(tuple(e["loc"]) for e in response.json()["detail"])
    assert locs == [("engineSize", 2), ("mileage", 1)]


def test_unknown_fields_are_400_naming_them(client: httpx.Client) -> None:
    item = listings(1)[0]
    cases = {
        "/predict": ({"listings": [item], "dry_run": True}, ["dry_run"]),
        "/predict#listing": (
            {"listings": [item, item | {"colour": "red"}]},
            ["listings", 1, "colour"],
        ),
        "/predict_seed": (json.loads(make_ford_like(1).to_json()) | {"doors": {"0": 5}}, ["doors"]),
    }
    for route, (body, loc) in cases.items():
        response = client.post(route.split("#")[0], json=body)
        assert response.status_code == 400, (route, response.text)
        assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
            (loc, "extra_forbidden")
        ], route


def test_one_batch_cap_for_every_route(client: httpx.Client) -> None:
    from model.api_schema import MAX_BATCH

    item = listings(1)[0]
    too_many = client.post("/predict", json={"listings": [item] * (MAX_BATCH + 1)})
    assert too_many.status_code == 400
    assert [e["type"] for e in too_many.json()["detail"]] == ["too_long"]
    seed_row = as_arrays(make_ford_like(1))
    seed = {column: values * (MAX_BATCH + 1) for column, values in seed_row.items()}
    too_many_seed = client.post("/predict_seed", json=seed)
    assert too_many_seed.status_code == 400
    assert {e["type"] for e in too_many_seed.json()["detail"]} == {"too_long"}
    just_enough = {column: values * MAX_BATCH for column, values in seed_row.items()}
    assert len(client.post("/predict_seed", json=just_enough).json()) == MAX_BATCH


def test_oversized_declared_body_is_413_before_it_is_sent(server: str) -> None:
    from model.api_schema import MAX_BODY_BYTES

    head = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {MAX_BODY_BYTES * 20}\r\n\r\n"
    ).encode()
    answer, seconds = raw_request(server, head, [b'{"listings": ['])  # the rest never comes
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert seconds < 5


def test_oversized_chunked_body_is_413(server: str) -> None:
    from model.api_schema import MAX_BODY_BYTES

    head = (
        b"POST /predict_seed HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    piece = b" " * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (MAX_BODY_BYTES // len(piece) + 2)
    answer, _ = raw_request(server, head, [*chunks, b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_serving_model_route(client: httpx.Client, model_tag: str) -> None:
    response = client.post("/model")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_version"] == model_tag
    assert answer["metrics"]["mae"] > 0
