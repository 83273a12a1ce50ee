"""The blocking `Client`, used from plain synchronous test functions (no event loop).

Each call goes through an anyio blocking portal to the `AsyncClient` method of
the same name, against the in-process emulator.
"""

from __future__ import annotations

import doctest
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from PIL import Image

import picpik_async as picpik
from picpik_async.testing import Emulator, Faults

FAST_RETRY = picpik.RetryPolicy(max_attempts=5, backoff_initial=0.005, backoff_max=0.02)
FAST_POLL = picpik.PollSettings(poll_initial=0.05, poll_max=0.2, poll_grid=0.05)


def png(width: int, height: int) -> bytes:
    """A real PNG of the given size."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(out, "PNG")
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    """The (width, height) of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as picture:
        width, height = picture.size
    return width, height


def options_for(emulator: Emulator, **kwargs: Any) -> dict[str, Any]:
    """Client options that reach an emulator in-process, with fast retries and polls."""
    return {
        "public_key": emulator.public_key,
        "private_key": emulator.private_key,
        "base_url": emulator.url,
        "transport": emulator.transport(),
        "retry": FAST_RETRY,
        "poll": FAST_POLL,
        **kwargs,
    }


@pytest.fixture
def emulator() -> Emulator:
    """A quick emulator: tasks take 0.1 s."""
    return Emulator(latency=0.1, seed=2)


@pytest.fixture
def client(emulator: Emulator) -> Iterator[picpik.Client]:
    """An open blocking client on the emulator, closed afterwards."""
    with picpik.Client(**options_for(emulator)) as opened:
        yield opened


def test_generate_and_download(client: picpik.Client, tmp_path: Path) -> None:
    """generate() blocks until the images exist; download() saves them."""
    result = client.generate("a red apple", width=96, height=64, seed=42, batch_size=2)
    assert result.seed == 42
    assert len(result.images) == 2
    paths = client.download(result, tmp_path / "out")
    assert [p.name for p in paths] == [f"{result.task_uid}-0.png", f"{result.task_uid}-1.png"]
    assert all(size_of(p.read_bytes()) == (96, 64) for p in paths)


def test_read_and_save_image(client: picpik.Client, tmp_path: Path) -> None:
    """read_image() and save_image() are the blocking GeneratedImage.read()/save()."""
    result = client.generate("a pear", width=64, height=64)
    data = client.read_image(result.images[0])
    assert data.startswith(b"\x89PNG")
    path = client.save_image(result.images[0], tmp_path / "deep" / "pear.png")
    assert path.read_bytes() == data


def test_submit_wait_and_reads(client: picpik.Client) -> None:
    """submit(), wait(), call() and the read actions all block and return typed answers."""
    before = client.get_credit_balance()
    handle = client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m"), width=64))
    assert handle.task_uid in client.list_running_tasks()
    seen: list[str] = []
    result = client.wait(handle, timeout=10, on_update=lambda d: seen.append(d.status))
    assert result.task_uid == handle.task_uid
    assert [d.task_uid for d in client.list_tasks_details([handle.task_uid])] == [handle.task_uid]
    assert client.get_credit_balance().used_credits > before.used_credits
    assert "PICPIK General" in client.list_models().main_models
    assert client.call(picpik.GetCreditBalance()).total_credits == before.total_credits
    assert "canny" in client.list_control_nets().pre_processors


def test_generate_many_is_a_plain_iterator(client: picpik.Client, emulator: Emulator) -> None:
    """generate_many() yields results in completion order, without async for."""
    prompts = [f"prompt {i}" for i in range(5)]
    results = list(client.generate_many(prompts, max_concurrency=3, width=64, height=64))
    assert (
        sorted(str(r.prompt) for r in results if isinstance(r, picpik.GenerationResult)) == prompts
    )
    assert emulator.counters.tasks_created == 5


def test_generate_many_stops_when_left_early(client: picpik.Client) -> None:
    """Breaking out of the loop stops the rest; the client stays usable."""
    for result in client.generate_many(["a", "b", "c", "d"], max_concurrency=1, width=64):
        assert isinstance(result, picpik.GenerationResult)
        break
    assert client.get_credit_balance().total_credits > 0


def test_generate_many_errors(emulator: Emulator) -> None:
    """Failures are raised, or yielded with return_exceptions; bad options fail at once."""
    emulator.faults = Faults(task_failure=1.0)
    with picpik.Client(**options_for(emulator)) as client:
        with pytest.raises(picpik.TaskFailedError):
            list(client.generate_many(["x", "y"], width=64))
        outcomes = list(client.generate_many(["x", "y"], return_exceptions=True, width=64))
        assert all(isinstance(o, picpik.TaskFailedError) for o in outcomes)
        with pytest.raises(picpik.ValidationError, match="width"):
            client.generate_many(["x"], width=10)


