"""TaskWaiter on a fake clock: trio's MockClock jumps to the next deadline, no real sleeps.

The waiter talks to a fake `list_tasks` coroutine (no HTTP at all) that records
every request and answers from a script, so each test can say exactly which
TaskUIDs were asked for, and when.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import pytest
from conftest import EXACT_POLL
from trio.testing import MockClock

import picpik_async as picpik
from picpik_async._actions import ListTasksDetails
from picpik_async._models import (
    ListRunningTasksResponse,
    ListTasksDetailsResponse,
    TaskDetail,
)
from picpik_async._waiter import TaskWaiter

pytestmark = pytest.mark.anyio

#: No jitter: every poll time can be worked out by hand.
EXACT = EXACT_POLL

#: A parameter error (the service refusing the list), and a transient one.
REFUSED = picpik.APIError("TaskUIDList invalid", ret_code=160)
BUSY = picpik.APIError("service busy", ret_code=5, retryable=True)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Trio with a clock that jumps ahead whenever every task is asleep."""
    return "trio", {"clock": MockClock(autojump_threshold=0)}


def uids(count: int, prefix: str = "u") -> list[str]:
    """TaskUIDs u0, u1, ..."""
    return [f"{prefix}{i}" for i in range(count)]


#: A script answers one request: the details to return (missing UIDs left out) or an error.
Script = Callable[["Call"], Sequence[TaskDetail] | picpik.PicpikError]


@attrs.frozen
class Call:
    """One ListTasksDetails request the fake service saw."""

    at: float
    uids: tuple[str, ...]
    number: int


def running(call: Call) -> list[TaskDetail]:
    """Every asked task is still running."""
    return [TaskDetail(task_uid=uid, status="Running") for uid in call.uids]


def finish_at(when: dict[str, float], fallback: Script = running) -> Script:
    """Tasks finish (with one image) at the given times; other answers come from `fallback`."""

    def script(call: Call) -> Sequence[TaskDetail] | picpik.PicpikError:
        rest = fallback(call)
        if isinstance(rest, picpik.PicpikError):
            return rest
        return [
            TaskDetail(task_uid=d.task_uid, status="Finished", img_list=("https://img/x.png",))
            if call.at >= when.get(d.task_uid, float("inf"))
            else d
            for d in rest
        ]

    return script


@attrs.define
class FakeService:
    """A scripted ListTasksDetails: records each request, answers after `latency` seconds."""

    script: Script = running
    latency: float = 0.0
    calls: list[Call] = attrs.field(factory=list)

    async def __call__(self, request: ListTasksDetails) -> ListTasksDetailsResponse:
        call = Call(anyio.current_time(), request.task_uid_list, len(self.calls) + 1)
        self.calls.append(call)
        if self.latency:
            await anyio.sleep(self.latency)
        answer = self.script(call)
        if isinstance(answer, picpik.PicpikError):
            raise answer
        return ListTasksDetailsResponse(task_detail_list=tuple(answer))

    def times(self) -> list[float]:
        """When each request was sent."""
        return [call.at for call in self.calls]

    def lengths(self) -> list[int]:
        """How many TaskUIDs each request asked for."""
        return [len(call.uids) for call in self.calls]


@attrs.define
class FakeRunningList:
    """A scripted ListRunningTasks: `running(now)` says which TaskUIDs it lists."""

    running: Callable[[float], Sequence[str]]
    error: picpik.PicpikError | None = None
    calls: list[float] = attrs.field(factory=list)

    async def __call__(self) -> ListRunningTasksResponse:
        now = anyio.current_time()
        self.calls.append(now)
        if self.error is not None:
            raise self.error
        return ListRunningTasksResponse(task_uid_list=tuple(self.running(now)))


def until(when: dict[str, float]) -> Callable[[float], list[str]]:
    """A running list that shows each task until its finish time."""
    return lambda now: [uid for uid, done in when.items() if now < done]


