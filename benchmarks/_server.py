"""Benchmark launcher: one emulator served by uvicorn on loopback, in its own process.

Run by `run.py` with ``sys.executable``, one fresh process per scenario, so the
server's CPU is not the client's and no state leaks from one scenario to the next.
It prints one JSON line (``{"port": ..., "pid": ...}``) on stdout once uvicorn
accepts connections, and serves until SIGTERM / SIGINT, or until its parent dies.

The task latency is a spec from `_scenarios` (``--latency=lognormal:median=6,...``,
see `_scenarios.latency_from_spec`) and ``--queue-share`` the part of it a task
spends queuing. Like `picpik_async.testing.EmulatorServer`, it serves with
`NoDelayH11Protocol`, so that no answer waits for a delayed ACK.

Besides the emulator's own routes it serves ``GET /_bench/tasks`` (benchmark
only): every task's creation and finish time and the times it was polled, the
times of every ListRunningTasks answer, all on this process's ``time.monotonic()``
(CLOCK_MONOTONIC on Linux, the same clock in every process), the emulator's
counters and this process's CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import _scenarios
import attrs
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from picpik_async.testing import Emulator, Faults, RunningList
from picpik_async.testing._server import NoDelayH11Protocol
from picpik_async.testing._state import ServiceState, Task

# Seconds between two checks that the parent process is still there.
_PARENT_CHECK = 1.0


@attrs.define(kw_only=True)
class RecordingState(ServiceState):
    """The emulator's state, also noting when each TaskUID was polled (server clock).

    `ServiceState.details` is what a ListTasksDetails request reads; recording
    there costs one list append per polled TaskUID, the same for every client.
    `ServiceState.running` is what a ListRunningTasks request reads: one answer
    covers every task, so it is one append per request (`_metrics` counts it as
    a poll of each task that was running).
    """

    polled: dict[str, list[float]] = attrs.Factory(dict)
    running_polls: list[float] = attrs.Factory(list)

    def details(self, uids: Iterable[str]) -> list[Task]:
        """The known tasks among ``uids``; notes the time against each."""
        found = super().details(uids)
        now = self.clock()
        for task in found:
            self.polled.setdefault(task.uid, []).append(now)
        return found

    def running(self, *args: Any, **kwargs: Any) -> list[Task]:
        """The tasks not yet over; notes the time of the request.

        Passes on whatever it is given: a later emulator takes the running
        list's quirks here.
        """
        self.running_polls.append(self.clock())
        return super().running(*args, **kwargs)


def build_emulator(
    latency: str, queue_share: float, credits: int, seed: int, running_list: str = ""
) -> Emulator:
    """An emulator whose task latencies follow the spec ``latency``, with recording state;
    ``running_list`` names how its ListRunningTasks bends the truth (`_scenarios.Variant`)."""
    options = _scenarios.running_list_options(running_list)
    emulator = Emulator(
        latency=_scenarios.latency_from_spec(latency),
        queue_share=queue_share,
        credits=credits,
        seed=seed,
        faults=Faults(running_list=RunningList(**options)),  # type: ignore[arg-type]
    )
    fields = {a.name: getattr(emulator.state, a.name) for a in attrs.fields(ServiceState)}
    emulator.state = RecordingState(**fields)
    return emulator


def add_bench_route(emulator: Emulator, started_cpu: float) -> None:
    """Mount ``GET /_bench/tasks`` on the emulator's Starlette app."""
    state = emulator.state
    assert isinstance(state, RecordingState)

    async def tasks(request: Request) -> Response:
        # Read under the emulator's lock: requests may still be in flight.
        with emulator._lock:
            counters = emulator.counters
            body: dict[str, Any] = {
                "now": time.monotonic(),
                "tasks": {
                    uid: {
                        "created": task.created_at,
                        "done": task.done_at,
                        "polls": state.polled.get(uid, []),
                    }
                    for uid, task in state.tasks.items()
                },
                "running_polls": list(state.running_polls),
                "requests": dict(counters.requests),
                "list_lengths": list(counters.list_lengths),
                "tasks_created": counters.tasks_created,
                "duplicate_tasks": len(counters.duplicate_tasks()),
                "cpu_seconds": _cpu_seconds() - started_cpu,
            }
        return JSONResponse(body)

    emulator.app.router.routes.insert(0, Route("/_bench/tasks", tasks, methods=["GET"]))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Server(uvicorn.Server):
    """uvicorn's server, announcing its port on stdout once it listens."""

    def __init__(self, config: uvicorn.Config, port: int) -> None:
        super().__init__(config)
        self._port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        print(json.dumps({"port": self._port, "pid": os.getpid()}), flush=True)


def _watch_parent(server: _Server) -> None:
    """Stop serving when the parent process goes away (we are re-parented)."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK)
    server.should_exit = True
    time.sleep(10)
    os._exit(1)  # the graceful exit did not happen in time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency",
        default=_scenarios.UNIFORM3.spec,
        help="a latency spec, e.g. uniform:low=2.7,high=3.3 or lognormal:median=6,sigma=0.5",
    )
    parser.add_argument("--queue-share", type=float, default=0.3)
    parser.add_argument("--credits", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--running-list",
        default="",
        help="how ListRunningTasks bends the truth, e.g. refused or omits_queued,lags=1.5",
    )
    args = parser.parse_args(argv)
    try:
        _scenarios.latency_from_spec(args.latency)
        emulator = build_emulator(
            args.latency, args.queue_share, args.credits, args.seed, args.running_list
        )
    except (ValueError, TypeError) as error:
        parser.error(str(error))

    add_bench_route(emulator, _cpu_seconds())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # loopback only, any free port
    sock.listen(2048)
    config = uvicorn.Config(
        emulator.app,
        http=NoDelayH11Protocol,
        loop="asyncio",
        ws="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
        backlog=2048,
    )
    server = _Server(config, sock.getsockname()[1])
    threading.Thread(target=_watch_parent, args=(server,), daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
