"""The running BentoML service bounds what a caller can make it read or price."""

from __future__ import annotations

import httpx

from config.settings import StackSettings
from model.api_schema import MAX_BATCH, MAX_BODY_BYTES
from tests.model.support import raw_request

LISTING = dict(model="Fiesta", year=2018, transmission="Manual", mileage=24000,
               fuel_type="Petrol", tax=145, mpg=65.7, engine_size=1.0)  # fmt: skip


def test_an_oversized_body_is_refused_before_it_is_read(stack_ready: StackSettings) -> None:
    """The body is announced at 20 times the limit and never sent: a server that read it
    whole would wait for it; this one answers 413 from the header alone."""
    services = stack_ready.services
    head = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {MAX_BODY_BYTES * 20}\r\n\r\n"
    ).encode()
    answer, _ = raw_request(services.bentoml_url, head, [b'{"listings": ['])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_every_route_has_the_same_batch_cap(stack_ready: StackSettings) -> None:
    url = stack_ready.services.bentoml_url
    too_many = httpx.post(f"{url}/predict", json={"listings": [LISTING] * (MAX_BATCH + 1)},
                          timeout=60)  # fmt: skip
    assert too_many.status_code == 400
    seed = {"model": ["Fiesta"], "year": [2018], "transmission": ["Manual"],
            "mileage": [24000], "fuelType": ["Petrol"], "tax": [145], "mpg": [65.7],
            "engineSize": [1.0]}  # fmt: skip
    seed_too_many = {column: values * (MAX_BATCH + 1) for column, values in seed.items()}
    assert httpx.post(f"{url}/predict_seed", json=seed_too_many, timeout=60).status_code == 400


def test_unknown_fields_are_refused_by_name(stack_ready: StackSettings) -> None:
    url = stack_ready.services.bentoml_url
    answer = httpx.post(f"{url}/predict", json={"listings": [dict(LISTING, colour="red")]},
                        timeout=30)  # fmt: skip
    assert answer.status_code == 400
    assert ["listings", 0, "colour"] in [error["loc"] for error in answer.json()["detail"]]
