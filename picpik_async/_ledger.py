"""The ledger of batch runs: one row per prompt, and the rules that keep a re-run free.

PURE: no I/O. This module holds what the ledger *means*; `_ledger_stores` runs
it on SQLite or PostgreSQL. A row moves through these states
(docs/architecture.md, "The ledger"):

    new -> claimed -> submitted -> finished | failed
                \\-> unknown   (claimed, and the answer was lost or the worker died)

The claim is committed before the submit is sent and the TaskUID right after
it, so whatever kills a worker, a row says what may have happened: *claimed*
with no TaskUID means the submit may have created a task, and such a row is
never resent unless the user opts in (with the same `request_uuid`).

Every change of a row is a `Move`: the state it leads to and the states it may
start from. Each store turns that table into a conditional ``UPDATE ... WHERE
state IN (...)``, so two workers can never both claim a row, and a stale
worker can never move a row back.

The work a store does in one transaction is written here once, as a generator
of `Query` objects (`claim`, `settle`, ...): a store sends each query to its
database and the answer back into the generator. The SQLite store runs them in
a worker thread, the PostgreSQL one with psycopg's async API, and the tests run
them against a dictionary.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from attrs import field, frozen

from ._errors import ValidationError

__all__ = [
    "MOVES",
    "ClaimResult",
    "PriceBook",
    "Query",
    "Row",
    "RunSummary",
    "State",
    "Step",
    "next_step",
]

State = Literal["new", "claimed", "submitted", "finished", "failed", "unknown"]
STATES: Final[tuple[State, ...]] = ("new", "claimed", "submitted", "finished", "failed", "unknown")
#: States in which a row's work is over. Only an unknown row may move on: resent by
#: the user's choice, or given its TaskUID by a late answer (`MOVES["submitted"]`).
TERMINAL: Final = frozenset({"finished", "failed", "unknown"})


@frozen
class Move:
    """One change of a row: the state it leads to, from the states it may start from."""

    to: State
    sources: frozenset[State]


#: Every change a row can go through, by name. The stores check `sources` in SQL.
MOVES: Final[Mapping[str, Move]] = {
    # Right before the submit is sent; commits the request_uuid.
    "claim": Move("claimed", frozenset({"new"})),
    # The user opted in to resending an unknown outcome, with the same request_uuid.
    "resend": Move("claimed", frozenset({"unknown"})),
    # Right after the submit's answer. From unknown too: a worker given up for
    # dead may still record its answer, which is better than never knowing.
    "submitted": Move("submitted", frozenset({"claimed", "unknown"})),
    "finished": Move("finished", frozenset({"submitted"})),
    # A bad line (nothing sent), a refused submit, or a task that failed.
    "failed": Move("failed", frozenset({"new", "claimed", "submitted"})),
    # The submit's answer was lost, or the worker that claimed the row is gone.
    "unknown": Move("unknown", frozenset({"claimed"})),
}

Step = Literal["skip", "submit", "wait", "resend", "orphaned", "report"]


def next_step(state: State, *, resend_unknown: bool = False) -> Step:
    """What a worker does with a row it finds in `state`.

    ``orphaned`` is a row claimed by a worker that is gone: it becomes unknown.

    Example:
        >>> [next_step(s) for s in STATES]
        ['submit', 'orphaned', 'wait', 'skip', 'report', 'report']
        >>> next_step("unknown", resend_unknown=True)
        'resend'
    """
    if state == "unknown" and resend_unknown:
        return "resend"
    return _STEPS[state]


_STEPS: Final[Mapping[State, Step]] = {
    "new": "submit",
    "claimed": "orphaned",
    "submitted": "wait",
    "finished": "skip",
    "failed": "report",
    "unknown": "report",
}


@frozen(kw_only=True)
class Row:
    """One prompt of a run, as the ledger keeps it."""

    run_id: str
    key: str
    position: int
    prompt: str
    options: Mapping[str, Any] = field(factory=dict)
    state: State = "new"
    request_uuid: str | None = None
    task_uid: str | None = None
    files: tuple[str, ...] = ()
    seed: int | None = None
    credits: int | None = None
    estimate: int = 0
    error: str | None = None
    worker: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@frozen(kw_only=True)
class RunSummary:
    """The counts of one run, as `picpik runs` shows them."""

    run_id: str
    total: int
    finished: int
    failed: int
    unknown: int
    pending: int
    credits: int
    max_credits: int | None = None
    created_at: float = 0.0

    @property
    def done(self) -> bool:
        """Whether no prompt is left to send or wait for."""
        return self.pending == 0

    def to_json(self) -> dict[str, Any]:
        """The object `picpik runs --json` prints for this run."""
        return {
            "run_id": self.run_id,
            "total": self.total,
            "finished": self.finished,
            "failed": self.failed,
            "unknown": self.unknown,
            "pending": self.pending,
            "credits": self.credits,
            "max_credits": self.max_credits,
            "created_at": self.created_at,
        }


# --- prices and budgets ---------------------------------------------------------------


@frozen
class PriceBook:
    """What images of each pixel count have cost: the most one image of that size cost.

    PICPIK publishes no prices (docs/protocol.md, "Credits"), so the book learns
    them from the `ConsumeApiPoint` of finished tasks. An estimate never comes
    out lower than what the book has seen: a size it knows costs its highest
    price; a size it does not know costs the price of the largest known size
    at or below it scaled up by the pixel ratio, or of any larger size as is.
    With nothing known, `estimate` returns None and the caller stays
    conservative (`estimate_for`).

    Example:
        >>> book = PriceBook().learn(512 * 512, images=2, credits=2)
        >>> book.estimate(512 * 512, images=3), book.estimate(1024 * 1024, images=1)
        (3, 4)
    """

    per_image: Mapping[int, int] = field(factory=dict)

    def learn(self, pixels: int, *, images: int, credits: int) -> PriceBook:
        """The book after a task of `images` images of `pixels` pixels cost `credits`."""
        price = math.ceil(credits / max(1, images))
        known = self.per_image.get(pixels, 0)
        if price <= known:
            return self
        return PriceBook({**self.per_image, pixels: price})

    def estimate(self, pixels: int, *, images: int) -> int | None:
        """The credits a task would cost, or None when no price is known."""
        if not self.per_image:
            return None
        if pixels in self.per_image:
            return self.per_image[pixels] * images
        below = [p for p in self.per_image if p < pixels]
        guesses = [self.per_image[p] for p in self.per_image if p > pixels]
        if below:
            nearest = max(below)
            guesses.append(math.ceil(self.per_image[nearest] * pixels / nearest))
        return max(guesses) * images


def estimate_for(
    book: PriceBook, pixels: int, images: int, *, max_credits: int | None, committed: int
) -> int:
    """The credits to reserve for one submit.

    Without a budget nothing is reserved. With one and no known price, the
    submit reserves everything left (at least 1): until one task has reported
    its price, a run with a budget has one submit in flight.

    Example:
        >>> estimate_for(PriceBook(), 4096, 1, max_credits=40, committed=10)
        30
        >>> estimate_for(PriceBook({4096: 1}), 4096, 2, max_credits=40, committed=10)
        2
    """
    if max_credits is None:
        return 0
    known = book.estimate(pixels, images=images)
    if known is not None:
        return known
    return max(1, max_credits - committed)


Verdict = Literal["ok", "wait", "exhausted"]


def admit(max_credits: int | None, *, committed: int, in_flight: int, estimate: int) -> Verdict:
    """Whether a submit reserving `estimate` may go now, later, or never in this run.

    `committed` is what the run has spent or may have spent (finished tasks,
    failed ones, unknown outcomes at their estimate); `in_flight` is what
    submits not yet settled have reserved. A submit that does not fit waits
    while others are in flight (their price may come out lower than
    reserved, and they teach the price book); with nothing in flight, the
    budget is spent.

    Example:
        >>> admit(40, committed=39, in_flight=0, estimate=1)
        'ok'
        >>> admit(40, committed=39, in_flight=1, estimate=1)
        'wait'
        >>> admit(40, committed=40, in_flight=0, estimate=1)
        'exhausted'
    """
    if max_credits is None or committed + in_flight + estimate <= max_credits:
        return "ok"
    return "wait" if in_flight > 0 else "exhausted"


def pixels_and_images(options: Mapping[str, Any]) -> tuple[int, int]:
    """The pixel count and number of images a row's options ask for (defaults: 1024 x 1024 x 1).

    Example:
        >>> pixels_and_images({"width": 512, "height": 256, "batch_size": 2})
        (131072, 2)
    """
    width = int(options.get("width") or 1024)
    height = int(options.get("height") or 1024)
    return width * height, int(options.get("batch_size") or 1)


# --- run ids and ledger URLs ----------------------------------------------------------

_RUN_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_run_id(run_id: str) -> str:
    """Refuse a run id that is not 1-100 letters, digits, dots, dashes or underscores.

    Example:
        >>> check_run_id("prompts-1a2b")
        'prompts-1a2b'
    """
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValidationError(
            f"run id must be 1..100 letters, digits, '.', '-' or '_' (starting with a "
            f"letter or digit), got {run_id!r}"
        )
    return run_id


def default_run_id(out_folder: str) -> str:
    """The run id of a batch: the name of its output folder, made safe.

    One run per output folder, whatever the prompts file is called or where it
    lies: moving or renaming the file, or starting the same batch from another
    machine with the same ``--out`` name, finds the same run, so no finished
    prompt is sent again. (The journal before the ledger was per folder too.)

    Example:
        >>> default_run_id("/data/cats, 2026")
        'cats-2026'
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(out_folder).name).strip("-._")[:100]
    return name or "batch"


