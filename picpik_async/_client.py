"""AsyncClient: signed calls with retries, the batched waiter, and generate().

I/O: owns (or borrows) an `httpx.AsyncClient` and orchestrates the pure core:
`_protocol` builds and reads messages, `_retry` decides what is retried,
`_waiter` waits for tasks in batches.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import anyio
import anyio.lowlevel
import attrs
import httpx
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._actions import (
    DEFAULT_MODEL,
    BatchSubmitResponse,
    sdxl_options,
    sdxl_request,
    task_uids_of,
)
from ._client_actions import ActionMethods, needs_client, needs_open
from ._decoding import ACCEPT_ENCODING
from ._errors import (
    ClientClosedError,
    PicpikError,
    ProtocolError,
    TaskFailedError,
    ValidationError,
)
from ._files import child_path, image_file_name
from ._images import MAX_DOWNLOAD_BYTES, Downloader, ImageInput, extension_for, to_data_uri
from ._models import (
    CreditBalance,
    GetCreditBalance,
    ListModels,
    ListModelsResponse,
    ListRunningTasks,
    ListTasksDetails,
    ListTasksDetailsResponse,
    Model,
    Request,
    SubmitResponse,
    TaskDetail,
    TaskHandle,
    check_task_uid,
)
from ._polling import PollSettings, missing_output
from ._protocol import (
    MAX_RESPONSE_BYTES,
    build_body,
    garbled_answer,
    lost_answer,
    new_request_uuid,
    parse_response,
)
from ._results import GenerationResult
from ._retry import RetryEvent, RetryPolicy
from ._streams import read_body
from ._waiter import TaskWaiter

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "ResultStream"]

R = TypeVar("R")
logger: Final = logging.getLogger("picpik_async")

DEFAULT_BASE_URL: Final = "https://api.picpik.ai"
# One poller and a capped number of submits in flight: a few sockets serve
# thousands of waiters. Requests beyond the pool wait for a connection.
DEFAULT_LIMITS: Final = httpx.Limits(max_connections=64, max_keepalive_connections=32)

# httpx errors raised before the request left this machine: always safe to retry.
_NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
# Only encodings we decode with a bound on the output (no brotli or zstd bombs).
_HEADERS: Final = {"Content-Type": "application/json", "Accept-Encoding": ACCEPT_ENCODING}


class _TooLateToSend(Exception):
    """The attempt's deadline passed before its request started to leave."""


class _Progress:
    """One attempt's deadline, and how far the attempt got, from httpcore's trace events.

    While a new connection is being made, the deadline steps aside: httpx's own
    connect timeout bounds that phase, and cancelling a TLS handshake midway
    would leak its socket (httpcore closes it only on errors, not on
    cancellation). The deadline is back in force once the request is sent.

    A request counts as "maybe sent" once its headers started, or always when
    the transport reports no events at all (the in-process emulator, a mock,
    a caller's client), since then nothing proves it did not leave.
    """

    __slots__ = ("deadline", "events", "scope", "sending", "traced")

    def __init__(self, timeout: float, *, traced: bool) -> None:
        self.deadline = anyio.current_time() + timeout
        self.scope = anyio.CancelScope(deadline=self.deadline)
        self.traced = traced
        self.events = 0
        self.sending = False

    async def trace(self, name: str, info: Mapping[str, Any]) -> None:
        self.events += 1
        if name.endswith("connect_tcp.started"):
            self.scope.deadline = math.inf
        elif name.endswith("send_request_headers.started"):
            if anyio.current_time() >= self.deadline:
                raise _TooLateToSend  # connecting took it all: stop before a byte is sent
            self.sending = True
            self.scope.deadline = self.deadline

    @property
    def maybe_sent(self) -> bool:
        return self.sending or (self.events == 0 and not self.traced)


