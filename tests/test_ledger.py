"""The ledger: its pure rules, and the SQLite store that runs them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import make_client
from hypothesis import given, settings
from hypothesis import strategies as st

from picpik_async import LedgerError, ValidationError
from picpik_async import _ledger as rules
from picpik_async._batch import (
    JOURNAL_NAME,
    BatchItem,
    Worker,
    import_journal,
    new_rows,
    read_prompts,
    run_batch,
)
from picpik_async._ledger import (
    MOVES,
    STATES,
    ClaimResult,
    NewRow,
    PriceBook,
    Query,
    admit,
    estimate_for,
    next_step,
)
from picpik_async._ledger_stores import LEDGER_NAME, Ledger, SqliteLedger, postgres_sql, sqlite_url
from picpik_async.testing import Emulator

RUN = "cats-00000000"


class TestRules:
    """What each state means for a worker, and which moves are allowed."""

    def test_every_state_has_a_step(self) -> None:
        assert {s: next_step(s) for s in STATES} == {
            "new": "submit", "claimed": "orphaned", "submitted": "wait",
            "finished": "skip", "failed": "report", "unknown": "report",
        }  # fmt: skip

    def test_unknown_is_resent_only_when_asked(self) -> None:
        assert next_step("unknown") == "report"
        assert next_step("unknown", resend_unknown=True) == "resend"
        assert next_step("failed", resend_unknown=True) == "report"

    def test_nothing_leaves_finished(self) -> None:
        assert all("finished" not in move.sources for move in MOVES.values())

    def test_only_a_claim_leads_to_sending(self) -> None:
        """The states a submit can start from: new (claim) and unknown (an opted-in resend)."""
        into_claimed = {name for name, move in MOVES.items() if move.to == "claimed"}
        assert into_claimed == {"claim", "resend"}
        assert MOVES["claim"].sources == {"new"}

    def test_unknown_comes_only_from_a_claim(self) -> None:
        assert MOVES["unknown"].sources == {"claimed"}


class TestPrices:
    def test_nothing_known(self) -> None:
        assert PriceBook().estimate(4096, images=1) is None

    def test_a_known_size(self) -> None:
        book = PriceBook().learn(4096, images=4, credits=4)
        assert book.estimate(4096, images=3) == 3

    def test_the_highest_price_is_kept(self) -> None:
        book = PriceBook().learn(4096, images=1, credits=3).learn(4096, images=1, credits=1)
        assert book.estimate(4096, images=1) == 3

    def test_a_larger_size_scales_up_from_the_nearest_smaller(self) -> None:
        book = PriceBook({512 * 512: 1, 256 * 256: 1})
        assert book.estimate(1024 * 1024, images=1) == 4

    def test_a_smaller_size_costs_at_least_a_larger_one(self) -> None:
        """Never lower than what the book has seen: the emulator, like PICPIK may, has a floor."""
        book = PriceBook({1024 * 1024: 4})
        assert book.estimate(64 * 64, images=2) == 8

    def test_no_budget_reserves_nothing(self) -> None:
        assert estimate_for(PriceBook(), 4096, 1, max_credits=None, committed=0) == 0

    def test_unknown_price_reserves_what_is_left(self) -> None:
        assert estimate_for(PriceBook(), 4096, 1, max_credits=40, committed=40) == 1

    @pytest.mark.parametrize(
        ("committed", "in_flight", "estimate", "verdict"),
        [(0, 0, 40, "ok"), (0, 1, 40, "wait"), (39, 0, 2, "exhausted"), (10, 30, 1, "wait")],
    )
    def test_admit(self, committed: int, in_flight: int, estimate: int, verdict: str) -> None:
        assert admit(40, committed=committed, in_flight=in_flight, estimate=estimate) == verdict


class TestUrlsAndIds:
    def test_sqlite_urls(self) -> None:
        assert rules.parse_ledger_url("sqlite:///data/x.db") == ("sqlite", "/data/x.db")
        assert rules.parse_ledger_url("sqlite:///./x.db") == ("sqlite", "./x.db")

    def test_postgres_urls_go_to_psycopg_as_they_are(self) -> None:
        url = "postgres://me:pw@db:5432/picpik?sslmode=require"
        assert rules.parse_ledger_url(url) == ("postgresql", url)

    def test_a_bad_url_names_the_option_and_hides_the_password(self) -> None:
        with pytest.raises(ValidationError, match="--ledger must be") as caught:
            rules.parse_ledger_url("mysql://me:hunter2@db/x")
        assert "hunter2" not in str(caught.value)

    def test_our_own_sqlite_url_round_trips(self, tmp_path: Path) -> None:
        kind, path = rules.parse_ledger_url(sqlite_url(tmp_path))
        assert (kind, Path(path)) == ("sqlite", tmp_path.absolute() / LEDGER_NAME)

    @pytest.mark.parametrize("run_id", ["", "-x", "a b", "a/b", "x" * 101, "é"])
    def test_bad_run_ids(self, run_id: str) -> None:
        with pytest.raises(ValidationError, match="run id"):
            rules.check_run_id(run_id)

    def test_default_run_id_is_the_output_folder(self) -> None:
        assert rules.default_run_id("/data/my pics!") == "my-pics"
        assert rules.default_run_id("/elsewhere/my pics!") == "my-pics"
        assert rules.default_run_id("/") == "batch"
        assert rules.check_run_id(rules.default_run_id("/x/" + "é" * 3 + "a"))

    @pytest.mark.parametrize(
        "url",
        ["postgresql://h/db?password=s3cr3t", "postgresql://u:pa/ss@h/db",
         "postgresql://u:p@ss@h/db", "postgresql://u:s3cr3t@h:5432/db#x"],
    )  # fmt: skip
    def test_passwords_are_never_shown(self, url: str) -> None:
        shown = rules._redact(url)
        assert all(secret not in shown for secret in ("s3cr3t", "pa/ss", "p@ss"))
        assert shown.endswith("/db")

    def test_postgres_placeholders(self) -> None:
        sql = "UPDATE t SET a = :a WHERE b = :b AND c = 'x:y' {lock}"
        assert (
            postgres_sql(sql) == "UPDATE t SET a = %(a)s WHERE b = %(b)s AND c = 'x:y' FOR UPDATE"
        )


def _drive(transaction: Any, answers: list[Any]) -> tuple[list[Query], Any]:
    """Run a transaction generator on scripted answers; the queries it asked and its result."""
    asked: list[Query] = []
    try:
        query = next(transaction)
        while True:
            asked.append(query)
            query = transaction.send(answers.pop(0))
    except StopIteration as done:
        return asked, done.value


def _record(state: str, **extra: Any) -> dict[str, Any]:
    record = {
        "run_id": RUN, "key": "k", "position": 0, "prompt": "p", "options": "{}",
        "state": state, "request_uuid": None, "task_uid": None, "files": "[]", "seed": None,
        "credits": None, "estimate": 0, "error": None, "worker": None, "created_at": 0.0,
        "updated_at": 0.0,
    }  # fmt: skip
    record.update(extra)
    return record


class TestTransactions:
    """The transactions' decisions, on scripted database answers: no database at all."""

    def test_a_claim_of_a_row_someone_has_is_taken_and_writes_nothing(self) -> None:
        run = {"max_credits": None, "spent": 0, "reserved": 0, "held": 0}
        asked, result = _drive(
            rules.claim(RUN, "k", request_uuid="u", worker="w", now=1.0),
            [run, _record("claimed")],
        )
        assert result == ClaimResult("taken")
        assert all(q.sql.startswith("SELECT") for q in asked)

    def test_a_claim_that_does_not_fit_waits_while_others_are_in_flight(self) -> None:
        run = {"max_credits": 10, "spent": 5, "reserved": 5, "held": 0}
        asked, result = _drive(
            rules.claim(RUN, "k", request_uuid="u", worker="w", now=1.0),
            [run, run, _record("new"), [{"pixels": 1024 * 1024, "per_image": 4}]],
        )
        assert result == ClaimResult("wait")
        assert "FOR UPDATE" in postgres_sql(asked[1].sql)  # the budget is read locked

    def test_a_claim_with_nothing_in_flight_and_no_room_marks_the_run_exhausted(self) -> None:
        run = {"max_credits": 10, "spent": 8, "reserved": 0, "held": 0}
        asked, result = _drive(
            rules.claim(RUN, "k", request_uuid="u", worker="w", now=1.0),
            # run, run locked, the row, prices; then the reprice: prices, nothing to lower
            [run, run, _record("new"), [{"pixels": 1024 * 1024, "per_image": 4}],
             [{"pixels": 1024 * 1024, "per_image": 4}], [], 1],
        )  # fmt: skip
        assert result == ClaimResult("exhausted")
        assert "exhausted = 1" in asked[-1].sql

    def test_a_resend_keeps_the_request_uuid(self) -> None:
        run = {"max_credits": None, "spent": 0, "reserved": 0, "held": 0}
        asked, result = _drive(
            rules.claim(RUN, "k", request_uuid="fresh", worker="w", now=1.0, resend=True),
            [run, _record("unknown", request_uuid="first"), 1],
        )
        assert result == ClaimResult("claimed", "first", 0)
        assert asked[-1].params["uuid"] == "first"

    def test_without_a_budget_the_run_is_not_locked(self) -> None:
        run = {"max_credits": None, "spent": 0, "reserved": 0, "held": 0}
        asked, _ = _drive(
            rules.claim(RUN, "k", request_uuid="u", worker="w", now=1.0),
            [run, _record("new"), 1],
        )
        runs = [q.sql for q in asked if "FROM picpik_runs" in q.sql]
        assert runs
        assert not any("{lock}" in sql for sql in runs)  # the row alone is locked
        assert any("{lock}" in q.sql and "FROM picpik_rows" in q.sql for q in asked)

    @pytest.mark.parametrize(
        ("state", "event", "credits", "change"),
        [
            ("submitted", "finished", 3, {"in_flight": 5, "spent": 3, "held": 0}),
            ("submitted", "finished", None, {"in_flight": 5, "spent": 5, "held": 0}),
            ("claimed", "failed", None, {"in_flight": 5, "spent": 0, "held": 0}),
            ("submitted", "failed", None, {"in_flight": 5, "spent": 5, "held": 0}),
            ("claimed", "unknown", None, {"in_flight": 5, "spent": 0, "held": 5}),
        ],
    )
    def test_settling_moves_the_reservation(
        self, state: str, event: Any, credits: int | None, change: dict[str, int]
    ) -> None:
        # the row, its update, the budget, the price; a reprice: prices, nothing to lower
        answers: list[Any] = [_record(state, estimate=5), 1, 1, 1, [], []]
        asked, moved = _drive(rules.settle(RUN, "k", event, now=1.0, credits=credits), answers)
        assert moved
        (budget,) = [q for q in asked if q.sql.startswith("UPDATE picpik_runs")]
        assert {k: budget.params[k] for k in change} == change

    def test_settling_a_row_in_the_wrong_state_changes_nothing(self) -> None:
        asked, moved = _drive(rules.settle(RUN, "k", "finished", now=1.0), [_record("new")])
        assert not moved
        assert len(asked) == 1


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    store = await SqliteLedger.open(tmp_path / LEDGER_NAME)
    try:
        yield store
    finally:
        await store.aclose()


