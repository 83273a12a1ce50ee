"""Resumable batch runs: prompts in, images out, and a ledger that never pays twice.

Each prompt is a row of the ledger (`_ledger`: its states and rules;
`_ledger_stores`: SQLite in the output folder, or PostgreSQL). `Worker` does
one row: claim it (committed before the submit is sent), record the TaskUID
right after, wait, download, settle. `run_batch` runs every row of a run on
one machine; `_distributed` hands the same `Worker` chunks of rows as
Procrastinate jobs.

Runs made before the ledger kept a journal, an append-only JSONL file in the
output folder; `import_journal` reads it into the ledger on resume. Each line
was one event of one prompt, keyed by a stable prompt key:

    {"key": ..., "event": "submitting", "request_uuid": ..., "prompt": ...}
    {"key": ..., "event": "submitted",  "task_uid": ...}
    {"key": ..., "event": "finished",   "files": [...], "seed": ..., "credits": ...}
    {"key": ..., "event": "failed",     "error": ...}
    {"key": ..., "event": "unknown",    "error": ...}

"submitting" was written *before* the request was sent, as a claim is now.
Reading and folding the journal is pure.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.to_thread
import attrs
from attrs import define, evolve, field, frozen

from . import _ledger as rules
from ._actions import GenerateOptions, sdxl_request
from ._client import AsyncClient
from ._errors import (
    LedgerError,
    PicpikError,
    SubmitOutcomeUnknownError,
    TaskTimeoutError,
    ValidationError,
)
from ._images import to_data_uri
from ._ledger import NewRow, Row
from ._ledger_stores import Ledger
from ._protocol import new_request_uuid

__all__ = ["BatchItem", "BatchProgress", "Worker", "import_journal", "read_prompts", "run_batch"]

logger = logging.getLogger("picpik_async.batch")

JOURNAL_NAME: Final = "picpik-journal.jsonl"
Phase = Literal["new", "submitting", "submitted", "finished", "failed", "unknown"]
#: The per-line options of a JSONL batch: exactly `generate()`'s.
GENERATE_OPTIONS: Final = GenerateOptions.names()


@frozen
class BatchItem:
    """One prompt of a batch, with its own generate() options, stable key and line number."""

    key: str
    prompt: str
    options: Mapping[str, Any] = field(factory=dict)
    line: int = field(default=0, eq=False)


@frozen(kw_only=True)
class BatchState:
    """What the journal says about one prompt."""

    phase: Phase = "new"
    request_uuid: str | None = None
    task_uid: str | None = None
    files: tuple[str, ...] = ()
    error: str | None = None
    seed: int | None = None
    credits: int | None = None


def read_prompts(text: str, *, jsonl: bool | None = None, source: str = "") -> list[BatchItem]:
    """Parse a batch file: one prompt a line, or JSONL objects with `prompt` and options.

    Blank lines and lines starting with `#` are skipped. The key of a prompt is a
    hash of its prompt and options plus its occurrence number, so editing other
    lines of the file does not change it. Errors name `source` and the line.

    Example:
        >>> [item.prompt for item in read_prompts("a cat\\n\\n# note\\na dog\\n")]
        ['a cat', 'a dog']
    """
    entries: list[tuple[int, str, dict[str, Any]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = _where(source, number)
        as_json = jsonl if jsonl is not None else line.startswith("{")
        entries.append((number, *(_parse_line(line, where) if as_json else (line, {}))))
    return _keyed(entries)


def read_csv(text: str, *, source: str = "") -> list[BatchItem]:
    """Parse a CSV batch: a header row with `prompt` and any generate() options as columns.

    Cells are typed like the options (``width`` an integer, ``tiling`` true or
    false, ...); an empty cell leaves that option at its default. Rows whose
    prompt is empty are skipped. Errors name the row's line.

    Example:
        >>> [(i.prompt, dict(i.options)) for i in read_csv("prompt,seed\\na cat,7\\na dog,\\n")]
        [('a cat', {'seed': 7}), ('a dog', {})]
    """
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    if "prompt" not in header:
        raise ValidationError(f'{_where(source, 1)}: the header row has no "prompt" column')
    unknown = [name for name in header if name != "prompt" and name not in GENERATE_OPTIONS]
    if unknown:
        allowed = ", ".join(["prompt", *sorted(GENERATE_OPTIONS - {"sub_models"})])
        raise ValidationError(
            f"{_where(source, 1)}: unknown column(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    entries: list[tuple[int, str, dict[str, Any]]] = []
    for cells in reader:
        number = reader.line_num
        row = dict(zip(header, (cell.strip() for cell in cells), strict=False))
        prompt = row.pop("prompt", "")
        if not prompt:
            continue
        options = {k: _cell(k, v, _where(source, number)) for k, v in row.items() if v != ""}
        entries.append((number, prompt, options))
    return _keyed(entries)


def read_batch_file(path: Path) -> list[BatchItem]:
    """The prompts of a batch file, read by its extension: ``.csv``, ``.parquet`` (with
    pyarrow installed), ``.jsonl``, or text (a line starting with ``{`` is JSON).

    Example:
        >>> # items = read_batch_file(Path("prompts.csv"))
    """
    source = path.name
    if path.suffix == ".parquet":
        return _read_parquet(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(f"{source}: cannot read it: {error}") from None
    if path.suffix == ".csv":
        return read_csv(text, source=source)
    return read_prompts(text, jsonl=True if path.suffix == ".jsonl" else None, source=source)


def _read_parquet(path: Path) -> list[BatchItem]:
    try:
        import pyarrow.parquet as parquet
    except ModuleNotFoundError:
        raise ValidationError(
            f"{path.name}: reading Parquet needs pyarrow: pip install pyarrow"
        ) from None
    records = parquet.read_table(path).to_pylist()
    entries = []
    for number, record in enumerate(records, start=1):
        where = f"{path.name} row {number}"
        clean = {k: v for k, v in record.items() if v is not None}
        entries.append((number, *_parse_object(clean, where)))
    return _keyed(entries)


def _where(source: str, number: int) -> str:
    return f"{source} line {number}" if source else f"line {number}"


def _keyed(entries: Iterable[tuple[int, str, dict[str, Any]]]) -> list[BatchItem]:
    """Items with stable keys: a hash of prompt and options, and its occurrence number."""
    items: list[BatchItem] = []
    seen: Counter[str] = Counter()
    for number, prompt, options in entries:
        digest = hashlib.sha256(
            json.dumps([prompt, options], sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        seen[digest] += 1
        items.append(BatchItem(f"{digest}-{seen[digest]}", prompt, options, line=number))
    return items


def _parse_line(line: str, where: str) -> tuple[str, dict[str, Any]]:
    try:
        data = json.loads(line)
    except ValueError:
        raise ValidationError(f"{where}: not valid JSON") from None
    return _parse_object(data, where)


def _parse_object(data: object, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise ValidationError(f'{where}: expected an object with a "prompt" string')
    options = {k: v for k, v in data.items() if k != "prompt"}
    unknown = set(options) - GENERATE_OPTIONS
    if unknown:
        allowed = ", ".join(sorted(GENERATE_OPTIONS))
        raise ValidationError(
            f"{where}: unknown option(s) {', '.join(sorted(unknown))}; allowed: {allowed}"
        )
    return data["prompt"], options


_TRUE: Final = frozenset({"true", "yes", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "0", "off"})


def _cell(name: str, text: str, where: str) -> Any:
    """A CSV cell as the type of the `GenerateOptions` field `name`."""
    kind = _OPTION_TYPES[name]
    try:
        if kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if kind in (int, float):
            return kind(text)
    except ValueError:
        what = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise ValidationError(f"{where}: {name} must be {what}, got {text!r}") from None
    if kind is list:
        raise ValidationError(f"{where}: {name} cannot be given in CSV; use a JSONL file")
    return text


def _option_types() -> dict[str, type]:
    """The CSV type of each `GenerateOptions` field, read from its annotation."""
    hints = attrs.resolve_types(GenerateOptions)
    types: dict[str, type] = {}
    for field_ in attrs.fields(hints):
        hint = str(field_.type)
        plain = field_.type if isinstance(field_.type, type) else None
        types[field_.name] = (
            plain if plain in (bool, int, float) else list if "Sequence" in hint else str
        )
    return types


_OPTION_TYPES: Final = _option_types()


@define
class Journal:
    """The folded journal of a batch folder made before the ledger (read-only).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / JOURNAL_NAME).write_text(
        ...     '{"key": "k", "event": "submitting", "request_uuid": "u"}\\n', encoding="utf-8")
        >>> Journal.open(folder).state("k").phase
        'submitting'
    """

    path: Path
    states: dict[str, BatchState] = field(factory=dict)

    @classmethod
    def open(cls, folder: Path) -> Journal:
        """Load the journal of `folder` (empty when there is none)."""
        journal = cls(folder / JOURNAL_NAME)
        if journal.path.exists():
            for line in journal.path.read_text(encoding="utf-8").splitlines():
                journal._fold(line)
        return journal

    def _fold(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # a line cut short by a crash: the events before it still count
        if isinstance(event, dict) and isinstance(event.get("key"), str):
            self.states[event["key"]] = _apply(self.state(event["key"]), event)

    def state(self, key: str) -> BatchState:
        """The folded state of one prompt key."""
        return self.states.get(key, BatchState())


def _error_text(event: Mapping[str, Any]) -> str:
    return str(event.get("error", ""))


# The journal's transitions: each event moves a prompt to the phase of the same
# name and sets one field of its state, read from the event by the function given.
_TRANSITIONS: Final[Mapping[str, tuple[str, Callable[[Mapping[str, Any]], object]]]] = {
    "submitting": ("request_uuid", lambda event: event.get("request_uuid")),
    "submitted": ("task_uid", lambda event: event.get("task_uid")),
    "finished": ("files", lambda event: tuple(event.get("files") or ())),
    "failed": ("error", _error_text),
    "unknown": ("error", _error_text),
}


def _apply(state: BatchState, event: Mapping[str, Any]) -> BatchState:
    """The state after one journal event, looked up in `_TRANSITIONS` (unknown events: none)."""
    kind = event.get("event")
    if not isinstance(kind, str) or kind not in _TRANSITIONS:
        return state
    name, read = _TRANSITIONS[kind]
    changes: dict[str, Any] = {"phase": kind, name: read(event)}
    if kind == "finished":  # what the ledger keeps beside the files
        changes.update(
            seed=_int_or_none(event.get("seed")), credits=_int_or_none(event.get("credits"))
        )
    return evolve(state, **changes)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


#: Journal phases as ledger states ("submitting" was a claim).
_JOURNAL_STATES: Final[Mapping[str, rules.State]] = {
    "submitting": "claimed",
    "submitted": "submitted",
    "finished": "finished",
    "failed": "failed",
    "unknown": "unknown",
}


async def import_journal(ledger: Ledger, run_id: str, folder: Path) -> int:
    """Read a pre-ledger journal of `folder` into the run, once; the rows it set.

    Only rows still new take the journal's state, so importing twice (or after
    the ledger moved on) changes nothing. A prompt the journal had as
    "submitting" becomes claimed, and then unknown like any orphaned claim.

    Example:
        >>> # await import_journal(ledger, "prompts-1a2b3c4d", Path("out"))
    """
    journal = await anyio.to_thread.run_sync(Journal.open, folder)
    marker = f"journal-imported:{run_id}"
    if not journal.states or await ledger.get_meta(marker) is not None:
        return 0
    changed = 0
    for key, state in journal.states.items():
        if state.phase == "new":
            continue
        moved = await ledger.run(
            rules.restore(
                run_id, key, _JOURNAL_STATES[state.phase], request_uuid=state.request_uuid,
                task_uid=state.task_uid, files=state.files, error=state.error,
                seed=state.seed, credits=state.credits, now=time.time(),
            )
        )  # fmt: skip
        changed += bool(moved)
    await ledger.set_meta(marker, str(journal.path))
    return changed


@define
class BatchProgress:
    """Counts a batch run reports as it goes.

    `unsent` counts prompts left new because the run's credit budget is spent;
    `timed_out` prompts whose wait ran out of time (their rows stay submitted,
    so the next run waits for them again).
    """

    total: int
    done: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    submitted: int = 0
    unsent: int = 0
    timed_out: int = 0

    @property
    def pending(self) -> int:
        """Prompts neither done, failed, unknown nor left unsent yet (timed out ones included)."""
        return self.total - self.done - self.failed - self.unknown - self.unsent


Listener = Callable[[BatchProgress, Row], None]

#: How often a submit that does not fit the budget looks again while others are in flight.
BUDGET_RECHECK: Final = 0.2
#: Attempts at recording a TaskUID before it is only logged.
_LEDGER_ATTEMPTS: Final = 5
#: Seconds before the second attempt at recording a TaskUID, doubled each time after.
_LEDGER_BACKOFF: Final = 0.2
#: TaskUIDs per ListTasksDetails when `reconcile` looks unknown rows up.
_LOOKUP_CHUNK: Final = 50
#: What `Worker._claim` returns for a row given back (`Worker.defer_on_budget`).
_DEFERRED: Final = object()


@define
class _Stopper:
    """Cancels the waits (never the submits) of a batch when its stop event is set."""

    event: anyio.Event
    scopes: set[anyio.CancelScope] = field(factory=set)

    @contextmanager
    def cancellable(self) -> Iterator[None]:
        with anyio.CancelScope() as scope:
            if self.event.is_set():
                scope.cancel()
            self.scopes.add(scope)
            try:
                yield
            finally:
                self.scopes.discard(scope)

    async def watch(self) -> None:
        await self.event.wait()
        for scope in list(self.scopes):
            scope.cancel()


@define
class Worker:
    """Does rows of a run: one client and one ledger, shared by everything a process runs.

    Example:
        >>> # worker = Worker(client, ledger, Path("out"))
        >>> # row = await worker.do(row)
    """

    client: AsyncClient
    ledger: Ledger
    out: Path
    retry_unknown: bool = False
    timeout: float | None = None
    stop: anyio.Event = field(factory=anyio.Event)
    on_change: Listener | None = None
    progress: BatchProgress = field(factory=lambda: BatchProgress(total=0))
    name: str = field(factory=lambda: f"worker-{uuid.uuid4().hex[:12]}")
    #: Give a row back (`do` returns True) instead of waiting while the budget is held
    #: by submits in flight: a distributed job then ends, so the jobs of the rows that
    #: hold the budget can run (`_distributed`).
    defer_on_budget: bool = False
    _stopper: _Stopper = field(init=False)
    #: Rows of this worker past their claim and not yet ended (sending, or waited for):
    #: while there are none, a budget held by submits in flight is held by nobody this
    #: process will see settle.
    _holding: set[str] = field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        self._stopper = _Stopper(self.stop)

    async def watch_stop(self) -> None:
        """Cancel the waits when `stop` is set (run it in the task group doing the rows)."""
        await self._stopper.watch()

    async def do(self, row: Row) -> bool:
        """Take one row as far as it goes: skip, submit, wait, or report it.

        Returns True when the row was given back untouched, to be done later
        (`defer_on_budget`).
        """
        try:
            return await self._do(row)
        finally:
            if self.on_change is not None:
                (latest,) = await self.ledger.rows(row.run_id, [row.key])
                self.on_change(self.progress, latest)

    async def _do(self, row: Row) -> bool:
        progress = self.progress
        step = rules.next_step(row.state, resend_unknown=self.retry_unknown)
        if step == "skip":
            progress.done += 1
            progress.skipped += 1
            return False
        if step == "orphaned":
            await self.ledger.orphan_claims(row.run_id, [row.key])
            step = rules.next_step("unknown", resend_unknown=self.retry_unknown)
            if step == "report":
                progress.unknown += 1
                return False
        if step == "report":
            self._count_final(row.state)
            return False
        task_uid = row.task_uid
        if step == "wait":
            self._holding.add(row.key)
        try:
            if step in ("submit", "resend"):
                outcome = await self._submit(row, resend=step == "resend")
                if not isinstance(outcome, str):
                    return outcome is _DEFERRED
                task_uid = outcome
            if task_uid is None:  # a submitted row always has one, unless edited by hand
                await self.ledger.settle(row.run_id, row.key, "failed", error="no TaskUID recorded")
                self.progress.failed += 1
                return False
            with self._stopper.cancellable():  # a stop ends the wait; the submit ran to its end
                await self._wait_and_save(row, task_uid)
            return False
        finally:
            self._holding.discard(row.key)

    def _count_final(self, state: str) -> None:
        if state == "failed":
            self.progress.failed += 1
        else:
            self.progress.unknown += 1

    async def _submit(self, row: Row, *, resend: bool) -> str | object | None:
        """Claim, send and record a row's submit: its TaskUID, `_DEFERRED`, or None."""
        ledger, run_id, key = self.ledger, row.run_id, row.key
        try:
            options = GenerateOptions.from_mapping(row.options)
            uri = await to_data_uri(options.image) if options.image is not None else None
            request = sdxl_request(row.prompt, options, image_uri=uri)
        except (PicpikError, TypeError) as error:  # a bad option on this line: nothing was sent
            await ledger.settle(run_id, key, "failed", error=str(error))
            self.progress.failed += 1
            return None
        return await self._claim_and_send(row, request, resend=resend)

    async def _claim_and_send(self, row: Row, request: Any, *, resend: bool) -> str | object | None:
        """Claim the row and send its submit; its TaskUID, `_DEFERRED` or None (not sent).

        A claim and its submit are one step that nothing cancels: a claim
        committed whose submit was never sent would be an unknown outcome for
        nothing. While the budget is held by submits in flight, the claim waits
        for them (only while this worker has rows of its own going, which will
        settle: a budget held by tasks nobody here waits for is reported as
        unsent), or, `defer_on_budget`, gives the row back.
        """
        while True:
            if self.stop.is_set():
                return None
            with anyio.CancelScope(shield=True):
                result = await self.ledger.claim(
                    row.run_id, row.key, request_uuid=new_request_uuid(), worker=self.name,
                    resend=resend,
                )  # fmt: skip
                if result.outcome == "claimed" and result.request_uuid is not None:
                    self._holding.add(row.key)
                    return await self._send(row, request, result.request_uuid)
            if result.outcome == "wait" and self.defer_on_budget:
                return _DEFERRED
            if result.outcome == "wait" and self._holding:  # rows of ours will settle
                await anyio.sleep(BUDGET_RECHECK)
                continue
            if result.outcome in ("wait", "exhausted"):
                self.progress.unsent += 1
            return None  # taken: another worker has it, or it is over

    async def _send(self, row: Row, request: Any, request_uuid: str) -> str | None:
        """Send a claimed row's submit and record what came of it (shielded by the caller)."""
        ledger, run_id, key = self.ledger, row.run_id, row.key
        try:
            handle = await self.client.submit(request, request_uuid=request_uuid)
        except SubmitOutcomeUnknownError as error:
            await ledger.settle(run_id, key, "unknown", error=str(error))
            self.progress.unknown += 1
            return None
        except PicpikError as error:  # refused by the service: nothing was created
            await ledger.settle(run_id, key, "failed", error=str(error))
            self.progress.failed += 1
            return None
        await self._record_submitted(row, handle.task_uid, request_uuid)
        self.progress.submitted += 1
        return handle.task_uid

    async def _record_submitted(self, row: Row, task_uid: str, request_uuid: str) -> None:
        """Record a TaskUID, trying again on a ledger error: it is what makes a re-run free.

        If the ledger stays unwritable, the TaskUID is logged (with the
        request_uuid) and the wait goes on with it in memory; a later run sees
        the row as an unknown outcome, and the log says which task it was.
        """
        for attempt in range(_LEDGER_ATTEMPTS):
            try:
                await self.ledger.submitted(row.run_id, row.key, task_uid)
                return
            except LedgerError as error:
                if attempt + 1 == _LEDGER_ATTEMPTS:
                    logger.error(
                        "run %s: could not record TaskUID %s (request_uuid %s) of prompt %r: "
                        "%s", row.run_id, task_uid, request_uuid, row.prompt[:60], error,
                    )  # fmt: skip
                    return
                await anyio.sleep(_LEDGER_BACKOFF * 2**attempt)

    async def _wait_and_save(self, row: Row, task_uid: str) -> None:
        try:
            result = await self.client.wait(task_uid, self.timeout, prompt=row.prompt)
            paths = await self.client.download(result, self.out)
        except TaskTimeoutError:  # the task goes on: the row stays submitted for the next run
            self.progress.timed_out += 1
            return
        except PicpikError as error:
            await self.ledger.settle(row.run_id, row.key, "failed", error=str(error))
            self.progress.failed += 1
            return
        await self.ledger.settle(
            row.run_id, row.key, "finished", files=[p.name for p in paths], seed=result.seed,
            credits=result.credits,
        )  # fmt: skip
        self.progress.done += 1


