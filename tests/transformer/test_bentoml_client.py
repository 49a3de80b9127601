"""BentoML /predict and what its answers mean (transformer/bentoml_client.py).

The contract is tested against the real service in the last test; the others script
the HTTP answers (httpx.MockTransport) to reach every branch without breaking BentoML.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from config.settings import StackSettings
from tests.support import FIESTA_LISTING
from transformer.bentoml_client import BentoMLClient, Unavailable
from transformer.events import Reason, Refusal

Handler = Callable[[httpx.Request], httpx.Response]


def answer(price: float) -> dict:
    return {"predicted_price": price, "price_low": price - 1, "price_high": price + 1,
            "model_version": "car_price_xgb:v1"}  # fmt: skip


def listings(*mileages: int) -> list[dict]:
    return [dict(FIESTA_LISTING, mileage=mileage) for mileage in mileages]


class Scripted:
    """A BentoML stand-in that prices a listing at its mileage, or refuses listings."""

    def __init__(self, refuse: Callable[[list[dict]], httpx.Response | None] = lambda _: None):
        self.refuse, self.requests = refuse, []
        self.outcomes: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["listings"]
        self.requests.append([item["mileage"] for item in sent])
        refused = self.refuse(sent)
        return refused or httpx.Response(200, json=[answer(item["mileage"]) for item in sent])

    def client(self, handler: Handler | None = None) -> BentoMLClient:
        transport = httpx.MockTransport(handler or self)
        http = httpx.Client(base_url="http://bento", transport=transport)
        return BentoMLClient(http, lambda _seconds, outcome: self.outcomes.append(outcome))


def loc_error(*indices: int) -> httpx.Response:
    detail = [
        {"loc": ["listings", i, "mileage"], "type": "greater_than_equal", "msg": "too low"}
        for i in indices
    ]
    return httpx.Response(400, json={"detail": detail})


def test_one_call_answers_every_listing_in_order() -> None:
    bento = Scripted()

    answers = bento.client().predict(listings(3, 1, 2))

    assert [a.predicted_price for a in answers] == [3, 1, 2]
    assert bento.requests == [[3, 1, 2]] and bento.outcomes == ["ok"]


def test_a_refused_listing_is_isolated_and_the_rest_is_priced() -> None:
    def refuse_negative_mileage(sent: list[dict]) -> httpx.Response | None:
        bad = [i for i, item in enumerate(sent) if item["mileage"] < 0]
        return loc_error(*bad) if bad else None

    bento = Scripted(refuse_negative_mileage)

    answers = bento.client().predict(listings(10, -1, 30, -2))

    assert isinstance(answers[1], Refusal) and isinstance(answers[3], Refusal)
    assert answers[1] == Refusal("mileage: too low", "mileage", Reason.REJECTED_BY_MODEL)
    assert [answers[0].predicted_price, answers[2].predicted_price] == [10, 30]
    assert bento.requests == [[10, -1, 30, -2], [10, 30]]
    assert bento.outcomes == ["rejected", "ok"]


def test_a_400_naming_no_listing_refuses_the_whole_request() -> None:
    bento = Scripted(lambda _: httpx.Response(400, json={"detail": [{"loc": ["listings"]}]}))

    answers = bento.client().predict(listings(1, 2))

    assert all(isinstance(a, Refusal) for a in answers) and len(bento.requests) == 1
    assert answers[0].field is None and answers[0].error


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(503, text="overloaded"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"predicted_price": 1}),
        httpx.Response(200, json=[answer(1)]),  # one answer for two listings
        httpx.Response(200, json=[answer(1), {"predicted_price": "x"}]),
    ],
)
def test_a_service_that_answers_nonsense_is_unavailable(response: httpx.Response) -> None:
    bento = Scripted()

    with pytest.raises(Unavailable):
        bento.client(lambda _: response).predict(listings(1, 2))
    assert bento.outcomes == ["unavailable"]


NO_ANSWER = [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError]


@pytest.mark.parametrize("error", NO_ANSWER)
def test_no_answer_is_unavailable(error: type[httpx.TransportError]) -> None:
    """Refused, timed out or cut off: the caller retries (a bug would refuse the listings)."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise error("no answer", request=request)

    bento = Scripted()
    with pytest.raises(Unavailable, match="no answer"):
        bento.client(fail).predict(listings(1))
    assert bento.outcomes == ["unavailable"]


def test_the_real_service_names_the_listing_it_refuses(stack_ready: StackSettings) -> None:
    observed: list[str] = []
    http = httpx.Client(base_url=stack_ready.services.bentoml_url, timeout=10)
    bentoml = BentoMLClient(http, lambda _seconds, outcome: observed.append(outcome))

    answers = bentoml.predict(listings(20000, -5, 30000))

    assert isinstance(answers[1], Refusal) and answers[1].field == "mileage"
    assert answers[1].error.startswith("mileage: ")
    assert answers[0].predicted_price > answers[2].predicted_price > 0
    assert observed == ["rejected", "ok"]


def test_a_future_year_is_refused_by_the_real_service_with_its_field(
    stack_ready: StackSettings,
) -> None:
    http = httpx.Client(base_url=stack_ready.services.bentoml_url, timeout=10)
    bentoml = BentoMLClient(http, lambda _seconds, _outcome: None)

    [answer] = bentoml.predict([dict(FIESTA_LISTING, year=2999)])

    assert isinstance(answer, Refusal) and answer.field == "year"
    assert "2999" in answer.error and len(answer.error) <= 300
