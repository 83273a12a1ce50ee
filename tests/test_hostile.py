"""Hostile servers and careless callers (issue 11): one test per way the client was broken.

Most tests run a small hostile server of our own on loopback (`tests/hostile.py`);
the cancellation tests count requests on the emulator. Memory cases run the
client in a subprocess under an address-space limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import httpx
import pytest
from click.testing import CliRunner
from conftest import FAST_POLL, make_client
from hostile import (
    HostileServer,
    Received,
    Reply,
    Script,
    double_gzip_bomb,
    envelope,
    gzip_of_zeros,
    run_limited,
    zeros,
)
from hypothesis import given
from hypothesis import strategies as st

import picpik_async as picpik
from picpik_async._files import child_path, image_file_name
from picpik_async._images import MAX_DOWNLOAD_BYTES, Downloader, _next_hop
from picpik_async._protocol import MAX_RESPONSE_BYTES
from picpik_async._streams import AttemptDeadline, TooLateToSend, read_body
from picpik_async.cli import main as cli_main
from picpik_async.testing import Emulator, Faults, ManualClock, Trigger


def files_in(folder: Path) -> list[Path]:
    """Every file and folder under `folder`."""
    return sorted(folder.rglob("*"))


#: The smallest bytes our image inputs accept as a PNG (the signature is what is sniffed).
TINY_PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)

pytestmark = pytest.mark.anyio


# --- 1-4: money ------------------------------------------------------------------------


SUBMIT = "GenerateImagesSDXL"
POLL = "ListTasksDetails"
ONE_TRY = picpik.RetryPolicy(max_attempts=1)
FEW_TRIES = picpik.RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.02)
KEYS: dict[str, Any] = {"public_key": "hostile-public", "private_key": "hostile-secret"}


def hostile_client(server: HostileServer, **kwargs: Any) -> picpik.AsyncClient:
    """A client on a hostile server, with quick retries and polls."""
    options: dict[str, Any] = {"base_url": server.url, "retry": FEW_TRIES, "poll": FAST_POLL}
    return picpik.AsyncClient(**KEYS, **{**options, **kwargs})


def finished(uid: str, *images: str, **fields: Any) -> Reply:
    """A ListTasksDetails answer: the task finished with these image URLs."""
    detail = {"TaskUID": uid, "Status": "Finished", "ImgList": list(images), **fields}
    return envelope(TaskDetailList=[detail])


def submit_then(detail: Callable[[str], Reply], uid: str = "task0001") -> Script:
    """A script: every submit answers `uid`, every poll answers `detail(uid)`."""

    def script(request: Received) -> Reply:
        if request.action == POLL:
            return detail(uid)
        return envelope(TaskUID=uid)

    return script


async def test_cancelled_fan_out_sends_no_submit_after_the_cancel() -> None:
    """A bare `async for` cancelled by a timeout: no submit arrives afterwards, polling stops."""
    emulator = Emulator(latency=0.05, seed=1)
    async with make_client(emulator) as client:
        stream = client.generate_many([f"p{i}" for i in range(500)], max_concurrency=20)
        with anyio.move_on_after(0.3):
            async for _ in stream:
                pass
        submits = emulator.counters.requests[SUBMIT]  # read before any await
        await anyio.sleep(0.3)
        assert emulator.counters.requests[SUBMIT] == submits
        assert 0 < submits < 500
        polls = emulator.counters.requests[POLL]
        await anyio.sleep(0.3)
        assert emulator.counters.requests[POLL] == polls
        assert client._waiter is not None
        assert client._waiter.pending == 0
        del stream  # still referenced until here: the cancel alone stopped the work


async def test_fan_out_in_async_with_is_tied_to_the_callers_scope() -> None:
    """The documented form: the caller's cancel scope cancels the prompts; nothing after it."""
    emulator = Emulator(latency=0.05, seed=2)
    async with make_client(emulator) as client:
        with anyio.move_on_after(0.3):
            async with client.generate_many([f"p{i}" for i in range(500)]) as results:
                async for _ in results:
                    await anyio.sleep(0.01)  # the cancel may land here, outside __anext__
        # Nothing outlives the block: every prompt has unwound before it ends.
        assert client._waiter is not None
        assert client._waiter.pending == 0
        submits = emulator.counters.requests[SUBMIT]
        await anyio.sleep(0.3)
        assert emulator.counters.requests[SUBMIT] == submits
        assert 0 < submits < 500
        assert client._waiter is not None
        assert client._waiter.pending == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_wait_for_timeout_sends_no_late_submit() -> None:
    """asyncio.wait_for around the loop: not one paid submit after its TimeoutError."""
    emulator = Emulator(latency=0.02, seed=3)
    async with make_client(emulator) as client:
        for _ in range(3):  # the late submit was a race: give it several chances
            stream = client.generate_many([f"p{i}" for i in range(2000)], max_concurrency=40)

            async def consume(stream: picpik.ResultStream[Any] = stream) -> None:
                async for _ in stream:
                    pass

            with pytest.raises(TimeoutError):
                await asyncio.wait_for(consume(), 0.2)
            submits = emulator.counters.requests[SUBMIT]
            await anyio.sleep(0.1)
            assert emulator.counters.requests[SUBMIT] == submits
            assert submits > 0