LedgerKind = Literal["sqlite", "postgresql"]


def parse_ledger_url(url: str) -> tuple[LedgerKind, str]:
    """Split a ledger URL into its kind and what the driver takes.

    ``sqlite:///path/to/file`` (absolute) and ``sqlite:///./relative`` give the
    file's path; ``postgresql://...`` and ``postgres://...`` are handed to
    psycopg as they are.

    Example:
        >>> parse_ledger_url("sqlite:///tmp/run/picpik-ledger.sqlite3")
        ('sqlite', '/tmp/run/picpik-ledger.sqlite3')
        >>> parse_ledger_url("postgresql://me@db/picpik")[0]
        'postgresql'
    """
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        path = url[len("sqlite://") :]
        return "sqlite", path[1:] if path.startswith("/./") else path
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql", url
    raise ValidationError(
        f"--ledger must be sqlite:///path/to/file or postgresql://..., got {_redact(url)!r}"
    )


def _redact(url: str) -> str:
    """What of a database URL may be shown: scheme, host, port and database, never a
    password (even one with ``@`` or ``/`` in it) or any query parameter (a
    ``password=`` may hide there).

    Example:
        >>> _redact("postgresql://me:p@ss/word@db:5432/picpik?password=x")
        'postgresql://me:***@db:5432/picpik'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<not a URL>"
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    credentials, at, place = rest.rpartition("@")
    if not at:
        return f"{scheme}://{place}"
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{place}" if ":" in credentials else f"{scheme}://{user}@{place}"


# --- the transactions, as generators of queries ---------------------------------------


@frozen
class Query:
    """One SQL statement a transaction needs run, with named ``:param`` placeholders.

    `fetch` says what the generator gets back: ``"one"`` a row mapping or None,
    ``"all"`` a list of row mappings, ``"count"`` the number of rows changed.
    `many` runs the statement once per parameter mapping (answer: None).
    """

    sql: str
    params: Mapping[str, Any] = field(factory=dict)
    fetch: Literal["one", "all", "count"] = "count"
    many: Sequence[Mapping[str, Any]] = ()


Transaction = Generator[Query, Any, Any]

#: The ledger's tables, as both SQLite and PostgreSQL read them. `{lock}`,
#: `{greatest}` are filled in by each store's dialect.
SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS picpik_runs (
        run_id TEXT PRIMARY KEY,
        created_at DOUBLE PRECISION NOT NULL,
        max_credits BIGINT,
        spent BIGINT NOT NULL DEFAULT 0,
        reserved BIGINT NOT NULL DEFAULT 0,
        held BIGINT NOT NULL DEFAULT 0,
        exhausted INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS picpik_rows (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        position INTEGER NOT NULL,
        prompt TEXT NOT NULL,
        options TEXT NOT NULL,
        state TEXT NOT NULL,
        request_uuid TEXT,
        task_uid TEXT,
        files TEXT NOT NULL DEFAULT '[]',
        seed BIGINT,
        credits BIGINT,
        estimate BIGINT NOT NULL DEFAULT 0,
        error TEXT,
        worker TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, key)
    )""",
    "CREATE INDEX IF NOT EXISTS picpik_rows_state ON picpik_rows (run_id, state)",
    """CREATE TABLE IF NOT EXISTS picpik_prices (
        pixels BIGINT PRIMARY KEY,
        per_image BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS picpik_meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
)

_ROW_COLUMNS: Final = (
    "run_id, key, position, prompt, options, state, request_uuid, task_uid, files, seed, "
    "credits, estimate, error, worker, created_at, updated_at"
)


#: One row, locked (PostgreSQL) until the transaction ends: no other transaction
#: can move it between this read and the writes that depend on it.
_ROW_FOR_UPDATE: Final = (
    f"SELECT {_ROW_COLUMNS} FROM picpik_rows WHERE run_id = :run_id AND key = :key {{lock}}"
)


def _sources(move: Move) -> str:
    """The SQL list of a move's source states (fixed words from `MOVES`, never input)."""
    return ", ".join(f"'{state}'" for state in sorted(move.sources))


