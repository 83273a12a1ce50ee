"""`Client`: the blocking facade over `AsyncClient`, for scripts and notebooks.

I/O: it owns an event loop in a background thread (an anyio blocking portal,
`anyio.from_thread.start_blocking_portal`) and an `AsyncClient` opened inside
it. Its methods are the blocking twins of `AsyncClient`'s, with the same
parameters: they are generated into `_sync_methods.py` by `_codegen.py` (run
`python -m picpik_async._codegen` after changing an async method; CI checks the
file is fresh) and only run the async method through the portal and convert
its answer; no request logic lives here. Written by hand here: the lifetime,
`download()` (either kind of result), `read_image()` and `save_image()`.
Results come back as `BlockingResult`, whose `BlockingImage`s read and save
through the same portal (issue 11, item 14: async images in a blocking API did
nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, overload

from anyio.from_thread import BlockingPortal, start_blocking_portal
from attrs import field, frozen

from ._client import AsyncClient
from ._errors import ClientClosedError, PicpikError
from ._models import TaskDetail
from ._results import GeneratedImage, GenerationResult
from ._sync_methods import _BlockingMethods

__all__ = ["BlockingImage", "BlockingResult", "Client"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class _Runner(Protocol):
    """Runs an async job on a `Client`'s event loop and blocks for its result (`Client._run`)."""

    def __call__(self, job: Callable[[], Awaitable[T]], /) -> T: ...


class ResultItems(Protocol[T_co]):
    """What `Client._iterate` needs of a `ResultStream`: its items, and closing it early."""

    def __anext__(self) -> Awaitable[T_co]: ...
    def aclose(self) -> Awaitable[None]: ...


# --- what the Client returns ------------------------------------------------------------