async def test_a_stream_left_while_still_referenced_stops_spending() -> None:
    """`break` (stream kept) or a cancel in the loop body: at most max_concurrency more submits."""
    emulator = Emulator(latency=0.05, seed=4)
    async with make_client(emulator) as client:
        kept = client.generate_many([f"p{i}" for i in range(300)], max_concurrency=10)
        async for _ in kept:
            break
        with anyio.move_on_after(0.3):
            cancelled = client.generate_many([f"q{i}" for i in range(300)], max_concurrency=10)
            async for _ in cancelled:
                await anyio.sleep(1)  # handling a result: the cancel lands here
        await anyio.sleep(0.3)
        settled = emulator.counters.requests[SUBMIT]
        await anyio.sleep(0.3)
        assert emulator.counters.requests[SUBMIT] == settled  # demand-driven: nothing more
        assert settled <= 2 * (10 + 1)
        assert len(kept.submitted) + len(cancelled.submitted) == settled
        await kept.aclose()
        await cancelled.aclose()


async def test_a_timed_out_next_in_async_with_keeps_the_stream() -> None:
    """In `async with`, one `__anext__` under a timeout is just a timeout: nothing is lost."""
    emulator = Emulator(latency=0.3, seed=1)
    async with (
        make_client(emulator) as client,
        client.generate_many([f"p{i}" for i in range(5)]) as results,
    ):
        with anyio.move_on_after(0.05):
            await results.__anext__()  # no result yet
        rest = [r async for r in results]
    assert len(rest) == 5
    assert len(results.submitted) == 5


async def test_a_stopped_stream_says_so_instead_of_ending_quietly() -> None:
    """A bare stream stopped by a cancel raises ClientClosedError when read again."""
    emulator = Emulator(latency=0.3, seed=1)
    async with make_client(emulator) as client:
        results = client.generate_many([f"p{i}" for i in range(5)])
        with anyio.move_on_after(0.05):
            await results.__anext__()
        with pytest.raises(picpik.ClientClosedError, match="submitted"):
            await results.__anext__()


async def test_a_stream_iterated_after_its_client_closed() -> None:
    """Made while open, iterated after the block: ClientClosedError, not a RuntimeError."""
    emulator = Emulator(latency=0.02, seed=1)
    async with make_client(emulator) as client:
        stream = client.generate_many(["a", "b"])
    with pytest.raises(picpik.ClientClosedError):
        async for _ in stream:
            pass
    assert emulator.counters.requests[SUBMIT] == 0


def test_a_blocking_fan_out_left_early_stops_spending() -> None:
    """The blocking Client's iterator, left with `break` but kept: no submits after it settles."""
    emulator = Emulator(latency=0.05, seed=1)
    options: dict[str, Any] = {
        "public_key": emulator.public_key,
        "private_key": emulator.private_key,
        "base_url": emulator.url,
        "transport": emulator.transport(),
        "poll": FAST_POLL,
    }
    with picpik.Client(**options) as client:
        results = client.generate_many([f"p{i}" for i in range(300)], max_concurrency=10)
        for _ in results:
            break
        time.sleep(0.3)
        settled = emulator.counters.requests[SUBMIT]
        time.sleep(0.3)
        assert emulator.counters.requests[SUBMIT] == settled <= 11


async def test_a_client_that_is_not_open_refuses_before_sending() -> None:
    """generate(), submit_and_wait(), action methods, wait() outside `async with`: nothing sent."""
    emulator = Emulator(latency=0.05)
    client = make_client(emulator)
    request = picpik.GenerateImagesSDXL(main_model=picpik.Model("PICPIK General"))
    calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("generate", lambda: client.generate("a cat")),
        ("submit_and_wait", lambda: client.submit_and_wait(request)),
        ("upscale", lambda: client.upscale(TINY_PNG, width=128, height=128)),
        ("describe", lambda: client.describe(TINY_PNG)),
        ("wait", lambda: client.wait("task0001")),
    ]
    for name, call in calls:
        with pytest.raises(picpik.ClientClosedError, match=rf"{name}\(\) needs the client open"):
            await call()
    with pytest.raises(picpik.ClientClosedError, match=r"generate_many\(\)"):
        client.generate_many(["a cat"])
    assert sum(emulator.counters.requests.values()) == 0
    await client.aclose()


async def test_a_closed_client_refuses_everything_with_client_closed_error() -> None:
    """After the block: each call names itself in a ClientClosedError, never a RuntimeError."""
    emulator = Emulator(latency=0.05)
    async with make_client(emulator) as client:
        result = await client.generate("a cat", width=64, height=64)
    for name, call in [
        ("list_models", client.list_models),
        ("get_credit_balance", client.get_credit_balance),
        ("submit", lambda: client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))),
        ("download", lambda: client.download(result, "out")),
        ("generate", lambda: client.generate("a dog")),
    ]:
        with pytest.raises(picpik.ClientClosedError, match=rf"{name}\(\)"):
            await call()
    with pytest.raises(picpik.ClientClosedError):
        await result.images[0].read()
    with pytest.raises(picpik.ClientClosedError):
        async with client:
            pass


