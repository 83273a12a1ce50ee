"""Batch runs over many machines: a PostgreSQL ledger, and chunks of rows as Procrastinate jobs.

I/O; needs the ``postgres`` extra and asyncio (Procrastinate and psycopg's
async API are asyncio's). `picpik batch --ledger postgresql://...` adds the
run's rows, defers one job per `job_size` rows on the run's queue and works on
it; `picpik worker` works on every run's jobs. Each process has one
`AsyncClient` and one ledger, shared by all the jobs it runs, so its polling
stays batched (docs/architecture.md, "Past one machine").

Procrastinate runs a job at least once: a worker that stops sending
heartbeats has its jobs handed to another (`recover_stalled`). That is safe
because a job does not own its rows, the ledger does: a job claims each row
right before its submit, finished rows are skipped, submitted rows are waited
for by TaskUID, and rows a dead worker had claimed become unknown.

Example:
    >>> # async with open_app(url) as app:
    >>> #     await defer_run(app, "cats-1a2b3c4d", rows, job_size=50)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
from attrs import define

from ._batch import BatchItem, BatchProgress, Listener, Worker, new_rows
from ._client import AsyncClient
from ._errors import PicpikError
from ._ledger import TERMINAL, Row
from ._ledger_stores import Ledger

__all__ = ["defer_run", "make_app", "open_app", "queue_of", "run_distributed", "serve"]

logger = logging.getLogger("picpik_async.distributed")

TASK_NAME: Final = "picpik.batch_chunk"
#: The key of the advisory lock under which the first process applies Procrastinate's schema.
_SCHEMA_LOCK: Final = 7346502


def queue_of(run_id: str) -> str:
    """The Procrastinate queue of a run's jobs: ``picpik.<run id>``.

    Example:
        >>> queue_of("cats-1a2b3c4d")
        'picpik.cats-1a2b3c4d'
    """
    return f"picpik.{run_id}"


@define
class Process:
    """What every job a process runs shares: the worker (client, ledger, folder) and slots."""

    worker: Worker
    slots: anyio.Semaphore

    async def do_chunk(self, run_id: str, keys: Sequence[str]) -> list[str]:
        """Take each row of a chunk as far as it goes, `slots` rows at a time per process;
        the keys left to do later (given back for the budget, or not reached by a stop).
        """
        rows = await self.worker.ledger.rows(run_id, keys)
        later: list[str] = []
        async with anyio.create_task_group() as group:
            for row in rows:
                if self.worker.stop.is_set():
                    later.append(row.key)
                    continue
                if row.state in ("finished", "failed"):
                    continue  # nothing to do
                await self.slots.acquire()
                group.start_soon(self._one, row, later)
        if self.worker.stop.is_set():  # rows not reached, or whose waits were cut short
            states = {r.key: r.state for r in await self.worker.ledger.rows(run_id, keys)}
            moving = ("new", "claimed", "submitted")
            later = [k for k in keys if k in later or states.get(k) in moving]
        return later

    async def _one(self, row: Row, later: list[str]) -> None:
        try:
            if await self.worker.do(row):
                later.append(row.key)
        except PicpikError as error:
            # One row's trouble (a ledger that timed out under load, say) must not
            # cancel its siblings mid-way: the row is tried again in a later job.
            logger.warning("run %s: prompt %r goes back to the queue: %s",
                           row.run_id, row.prompt[:60], error)  # fmt: skip
            later.append(row.key)
        finally:
            self.slots.release()


def make_app(connector: Any) -> Any:
    """A Procrastinate app with the chunk task, on `connector` (PostgreSQL, or in-memory)."""
    import procrastinate

    app = procrastinate.App(connector=connector)

    @app.task(
        name=TASK_NAME,
        pass_context=True,
        retry=procrastinate.RetryStrategy(max_attempts=5, wait=2),
    )
    async def batch_chunk(context: Any, run_id: str, keys: list[str]) -> None:
        process: Process = context.additional_context["picpik"]
        later = await process.do_chunk(run_id, keys)
        if later:
            # A job that gave rows back must not count as done for them: they go on
            # in a new job, after a pause (the budget's holders settle meanwhile).
            deferrer = app.configure_task(
                TASK_NAME, queue=queue_of(run_id), schedule_in={"seconds": _LATER}
            )
            keys_left: list[Any] = list(later)
            await deferrer.defer_async(run_id=run_id, keys=keys_left)

    return app


#: Seconds before the rows a job gave back are tried again.
_LATER: Final = 1


@asynccontextmanager
async def open_app(url: str) -> AsyncIterator[Any]:
    """The Procrastinate app on the PostgreSQL at `url`, its schema applied on first use."""
    try:
        import procrastinate
        import psycopg
    except ModuleNotFoundError:
        raise PicpikError(
            "a PostgreSQL ledger needs the postgres extra: pip install 'picpik-async[postgres]'"
        ) from None
    app = make_app(procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=4))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            async with app.open_async():
                cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
                row = await cursor.fetchone()
                if row is None or row[0] is None:
                    await app.schema_manager.apply_schema_async()
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
    async with app.open_async():
        yield app


async def defer_run(app: Any, run_id: str, rows: Sequence[Row], *, job_size: int) -> int:
    """Defer one job per `job_size` rows not over yet, on the run's queue; the jobs deferred."""
    open_keys = [row.key for row in rows if row.state not in TERMINAL]
    chunks = [open_keys[i : i + job_size] for i in range(0, len(open_keys), job_size)]
    if not chunks:
        return 0
    deferrer = app.configure_task(TASK_NAME, queue=queue_of(run_id))
    await deferrer.batch_defer_async(*({"run_id": run_id, "keys": chunk} for chunk in chunks))
    return len(chunks)