def _rows(n: int, **options: Any) -> list[NewRow]:
    return [NewRow(f"k{i}", f"prompt {i}", dict(options)) for i in range(n)]


@pytest.mark.anyio
class TestSqliteStore:
    async def test_a_run_resumes_with_its_rows_states(self, ledger: Ledger) -> None:
        await ledger.add_run(RUN, _rows(3))
        await ledger.claim(RUN, "k0", request_uuid="u0", worker="w")
        await ledger.add_run(RUN, [*_rows(3), NewRow("k3", "prompt 3")])
        rows = await ledger.rows(RUN)
        assert [(r.key, r.state) for r in rows] == [
            ("k0", "claimed"), ("k1", "new"), ("k2", "new"), ("k3", "new"),
        ]  # fmt: skip
        assert rows[0].request_uuid == "u0"

    async def test_a_row_is_claimed_once(self, ledger: Ledger) -> None:
        """Fifty workers race for one row: exactly one gets it."""
        await ledger.add_run(RUN, _rows(1))
        outcomes: list[str] = []

        async def racer(n: int) -> None:
            result = await ledger.claim(RUN, "k0", request_uuid=f"u{n}", worker=f"w{n}")
            outcomes.append(result.outcome)

        async with anyio.create_task_group() as group:
            for n in range(50):
                group.start_soon(racer, n)
        assert sorted(outcomes) == ["claimed"] + ["taken"] * 49

    async def test_the_whole_life_of_a_row(self, ledger: Ledger) -> None:
        await ledger.add_run(RUN, _rows(1, width=512, height=512))
        assert (await ledger.claim(RUN, "k0", request_uuid="u", worker="w")).outcome == "claimed"
        assert await ledger.submitted(RUN, "k0", "T1")
        assert await ledger.settle(RUN, "k0", "finished", files=["T1-0.png"], seed=7, credits=1)
        (row,) = await ledger.rows(RUN)
        assert (row.state, row.task_uid, row.files, row.seed, row.credits) == (
            "finished", "T1", ("T1-0.png",), 7, 1,
        )  # fmt: skip
        assert not await ledger.settle(RUN, "k0", "failed", error="late")  # finished stays
        (summary,) = await ledger.summaries()
        assert (summary.total, summary.finished, summary.credits, summary.pending) == (1, 1, 1, 0)

    async def test_orphaned_claims_become_unknown_and_are_never_resent(
        self, ledger: Ledger
    ) -> None:
        await ledger.add_run(RUN, _rows(2))
        await ledger.claim(RUN, "k0", request_uuid="u0", worker="dead")
        assert await ledger.orphan_claims(RUN) == 1
        rows = await ledger.rows(RUN)
        assert [r.state for r in rows] == ["unknown", "new"]
        assert (await ledger.claim(RUN, "k0", request_uuid="u9", worker="w")).outcome == "taken"
        resent = await ledger.claim(RUN, "k0", request_uuid="u9", worker="w", resend=True)
        assert (resent.outcome, resent.request_uuid) == ("claimed", "u0")

    async def test_a_late_answer_resolves_an_unknown_row(self, ledger: Ledger) -> None:
        await ledger.add_run(RUN, _rows(1))
        await ledger.claim(RUN, "k0", request_uuid="u0", worker="slow")
        await ledger.orphan_claims(RUN)
        assert await ledger.submitted(RUN, "k0", "T1")
        assert (await ledger.rows(RUN))[0].state == "submitted"

    async def test_a_budget_is_reserved_then_settled(self, ledger: Ledger) -> None:
        await ledger.add_run(RUN, _rows(5, width=64, height=64), max_credits=3)
        first = await ledger.claim(RUN, "k0", request_uuid="u0", worker="w")
        assert (first.outcome, first.estimate) == ("claimed", 3)  # no price known: all of it
        assert (await ledger.claim(RUN, "k1", request_uuid="u1", worker="w")).outcome == "wait"
        await ledger.submitted(RUN, "k0", "T0")
        await ledger.settle(RUN, "k0", "finished", credits=1)
        for key in ("k1", "k2"):  # 1 credit each, now known
            assert (await ledger.claim(RUN, key, request_uuid="u", worker="w")).estimate == 1
        assert (await ledger.claim(RUN, "k3", request_uuid="u", worker="w")).outcome == "wait"
        await ledger.settle(RUN, "k1", "failed", error="refused")  # nothing created: released
        assert (await ledger.claim(RUN, "k3", request_uuid="u", worker="w")).outcome == "claimed"
        await ledger.settle(RUN, "k2", "unknown", error="lost")  # held as spent
        await ledger.settle(RUN, "k3", "unknown", error="lost")
        assert (await ledger.claim(RUN, "k4", request_uuid="u", worker="w")).outcome == (
            "exhausted"
        )
        assert await ledger.run_state(RUN) == (0, True)  # k4 is left new: the run is over
        (summary,) = await ledger.summaries(RUN)
        assert (summary.credits, summary.pending, summary.max_credits) == (1, 1, 3)

    async def test_a_new_budget_on_resume_lifts_exhaustion(self, ledger: Ledger) -> None:
        await ledger.add_run(RUN, _rows(1), max_credits=1)
        await ledger.run(rules.claim(RUN, "k0", request_uuid="u", worker="w", now=0))
        await ledger.add_run(RUN, _rows(1), max_credits=10)
        assert await ledger.run_state(RUN) == (1, False)

    async def test_the_file_is_in_wal_mode(self, ledger: Ledger, tmp_path: Path) -> None:
        with closing(sqlite3.connect(tmp_path / LEDGER_NAME)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    async def test_operations_are_counted(self, ledger: Ledger) -> None:
        before = ledger.operations
        await ledger.add_run(RUN, _rows(10))
        await ledger.rows(RUN)
        assert ledger.operations == before + 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(MOVES)), st.integers(0, 2)), max_size=30))
