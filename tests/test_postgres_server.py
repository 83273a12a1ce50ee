"""The throwaway PostgreSQL server of the tests (tests/_postgres.py) and its fixtures."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from _postgres import PostgresUnavailableError, start_postgres, temporary_database


@pytest.fixture
def anyio_backend() -> str:
    """psycopg's `AsyncConnection` runs on asyncio only (the suite's default adds trio)."""
    return "asyncio"


def test_server_answers_on_loopback(postgres_server: str) -> None:
    url = urlsplit(postgres_server)
    assert url.scheme == "postgresql"
    assert url.hostname == "127.0.0.1"
    assert url.port
    with psycopg.connect(postgres_server) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        row = connection.execute("SELECT inet_server_addr()::text, current_setting('fsync')")
        assert row.fetchone() == ("127.0.0.1/32", "off")


def test_databases_are_independent(postgres_server: str, postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE jobs (id int)")
        connection.execute("INSERT INTO jobs VALUES (1)")
    with temporary_database(postgres_server) as other_url:
        assert other_url != postgres_url
        with psycopg.connect(other_url) as other:
            assert other.execute("SELECT to_regclass('jobs')").fetchone() == (None,)
        with psycopg.connect(postgres_url) as connection:
            assert connection.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
    other_name = urlsplit(other_url).path.lstrip("/")
    with psycopg.connect(postgres_server) as connection:
        query = "SELECT count(*) FROM pg_database WHERE datname = %s"
        assert connection.execute(query, (other_name,)).fetchone() == (0,)


@pytest.mark.anyio
async def test_async_connection(postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
        cursor = await connection.execute("SELECT current_database()")
        assert await cursor.fetchone() == (urlsplit(postgres_url).path.lstrip("/"),)


def test_no_server_is_an_error_naming_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailableError, match="Tried") as raised:
        start_postgres(bin_dirs=[tmp_path])
    assert f"no initdb in {tmp_path}" in str(raised.value)