def new_rows(items: Iterable[BatchItem], defaults: Mapping[str, Any] | None = None) -> list[NewRow]:
    """The ledger rows of a batch's prompts: each line's options over the command's.

    A row keeps every option it is sent with (JSON: a path as its text), so a
    worker on another machine sends exactly what the command asked for.
    """
    base = {name: str(value) if isinstance(value, Path) else value
            for name, value in (defaults or {}).items()}  # fmt: skip
    return [NewRow(item.key, item.prompt, {**base, **item.options}) for item in items]


async def run_batch(
    client: AsyncClient,
    items: Sequence[BatchItem],
    out: Path,
    ledger: Ledger,
    *,
    run_id: str,
    concurrency: int = 8,
    defaults: Mapping[str, Any] | None = None,
    retry_unknown: bool = False,
    stop: anyio.Event | None = None,
    on_change: Listener | None = None,
    timeout: float | None = None,
    max_credits: int | None = None,
) -> tuple[BatchProgress, list[Row]]:
    """Run (or resume) a batch on this machine: skip finished prompts, wait for submitted
    ones, send new ones; returns the progress and the run's rows.

    The run's prompts are added to the ledger first (a prompt it has keeps its
    state), a journal from before the ledger is imported, and rows claimed by a
    process that is gone become unknown outcomes. When `stop` is set, no new
    submit starts; submits in flight finish and are recorded, and waits end
    (their TaskUIDs are in the ledger for the next run).

    Example:
        >>> # async with open_ledger(sqlite_url(out)) as ledger:
        >>> #     progress, rows = await run_batch(client, items, out, ledger, run_id="cats")
    """
    with ledger.exclusive():
        return await _run_batch(
            client, items, out, ledger, run_id=run_id, concurrency=concurrency,
            defaults=defaults, retry_unknown=retry_unknown, stop=stop, on_change=on_change,
            timeout=timeout, max_credits=max_credits,
        )  # fmt: skip


