"""A minimal HTTP/1.1 server loop on asyncio streams, shared by the drivers' HTTP APIs.

Both the Toxiproxy-compatible API (:mod:`broker_sim.drivers.proxy`) and the management API
of each simulated node (:mod:`broker_sim.drivers.management`) decide their answers in a
sans-IO ``handle(method, target, headers, body) -> (status, headers, body)``; this module
only reads requests (request line, headers with lower-cased names, a ``Content-Length``
body), writes responses with their ``Content-Length``, and keeps the connection alive until
the client sends ``Connection: close`` or goes away. A handler may also be a coroutine, and
may answer ``None`` to drop the connection unanswered (a node that died meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable

Response = tuple[int, dict[str, str], bytes]
Handler = Callable[[str, str, dict[str, str], bytes], "Response | Awaitable[Response | None]"]

#: Reason phrases for the status codes the APIs answer with.
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
}


async def serve_http(reader: asyncio.StreamReader, writer, handle: Handler) -> None:
    """Answer requests on one client connection until it closes; then close it."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            answer = handle(method, target, headers, body)
            if inspect.isawaitable(answer):
                answer = await answer
            if answer is None:
                break
            write_response(writer, *answer)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    writer.close()


def write_response(writer, status: int, headers: dict, body: bytes) -> None:
    lines = [f"HTTP/1.1 {status} {STATUS_TEXT.get(status, '')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