@pytest.mark.parametrize(
    "prompts", ["cat", b"cat", bytearray(b"cat")], ids=["str", "bytes", "bytearray"]
)
async def test_a_string_is_not_a_list_of_prompts(prompts: Any) -> None:
    """generate_many("cat") is refused before anything is sent (it used to pay for c, a and t)."""
    emulator = Emulator(latency=0.05)
    async with make_client(emulator) as client:
        with pytest.raises(picpik.ValidationError, match="single"):
            client.generate_many(prompts)
    assert emulator.counters.requests[SUBMIT] == 0


async def test_a_non_iterable_is_not_a_list_of_prompts() -> None:
    """generate_many(None) or of a number: ValidationError, not a TypeError from inside."""
    emulator = Emulator(latency=0.05)
    async with make_client(emulator) as client:
        for prompts in (None, 7):
            with pytest.raises(picpik.ValidationError, match="iterable of prompts"):
                client.generate_many(prompts)  # type: ignore[call-overload]


@pytest.mark.parametrize("status", [500, 502, 504, 520, 599])
async def test_a_gateway_error_after_creation_is_an_unknown_outcome(status: int) -> None:
    """The task was made, the gateway said 5xx: one submit, SubmitOutcomeUnknownError, no resend."""

    def script(request: Received) -> Reply:
        return Reply(status=status, body=b"<html>gateway</html>")

    with HostileServer(script) as server:
        async with hostile_client(server) as client:
            with pytest.raises(picpik.SubmitOutcomeUnknownError) as caught:
                await client.generate("a cat")
    assert server.count(SUBMIT) == 1
    assert caught.value.request_uuid


async def test_503_and_refusals_are_retried_for_submits() -> None:
    """503, 429 and a busy RetCode prove nothing was made: retried, then one task."""
    answers = iter(
        [
            Reply(status=503, body=b"unavailable"),
            Reply(status=429, headers=(("Retry-After", "0"),), body=b"{}"),
            envelope(RetCode=5000, Message="busy"),
            Reply(status=500, body=b'{"RetCode": 5000, "Message": "busy"}'),
        ]
    )

    def script(request: Received) -> Reply:
        if request.action == POLL:
            return finished("task0001", f"{server.url}/a.png")
        return next(answers, envelope(TaskUID="task0001"))

    policy = picpik.RetryPolicy(max_attempts=6, backoff_initial=0.01, backoff_max=0.02)
    with HostileServer(script) as server:
        async with hostile_client(server, retry=policy) as client:
            handle = await client.submit(
                picpik.GenerateImagesSDXL(main_model=picpik.Model("PICPIK General"))
            )
    assert handle.task_uid == "task0001"
    assert server.count(SUBMIT) == 5


@pytest.mark.parametrize("follow", [False, True], ids=["own-client", "caller-client-follows"])
async def test_a_redirect_is_never_followed_nor_retried(follow: bool) -> None:
    """HTTP 307 to the API: a ProtocolError at once, one request, even if httpx would follow."""

    def script(request: Received) -> Reply:
        return Reply(status=307, headers=(("Location", f"{server.url}/elsewhere"),))

    with HostileServer(script) as server:
        http = httpx.AsyncClient(follow_redirects=True) if follow else None
        async with hostile_client(server, http_client=http) as client:
            with pytest.raises(picpik.ProtocolError, match="redirect"):
                await client.list_models()
            with pytest.raises(picpik.ProtocolError, match="redirect"):
                await client.generate("a cat")
        if http is not None:
            await http.aclose()
    assert [r.path for r in server.received] == ["/", "/"]


# --- 5: paths ----------------------------------------------------------------------------


ESCAPES = ["../escaped", "../../escaped", "/abs/escaped", "a/../../escaped", "..", "a\\b", ""]


@pytest.mark.parametrize("uid", ESCAPES)
async def test_a_submit_answer_with_a_path_for_a_taskuid_is_refused(uid: str) -> None:
    """A TaskUID that could climb out of --out is refused where the answer is read."""
    with HostileServer(submit_then(lambda u: finished(u, "http://x/a.png"), uid)) as server:
        async with hostile_client(server) as client:
            with pytest.raises(picpik.SubmitOutcomeUnknownError) as caught:
                await client.generate("a cat")
    assert isinstance(caught.value.__cause__, picpik.ProtocolError)
    assert server.count(SUBMIT) == 1  # not resent
    assert server.count(POLL) == 0


async def test_download_never_writes_outside_its_folder(tmp_path: Path) -> None:
    """A result carrying a path-like TaskUID (built by hand) is refused before any file."""
    emulator = Emulator(latency=0.05)
    async with make_client(emulator) as client:
        result = await client.generate("a cat", width=64, height=64)
        image = result.images[0]
        forged = attrs.evolve(
            result,
            images=(
                picpik.GeneratedImage(image.url, 0, "../escaped", downloader=image._downloader),
            ),
        )
        with pytest.raises(picpik.ProtocolError, match="cannot name a file"):
            await client.download(forged, tmp_path / "out")
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("uid", ["../escaped", "ABSOLUTE"])
def test_cli_generate_out_stays_inside_out(tmp_path: Path, fast_cli: None, uid: str) -> None:
    """`picpik generate --out A` against a server naming `../x` or `/abs/x`: nothing outside A."""
    if uid == "ABSOLUTE":
        uid = str(tmp_path / "absolute")

    def script(request: Received) -> Reply:
        if request.method == "GET":
            return Reply(body=TINY_PNG, headers=(("Content-Type", "image/png"),))
        return submit_then(lambda u: finished(u, f"{server.url}/img.png"), uid)(request)

    with HostileServer(script) as server:
        out = tmp_path / "A"
        result = CliRunner().invoke(
            cli_main,
            ["generate", "a cat", "--out", str(out), "--base-url", server.url,
             "--public-key", "p", "--private-key", "s"],
        )  # fmt: skip
    assert result.exit_code != 0
    assert "TaskUID" in result.output
    assert [p for p in tmp_path.rglob("*") if out not in (p, *p.parents)] == []
    assert not list(out.glob("*.png"))  # and no image inside it either