class _Secret:
    """Holds the private key; its repr never shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'********'"


def _key(value: str | None, env: str, name: str) -> str:
    key = value if value is not None else os.environ.get(env)
    if not key or not key.strip():
        raise ValidationError(f"{name} is missing: pass {name}=... or set {env}")
    return key


class ResultStream:
    """The results of `generate_many()`, in completion order.

    Use it as an async context manager around the loop: the prompts then run
    in a task group of the caller's own task, so whatever cancels the caller
    (a timeout, a cancelled task group) cancels them, and nothing is sent
    after the block ends::

        async with client.generate_many(prompts) as results:
            async for result in results:
                ...

    A bare `async for` works too; the prompts then run in the client's task
    group, and a cancelled `__anext__`, leaving the loop (`break`), `aclose()`
    or dropping the stream stop them. Either way no submit is sent once the
    cancellation was delivered, and tasks nobody waits for are no longer polled.
    Not an async generator on purpose: leaving early needs no `aclosing()`.
    """

    def __init__(
        self,
        feed: Callable[
            [anyio.CancelScope, MemoryObjectSendStream[GenerationResult | Exception]], Any
        ],
        client_group: TaskGroup,
        *,
        return_exceptions: bool,
    ) -> None:
        self._feed = feed
        self._client_group = client_group
        self._send, self._receive = anyio.create_memory_object_stream[GenerationResult | Exception](
            math.inf
        )
        self._scope = anyio.CancelScope()
        self._group: TaskGroup | None = None
        self._started = False
        self._return_exceptions = return_exceptions

    def _start(self, group: TaskGroup) -> None:
        self._started = True
        group.start_soon(self._feed, self._scope, self._send, name="picpik-generate-many")

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> GenerationResult | PicpikError:
        if not self._started:
            self._start(self._client_group)
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._close()
            raise StopAsyncIteration from None
        except BaseException:
            # Cancelled (or interrupted) while waiting: nobody will read the rest.
            self._close()
            raise
        if isinstance(item, PicpikError) and self._return_exceptions:
            return item
        if isinstance(item, Exception):
            self._close()
            raise item
        return item

    async def __aenter__(self) -> Self:
        if self._started:
            raise RuntimeError("enter a generate_many() stream before iterating it, once")
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        self._start(group)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._close()
        group, self._group = self._group, None
        if group is not None:
            # Waits for the prompts in flight to be cancelled; the body's own
            # exception propagates as raised, never in an ExceptionGroup.
            await group.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Stop: prompts still in flight are cancelled, no further submit is sent."""
        self._close()

    def _close(self) -> None:
        self._scope.cancel()
        self._receive.close()
        if not self._started:
            self._send.close()  # otherwise the feeder owns it and closes it

    def __del__(self) -> None:
        # Dropped mid-loop (a `break`): stop the work nobody will read.
        self._close()