def row_from(record: Mapping[str, Any]) -> Row:
    """A `Row` from a database record of `_ROW_COLUMNS`."""
    return Row(
        run_id=record["run_id"],
        key=record["key"],
        position=int(record["position"]),
        prompt=record["prompt"],
        options=json.loads(record["options"]),
        state=record["state"],
        request_uuid=record["request_uuid"],
        task_uid=record["task_uid"],
        files=tuple(json.loads(record["files"] or "[]")),
        seed=record["seed"],
        credits=record["credits"],
        estimate=int(record["estimate"] or 0),
        error=record["error"],
        worker=record["worker"],
        created_at=float(record["created_at"]),
        updated_at=float(record["updated_at"]),
    )


@frozen
class NewRow:
    """A prompt to add to a run: its key, text and generate() options."""

    key: str
    prompt: str
    options: Mapping[str, Any] = field(factory=dict)


def add_run(
    run_id: str, rows: Iterable[NewRow], *, max_credits: int | None, now: float
) -> Transaction:
    """Create a run (or give it a new budget) and add the prompts it does not have yet.

    Prompts already in the run keep their state: adding is how a re-run resumes.
    A re-run without `max_credits` keeps the run's budget.
    """
    check_run_id(run_id)
    yield Query(
        "INSERT INTO picpik_runs (run_id, created_at, max_credits) VALUES (:run_id, :now, :max)"
        " ON CONFLICT (run_id) DO UPDATE SET"
        " max_credits = COALESCE(excluded.max_credits, picpik_runs.max_credits), exhausted = 0",
        {"run_id": run_id, "now": now, "max": max_credits},
    )
    params = [
        {"run_id": run_id, "key": row.key, "position": position, "prompt": row.prompt,
         "options": json.dumps(dict(row.options), sort_keys=True, default=str), "now": now}
        for position, row in enumerate(rows)
    ]  # fmt: skip
    if params:
        yield Query(
            "INSERT INTO picpik_rows (run_id, key, position, prompt, options, state, "
            "created_at, updated_at) VALUES (:run_id, :key, :position, :prompt, :options, "
            "'new', :now, :now) ON CONFLICT (run_id, key) DO NOTHING",
            many=params,
        )