@given(st.text(max_size=40), st.integers(min_value=0, max_value=99))
def test_every_file_name_built_lies_inside_its_folder(uid: str, index: int) -> None:
    """Property: for any TaskUID text, the name is refused or lands directly in the folder."""
    folder = Path("/work/folder")
    try:
        path = child_path(folder, image_file_name(uid, index, ".png"))
    except picpik.ProtocolError:
        return
    assert path.parent == folder
    assert os.path.normpath(path) == str(path)


# --- 6, 7, 12: sizes, bombs, cancelled saves ---------------------------------------------

MIB = 1024**2
GIB = 1024**3
SINGLE_TRY = picpik.RetryPolicy(max_attempts=1)
#: gzip image and answer bombs for the in-process tests: twice the image limit, decoded.
BOMB = 128 * MIB
#: What the subprocess under a 512 MiB cap is sent: a stream past the cap, and bombs
#: that an unbounded inflate (its output buffer, then the joined bytes) takes past it.
BIG = 640 * MIB
BIG_BOMB = 320 * MIB


def sizes(*, stream: int, bomb: int, gap: float = 5.0) -> Script:
    """Answers by path: a 10 GiB declared length, an undeclared `stream`, gzip bombs.

    The declared body sends a piece every `gap` seconds: with 5 s, a client
    that reads any of it takes seconds; with 0, it fills memory at once.
    """

    def script(request: Received) -> Reply:
        if request.path == "/declared.png":
            length = (("Content-Length", str(10 * GIB)),)
            return Reply(headers=length, chunks=zeros(10 * GIB), gap=gap)
        if request.path == "/stream.png":
            return Reply(chunks=zeros(stream))
        if request.path == "/double":
            return Reply(headers=(("Content-Encoding", "gzip, gzip"),), body=double_gzip_bomb(bomb))
        return Reply(headers=(("Content-Encoding", "gzip"),), body=gzip_of_zeros(bomb))

    return script


async def too_large(call: Awaitable[object]) -> picpik.ResponseTooLargeError:
    """The ResponseTooLargeError that `call` raises."""
    with pytest.raises(picpik.ResponseTooLargeError) as caught:
        await call
    return caught.value


async def test_downloads_past_the_size_limit_are_refused(tmp_path: Path) -> None:
    """10 GiB declared, 100 MiB streamed, a gzip bomb: refused at 64 MiB decoded, nothing saved."""
    with HostileServer(sizes(stream=100 * MIB, bomb=BOMB)) as server:
        async with httpx.AsyncClient() as http:
            downloader = Downloader(http, SINGLE_TRY, 2)
            with anyio.fail_after(2):  # refused on its headers: its body would start after 5 s
                declared = await too_large(downloader.read(f"{server.url}/declared.png"))
            streamed = await too_large(downloader.read(f"{server.url}/stream.png"))
            saved = await too_large(downloader.save(f"{server.url}/stream.png", tmp_path / "a.png"))
            bomb = await too_large(downloader.save(f"{server.url}/bomb.png", tmp_path / "b.png"))
            inflated = await too_large(downloader.read(f"{server.url}/bomb.png"))
    assert f"declares {10 * GIB} bytes" in str(declared)
    assert f"is larger than {MAX_DOWNLOAD_BYTES} bytes (decoded)" in str(inflated)
    assert {e.limit for e in (declared, streamed, saved, bomb, inflated)} == {MAX_DOWNLOAD_BYTES}
    assert files_in(tmp_path) == []


async def test_answer_bombs_are_refused_while_decoding() -> None:
    """A `gzip, gzip` bomb and a gzip bomb as API answers stop at the 8 MiB cap, decoded."""
    with HostileServer(sizes(stream=0, bomb=BOMB)) as server:
        async with httpx.AsyncClient() as http:
            for path in ("/double", "/single"):
                async with http.stream("POST", server.url + path, content=b"{}") as response:
                    body = read_body(response, limit=MAX_RESPONSE_BYTES, what="ListModels")
                    error = await too_large(body)
                assert str(error) == "ListModels answer is larger than 8388608 bytes (decoded)"