def test_random_moves_keep_the_budget_consistent(moves: list[tuple[str, int]]) -> None:
    """Whatever order moves come in: reserved is what claimed and submitted rows hold,
    held what unknown rows hold, and nothing is ever negative."""

    async def main() -> None:
        store = SqliteLedger._open(Path(":memory:"))
        await store.add_run(RUN, _rows(3, width=64, height=64), max_credits=5)
        for name, index in moves:
            key = f"k{index}"
            if name in ("claim", "resend"):
                await store.claim(RUN, key, request_uuid="u", worker="w", resend=name == "resend")
            elif name == "submitted":
                await store.submitted(RUN, key, f"T{index}")
            else:
                await store.settle(RUN, key, name, credits=1)  # type: ignore[arg-type]
        rows = await store.rows(RUN)
        budget = store._connection.execute(
            "SELECT spent, reserved, held FROM picpik_runs"
        ).fetchone()
        in_flight = sum(r.estimate for r in rows if r.state in ("claimed", "submitted"))
        held = sum(r.estimate for r in rows if r.state == "unknown")
        assert (budget["reserved"], budget["held"]) == (in_flight, held)
        assert min(budget) >= 0
        await store.aclose()

    anyio.run(main)


@pytest.mark.anyio
async def test_an_old_journal_is_imported_once(tmp_path: Path, emulator: Emulator) -> None:
    """A folder from before the ledger: finished prompts are skipped, a prompt caught
    mid-submit is unknown (never resent), a submitted one is waited for by TaskUID."""
    items = read_prompts("done\nmid-submit\nsubmitted\nnever sent\n")
    out = tmp_path / "out"
    out.mkdir()
    async with make_client(emulator) as client:
        handle = await client.submit(_sdxl("submitted"))
        created = emulator.counters.tasks_created
        events = [
            {"key": items[0].key, "event": "submitting", "request_uuid": "u0"},
            {"key": items[0].key, "event": "submitted", "task_uid": "T-old"},
            {"key": items[0].key, "event": "finished", "files": ["T-old-0.png"], "credits": 4},
            {"key": items[1].key, "event": "submitting", "request_uuid": "u1"},
            {"key": items[2].key, "event": "submitting", "request_uuid": "u2"},
            {"key": items[2].key, "event": "submitted", "task_uid": handle.task_uid},
        ]
        lines = "".join(json.dumps(e) + "\n" for e in events) + '{"key": "cut sh'
        (out / JOURNAL_NAME).write_text(lines, encoding="utf-8")
        async with _sqlite(out) as ledger:
            progress, rows = await run_batch(client, items, out, ledger, run_id=RUN)
            assert await import_journal(ledger, RUN, out) == 0  # once only
    assert [r.state for r in rows] == ["finished", "unknown", "finished", "finished"]
    assert rows[1].request_uuid == "u1"
    assert rows[2].task_uid == handle.task_uid
    assert emulator.counters.tasks_created == created + 1  # only "never sent"
    assert (progress.skipped, progress.unknown, progress.submitted) == (1, 1, 1)