class AsyncClient(ActionMethods):
    """An async PICPIK client for asyncio and trio.

    Args:
        public_key: defaults to `PICPIK_PUBLIC_KEY`.
        private_key: defaults to `PICPIK_PRIVATE_KEY`; never logged or shown.
        base_url: defaults to `PICPIK_BASE_URL`, then `https://api.picpik.ai`.
        timeout: seconds for connecting, reading and writing one request.
        max_retries: retries after the first attempt (shortcut for `retry`).
        retry: the full `RetryPolicy`.
        poll: how the batched waiter polls (`PollSettings`).
        http_client: a caller-owned `httpx.AsyncClient` (not closed by us).
        transport: an httpx transport for a client we own (e.g. the emulator's).
        on_retry: called with a `RetryEvent` before each retry; what it raises
            is logged and ignored.
        trust_env: read proxies (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`)
            and the trust store (`SSL_CERT_FILE`, `SSL_CERT_DIR`) from the
            environment, as httpx does; `False` ignores them.
        download_concurrency: image downloads in flight at once.
        max_download_bytes: the largest image `read()` or `save()` accepts, counted
            decoded (default 64 MiB); a larger one is a `ResponseTooLargeError`.
        submit_concurrency: task-creating requests in flight at once. Kept below
            the pool's kept-alive connections, so a burst of thousands of submits
            queues here instead of in httpx, and status polls are not stuck behind
            it (benchmarks/RESULTS.md measures the difference).

    Example:
        >>> async def main() -> None:
        ...     async with AsyncClient() as client:
        ...         result = await client.generate("a red apple", seed=42)
        ...         await result.images[0].save("apple.png")
    """

    def __init__(
        self,
        *,
        public_key: str | None = None,
        private_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        poll: PollSettings | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_retry: Callable[[RetryEvent], object] | None = None,
        trust_env: bool = True,
        download_concurrency: int = 8,
        submit_concurrency: int = 28,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.public_key = _key(public_key, "PICPIK_PUBLIC_KEY", "public_key")
        self._private_key = _Secret(_key(private_key, "PICPIK_PRIVATE_KEY", "private_key"))
        self.base_url = base_url or os.environ.get("PICPIK_BASE_URL") or DEFAULT_BASE_URL
        self._endpoint = _endpoint(self.base_url)
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_attempts=max_retries + 1)
        self.retry = policy
        self.poll = poll or PollSettings()
        self._timeout = _positive_seconds(timeout)
        self._on_retry = on_retry
        self._owns_http = http_client is None
        self._closed = False
        self._http = http_client or _http_client(self._timeout, transport, trust_env=trust_env)
        # Our own pool reports httpcore's trace events; a caller's or a custom one may not.
        self._traced = http_client is None and transport is None
        self._downloader = Downloader(
            self._http,
            policy,
            _positive_int(download_concurrency, "download"),
            max_bytes=max_download_bytes,
            is_closed=lambda: self._closed,
        )
        self._submit_slots = anyio.CapacityLimiter(_positive_int(submit_concurrency, "submit"))
        self._task_group: TaskGroup | None = None
        self._waiter: TaskWaiter | None = None

    def __repr__(self) -> str:
        return f"AsyncClient(public_key={self.public_key!r}, base_url={self.base_url!r})"

    # --- lifetime -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._closed:
            raise ClientClosedError("this AsyncClient is closed; create a new one")
        if self._task_group is not None:
            raise ClientClosedError("this AsyncClient is already open in an `async with` block")
        group = anyio.create_task_group()
        await group.__aenter__()
        self._task_group = group
        self._waiter = TaskWaiter(self.list_tasks, self.poll, group)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):  # closing finishes even under cancellation
            await self.aclose()
        group, self._task_group = self._task_group, None
        if group is not None:
            group.cancel_scope.cancel()
            # The body's own exception is not handed to the task group: it
            # propagates as raised, never wrapped in an ExceptionGroup.
            await group.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Close the client: pending waits end with `ClientClosedError`, sockets close.

        Safe to call more than once. The poller stops when the `async with` block ends.
        """
        if self._closed:
            return
        self._closed = True
        if self._waiter is not None:
            self._waiter.close()
        if self._owns_http:
            await self._http.aclose()

    def _check_usable(self, method: str, *, waits: bool) -> None:
        """Refuse a call before any I/O when this client cannot finish it."""
        if self._closed:
            raise ClientClosedError(
                f"{method}() was called on a closed AsyncClient; create a new one"
            )
        if waits and self._waiter is None:
            raise ClientClosedError(
                f"{method}() needs the client open: use `async with AsyncClient(...) as client:` "
                "(nothing was sent)"
            )

    # --- calls ------------------------------------------------------------------------

    @needs_client
    async def call(self, request: Request[R], *, request_uuid: str | None = None) -> R:
        """Send any request, signed, with retries, and return its typed answer.

        The same request_uuid and signed body are used on every attempt.

        Example:
            >>> # balance = await client.call(GetCreditBalance())
        """
        # A task-creating call takes its slot before its body and retry state
        # exist: thousands of queued submits then cost next to nothing.
        async with self._submit_slots if request.creates_task else nullcontext():
            return await self._call(request, request_uuid or new_request_uuid())

    async def _call(self, request: Request[R], uuid: str) -> R:
        body = build_body(
            request,
            public_key=self.public_key,
            private_key=self._private_key.value,
            request_uuid=uuid,
        )
        retrying = self.retry.retrying(
            sleep=anyio.sleep, action=request.action, request_uuid=uuid, on_retry=self._on_retry
        )
        async for attempt in retrying:
            with attempt:
                return await self._send(request, body, uuid)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send(self, request: Request[R], body: bytes, uuid: str) -> R:
        # A cancelled caller sends nothing: a task woken just as its scope was
        # cancelled would otherwise run on into the request (issue 11).
        await anyio.lowlevel.checkpoint_if_cancelled()
        logger.debug("sending %s (request_uuid=%s)", request.action, uuid)
        progress = _Progress(self._timeout, traced=self._traced)
        try:
            # One deadline for the whole attempt: connect, send and the whole answer,
            # so an answer trickled a byte at a time cannot hold a call for ever.
            with progress.scope:
                async with self._http.stream(
                    "POST",
                    self._endpoint,
                    content=body,
                    headers=_HEADERS,
                    follow_redirects=False,
                    extensions={"trace": progress.trace},
                ) as r:
                    content = await read_body(r, limit=MAX_RESPONSE_BYTES, what=request.action)
            if progress.scope.cancelled_caught:
                reason = f"no complete answer within {self._timeout:g} s"
                sent = progress.maybe_sent
                raise lost_answer(request, request_uuid=uuid, sent=sent, reason=reason)
        except _TooLateToSend as exc:
            reason = f"connecting took the whole timeout of {self._timeout:g} s"
            raise lost_answer(request, request_uuid=uuid, sent=False, reason=reason) from exc
        except httpx.TransportError as exc:
            sent = not isinstance(exc, _NOT_SENT)
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise lost_answer(request, request_uuid=uuid, sent=sent, reason=reason) from exc
        except ProtocolError as exc:
            outcome = garbled_answer(request, exc, request_uuid=uuid)
            if outcome is exc:
                raise
            raise outcome from exc
        logger.debug("%s answered HTTP %d (request_uuid=%s)", request.action, r.status_code, uuid)
        try:
            return parse_response(
                request,
                status_code=r.status_code,
                content=content,
                request_uuid=uuid,
                retry_after=r.headers.get("Retry-After"),
            )
        except ProtocolError as exc:
            outcome = garbled_answer(request, exc, request_uuid=uuid)
            if outcome is exc:
                raise
            raise outcome from exc

    @needs_client
    async def submit(
        self, request: Request[SubmitResponse], *, request_uuid: str | None = None
    ) -> TaskHandle:
        """Send a task-creating request and return its `TaskHandle`.

        Raises:
            SubmitOutcomeUnknownError: the request was sent but its answer was lost;
                the task may exist. See the README's "Failure modes".

        Example:
            >>> # request = GenerateImagesSDXL(main_model=Model("PICPIK General"))
            >>> # handle = await client.submit(request)
        """
        if issubclass(request.response_type, BatchSubmitResponse):
            raise ValidationError(
                f"{request.action} may create several tasks: use submit_tasks() for every handle"
            )
        (handle,) = await self.submit_tasks(request, request_uuid=request_uuid)
        return handle

    @needs_client
    async def list_tasks(self, request: ListTasksDetails) -> ListTasksDetailsResponse:
        """Send one ListTasksDetails request (what the waiter polls with)."""
        return await self.call(request)

    @needs_client
    async def list_tasks_details(self, task_uids: Sequence[str]) -> list[TaskDetail]:
        """Status and results of the given tasks, in one request.

        Example:
            >>> # details = await client.list_tasks_details(["uid1", "uid2"])
        """
        answer = await self.call(ListTasksDetails(list(task_uids)))
        return list(answer.task_detail_list)

    @needs_client
    async def list_models(self) -> ListModelsResponse:
        """The models the account can use, keyed by name."""
        return await self.call(ListModels())

    @needs_client
    async def list_running_tasks(self) -> list[str]:
        """The TaskUIDs still running for the account."""
        return list((await self.call(ListRunningTasks())).task_uid_list)

    @needs_client
    async def get_credit_balance(self) -> CreditBalance:
        """The account's credits: total, used, `remaining`, expiry."""
        return await self.call(GetCreditBalance())

    # --- waiting ------------------------------------------------------------------------

    @needs_open
    async def wait(
        self,
        task: str | TaskHandle,
        timeout: float | None = None,
        *,
        prompt: str | None = None,
        on_update: Callable[[TaskDetail], object] | None = None,
    ) -> GenerationResult:
        """Wait for a task to finish, polling together with every other waiter.

        Args:
            task: a TaskUID or the `TaskHandle` from `submit()`.
            timeout: seconds to wait before `TaskTimeoutError` (the task goes on).
            prompt: recorded on the result, for the caller's bookkeeping.
            on_update: called with each pending `TaskDetail` seen (e.g. to show
                "Queuing" / "Running").

        Raises:
            ValidationError: `task` is not a TaskUID; nothing is polled.
            ClientClosedError: the client is not open in `async with`.
            TaskFailedError: the task failed, or finished with no result at all.
            TaskTimeoutError: the timeout passed first.

        Example:
            >>> # result = await client.wait(handle, timeout=300)
        """
        return await self._wait(task, timeout, prompt, on_update, expects=None)

    async def _wait(
        self,
        task: str | TaskHandle,
        timeout: float | None,
        prompt: str | None,
        on_update: Callable[[TaskDetail], object] | None,
        *,
        expects: str | None,
    ) -> GenerationResult:
        uid, uuid = (
            (task.task_uid, task.request_uuid) if isinstance(task, TaskHandle) else (task, None)
        )
        check_task_uid(uid)
        if self._waiter is None:  # _check_usable refused this already; for mypy
            raise ClientClosedError("wait() needs the client open")
        detail = await self._waiter.wait(uid, timeout, on_update)
        problem = missing_output(detail, expects)
        if problem is not None:
            raise TaskFailedError(uid, detail.error_code, problem, detail.status)
        return GenerationResult.from_detail(
            detail, self._downloader, request_uuid=uuid, prompt=prompt
        )

    # --- high level -----------------------------------------------------------------------

    @needs_open
    async def generate(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        model: str | Model = DEFAULT_MODEL,
        width: int = 1024,
        height: int = 1024,
        seed: int = -1,
        batch_size: int = 1,
        tiling: bool = False,
        translate_prompts: bool = True,
        image: ImageInput | None = None,
        refer_strength: float = 0.5,
        sub_models: Sequence[str | Model] = (),
        timeout: float | None = None,
    ) -> GenerationResult:
        """Generate images from a prompt with SDXL: submit, then wait for the result.

        `image` (a path, bytes or a data URI) makes it image-to-image with
        `refer_strength`; `timeout` bounds the wait, not the submit.

        Example:
            >>> # result = await client.generate("a red apple", width=1024, height=1024, seed=42)
            >>> # await result.images[0].save("apple.png")
        """
        request = sdxl_request(
            prompt,
            negative_prompt=negative_prompt,
            model=model,
            width=width,
            height=height,
            seed=seed,
            batch_size=batch_size,
            tiling=tiling,
            translate_prompts=translate_prompts,
            image_uri=await to_data_uri(image) if image is not None else None,
            refer_strength=refer_strength,
            sub_models=sub_models,
        )
        return await self.submit_and_wait(request, timeout, prompt=prompt)

    def generate_many(
        self,
        prompts: Iterable[str],
        *,
        max_concurrency: int = 32,
        return_exceptions: bool = False,
        **generate_kwargs: Any,
    ) -> ResultStream:
        """Generate for many prompts at once; iterate the results in completion order.

        At most `max_concurrency` prompts are in flight. With `return_exceptions`
        a failed prompt yields its `PicpikError` (its `prompt` attribute says
        which) instead of ending the loop. Bad options and prompts raise
        `ValidationError` here, before any I/O. Leaving the loop early (or
        `aclose()`) cancels the prompts still in flight.

        Example:
            >>> # async for result in client.generate_many(["a cat", "a dog"], width=768):
            >>> #     print(result.prompt, result.images[0].url)
        """
        if isinstance(prompts, str | bytes | bytearray):
            raise ValidationError(
                "generate_many() takes an iterable of prompts, got a single "
                f"{type(prompts).__name__} ({prompts!r:.40}): pass [prompt], or use generate()"
            )
        try:
            given = list(prompts)
        except TypeError:
            raise ValidationError(
                f"generate_many() takes an iterable of prompts, got {type(prompts).__name__}"
            ) from None
        max_concurrency = _positive_int(max_concurrency, "max", what="max_concurrency")
        options = sdxl_options(generate_kwargs)
        checked = [sdxl_request(p, **options).positive_prompts[0] for p in given]
        self._check_usable("generate_many", waits=True)
        if self._task_group is None:  # _check_usable refused this already; for mypy
            raise ClientClosedError("generate_many() needs the client open")
        feed = functools.partial(self._run_many, checked, max_concurrency, generate_kwargs)
        return ResultStream(feed, self._task_group, return_exceptions=return_exceptions)

    async def _run_many(
        self,
        prompts: list[str],
        max_concurrency: int,
        kwargs: dict[str, Any],
        scope: anyio.CancelScope,
        send: MemoryObjectSendStream[GenerationResult | Exception],
    ) -> None:
        """Feed generate_many(): runs in a task group, stopped by `scope`.

        Every outcome, errors included, goes to the stream: nothing raised here
        may reach (and cancel) the task group it runs in.
        """
        slots = anyio.Semaphore(max_concurrency)

        async def one(prompt: str) -> None:
            item: GenerationResult | Exception
            try:
                item = await self.generate(prompt, **kwargs)
            except Exception as error:  # handed to the consumer, who raises or yields it
                if isinstance(error, PicpikError):
                    error.prompt = prompt
                item = error
            slots.release()
            await send.send(item)

        with scope, send:
            async with anyio.create_task_group() as group:
                for prompt in prompts:
                    await slots.acquire()
                    group.start_soon(one, prompt)

    @needs_client
    async def download(
        self, result: GenerationResult, directory: str | os.PathLike[str]
    ) -> list[Path]:
        """Save every image of a result into `directory` as `<TaskUID>-<index>.<ext>`.

        The names are built from checked TaskUIDs and always lie directly in
        `directory`. If one image fails, the others are stopped (their partial
        files removed) and that image's `PicpikError` is raised.

        Example:
            >>> # paths = await client.download(result, "out/")
        """
        targets = [
            child_path(directory, image_file_name(i.task_uid, i.index, extension_for(i.url)))
            for i in result.images
        ]
        paths: list[Path] = list(targets)
        errors: list[PicpikError] = []

        async def save(i: int, group: TaskGroup) -> None:
            try:
                paths[i] = await result.images[i].save(targets[i])
            except PicpikError as error:
                errors.append(error)
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for i in range(len(result.images)):
                group.start_soon(save, i, group)
        if errors:
            raise errors[0]
        return paths

    # --- the primitives of every other action (their methods: _client_actions.py) ---------

    @needs_client
    async def submit_tasks(
        self, request: Request[SubmitResponse], *, request_uuid: str | None = None
    ) -> list[TaskHandle]:
        """Like `submit()`, but a handle for every task the answer names.

        RemoveBackgroundsInBatch may answer one TaskUID or a list (section 8.8);
        `submit()` would return only the first.

        Example:
            >>> # handles = await client.submit_tasks(RemoveBackgroundsInBatch(raw_images=uris))
        """
        if not request.creates_task:
            raise ValidationError(f"{request.action} does not create a task; use call()")
        uuid = request_uuid or new_request_uuid()
        answer = await self.call(request, request_uuid=uuid)
        return [TaskHandle(uid, uuid) for uid in task_uids_of(answer)]

    @needs_open
    async def submit_and_wait(
        self,
        request: Request[SubmitResponse],
        timeout: float | None = None,
        *,
        prompt: str | None = None,
    ) -> GenerationResult:
        """Submit any task-creating request and wait for its result.

        A task that finishes without the output its request promises (images,
        or texts for DescribeImages) raises `TaskFailedError`.

        Example:
            >>> # result = await client.submit_and_wait(GenerateBackgrounds(...), timeout=300)
        """
        handle = await self.submit(request)
        return await self._wait(handle, timeout, prompt, None, expects=request.output)


