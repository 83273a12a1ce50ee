"""Serve an emulator over real HTTP on loopback: uvicorn (h11) in a background thread.

I/O shell. The server thread runs its own asyncio loop, so the caller's code
may run on asyncio, trio or no event loop at all. The listening socket is
bound here before uvicorn starts, so port 0 gives a free port known at once,
and readiness is signalled by an event set from uvicorn's startup, not
guessed with sleeps. Every accepted connection has Nagle's algorithm off
(`NoDelayH11Protocol`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Final

import anyio
import anyio.to_thread
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._emulator import Emulator

__all__ = ["EmulatorServer", "NoDelayH11Protocol", "serve_emulator"]

# How long start() waits for uvicorn to come up, and stop() for it to go down.
_START_TIMEOUT: Final = 30.0
_STOP_TIMEOUT: Final = 30.0
# What uvicorn logs each time the drop fault breaks an answer off on purpose.
_UNFINISHED_ANSWER: Final = "ASGI callable returned without completing response."


class _QuietDrops(logging.Filter):
    """Hides uvicorn's complaint about answers the emulator breaks off on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _UNFINISHED_ANSWER


_QUIET_DROPS: Final = _QuietDrops()
_quiet_lock = threading.Lock()
_quiet_users = 0


def _quiet(on: bool) -> None:
    """Install the filter while at least one server runs."""
    global _quiet_users
    with _quiet_lock:
        _quiet_users += 1 if on else -1
        logger = logging.getLogger("uvicorn.error")
        if _quiet_users > 0:
            logger.addFilter(_QUIET_DROPS)
        else:
            logger.removeFilter(_QUIET_DROPS)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, turning TCP_NODELAY on for every accepted socket.

    asyncio sets TCP_NODELAY itself only on sockets whose ``proto`` is
    IPPROTO_TCP, and a socket made with ``socket.socket(AF_INET, SOCK_STREAM)``
    (proto 0), like the listener handed to uvicorn here, passes proto 0 on to
    every connection it accepts. Nagle's algorithm then holds back the start of
    each answer on a kept-alive connection until the client's delayed ACK
    arrives, about 40 ms on Linux. Pass the class as ``uvicorn.Config(http=...)``.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off, then set up the connection as uvicorn does."""
        _set_nodelay(transport)
        super().connection_made(transport)


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Set TCP_NODELAY on a transport's TCP socket; leave any other kind alone."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Server(uvicorn.Server):
    """uvicorn's server, telling a threading.Event once it listens."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._ready.set()


class EmulatorServer:
    """An emulator served over HTTP on a loopback port, from a background thread.

    Use it as a context manager, or call `start` and `stop`. Port 0 (the
    default) picks a free port; `url` tells which.

    Args:
        emulator: the emulator to serve; a new one from ``emulator_kwargs`` if None.
        host: the address to listen on (keep it on loopback).
        port: the port; 0 for any free one.
        log_config: uvicorn's logging configuration; None (the default) leaves
            logging as the application set it up.
        access_log: log every request (uvicorn's access log).
        **emulator_kwargs: passed to `Emulator` when ``emulator`` is None.

    Example:
        >>> import httpx
        >>> with EmulatorServer(latency=0.1) as server:
        ...     httpx.get(server.url).status_code
        200
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_config: dict[str, Any] | None = None,
        access_log: bool = False,
        **emulator_kwargs: Any,
    ) -> None:
        if emulator is not None and emulator_kwargs:
            raise TypeError("pass either an emulator or Emulator keyword arguments, not both")
        self.emulator = emulator if emulator is not None else Emulator(**emulator_kwargs)
        self.host = host
        self.port = port
        self._config = uvicorn.Config(
            self.emulator.app,
            # h11 closes a connection whose answer falls short (the drop fault).
            http=NoDelayH11Protocol,
            loop="asyncio",
            ws="none",
            lifespan="off",
            log_config=log_config,
            access_log=access_log,
            timeout_graceful_shutdown=5,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._finished = threading.Event()

    @property
    def url(self) -> str:
        """The base URL to send requests to, e.g. ``http://127.0.0.1:53117``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind the port, start uvicorn in a thread and return once it accepts connections.

        Raises:
            OSError: the address cannot be bound.
            RuntimeError: the server is already running, or did not come up.
        """
        if self._thread is not None:
            raise RuntimeError("the emulator server is already running")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._finished.clear()
        self._server = _Server(self._config, ready)
        # A daemon thread: a server somebody forgot to stop must not keep the process alive.
        self._thread = threading.Thread(
            target=self._run,
            args=(self._server, sock, ready),
            name=f"picpik-emulator-{self.port}",
            daemon=True,
        )
        _quiet(True)
        self._thread.start()
        try:
            ready.wait(_START_TIMEOUT)
        finally:
            if not self._server.started:
                self.stop()
        if self._thread is None:
            raise RuntimeError(f"the emulator server did not start: {self._error!r}")

    def stop(self) -> None:
        """Ask uvicorn to shut down and wait for its thread to end; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join()
        self._server = self._thread = None
        _quiet(False)

    def wait(self) -> None:
        """Block until the server stops; a KeyboardInterrupt ends the wait safely.

        An Event, not `Thread.join`: before Python 3.13 a join interrupted by
        Ctrl-C marks the thread as finished while it still runs.
        """
        if self._thread is not None:
            self._finished.wait()

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, server: _Server, sock: socket.socket, ready: threading.Event) -> None:
        """The thread body: serve until told to stop, never letting an error escape."""
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # startup failures arrive as SystemExit
            self._error = exc
        finally:
            sock.close()
            ready.set()
            self._finished.set()


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


@asynccontextmanager
async def serve_emulator(
    emulator: Emulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **emulator_kwargs: Any,
) -> AsyncIterator[EmulatorServer]:
    """Serve an emulator on loopback for the duration of an ``async with`` block.

    Works under asyncio and trio: the server runs in its own thread and loop.
    It accepts connections when the block is entered and is shut down cleanly
    when it is left.

    Example:
        >>> import httpx
        >>> async def main() -> None:
        ...     async with serve_emulator(latency=0.5) as server:
        ...         async with httpx.AsyncClient(base_url=server.url) as http:
        ...             assert (await http.get("/")).status_code == 200
        >>> anyio.run(main)
    """
    server = EmulatorServer(emulator, host=host, port=port, **emulator_kwargs)
    await anyio.to_thread.run_sync(server.start)
    try:
        yield server
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.stop)