def _sdxl(prompt: str) -> Any:
    from picpik_async._actions import GenerateOptions, sdxl_request

    return sdxl_request(prompt, GenerateOptions(width=64, height=64))


def _sqlite(out: Path) -> Any:
    from picpik_async._ledger_stores import open_ledger

    return open_ledger(sqlite_url(out))


@pytest.mark.anyio
async def test_a_budgeted_batch_stops_at_its_budget(tmp_path: Path) -> None:
    """20 prompts of 1 credit, a budget of 7: 7 finished, the rest left unsent."""
    emulator = Emulator(latency=0.05, seed=3)
    items = [BatchItem(f"k{i}", f"p{i}", {"width": 64, "height": 64}) for i in range(20)]
    async with make_client(emulator) as client, _sqlite(tmp_path) as ledger:
        progress, rows = await run_batch(
            client, items, tmp_path, ledger, run_id=RUN, max_credits=7, concurrency=5
        )
    assert emulator.state.credits.used == 7
    assert [r.state for r in rows].count("finished") == 7
    assert progress.unsent == 13
    assert progress.pending == 0


@pytest.mark.anyio
async def test_a_timed_out_wait_leaves_the_row_for_the_next_run(tmp_path: Path) -> None:
    """A wait that runs out of time is not a failure: the next run waits for the same task."""
    emulator = Emulator(latency=1.0, seed=5)
    items = [BatchItem("k0", "slow", {"width": 64, "height": 64})]
    async with make_client(emulator) as client, _sqlite(tmp_path) as ledger:
        first, rows = await run_batch(client, items, tmp_path, ledger, run_id=RUN, timeout=0.2)
        assert (first.timed_out, first.failed, first.pending) == (1, 0, 1)
        assert rows[0].state == "submitted"
        second, rows = await run_batch(client, items, tmp_path, ledger, run_id=RUN)
    assert (second.submitted, second.done, rows[0].state) == (0, 1, "finished")
    assert emulator.counters.tasks_created == 1


