"""Where the ledger lives: a SQLite file (embedded, the default) or PostgreSQL (shared).

I/O. Both stores run the transactions `_ledger` writes as generators of
queries, so the rules exist once. Neither stalls the event loop:

- `SqliteLedger` runs each transaction in a worker thread (stdlib `sqlite3`,
  WAL, ``BEGIN IMMEDIATE``), one at a time;
- `PostgresLedger` uses psycopg 3's async API over a small connection pool
  (the ``postgres`` extra). It needs asyncio, as psycopg's async API does.

Example:
    >>> # async with open_ledger("sqlite:///out/picpik-ledger.sqlite3") as ledger:
    >>> #     print(await ledger.summaries())
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Literal, Self

import anyio
import anyio.to_thread

from . import _ledger as rules
from ._errors import LedgerError
from ._ledger import ClaimResult, NewRow, Query, Row, RunSummary, Transaction

__all__ = ["LEDGER_NAME", "Ledger", "PostgresLedger", "SqliteLedger", "open_ledger"]

#: The SQLite ledger's file name inside a batch's output folder.
LEDGER_NAME: Final = "picpik-ledger.sqlite3"


class Ledger:
    """The operations of a ledger, over a store that runs transactions.

    `operations` counts the transactions run (the benchmark reports it per prompt).
    """

    url: str
    operations: int

    async def run(self, transaction: Transaction) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    async def aclose(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def add_run(
        self, run_id: str, rows: Sequence[NewRow], *, max_credits: int | None = None
    ) -> None:
        """Create a run, or resume one: prompts it already has keep their state."""
        await self.run(rules.add_run(run_id, rows, max_credits=max_credits, now=time.time()))

    async def rows(self, run_id: str, keys: Sequence[str] | None = None) -> list[Row]:
        """The rows of a run, or of some of its keys, in the prompts file's order."""
        result: list[Row] = await self.run(rules.read_rows(run_id, keys))
        return result

    async def claim(
        self, run_id: str, key: str, *, request_uuid: str, worker: str, resend: bool = False
    ) -> ClaimResult:
        """Claim a row right before its submit (see `_ledger.claim`)."""
        result: ClaimResult = await self.run(
            rules.claim(
                run_id,
                key,
                request_uuid=request_uuid,
                worker=worker,
                now=time.time(),
                resend=resend,
            )
        )
        return result

    async def submitted(self, run_id: str, key: str, task_uid: str) -> bool:
        """Record a row's TaskUID, right after its submit was answered."""
        moved = await self.run(rules.submitted(run_id, key, task_uid=task_uid, now=time.time()))
        return bool(moved)

    async def settle(
        self,
        run_id: str,
        key: str,
        event: Literal["finished", "failed", "unknown"],
        **details: Any,
    ) -> bool:
        """Record how a row ended (see `_ledger.settle`)."""
        return bool(await self.run(rules.settle(run_id, key, event, now=time.time(), **details)))

    async def orphan_claims(self, run_id: str, keys: Sequence[str] | None = None) -> int:
        """Turn rows claimed by a worker that is gone into unknown outcomes."""
        count: int = await self.run(rules.orphan_claims(run_id, keys, now=time.time()))
        return count

    async def summaries(self, run_id: str | None = None) -> list[RunSummary]:
        """Every run's counts, or one run's."""
        result: list[RunSummary] = await self.run(rules.summaries(run_id))
        return result

    async def run_state(self, run_id: str) -> tuple[int, bool]:
        """(rows that can still move, whether the budget is spent)."""
        moving, exhausted = await self.run(rules.run_state(run_id))
        return int(moving), bool(exhausted)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold the ledger for this process alone (SQLite: a run on one machine); a no-op
        for a shared ledger, whose claims are what keeps workers apart."""
        return contextlib.nullcontext()

    async def get_meta(self, name: str) -> str | None:
        """A value of the ledger's meta table."""
        value: str | None = await self.run(rules.get_meta(name))
        return value

    async def set_meta(self, name: str, value: str) -> None:
        """Set a value of the ledger's meta table."""
        await self.run(rules.set_meta(name, value))


def _drive(transaction: Transaction, execute: Any) -> Any:
    """Run a transaction generator synchronously: `execute(query)` answers each query."""
    answer: Any = None
    try:
        while True:
            answer = execute(transaction.send(answer))
    except StopIteration as done:
        return done.value


