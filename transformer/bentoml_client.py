"""The transformer's BentoML client (the model itself is model/predictor.py): `POST /predict`,
one call per batch, and what its answers mean. No answer, a timeout, a 5xx or a malformed 200 is
`Unavailable`: the caller retries. A 400 names the refused listings in `detail[*].loc`
(`["listings", i, field]`, model/api_schema.py): they are refused with that field and message,
and the rest is sent again (a 400 naming none refuses all it was sent)."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from model.api_schema import PricePrediction
from transformer.events import Answer, Refusal, refusal

_ANSWERS = TypeAdapter(list[PricePrediction])


class Unavailable(Exception):
    """The service is down, slow or answered nonsense: retry later."""


@dataclass(frozen=True)
class BentoMLClient:
    """The pipeline's `predict`: one call per batch, a refused listing refused alone."""

    http: httpx.Client  # base_url and timeout set: BentoML's address
    observe: Callable[[float, str], None]  # (seconds, outcome ok/rejected/unavailable) per call

    def predict(self, listings: list[dict[str, Any]]) -> list[Answer]:
        """One answer per listing, in order."""
        answers: dict[int, Answer] = {}
        pending = list(range(len(listings)))
        while pending:
            result = self._post([listings[i] for i in pending])
            if isinstance(result, list):
                answers.update(zip(pending, result, strict=True))
                break
            refused = {pending[i]: why for i, why in result.items() if 0 <= i < len(pending)}
            refused = refused or dict.fromkeys(pending, Refusal("refused by the model"))
            answers.update(refused)
            pending = [i for i in pending if i not in refused]
        return [answers[i] for i in range(len(listings))]

    def _post(self, listings: list[dict[str, Any]]) -> list[PricePrediction] | dict[int, Refusal]:
        started, outcome = time.perf_counter(), "unavailable"
        try:
            response = self.http.post("/predict", json={"listings": listings})
            if response.status_code == 400:
                outcome = "rejected"
                return _named(response)
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
            self.observe(time.perf_counter() - started, outcome)


def _named(response: httpx.Response) -> dict[int, Refusal]:
    """The listings a 400 body names (pydantic's `loc`), each with its first error."""
    named: dict[int, Refusal] = {}
    try:
        for error in response.json()["detail"]:
            loc, msg = error["loc"], str(error.get("msg", "refused by the model"))
            if len(loc) > 1 and loc[0] == "listings" and type(loc[1]) is int:
                named.setdefault(loc[1], refusal(loc[2:], msg))
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}
    return named