async def _run_batch(
    client: AsyncClient,
    items: Sequence[BatchItem],
    out: Path,
    ledger: Ledger,
    *,
    run_id: str,
    concurrency: int,
    defaults: Mapping[str, Any] | None,
    retry_unknown: bool,
    stop: anyio.Event | None,
    on_change: Listener | None,
    timeout: float | None,
    max_credits: int | None,
) -> tuple[BatchProgress, list[Row]]:
    await ledger.add_run(run_id, new_rows(items, defaults), max_credits=max_credits)
    await import_journal(ledger, run_id, out)
    await ledger.orphan_claims(run_id)
    wanted = {item.key for item in items}
    # Submitted rows first: they hold budget reservations that only their end
    # releases, so they must never wait behind rows waiting for that budget.
    rows = sorted(
        (row for row in await ledger.rows(run_id) if row.key in wanted),
        key=lambda row: row.state != "submitted",
    )
    worker = Worker(
        client, ledger, out, retry_unknown=retry_unknown, timeout=timeout,
        stop=stop or anyio.Event(), on_change=on_change, progress=BatchProgress(total=len(rows)),
    )  # fmt: skip
    slots = anyio.Semaphore(concurrency)

    async def one(row: Row) -> None:
        try:
            await worker.do(row)
        finally:
            slots.release()

    async with anyio.create_task_group() as group:
        group.start_soon(worker.watch_stop)
        async with anyio.create_task_group() as workers:
            for row in rows:
                await slots.acquire()
                if worker.stop.is_set():
                    slots.release()
                    break
                workers.start_soon(one, row)
        group.cancel_scope.cancel()
    final = [row for row in await ledger.rows(run_id) if row.key in wanted]
    return worker.progress, final


