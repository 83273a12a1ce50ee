"""The emulator launcher of `distributed.py`: `_server.py`, plus ``GET /_bench/prompts``.

`_server.py`'s ``/_bench/tasks`` gives each task's timeline but not what it was
asked for, and a duplicate in a distributed run is one *prompt* with two tasks
(each claim of a ledger row draws a fresh request_uuid, so two workers sending
the same row would not share a request_uuid). This launcher runs `_server.main`
unchanged, with `_server.add_bench_route` wrapped so that it also mounts

``GET /_bench/prompts``: ``{"tasks": [{"uid", "prompt", "request_uuid", "cost"}, ...],
"credits_used": ..., "tasks_per_request_uuid_max": ..., "reused_request_uuids": ...}``

Same command line, same stdout line, same shutdown as `_server.py`.
"""

from __future__ import annotations

from typing import Any

import _server
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from picpik_async.testing import Emulator

_plain_add_bench_route = _server.add_bench_route


def prompts_body(emulator: Emulator) -> dict[str, Any]:
    """What every task was asked for and cost, and the emulator's credit and uuid counters."""
    # Under the emulator's lock, as `_server`'s route does: requests may be in flight.
    with emulator._lock:
        state, counters = emulator.state, emulator.counters
        per_uuid = counters.tasks_per_request_uuid
        return {
            "tasks": [
                {
                    "uid": task.uid,
                    "prompt": task.prompt,
                    "request_uuid": task.request_uuid,
                    "cost": task.cost,
                }
                for task in state.tasks.values()
            ],
            "credits_used": state.credits.used,
            "tasks_per_request_uuid_max": max(per_uuid.values(), default=0),
            "reused_request_uuids": counters.reused_request_uuids,
        }


def add_bench_routes(emulator: Emulator, started_cpu: float) -> None:
    """`_server`'s ``/_bench/tasks``, and ``/_bench/prompts`` before the emulator's routes."""
    _plain_add_bench_route(emulator, started_cpu)

    async def prompts(request: Request) -> Response:
        return JSONResponse(prompts_body(emulator))

    emulator.app.router.routes.insert(0, Route("/_bench/prompts", prompts, methods=["GET"]))


if __name__ == "__main__":
    # `_server.main` looks the function up in its module when it runs: swap it in first.
    _server.add_bench_route = add_bench_routes
    _server.main()
