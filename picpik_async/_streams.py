"""Response bodies read as they stream, decoded here and bounded while decoding.

I/O: reads `httpx.Response.aiter_raw()` (the bytes as sent, still encoded) and
decodes them with `_decoding.BodyDecoder`, so a size limit holds on decoded
bytes; httpx's own decoders would inflate each chunk without a bound.

Every iterator opened here is closed. Stopping early (a limit, an error, a
cancellation) closes the response, then runs its byte iterator to its end:
httpx and httpcore stack several async generators, and closing only the
outer one would leave the inner ones to the garbage collector, which trio
reports as ResourceWarnings.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing, suppress
from typing import Any, Final, cast

import anyio
import httpx

from ._decoding import BodyDecoder, too_large
from ._errors import ResponseTooLargeError

__all__ = ["AttemptDeadline", "TooLateToSend", "collect_body", "copy_body", "read_body"]

Write = Callable[[bytes], Awaitable[object]]

# Closing a response ends its stream at once; this only bounds a transport that does not.
_DRAIN_SECONDS: Final = 2.0


async def read_body(response: httpx.Response, *, limit: int, what: str) -> bytes:
    """The decoded body of an API answer, refused past `limit` decoded bytes.

    Args:
        response: a streamed response (`httpx.AsyncClient.stream()`), unread.
        limit: the most decoded bytes accepted.
        what: the Action; errors say "<what> answer is larger than ...".

    Raises:
        ResponseTooLargeError: the declared Content-Length or the decoded body is past `limit`.
        ProtocolError: an unknown Content-Encoding, or corrupt or truncated data.

    Example:
        >>> # async with http.stream("POST", url, content=body) as response:
        >>> #     content = await read_body(response, limit=MAX_RESPONSE_BYTES, what="ListModels")
    """
    return await collect_body(response, limit=limit, what=f"{what} answer")


async def collect_body(response: httpx.Response, *, limit: int, what: str) -> bytes:
    """Like `read_body()`, with `what` naming the body in full ("image https://...").

    Example:
        >>> # data = await collect_body(response, limit=64 * 2**20, what="image x.png")
    """
    parts: list[bytes] = []

    async def keep(piece: bytes) -> None:
        parts.append(piece)

    await copy_body(response, keep, limit=limit, what=what)
    return b"".join(parts)


async def copy_body(response: httpx.Response, write: Write, *, limit: int, what: str) -> int:
    """Hand the decoded body to `write` piece by piece; returns its decoded size.

    A declared Content-Length past `limit` is refused before any of the body
    is read; otherwise at most `limit` + 1 decoded bytes are produced.

    Raises:
        ResponseTooLargeError, ProtocolError: as `read_body()`; and whatever `write` raises.

    Example:
        >>> # async with await anyio.open_file("x.png", "wb") as file:
        >>> #     await copy_body(response, file.write, limit=64 * 2**20, what="image x.png")
    """
    _check_declared(response, limit=limit, what=what)
    content = _already_read(response)
    if content is not None:
        return await _copy_read(content, write, limit=limit, what=what)
    decoder = BodyDecoder(response.headers.get("Content-Encoding", ""), limit=limit, what=what)
    raw = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    async with aclosing(raw):
        try:
            async for chunk in raw:
                for piece in decoder.feed(chunk):
                    await write(piece)
        except BaseException:
            await _run_out(response, raw)  # stopped early: finish every generator under it
            raise
    decoder.finish()
    return decoder.size


def _check_declared(response: httpx.Response, *, limit: int, what: str) -> None:
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLargeError(
            f"{what} declares {declared} bytes, more than the limit of {limit}", limit=limit
        )


def _already_read(response: httpx.Response) -> bytes | None:
    """The body of a response read before it was handed over (a mock's, built from bytes)."""
    try:
        return response.content
    except httpx.ResponseNotRead:
        return None


async def _copy_read(content: bytes, write: Write, *, limit: int, what: str) -> int:
    if len(content) > limit:
        raise too_large(what, limit)
    await write(content)
    return len(content)


async def _run_out(response: httpx.Response, raw: AsyncGenerator[bytes, None]) -> None:
    """Close the response, then run `raw` to its end (at once: its stream is closed).

    Shielded, so that a cancelled read still finishes every generator under
    `raw`; a no-op when `raw` was read to its end already.
    """
    with anyio.move_on_after(_DRAIN_SECONDS, shield=True):
        with suppress(httpx.HTTPError, httpx.StreamError):
            await response.aclose()
        with suppress(httpx.HTTPError, httpx.StreamError):
            async for _ in raw:
                pass


# --- one deadline per attempt ------------------------------------------------------------


class TooLateToSend(Exception):
    """The attempt's deadline passed before its request started to leave."""


class AttemptDeadline:
    """One attempt's deadline, and how far the attempt got, from httpcore's trace events.

    Use `scope` around the attempt and pass `trace` as the request's "trace"
    extension; `scope.cancelled_caught` then says the deadline ended it.

    While a new connection is being made, the deadline steps aside: httpx's own
    connect timeout bounds that phase, and cancelling a TLS handshake midway
    would leak its socket (httpcore closes it only on errors, not on
    cancellation). The deadline is back in force once the request is sent.

    A request counts as "maybe sent" once its headers started, or always when
    the transport reports no events at all (the in-process emulator, a mock,
    a caller's client), since then nothing proves it did not leave.
    """

    __slots__ = ("deadline", "events", "scope", "sending", "traced")

    def __init__(self, timeout: float, *, traced: bool) -> None:
        self.deadline = anyio.current_time() + timeout
        self.scope = anyio.CancelScope(deadline=self.deadline)
        self.traced = traced
        self.events = 0
        self.sending = False

    async def trace(self, name: str, info: Mapping[str, Any]) -> None:
        self.events += 1
        if name.endswith("connect_tcp.started"):
            self.scope.deadline = math.inf
        elif name.endswith("send_request_headers.started"):
            if anyio.current_time() >= self.deadline:
                raise TooLateToSend  # connecting took it all: stop before a byte is sent
            self.sending = True
            self.scope.deadline = self.deadline

    @property
    def maybe_sent(self) -> bool:
        return self.sending or (self.events == 0 and not self.traced)