@asynccontextmanager
async def open_waiter(
    service: FakeService,
    settings: picpik.PollSettings = EXACT,
    running_list: FakeRunningList | None = None,
) -> AsyncIterator[TaskWaiter]:
    """A TaskWaiter in its own task group, cancelled on the way out; a hang fails at once."""
    with anyio.fail_after(1_000_000):  # virtual seconds: a deadlock is a failure, not a hang
        async with anyio.create_task_group() as group:
            yield TaskWaiter(service, settings, group, running_list)
            group.cancel_scope.cancel()


async def wait_all(waiter: TaskWaiter, names: Sequence[str]) -> dict[str, object]:
    """Wait for every TaskUID at once; each one's detail or the error it raised."""
    outcomes: dict[str, object] = {}

    async def one(uid: str) -> None:
        try:
            outcomes[uid] = await waiter.wait(uid)
        except picpik.PicpikError as error:
            outcomes[uid] = error

    async with anyio.create_task_group() as group:
        for uid in names:
            group.start_soon(one, uid)
    return outcomes


async def test_the_clock_is_fake() -> None:
    """A day passes in no real time: the tests below never sleep for real."""
    await anyio.sleep(86_400)
    assert anyio.current_time() >= 86_400


class TestBatching:
    """Due TaskUIDs of every waiter go out together, in chunks of poll_batch_size."""

    async def test_due_uids_are_batched_into_chunks(self) -> None:
        """Seven tasks waited for at once: one round of requests of 3, 3 and 1 TaskUIDs."""
        service = FakeService(finish_at(dict.fromkeys(uids(7), 1.0)))
        async with open_waiter(service) as waiter:
            outcomes = await wait_all(waiter, uids(7))
        assert sorted(service.lengths()) == [1, 3, 3]
        assert service.times() == [1.0, 1.0, 1.0]
        assert sorted(uid for call in service.calls for uid in call.uids) == uids(7)
        assert all(isinstance(o, TaskDetail) for o in outcomes.values())

    async def test_the_grid_lets_close_submits_share_a_request(self) -> None:
        """Waits begun 0.1 s and 0.3 s in are both first due at 1.5 s: one request."""
        service = FakeService(finish_at({"a": 0.0, "b": 0.0}))
        settings = attrs.evolve(EXACT, poll_grid=0.5)
        async with open_waiter(service, settings) as waiter, anyio.create_task_group() as group:
            await anyio.sleep(0.1)
            group.start_soon(waiter.wait, "a")
            await anyio.sleep(0.2)
            group.start_soon(waiter.wait, "b")
        assert [(c.at, sorted(c.uids)) for c in service.calls] == [(1.5, ["a", "b"])]

    async def test_concurrency_is_capped(self) -> None:
        """No more than poll_concurrency requests are in flight at once."""
        service = FakeService(finish_at(dict.fromkeys(uids(10), 0.0)), latency=2.0)
        settings = attrs.evolve(EXACT, poll_batch_size=1, poll_concurrency=4)
        async with open_waiter(service, settings) as waiter:
            await wait_all(waiter, uids(10))
        assert service.times() == [1.0] * 4 + [3.0] * 4 + [5.0] * 2


class TestIntervals:
    """The first poll is poll_initial away; then intervals grow by poll_growth to poll_max."""

    async def test_intervals_grow_to_poll_max(self) -> None:
        """Polls at 1, 3, 7, 12, 17 s: intervals 2, 4, then capped at 5."""
        service = FakeService(finish_at({"u": 17.0}))
        async with open_waiter(service) as waiter:
            detail = await waiter.wait("u")
        assert service.times() == [1.0, 3.0, 7.0, 12.0, 17.0]
        assert detail.status == "Finished"

    async def test_jitter_stays_in_its_band(self) -> None:
        """With 50% jitter each interval is within 0.75x..1.25x of its nominal value."""
        service = FakeService(finish_at({"u": 30.0}))
        settings = attrs.evolve(EXACT, poll_jitter=0.5, poll_grid=0.01, poll_growth=1.0)
        async with open_waiter(service, settings) as waiter:
            await waiter.wait("u")
        gaps = [b - a for a, b in zip(service.times(), service.times()[1:], strict=False)]
        assert gaps
        assert all(0.75 - 0.011 <= gap <= 1.25 + 0.011 for gap in gaps)


