"""BentoML `POST /predict`, one call per batch, and what its answers mean.

No answer, a timeout, a 5xx or a malformed 200 is `Unavailable`: the caller retries. A 400
names the refused listings in `detail[*].loc` (`["listings", i, field]`, model/api_schema.py):
they are `Refused` and the rest is sent again (a 400 naming none refuses all it was sent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from model.api_schema import PricePrediction

_ANSWERS = TypeAdapter(list[PricePrediction])


class Unavailable(Exception):
    """The service is down, slow or answered nonsense: retry later."""


class Refused(str):
    """The model's reason for refusing one listing (its 400 body)."""


class Predictor:
    def __init__(self, client: httpx.Client, observe: Callable[[float, str], None]) -> None:
        self._client = client  # base_url and timeout set: BentoML's address
        self._observe = observe  # (seconds, outcome ok/rejected/unavailable) per request

    def close(self) -> None:
        self._client.close()

    def predict(self, listings: list[dict[str, Any]]) -> list[PricePrediction | Refused]:
        """One answer per listing, in order."""
        answers: dict[int, PricePrediction | Refused] = {}
        pending = list(range(len(listings)))
        while pending:
            result = self._post([listings[i] for i in pending])
            if isinstance(result, list):
                answers.update(zip(pending, result, strict=True))
                break
            detail, named = result
            refused = {pending[i] for i in named if 0 <= i < len(pending)} or set(pending)
            answers.update((i, detail) for i in refused)
            pending = [i for i in pending if i not in refused]
        return [answers[i] for i in range(len(listings))]

    def _post(self, listings: list[dict[str, Any]]) -> list[PricePrediction] | tuple[Refused, set]:
        started, outcome = time.perf_counter(), "unavailable"
        try:
            response = self._client.post("/predict", json={"listings": listings})
            if response.status_code == 400:
                outcome = "rejected"
                return Refused(response.text), _named(response)
            if response.status_code != 200:
                raise Unavailable(f"HTTP {response.status_code}: {response.text:.200}")
            answers = _ANSWERS.validate_json(response.content)
            if len(answers) != len(listings):
                raise Unavailable(f"{len(answers)} answers for {len(listings)} listings")
            outcome = "ok"
            return answers
        except (httpx.HTTPError, ValidationError) as exc:
            raise Unavailable(f"/predict failed: {exc!r:.300}") from exc
        finally:
            self._observe(time.perf_counter() - started, outcome)


def _named(response: httpx.Response) -> set[int]:
    """The listing indices a 400 body names (pydantic's `loc`)."""
    try:
        locs = [error["loc"] for error in response.json()["detail"]]
    except (ValueError, KeyError, TypeError):
        return set()
    return {loc[1] for loc in locs if len(loc) > 1 and loc[0] == "listings" and type(loc[1]) is int}
