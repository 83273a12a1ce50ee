"""The blocking `Client`, used from plain synchronous test functions (no event loop).

Each call goes through an anyio blocking portal to the `AsyncClient` method of
the same name (the generated twins of `_sync_methods.py`), against the
in-process emulator.
"""

from __future__ import annotations

import doctest
import inspect
import io
import pydoc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, assert_type

import anyio.to_thread
import attrs
import pytest
from PIL import Image

import picpik_async as picpik
from picpik_async.testing import Emulator, Faults

FAST_RETRY = picpik.RetryPolicy(max_attempts=5, backoff_initial=0.005, backoff_max=0.02)
FAST_POLL = picpik.PollSettings(
    poll_initial=0.05, poll_max=0.2, poll_grid=0.05, running_interval=0.1, running_grace=0.05
)


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
    """generate() blocks until the images exist; download() saves either kind of result."""
    result = client.generate("a red apple", width=96, height=64, seed=42, batch_size=2)
    assert_type(result, picpik.BlockingResult)
    assert isinstance(result, picpik.BlockingResult)
    assert result.seed == 42
    assert len(result.images) == 2
    names = [f"{result.task_uid}-0.png", f"{result.task_uid}-1.png"]
    for given in (result, result.result):
        paths = client.download(given, tmp_path / type(given).__name__)
        assert [p.name for p in paths] == names
        assert all(size_of(p.read_bytes()) == (96, 64) for p in paths)


def test_images_read_and_save_blocking(client: picpik.Client, tmp_path: Path) -> None:
    """A result's BlockingImage reads and saves without await (issue 11, item 14)."""
    image = client.generate("a plum", width=96, height=64).images[0]
    assert_type(image, picpik.BlockingImage)
    data = image.read()
    assert_type(data, bytes)
    path = image.save(tmp_path / "deep" / "plum.png")
    assert_type(path, Path)
    assert path == tmp_path / "deep" / "plum.png"
    assert path.read_bytes() == data
    assert size_of(data) == (96, 64)


def test_read_and_save_image(client: picpik.Client, tmp_path: Path) -> None:
    """read_image() and save_image() take a BlockingImage or an async GeneratedImage."""
    result = client.generate("a pear", width=64, height=64)
    for image in (result.images[0], result.result.images[0]):
        data = client.read_image(image)
        assert data.startswith(b"\x89PNG")
        path = client.save_image(image, tmp_path / type(image).__name__ / "pear.png")
        assert path.read_bytes() == data


def test_blocking_result_mirrors_generation_result(client: picpik.Client) -> None:
    """BlockingResult has every field of GenerationResult, equal values, and a tidy repr."""
    result = client.generate("a fig", width=64, height=64, batch_size=2)
    wrapped = result.result
    assert isinstance(wrapped, picpik.GenerationResult)
    twin_fields = {f.name for f in attrs.fields(picpik.BlockingResult)}
    for name in (f.name for f in attrs.fields(picpik.GenerationResult)):
        assert name in twin_fields
        if name != "images":
            assert getattr(result, name) == getattr(wrapped, name)
    assert [(i.url, i.index, i.task_uid) for i in result.images] == [
        (i.url, i.index, i.task_uid) for i in wrapped.images
    ]
    assert result.prompt == "a fig"
    assert "BlockingImage(url=" in repr(result)
    assert "_run" not in repr(result)
    assert "run=" not in repr(result)
    assert "detail=" not in repr(result)


def test_submit_wait_and_reads(client: picpik.Client) -> None:
    """submit(), wait(), call() and the read actions all block and return typed answers."""
    before = client.get_credit_balance()
    handle = client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m"), width=64))
    assert handle.task_uid in client.list_running_tasks()
    seen: list[str] = []
    result = client.wait(handle, timeout=10, on_update=lambda d: seen.append(d.status))
    assert isinstance(result, picpik.BlockingResult)
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
    assert all(isinstance(r, picpik.BlockingResult) for r in results)
    assert sorted(str(r.prompt) for r in results if isinstance(r, picpik.BlockingResult)) == prompts
    first = results[0]
    assert isinstance(first, picpik.BlockingResult)
    assert first.images[0].read().startswith(b"\x89PNG")
    assert emulator.counters.tasks_created == 5


def test_generate_many_stops_when_left_early(client: picpik.Client) -> None:
    """Breaking out of the loop stops the rest; the client stays usable."""
    for result in client.generate_many(["a", "b", "c", "d"], max_concurrency=1, width=64):
        assert isinstance(result, picpik.BlockingResult)
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
    """The action methods block too, and their results' images read without await."""
    photo = png(120, 80)
    big = client.upscale(photo, width=240, height=160)
    assert size_of(big.images[0].read()) == (240, 160)
    cut = client.remove_background(photo, only_mask=True)
    assert size_of(cut.images[0].read()) == (120, 80)
    batches = client.remove_backgrounds([photo, png(30, 40)])
    assert_type(batches, list[picpik.BlockingResult])
    [batch] = batches
    assert isinstance(batch, picpik.BlockingResult)
    assert [size_of(i.read()) for i in batch.images] == [(120, 80), (30, 40)]
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
        assert isinstance(result, picpik.BlockingResult)
        assert len(result.images) == 1
        assert result.images[0].read().startswith(b"\x89PNG")
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


