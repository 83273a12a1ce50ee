"""Past one machine: the PostgreSQL ledger, Procrastinate jobs, and killed workers.

Procrastinate and psycopg's async API are asyncio's, so this module runs on
asyncio only. The PostgreSQL tests start their own server (tests/_postgres.py).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import test_ledger
from conftest import QUICK_CLI, make_client
from procrastinate.testing import InMemoryConnector

from picpik_async import LedgerError
from picpik_async._batch import BatchProgress, Worker
from picpik_async._distributed import (
    Process,
    ServeSettings,
    defer_run,
    make_app,
    queue_of,
    recover_stalled,
    serve,
)
from picpik_async._ledger import NewRow
from picpik_async._ledger_stores import LEDGER_NAME, Ledger, PostgresLedger, SqliteLedger
from picpik_async.testing import Emulator, EmulatorServer

RUN = "cats-00000000"


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only: Procrastinate and psycopg's async API need it."""
    return "asyncio"


class TestPostgresStore(test_ledger.TestSqliteStore):
    """Every test of the SQLite store, on PostgreSQL."""

    @pytest.fixture
    async def ledger(self, postgres_url: str) -> AsyncIterator[Ledger]:
        store = await PostgresLedger.open(postgres_url)
        try:
            yield store
        finally:
            await store.aclose()

    async def test_the_file_is_in_wal_mode(self, ledger: Ledger, tmp_path: Path) -> None:
        """SQLite's only; here: the schema is applied once, whoever opens first."""
        again = await PostgresLedger.open(ledger.url)
        await again.aclose()
        assert await ledger.summaries() == []


@pytest.mark.anyio
async def test_claims_from_many_connections_never_collide(postgres_url: str) -> None:
    """Four stores (four machines) race for 40 rows: each row is claimed exactly once."""
    stores = [await PostgresLedger.open(postgres_url) for _ in range(4)]
    await stores[0].add_run(RUN, [NewRow(f"k{i}", f"p{i}") for i in range(40)])
    won: Counter[str] = Counter()

    async def machine(store: Ledger, name: str) -> None:
        for i in range(40):
            result = await store.claim(RUN, f"k{i}", request_uuid=f"{name}-{i}", worker=name)
            if result.outcome == "claimed":
                won[f"k{i}"] += 1

    async with anyio.create_task_group() as group:
        for n, store in enumerate(stores):
            group.start_soon(machine, store, f"m{n}")
    for store in stores:
        await store.aclose()
    assert won == Counter({f"k{i}": 1 for i in range(40)})


@pytest.mark.anyio
async def test_a_budget_is_shared_by_every_machine(postgres_url: str) -> None:
    """Three machines claim under one budget of 10 (price 1 known): exactly 10 claims."""
    stores = [await PostgresLedger.open(postgres_url) for _ in range(3)]
    rows = [NewRow(f"k{i}", f"p{i}", {"width": 64, "height": 64}) for i in range(30)]
    await stores[0].add_run(RUN, rows, max_credits=10)
    await stores[0].run(_learn_price(64 * 64, 1))
    outcomes: Counter[str] = Counter()

    async def machine(store: Ledger, offset: int) -> None:
        for i in range(offset, 30, 3):
            outcomes[(await store.claim(RUN, f"k{i}", request_uuid="u", worker="w")).outcome] += 1

    async with anyio.create_task_group() as group:
        for n, store in enumerate(stores):
            group.start_soon(machine, store, n)
    for store in stores:
        await store.aclose()
    assert outcomes["claimed"] == 10
    assert outcomes["wait"] == 20  # the claimed ones are in flight: the rest wait for them


def _learn_price(pixels: int, credits: int) -> Any:
    from picpik_async._ledger import Query

    yield Query(
        "INSERT INTO picpik_prices (pixels, per_image) VALUES (:p, :c)", {"p": pixels, "c": credits}
    )