# --- what a review of the ledger broke (each failed before its fix) ---------------------


@pytest.mark.anyio
async def test_a_budget_held_by_a_submitted_row_of_a_past_run_does_not_deadlock(
    tmp_path: Path,
) -> None:
    """A run stopped while a row was submitted (holding the whole budget, no price known):
    the next run, one prompt at a time, waits for that row first instead of hanging."""
    emulator = Emulator(latency=0.05, seed=6)
    items = [BatchItem(f"k{i}", f"p{i}", {"width": 64, "height": 64}) for i in range(3)]
    async with make_client(emulator) as client, _sqlite(tmp_path) as ledger:
        await ledger.add_run(RUN, new_rows(items), max_credits=2)
        handle = await client.submit(_sdxl("p2"), request_uuid="u2")
        assert (await ledger.claim(RUN, "k2", request_uuid="u2", worker="gone")).estimate == 2
        await ledger.submitted(RUN, "k2", handle.task_uid)
        with anyio.fail_after(20):
            _, rows = await run_batch(client, items, tmp_path, ledger, run_id=RUN, concurrency=1)
    assert [r.state for r in rows].count("finished") == 2  # the 2 credits: k2 and one more
    assert emulator.state.credits.used == 2


@pytest.mark.anyio
async def test_a_budget_held_by_a_task_nobody_waits_for_is_reported_not_waited(
    tmp_path: Path,
) -> None:
    """A timed-out row keeps its reservation; the rows after it are reported unsent
    instead of waiting forever for a task this run no longer waits for."""
    emulator = Emulator(latency=2.0, seed=7)
    items = [BatchItem(f"k{i}", f"p{i}", {"width": 64, "height": 64}) for i in range(3)]
    async with make_client(emulator) as client, _sqlite(tmp_path) as ledger:
        with anyio.fail_after(20):
            progress, rows = await run_batch(
                client, items, tmp_path, ledger, run_id=RUN, max_credits=3, timeout=0.2
            )
    assert (progress.timed_out, progress.unsent) == (1, 2)
    assert [r.state for r in rows] == ["submitted", "new", "new"]


