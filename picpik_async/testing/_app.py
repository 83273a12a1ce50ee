"""The emulator's ASGI app: HTTP in, the pure core's decisions out.

I/O shell (Starlette). ``POST /`` takes the signed JSON body of every action
(picpik-api.md section 1.1: the Action is in the body, the path is ``/``);
``GET /images/{task_uid}/{index}.png`` serves result images. Everything the
answer says is decided by `Emulator` through the pure modules; this module only
reads bodies, sleeps for the slow fault, renders images off the event loop and
writes (or breaks off) answers. It runs on asyncio and trio alike (anyio).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._images import render_png
from ._service import HttpAnswer, decode_body
from ._state import ImageLookup
from ._transport import DROP_HEADER

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = ["create_app"]

_HOME = "PICPIK emulator. POST signed JSON requests to / (see picpik_async.testing).\n"
_IMAGE_ERRORS = {
    ImageLookup.MISSING: "No such image: unknown task, index, or the task has not finished.\n",
    # Section 3.18: PICPIK keeps generated images for 24 hours only.
    ImageLookup.EXPIRED: "Image expired: generated images are kept for 24 hours only.\n",
}


def create_app(emulator: Emulator) -> Starlette:
    """The ASGI app serving ``emulator``; `Emulator.app` holds one.

    Example:
        >>> from picpik_async.testing import Emulator
        >>> app = create_app(Emulator())
    """

    async def api(request: Request) -> Response:
        data = decode_body(await request.body())
        ticket = emulator._arrive(data)
        if ticket.early.delay > 0:
            await anyio.sleep(ticket.early.delay)
        answer = ticket.early.answer or emulator._process(ticket, data, str(request.base_url))
        return _response(answer)

    async def image(request: Request) -> Response:
        found = emulator._image(request.path_params["task_uid"], request.path_params["index"])
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