class TestRefusedLists:
    """A list refused as a parameter error is halved; a single refused UID settles alone."""

    async def test_halving_and_remembering_the_smaller_size(self) -> None:
        """Lists over 2 refused: 6 -> 3+3 -> 1+2 each; later requests use the smaller size."""

        def short_lists_only(call: Call) -> Sequence[TaskDetail] | picpik.PicpikError:
            return REFUSED if len(call.uids) > 2 else running(call)

        service = FakeService(finish_at(dict.fromkeys(uids(6), 3.0), short_lists_only))
        settings = attrs.evolve(EXACT, poll_batch_size=6)
        async with open_waiter(service, settings) as waiter:
            outcomes = await wait_all(waiter, uids(6))
        first_round = [len(c.uids) for c in service.calls if c.at == 1.0]
        later = [len(c.uids) for c in service.calls if c.at > 1.0]
        assert first_round == [6, 3, 1, 2, 3, 1, 2]
        assert later == [1, 1, 1, 1, 1, 1]  # the size that worked: 3 was refused, so 1
        assert all(isinstance(o, TaskDetail) for o in outcomes.values())

    async def test_a_single_refused_uid_settles_alone(self) -> None:
        """The one TaskUID the service refuses fails with its error; the others finish."""

        def refuse_bad(call: Call) -> Sequence[TaskDetail] | picpik.PicpikError:
            return REFUSED if "bad" in call.uids else running(call)

        service = FakeService(finish_at({"good1": 3.0, "good2": 3.0}, refuse_bad))
        async with open_waiter(service) as waiter:
            outcomes = await wait_all(waiter, ["good1", "bad", "good2"])
        assert outcomes["bad"] is REFUSED
        assert isinstance(outcomes["good1"], TaskDetail)
        assert isinstance(outcomes["good2"], TaskDetail)
        assert not [c for c in service.calls if c.at > 1.0 and "bad" in c.uids]

    async def test_a_transient_failure_never_shrinks_the_batch(self) -> None:
        """A busy answer to a long list backs off; the list is asked again whole."""

        def busy_once(call: Call) -> Sequence[TaskDetail] | picpik.PicpikError:
            return BUSY if call.number == 1 else running(call)

        service = FakeService(finish_at(dict.fromkeys(uids(6), 2.0), busy_once))
        settings = attrs.evolve(EXACT, poll_batch_size=6)
        async with open_waiter(service, settings) as waiter:
            await wait_all(waiter, uids(6))
        assert service.lengths() == [6, 6]
        assert service.times() == [1.0, 2.0]  # after the poller-wide pause of poll_initial


class TestFailures:
    """A failed poll backs off the whole poller; max_failures in a row fail the waiters."""

    async def test_backoff_doubles_and_gives_up_after_max_failures(self) -> None:
        """Failures at 1, 2, 4 s (pauses of 1 and 2 s); the third one fails the waiter."""
        service = FakeService(lambda call: BUSY)
        async with open_waiter(service) as waiter:
            with pytest.raises(picpik.APIError) as caught:
                await waiter.wait("u")
        assert caught.value is BUSY
        assert service.times() == [1.0, 2.0, 4.0]

    async def test_backoff_is_shared_by_every_task(self) -> None:
        """While the poller is paused, tasks that fall due wait for the pause to end."""

        def fail_first(call: Call) -> Sequence[TaskDetail] | picpik.PicpikError:
            return BUSY if call.number <= 2 else running(call)

        service = FakeService(finish_at({"a": 0.0, "b": 0.0}, fail_first))
        settings = attrs.evolve(EXACT, poll_initial=1.0, poll_max=8.0)
        async with open_waiter(service, settings) as waiter, anyio.create_task_group() as group:
            group.start_soon(waiter.wait, "a")
            await anyio.sleep(1.5)  # b is first due at 2.5, inside a's pause (2 .. 4)
            group.start_soon(waiter.wait, "b")
        assert [(c.at, c.uids) for c in service.calls] == [
            (1.0, ("a",)),
            (2.0, ("a",)),
            (4.0, ("a", "b")),
        ]

    async def test_an_answer_ends_the_backoff(self) -> None:
        """After a good answer the next failure pauses for poll_initial again."""
        failing = {1, 2, 4}

        def script(call: Call) -> Sequence[TaskDetail] | picpik.PicpikError:
            return BUSY if call.number in failing else running(call)

        service = FakeService(finish_at({"u": 7.0}, script))
        settings = attrs.evolve(EXACT, max_failures=10)
        async with open_waiter(service, settings) as waiter:
            await waiter.wait("u")
        # fail 1 (pause 1), fail 2 (pause 2), answer at 4 (next in 2), fail at 6 (pause 1), 7
        assert service.times() == [1.0, 2.0, 4.0, 6.0, 7.0]

    async def test_garbled_answers_count_as_failures(self) -> None:
        """An answer about a TaskUID not asked for is a failed poll, retried after a pause."""

        def garbled_once(call: Call) -> Sequence[TaskDetail] | picpik.PicpikError:
            extra = [TaskDetail(task_uid="stranger", status="Running")] if call.number == 1 else []
            return [*running(call), *extra]

        service = FakeService(finish_at({"u": 2.0}, garbled_once))
        async with open_waiter(service) as waiter:
            await waiter.wait("u")
        assert service.times() == [1.0, 2.0]


