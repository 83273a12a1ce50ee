"""Shared pytest configuration and fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import picpik_async as picpik
from picpik_async.testing import Emulator

#: Retries and polls sized for an emulator whose tasks take a fraction of a second.
FAST_RETRY = picpik.RetryPolicy(max_attempts=10, backoff_initial=0.005, backoff_max=0.02)
#: No jitter: every poll time of the pure schedule and the fake-clock waiter can be
#: worked out by hand.
EXACT_POLL = picpik.PollSettings(
    poll_initial=1.0,
    poll_max=5.0,
    poll_growth=2.0,
    poll_jitter=0.0,
    poll_grid=0.25,
    poll_batch_size=3,
    max_misses=3,
    max_failures=3,
)
FAST_POLL = picpik.PollSettings(
    poll_initial=0.05, poll_max=0.2, poll_grid=0.05, running_interval=0.1, running_grace=0.05
)
#: The default number of attempts, with waits of 10 to 50 ms instead of 0.5 to 15 s.
FAST_CLI_RETRY = picpik.RetryPolicy(backoff_initial=0.01, backoff_max=0.05)


#: `[sys.executable, QUICK_CLI, ...]` runs the picpik CLI in a subprocess polling fast
#: (tests/_quick_cli.py), where `python -m picpik_async.cli` keeps the default timings.
QUICK_CLI = str(Path(__file__).with_name("_quick_cli.py"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` first, the rest in their usual order: under `-n auto`, a
    test of many seconds handed out last keeps the run going after the other workers
    have nothing left to do."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every `@pytest.mark.anyio` test on both asyncio and trio."""
    backend: str = request.param
    return backend


@pytest.fixture
def emulator() -> Emulator:
    """A quick emulator: tasks take 0.1 s."""
    return Emulator(latency=0.1, seed=7)


def status_requests(emulator: Emulator) -> int:
    """The status traffic the emulator received: ListTasksDetails and ListRunningTasks."""
    requests = emulator.counters.requests
    return requests["ListTasksDetails"] + requests["ListRunningTasks"]


def make_client(emulator: Emulator, **kwargs: Any) -> picpik.AsyncClient:
    """A client wired to an emulator in-process, with fast retries and polls."""
    options: dict[str, Any] = {
        "public_key": emulator.public_key,
        "private_key": emulator.private_key,
        "base_url": emulator.url,
        "transport": emulator.transport(),
        "retry": FAST_RETRY,
        "poll": FAST_POLL,
    }
    options.update(kwargs)
    return picpik.AsyncClient(**options)


@pytest.fixture
def fast_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI run in this process (click's CliRunner) polls and retries fast and embeds a
    quick emulator.

    The CLI polls with the default `PollSettings` (first poll 1.5 s after a submit),
    retries with the default `RetryPolicy` (waits from 0.5 s) and its `--emulator`
    takes 1 s a task; with this fixture its clients poll with `FAST_POLL` and retry
    with `FAST_CLI_RETRY`, and its emulator's tasks take 0.1 s. A CLI run in a
    subprocess keeps the defaults, unless it is run as `QUICK_CLI`.
    """
    import picpik_async.cli  # the CLI extra (click) is needed only by tests that use it
    import picpik_async.testing

    def fast_client(**options: Any) -> picpik.AsyncClient:
        options.setdefault("poll", FAST_POLL)
        options.setdefault("retry", FAST_CLI_RETRY)
        return picpik.AsyncClient(**options)

    def quick_emulator(**options: Any) -> Emulator:
        return Emulator(**{**options, "latency": 0.1})

    monkeypatch.setattr(picpik_async.cli, "AsyncClient", fast_client)
    monkeypatch.setattr(picpik_async.testing, "Emulator", quick_emulator)


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[picpik.AsyncClient]:
    """An open client on the `emulator` fixture."""
    async with make_client(emulator) as opened:
        yield opened


# --- PostgreSQL (tests/_postgres.py) ---------------------------------------------------
# Imported here so that this section stays in one piece; psycopg is imported lazily.

from collections.abc import Iterator  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL server: ``postgresql://postgres@127.0.0.1:PORT/postgres``.

    One server per test process (each xdist worker has its own, in its own temporary
    directory), started on first use and stopped and removed at the end of the session.
    Fails, never skips, if no server can be started: `_postgres.PostgresUnavailableError`
    lists what was tried.
    """
    import os

    from _postgres import running_postgres

    with running_postgres(os.environ.get("PYTEST_XDIST_WORKER", "main")) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a fresh, empty database on `postgres_server`, dropped after the test."""
    from _postgres import temporary_database

    with temporary_database(postgres_server) as url:
        yield url