@pytest.mark.slow
def test_size_limits_hold_under_a_memory_cap(tmp_path: Path) -> None:
    """Items 6 and 7 again, in a subprocess capped at 512 MiB: a regression dies of MemoryError.

    A plain function (the anyio plugin leaves it alone): it runs once.
    """
    code = """
        import os
        import anyio, httpx, picpik_async as picpik
        from picpik_async._images import Downloader
        from picpik_async._streams import read_body

        URL, TARGET = os.environ["HOSTILE_URL"], os.environ["HOSTILE_TARGET"]

        async def limit_of(call):
            try:
                await call
            except picpik.ResponseTooLargeError as error:
                return error.limit
            raise SystemExit("not refused")

        async def main():
            async with httpx.AsyncClient() as http:
                images = Downloader(http, picpik.RetryPolicy(max_attempts=1), 2)
                for path in ("/declared.png", "/stream.png", "/bomb.png"):
                    print(await limit_of(images.read(URL + path)))
                print(await limit_of(images.save(URL + "/stream.png", TARGET)))
                for path in ("/double", "/single"):
                    async with http.stream("POST", URL + path, content=b"{}") as response:
                        print(await limit_of(read_body(response, limit=2**23, what="ListModels")))

        anyio.run(main)
        """
    with HostileServer(sizes(stream=BIG, bomb=BIG_BOMB, gap=0)) as server:
        target = str(tmp_path / "x.png")
        printed = run_limited(code, memory=512 * MIB, HOSTILE_URL=server.url, HOSTILE_TARGET=target)
    assert printed.split() == [str(MAX_DOWNLOAD_BYTES)] * 4 + [str(MAX_RESPONSE_BYTES)] * 2
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("moment", ["reading", "writing"])
async def test_a_cancelled_save_leaves_no_part_and_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """A save cancelled mid-trickle, on the socket or in a write: no `.part`, no warning."""
    scope = anyio.CancelScope()
    write, writes = anyio.AsyncFile.write, [0]

    async def cancelling_write(self: anyio.AsyncFile[bytes], data: bytes) -> int:
        writes[0] += 1
        if writes[0] == 3:
            scope.cancel()  # lands in the write: the body's iterators are mid-way
        return await write(self, data)

    if moment == "writing":
        monkeypatch.setattr(anyio.AsyncFile, "write", cancelling_write)
    else:
        scope.deadline = anyio.current_time() + 0.3
    with (
        HostileServer(lambda r: Reply(chunks=zeros(64 * MIB, 16 * 1024), gap=0.01)) as server,
        warnings.catch_warnings(record=True) as seen,
    ):
        warnings.simplefilter("always")
        async with httpx.AsyncClient() as http:
            with scope:
                await Downloader(http, SINGLE_TRY, 1).save(f"{server.url}/x.png", tmp_path / "x")
        gc.collect()
    assert scope.cancelled_caught
    assert files_in(tmp_path) == []
    assert [str(w.message) for w in seen] == []


# --- 8-11, 13, 15: deadlines, isolation, errors, empty results ---------------------------


async def test_a_trickled_answer_ends_within_the_timeout() -> None:
    """An answer trickling a byte every 0.3 s: each attempt ends after `timeout`, then retries."""

    def script(request: Received) -> Reply:
        return Reply(chunks=(b"{" for _ in range(1000)), gap=0.3)

    with HostileServer(script) as server:
        policy = picpik.RetryPolicy(max_attempts=2, backoff_initial=0.01)
        async with hostile_client(server, timeout=0.5, retry=policy) as client:
            with anyio.fail_after(5):  # the old client waited for the whole trickle
                with pytest.raises(picpik.TransportError, match=r"within 0\.5 s"):
                    await client.list_models()
                with pytest.raises(picpik.SubmitOutcomeUnknownError, match=r"within 0\.5 s"):
                    await client.generate("a cat")
    assert server.count("ListModels") == 2  # a read is retried
    assert server.count(SUBMIT) == 1  # a submit is not