@pytest.mark.anyio
async def test_a_job_run_again_after_its_worker_died(tmp_path: Path) -> None:
    """In-memory queue, SQLite ledger: a chunk whose first worker died mid-way is done by
    another: finished rows skipped, the submitted one waited for, the claimed one unknown."""
    emulator = Emulator(latency=0.05, seed=4)
    ledger = await SqliteLedger.open(tmp_path / LEDGER_NAME)
    rows = [NewRow(f"k{i}", f"p{i}", {"width": 64, "height": 64}) for i in range(12)]
    await ledger.add_run(RUN, rows)
    app = make_app(InMemoryConnector())
    async with make_client(emulator) as client, app.open_async():
        # What the dead worker left: k0 finished, k1 submitted, k2 claimed (answer never seen).
        for key in ("k0", "k1", "k2"):
            await ledger.claim(RUN, key, request_uuid=f"u-{key}", worker="dead")
        k1 = await client.submit(test_ledger._sdxl("p1"), request_uuid="u-k1")
        await ledger.submitted(RUN, "k1", k1.task_uid)
        await ledger.submitted(RUN, "k0", "T-k0")
        await ledger.settle(RUN, "k0", "finished", files=["T-k0-0.png"], credits=1)
        assert await defer_run(app, RUN, await ledger.rows(RUN), job_size=5) == 3
        worker = Worker(client, ledger, tmp_path, progress=BatchProgress(total=0))
        process = Process(worker, anyio.Semaphore(4))

        async def finished() -> bool:
            return (await ledger.run_state(RUN))[0] == 0

        settings = ServeSettings(queues=[queue_of(RUN)], check_every=0.05)
        with anyio.fail_after(30):
            await serve(app, process, settings, finished=finished)
    states = {row.key: row.state for row in await ledger.rows(RUN)}
    await ledger.aclose()
    assert states.pop("k2") == "unknown"
    assert set(states.values()) == {"finished"}
    assert emulator.counters.tasks_created == 10  # k1 once (before), and k3..k11
    assert emulator.counters.duplicate_tasks() == {}
    assert (worker.progress.submitted, worker.progress.unknown) == (9, 1)


@pytest.mark.anyio
async def test_stalled_jobs_go_back_to_the_queue() -> None:
    """A job held by a worker with no heartbeat is retried; a live worker's is not."""
    connector = InMemoryConnector()
    app = make_app(connector)
    async with app.open_async():
        await defer_run(app, RUN, [], job_size=5)  # nothing to defer
        job_id = await app.configure_task("picpik.batch_chunk", queue=queue_of(RUN)).defer_async(
            run_id=RUN, keys=["k0"]
        )
        worker_id = await app.job_manager.register_worker()
        connector.jobs[job_id].update(status="doing", worker_id=worker_id)
        assert await recover_stalled(app, stalled_after=60) == 0
        connector.workers[worker_id] = connector.workers[worker_id].replace(year=2000)
        assert await recover_stalled(app, stalled_after=60) == 1
        assert connector.jobs[job_id]["status"] == "todo"


# --- whole runs, in processes ---------------------------------------------------------