async def open_jobs(app: Any, queue: str | None) -> int:
    """Jobs of `queue` (or of every queue) waiting or running."""
    count = 0
    for status in ("todo", "doing"):
        jobs = await app.job_manager.list_jobs_async(queue=queue, task=TASK_NAME, status=status)
        count += len(list(jobs))
    return count


async def recover_stalled(app: Any, *, stalled_after: float, queue: str | None = None) -> int:
    """Hand the jobs of workers silent for `stalled_after` seconds back to the queue."""
    stalled = await app.job_manager.get_stalled_jobs(
        queue=queue, task_name=TASK_NAME, seconds_since_heartbeat=stalled_after
    )
    from procrastinate.exceptions import ConnectorException

    count = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:  # another process handed it back first
            logger.debug("job %s was already handed back", job.id)
            continue
        logger.info("job %s of a worker gone silent goes back to the queue", job.id)
        count += 1
    return count


@define(kw_only=True)
class ServeSettings:
    """How a process works on jobs.

    Attributes:
        queues: the queues to take jobs from (None: every queue).
        jobs: jobs run at once (their rows share the process's prompt slots).
        heartbeat: seconds between a worker's heartbeats.
        stalled_after: seconds of silence after which a worker's jobs are recovered.
        check_every: seconds between checks for stalled jobs and for the end.
    """

    queues: list[str] | None = None
    jobs: int = 4
    heartbeat: float = 2.0
    stalled_after: float = 10.0
    check_every: float = 1.0


async def serve(
    app: Any,
    process: Process,
    settings: ServeSettings,
    *,
    finished: Any,
) -> None:
    """Work on jobs until `await finished()` says so (checked every `check_every` s).

    Meanwhile, recover the jobs of stalled workers. `finished` is the batch's
    "is my run over" or the worker's "is every queue empty".
    """
    from procrastinate import worker as procrastinate_worker

    runner = procrastinate_worker.Worker(
        app,
        queues=settings.queues,
        concurrency=settings.jobs,
        wait=True,
        fetch_job_polling_interval=settings.check_every,
        install_signal_handlers=False,
        additional_context={"picpik": process},
        update_heartbeat_interval=settings.heartbeat,
        stalled_worker_timeout=settings.stalled_after,
        delete_jobs="successful",
    )
    queue = settings.queues[0] if settings.queues and len(settings.queues) == 1 else None

    async def watch() -> None:
        while True:
            await anyio.sleep(settings.check_every)
            if process.worker.stop.is_set():
                break
            await recover_stalled(app, stalled_after=settings.stalled_after, queue=queue)
            if await finished():
                break
        runner.stop()  # type: ignore[no-untyped-call]

    async def stop_at_once() -> None:
        # A stop takes no new job from the moment it is asked for; the jobs running
        # give back what they did not do (`Process.do_chunk`).
        await process.worker.stop.wait()
        runner.stop()  # type: ignore[no-untyped-call]

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        group.start_soon(stop_at_once)
        await runner.run()  # type: ignore[no-untyped-call]
        group.cancel_scope.cancel()


#: Rounds of jobs `run_distributed` defers again for rows left with no job.
_REDEFERS: Final = 3