class SilentServer:
    """A TCP server on loopback that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        deadline = time.monotonic() + 30
        while not self.stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self.accepted.append(self.listener.accept()[0])

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for connection in self.accepted:
            connection.close()
        self.listener.close()


async def test_a_deadline_before_the_request_left_is_retried_even_for_a_submit() -> None:
    """A TLS handshake that never ends: the request never left, so the submit is retried."""
    with SilentServer() as server:
        host, port = server.listener.getsockname()[:2]
        policy = picpik.RetryPolicy(max_attempts=2, backoff_initial=0.01)
        async with picpik.AsyncClient(
            **KEYS, base_url=f"https://{host}:{port}", timeout=0.3, retry=policy
        ) as client:
            with anyio.fail_after(5):
                with pytest.raises(picpik.TransportError, match="never sent") as caught:
                    await client.generate("a cat")
    assert not isinstance(caught.value, picpik.SubmitOutcomeUnknownError)
    assert len(server.accepted) == 2  # tried twice: nothing could have been created


async def test_a_raising_on_update_harms_no_one(caplog: pytest.LogCaptureFixture) -> None:
    """on_update raises: logged with its traceback; both waiters finish; the block exits cleanly."""
    emulator = Emulator(latency=0.2)

    def explode(detail: picpik.TaskDetail) -> None:
        raise RuntimeError("callback bug")

    async with make_client(emulator) as client:
        first = await client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
        second = await client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
        results: list[picpik.GenerationResult] = []

        async def wait(handle: picpik.TaskHandle, hook: Any) -> None:
            results.append(await client.wait(handle, on_update=hook))

        async with anyio.create_task_group() as group:
            group.start_soon(wait, first, explode)
            group.start_soon(wait, second, None)
    assert len(results) == 2
    warned = [r for r in caplog.records if "on_update" in r.getMessage()]
    assert warned
    assert warned[0].levelname == "WARNING"
    assert warned[0].exc_info is not None


async def test_a_raising_on_retry_does_not_fail_the_call(caplog: pytest.LogCaptureFixture) -> None:
    """on_retry raises: the retry still happens and the call succeeds."""
    emulator = Emulator(
        latency=0.05, faults=Faults(busy=Trigger(schedule={1}, actions={"ListModels"}))
    )

    def explode(event: picpik.RetryEvent) -> None:
        raise RuntimeError("hook bug")

    async with make_client(emulator, on_retry=explode) as client:
        models = await client.list_models()
    assert models.main_models
    assert emulator.counters.requests["ListModels"] == 2
    assert any("on_retry" in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.parametrize("bad", ["", "../x", "a b", "x" * 129])
async def test_a_bad_taskuid_fails_only_its_own_wait(bad: str) -> None:
    """wait("") next to a valid task: ValidationError at once; the valid waiter is untouched."""
    emulator = Emulator(latency=0.2)
    async with make_client(emulator) as client:
        handle = await client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
        async with anyio.create_task_group() as group:
            group.start_soon(client.wait, handle)
            await anyio.lowlevel.checkpoint()
            with pytest.raises(picpik.ValidationError, match="TaskUID"):
                await client.wait(bad)
        assert client._waiter is not None
        assert client._waiter.pending == 0
    assert emulator.counters.requests[POLL] >= 1


async def test_a_refused_single_taskuid_settles_only_that_task() -> None:
    """The service refuses one TaskUID as a bad parameter: that waiter fails, the other finishes."""

    def script(request: Received) -> Reply:
        if request.action != POLL:
            return envelope(TaskUID="unused")
        asked = request.params["TaskUIDList"]
        if "refused" in asked:
            return envelope(RetCode=160, Message="invalid TaskUIDList")
        details = [
            {"TaskUID": u, "Status": "Finished", "ImgList": ["http://x/a.png"]} for u in asked
        ]
        return envelope(TaskDetailList=details)

    with HostileServer(script) as server:
        async with hostile_client(server) as client:
            outcomes: dict[str, object] = {}

            async def wait(uid: str) -> None:
                try:
                    outcomes[uid] = await client.wait(uid)
                except picpik.PicpikError as error:
                    outcomes[uid] = error

            with anyio.fail_after(5):
                async with anyio.create_task_group() as group:
                    group.start_soon(wait, "refused")
                    group.start_soon(wait, "fine")
    assert isinstance(outcomes["fine"], picpik.GenerationResult)
    assert isinstance(outcomes["refused"], picpik.APIError)
    alone = [r for r in server.received if r.params.get("TaskUIDList") == ["refused"]]
    assert len(alone) <= 1  # settled at its first refusal, not after the poller's patience


async def test_download_errors_are_picpik_errors_not_groups(tmp_path: Path) -> None:
    """An expired image: download() raises ImageExpiredError itself, and leaves no file."""
    clock = ManualClock()
    emulator = Emulator(latency=0.0, clock=clock, image_ttl=10)
    async with make_client(emulator) as client:
        result = await client.generate("a cat", width=64, height=64, batch_size=3)
        clock.advance(11)
        with pytest.raises(picpik.ImageExpiredError):
            await client.download(result, tmp_path)
    assert files_in(tmp_path) == []


async def test_a_garbled_read_answer_is_not_its_own_cause() -> None:
    """HTML for ListModels: a ProtocolError whose __cause__ is not itself."""
    with HostileServer(lambda r: Reply(body=b"<html>hello</html>")) as server:
        async with hostile_client(server) as client:
            with pytest.raises(picpik.ProtocolError) as caught:
                await client.list_models()
    assert caught.value.__cause__ is not caught.value


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HTTPS_PROXY", "ftp://user:hunter2@proxy:21"),
        ("HTTP_PROXY", "http://user:hunter2@proxy:notaport"),
        ("HTTPS_PROXY", "http://admin:hunter2#1@proxy.corp:3128"),
        ("HTTPS_PROXY", "http://admin:hunter2/x@proxy.corp:3128"),
        ("ALL_PROXY", "socks5://user:hunter2@127.0.0.1:1"),
        ("SSL_CERT_FILE", "/nonexistent/certs.pem"),
    ],
)
def test_a_broken_environment_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """Bad proxies or trust store: a PicpikError naming the way out, no password shown."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(picpik.ValidationError, match="trust_env=False") as caught:
        picpik.AsyncClient(**KEYS)
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is not None
    picpik.AsyncClient(**KEYS, trust_env=False)  # the way out


async def test_a_finished_task_without_images_is_an_error() -> None:
    """Finished with an empty ImgList: TaskFailedError for image actions, not a silent success."""
    with HostileServer(submit_then(lambda uid: finished(uid))) as server:
        async with hostile_client(server) as client:
            with pytest.raises(picpik.TaskFailedError, match="without any image"):
                await client.generate("a cat")
            with pytest.raises(picpik.TaskFailedError, match="without any text"):
                await client.describe(TINY_PNG)
            with pytest.raises(picpik.TaskFailedError, match="without any image URL or text"):
                await client.wait("task0001")


