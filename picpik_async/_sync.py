"""`Client`: the blocking facade over `AsyncClient`, for scripts and notebooks.

I/O: it owns an event loop in a background thread (an anyio blocking portal,
`anyio.from_thread.start_blocking_portal`) and an `AsyncClient` opened inside
it. Every method forwards to the `AsyncClient` method of the same name through
the portal and blocks until it returns; no request logic lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, overload

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._client import AsyncClient
from ._errors import ClientClosedError, PicpikError
from ._results import GeneratedImage, GenerationResult

__all__ = ["Client"]

P = ParamSpec("P")
T = TypeVar("T")


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


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Awaitable[T]],
) -> Callable[Concatenate[Client, P], T]:
    """A `Client` method that runs the `AsyncClient` method of the same name and blocks."""

    def forward(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(functools.partial(method, self._async, *args, **kwargs))

    name = method.__name__
    forward.__name__ = name
    forward.__qualname__ = f"Client.{name}"
    forward.__doc__ = (
        f"Blocking `AsyncClient.{name}()`: same arguments, same result, no `await`.\n\n"
        f"{method.__doc__ or ''}"
    )
    return forward


class Client:
    """A blocking PICPIK client, for scripts and notebooks; not for async code.

    It takes the keyword arguments of `AsyncClient` (keys, `base_url`, `retry`,
    `poll`, `transport`, ...) plus `backend` (``"asyncio"`` or ``"trio"``, the
    event loop run in a background thread) and has the same methods, without
    `await`. Close it with `close()` or use it in a `with` block. Callbacks
    (`on_retry`, `on_update`) run in the background thread. Inside a running
    event loop it raises `RuntimeError`: use `AsyncClient` there.

    Result images are read and saved with `read_image()`, `save_image()` and
    `download()` (`GeneratedImage.read()` and `.save()` are async).

    Example:
        >>> import picpik_async as picpik
        >>> def main() -> None:
        ...     with picpik.Client() as client:  # keys from PICPIK_PUBLIC_KEY / PICPIK_PRIVATE_KEY
        ...         result = client.generate("a red apple", seed=42)
        ...         client.download(result, "out/")
        ...         big = client.upscale("out/photo.png", width=2048, height=2048)
        ...         client.save_image(big.images[0], "out/big.png")
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

    @overload
    def _run(self, job: Callable[[], Awaitable[T]]) -> T: ...
    @overload
    def _run(self, job: Callable[[], T]) -> T: ...
    def _run(self, job: Callable[[], Any]) -> Any:
        """Run `job` on the background event loop (awaited if async) and wait for its result."""
        _refuse_event_loop()
        if self._closed:
            raise ClientClosedError("this Client is closed; create a new one")
        return self._portal.call(job)

    # --- the AsyncClient methods, blocking --------------------------------------------

    call = _blocking(AsyncClient.call)
    submit = _blocking(AsyncClient.submit)
    submit_tasks = _blocking(AsyncClient.submit_tasks)
    submit_and_wait = _blocking(AsyncClient.submit_and_wait)
    wait = _blocking(AsyncClient.wait)
    generate = _blocking(AsyncClient.generate)
    list_tasks_details = _blocking(AsyncClient.list_tasks_details)
    list_models = _blocking(AsyncClient.list_models)
    list_running_tasks = _blocking(AsyncClient.list_running_tasks)
    list_control_nets = _blocking(AsyncClient.list_control_nets)
    get_credit_balance = _blocking(AsyncClient.get_credit_balance)
    download = _blocking(AsyncClient.download)
    generate_sd15 = _blocking(AsyncClient.generate_sd15)
    upscale = _blocking(AsyncClient.upscale)
    remove_background = _blocking(AsyncClient.remove_background)
    remove_backgrounds = _blocking(AsyncClient.remove_backgrounds)
    extract_contents = _blocking(AsyncClient.extract_contents)
    remove_contents = _blocking(AsyncClient.remove_contents)
    inpaint = _blocking(AsyncClient.inpaint)
    apply_style = _blocking(AsyncClient.apply_style)
    restore_faces = _blocking(AsyncClient.restore_faces)
    swap_face = _blocking(AsyncClient.swap_face)
    describe = _blocking(AsyncClient.describe)

    def generate_many(
        self,
        prompts: Iterable[str],
        *,
        max_concurrency: int = 32,
        return_exceptions: bool = False,
        **generate_kwargs: Any,
    ) -> Iterator[GenerationResult | PicpikError]:
        """Blocking `AsyncClient.generate_many()`: a plain iterator, in completion order.

        Leaving the loop early stops the prompts still in flight.

        Example:
            >>> # for result in client.generate_many(["a cat", "a dog"], width=768):
            >>> #     client.download(result, "out/")
        """
        start = functools.partial(
            self._async.generate_many,
            prompts,
            max_concurrency=max_concurrency,
            return_exceptions=return_exceptions,
            **generate_kwargs,
        )
        stream = self._run(start)  # options are checked here, before the first result
        return self._iterate(stream)

    def _iterate(self, stream: Any) -> Iterator[GenerationResult | PicpikError]:
        try:
            while True:
                try:
                    item: GenerationResult | PicpikError = self._run(stream.__anext__)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if not self._closed:
                self._run(stream.aclose)

    def read_image(self, image: GeneratedImage) -> bytes:
        """Download a result image and return its bytes (blocking `GeneratedImage.read()`).

        Example:
            >>> # png = client.read_image(result.images[0])
        """
        return self._run(image.read)

    def save_image(self, image: GeneratedImage, path: str | os.PathLike[str]) -> Path:
        """Save a result image to `path` (blocking `GeneratedImage.save()`).

        Example:
            >>> # client.save_image(result.images[0], "apple.png")
        """
        return self._run(functools.partial(image.save, path))
