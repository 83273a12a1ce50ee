"""The emulator's ASGI app: HTTP in, the pure core's decisions out.

I/O shell (Starlette). ``POST /`` takes the signed JSON body of every action
(docs/protocol.md, "Requests": the Action is in the body, the path is ``/``);
``GET /images/{task_uid}/{index}.png`` serves result images. Everything the
answer says is decided by `Emulator` through the pure modules; this module only
reads bodies, sleeps for the slow fault, renders images off the event loop and
writes (or breaks off) answers. It runs on asyncio and trio alike (anyio).
A client that hangs up before its body has arrived ends that request quietly
(one DEBUG line on the ``picpik_async.testing`` logger), not with a traceback.

It never imports `_emulator`: the emulator hands its request path to
`create_app` as three callables, so the dependency goes one way only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import anyio.to_thread
from attrs import frozen
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._faults import EarlyFaults
from ._images import render_png
from ._service import HttpAnswer, decode_body
from ._state import ImageLookup, ImageSpec
from ._transport import DROP_HEADER

__all__ = ["Ticket", "create_app"]

logger: Final = logging.getLogger("picpik_async.testing")

_HOME = "PICPIK emulator. POST signed JSON requests to / (see picpik_async.testing).\n"
_IMAGE_ERRORS = {
    ImageLookup.MISSING: "No such image: unknown task, index, or the task has not finished.\n",
    # PICPIK keeps generated images for 24 hours only (docs/protocol.md, "Images").
    ImageLookup.EXPIRED: "Image expired: generated images are kept for 24 hours only.\n",
}


@frozen
class Ticket:
    """One request on its way through the emulator: what `arrive` decided for it."""

    action: str
    number: int
    early: EarlyFaults


def create_app(
    *,
    arrive: Callable[[object], Ticket],
    process: Callable[[Ticket, object, str], HttpAnswer],
    find_image: Callable[[str, int], ImageSpec | ImageLookup],
) -> Starlette:
    """The ASGI app over an emulator's request path; `Emulator.app` holds one.

    Args:
        arrive: counts a decoded body and decides the faults before processing.
        process: handles a request past those faults (ticket, body, base URL).
        find_image: the image to serve for a TaskUID and index, or why none.

    Example:
        >>> from picpik_async.testing import Emulator
        >>> app = Emulator().app  # made by create_app(arrive=..., process=..., ...)
    """

    async def api(request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:
            logger.debug("client gone before its request body arrived; nothing answered")
            return _NoAnswer()
        data = decode_body(body)
        ticket = arrive(data)
        if ticket.early.delay > 0:
            await anyio.sleep(ticket.early.delay)
        answer = ticket.early.answer or process(ticket, data, str(request.base_url))
        return _response(answer)

    async def image(request: Request) -> Response:
        found = find_image(request.path_params["task_uid"], request.path_params["index"])
        if isinstance(found, ImageLookup):
            return PlainTextResponse(_IMAGE_ERRORS[found], status_code=404)
        png = await anyio.to_thread.run_sync(render_png, found)
        return Response(png, media_type="image/png")

    async def home(request: Request) -> Response:
        return PlainTextResponse(_HOME)

    routes = [
        Route("/", api, methods=["POST"]),
        Route("/", home, methods=["GET"]),
        Route("/images/{task_uid}/{index:int}.png", image, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def _response(answer: HttpAnswer) -> Response:
    """The Starlette response for an answer: whole, or broken off when dropped."""
    kind = _DroppedResponse if answer.drop else Response
    headers = dict(answer.headers)
    if answer.drop:
        headers[DROP_HEADER] = "1"
    return kind(
        answer.content, status_code=answer.status, headers=headers, media_type=answer.media_type
    )


class _NoAnswer(Response):
    """Sends nothing: the client has hung up, so there is nobody to answer.

    uvicorn does not complain about a request that ends unanswered once its
    client has disconnected.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


class _DroppedResponse(Response):
    """Announces the whole body, sends half of it and stops.

    Uvicorn (h11) then closes the connection short of the Content-Length, so a
    client over TCP sees the connection drop mid-answer; `EmulatorTransport`
    does the same in-process when it sees `DROP_HEADER`.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