def read_rows(run_id: str, keys: Sequence[str] | None = None) -> Transaction:
    """The rows of a run (or only those of `keys`), in the order of the prompts file."""
    if keys is None:
        records = yield Query(
            f"SELECT {_ROW_COLUMNS} FROM picpik_rows WHERE run_id = :run_id ORDER BY position",
            {"run_id": run_id},
            fetch="all",
        )
        return [row_from(r) for r in records]
    rows: list[Row] = []
    for key in keys:
        record = yield Query(
            f"SELECT {_ROW_COLUMNS} FROM picpik_rows WHERE run_id = :run_id AND key = :key",
            {"run_id": run_id, "key": key},
            fetch="one",
        )
        if record is not None:
            rows.append(row_from(record))
    return rows


@frozen
class ClaimResult:
    """What a claim came to: ``claimed`` (send now), ``taken``, ``wait`` or ``exhausted``.

    ``taken``: the row was not in a state the claim starts from (another worker
    has it, or it is over). ``wait``/``exhausted``: the budget (`admit`).
    """

    outcome: Literal["claimed", "taken", "wait", "exhausted"]
    request_uuid: str | None = None
    estimate: int = 0


def claim(
    run_id: str,
    key: str,
    *,
    request_uuid: str,
    worker: str,
    now: float,
    resend: bool = False,
) -> Transaction:
    """Claim one row right before its submit: commit its request_uuid and reserve its price.

    A resend claims an unknown row and keeps the request_uuid it already has.
    With a budget, the run's row is locked first (``{lock}``), so claims of
    all workers reserve one after another; without one, claims of different
    rows do not wait for each other.
    """
    move = MOVES["resend" if resend else "claim"]
    budget_sql = "SELECT max_credits, spent, reserved, held FROM picpik_runs WHERE run_id = :run_id"
    run = yield Query(budget_sql, {"run_id": run_id}, fetch="one")
    if run is not None and run["max_credits"] is not None:
        # Lock the run's row only when there is a budget to reserve from.
        run = yield Query(budget_sql + " {lock}", {"run_id": run_id}, fetch="one")
    record = yield Query(_ROW_FOR_UPDATE, {"run_id": run_id, "key": key}, fetch="one")
    if run is None or record is None or record["state"] not in move.sources:
        return ClaimResult("taken")
    row = row_from(record)
    max_credits = run["max_credits"]
    committed = int(run["spent"]) + int(run["held"])
    estimate = 0
    if max_credits is not None:
        pixels, images = pixels_and_images(row.options)
        book = yield from read_prices()
        in_flight = int(run["reserved"])
        estimate = estimate_for(
            book, pixels, images, max_credits=max_credits, committed=committed + in_flight
        )
        verdict = admit(max_credits, committed=committed, in_flight=in_flight, estimate=estimate)
        if verdict == "exhausted":
            # What failed tasks and lost answers count may have been a guess that the
            # price book can now lower; then look again.
            freed = yield from _reprice(run_id)
            if freed:
                committed -= freed
                verdict = admit(
                    max_credits, committed=committed, in_flight=in_flight, estimate=estimate
                )
        if verdict != "ok":
            if verdict == "exhausted":
                yield Query(
                    "UPDATE picpik_runs SET exhausted = 1 WHERE run_id = :run_id",
                    {"run_id": run_id},
                )
            return ClaimResult(verdict)
    uuid = row.request_uuid if resend and row.request_uuid else request_uuid
    changed = yield Query(
        "UPDATE picpik_rows SET state = :to, request_uuid = :uuid, estimate = :estimate, "
        "worker = :worker, error = NULL, updated_at = :now WHERE run_id = :run_id AND key = :key "
        f"AND state IN ({_sources(move)})",
        {"to": move.to, "uuid": uuid, "estimate": estimate, "worker": worker, "now": now,
         "run_id": run_id, "key": key},
    )  # fmt: skip
    if not changed:
        return ClaimResult("taken")
    held = row.estimate if resend else 0  # a resent unknown row's estimate leaves held
    if estimate or held:
        yield Query(
            "UPDATE picpik_runs SET reserved = reserved + :estimate, held = held - :held "
            "WHERE run_id = :run_id",
            {"estimate": estimate, "held": held, "run_id": run_id},
        )
    return ClaimResult("claimed", uuid, estimate)