def _positive_int(value: int, prefix: str, *, what: str = "") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        name = what or f"{prefix}_concurrency"
        raise ValidationError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _positive_seconds(value: float) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValidationError(f"timeout must be a number of seconds > 0, got {value!r}")
    return float(number)


_CREDENTIALS: Final = re.compile(r"//[^/@\s]*@")


def _http_client(
    timeout: float, transport: httpx.AsyncBaseTransport | None, *, trust_env: bool
) -> httpx.AsyncClient:
    """Our own httpx client; a bad proxy or trust store in the environment is a PicpikError."""
    try:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, pool=None),
            limits=DEFAULT_LIMITS,
            transport=transport,
            trust_env=trust_env,
        )
    except (ValueError, ImportError, OSError, httpx.InvalidURL) as exc:
        detail = _CREDENTIALS.sub("//***@", f"{type(exc).__name__}: {exc}")
        hint = (
            "; check HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and SSL_CERT_FILE, "
            "or pass trust_env=False to ignore the environment"
            if trust_env
            else ""
        )
        raise ValidationError(f"cannot set up the HTTP client ({detail}){hint}") from exc


def _endpoint(base_url: str) -> str:
    """Where requests are POSTed: the base URL's root (picpik-api.md section 8.1)."""
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValidationError(f"base_url must be an http(s) URL, got {base_url!r}")
    if url.scheme == "http" and not _is_loopback(url.host):
        logger.warning(
            "base_url %s is plain http to a non-loopback host: requests are not encrypted", base_url
        )
    return str(url if url.path.endswith("/") else url.copy_with(path=url.path + "/"))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
