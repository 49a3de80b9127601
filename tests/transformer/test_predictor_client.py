"""BentoML client error mapping and 400 isolation (transformer/predictor_client.py).

httpx.MockTransport stands in for the service: no network, no BentoML.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest

from transformer.predictor_client import (
    ListingsRejected,
    Prediction,
    PredictorClient,
    PredictorUnavailable,
    Rejection,
    parse_predictions,
    parse_rejected_indices,
    predict_isolating_rejections,
)

LISTING = {
    "model": "Fiesta",
    "year": 2017,
    "transmission": "Manual",
    "mileage": 15944,
    "fuel_type": "Petrol",
    "tax": 150,
    "mpg": 57.7,
    "engine_size": 1.0,
}
ANSWER = {
    "predicted_price": 11000.5,
    "price_low": 9800.0,
    "price_high": 12100.0,
    "model_version": "car_price_xgb:abc123",
}


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], outcomes: list[str] | None = None
) -> PredictorClient:
    return PredictorClient(
        "http://bentoml.test:3000",
        timeout_s=1.0,
        transport=httpx.MockTransport(handler),
        on_request=lambda seconds, outcome: (
            outcomes.append(outcome) if outcomes is not None else None
        ),
    )


def test_posts_listings_and_returns_predictions_in_order() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        count = len(json.loads(request.content)["listings"])
        return httpx.Response(
            200, json=[{**ANSWER, "predicted_price": 1000.0 * i} for i in range(count)]
        )

    outcomes: list[str] = []
    with client_for(handler, outcomes) as client:
        results = client.predict([LISTING, {**LISTING, "year": 2018}])

    assert [r.predicted_price for r in results] == [0.0, 1000.0]  # type: ignore[union-attr]
    assert seen[0].method == "POST" and seen[0].url.path == "/predict"
    assert json.loads(seen[0].content) == {"listings": [LISTING, {**LISTING, "year": 2018}]}
    assert outcomes == ["ok"]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 404])
def test_server_errors_and_unexpected_statuses_are_retryable(status: int) -> None:
    outcomes: list[str] = []
    client = client_for(lambda request: httpx.Response(status, text="nope"), outcomes)

    with pytest.raises(PredictorUnavailable, match=str(status)):
        client.predict([LISTING])
    assert outcomes == ["unavailable"]


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
)
def test_transport_errors_and_timeouts_are_retryable(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(PredictorUnavailable):
        client_for(handler).predict([LISTING])


@pytest.mark.parametrize(
    "body",
    ["not json", json.dumps({"predictions": []}), json.dumps([ANSWER, ANSWER])],
    ids=["not-json", "not-a-list", "wrong-length"],
)
def test_malformed_success_body_is_retryable(body: str) -> None:
    client = client_for(lambda request: httpx.Response(200, text=body))

    with pytest.raises(PredictorUnavailable):
        client.predict([LISTING])


def test_400_names_the_rejected_listing() -> None:
    body = "1 validation error for Input\nlistings.1.year\n  Input should be a valid integer"
    outcomes: list[str] = []
    client = client_for(lambda request: httpx.Response(400, text=body), outcomes)

    with pytest.raises(ListingsRejected) as caught:
        client.predict([LISTING, LISTING, LISTING])

    assert caught.value.indices == (1,)
    assert "listings.1.year" in caught.value.detail
    assert outcomes == ["rejected"]


def test_unusable_item_in_a_good_response_is_rejected_alone() -> None:
    payload = [ANSWER, {**ANSWER, "price_low": None}, {**ANSWER, "model_version": ""}, "x"]

    results = parse_predictions(payload, 4)

    assert results[0] == Prediction(11000.5, 9800.0, 12100.0, "car_price_xgb:abc123")
    assert [type(r) for r in results[1:]] == [Rejection, Rejection, Rejection]
    assert {r.reason for r in results[1:]} == {"invalid_prediction"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "count", "expected"),
    [
        ("validation error\nlistings.3.mpg\n  Input should be a valid number", 5, [3]),
        ("bad listings[2].year", 5, [2]),
        (json.dumps({"error": "bad field 'year'", "index": 4}), 5, [4]),
        (json.dumps({"detail": [{"loc": ["body", "listings", 1, "mpg"], "msg": "x"}]}), 5, [1]),
        (json.dumps({"indices": [0, 2]}), 5, [0, 2]),
        ("listing at index=1 has a bad fuel_type", 5, [1]),
        ("listings.0.year and listings.3.tax are invalid", 5, [0, 3]),
        ("listings.9.year", 5, []),  # out of range: not trusted
        ("something is wrong", 5, []),
        ("IndexError: list index out of range", 5, []),
    ],
)
def test_rejected_indices_are_parsed_from_common_error_shapes(
    body: str, count: int, expected: list[int]
) -> None:
    assert parse_rejected_indices(body, count) == expected


class FakeService:
    """Rejects any request containing a listing whose model is 'BAD'."""

    def __init__(self, *, name_index: bool) -> None:
        self.name_index = name_index
        self.requests: list[list[str]] = []

    def __call__(self, listings: Sequence[dict[str, Any]]) -> list[Prediction | Rejection]:
        models = [listing["model"] for listing in listings]
        self.requests.append(models)
        bad = [i for i, model in enumerate(models) if model == "BAD"]
        if bad:
            raise ListingsRejected("field 'model' is bad", bad[:1] if self.name_index else ())
        return [Prediction(float(len(m)), 0.0, 1.0, "v1") for m in models]


def listings(*models: str) -> list[dict[str, Any]]:
    return [{**LISTING, "model": model} for model in models]


def test_named_rejection_sends_the_rest_again() -> None:
    service = FakeService(name_index=True)

    results = predict_isolating_rejections(listings("a", "BAD", "ccc"), service)

    assert isinstance(results[1], Rejection) and results[1].reason == "rejected_by_model"
    assert [r.predicted_price for r in (results[0], results[2])] == [1.0, 3.0]  # type: ignore[union-attr]
    assert service.requests == [["a", "BAD", "ccc"], ["a", "ccc"]]


def test_unnamed_rejection_is_found_by_bisection() -> None:
    service = FakeService(name_index=False)
    models = ["m0", "m1", "m2", "m3", "m4", "BAD", "m6", "m7"]

    results = predict_isolating_rejections(listings(*models), service)

    rejected = [i for i, r in enumerate(results) if isinstance(r, Rejection)]
    assert rejected == [5]
    assert all(isinstance(r, Prediction) for i, r in enumerate(results) if i != 5)
    # 1 full + log2(8) levels of halving, each with one good and one bad half
    assert len(service.requests) <= 1 + 2 * 3
    assert ["BAD"] in service.requests


def test_several_unnamed_rejections_are_all_isolated() -> None:
    service = FakeService(name_index=False)

    results = predict_isolating_rejections(listings("BAD", "a", "b", "BAD", "c"), service)

    assert [isinstance(r, Rejection) for r in results] == [True, False, False, True, False]


def test_everything_good_is_one_call_and_nothing_is_no_call() -> None:
    service = FakeService(name_index=False)

    assert len(predict_isolating_rejections(listings("a", "b"), service)) == 2
    assert predict_isolating_rejections([], service) == []
    assert len(service.requests) == 1


def test_unavailable_during_isolation_propagates() -> None:
    def down(listings: Sequence[dict[str, Any]]) -> list[Prediction | Rejection]:
        raise PredictorUnavailable("down")

    with pytest.raises(PredictorUnavailable):
        predict_isolating_rejections(listings("a"), down)