def read_prices() -> Generator[Query, Any, PriceBook]:
    """The price book every run shares."""
    records = yield Query("SELECT pixels, per_image FROM picpik_prices", fetch="all")
    return PriceBook({int(r["pixels"]): int(r["per_image"]) for r in records})


def submitted(run_id: str, key: str, *, task_uid: str, now: float) -> Transaction:
    """Record the TaskUID of a row's submit (from claimed, or from unknown when late)."""
    move = MOVES["submitted"]
    record = yield Query(_ROW_FOR_UPDATE, {"run_id": run_id, "key": key}, fetch="one")
    changed = yield Query(
        "UPDATE picpik_rows SET state = :to, task_uid = :task_uid, error = NULL, "
        "updated_at = :now WHERE run_id = :run_id AND key = :key "
        f"AND state IN ({_sources(move)})",
        {"to": move.to, "task_uid": task_uid, "now": now, "run_id": run_id, "key": key},
    )
    if changed and record is not None and record["state"] == "unknown" and record["estimate"]:
        # An unknown outcome's estimate was held as spent; the task is in flight again.
        yield Query(
            "UPDATE picpik_runs SET held = held - :e, reserved = reserved + :e "
            "WHERE run_id = :run_id",
            {"e": int(record["estimate"]), "run_id": run_id},
        )
    return bool(changed)


