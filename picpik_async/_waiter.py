"""TaskWaiter: one poller per client, all pending TaskUIDs polled together.

I/O: drives the pure `PollSchedule` of `_polling.py` with anyio. Every waiter
registers its TaskUID and sleeps on an event; one poller task sends one
`ListRunningTasks` per tick and collects the TaskUIDs that left it (or, on the
per-task schedule, the due ones) into batched `ListTasksDetails` requests
(docs/protocol.md, "Polling"; docs/architecture.md, "The data path of one `generate()`").
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from typing import Final, assert_never

import anyio
import attrs
from anyio.abc import TaskGroup

from ._actions import ListTasksDetails
from ._errors import ClientClosedError, PicpikError, TaskTimeoutError
from ._models import (
    ListRunningTasksResponse,
    ListTasksDetailsResponse,
    TaskDetail,
    check_task_uid,
)
from ._polling import (
    BackOff,
    Decision,
    PollSchedule,
    PollSettings,
    Refused,
    RunningListOff,
    Settle,
    Split,
    UnknownWord,
    Update,
)

__all__ = ["TaskWaiter"]

logger: Final = logging.getLogger("picpik_async")

ListCall = Callable[[ListTasksDetails], Awaitable[ListTasksDetailsResponse]]
RunningCall = Callable[[], Awaitable[ListRunningTasksResponse]]


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
        list_running: sends one (retried) ListRunningTasks request; without it,
            every task is polled on its own schedule.
    """

    def __init__(
        self,
        list_tasks: ListCall,
        settings: PollSettings,
        task_group: TaskGroup,
        list_running: RunningCall | None = None,
    ) -> None:
        self._list_tasks = list_tasks
        self._list_running = list_running
        self._schedule = PollSchedule(settings, running_list=list_running is not None)
        self._task_group = task_group
        self._limiter = anyio.CapacityLimiter(settings.poll_concurrency)
        self._slots: dict[str, set[_Slot]] = {}
        self._changed = anyio.Event()
        self._started = False
        self._closed = False

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
        self._schedule.watch(uid, anyio.current_time(), follow=on_update is not None)
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

    # --- the poller: it carries out what the schedule decides -------------------------

    async def _run(self) -> None:
        async with anyio.create_task_group() as polls:
            while not self._closed:
                step = self._schedule.step(anyio.current_time())
                if step.tick:
                    polls.start_soon(self._tick)
                for chunk in step.chunks:
                    polls.start_soon(self._poll, chunk)
                self._changed = anyio.Event()
                with anyio.move_on_after(step.sleep):
                    await self._changed.wait()

    async def _tick(self) -> None:
        list_running = self._list_running
        if list_running is None:  # pragma: no cover - the schedule asks for ticks only then
            return
        try:
            answer = await list_running()
        except PicpikError as error:
            decisions = self._schedule.on_running_failure(error, anyio.current_time())
        else:
            self._schedule.on_running(answer.task_uid_list, anyio.current_time())
            decisions = []
        for decision in decisions:
            await self._carry_out(decision)
        self._wake()

    async def _poll(self, chunk: Sequence[str]) -> None:
        async with self._limiter:
            await self._poll_chunk(chunk)
        self._wake()

    async def _poll_chunk(self, chunk: Sequence[str]) -> None:
        # Waiters may have left while this chunk waited for a slot.
        wanted = self._schedule.still_wanted(chunk)
        if not wanted:
            return
        try:
            answer = await self._list_tasks(ListTasksDetails(wanted))
        except PicpikError as error:
            decisions = self._schedule.on_failure(wanted, error, anyio.current_time())
        else:
            details, now = answer.task_detail_list, anyio.current_time()
            decisions = self._schedule.on_answer(wanted, details, now)
        for decision in decisions:
            await self._carry_out(decision)

    async def _carry_out(self, decision: Decision) -> None:
        match decision:
            case Settle(uid=uid, detail=detail, error=error):
                for slot in self._slots.get(uid, ()):
                    slot.settle(detail, error)
            case Update(detail=detail):
                for slot in list(self._slots.get(detail.task_uid, ())):
                    _notify(slot, detail)
            case UnknownWord(word=word):
                logger.info("unknown task status %r: treating it as still pending", word[:40])
            case Split(chunks=chunks):
                logger.info("ListTasksDetails refused %d TaskUIDs; halving", decision.asked)
                for part in chunks:
                    await self._poll_chunk(part)
            case Refused(uid=uid, error=error):
                logger.warning("ListTasksDetails refused TaskUID %s: %s", uid, error)
            case BackOff(asked=asked, error=error):
                logger.warning("ListTasksDetails for %d task(s) failed: %s", asked, error)
            case RunningListOff(reason=reason, until=until):
                seconds = until - anyio.current_time()
                logger.info("%s: polling each task on its own schedule for %.0f s", reason, seconds)
            case unreachable:
                assert_never(unreachable)


def _notify(slot: _Slot, detail: TaskDetail) -> None:
    """Call a waiter's `on_update`; what it raises is logged, never let loose on the poller."""
    if slot.on_update is None:
        return
    try:
        outcome = slot.on_update(detail)
    except Exception:
        logger.warning(
            "on_update callback raised while waiting for task %s; ignored",
            detail.task_uid,
            exc_info=True,
        )
        return
    if inspect.isawaitable(outcome):  # an async callback slipped through: it cannot run here
        getattr(outcome, "close", lambda: None)()
        logger.warning("on_update callback returned an awaitable, which is never awaited")
