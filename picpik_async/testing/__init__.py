"""A local, faithful PICPIK for tests, benchmarks and demos (like ``trio.testing``).

The emulator speaks the API of ``docs/protocol.md``: the same signatures, the same
parameter checks, tasks that move through their statuses over time, image URLs
that serve real PNGs, credits that go down, and fault injection. Reach it
in-process through `Emulator.transport()` (no sockets) or over HTTP with
`serve_emulator` / `EmulatorServer` (or ``picpik emulator`` on the command line).

Needs the ``emulator`` extra: ``pip install 'picpik-async[emulator]'``.

Example:
    >>> import httpx
    >>> from picpik_async.testing import Emulator, ManualClock
    >>> clock = ManualClock()
    >>> emulator = Emulator(latency=2.0, clock=clock)
    >>> http = httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url)
"""

from __future__ import annotations

from ._codes import RetCode
from ._counters import Counters
from ._emulator import DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY, DEFAULT_URL, Emulator
from ._faults import FaultKind, Faults, Malformed, Trigger
from ._server import EmulatorServer, serve_emulator
from ._state import (
    DEFAULT_CREDITS,
    DEFAULT_IMAGE_TTL,
    Failure,
    ManualClock,
    Phase,
    RunningList,
    StatusWords,
    Task,
    jittered,
    task_cost,
)
from ._transport import EmulatorTransport

__all__ = [
    "DEFAULT_CREDITS",
    "DEFAULT_IMAGE_TTL",
    "DEFAULT_PRIVATE_KEY",
    "DEFAULT_PUBLIC_KEY",
    "DEFAULT_URL",
    "Counters",
    "Emulator",
    "EmulatorServer",
    "EmulatorTransport",
    "Failure",
    "FaultKind",
    "Faults",
    "Malformed",
    "ManualClock",
    "Phase",
    "RetCode",
    "RunningList",
    "StatusWords",
    "Task",
    "Trigger",
    "jittered",
    "serve_emulator",
    "task_cost",
]