def test_new_actions(client: picpik.Client) -> None:
    """The action methods block too: upscale, remove_background(s), describe, ..."""
    photo = png(120, 80)
    big = client.upscale(photo, width=240, height=160)
    assert size_of(client.read_image(big.images[0])) == (240, 160)
    cut = client.remove_background(photo, only_mask=True)
    assert size_of(client.read_image(cut.images[0])) == (120, 80)
    [batch] = client.remove_backgrounds([photo, png(30, 40)])
    assert [size_of(client.read_image(i)) for i in batch.images] == [(120, 80), (30, 40)]
    assert client.describe(photo, language="de") == [
        "[de] placeholder description of image 1 (120x80)"
    ]
    for result in (
        client.generate_sd15("a cat", width=64, height=64),
        client.extract_contents(photo, [(1, 1)]),
        client.remove_contents(photo, photo),
        client.inpaint(photo, photo, "a dog"),
        client.apply_style(photo, photo),
        client.restore_faces(photo),
        client.swap_face(photo, photo),
        client.submit_and_wait(picpik.RestoreFaces(raw_image="AAAA")),
    ):
        assert len(result.images) == 1
    handles = client.submit_tasks(picpik.RemoveBackgroundsInBatch(raw_images=["AAAA"]))
    assert len(handles) == 1


def test_errors_propagate_unchanged(client: picpik.Client, emulator: Emulator) -> None:
    """Library errors reach the caller as they are; nothing is sent for bad input."""
    with pytest.raises(picpik.ValidationError, match=r"64\.\.2560"):
        client.generate("x", width=10)
    handle = client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
    with pytest.raises(picpik.TaskTimeoutError):
        client.wait(handle, timeout=0.01)
    assert emulator.counters.requests["GenerateImagesSDXL"] == 1


def portal_threads() -> set[threading.Thread]:
    """The live threads running a blocking portal's event loop."""
    return {t for t in threading.enumerate() if "-portal-" in t.name}


def test_close_is_idempotent_and_final(emulator: Emulator) -> None:
    """close() stops the background thread; later calls raise ClientClosedError."""
    before = portal_threads()
    client = picpik.Client(**options_for(emulator))
    [thread] = portal_threads() - before
    assert "Client(public_key=" in repr(client)
    assert client.public_key == emulator.public_key
    assert client.base_url == emulator.url
    client.get_credit_balance()
    client.close()
    client.close()
    assert not thread.is_alive()
    with pytest.raises(picpik.ClientClosedError):
        client.get_credit_balance()


def test_context_manager_closes_on_error(emulator: Emulator) -> None:
    """Leaving a `with` block by an exception closes the client too."""
    before = portal_threads()
    with pytest.raises(KeyError), picpik.Client(**options_for(emulator)) as client:
        raise KeyError("mine")
    assert portal_threads() <= before
    with pytest.raises(picpik.ClientClosedError):
        client.list_models()


def test_trio_backend(emulator: Emulator) -> None:
    """The background event loop may be trio."""
    with picpik.Client(backend="trio", **options_for(emulator)) as client:
        result = client.generate("on trio", width=64, height=64)
        assert client.read_image(result.images[0]).startswith(b"\x89PNG")


def test_bad_options_fail_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing keys or a bad backend fail when the client is made, leaving no thread."""
    monkeypatch.delenv("PICPIK_PUBLIC_KEY", raising=False)
    before = portal_threads()
    with pytest.raises(picpik.ValidationError, match="PICPIK_PUBLIC_KEY"):
        picpik.Client()
    with pytest.raises(LookupError):
        picpik.Client(public_key="a", private_key="b", backend="no-such-backend")
    assert portal_threads() <= before


def test_methods_say_they_block() -> None:
    """Each forwarded method keeps its name and says it is the blocking version."""
    assert picpik.Client.generate.__name__ == "generate"
    assert (picpik.Client.upscale.__doc__ or "").startswith("Blocking `AsyncClient.upscale()`")
    assert "Example" in (picpik.Client.__doc__ or "")


@pytest.mark.anyio
async def test_refused_inside_an_event_loop(emulator: Emulator) -> None:
    """Made or used inside a running event loop, it raises a clear RuntimeError."""
    with pytest.raises(RuntimeError, match="event loop"):
        picpik.Client(**options_for(emulator))


@pytest.mark.anyio
async def test_refused_when_used_from_an_event_loop(emulator: Emulator) -> None:
    """A client made outside, then called from async code, refuses to block the loop."""
    client = await _make_outside_the_loop(emulator)
    try:
        with pytest.raises(RuntimeError, match="AsyncClient"):
            client.get_credit_balance()
    finally:
        await _close_outside_the_loop(client)


async def _make_outside_the_loop(emulator: Emulator) -> picpik.Client:
    """Make a Client in a worker thread (no event loop there)."""
    return await anyio.to_thread.run_sync(lambda: picpik.Client(**options_for(emulator)))


async def _close_outside_the_loop(client: picpik.Client) -> None:
    """Close a Client from a worker thread."""
    await anyio.to_thread.run_sync(client.close)


def test_doctests() -> None:
    """The examples in the module's docstrings run (the Client example only defines main)."""
    from picpik_async import _sync

    result = doctest.testmod(_sync)
    assert result.attempted > 0
    assert result.failed == 0
