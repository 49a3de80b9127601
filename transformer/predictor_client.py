"""HTTP client for the BentoML `/predict` endpoint, plus rejection isolation.

Error classes map the contract onto what the pipeline must do:
- `PredictorUnavailable` (connection error, timeout, 5xx, unexpected status or a
  malformed 200): the service is not usable right now -> retry the same batch.
- `ListingsRejected` (400/422): some input is bad and will stay bad -> move only
  the offending listing(s) to the DLQ and re-send the rest.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx

REJECTION_STATUSES = frozenset({400, 422})
_MAX_DETAIL_CHARS = 2000


class PredictorUnavailable(Exception):
    """Retryable: the service is down, slow, overloaded or answered nonsense."""


class ListingsRejected(Exception):
    """Not retryable: the service refused the input.

    `indices` are positions in the request that the error body names; empty when
    the body does not say which listing was bad (the caller then bisects).
    """

    def __init__(self, detail: str, indices: Sequence[int] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.indices = tuple(indices)


@dataclass(frozen=True, slots=True)
class Prediction:
    predicted_price: float
    price_low: float
    price_high: float
    model_version: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one listing gets no prediction; `reason` is the DLQ label."""

    reason: str
    detail: str


REASON_REJECTED_BY_MODEL = "rejected_by_model"
REASON_INVALID_PREDICTION = "invalid_prediction"

PredictFn = Callable[[Sequence[dict[str, Any]]], list["Prediction | Rejection"]]


class PredictorClient:
    """Thin, reusable (keep-alive) httpx client for one BentoML service."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        transport: httpx.BaseTransport | None = None,
        on_request: Callable[[float, str], None] = lambda seconds, outcome: None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url, timeout=httpx.Timeout(timeout_s), transport=transport
        )
        self._on_request = on_request

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(self, listings: Sequence[dict[str, Any]]) -> list[Prediction | Rejection]:
        """One POST /predict; results are in request order."""
        started = time.perf_counter()
        outcome = "unavailable"
        try:
            try:
                response = self._client.post("/predict", json={"listings": list(listings)})
            except httpx.TimeoutException as exc:
                raise PredictorUnavailable(f"timeout calling /predict: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise PredictorUnavailable(f"cannot reach /predict: {exc!r}") from exc
            if response.status_code in REJECTION_STATUSES:
                outcome = "rejected"
                body = response.text
                raise ListingsRejected(
                    f"HTTP {response.status_code}: {_truncate(body)}",
                    parse_rejected_indices(body, len(listings)),
                )
            if response.status_code != 200:
                raise PredictorUnavailable(
                    f"/predict answered HTTP {response.status_code}: {_truncate(response.text)}"
                )
            try:
                payload = response.json()
            except ValueError as exc:
                raise PredictorUnavailable(f"/predict answered non-JSON: {exc}") from exc
            results = parse_predictions(payload, len(listings))
            outcome = "ok"
            return results
        finally:
            self._on_request(time.perf_counter() - started, outcome)


def parse_predictions(payload: Any, expected: int) -> list[Prediction | Rejection]:
    """Validate a 200 body. A wrong shape overall is the service's fault (retry);
    one unusable item is that listing's problem (DLQ) so it can't block the rest."""
    if not isinstance(payload, list):
        raise PredictorUnavailable(f"/predict returned {type(payload).__name__}, expected a list")
    if len(payload) != expected:
        raise PredictorUnavailable(
            f"/predict returned {len(payload)} results for {expected} listings"
        )
    return [_parse_prediction(item) for item in payload]


def _parse_prediction(item: Any) -> Prediction | Rejection:
    if not isinstance(item, dict):
        return Rejection(REASON_INVALID_PREDICTION, f"result is not an object: {item!r}")
    numbers: dict[str, float] = {}
    for field in ("predicted_price", "price_low", "price_high"):
        value = item.get(field)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            return Rejection(
                REASON_INVALID_PREDICTION, f"{field} is not a finite number: {value!r}"
            )
        numbers[field] = float(value)
    version = item.get("model_version")
    if not isinstance(version, str) or not version:
        return Rejection(REASON_INVALID_PREDICTION, f"model_version missing or empty: {version!r}")
    return Prediction(model_version=version, **numbers)


# "listings.3.year" (pydantic loc), "listings[3]", "listings/3", '"listings", 3' (loc array)
_LISTINGS_INDEX = re.compile(r"listings\s*(?:\.|\[|/|[\"']?\s*,)\s*(\d+)", re.IGNORECASE)
# '"index": 3', "index=3", "index 3"
_INDEX_FIELD = re.compile(r"\bindex\b\W{0,3}?(\d+)", re.IGNORECASE)


def parse_rejected_indices(body: str, count: int) -> list[int]:
    """Which listings a 400 body blames; [] when it doesn't say (-> bisect).

    Only indices inside the request are trusted, so a garbled body can at worst
    make us bisect, never blame a listing that wasn't sent.
    """
    found: set[int] = set()
    try:
        found.update(_indices_from_json(json.loads(body)))
    except ValueError:
        pass
    for pattern in (_LISTINGS_INDEX, _INDEX_FIELD):
        found.update(int(m.group(1)) for m in pattern.finditer(body))
    return sorted(i for i in found if 0 <= i < count)


def _indices_from_json(document: Any) -> list[int]:
    out: list[int] = []
    if isinstance(document, dict):
        for key in ("index", "listing_index"):
            if _is_int(document.get(key)):
                out.append(document[key])
        indices = document.get("indices")
        if isinstance(indices, list):
            out.extend(i for i in indices if _is_int(i))
        loc = document.get("loc")
        if isinstance(loc, list):
            for position, part in enumerate(loc[:-1]):
                if part == "listings" and _is_int(loc[position + 1]):
                    out.append(loc[position + 1])
        for value in document.values():
            if isinstance(value, (dict, list)):
                out.extend(_indices_from_json(value))
    elif isinstance(document, list):
        for value in document:
            out.extend(_indices_from_json(value))
    return out


def predict_isolating_rejections(
    listings: Sequence[dict[str, Any]], predict: PredictFn
) -> list[Prediction | Rejection]:
    """Predict all listings; a 400 costs only the listing(s) it blames.

    If the error names indices, those are rejected and the rest is re-sent.
    Otherwise the request is split in halves until the bad listing is alone.
    Every step removes or splits something, so this always terminates, with
    O(bad * log n) extra calls. `PredictorUnavailable` propagates: the caller
    retries the whole batch (nothing has been produced yet).
    """
    results: list[Prediction | Rejection | None] = [None] * len(listings)

    def solve(positions: list[int]) -> None:
        pending = positions
        while pending:
            try:
                answers = predict([listings[i] for i in pending])
            except ListingsRejected as rejected:
                blamed = {pending[j] for j in rejected.indices if 0 <= j < len(pending)}
                if blamed:
                    for i in blamed:
                        results[i] = Rejection(REASON_REJECTED_BY_MODEL, rejected.detail)
                    pending = [i for i in pending if i not in blamed]
                    continue
                if len(pending) == 1:
                    results[pending[0]] = Rejection(REASON_REJECTED_BY_MODEL, rejected.detail)
                    return
                middle = len(pending) // 2
                solve(pending[:middle])
                solve(pending[middle:])
                return
            for i, answer in zip(pending, answers, strict=True):
                results[i] = answer
            return

    if listings:
        solve(list(range(len(listings))))
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL_CHARS else text[:_MAX_DETAIL_CHARS] + "..."