def _env(server: EmulatorServer, ledger: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICPIK_")}
    env.update(
        PICPIK_PUBLIC_KEY=server.emulator.public_key,
        PICPIK_PRIVATE_KEY=server.emulator.private_key,
        PICPIK_BASE_URL=server.url,
        PICPIK_LEDGER=ledger,
    )
    return env


def _picpik(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    """`picpik ARGS` on test timings (polls from 0.1 s, a dead worker's jobs back after
    3 s): these runs check counts and outcomes, not the default timings."""
    return subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, QUICK_CLI, *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs,
    )  # fmt: skip


def _wait_for_jobs(url: str, batch: subprocess.Popen[str]) -> None:
    """Wait until `picpik batch` has queued its jobs: a worker started before that may
    find every queue empty and leave (`--until-done`)."""
    import psycopg

    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as connection:
        while batch.poll() is None and time.monotonic() < deadline:
            try:
                row = connection.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
            except psycopg.errors.UndefinedTable:  # the batch has not applied the schema yet
                row = None
            if row is not None and row[0] > 0:
                return
            time.sleep(0.05)
    raise AssertionError("picpik batch queued no job")


def _runs(env: dict[str, str]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "picpik_async.cli", "runs", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.fixture
def served() -> Iterator[EmulatorServer]:
    with EmulatorServer(latency=0.1, seed=11) as server:
        yield server


def _wait_for_lines(process: subprocess.Popen[str], marker: str, count: int) -> list[str]:
    """Read `process`'s output until `count` lines contain `marker`."""
    assert process.stdout is not None
    seen: list[str] = []
    while sum(marker in line for line in seen) < count:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
    return seen


@pytest.mark.slow
def test_a_killed_worker_costs_nothing_twice(
    tmp_path: Path, postgres_url: str, served: EmulatorServer
) -> None:
    """300 prompts, `picpik batch` and two `picpik worker --until-done`; one worker is
    killed with SIGKILL mid-run. Every prompt ends finished, failed or unknown (unknown:
    at most the killed worker's in-flight submits), no prompt is created twice, and the
    ledger's credits are the emulator's."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"prompt number {i}" for i in range(300)), encoding="utf-8")
    env = _env(served, postgres_url)
    batch_args = ["batch", str(prompts), "--out", str(tmp_path / "b"), "--width", "64",
                  "--height", "64", "--job-size", "10"]  # fmt: skip
    batch = _picpik(*batch_args, env=env)
    _wait_for_jobs(postgres_url, batch)
    worker_args = ["--until-done", "--concurrency", "8"]
    survivor = _picpik("worker", "--out", str(tmp_path / "w1"), *worker_args, env=env)
    victim = _picpik("worker", "--out", str(tmp_path / "w2"), *worker_args, env=env)
    _wait_for_lines(victim, "finished:", 10)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL  # killed mid-run, not already done
    output, _ = batch.communicate(timeout=240)
    survivor.communicate(timeout=240)
    if batch.returncode != 0:  # the issue allows a re-run of the same command
        rerun = _picpik(*batch_args, env=env)
        output, _ = rerun.communicate(timeout=240)
    (run,) = _runs(env)
    tasks = list(served.emulator.state.tasks.values())
    assert max(Counter(task.prompt for task in tasks).values()) == 1  # none submitted twice
    assert run["total"] == 300, output
    assert run["pending"] == 0, output
    assert run["finished"] + run["failed"] + run["unknown"] == 300
    assert run["unknown"] <= 8  # the killed worker's in-flight submits at most
    assert run["finished"] >= 292
    # The ledger's credits are the emulator's, but for the tasks the unknown outcomes
    # made: the ledger never saw those (the emulator knows them by request_uuid).
    unknown = _unknown_request_uuids(postgres_url)
    assert len(unknown) == run["unknown"]
    unseen = sum(task.cost for task in tasks if task.request_uuid in unknown)
    assert run["credits"] + unseen == served.emulator.state.credits.used


def _unknown_request_uuids(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT request_uuid FROM picpik_rows WHERE state = 'unknown'"
        ).fetchall()
    return {uuid for (uuid,) in rows}


@pytest.mark.slow
def test_a_distributed_budget(tmp_path: Path, postgres_url: str, served: EmulatorServer) -> None:
    """100 prompts of one credit, --max-credits 40, `picpik batch` and one worker: at most
    40 credits spent, at least 30 finished, exit code non-zero."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(f"budget {i}" for i in range(100)), encoding="utf-8")
    env = _env(served, postgres_url)
    args = ["--width", "64", "--height", "64", "--job-size", "10", "--max-credits", "40"]
    batch = _picpik("batch", str(prompts), "--out", str(tmp_path / "b"), *args, env=env)
    _wait_for_jobs(postgres_url, batch)
    worker = _picpik("worker", "--out", str(tmp_path / "w"), "--until-done", env=env)
    output, _ = batch.communicate(timeout=240)
    worker.communicate(timeout=240)
    (run,) = _runs(env)
    assert batch.returncode == 1, output
    assert served.emulator.state.credits.used <= 40
    assert run["finished"] >= 30
    assert run["credits"] == served.emulator.state.credits.used
    assert "unsent (credit budget spent)" in output


def test_worker_refuses_a_sqlite_ledger(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "picpik_async.cli", "worker", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--ledger postgresql://" in done.stderr


@pytest.mark.anyio
async def test_a_stopped_worker_gives_its_rows_back(tmp_path: Path) -> None:
    """Ctrl-C on a worker: it takes no new job, and what it did not finish is queued again
    (a job that stopped early must not count as done for its rows)."""
    emulator = Emulator(latency=1.0, seed=8)
    ledger = await SqliteLedger.open(tmp_path / LEDGER_NAME)
    await ledger.add_run(RUN, [NewRow(f"k{i}", f"p{i}", {"width": 64, "height": 64})
                               for i in range(12)])  # fmt: skip
    connector = InMemoryConnector()
    app = make_app(connector)
    async with make_client(emulator) as client, app.open_async():
        await defer_run(app, RUN, await ledger.rows(RUN), job_size=4)
        worker = Worker(client, ledger, tmp_path, progress=BatchProgress(total=0))
        process = Process(worker, anyio.Semaphore(2))

        async def never() -> bool:
            return False

        settings = ServeSettings(queues=[queue_of(RUN)], jobs=1, check_every=0.05)
        async with anyio.create_task_group() as group:
            group.start_soon(functools.partial(serve, app, process, settings, finished=never))
            await anyio.sleep(0.3)
            worker.stop.set()
    rows = {row.key: row.state for row in await ledger.rows(RUN)}
    await ledger.aclose()
    queued = {key for job in connector.jobs.values() if job["status"] == "todo"
              for key in job["args"]["keys"]}  # fmt: skip
    undone = {key for key, state in rows.items() if state != "finished"}
    assert undone  # the stop came mid-run
    assert undone <= queued  # every one of them has a job again


@pytest.mark.anyio
async def test_budget_waits_give_the_job_slot_back(tmp_path: Path) -> None:
    """The budget is held by a row whose job comes last; the jobs before it must not hold
    the only job slot waiting for that budget (they give their rows back)."""
    emulator = Emulator(latency=0.05, seed=9)
    ledger = await SqliteLedger.open(tmp_path / LEDGER_NAME)
    rows = [NewRow(f"k{i}", f"p{i}", {"width": 64, "height": 64}) for i in range(5)]
    await ledger.add_run(RUN, rows, max_credits=2)
    app = make_app(InMemoryConnector())
    async with make_client(emulator) as client, app.open_async():
        # k0 was sent by a worker that died: it holds the whole budget (no price known yet).
        handle = await client.submit(test_ledger._sdxl("p0"), request_uuid="u0")
        await ledger.claim(RUN, "k0", request_uuid="u0", worker="dead")
        await ledger.submitted(RUN, "k0", handle.task_uid)
        ordered = sorted(await ledger.rows(RUN), key=lambda r: r.key == "k0")  # k0's job last
        await defer_run(app, RUN, ordered, job_size=2)
        worker = Worker(client, ledger, tmp_path, progress=BatchProgress(total=0),
                        defer_on_budget=True)  # fmt: skip
        process = Process(worker, anyio.Semaphore(4))

        async def over() -> bool:
            return (await ledger.run_state(RUN))[0] == 0

        settings = ServeSettings(queues=[queue_of(RUN)], jobs=1, check_every=0.05)
        with anyio.fail_after(30):
            await serve(app, process, settings, finished=over)
    states = [row.state for row in await ledger.rows(RUN)]
    await ledger.aclose()
    assert states.count("finished") == 2  # k0, then one more: 1 credit each, 2 in all
    assert emulator.state.credits.used == 2


@pytest.mark.anyio
async def test_two_processes_recovering_one_stalled_job() -> None:
    """Both see the job stalled; the second hand-back is not an error."""
    connector = InMemoryConnector()
    app = make_app(connector)
    async with app.open_async():
        job_id = await app.configure_task("picpik.batch_chunk", queue=queue_of(RUN)).defer_async(
            run_id=RUN, keys=["k0"]
        )
        worker_id = await app.job_manager.register_worker()
        connector.jobs[job_id].update(status="doing", worker_id=worker_id)
        connector.workers[worker_id] = connector.workers[worker_id].replace(year=2000)
        stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=60))
        await app.job_manager.retry_job(stalled[0])
        connector.jobs[job_id].update(status="doing")  # as if listed before the first retry
        assert await recover_stalled(app, stalled_after=60) >= 0


class _OneBadRow(SqliteLedger):
    async def claim(self, run_id: str, key: str, **kwargs: Any) -> Any:
        if key == "k1":
            raise LedgerError("could not obtain a connection in 30 s")
        return await super().claim(run_id, key, **kwargs)


@pytest.mark.anyio
async def test_one_rows_trouble_does_not_cancel_its_siblings(tmp_path: Path) -> None:
    emulator = Emulator(latency=0.05)
    ledger = await _OneBadRow.open(tmp_path / LEDGER_NAME)
    await ledger.add_run(RUN, [NewRow(f"k{i}", f"p{i}", {"width": 64, "height": 64})
                               for i in range(4)])  # fmt: skip
    async with make_client(emulator) as client:
        process = Process(Worker(client, ledger, tmp_path), anyio.Semaphore(4))
        later = await process.do_chunk(RUN, ["k0", "k1", "k2", "k3"])
    states = [row.state for row in await ledger.rows(RUN)]
    await ledger.aclose()
    assert later == ["k1"]
    assert states == ["finished", "new", "finished", "finished"]