@pytest.mark.anyio
async def test_a_resumed_run_keeps_its_budget(ledger: Ledger) -> None:
    await ledger.add_run(RUN, _rows(2), max_credits=5)
    await ledger.add_run(RUN, _rows(2))  # a re-run without --max-credits
    (summary,) = await ledger.summaries(RUN)
    assert summary.max_credits == 5
    await ledger.add_run(RUN, _rows(2), max_credits=9)
    assert (await ledger.summaries(RUN))[0].max_credits == 9


@pytest.mark.anyio
async def test_resending_without_a_budget_releases_what_was_held(ledger: Ledger) -> None:
    await ledger.add_run(RUN, _rows(1, width=64, height=64), max_credits=4)
    await ledger.claim(RUN, "k0", request_uuid="u", worker="w")
    await ledger.settle(RUN, "k0", "unknown", error="lost")
    await ledger.run(rules.set_meta("x", "y"))
    await ledger.run(_no_budget(RUN))
    await ledger.claim(RUN, "k0", request_uuid="u", worker="w", resend=True)
    (held,) = await ledger.run(_budget_row(RUN))
    assert held == 0


def _no_budget(run_id: str) -> Any:
    yield Query("UPDATE picpik_runs SET max_credits = NULL WHERE run_id = :r", {"r": run_id})