async def run_distributed(
    client: AsyncClient,
    items: Sequence[BatchItem],
    out: Any,
    ledger: Ledger,
    url: str,
    *,
    run_id: str,
    job_size: int = 50,
    concurrency: int = 8,
    defaults: Any = None,
    stop: anyio.Event | None = None,
    on_change: Listener | None = None,
    timeout: float | None = None,
    max_credits: int | None = None,
    settings: ServeSettings | None = None,
) -> tuple[BatchProgress, list[Row]]:
    """Run (or resume) a batch shared with `picpik worker` processes; returns this
    process's progress and every row of the run.

    Adds the run's rows, defers jobs for the rows not over yet (unless jobs of
    the run are still queued), works on the run's queue, and returns when no
    row of the run can move any more (finished, failed, unknown, or left new
    because the budget is spent).

    Example:
        >>> # progress, rows = await run_distributed(client, items, out, ledger, url,
        >>> #                                        run_id="cats-1a2b3c4d")
    """
    await ledger.add_run(run_id, new_rows(items, defaults), max_credits=max_credits)
    wanted = {item.key for item in items}  # rows of lines since removed from the file: left
    rows = [row for row in await ledger.rows(run_id) if row.key in wanted]
    queue = queue_of(run_id)
    stop = stop or anyio.Event()
    worker = Worker(client, ledger, out, timeout=timeout, stop=stop, on_change=on_change,
                    progress=BatchProgress(total=0), defer_on_budget=True)  # fmt: skip
    process = Process(worker, anyio.Semaphore(concurrency))
    settings = settings or ServeSettings()
    settings = ServeSettings(queues=[queue], jobs=settings.jobs, heartbeat=settings.heartbeat,
                             stalled_after=settings.stalled_after,
                             check_every=settings.check_every)  # fmt: skip
    redefers = 0
    async with open_app(url) as app:
        if await open_jobs(app, queue) == 0:
            await defer_run(app, run_id, rows, job_size=job_size)

        async def finished() -> bool:
            nonlocal redefers
            moving, _ = await ledger.run_state(run_id)
            if moving == 0:
                return True
            if await open_jobs(app, queue) > 0:
                return False
            # Rows that can move but have no job (a job gave up after its retries).
            if redefers >= _REDEFERS:
                logger.warning("run %s: %d prompts left with no job; stopping", run_id, moving)
                return True
            redefers += 1
            left = [row for row in await ledger.rows(run_id) if row.key in wanted]
            await defer_run(app, run_id, left, job_size=job_size)
            return False

        async with anyio.create_task_group() as group:
            group.start_soon(worker.watch_stop)
            await serve(app, process, settings, finished=finished)
            group.cancel_scope.cancel()
    return worker.progress, await ledger.rows(run_id)


async def serve_worker(
    client: AsyncClient,
    ledger: Ledger,
    url: str,
    out: Any,
    *,
    concurrency: int = 8,
    jobs: int = 4,
    until_done: bool = False,
    stop: anyio.Event | None = None,
    timeout: float | None = None,
    on_change: Listener | None = None,
    settings: ServeSettings | None = None,
) -> BatchProgress:
    """`picpik worker`: work on every run's jobs until stopped (or, `until_done`, until
    no job of any run is waiting or running); what this process did.

    Example:
        >>> # progress = await serve_worker(client, ledger, url, Path("out"), until_done=True)
    """
    worker = Worker(client, ledger, out, timeout=timeout, stop=stop or anyio.Event(),
                    on_change=on_change, progress=BatchProgress(total=0),
                    defer_on_budget=True)  # fmt: skip
    process = Process(worker, anyio.Semaphore(concurrency))
    base = settings or ServeSettings()
    settings = ServeSettings(queues=None, jobs=jobs, heartbeat=base.heartbeat,
                             stalled_after=base.stalled_after,
                             check_every=base.check_every)  # fmt: skip
    async with open_app(url) as app:
        empty_checks = 0

        async def finished() -> bool:
            # Two empty looks in a row, so a worker started just before `picpik batch`
            # defers its jobs does not leave at once.
            nonlocal empty_checks
            if not until_done:
                return False
            empty_checks = empty_checks + 1 if await open_jobs(app, None) == 0 else 0
            return empty_checks >= 2

        async with anyio.create_task_group() as group:
            group.start_soon(worker.watch_stop)
            await serve(app, process, settings, finished=finished)
            group.cancel_scope.cancel()
    return worker.progress