def settle(
    run_id: str,
    key: str,
    event: Literal["finished", "failed", "unknown"],
    *,
    now: float,
    files: Sequence[str] = (),
    seed: int | None = None,
    credits: int | None = None,
    error: str | None = None,
) -> Transaction:
    """Record how a row ended, and move its reservation to what it cost.

    - finished: the reported credits are spent (the estimate when none is
      reported), and the price book learns them;
    - failed before a TaskUID: nothing was created, the reservation is released;
      failed after one: the task may have been charged, its estimate is spent;
    - unknown: the estimate is held as spent until the user reconciles the row.
    """
    move = MOVES[event]
    record = yield Query(_ROW_FOR_UPDATE, {"run_id": run_id, "key": key}, fetch="one")
    if record is None or record["state"] not in move.sources:
        return False
    row = row_from(record)
    changed = yield Query(
        "UPDATE picpik_rows SET state = :to, files = :files, seed = :seed, credits = :credits, "
        "error = :error, updated_at = :now WHERE run_id = :run_id AND key = :key "
        f"AND state IN ({_sources(move)})",
        {"to": move.to, "files": json.dumps(list(files)), "seed": seed, "credits": credits,
         "error": error, "now": now, "run_id": run_id, "key": key},
    )  # fmt: skip
    if not changed:
        return False
    in_flight = row.estimate if row.state in ("claimed", "submitted") else 0
    spent, held = _cost(row, event, credits)
    if in_flight or spent or held:
        yield Query(
            "UPDATE picpik_runs SET reserved = reserved - :in_flight, spent = spent + :spent, "
            "held = held + :held WHERE run_id = :run_id",
            {"in_flight": in_flight, "spent": spent, "held": held, "run_id": run_id},
        )
    if event == "finished" and credits is not None:
        pixels, images = pixels_and_images(row.options)
        price = math.ceil(credits / max(1, images))
        yield Query(
            "INSERT INTO picpik_prices (pixels, per_image) VALUES (:pixels, :price) "
            "ON CONFLICT (pixels) DO UPDATE SET per_image = "
            "{greatest}(picpik_prices.per_image, excluded.per_image)",
            {"pixels": pixels, "price": price},
        )
        if row.estimate > credits:  # the estimate was a guess: others may have been too
            yield from _reprice(run_id)
    return True


