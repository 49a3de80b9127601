"""BodyLimitMiddleware's logic with a fake ASGI app (the real server is in test_service)."""

from __future__ import annotations

import asyncio
from typing import Any

from model.body_limit import BodyLimitMiddleware


def _run(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[list[dict], int, int]:
    """Drive the middleware; returns (messages sent to the client, bytes the app read,
    chunks nobody received)."""
    sent: list[dict[str, Any]] = []
    read = 0
    queue = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal read
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await send({"type": "http.response.start", "status": 500, "headers": []})
                return
            read += len(message["body"])
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = {"type": "http", "headers": headers}
    asyncio.run(BodyLimitMiddleware(app, max_bytes=10)(scope, receive, send))
    return sent, read, len(queue)


def _statuses(sent: list[dict]) -> list[int]:
    return [m["status"] for m in sent if m["type"] == "http.response.start"]


def test_small_body_passes() -> None:
    sent, read, _ = _run([(b"content-length", b"6")], [b"abc", b"def"])
    assert _statuses(sent) == [200] and read == 6


def test_declared_length_over_limit_is_413_without_reading() -> None:
    sent, read, left = _run([(b"content-length", b"11")], [b"x" * 11])
    assert _statuses(sent) == [413] and read == 0
    assert left == 1, "nothing of the body was received, by the app or the middleware"


def test_streamed_body_over_limit_is_413_and_the_app_answer_dropped() -> None:
    sent, read, _ = _run([], [b"x" * 6, b"x" * 6, b"x" * 6])
    assert _statuses(sent) == [413]
    assert read == 6, "the chunk that crossed the limit never reaches the app"
