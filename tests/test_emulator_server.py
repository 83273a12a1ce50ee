"""Tests for the emulator over real TCP on loopback: serve_emulator, EmulatorServer, the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from picpik_async._signing import dumps, sign
from picpik_async.cli import main
from picpik_async.testing import (
    Emulator,
    EmulatorServer,
    Faults,
    Malformed,
    ManualClock,
    Trigger,
    serve_emulator,
)

SUBMIT = {
    "Action": "GenerateImagesSDXL",
    "MainModel": {"ModelCode": "PICPIK General"},
    "ImageAndMaskList": [],
    "PositivePrompts": ["a lighthouse at dusk"],
    "Width": 512,
    "Height": 768,
    "BatchSize": 2,
}


def signed(emulator: Emulator, body: dict[str, Any]) -> bytes:
    """``body`` with the emulator's PublicKey and a Signature, as JSON bytes."""
    full = {"PublicKey": emulator.public_key, **body}
    full["Signature"] = sign(full, emulator.private_key)
    return dumps(full)


@pytest.mark.anyio
async def test_serve_emulator_over_tcp() -> None:
    """A task submitted over TCP finishes and its images download from the server's URL."""
    clock = ManualClock()
    async with serve_emulator(clock=clock, latency=1.0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        emulator = server.emulator
        async with httpx.AsyncClient(base_url=server.url) as http:
            answer = (await http.post("/", content=signed(emulator, SUBMIT))).json()
            uid = answer["TaskUID"]
            clock.advance(1.0)
            poll = {"Action": "ListTasksDetails", "TaskUIDList": [uid]}
            (detail,) = (await http.post("/", content=signed(emulator, poll))).json()[
                "TaskDetailList"
            ]
            assert detail["Status"] == "Finished"
            assert all(url.startswith(server.url + "/images/") for url in detail["ImgList"])
            image = await http.get(detail["ImgList"][1])
        assert Image.open(io.BytesIO(image.content)).size == (512, 768)
    assert not server.running


@pytest.mark.anyio
async def test_dropped_connection_over_tcp() -> None:
    """The drop fault closes the TCP connection mid-answer; the task exists anyway."""
    faults = Faults(drop=Trigger(schedule={1}, actions={"GenerateImagesSDXL"}))
    async with serve_emulator(latency=60.0, faults=faults) as server:
        emulator = server.emulator
        async with httpx.AsyncClient(base_url=server.url) as http:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await http.post("/", content=signed(emulator, SUBMIT))
            running = {"Action": "ListRunningTasks"}
            answer = (await http.post("/", content=signed(emulator, running))).json()
    assert len(answer["TaskUIDList"]) == 1
    assert emulator.counters.faults["drop"] == 1


@pytest.mark.anyio
async def test_serving_a_given_emulator() -> None:
    """serve_emulator serves the emulator it is given; kwargs and an emulator do not mix."""
    emulator = Emulator(public_key="pk", private_key="sk")
    async with serve_emulator(emulator) as server:
        assert server.emulator is emulator
        async with httpx.AsyncClient(base_url=server.url) as http:
            await http.post("/", content=signed(emulator, {"Action": "ListModels"}))
    assert emulator.counters.requests == {"ListModels": 1}
    with pytest.raises(TypeError, match="either"):
        async with serve_emulator(emulator, latency=1.0):
            pass  # pragma: no cover


def test_sync_server_start_stop() -> None:
    """EmulatorServer works without an event loop; stop() is idempotent."""
    server = EmulatorServer(latency=0.1)
    server.start()
    try:
        assert server.running
        assert httpx.get(server.url).status_code == 200
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    finally:
        server.stop()
    server.stop()
    assert not server.running


def test_busy_port_is_reported() -> None:
    """Binding a port in use fails at start(), with nothing left running."""
    with EmulatorServer() as first:
        second = EmulatorServer(port=first.port)
        with pytest.raises(OSError, match="in use"):
            second.start()
        assert not second.running


def accepted_sockets(server: EmulatorServer) -> list[socket.socket]:
    """The server side of every connection the server holds open now."""
    assert server._server is not None
    connections = server._server.server_state.connections
    return [conn.transport.get_extra_info("socket") for conn in connections]


def test_accepted_sockets_have_tcp_nodelay() -> None:
    """Every accepted connection has Nagle's algorithm off (TCP_NODELAY).

    Without it a keep-alive client's second request waits for a delayed ACK.
    """
    with EmulatorServer() as server, socket.create_connection(("127.0.0.1", server.port)) as peer:
        peer.sendall(b"GET / HTTP/1.1\r\nHost: emulator\r\n\r\n")
        assert peer.recv(4096).startswith(b"HTTP/1.1 200")  # the connection is open and served
        (accepted,) = accepted_sockets(server)
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Return once ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_client_gone_mid_body_is_quiet(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that hangs up while sending its body ends that request without a traceback."""
    for name in ("uvicorn", "uvicorn.error"):  # the CLI's logging set-up stops propagation
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    caplog.set_level(logging.DEBUG)
    with EmulatorServer() as server:
        assert server._server is not None
        state = server._server.server_state
        caplog.clear()  # uvicorn's start-up lines
        with socket.create_connection(("127.0.0.1", server.port)) as peer:
            head = b"POST / HTTP/1.1\r\nHost: emulator\r\nContent-Length: 1000\r\n\r\n"
            peer.sendall(head + b'{"Action": ')
            wait_until(lambda: len(state.tasks) == 1, "the request to reach the app")
        wait_until(lambda: not state.tasks, "the request to end")
        assert server.emulator.counters.requests == {}
        loud = [r for r in caplog.records if r.levelno > logging.DEBUG or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]


# --- the CLI ------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def independent_signature(params: dict[str, Any], private_key: str) -> str:
    """Sign as docs/protocol.md "Signing" says, apart from the library (no floats here)."""

    def encode(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict):
            return "".join(key + encode(value[key]) for key in sorted(value))
        if isinstance(value, list):
            return "".join(encode(item) for item in value)
        return str(value)

    text = "".join(key + encode(params[key]) for key in sorted(params) if key != "Signature")
    return hashlib.sha1((text + private_key).encode(), usedforsecurity=False).hexdigest()


class OutputReader:
    """Collects a process's stdout lines in a thread, so reads can time out."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, marker: str, timeout: float = 20.0) -> str:
        """The first line containing ``marker``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if marker in line:
                return line
        raise AssertionError(f"no line with {marker!r} in {self.seen!r}")

    def finish(self) -> str:
        """All the output, once the process has closed its stdout."""
        self._thread.join(20)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)


class CliClient:
    """Talks to the CLI emulator with its own signer and plain json."""

    def __init__(self, http: httpx.Client, public_key: str, private_key: str) -> None:
        self.http = http
        self.public_key = public_key
        self.private_key = private_key

    def call(self, body: dict[str, Any], *, private_key: str | None = None) -> dict[str, Any]:
        full = {"PublicKey": self.public_key, "request_uuid": "cli-test", **body}
        full["Signature"] = independent_signature(full, private_key or self.private_key)
        response = self.http.post("/", content=json.dumps(full))
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        assert answer["request_uuid"] == "cli-test"
        return answer


def test_cli_emulator_end_to_end() -> None:
    """`picpik emulator` serves signed requests, runs tasks and stops cleanly on SIGINT."""
    port = free_port()
    command = [sys.executable, "-m", "picpik_async.cli", "emulator", "--port", str(port)]
    command += ["--public-key", "K", "--private-key", "S", "--latency", "0.5", "--no-access-log"]
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed argv
            command, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        assert process.stdout is not None
        output = OutputReader(process.stdout)
        try:
            url = output.wait_for("listening on http://").split("listening on ", 1)[1].strip()
            assert url == f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=10) as http:
                run_cli_scenario(CliClient(http, "K", "S"))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            finally:
                if process.poll() is None:  # a safety net: it should have stopped by now
                    process.kill()
                    process.wait()
                out = output.finish()
                process.stdout.close()
        errors.seek(0)
        assert process.returncode == 0, errors.read()
    assert "PrivateKey: S" in out
    assert "Stopping the emulator." in out


def run_cli_scenario(client: CliClient) -> None:
    """Submit, poll until done, download, check credits and refusals."""
    before = client.call({"Action": "GetCreditBalance"})
    answer = client.call(SUBMIT)
    assert answer["RetCode"] == 0
    uid = answer["TaskUID"]
    statuses = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        (detail,) = client.call({"Action": "ListTasksDetails", "TaskUIDList": [uid]})[
            "TaskDetailList"
        ]
        statuses.append(detail["Status"])
        if detail["Status"] == "Finished":
            break
        time.sleep(0.1)
    assert statuses[0] in ("Queuing", "Running")
    assert statuses[-1] == "Finished"
    assert len(detail["ImgList"]) == 2
    for image_url in detail["ImgList"]:
        image = Image.open(io.BytesIO(client.http.get(image_url).content))
        assert (image.format, image.size) == ("PNG", (512, 768))
    after = client.call({"Action": "GetCreditBalance"})
    assert after["UsedCredits"] - before["UsedCredits"] == detail["ConsumeApiPoint"] > 0
    assert client.call({"Action": "ListModels"}, private_key="wrong")["RetCode"] == 171
    for field, value in (("Width", 10), ("BatchSize", 17)):
        refused = client.call({**SUBMIT, field: value})
        assert refused["RetCode"] == 160
        assert field in refused["Message"]


def test_cli_needs_click() -> None:
    """Without the cli extra, `picpik` says how to install it and exits with status 1."""
    code = (
        "import sys, runpy; sys.modules['click'] = None; "
        "runpy.run_module('picpik_async.cli', run_name='__main__')"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "pip install 'picpik-async[cli]'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--busy-rate", "1.5"], id="rate-above-one"),
        pytest.param(["--status-words", "a,b"], id="three-words-missing"),
        pytest.param(["--malformed-kind", "poetry"], id="unknown-kind"),
    ],
)
def test_cli_refuses_bad_options(args: list[str]) -> None:
    """Bad options are refused before anything listens."""
    result = CliRunner().invoke(main, ["emulator", "--port", "0", *args])
    assert result.exit_code == 2
    assert "Error" in result.output


def test_cli_malformed_kinds_match_the_library() -> None:
    """The CLI offers exactly the library's malformed kinds."""
    option = next(p for p in main.commands["emulator"].params if p.name == "malformed_kinds")
    assert list(option.type.choices) == [kind.value for kind in Malformed]  # type: ignore[attr-defined]