def _reprice(run_id: str) -> Transaction:
    """Lower what failed tasks and unknown outcomes count, now that a price is known.

    Until a run knows a price, a submit reserves all that is left; one that then
    fails, or whose answer is lost, would count all of it and stop the run. Its
    cost is counted at the price the book now gives instead (never higher).
    """
    book = yield from read_prices()
    records = yield Query(
        f"SELECT {_ROW_COLUMNS} FROM picpik_rows WHERE run_id = :run_id AND estimate > 0 "
        "AND (state = 'unknown' OR (state = 'failed' AND task_uid IS NOT NULL))",
        {"run_id": run_id},
        fetch="all",
    )
    spent = held = 0
    for record in records:
        row = row_from(record)
        pixels, images = pixels_and_images(row.options)
        price = book.estimate(pixels, images=images)
        if price is None or price >= row.estimate:
            continue
        yield Query(
            "UPDATE picpik_rows SET estimate = :price WHERE run_id = :run_id AND key = :key",
            {"price": price, "run_id": run_id, "key": row.key},
        )
        if row.state == "unknown":
            held += row.estimate - price
        else:
            spent += row.estimate - price
    if spent or held:
        yield Query(
            "UPDATE picpik_runs SET spent = spent - :spent, held = held - :held, exhausted = 0 "
            "WHERE run_id = :run_id",
            {"spent": spent, "held": held, "run_id": run_id},
        )
    return spent + held


def _cost(row: Row, event: str, credits: int | None) -> tuple[int, int]:
    """(spent, held) a row's end adds to its run: see `settle`."""
    if event == "finished":
        return (credits if credits is not None else row.estimate), 0
    if event == "unknown":
        return 0, row.estimate
    charged = row.state == "submitted"  # failed after a TaskUID: the task existed
    return (row.estimate if charged else 0), 0


def restore(
    run_id: str,
    key: str,
    state: State,
    *,
    request_uuid: str | None,
    task_uid: str | None,
    files: Sequence[str],
    error: str | None,
    seed: int | None,
    credits: int | None,
    now: float,
) -> Transaction:
    """Give a row still new the state an old journal recorded (`_batch.import_journal`)."""
    changed = yield Query(
        "UPDATE picpik_rows SET state = :state, request_uuid = :uuid, task_uid = :task_uid, "
        "files = :files, error = :error, seed = :seed, credits = :credits, updated_at = :now "
        "WHERE run_id = :run_id AND key = :key AND state = 'new'",
        {"state": state, "uuid": request_uuid, "task_uid": task_uid,
         "files": json.dumps(list(files)), "error": error, "seed": seed, "credits": credits,
         "now": now, "run_id": run_id, "key": key},
    )  # fmt: skip
    if changed and state == "finished" and credits:
        yield Query(
            "UPDATE picpik_runs SET spent = spent + :credits WHERE run_id = :run_id",
            {"credits": credits, "run_id": run_id},
        )
    return bool(changed)