class TestOutcomes:
    """Finished, failed and missing tasks end their waits; unknown words mean pending."""

    async def test_missing_task_after_max_misses(self) -> None:
        """A TaskUID missing from 3 answers in a row is TaskNotFoundError."""
        service = FakeService(lambda call: [])
        async with open_waiter(service) as waiter:
            with pytest.raises(picpik.TaskNotFoundError) as caught:
                await waiter.wait("gone")
        assert caught.value.task_uid == "gone"
        assert service.times() == [1.0, 2.0, 3.0]  # the interval does not grow while missing

    async def test_a_miss_then_an_answer_starts_counting_again(self) -> None:
        """Misses need to be in a row: an answer in between resets the count."""

        def gaps(call: Call) -> Sequence[TaskDetail] | picpik.PicpikError:
            return [] if call.number % 3 else running(call)

        service = FakeService(finish_at({"u": 20.0}, gaps))
        async with open_waiter(service) as waiter:
            detail = await waiter.wait("u")
        assert detail.status == "Finished"

    async def test_failed_task(self) -> None:
        """A failure word or an ErrorCode is TaskFailedError with the service's message."""

        def failed(call: Call) -> list[TaskDetail]:
            return [
                TaskDetail(task_uid=u, status="Failed", error_code=7, error_message="nsfw")
                for u in call.uids
            ]

        service = FakeService(failed)
        async with open_waiter(service) as waiter:
            with pytest.raises(picpik.TaskFailedError) as caught:
                await waiter.wait("u")
        assert (caught.value.error_code, caught.value.error_message) == (7, "nsfw")
        assert caught.value.status == "Failed"

    async def test_unknown_words_are_pending_and_logged_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An unknown status word means still going; it is logged once at INFO."""

        def mystery(call: Call) -> list[TaskDetail]:
            return [TaskDetail(task_uid=u, status="Mystery") for u in call.uids]

        service = FakeService(finish_at({"u": 12.0}, mystery))
        caplog.set_level(logging.INFO, logger="picpik_async")
        async with open_waiter(service) as waiter:
            await waiter.wait("u")
        lines = [r for r in caplog.records if "unknown task status" in r.getMessage()]
        assert len(service.calls) == 4
        assert len(lines) == 1

    async def test_waiters_of_one_uid_share_requests_and_the_result(self) -> None:
        """Three waiters of one TaskUID: one request per poll, the same detail for each."""
        service = FakeService(finish_at({"u": 3.0}))
        async with open_waiter(service) as waiter:
            results: list[TaskDetail] = []

            async def one() -> None:
                results.append(await waiter.wait("u"))

            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(one)
        assert [c.uids for c in service.calls] == [("u",), ("u",)]
        assert len(results) == 3
        assert len({id(r) for r in results}) == 1


class TestLeaving:
    """Timeouts, cancellation and close() end waits; nothing is sent while nobody waits."""

    async def test_timeout_bounds_only_that_waiter(self) -> None:
        """One waiter times out at 2 s; the other waiter of the same task gets the result."""
        service = FakeService(finish_at({"u": 7.0}))
        async with open_waiter(service) as waiter:
            patient: list[TaskDetail] = []

            async def wait_patiently() -> None:
                patient.append(await waiter.wait("u"))

            async with anyio.create_task_group() as group:
                group.start_soon(wait_patiently)
                with pytest.raises(picpik.TaskTimeoutError) as caught:
                    await waiter.wait("u", timeout=2.0)
                assert anyio.current_time() == 2.0
        assert (caught.value.task_uid, caught.value.timeout) == ("u", 2.0)
        assert [d.status for d in patient] == ["Finished"]
        assert service.times() == [1.0, 3.0, 7.0]

    async def test_a_timed_out_uid_is_no_longer_polled(self) -> None:
        """When its only waiter timed out, the TaskUID is dropped from the requests."""
        service = FakeService(finish_at({"b": 12.0}))
        async with open_waiter(service) as waiter, anyio.create_task_group() as group:
            group.start_soon(waiter.wait, "b")
            with pytest.raises(picpik.TaskTimeoutError):
                await waiter.wait("a", timeout=4.0)
        assert [c.uids for c in service.calls if c.at < 4.0] == [("a", "b"), ("a", "b")]
        assert [c.uids for c in service.calls if c.at > 4.0] == [("b",), ("b",)]

    async def test_cancellation_drops_the_uid(self) -> None:
        """A cancelled waiter's TaskUID is dropped when nobody else waits for it."""
        service = FakeService(finish_at({"keep": 12.0}))
        async with open_waiter(service) as waiter, anyio.create_task_group() as group:
            group.start_soon(waiter.wait, "keep")
            with anyio.move_on_after(2.0):
                await waiter.wait("drop")
            assert waiter.pending == 1
        assert all("drop" not in c.uids for c in service.calls if c.at > 2.0)
        assert [c.uids for c in service.calls][-1] == ("keep",)

    async def test_cancelling_one_of_two_waiters_keeps_the_uid(self) -> None:
        """The TaskUID stays polled while another waiter still waits for it."""
        service = FakeService(finish_at({"u": 7.0}))
        async with open_waiter(service) as waiter, anyio.create_task_group() as group:
            group.start_soon(waiter.wait, "u")
            with anyio.move_on_after(2.0):
                await waiter.wait("u")
        assert service.times() == [1.0, 3.0, 7.0]

    async def test_nothing_is_sent_while_nobody_waits(self) -> None:
        """Waiters cancelled before the first poll: not one request, even a day later."""
        service = FakeService()
        async with open_waiter(service) as waiter:
            with anyio.move_on_after(0.5):
                await wait_all(waiter, uids(5))
            await anyio.sleep(86_400)
            assert waiter.pending == 0
        assert service.calls == []

    async def test_nothing_is_sent_after_every_task_ended(self) -> None:
        """Once the last task finished, the poller sends nothing more."""
        service = FakeService(finish_at({"u": 3.0}))
        async with open_waiter(service) as waiter:
            await waiter.wait("u")
            await anyio.sleep(86_400)
        assert service.times() == [1.0, 3.0]

    async def test_cancelled_while_a_poll_is_queued(self) -> None:
        """A chunk still waiting for a poll slot when its waiters left is never sent."""
        service = FakeService(latency=5.0)
        settings = attrs.evolve(EXACT, poll_batch_size=1, poll_concurrency=1)
        async with open_waiter(service, settings) as waiter:
            with anyio.move_on_after(2.0):
                await wait_all(waiter, ["a", "b"])
            await anyio.sleep(100)
        assert len(service.calls) == 1

    async def test_close_settles_every_waiter(self) -> None:
        """close() ends every wait with ClientClosedError naming its task; no later polls."""
        service = FakeService()
        async with open_waiter(service) as waiter:
            async with anyio.create_task_group() as group:
                outcomes: dict[str, object] = {}

                async def collect() -> None:
                    outcomes.update(await wait_all(waiter, ["a", "b", "c"]))

                group.start_soon(collect)
                await anyio.sleep(3.5)
                waiter.close()
            sent = len(service.calls)
            await anyio.sleep(100)
            assert len(service.calls) == sent
            with pytest.raises(picpik.ClientClosedError):
                await waiter.wait("d")
        assert anyio.current_time() < 100 + 3.5 + 1
        assert set(outcomes) == {"a", "b", "c"}
        for uid, outcome in outcomes.items():
            assert isinstance(outcome, picpik.ClientClosedError)
            assert uid in str(outcome)

    async def test_a_bad_uid_is_refused_before_any_poll(self) -> None:
        """wait() checks the TaskUID first: nothing is registered, nothing is sent."""
        service = FakeService()
        async with open_waiter(service) as waiter:
            with pytest.raises(picpik.ValidationError):
                await waiter.wait("")
            await anyio.sleep(100)
            assert waiter.pending == 0
        assert service.calls == []


