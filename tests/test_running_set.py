"""Running-set polling against the emulator, and each way its ListRunningTasks may bend.

PICPIK does not say whether queued tasks are "running", how fresh the list is, or
whether every account may call it (docs/protocol.md, "ListRunningTasks"): the
emulator's `RunningList` knobs play each variant, and every generate() must still
come back right, once, with no task created twice.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import attrs
import pytest
from conftest import FAST_POLL, make_client, status_requests
from hostile import HostileServer, Received, Reply, Script, envelope

import picpik_async as picpik
from picpik_async.testing import Emulator, Faults, RunningList, Trigger

pytestmark = pytest.mark.anyio

RUNNING = "ListRunningTasks"
DETAILS = "ListTasksDetails"
#: Lists of 5: more tasks than that are watched through ListRunningTasks, not a details tick.
LIST_POLL = attrs.evolve(FAST_POLL, poll_batch_size=5)


async def generate_all(emulator: Emulator, count: int, **options: Any) -> list[object]:
    """`count` generate() calls at once; each one's result or error."""
    outcomes: list[object] = []

    async def one(client: picpik.AsyncClient, i: int) -> None:
        try:
            outcomes.append(await client.generate(f"p{i}", width=64, height=64))
        except picpik.PicpikError as error:
            outcomes.append(error)

    options.setdefault("poll", LIST_POLL)
    async with make_client(emulator, **options) as client, anyio.create_task_group() as group:
        for i in range(count):
            group.start_soon(one, client, i)
    return outcomes


def all_fine(outcomes: list[object], emulator: Emulator, count: int) -> None:
    """Every prompt has its result and created exactly one task."""
    assert len(outcomes) == count
    assert all(isinstance(o, picpik.GenerationResult) for o in outcomes), outcomes[:3]
    assert emulator.counters.tasks_created == count
    assert emulator.counters.duplicate_tasks() == {}