def test_results_after_close_raise(emulator: Emulator, tmp_path: Path) -> None:
    """A BlockingImage of a closed Client raises ClientClosedError at once; nothing is written."""
    with picpik.Client(**options_for(emulator)) as client:
        result = client.generate("late", width=64, height=64)
    image = result.images[0]
    with pytest.raises(picpik.ClientClosedError):
        image.read()
    with pytest.raises(picpik.ClientClosedError):
        image.save(tmp_path / "late.png")
    with pytest.raises(picpik.ClientClosedError):
        client.read_image(image)
    with pytest.raises(picpik.ClientClosedError):
        client.save_image(result.result.images[0], tmp_path / "late.png")
    for given in (result, result.result):
        with pytest.raises(picpik.ClientClosedError):
            client.download(given, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_images_read_through_the_client_that_made_them(emulator: Emulator) -> None:
    """A BlockingImage reads through the Client that made it, whichever Client is asked."""
    with picpik.Client(**options_for(emulator)) as maker:
        image = maker.generate("mine", width=64, height=64).images[0]
        with picpik.Client(backend="trio", **options_for(emulator)) as other:
            assert other.read_image(image) == image.read()
    with pytest.raises(picpik.ClientClosedError):
        image.read()


def test_trio_backend(emulator: Emulator) -> None:
    """The background event loop may be trio."""
    with picpik.Client(backend="trio", **options_for(emulator)) as client:
        result = client.generate("on trio", width=64, height=64)
        assert result.images[0].read().startswith(b"\x89PNG")
        assert client.read_image(result.result.images[0]).startswith(b"\x89PNG")


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
    """Each generated method keeps its name and summary and says it is the blocking twin."""
    assert picpik.Client.generate.__name__ == "generate"
    doc = picpik.Client.upscale.__doc__ or ""
    assert doc.startswith("Resize an image")
    assert "Blocking twin of `AsyncClient.upscale()`" in doc
    assert "Example" in (picpik.Client.__doc__ or "")


def test_signatures_are_visible() -> None:
    """inspect.signature() and help() show generate()'s parameters, not `*args, **kwargs`."""
    signature = inspect.signature(picpik.Client.generate)
    assert list(signature.parameters)[:5] == ["self", "prompt", "negative_prompt", "model", "width"]
    width = signature.parameters["width"]
    assert width.kind is inspect.Parameter.KEYWORD_ONLY
    assert width.default == 1024
    assert width.annotation == "int"
    assert signature.return_annotation == "BlockingResult"
    text = pydoc.plain(pydoc.render_doc(picpik.Client.generate))
    assert "prompt: 'str'" in text
    assert "width: 'int' = 1024" in text
    assert "P.args" not in text
    assert "Blocking twin of `AsyncClient.generate()`" in text


def test_list_tasks(client: picpik.Client) -> None:
    """list_tasks() is public on both clients: one ListTasksDetails request, blocking."""
    handle = client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m"), width=64))
    answer = client.list_tasks(picpik.ListTasksDetails([handle.task_uid]))
    assert [d.task_uid for d in answer.task_detail_list] == [handle.task_uid]


def test_generate_many_items_are_typed(client: picpik.Client) -> None:
    """By default the items are BlockingResults (mypy checks this file); errors only if asked."""
    plain = client.generate_many(["a"], width=64, height=64)
    assert_type(plain, Iterator[picpik.BlockingResult])
    assert [len(result.images) for result in plain] == [1]
    mixed = client.generate_many(["b"], return_exceptions=True, width=64, height=64)
    assert_type(mixed, Iterator[picpik.BlockingResult | picpik.PicpikError])
    assert all(isinstance(item, picpik.BlockingResult) for item in mixed)


def async_methods_returning_results() -> list[str]:
    """The public AsyncClient methods whose answer holds a GenerationResult."""
    return [
        name
        for name, method in inspect.getmembers(picpik.AsyncClient, inspect.isfunction)
        if not name.startswith("_")
        and any(
            kind in str(inspect.signature(method).return_annotation)
            for kind in ("GenerationResult", "ResultStream")
        )
    ]


def test_every_result_method_has_a_blocking_twin() -> None:
    """Every AsyncClient method returning results is a Client method returning BlockingResult."""
    names = async_methods_returning_results()
    assert {"generate", "wait", "remove_backgrounds", "generate_many", "swap_face"} <= set(names)
    assert "describe" not in names
    for name in names:
        assert "BlockingResult" in (getattr(picpik.Client, name).__doc__ or ""), name


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

    # Not doctest.testmod(_sync): the exported classes say they come from `picpik_async`.
    runner = doctest.DocTestRunner()
    tests = doctest.DocTestFinder(recurse=False).find(_sync, globs=dict(vars(_sync)))
    for owner in (_sync.Client, _sync.BlockingImage, _sync.BlockingResult):
        tests += doctest.DocTestFinder().find(owner, module=False, globs=dict(vars(_sync)))
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