@define
class Reconciled:
    """What `reconcile` found for a run's unknown outcomes."""

    run_id: str
    found: list[Row] = field(factory=list)
    resent: list[Row] = field(factory=list)
    still_unknown: list[Row] = field(factory=list)
    unowned_tasks: list[str] = field(factory=list)

    def lines(self) -> list[str]:
        """The report, one line per fact."""
        lines = [f"run {self.run_id}:"]
        lines += [f"found: {r.prompt} is task {r.task_uid}, now {r.state}" for r in self.found]
        lines += [f"resent: {r.prompt} ({r.request_uuid}), now {r.state}" for r in self.resent]
        if self.unowned_tasks:
            lines.append(
                f"{len(self.unowned_tasks)} running task(s) of the account belong to no prompt of "
                "this run (they may be the unknown prompts' tasks, or another program's): "
                + ", ".join(self.unowned_tasks)
            )
        for row in self.still_unknown:
            lines.append(f"unknown: {row.prompt} (request_uuid {row.request_uuid}): {row.error}")
        if self.still_unknown:
            lines.append(
                "Resend them with `picpik runs reconcile RUN --resend` (the same request_uuid; "
                "may cost twice), or leave them."
            )
        if len(lines) == 1:
            lines.append("no unknown outcomes")
        return lines