def off_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The log lines that say the running list was set aside."""
    return [r for r in caplog.records if "own schedule" in r.getMessage()]


async def test_each_task_is_fetched_once_after_it_leaves_the_list() -> None:
    """The honest list: ticks and one detail fetch per task, no per-task polling."""
    emulator = Emulator(latency=0.3, seed=1)
    outcomes = await generate_all(emulator, 60)
    all_fine(outcomes, emulator, 60)
    assert sum(emulator.counters.list_lengths) == 60  # each TaskUID asked for once
    assert emulator.counters.requests[RUNNING] > 0
    assert status_requests(emulator) < 60


async def test_few_tasks_are_asked_for_in_one_details_request_a_tick() -> None:
    """All pending tasks fit in one ListTasksDetails: that is the tick, no ListRunningTasks."""
    emulator = Emulator(latency=0.3, seed=9)
    outcomes = await generate_all(emulator, 20, poll=FAST_POLL)
    all_fine(outcomes, emulator, 20)
    assert emulator.counters.requests[RUNNING] == 0
    assert emulator.counters.requests[DETAILS] <= 0.6 / FAST_POLL.running_interval * 2 + 2


async def test_a_refused_list_is_set_aside(caplog: pytest.LogCaptureFixture) -> None:
    """RetCode 161 to ListRunningTasks: asked once, one INFO line, tasks polled on their own."""
    caplog.set_level(logging.INFO, logger="picpik_async")
    emulator = Emulator(latency=0.3, seed=2, faults=Faults(running_list=RunningList(refused=True)))
    outcomes = await generate_all(emulator, 30)
    all_fine(outcomes, emulator, 30)
    assert emulator.counters.requests[RUNNING] == 1
    assert [r.levelname for r in off_lines(caplog)] == ["INFO"]


async def test_a_failing_list_is_set_aside(caplog: pytest.LogCaptureFixture) -> None:
    """ListRunningTasks always busy: after its retries, the tasks are polled on their own."""
    caplog.set_level(logging.INFO, logger="picpik_async")
    faults = Faults(busy=Trigger(rate=1.0, actions={RUNNING}))
    emulator = Emulator(latency=0.3, seed=3, faults=faults)
    outcomes = await generate_all(emulator, 30)
    all_fine(outcomes, emulator, 30)
    assert len(off_lines(caplog)) == 1


async def test_a_list_without_queued_tasks(caplog: pytest.LogCaptureFixture) -> None:
    """Queued tasks left out: they look gone, their details say pending, polled on their own;
    with most tasks like that, the list is set aside."""
    caplog.set_level(logging.INFO, logger="picpik_async")
    faults = Faults(running_list=RunningList(omits_queued=True))
    emulator = Emulator(latency=0.4, queue_share=0.6, seed=4, faults=faults)
    outcomes = await generate_all(emulator, 30)
    all_fine(outcomes, emulator, 30)
    assert any("too early" in r.getMessage() for r in off_lines(caplog))


async def test_a_list_that_drops_tasks_early() -> None:
    """Tasks leave the list before they are over: fetched, still pending, finished later.

    They leave 0.6 s early, six ticks: a loaded machine that delays ticks still sees
    some of them gone and pending (with 0.2 s, under load, a late tick saw none)."""
    faults = Faults(running_list=RunningList(drops_early=0.6))
    emulator = Emulator(latency=0.8, seed=5, faults=faults)
    outcomes = await generate_all(emulator, 20)
    all_fine(outcomes, emulator, 20)
    assert sum(emulator.counters.list_lengths) > 20  # the early leavers were asked again


async def test_a_lagging_list() -> None:
    """Tasks stay listed after they are over: later, never wrong."""
    faults = Faults(running_list=RunningList(lags=0.3))
    emulator = Emulator(latency=0.2, seed=6, faults=faults)
    outcomes = await generate_all(emulator, 20)
    all_fine(outcomes, emulator, 20)
    assert sum(emulator.counters.list_lengths) == 20


async def test_other_processes_tasks_are_ignored() -> None:
    """Tasks of the same account made elsewhere are in the list; nobody here asks about them."""
    emulator = Emulator(latency=30.0, seed=7)
    async with make_client(emulator) as elsewhere:
        others = [await elsewhere.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
                  for _ in range(5)]  # fmt: skip
    emulator.state.latency = 0.2
    outcomes = await generate_all(emulator, 10)
    results = [o for o in outcomes if isinstance(o, picpik.GenerationResult)]
    assert len(results) == 10
    assert sum(emulator.counters.list_lengths) == 10  # only our own tasks were asked for
    assert {h.task_uid for h in others}.isdisjoint(r.task_uid for r in results)


async def test_running_set_false_is_todays_schedule() -> None:
    """`PollSettings(running_set=False)`: no ListRunningTasks at all."""
    emulator = Emulator(latency=0.2, seed=8)
    poll = picpik.PollSettings(poll_initial=0.05, poll_max=0.2, poll_grid=0.05, running_set=False)
    outcomes = await generate_all(emulator, 20, poll=poll)
    all_fine(outcomes, emulator, 20)
    assert emulator.counters.requests[RUNNING] == 0


def test_fast_poll_is_the_running_set_default() -> None:
    """The suite's poll settings keep the default mode, only faster."""
    assert FAST_POLL.running_set


# --- a hostile ListRunningTasks, over a real socket ----------------------------------


def lying_list(answer: Reply) -> Script:
    """Submits get TaskUIDs t0, t1, ...; details say finished; the list answers `answer`."""
    made: list[str] = []

    def script(request: Received) -> Reply:
        if request.action == RUNNING:
            return answer
        if request.action == DETAILS:
            asked = request.params["TaskUIDList"]
            return envelope(TaskDetailList=[
                {"TaskUID": uid, "Status": "Finished", "ImgList": ["http://127.0.0.1:9/x.png"]}
                for uid in asked
            ])  # fmt: skip
        made.append(f"t{len(made)}")
        return envelope(TaskUID=made[-1])

    return script


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(envelope(TaskUIDList="t0"), id="a-string"),
        pytest.param(envelope(TaskUIDList=["../../etc/passwd"]), id="a-bad-taskuid"),
        pytest.param(envelope(), id="no-list"),
        pytest.param(Reply(body=b"<html>"), id="html"),
        pytest.param(envelope(TaskUIDList=[f"x{i}" for i in range(50_000)]), id="50k-others"),
    ],
)
async def test_a_garbled_running_list_is_set_aside(answer: Reply) -> None:
    """Whatever the list answers, every generate() finishes, once, within a bounded time."""
    with HostileServer(lying_list(answer)) as server:
        client = picpik.AsyncClient(
            public_key="p",
            private_key="s",
            base_url=server.url,
            retry=picpik.RetryPolicy(max_attempts=2, backoff_initial=0.01, backoff_max=0.02),
            poll=FAST_POLL,
        )
        with anyio.fail_after(20):
            async with client:
                results = [await client.generate(f"p{i}") for i in range(3)]
        assert [r.task_uid for r in results] == ["t0", "t1", "t2"]
        assert server.count("GenerateImagesSDXL") == 3