def test_cli_generate_with_no_images_exits_non_zero(tmp_path: Path, fast_cli: None) -> None:
    """`picpik generate` on a task finished with no image: says so and exits 1."""
    with HostileServer(submit_then(lambda uid: finished(uid))) as server:
        result = CliRunner().invoke(
            cli_main,
            ["generate", "a cat", "--out", str(tmp_path), "--base-url", server.url,
             "--public-key", "p", "--private-key", "s"],
        )  # fmt: skip
    assert result.exit_code == 1
    assert "without any image" in result.output


async def test_proxies_from_the_environment_are_honoured_unless_trust_env_is_false(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY applies even to loopback, as in httpx; trust_env=False goes direct."""
    with (
        HostileServer(lambda r: envelope(MainModels={})) as proxy,
        HostileServer(lambda r: envelope(MainModels={})) as api,
    ):
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with hostile_client(api) as client:
            await client.list_models()
        async with hostile_client(api, trust_env=False) as client:
            await client.list_models()
    assert len(proxy.received) == 1
    assert len(api.received) == 1


# --- 14: the blocking Client -------------------------------------------------------------


def test_blocking_client_images_save_and_read_without_await(
    anyio_backend: str, tmp_path: Path
) -> None:
    """A `Client` result's image saves a PNG and reads its bytes, blocking, warning-free.

    A plain function (the anyio plugin leaves it alone); `anyio_backend` only
    picks the Client's background loop, so it runs once per backend.
    """
    emulator = Emulator(latency=0.1, seed=14)
    options = {
        "public_key": emulator.public_key,
        "private_key": emulator.private_key,
        "base_url": emulator.url,
        "transport": emulator.transport(),
        "poll": picpik.PollSettings(
            poll_initial=0.05, poll_max=0.2, poll_grid=0.05, running_interval=0.1
        ),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with picpik.Client(backend=anyio_backend, **options) as client:
            image = client.generate("a red apple", width=64, height=64).images[0]
            path = image.save(tmp_path / "a.png")
            data = image.read()
        del image
        gc.collect()
    assert path == tmp_path / "a.png"
    assert data.startswith(b"\x89PNG")
    assert path.read_bytes() == data
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def test_a_deadline_spent_connecting_stops_the_request_before_it_leaves() -> None:
    """When connecting took the whole timeout, the request is stopped before its headers go."""
    progress = AttemptDeadline(0.01, traced=True)
    await progress.trace("connection.connect_tcp.started", {})
    assert progress.scope.deadline == math.inf  # httpx's connect timeout bounds this phase
    await anyio.sleep(0.02)
    with pytest.raises(TooLateToSend):
        await progress.trace("http11.send_request_headers.started", {})
    assert not progress.maybe_sent


# --- found in review: image downloads ------------------------------------------------------


def image_script(server: list[HostileServer], image: Callable[[Received], Reply]) -> Script:
    """Submits answer task0001, polls say finished with `<server>/img.png`, GETs get `image`."""

    def script(request: Received) -> Reply:
        if request.method == "GET":
            return image(request)
        if request.action == POLL:
            return finished("task0001", f"{server[0].url}/img.png")
        return envelope(TaskUID="task0001")

    return script


async def test_a_trickled_image_ends_within_the_download_timeout(tmp_path: Path) -> None:
    """An image trickled a byte every 0.3 s: read() and download() give up after the timeout."""
    ref: list[HostileServer] = []
    trickle = image_script(ref, lambda r: Reply(chunks=(b"x" for _ in range(1000)), gap=0.3))
    with HostileServer(trickle) as server:
        ref.append(server)
        policy = picpik.RetryPolicy(max_attempts=1)
        async with hostile_client(server, download_timeout=0.5, retry=policy) as client:
            result = await client.generate("a cat")
            with anyio.fail_after(5):
                with pytest.raises(picpik.TransportError, match=r"within 0\.5 s"):
                    await result.images[0].read()
                with pytest.raises(picpik.TransportError, match=r"within 0\.5 s"):
                    await client.download(result, tmp_path)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("url", ["http://[::1/x.png", "http://a/\x00.png", "ftp://a/x.png"])
async def test_a_malformed_image_url_is_a_picpik_error(tmp_path: Path, url: str) -> None:
    """read() and download() of a URL httpx cannot use: a ProtocolError, tried once."""

    def script(request: Received) -> Reply:
        return finished("task0001", url) if request.action == POLL else envelope(TaskUID="task0001")

    with HostileServer(script) as server:
        async with hostile_client(server) as client:
            result = await client.generate("a cat")
            with pytest.raises(picpik.ProtocolError):
                await result.images[0].read()
            with pytest.raises(picpik.ProtocolError):
                await client.download(result, tmp_path)


async def test_image_redirects_are_followed_a_few_times_never_to_http() -> None:
    """A CDN redirect is followed; a loop stops after 5; https to http or file: is refused."""
    ref: list[HostileServer] = []

    def image(request: Received) -> Reply:
        base = ref[0].url
        hops = {
            "/img.png": Reply(status=302, headers=(("Location", "/final.png"),)),
            "/final.png": Reply(body=TINY_PNG),
            "/loop.png": Reply(status=307, headers=(("Location", "/loop.png"),)),
            "/file.png": Reply(status=302, headers=(("Location", "file:///etc/passwd"),)),
            "/bare.png": Reply(status=302),
        }
        return hops.get(request.path, Reply(status=404, body=base.encode()))

    with HostileServer(image_script(ref, image)) as server:
        ref.append(server)
        async with hostile_client(server) as client:
            result = await client.generate("a cat")
            assert await result.images[0].read() == TINY_PNG
            downloader = result.images[0]._downloader
            with pytest.raises(picpik.ProtocolError, match="more than 5"):
                await downloader.read(f"{server.url}/loop.png")
            with pytest.raises(picpik.ProtocolError, match="not followed"):
                await downloader.read(f"{server.url}/file.png")
            with pytest.raises(picpik.ProtocolError, match="without a usable Location"):
                await downloader.read(f"{server.url}/bare.png")
        gets = [r.path for r in server.received if r.method == "GET"]
    assert gets.count("/loop.png") == 6  # the first request and 5 redirects: never retried
    assert gets.count("/file.png") == 1
    assert gets.count("/bare.png") == 1


def test_a_redirect_from_https_to_http_is_refused() -> None:
    """The rule itself: an https image never leads to plain http."""
    with pytest.raises(picpik.ProtocolError, match="not followed"):
        _next_hop(httpx.URL("https://cdn.example/a.png"), "http://cdn.example/a.png")
    assert (
        _next_hop(httpx.URL("https://cdn.example/a.png"), "/b.png") == "https://cdn.example/b.png"
    )


async def test_an_empty_image_is_not_a_success(tmp_path: Path) -> None:
    """HTTP 200 with no body: a ProtocolError, and no empty file saved."""
    ref: list[HostileServer] = []
    with HostileServer(image_script(ref, lambda r: Reply(body=b""))) as server:
        ref.append(server)
        async with hostile_client(server, retry=picpik.RetryPolicy(max_attempts=1)) as client:
            result = await client.generate("a cat")
            with pytest.raises(picpik.ProtocolError, match="empty"):
                await result.images[0].read()
            with pytest.raises(picpik.ProtocolError, match="empty"):
                await client.download(result, tmp_path)
    assert files_in(tmp_path) == []


async def test_an_async_callback_is_refused_not_silently_dropped() -> None:
    """`async def` hooks never ran (a 'never awaited' warning at best): refused before I/O."""

    async def hook(_: object) -> None:
        """Would never be awaited."""

    with pytest.raises(picpik.ValidationError, match="on_retry must be a plain function"):
        picpik.AsyncClient(**KEYS, on_retry=hook)
    emulator = Emulator(latency=0.05)
    async with make_client(emulator) as client:
        with pytest.raises(picpik.ValidationError, match="on_update must be a plain function"):
            await client.wait("task0001", on_update=hook)
    assert emulator.counters.requests[POLL] == 0


async def test_a_hook_returning_an_awaitable_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A plain hook that returns a coroutine: closed (no warning) and logged; the call succeeds."""

    async def later(event: picpik.RetryEvent) -> None:
        """Never awaited."""

    emulator = Emulator(
        latency=0.05, faults=Faults(busy=Trigger(schedule={1}, actions={"ListModels"}))
    )
    async with make_client(emulator, on_retry=lambda event: later(event)) as client:
        await client.list_models()
    assert any("returned an awaitable" in r.getMessage() for r in caplog.records)


async def test_a_proxy_that_refuses_to_connect_is_a_request_never_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS through a proxy that refuses CONNECT: nothing reached PICPIK, so it is retried."""
    with HostileServer(lambda r: Reply(status=403)) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        policy = picpik.RetryPolicy(max_attempts=2, backoff_initial=0.01)
        async with picpik.AsyncClient(
            **KEYS, base_url="https://api.picpik.invalid", retry=policy
        ) as client:
            with pytest.raises(picpik.TransportError, match="never sent") as caught:
                await client.generate("a cat")
    assert not isinstance(caught.value, picpik.SubmitOutcomeUnknownError)


def test_a_stream_outliving_its_event_loop_is_collected_quietly() -> None:
    """A stream never iterated, dropped after its event loop ended: no error from __del__."""
    emulator = Emulator(latency=0.05)

    async def make() -> picpik.ResultStream[picpik.GenerationResult]:
        async with make_client(emulator) as client:
            return client.generate_many(["a cat"])

    stream = anyio.run(make)
    del stream
    gc.collect()
    assert emulator.counters.requests[SUBMIT] == 0


async def test_an_on_update_returning_an_awaitable_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A plain on_update that returns a coroutine: closed (no warning), logged; the wait ends."""

    async def later(detail: picpik.TaskDetail) -> None:
        """Never awaited."""

    emulator = Emulator(latency=0.2)
    async with make_client(emulator) as client:
        handle = await client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
        await client.wait(handle, on_update=lambda detail: later(detail))
    assert any("returned an awaitable" in r.getMessage() for r in caplog.records)