def orphan_claims(run_id: str, keys: Sequence[str] | None, *, now: float) -> Transaction:
    """Turn rows claimed by a worker that is gone into unknown outcomes; the count changed.

    `keys` None means every claimed row of the run (a single process resuming
    its own run); a distributed job passes its own keys.
    """
    rows = yield from read_rows(run_id, keys)
    count = 0
    for row in rows:
        if row.state == "claimed":
            error = "the worker that claimed this prompt stopped before its submit was answered"
            changed = yield from settle(run_id, row.key, "unknown", now=now, error=error)
            count += bool(changed)
    return count


def summaries(run_id: str | None = None) -> Transaction:
    """The summary of every run (or of one), oldest first."""
    where = "WHERE r.run_id = :run_id " if run_id is not None else ""
    records = yield Query(
        "SELECT r.run_id AS run_id, r.created_at AS created_at, r.max_credits AS max_credits, "
        "r.spent AS spent, x.state AS state, COUNT(x.key) AS n "
        "FROM picpik_runs r LEFT JOIN picpik_rows x ON x.run_id = r.run_id "
        f"{where}GROUP BY r.run_id, r.created_at, r.max_credits, r.spent, x.state "
        "ORDER BY r.created_at, r.run_id",
        {"run_id": run_id},
        fetch="all",
    )
    return fold_summaries(records)


def fold_summaries(records: Iterable[Mapping[str, Any]]) -> list[RunSummary]:
    """Per-run counts from (run, state, count) records.

    Example:
        >>> fold_summaries([{"run_id": "r", "created_at": 0, "max_credits": None,
        ...                  "spent": 3, "state": "finished", "n": 3}])[0].finished
        3
    """
    runs: dict[str, dict[str, Any]] = {}
    for record in records:
        run = runs.setdefault(
            record["run_id"],
            {"counts": dict.fromkeys(STATES, 0), "spent": int(record["spent"] or 0),
             "max": record["max_credits"], "created_at": float(record["created_at"])},
        )  # fmt: skip
        if record["state"] is not None:
            run["counts"][record["state"]] += int(record["n"])
    summaries: list[RunSummary] = []
    for run_id, run in runs.items():
        counts = run["counts"]
        summaries.append(
            RunSummary(
                run_id=run_id,
                total=sum(counts.values()),
                finished=counts["finished"],
                failed=counts["failed"],
                unknown=counts["unknown"],
                pending=counts["new"] + counts["claimed"] + counts["submitted"],
                credits=run["spent"],
                max_credits=run["max"],
                created_at=run["created_at"],
            )
        )
    return summaries


def run_state(run_id: str) -> Transaction:
    """(pending rows that can still move, exhausted): whether a distributed run is over.

    Rows left new because the budget is spent do not count as pending work.
    """
    run = yield Query(
        "SELECT exhausted FROM picpik_runs WHERE run_id = :run_id", {"run_id": run_id}, fetch="one"
    )
    records = yield Query(
        "SELECT state, COUNT(key) AS n FROM picpik_rows WHERE run_id = :run_id AND state IN "
        "('new', 'claimed', 'submitted') GROUP BY state",
        {"run_id": run_id},
        fetch="all",
    )
    counts = {r["state"]: int(r["n"]) for r in records}
    exhausted = bool(run["exhausted"]) if run is not None else False
    moving = counts.get("claimed", 0) + counts.get("submitted", 0)
    if not exhausted:
        moving += counts.get("new", 0)
    return moving, exhausted


def get_meta(name: str) -> Transaction:
    """A value of the ledger's meta table, or None."""
    record = yield Query(
        "SELECT value FROM picpik_meta WHERE name = :name", {"name": name}, fetch="one"
    )
    return None if record is None else record["value"]


def set_meta(name: str, value: str) -> Transaction:
    """Set a value of the ledger's meta table."""
    yield Query(
        "INSERT INTO picpik_meta (name, value) VALUES (:name, :value) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        {"name": name, "value": value},
    )