@frozen
class BlockingImage:
    """One result image of a `Client`: `read()` and `save()` block, no `await`.

    Its URL is valid for 24 hours: save it soon. It reads through the `Client`
    that made it; once that client is closed, both raise `ClientClosedError`.

    Example:
        >>> # result = client.generate("a red apple")
        >>> # path = result.images[0].save("apple.png")
    """

    url: str
    index: int
    task_uid: str
    _image: GeneratedImage = field(repr=False, eq=False, alias="image")
    _run: _Runner = field(repr=False, eq=False, alias="run")

    @classmethod
    def wrap(cls, image: GeneratedImage, run: _Runner) -> BlockingImage:
        """The blocking twin of an async image, running on `run`."""
        return cls(image.url, image.index, image.task_uid, image=image, run=run)

    def read(self) -> bytes:
        """Download the image and return its bytes."""
        return self._run(self._image.read)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Stream the image to `path` (parent folders are created) and return the path."""
        return self._run(functools.partial(self._image.save, path))


@frozen(kw_only=True)
class BlockingResult:
    """A finished task as a `Client` returns it: a `GenerationResult` with blocking images.

    Attributes:
        task_uid, request_uuid, seed, credits, texts, detail, prompt: as in
            `GenerationResult`.
        images: the result images, as `BlockingImage`s, in the service's order.
        result: the async `GenerationResult` this wraps.
    """

    task_uid: str
    request_uuid: str | None
    seed: int | None
    credits: int | None
    images: tuple[BlockingImage, ...]
    texts: tuple[str, ...] = ()
    detail: TaskDetail = field(repr=False)
    prompt: str | None = None
    result: GenerationResult = field(repr=False, eq=False)
    _run: _Runner = field(repr=False, eq=False, alias="run")

    @classmethod
    def wrap(cls, result: GenerationResult, run: _Runner) -> BlockingResult:
        """The blocking twin of an async result, its images running on `run`."""
        return cls(
            task_uid=result.task_uid,
            request_uuid=result.request_uuid,
            seed=result.seed,
            credits=result.credits,
            images=tuple(BlockingImage.wrap(image, run) for image in result.images),
            texts=result.texts,
            detail=result.detail,
            prompt=result.prompt,
            result=result,
            run=run,
        )


# --- forwarding -------------------------------------------------------------------------


def _running_event_loop() -> str | None:
    """The name of the event loop running in this thread, if any (asyncio or trio)."""
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop()
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None:
        with contextlib.suppress(RuntimeError):
            trio.lowlevel.current_trio_token()
            return "trio"
    return None


def _refuse_event_loop() -> None:
    loop = _running_event_loop()
    if loop is not None:
        raise RuntimeError(
            f"picpik_async.Client blocks, so it cannot be used inside a running {loop} event "
            "loop (it would freeze it); use `async with picpik_async.AsyncClient(...)` there"
        )


class Client(_BlockingMethods):
    """A blocking PICPIK client, for scripts and notebooks; not for async code.

    It takes the keyword arguments of `AsyncClient` (keys, `base_url`, `retry`,
    `poll`, `transport`, ...) plus `backend` (``"asyncio"`` or ``"trio"``, the
    event loop run in a background thread) and has the same methods, without
    `await`. Close it with `close()` or use it in a `with` block. Callbacks
    (`on_retry`, `on_update`) run in the background thread. Inside a running
    event loop it raises `RuntimeError`: use `AsyncClient` there.

    The methods that return a `GenerationResult` in `AsyncClient` return a
    `BlockingResult` here: the same fields, and `BlockingImage`s whose `read()`
    and `save()` block too (`.result` is the async result it wraps). They work
    while the client is open, and raise `ClientClosedError` after `close()`.

    Example:
        >>> import picpik_async as picpik
        >>> def main() -> None:
        ...     with picpik.Client() as client:  # keys from PICPIK_PUBLIC_KEY / PICPIK_PRIVATE_KEY
        ...         result = client.generate("a red apple", seed=42)
        ...         client.download(result, "out/")
        ...         big = client.upscale("out/photo.png", width=2048, height=2048)
        ...         big.images[0].save("out/big.png")
    """

    def __init__(self, *, backend: str = "asyncio", **options: Any) -> None:
        _refuse_event_loop()
        self._async = AsyncClient(**options)
        self._closed = False
        self._stack = contextlib.ExitStack()
        try:
            self._portal: BlockingPortal = self._stack.enter_context(start_blocking_portal(backend))
            self._stack.enter_context(self._portal.wrap_async_context_manager(self._async))
        except BaseException:
            self._stack.close()
            raise

    def __repr__(self) -> str:
        return f"Client(public_key={self._async.public_key!r}, base_url={self._async.base_url!r})"

    @property
    def public_key(self) -> str:
        """The account's public key."""
        return self._async.public_key

    @property
    def base_url(self) -> str:
        """Where requests go."""
        return self._async.base_url

    # --- lifetime -------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and stop its background event loop. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stack.close()

    def _run(self, job: Callable[[], Awaitable[T]], /) -> T:
        """Run the async `job` on the background event loop and wait for its result."""
        self._check_open()
        return self._portal.call(job)

    def _run_sync(self, job: Callable[[], T], /) -> T:
        """Call the plain `job` in the background event loop's thread and wait for its result."""
        self._check_open()
        return self._portal.call(job)

    def _check_open(self) -> None:
        _refuse_event_loop()
        if self._closed:
            raise ClientClosedError("this Client is closed; create a new one")

    # --- what the generated methods (_sync_methods.py) call -----------------------------

    def _wrap(self, result: GenerationResult, /) -> BlockingResult:
        return BlockingResult.wrap(result, self._run)

    def _wrap_all(self, results: list[GenerationResult], /) -> list[BlockingResult]:
        return [BlockingResult.wrap(result, self._run) for result in results]

    @overload
    def _iterate(self, stream: ResultItems[GenerationResult], /) -> Iterator[BlockingResult]: ...
    @overload
    def _iterate(
        self, stream: ResultItems[GenerationResult | PicpikError], /
    ) -> Iterator[BlockingResult | PicpikError]: ...
    def _iterate(
        self, stream: ResultItems[GenerationResult | PicpikError], /
    ) -> Iterator[BlockingResult | PicpikError]:
        """A `generate_many()` stream as a plain iterator; leaving it early closes the stream."""
        try:
            while True:
                try:
                    item = self._run(stream.__anext__)
                except StopAsyncIteration:
                    return
                if isinstance(item, GenerationResult):
                    yield BlockingResult.wrap(item, self._run)
                else:
                    yield item
        finally:
            if not self._closed:
                self._run(stream.aclose)

    # --- images: of either kind; a BlockingImage reads through the Client that made it ---

    def download(
        self,
        result: BlockingResult | GenerationResult,
        directory: str | os.PathLike[str],
        *,
        name: str | None = None,
    ) -> list[Path]:
        """Save every image of a result into `directory` as `<TaskUID>-<index>.<ext>`,
        or after the `name` template (see `AsyncClient.download()`).

        Blocking `AsyncClient.download()`; `result` may be a `BlockingResult`
        or an async `GenerationResult`.

        Example:
            >>> # paths = client.download(result, "out/", name="{prompt}-{seed}")
        """
        if isinstance(result, BlockingResult):
            save = functools.partial(self._async.download, result.result, directory, name=name)
            return result._run(save)
        return self._run(functools.partial(self._async.download, result, directory, name=name))

    def read_image(self, image: BlockingImage | GeneratedImage) -> bytes:
        """Download a result image and return its bytes (`BlockingImage.read()`).

        Example:
            >>> # png = client.read_image(result.images[0])
        """
        if isinstance(image, BlockingImage):
            return image.read()
        return self._run(image.read)

    def save_image(
        self, image: BlockingImage | GeneratedImage, path: str | os.PathLike[str]
    ) -> Path:
        """Save a result image to `path` and return the path (`BlockingImage.save()`).

        Example:
            >>> # client.save_image(result.images[0], "apple.png")
        """
        if isinstance(image, BlockingImage):
            return image.save(path)
        return self._run(functools.partial(image.save, path))
