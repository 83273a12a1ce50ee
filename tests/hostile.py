"""A small hostile HTTP server of our own, on loopback, for tests/test_hostile.py.

It answers each request with a scripted `Reply`: any status and headers, a
body sent whole or trickled in pieces, or a dropped connection. Every loop
is bounded: a reply sends at most `MAX_BYTES` and lasts at most `MAX_SECONDS`,
and stopping the server ends every reply in progress.

Also here: `run_limited`, which runs a snippet of client code in a
subprocess under an address-space limit, so a memory regression fails a test
instead of the machine.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from types import TracebackType
from typing import Any, Final, Self

import attrs

#: No reply sends more than this many bytes, nor lasts longer than this.
MAX_BYTES: Final = 3 * 1024**3
MAX_SECONDS: Final = 60.0


@attrs.frozen
class Received:
    """One request the server read."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def action(self) -> str:
        """The `Action` of a PICPIK request body ("" for anything else)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return ""
        return str(data.get("Action", "")) if isinstance(data, dict) else ""

    @property
    def params(self) -> dict[str, Any]:
        """The JSON body as a dict ({} when it is not one)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


@attrs.frozen
class Reply:
    """What to answer.

    Args:
        status: the HTTP status.
        headers: extra headers; `Content-Length` is added for a whole `body`
            unless the headers already name one.
        body: the body, sent at once.
        chunks: instead of `body`, pieces sent one after another (the end of
            the body is marked by closing the connection).
        gap: seconds to wait before each piece of `chunks`.
        drop: close the connection without answering at all.
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    chunks: Iterable[bytes] | None = None
    gap: float = 0.0
    drop: bool = False


def envelope(**fields: Any) -> Reply:
    """A JSON answer with RetCode 0 and the given PICPIK fields."""
    return Reply(body=json.dumps({"RetCode": 0, "Message": "", **fields}).encode())


Script = Callable[[Received], Reply]


class HostileServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that answers each request with `script(request)`.

    Example:
        >>> with HostileServer(lambda r: envelope(TaskUID="u1")) as server:
        ...     ...  # point a client at server.url
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[Received] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        # serve_forever checks for shutdown every poll_interval (0.5 s by default): every
        # test that stops a server would wait for it.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL to point a client at."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def actions(self) -> list[str]:
        """The Action of every request received so far, in order."""
        with self._lock:
            return [r.action for r in self.received]

    def count(self, action: str) -> int:
        """How many requests for `action` arrived."""
        return self.actions().count(action)

    def _record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: HostileServer


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `received`, not stderr."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 64 * 1024 * 1024))
        request = Received(self.command, self.path, dict(self.headers.items()), body)
        owner = self.server.owner
        owner._record(request)
        reply = owner.script(request)
        self.close_connection = True
        if reply.drop:
            return
        # The client may hang up midway: that is often the point of the test.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(reply, owner.stopping)

    def _send(self, reply: Reply, stopping: threading.Event) -> None:
        self.send_response(reply.status)
        names = {name.lower() for name, _ in reply.headers}
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.chunks is None and "content-length" not in names:
            self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if reply.chunks is None:
            self.wfile.write(reply.body)
            return
        sent, deadline = 0, time.monotonic() + MAX_SECONDS
        for chunk in reply.chunks:
            if reply.gap and stopping.wait(reply.gap):
                return
            if stopping.is_set() or sent > MAX_BYTES or time.monotonic() > deadline:
                return
            self.wfile.write(chunk)
            self.wfile.flush()
            sent += len(chunk)


# --- payloads ------------------------------------------------------------------------


def zeros(total: int, piece: int = 1024 * 1024) -> Iterator[bytes]:
    """`total` zero bytes in pieces (a stream that never needs memory for all of it)."""
    block = b"\0" * piece
    for start in range(0, total, piece):
        yield block[: min(piece, total - start)]


@cache
def gzip_of_zeros(size: int) -> bytes:
    """A gzip stream that decodes to `size` zero bytes (about 1/1000 of it on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(block) for block in zeros(size)]
    parts.append(packer.flush())
    return b"".join(parts)


@cache
def double_gzip_bomb(size: int) -> bytes:
    """A body with `Content-Encoding: gzip, gzip` that decodes to `size` zero bytes."""
    return gzip.compress(gzip_of_zeros(size), 9)


# --- a subprocess under a memory budget --------------------------------------------------


def run_limited(code: str, *, memory: int, timeout: float = 60.0, **env: str) -> str:
    """Run Python `code` in a subprocess whose address space is capped at `memory` bytes.

    Returns what it printed on stdout; raises `AssertionError` (with its
    stderr) when it fails, runs out of memory or of time.
    """
    prelude = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
        """
    )
    environment = {**os.environ, "MALLOC_ARENA_MAX": "2", **env}
    process = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )
    if process.returncode != 0:
        raise AssertionError(
            f"subprocess exited {process.returncode}:\n{process.stdout}\n{process.stderr[-4000:]}"
        )
    return process.stdout