class TestOnUpdate:
    """on_update sees every pending detail; what it raises is logged and goes no further."""

    async def test_on_update_sees_each_pending_detail(self) -> None:
        """Each poll that finds the task still going calls on_update once."""
        seen: list[tuple[float, str]] = []
        service = FakeService(finish_at({"u": 7.0}))
        async with open_waiter(service) as waiter:
            await waiter.wait(
                "u", on_update=lambda d: seen.append((anyio.current_time(), d.status))
            )
        assert seen == [(1.0, "Running"), (3.0, "Running")]

    async def test_a_raising_on_update_is_logged_and_isolated(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One waiter's callback raises: logged with its TaskUID; every wait still finishes."""

        def explode(detail: TaskDetail) -> None:
            raise RuntimeError("callback bug")

        calm: list[str] = []
        service = FakeService(finish_at({"u": 3.0, "v": 3.0}))
        caplog.set_level(logging.WARNING, logger="picpik_async")
        async with open_waiter(service) as waiter:
            results: list[TaskDetail] = []

            async def one(uid: str, hook: Callable[[TaskDetail], object]) -> None:
                results.append(await waiter.wait(uid, on_update=hook))

            async with anyio.create_task_group() as group:
                group.start_soon(one, "u", explode)
                group.start_soon(one, "u", lambda d: calm.append(d.task_uid))
                group.start_soon(one, "v", lambda d: calm.append(d.task_uid))
        assert sorted(r.task_uid for r in results) == ["u", "u", "v"]
        assert sorted(calm) == ["u", "v"]
        warnings = [r for r in caplog.records if "on_update" in r.getMessage()]
        assert len(warnings) == 1
        assert "u" in warnings[0].getMessage()
        assert warnings[0].exc_info is not None


#: The running-set defaults, with the per-task schedule of EXACT behind them.
LISTED = attrs.evolve(EXACT, poll_batch_size=100, running_grace=1.0, running_retry=100.0)
#: As LISTED, with a batch so small that a list of two tasks is asked with ListRunningTasks.
LISTED_SMALL_BATCH = attrs.evolve(LISTED, poll_batch_size=1)


class TestRunningSet:
    """One ListRunningTasks per tick; ListTasksDetails only for tasks that left the list."""

    async def test_a_thousand_tasks_cost_ticks_and_one_fetch_each(self) -> None:
        """1,000 tasks done between 3.0 and 3.9 s: 9 ticks, each task asked for once."""
        done = {uid: 3.0 + (i % 10) * 0.1 for i, uid in enumerate(uids(1000))}
        service = FakeService(finish_at(done))
        running_list = FakeRunningList(until(done))
        async with open_waiter(service, LISTED, running_list) as waiter:
            outcomes = await wait_all(waiter, uids(1000))
        assert all(isinstance(o, TaskDetail) for o in outcomes.values())
        # The first tick was planned for one task (half the interval), the rest for 1,000.
        assert running_list.calls == [0.25 + 0.5 * k for k in range(9)]
        asked = [uid for call in service.calls for uid in call.uids]
        assert sorted(asked) == sorted(uids(1000))  # once each
        assert len(service.calls) == 10  # 100 a request, right after the ticks at 3.25-4.25 s

    async def test_a_result_comes_one_tick_after_the_task_is_done(self) -> None:
        """One task fits one details request: that request is the tick, every 0.25 s."""
        service = FakeService(finish_at({"u": 2.3}))
        running_list = FakeRunningList(until({"u": 2.3}))
        async with open_waiter(service, LISTED, running_list) as waiter:
            await waiter.wait("u")
            assert anyio.current_time() == 2.5
        assert service.times() == [0.25 * k for k in range(1, 11)]
        assert running_list.calls == []

    async def test_a_refused_list_falls_back_and_is_retried_later(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """RetCode 161: logged once at INFO, per-task polls; the list is tried again later."""
        caplog.set_level(logging.INFO, logger="picpik_async")
        done = {"a": 3.0, "a2": 3.0, "b": 200.6, "b2": 200.6}
        service = FakeService(finish_at(done))
        refused = picpik.APIError("no", ret_code=161)
        running_list = FakeRunningList(until(done), error=refused)
        async with open_waiter(service, LISTED_SMALL_BATCH, running_list) as waiter:
            await wait_all(waiter, ["a", "a2"])
            assert running_list.calls == [0.25]
            assert service.times() == [1.0, 1.0, 3.0, 3.0]  # the per-task schedule
            running_list.error = None
            await anyio.sleep(200.0 - anyio.current_time())
            await wait_all(waiter, ["b", "b2"])
        assert running_list.calls[1:] == [200.25, 200.5, 200.75]  # in use again after the pause
        assert service.times()[4:] == [200.75, 200.75]
        off = [r for r in caplog.records if "own schedule" in r.getMessage()]
        assert [r.levelname for r in off] == ["INFO"]

    async def test_on_update_gets_every_pending_detail(self) -> None:
        """A waiter with on_update is polled on its own schedule: it sees the pending details."""
        service = FakeService(finish_at({"u": 3.5}))
        running_list = FakeRunningList(until({"u": 3.5}))
        seen: list[float] = []
        async with open_waiter(service, LISTED, running_list) as waiter:
            await waiter.wait("u", on_update=lambda d: seen.append(anyio.current_time()))
        assert seen == [1.0, 3.0]
        assert running_list.calls == []


class TestLongTasks:
    """Issue 13's long-task scenario on the fake clock, with the default PollSettings."""

    @staticmethod
    async def burst(n: int, low: float, high: float) -> tuple[float, list[float]]:
        """`n` tasks submitted over n / 230 s (a burst's pace), each taking low-high s:
        the status requests per task, and every task's lag, sorted."""
        rng = random.Random(13)
        starts = {f"u{i}": i / 230 for i in range(n)}
        done = {uid: start + rng.uniform(low, high) for uid, start in starts.items()}
        service = FakeService(finish_at(done), latency=0.02)
        running_list = FakeRunningList(until(done))
        lags: list[float] = []

        async def one(waiter: TaskWaiter, uid: str) -> None:
            await anyio.sleep(starts[uid])
            await waiter.wait(uid)
            lags.append(anyio.current_time() - done[uid])

        settings = picpik.PollSettings()
        async with (
            open_waiter(service, settings, running_list) as waiter,
            anyio.create_task_group() as group,
        ):
            for uid in starts:
                group.start_soon(one, waiter, uid)
        return (len(service.calls) + len(running_list.calls)) / n, sorted(lags)

    async def test_long_tasks_cost_few_requests(self) -> None:
        """1,000 tasks of 8-16 s: at most 0.05 status requests a task, p95 lag 0.7 s."""
        per_task, lags = await self.burst(1000, 8.0, 16.0)
        assert per_task <= 0.05
        assert lags[949] <= 0.7

    async def test_short_tasks_stay_prompt(self) -> None:
        """1,000 tasks of 3 s +-10%: at most 0.03 status requests a task, p95 lag 0.55 s."""
        per_task, lags = await self.burst(1000, 2.7, 3.3)
        assert per_task <= 0.03
        assert lags[949] <= 0.55
