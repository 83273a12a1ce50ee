"""An httpx transport that talks to the emulator in-process, with no sockets.

I/O shell. It is `httpx.ASGITransport` plus one thing a socket would do by
itself: when the emulator drops a connection (the drop fault), the caller gets
`httpx.RemoteProtocolError`, as it would from a real server that closed the
connection mid-answer.
"""

from __future__ import annotations

from typing import Final

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DROP_HEADER", "EmulatorTransport"]

#: Marks an answer the emulator means to break off. Over TCP the connection is
#: closed before the announced Content-Length arrives; in-process this
#: transport sees the header and raises instead.
DROP_HEADER: Final = "x-picpik-emulator-drop"


class EmulatorTransport(httpx.ASGITransport):
    """`httpx.ASGITransport` that turns the emulator's dropped answers into errors.

    Get one from `Emulator.transport()`.

    Example:
        >>> from picpik_async.testing import Emulator
        >>> emulator = Emulator()
        >>> client = httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url)
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app=_always_finished(app))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` to the app; raise `httpx.RemoteProtocolError` if it dropped it."""
        response = await super().handle_async_request(request)
        if DROP_HEADER in response.headers:
            await response.aclose()
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                "(the emulator dropped the connection after processing the request)",
                request=request,
            )
        return response


def _always_finished(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so that an answer it breaks off still ends.

    `httpx.ASGITransport` insists on a final body message; a dropped answer
    never sends one (that is how the real server ends up closing the connection).
    """

    async def finished_app(scope: Scope, receive: Receive, send: Send) -> None:
        started = finished = False

        async def watched_send(message: Message) -> None:
            nonlocal started, finished
            started = started or message["type"] == "http.response.start"
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        await app(scope, receive, watched_send)
        if started and not finished:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return finished_app