async def reconcile(
    client: AsyncClient,
    ledger: Ledger,
    run_id: str,
    out: Path,
    *,
    resend: bool = False,
    timeout: float | None = None,
    concurrency: int = 8,
) -> Reconciled:
    """Look for the tasks of a run's unknown outcomes; resend the rest if asked.

    PICPIK cannot be asked for a task by request_uuid. An unknown row with a
    TaskUID (from a journal, or a late answer) is looked up and, if the
    service knows it, waited for. The account's running tasks that no row of
    the run owns are listed. With `resend`, the remaining unknown rows are
    sent again with their own request_uuid.

    Example:
        >>> # report = await reconcile(client, ledger, "cats-1a2b3c4d", Path("out"))
    """
    report = Reconciled(run_id)
    rows = await ledger.rows(run_id)
    unknown = [r for r in rows if r.state == "unknown"]
    worker = Worker(client, ledger, out, retry_unknown=True, timeout=timeout)
    with_uid = [r for r in unknown if r.task_uid]
    known: set[str] = set()
    uids = [r.task_uid or "" for r in with_uid]
    for start in range(0, len(uids), _LOOKUP_CHUNK):  # within any list limit
        known |= {
            d.task_uid for d in await client.list_tasks_details(uids[start : start + _LOOKUP_CHUNK])
        }
    if with_uid:
        for row in with_uid:
            if row.task_uid in known and await ledger.submitted(
                run_id, row.key, row.task_uid or ""
            ):
                (moved,) = await ledger.rows(run_id, [row.key])
                await worker.do(moved)
                (done,) = await ledger.rows(run_id, [row.key])
                report.found.append(done)
    owned = {r.task_uid for r in rows if r.task_uid}
    report.unowned_tasks = [uid for uid in await client.list_running_tasks() if uid not in owned]
    found = {r.key for r in report.found}
    left = [r for r in unknown if r.key not in found]
    if resend and left:
        slots = anyio.Semaphore(concurrency)

        async def one(row: Row) -> None:
            async with slots:
                await worker.do(row)

        async with anyio.create_task_group() as group:
            for row in left:
                group.start_soon(one, row)
        report.resent = await ledger.rows(run_id, [r.key for r in left])
        left = [r for r in report.resent if r.state == "unknown"]
    report.still_unknown = left
    return report