def _budget_row(run_id: str) -> Any:
    record = yield Query(
        "SELECT held FROM picpik_runs WHERE run_id = :r", {"r": run_id}, fetch="one"
    )
    return (record["held"],)


@pytest.mark.anyio
async def test_a_second_batch_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    """Two processes on one SQLite run would take each other's live claims for orphans."""
    emulator = Emulator(latency=0.05)
    items = [BatchItem("k0", "p0", {"width": 64, "height": 64})]
    async with (
        make_client(emulator) as client,
        _sqlite(tmp_path) as first,
        _sqlite(tmp_path) as second,
    ):
        with first.exclusive(), pytest.raises(LedgerError, match="another picpik batch"):
            await run_batch(client, items, tmp_path, second, run_id=RUN)
        await run_batch(client, items, tmp_path, second, run_id=RUN)  # free again
    assert emulator.counters.tasks_created == 1


class _Flaky(SqliteLedger):
    """A ledger whose `submitted` fails the first `failures` times."""

    failures = 2

    async def submitted(self, run_id: str, key: str, task_uid: str) -> bool:
        if self.failures:
            self.failures -= 1
            raise LedgerError("database is locked")
        return await super().submitted(run_id, key, task_uid)


@pytest.fixture
def quick_ledger_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attempts at recording a TaskUID 2 ms apart (doubling) instead of 0.2 s: 4 ms to
    give up instead of 3 s. What is checked is the attempts and what follows, not the waits."""
    import picpik_async._batch

    monkeypatch.setattr(picpik_async._batch, "_LEDGER_BACKOFF", 0.002)


@pytest.mark.anyio
@pytest.mark.usefixtures("quick_ledger_retries")
async def test_a_ledger_error_after_a_submit_is_retried(tmp_path: Path) -> None:
    """The TaskUID is what makes a re-run free: recording it is tried again."""
    emulator = Emulator(latency=0.05)
    store = await _Flaky.open(tmp_path / LEDGER_NAME)
    items = [BatchItem("k0", "p0", {"width": 64, "height": 64})]
    async with make_client(emulator) as client:
        _, rows = await run_batch(client, items, tmp_path, store, run_id=RUN)
    await store.aclose()
    assert (rows[0].state, emulator.counters.tasks_created) == ("finished", 1)


@pytest.mark.anyio
@pytest.mark.usefixtures("quick_ledger_retries")
async def test_a_ledger_that_stays_broken_logs_the_task(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = Emulator(latency=0.05)
    store = await _Flaky.open(tmp_path / LEDGER_NAME)
    store.failures = 99
    items = [BatchItem("k0", "p0", {"width": 64, "height": 64})]
    async with make_client(emulator) as client:
        await run_batch(client, items, tmp_path, store, run_id=RUN)
    await store.aclose()
    (uid,) = emulator.state.tasks
    assert any(
        uid in r.getMessage() and "could not record" in r.getMessage() for r in caplog.records
    )
    assert len([p async for p in anyio.Path(tmp_path).glob("*.png")]) == 1  # went on in memory


@pytest.mark.anyio
async def test_a_first_task_that_failed_does_not_spend_the_whole_budget(ledger: Ledger) -> None:
    """With no price known the first submit reserves everything; when it fails (or its
    answer is lost), it counts everything, until a price is known: then it counts that."""
    await ledger.add_run(RUN, _rows(4, width=64, height=64), max_credits=10)
    await ledger.claim(RUN, "k0", request_uuid="u0", worker="w")  # reserves all 10
    await ledger.submitted(RUN, "k0", "T0")
    await ledger.settle(RUN, "k0", "failed", error="task failed")  # counted: 10
    assert (await ledger.claim(RUN, "k1", request_uuid="u1", worker="w")).outcome == "exhausted"
    await ledger.run(_learn(64 * 64, 1))  # the price, as another run's task reported it
    assert (await ledger.claim(RUN, "k1", request_uuid="u1", worker="w")).outcome == "claimed"
    (summary,) = await ledger.summaries(RUN)
    assert summary.credits == 1  # k0 counts 1 now
    await ledger.claim(RUN, "k2", request_uuid="u2", worker="w")
    await ledger.submitted(RUN, "k2", "T2")
    await ledger.run(_guess(RUN, "k2", 5))  # as if k2 had reserved a guess of 5
    await ledger.settle(RUN, "k0", "failed")  # (already failed: nothing changes)
    await ledger.settle(RUN, "k2", "finished", credits=1)
    assert (await ledger.summaries(RUN))[0].credits == 2


def _learn(pixels: int, price: int) -> Any:
    yield Query("INSERT INTO picpik_prices (pixels, per_image) VALUES (:p, :c)",
                {"p": pixels, "c": price})  # fmt: skip


def _guess(run_id: str, key: str, estimate: int) -> Any:
    record = yield Query("SELECT estimate FROM picpik_rows WHERE run_id = :r AND key = :k",
                         {"r": run_id, "k": key}, fetch="one")  # fmt: skip
    extra = estimate - int(record["estimate"])
    yield Query("UPDATE picpik_rows SET estimate = :e WHERE run_id = :r AND key = :k",
                {"e": estimate, "r": run_id, "k": key})  # fmt: skip
    yield Query("UPDATE picpik_runs SET reserved = reserved + :x WHERE run_id = :r",
                {"x": extra, "r": run_id})  # fmt: skip


class _SlowClaim(SqliteLedger):
    """A claim that is committed, then answered late: a caller may be cancelled meanwhile."""

    async def claim(self, *args: Any, **kwargs: Any) -> ClaimResult:
        result = await super().claim(*args, **kwargs)
        await anyio.sleep(0.2)
        return result


@pytest.mark.anyio
async def test_a_claim_is_never_left_unsent_by_a_cancellation(tmp_path: Path) -> None:
    """Cancelled between its claim and its submit, a row would be an unknown outcome for
    nothing: claim and submit are one step, so the submit goes out and is recorded."""
    emulator = Emulator(latency=0.05)
    store = await _SlowClaim.open(tmp_path / LEDGER_NAME)
    await store.add_run(RUN, new_rows([BatchItem("k0", "p0", {"width": 64, "height": 64})]))
    (row,) = await store.rows(RUN)
    async with make_client(emulator) as client:
        worker = Worker(client, store, tmp_path)
        with anyio.move_on_after(0.1):
            await worker.do(row)
    (after,) = await store.rows(RUN)
    await store.aclose()
    assert (after.state, emulator.counters.tasks_created) == ("submitted", 1)
