"""TaskWaiter: one poller per client, all pending TaskUIDs polled together.

I/O: drives the pure `PollSchedule` of `_polling.py` with anyio. Every waiter
registers its TaskUID and sleeps on an event; one poller task collects the due
TaskUIDs of all waiters into batched `ListTasksDetails` requests (design.md,
"Polling: one poller, many waiters").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from typing import Final, assert_never

import anyio
import attrs
from anyio.abc import TaskGroup

from ._errors import (
    ClientClosedError,
    PicpikError,
    TaskFailedError,
    TaskNotFoundError,
    TaskTimeoutError,
)
from ._models import (
    ListTasksDetails,
    ListTasksDetailsResponse,
    TaskDetail,
    TaskStatus,
    check_task_uid,
)
from ._polling import (
    FailedPoll,
    PollSchedule,
    PollSettings,
    check_answer,
    is_known_status,
    on_failed_poll,
    task_status,
)

__all__ = ["TaskWaiter"]

logger: Final = logging.getLogger("picpik_async")

ListCall = Callable[[ListTasksDetails], Awaitable[ListTasksDetailsResponse]]


@attrs.define(eq=False)
class _Slot:
    """One waiter's mailbox: set once, with a detail or an error."""

    event: anyio.Event = attrs.field(factory=anyio.Event)
    detail: TaskDetail | None = None
    error: PicpikError | None = None
    on_update: Callable[[TaskDetail], object] | None = None

    def settle(self, detail: TaskDetail | None = None, error: PicpikError | None = None) -> None:
        if not self.event.is_set():
            self.detail, self.error = detail, error
            self.event.set()