class SqliteLedger(Ledger):
    """The embedded ledger: one SQLite file, in WAL mode, used from a worker thread.

    Example:
        >>> # ledger = await SqliteLedger.open(Path("out") / LEDGER_NAME)
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path
        self.url = f"sqlite:///{path}"
        self.operations = 0
        self._lock = anyio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating it and its schema when needed) the ledger file at `path`."""
        return await anyio.to_thread.run_sync(cls._open, path)

    @classmethod
    def _open(cls, path: Path) -> Self:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # durable at each commit under WAL
            for statement in rules.SCHEMA:
                connection.execute(statement)
        except (sqlite3.Error, OSError) as error:
            raise LedgerError(f"cannot open the ledger {path}: {error}") from error
        return cls(connection, path)

    async def run(self, transaction: Transaction) -> Any:
        """Run one transaction in a worker thread; one at a time."""
        async with self._lock:
            self.operations += 1
            return await anyio.to_thread.run_sync(self._run, transaction)

    def _run(self, transaction: Transaction) -> Any:
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")  # the write lock first: claims are serial
            try:
                result = _drive(transaction, self._execute)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # the first error is the one to see
                        connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise LedgerError(f"ledger {self.path}: {error}") from error
        return result

    def _execute(self, query: Query) -> Any:
        sql = query.sql.format(lock="", greatest="max")
        if query.many:
            self._connection.executemany(sql, query.many)
            return None
        cursor = self._connection.execute(sql, dict(query.params))
        if query.fetch == "one":
            return cursor.fetchone()
        if query.fetch == "all":
            return cursor.fetchall()
        return cursor.rowcount

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Refuse a second process running a batch on this ledger at the same time.

        `run_batch` turns every claimed row into an unknown outcome when it starts
        (whoever claimed it is gone); a second process at work on the same folder
        would break that. An advisory lock on ``<ledger>.lock``, released when the
        process ends, however it ends.
        """
        try:
            import fcntl
        except ModuleNotFoundError:  # pragma: no cover - Windows: no advisory locks here
            yield
            return
        with open(f"{self.path}.lock", "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LedgerError(
                    f"another picpik batch is running on {self.path.parent}: wait for it to end, "
                    "or use another --out"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def aclose(self) -> None:
        """Close the file."""
        async with self._lock:
            await anyio.to_thread.run_sync(self._connection.close)


_PARAM: Final = re.compile(r"(?<![:\w]):([a-z_]+)")


def postgres_sql(sql: str) -> str:
    """A `Query`'s SQL in psycopg's placeholder style, with PostgreSQL's words filled in.

    Example:
        >>> postgres_sql("SELECT x FROM t WHERE a = :a {lock}")
        'SELECT x FROM t WHERE a = %(a)s FOR UPDATE'
    """
    return _PARAM.sub(r"%(\1)s", sql.format(lock="FOR UPDATE", greatest="GREATEST"))


class PostgresLedger(Ledger):
    """The shared ledger: PostgreSQL through psycopg 3's async API (asyncio only).

    Claims are conditional updates (``WHERE state IN (...)``), and a run with
    a budget locks its row (``SELECT ... FOR UPDATE``) while it reserves.
    """

    def __init__(self, pool: Any, url: str) -> None:
        self._pool = pool
        self.url = url
        self.operations = 0

    @classmethod
    async def open(cls, url: str, *, max_size: int = 16) -> PostgresLedger:
        """Connect and apply the schema (idempotent) on first use."""
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import AsyncConnectionPool
        except ModuleNotFoundError:
            raise LedgerError(
                "a PostgreSQL ledger needs the postgres extra: pip install 'picpik-async[postgres]'"
            ) from None
        pool = AsyncConnectionPool(
            url, min_size=1, max_size=max_size, kwargs={"row_factory": dict_row}, open=False
        )
        try:
            await pool.open(wait=True, timeout=30.0)
            async with pool.connection() as connection, connection.transaction():
                # One schema change at a time, whoever applies it first.
                await connection.execute("SELECT pg_advisory_xact_lock(7346501)")
                for statement in rules.SCHEMA:
                    await connection.execute(statement)
        except (psycopg.Error, OSError) as error:  # pragma: no cover - depends on the server
            await pool.close()
            raise LedgerError(f"cannot open the ledger {rules._redact(url)}: {error}") from None
        return cls(pool, url)

    async def run(self, transaction: Transaction) -> Any:
        """Run one transaction on a pooled connection."""
        import psycopg

        self.operations += 1
        try:
            async with self._pool.connection() as connection, connection.transaction():
                answer: Any = None
                try:
                    while True:
                        query = transaction.send(answer)
                        answer = await self._execute(connection, query)
                except StopIteration as done:
                    return done.value
        except psycopg.Error as error:
            raise LedgerError(f"ledger {rules._redact(self.url)}: {error}") from error

    @staticmethod
    async def _execute(connection: Any, query: Query) -> Any:
        sql = postgres_sql(query.sql)
        async with connection.cursor() as cursor:
            if query.many:
                await cursor.executemany(sql, [dict(p) for p in query.many])
                return None
            await cursor.execute(sql, dict(query.params))
            if query.fetch == "one":
                return await cursor.fetchone()
            if query.fetch == "all":
                return await cursor.fetchall()
            return cursor.rowcount

    async def aclose(self) -> None:
        """Close the pool."""
        await self._pool.close()


async def _open(url: str) -> Ledger:
    kind, target = rules.parse_ledger_url(url)
    if kind == "sqlite":
        return await SqliteLedger.open(Path(target))
    return await PostgresLedger.open(target)


@asynccontextmanager
async def open_ledger(url: str) -> AsyncIterator[Ledger]:
    """Open the ledger at `url` (``sqlite:///path`` or ``postgresql://...``) for a block.

    Example:
        >>> # async with open_ledger("sqlite:///out/picpik-ledger.sqlite3") as ledger:
        >>> #     runs = await ledger.summaries()
    """
    ledger = await _open(url)
    try:
        yield ledger
    finally:
        with anyio.CancelScope(shield=True):
            await ledger.aclose()


def sqlite_url(folder: Path) -> str:
    """The URL of the SQLite ledger in a batch's output folder."""
    return f"sqlite://{(folder / LEDGER_NAME).absolute()}"
