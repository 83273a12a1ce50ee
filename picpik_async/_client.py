"""AsyncClient: signed calls with retries, the batched waiter, and generate().

I/O: owns (or borrows) an `httpx.AsyncClient` and orchestrates the pure core:
`_protocol` builds and reads messages, `_retry` decides what is retried,
`_waiter` waits for tasks in batches.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Generic, Literal, Self, TypeVar, cast, overload

import anyio
import anyio.lowlevel
import attrs
import httpx
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._actions import (
    DEFAULT_MODEL,
    BatchSubmitResponse,
    GenerateOptions,
    GetCreditBalance,
    ListModels,
    ListRunningTasks,
    ListTasksDetails,
    sdxl_request,
    task_uids_of,
)
from ._budget import CreditBudget
from ._client_actions import ActionMethods, needs_client, needs_open
from ._decoding import ACCEPT_ENCODING
from ._errors import (
    ClientClosedError,
    PicpikError,
    ProtocolError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    ValidationError,
)
from ._files import check_name_template, child_path, image_file_name, templated_file_name
from ._images import (
    DOWNLOAD_TIMEOUT,
    MAX_DOWNLOAD_BYTES,
    Downloader,
    ImageInput,
    extension_for,
    to_data_uri,
)
from ._models import (
    CreditBalance,
    ListModelsResponse,
    ListRunningTasksResponse,
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
from ._results import GeneratedImage, GenerationResult
from ._retry import RetryEvent, RetryPolicy
from ._streams import AttemptDeadline, TooLateToSend, read_body
from ._waiter import TaskWaiter

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "ResultStream"]

R = TypeVar("R")
T = TypeVar("T")
C = TypeVar("C", bound=Callable[..., object] | None)
logger: Final = logging.getLogger("picpik_async")

DEFAULT_BASE_URL: Final = "https://api.picpik.ai"
# One poller and a capped number of submits in flight: a few sockets serve
# thousands of waiters. Requests beyond the pool wait for a connection.
#
# An idle connection is dropped after 2 s, before common servers drop it (uvicorn 5 s,
# nginx 75 s): a submit sent on a connection the server is closing at that moment gets
# a ReadError, and its outcome is unknown. httpx's own 5 s equals uvicorn's, and 1 of
# 20,000 submits hit that race in benchmarks/RESULTS-distributed.md.
DEFAULT_LIMITS: Final = httpx.Limits(
    max_connections=64, max_keepalive_connections=32, keepalive_expiry=2.0
)

# httpx errors raised before the request left this machine: always safe to retry.
_NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,  # the proxy refused to connect us: the request never reached PICPIK
    httpx.UnsupportedProtocol,
)
# Only encodings we decode with a bound on the output (no brotli or zstd bombs).
_HEADERS: Final = {"Content-Type": "application/json", "Accept-Encoding": ACCEPT_ENCODING}


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


class ResultStream(Generic[T]):
    """The results of `generate_many()`, in completion order.

    `T` is `GenerationResult`, or `GenerationResult | PicpikError` with
    `return_exceptions=True` (the overloads of `generate_many()` say which).

    Use it as an async context manager around the loop: the prompts then run
    in a task group of the caller's own task, so whatever cancels the caller
    (a timeout, a cancelled task group) cancels them, and nothing is sent
    after the block ends::

        async with client.generate_many(prompts) as results:
            async for result in results:
                ...

    A bare `async for` works too; the prompts then run in the client's task
    group and stop when a waiting `__anext__` is cancelled, on `aclose()`, or
    when the stream is garbage-collected (at once, in CPython, when nothing
    else refers to it). Either way no submit is sent once the cancellation was
    delivered, and tasks nobody waits for are no longer polled.

    Demand-driven: at most `max_concurrency` prompts are in flight or finished
    but not yet read, so a consumer that stops reading stops the spending. A
    stream stopped by a cancellation or `aclose()` raises `ClientClosedError`
    if it is iterated again. `submitted` lists the task of every submit it
    sent (read or not), for the record of what was paid for.
    Not an async generator on purpose: leaving early needs no `aclosing()`.
    """

    def __init__(
        self,
        feed: Callable[[ResultStream[Any], MemoryObjectSendStream[Any]], Any],
        client: AsyncClient,
        *,
        max_concurrency: int,
        return_exceptions: bool,
    ) -> None:
        self._feed = feed
        self._client = client
        self._send, self._receive = anyio.create_memory_object_stream[GenerationResult | Exception](
            math.inf
        )
        self._scope = anyio.CancelScope()
        self._slots = anyio.Semaphore(max_concurrency)
        self._group: TaskGroup | None = None
        self._started = False
        self._finished = False
        self._stopped = False
        self._return_exceptions = return_exceptions
        #: The task of every submit this stream sent, in order, read or not.
        self.submitted: list[TaskHandle] = []

    def _start(self, group: TaskGroup) -> None:
        self._started = True
        group.start_soon(self._feed, self, self._send, name="picpik-generate-many")

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if self._stopped:
            raise ClientClosedError(
                "this generate_many() stream was stopped (a cancellation or aclose()); "
                "its `submitted` handles list the tasks it created"
            )
        if self._finished:
            raise StopAsyncIteration
        if not self._started:
            self._client._check_usable("generate_many", waits=True)
            self._start(self._client._require_group())
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._finished = True
            self._close()
            raise StopAsyncIteration from None
        except BaseException:
            if self._group is None:
                # Bare form, cancelled (or interrupted) while waiting: nobody will
                # read the rest. In `async with`, the caller's scope decides.
                self._stop()
            raise
        self._slots.release()  # a result was read: one more prompt may start
        if isinstance(item, PicpikError) and self._return_exceptions:
            return cast("T", item)
        if isinstance(item, Exception):
            self._stop()
            raise item
        return cast("T", item)

    async def __aenter__(self) -> Self:
        if self._started:
            raise ClientClosedError("enter a generate_many() stream once, before iterating it")
        self._client._check_usable("generate_many", waits=True)
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        self._start(group)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop()
        group, self._group = self._group, None
        if group is not None:
            # Waits for the prompts in flight to be cancelled; the body's own
            # exception propagates as raised, never in an ExceptionGroup.
            await group.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Stop: prompts still in flight are cancelled, no further submit is sent."""
        self._stop()

    def _stop(self) -> None:
        if not self._finished:
            self._stopped = True
        self._close()

    def _close(self) -> None:
        self._scope.cancel()
        self._receive.close()
        if not self._started:
            self._send.close()  # otherwise the feeder owns it and closes it

    def __del__(self) -> None:
        # Dropped mid-loop: stop the work nobody will read. Outside an event
        # loop (a stream that outlived it) only the streams can be closed.
        try:
            self._close()
        except RuntimeError:
            self._receive.close()
            self._send.close()


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
        download_timeout: seconds one attempt of an image download may take, the
            whole image included (default 300); then it is retried.
        budget: a `CreditBudget`: no task-creating request is sent unless its
            estimated price fits (`BudgetExceededError` otherwise).
        submit_concurrency: task-creating requests in flight at once (default
            16). A burst of thousands of submits queues here instead of in httpx,
            and status polls are not stuck behind it: past about 16 in flight a
            client spends more CPU per submit in pool bookkeeping and gets no more
            through (benchmarks/RESULTS.md measures it). On a link with a long
            round trip, more in flight may send a burst faster.

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
        submit_concurrency: int = 16,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
        download_timeout: float = DOWNLOAD_TIMEOUT,
        budget: CreditBudget | None = None,
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
        self._on_retry = _plain_callback(on_retry, "on_retry")
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
            timeout=download_timeout,
        )
        self._submit_slots = anyio.CapacityLimiter(_positive_int(submit_concurrency, "submit"))
        if budget is not None and not isinstance(budget, CreditBudget):
            raise ValidationError(f"budget must be a CreditBudget, got {budget!r}")
        self.budget = budget
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
        self._waiter = TaskWaiter(self.list_tasks, self.poll, group, self._list_running)
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
        progress = AttemptDeadline(self._timeout, traced=self._traced)
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
        except TooLateToSend as exc:
            reason = f"connecting took the whole timeout of {self._timeout:g} s"
            raise lost_answer(request, request_uuid=uuid, sent=False, reason=reason) from exc
        except httpx.TransportError as exc:
            sent = not isinstance(exc, _NOT_SENT)
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if not sent:  # say where: a wrong base_url is the usual cause
                reason = f"cannot reach {_origin(self._endpoint)} ({reason})"
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

    async def _list_running(self) -> ListRunningTasksResponse:
        """One ListRunningTasks request: the poller's change signal."""
        return await self.call(ListRunningTasks())

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
                "Queuing" / "Running"). The running list carries no details, so a
                task waited for with `on_update` is polled on its own schedule.

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
        _plain_callback(on_update, "on_update")
        if self._waiter is None:  # _check_usable refused this already; for mypy
            raise ClientClosedError("wait() needs the client open")
        watching = self.budget.watching(uid) if self.budget is not None else nullcontext()
        try:
            with watching:
                detail = await self._waiter.wait(uid, timeout, on_update)
        except TaskFailedError:
            if self.budget is not None:
                self.budget.failed(uid)
            raise
        problem = missing_output(detail, expects)
        if self.budget is not None:
            if problem is None:
                self.budget.finished(uid, detail.consume_api_point)
            else:
                self.budget.failed(uid)
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
        # The keywords above are `GenerateOptions`' fields (tests/test_options.py checks).
        options = GenerateOptions(
            negative_prompt=negative_prompt,
            model=model,
            width=width,
            height=height,
            seed=seed,
            batch_size=batch_size,
            tiling=tiling,
            translate_prompts=translate_prompts,
            image=image,
            refer_strength=refer_strength,
            sub_models=sub_models,
        )
        return await self._generate(prompt, options, timeout)

    async def _generate(
        self,
        prompt: str,
        options: GenerateOptions,
        timeout: float | None,
        on_submit: Callable[[TaskHandle], object] | None = None,
    ) -> GenerationResult:
        image_uri = await to_data_uri(options.image) if options.image is not None else None
        request = sdxl_request(prompt, options, image_uri=image_uri)
        (handle,) = await self._submit_tasks(request, None, wait_for_budget=True)
        if on_submit is not None:
            on_submit(handle)
        return await self._wait(handle, timeout, prompt, None, expects=request.output)

    @overload
    def generate_many(
        self,
        prompts: Iterable[str],
        *,
        max_concurrency: int = 32,
        return_exceptions: Literal[False] = False,
        timeout: float | None = None,
        **options: Any,
    ) -> ResultStream[GenerationResult]: ...
    @overload
    def generate_many(
        self,
        prompts: Iterable[str],
        *,
        max_concurrency: int = 32,
        return_exceptions: bool,
        timeout: float | None = None,
        **options: Any,
    ) -> ResultStream[GenerationResult | PicpikError]: ...
    def generate_many(
        self,
        prompts: Iterable[str],
        *,
        max_concurrency: int = 32,
        return_exceptions: bool = False,
        timeout: float | None = None,
        **options: Any,
    ) -> ResultStream[GenerationResult] | ResultStream[GenerationResult | PicpikError]:
        """Generate for many prompts at once; iterate the results in completion order.

        `options` are `generate()`'s (`GenerateOptions`); `timeout` bounds each wait.

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
        chosen = GenerateOptions.from_mapping(options, what="generate_many()")
        checked = [sdxl_request(p, chosen).positive_prompts[0] for p in given]
        self._check_usable("generate_many", waits=True)
        feed = functools.partial(self._run_many, checked, chosen, timeout)
        return ResultStream(
            feed, self, max_concurrency=max_concurrency, return_exceptions=return_exceptions
        )

    async def _run_many(
        self,
        prompts: list[str],
        options: GenerateOptions,
        timeout: float | None,
        stream: ResultStream[Any],
        send: MemoryObjectSendStream[GenerationResult | Exception],
    ) -> None:
        """Feed generate_many(): runs in a task group, stopped by the stream's scope.

        A prompt starts only when one of the stream's slots is free, and a
        slot frees when the consumer reads a result. Every outcome, errors
        included, goes to the stream: nothing raised here may reach (and
        cancel) the task group it runs in.
        """

        async def one(prompt: str) -> None:
            item: GenerationResult | Exception
            try:
                item = await self._generate(prompt, options, timeout, stream.submitted.append)
            except Exception as error:  # handed to the consumer, who raises or yields it
                if isinstance(error, PicpikError):
                    error.prompt = prompt
                item = error
            await send.send(item)

        with stream._scope, send:
            async with anyio.create_task_group() as group:
                for prompt in prompts:
                    await stream._slots.acquire()
                    group.start_soon(one, prompt)

    def _require_group(self) -> TaskGroup:
        if self._task_group is None:  # _check_usable refuses this first; for mypy
            raise ClientClosedError("generate_many() needs the client open")
        return self._task_group

    @needs_client
    async def download(
        self,
        result: GenerationResult,
        directory: str | os.PathLike[str],
        *,
        name: str | None = None,
    ) -> list[Path]:
        """Save every image of a result into `directory` as `<TaskUID>-<index>.<ext>`.

        `name` is a template for the file names instead, with the fields
        ``{task_uid}``, ``{index}``, ``{seed}`` and ``{prompt}`` (cut to safe
        characters); ``-<index>`` is added when several images would share a
        name. The names always lie directly in `directory`. If one image
        fails, the others are stopped (their partial files removed) and that
        image's `PicpikError` is raised.

        Example:
            >>> # paths = await client.download(result, "out/", name="{prompt}-{seed}")
        """
        if name is not None:
            check_name_template(name)
        targets = [child_path(directory, self._file_name(result, i, name)) for i in result.images]
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

    @staticmethod
    def _file_name(result: GenerationResult, image: GeneratedImage, name: str | None) -> str:
        suffix = extension_for(image.url)
        if name is None:
            return image_file_name(image.task_uid, image.index, suffix)
        return templated_file_name(
            name, task_uid=image.task_uid, index=image.index, seed=result.seed,
            prompt=result.prompt or "", suffix=suffix, images=len(result.images),
        )  # fmt: skip

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
        return await self._submit_tasks(request, request_uuid, wait_for_budget=False)

    async def _submit_tasks(
        self,
        request: Request[SubmitResponse],
        request_uuid: str | None,
        *,
        wait_for_budget: bool,
    ) -> list[TaskHandle]:
        if not request.creates_task:
            raise ValidationError(f"{request.action} does not create a task; use call()")
        uuid = request_uuid or new_request_uuid()
        if self.budget is None:
            answer = await self.call(request, request_uuid=uuid)
            return [TaskHandle(uid, uuid) for uid in task_uids_of(answer)]
        budget = self.budget
        reservation = await budget.reserve(request, wait=wait_for_budget)
        try:
            answer = await self.call(request, request_uuid=uuid)
            handles = [TaskHandle(uid, uuid) for uid in task_uids_of(answer)]
        except SubmitOutcomeUnknownError:
            budget.unknown(reservation)
            raise
        except PicpikError:  # refused, or never sent: nothing was created
            budget.refused(reservation)
            raise
        except BaseException:  # cancelled mid-flight: the task may exist
            budget.unknown(reservation)
            raise
        budget.submitted(reservation, [h.task_uid for h in handles])
        return handles

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
        handle = await self.submit(request)  # refuses a request that makes several tasks
        return await self._wait(handle, timeout, prompt, None, expects=request.output)


def _positive_int(value: int, prefix: str, *, what: str = "") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        name = what or f"{prefix}_concurrency"
        raise ValidationError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _plain_callback(callback: C, name: str) -> C:
    """A callback must be a plain function: an `async def` one would never run."""
    if callback is not None and inspect.iscoroutinefunction(inspect.unwrap(callback)):
        raise ValidationError(
            f"{name} must be a plain function (it is called from the poller, not awaited); "
            f"got the coroutine function {getattr(callback, '__qualname__', callback)!r}"
        )
    return callback


def _positive_seconds(value: float) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValidationError(f"timeout must be a number of seconds > 0, got {value!r}")
    return float(number)


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
        raise ValidationError(_setup_problem(exc, trust_env=trust_env)) from exc


def _setup_problem(exc: Exception, *, trust_env: bool) -> str:
    """What went wrong making the httpx client, without repeating what it parsed.

    A proxy URL from the environment may hold a password, and a malformed one
    is quoted back in pieces by httpx (a password with `#` becomes the "port"),
    so only the kind of failure is named, and a missing file's name.
    """
    if isinstance(exc, FileNotFoundError):
        what = f"a certificate file is missing: {exc.filename}"
    elif isinstance(exc, ImportError):
        what = "a SOCKS proxy needs the socksio package (pip install 'httpx[socks]')"
    else:
        what = f"a proxy URL cannot be used ({type(exc).__name__})"
    if not trust_env:
        return f"cannot set up the HTTP client: {what}"
    return (
        f"cannot set up the HTTP client from the environment: {what}; check HTTP_PROXY, "
        "HTTPS_PROXY, ALL_PROXY and SSL_CERT_FILE, or pass trust_env=False to ignore them"
    )


def _endpoint(base_url: str) -> str:
    """Where requests are POSTed: the base URL's root (docs/protocol.md, "Requests")."""
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValidationError(f"base_url must be an http(s) URL, got {base_url!r}")
    if url.scheme == "http" and not _is_loopback(url.host):
        logger.warning(
            "base_url %s is plain http to a non-loopback host: requests are not encrypted", base_url
        )
    return str(url if url.path.endswith("/") else url.copy_with(path=url.path + "/"))


def _origin(endpoint: str) -> str:
    """Scheme, host and port of an endpoint, without any user or password in it.

    Example:
        >>> _origin("https://me:secret@api.picpik.ai/")
        'https://api.picpik.ai'
    """
    url = httpx.URL(endpoint)
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