class TaskWaiter:
    """Waits for many tasks at once with one poller (used through `AsyncClient.wait`).

    Args:
        list_tasks: sends one (retried) ListTasksDetails request.
        settings: poll timing and batching.
        task_group: where the poller runs; it is started on the first wait.
    """

    def __init__(self, list_tasks: ListCall, settings: PollSettings, task_group: TaskGroup) -> None:
        self._list_tasks = list_tasks
        self._schedule = PollSchedule(settings)
        self._task_group = task_group
        self._limiter = anyio.CapacityLimiter(settings.poll_concurrency)
        self._slots: dict[str, set[_Slot]] = {}
        self._changed = anyio.Event()
        self._started = False
        self._closed = False
        self._unknown_words: set[str] = set()

    @property
    def pending(self) -> int:
        """How many TaskUIDs are being waited for."""
        return len(self._slots)

    async def wait(
        self,
        task_uid: str,
        timeout: float | None = None,
        on_update: Callable[[TaskDetail], object] | None = None,
    ) -> TaskDetail:
        """Wait until the task reaches a final state and return its detail.

        `on_update` is called with each pending TaskDetail the poller sees.

        Raises:
            ValidationError: `task_uid` is not a TaskUID (nothing is polled).
            TaskFailedError: the task failed (or went missing: TaskNotFoundError).
            TaskTimeoutError: `timeout` seconds passed first; other waiters go on.
            ClientClosedError: the client was closed while waiting.
        """
        check_task_uid(task_uid)
        if self._closed:
            raise ClientClosedError("the client is closed; open a new one to wait for tasks")
        slot = self._register(task_uid, on_update)
        try:
            with anyio.fail_after(timeout) if timeout is not None else nullcontext():
                await slot.event.wait()
        except TimeoutError:
            raise TaskTimeoutError(task_uid, timeout or 0.0) from None
        finally:
            self._unregister(task_uid, slot)
        if slot.detail is None:  # settle() sets exactly one of detail and error
            raise slot.error or ClientClosedError("the wait ended without an answer")
        return slot.detail

    def close(self) -> None:
        """End every pending wait with `ClientClosedError`; the poller stops with the client."""
        self._closed = True
        for uid, slots in list(self._slots.items()):
            error = ClientClosedError(f"the client was closed while waiting for task {uid}")
            for slot in slots:
                slot.settle(error=error)
        self._wake()

    # --- registration ---------------------------------------------------------

    def _register(self, uid: str, on_update: Callable[[TaskDetail], object] | None) -> _Slot:
        slot = _Slot(on_update=on_update)
        self._slots.setdefault(uid, set()).add(slot)
        self._schedule.watch(uid, anyio.current_time())
        if not self._started:
            self._started = True
            self._task_group.start_soon(self._run, name="picpik-poller")
        self._wake()
        return slot

    def _unregister(self, uid: str, slot: _Slot) -> None:
        slots = self._slots.get(uid)
        if slots is not None and slot in slots:
            slots.discard(slot)
            if not slot.event.is_set():  # a settled TaskUID was already forgotten
                self._schedule.unwatch(uid)
            if not slots:
                del self._slots[uid]

    def _wake(self) -> None:
        self._changed.set()

    def _settle(self, uid: str, detail: TaskDetail | None, error: PicpikError | None) -> None:
        self._schedule.forget(uid)
        for slot in self._slots.get(uid, ()):
            slot.settle(detail, error)

    # --- the poller -------------------------------------------------------------

    async def _run(self) -> None:
        async with anyio.create_task_group() as polls:
            while not self._closed:
                for chunk in self._schedule.take_due(anyio.current_time()):
                    polls.start_soon(self._poll, chunk)
                await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        self._changed = anyio.Event()
        due = self._schedule.next_due()
        delay = math.inf if due is None else max(0.0, due - anyio.current_time())
        with anyio.move_on_after(delay):
            await self._changed.wait()

    async def _poll(self, chunk: Sequence[str]) -> None:
        async with self._limiter:
            await self._poll_chunk(chunk)
        self._wake()

    async def _poll_chunk(self, chunk: Sequence[str]) -> None:
        # Waiters may have left while this chunk waited for a slot: ask only for
        # TaskUIDs someone still waits for, and nothing when nobody does.
        chunk = [uid for uid in chunk if uid in self._schedule]
        if not chunk:
            return
        try:
            answer = await self._list_tasks(ListTasksDetails(chunk))
            found = check_answer(chunk, answer.task_detail_list)
        except PicpikError as error:
            await self._poll_failed(chunk, error)
            return
        self._schedule.answered()
        now = anyio.current_time()
        for uid in chunk:
            self._apply(uid, found.get(uid), now)

    async def _poll_failed(self, chunk: Sequence[str], error: PicpikError) -> None:
        match on_failed_poll(len(chunk), error):
            case FailedPoll.SPLIT:
                # The list may be longer than the service accepts (undocumented):
                # halve it and try each half (docs/protocol.md, "Polling").
                logger.info("ListTasksDetails refused %d TaskUIDs; halving", len(chunk))
                for half in self._schedule.split(chunk):
                    await self._poll_chunk(half)
            case FailedPoll.SETTLE:
                logger.warning("ListTasksDetails refused TaskUID %s: %s", chunk[0], error)
                self._settle(chunk[0], None, error)
            case FailedPoll.BACK_OFF:
                logger.warning("ListTasksDetails for %d task(s) failed: %s", len(chunk), error)
                for uid in self._schedule.failed(chunk, anyio.current_time()):
                    self._settle(uid, None, error)
            case unreachable:
                assert_never(unreachable)

    def _apply(self, uid: str, detail: TaskDetail | None, now: float) -> None:
        if detail is None:
            if self._schedule.missing(uid, now):
                self._settle(uid, None, TaskNotFoundError(uid, self._schedule.settings.max_misses))
            return
        status = task_status(detail)
        match status:
            case TaskStatus.PENDING:
                self._note_word(detail.status)
                self._schedule.pending(uid, now)
                for slot in list(self._slots.get(uid, ())):
                    _notify(slot, detail)
            case TaskStatus.SUCCEEDED:
                self._settle(uid, detail, None)
            case TaskStatus.FAILED:
                code, message = detail.error_code, detail.error_message
                self._settle(uid, None, TaskFailedError(uid, code, message, detail.status))
            case _:
                assert_never(status)

    def _note_word(self, word: str) -> None:
        if not is_known_status(word) and word not in self._unknown_words:
            self._unknown_words.add(word)
            logger.info("unknown task status %r: treating it as still pending", word[:40])


def _notify(slot: _Slot, detail: TaskDetail) -> None:
    """Call a waiter's `on_update`; what it raises is logged, never let loose on the poller."""
    if slot.on_update is None:
        return
    try:
        slot.on_update(detail)
    except Exception:
        logger.warning(
            "on_update callback raised while waiting for task %s; ignored",
            detail.task_uid,
            exc_info=True,
        )
