"""Resumable batch runs: prompts in, images out, and a journal that never pays twice.

The journal is an append-only JSONL file in the output folder. Each line is one
event of one prompt, keyed by a stable prompt key:

    {"key": ..., "event": "submitting", "request_uuid": ..., "prompt": ...}
    {"key": ..., "event": "submitted",  "task_uid": ...}
    {"key": ..., "event": "finished",   "files": [...], "seed": ..., "credits": ...}
    {"key": ..., "event": "failed",     "error": ...}
    {"key": ..., "event": "unknown",    "error": ...}

"submitting" is written *before* the request is sent, so a run killed mid-submit
leaves a prompt whose outcome is unknown rather than one that looks unsent: a
re-run never sends it again unless asked to (`retry_unknown`, with the same
request_uuid). Reading and folding the journal is pure; `run_batch` does the I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

import anyio
from attrs import define, evolve, field, frozen

from ._actions import GenerateOptions, sdxl_request
from ._client import AsyncClient
from ._errors import PicpikError, SubmitOutcomeUnknownError, ValidationError
from ._images import to_data_uri
from ._models import TaskHandle
from ._protocol import new_request_uuid

__all__ = ["BatchItem", "BatchState", "Journal", "read_prompts", "run_batch"]

JOURNAL_NAME: Final = "picpik-journal.jsonl"
Phase = Literal["new", "submitting", "submitted", "finished", "failed", "unknown"]
#: The per-line options of a JSONL batch: exactly `generate()`'s.
GENERATE_OPTIONS: Final = GenerateOptions.names()


@frozen
class BatchItem:
    """One prompt of a batch, with its own generate() options and stable key."""

    key: str
    prompt: str
    options: Mapping[str, Any] = field(factory=dict)


@frozen(kw_only=True)
class BatchState:
    """What the journal says about one prompt."""

    phase: Phase = "new"
    request_uuid: str | None = None
    task_uid: str | None = None
    files: tuple[str, ...] = ()
    error: str | None = None


def read_prompts(text: str, *, jsonl: bool | None = None) -> list[BatchItem]:
    """Parse a batch file: one prompt a line, or JSONL objects with `prompt` and options.

    Blank lines and lines starting with `#` are skipped. The key of a prompt is a
    hash of its prompt and options plus its occurrence number, so editing other
    lines of the file does not change it.

    Example:
        >>> [item.prompt for item in read_prompts("a cat\\n\\n# note\\na dog\\n")]
        ['a cat', 'a dog']
    """
    items: list[BatchItem] = []
    seen: Counter[str] = Counter()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        as_json = jsonl if jsonl is not None else line.startswith("{")
        prompt, options = _parse_line(line, number) if as_json else (line, {})
        digest = hashlib.sha256(
            json.dumps([prompt, options], sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        seen[digest] += 1
        items.append(BatchItem(f"{digest}-{seen[digest]}", prompt, options))
    return items


def _parse_line(line: str, number: int) -> tuple[str, dict[str, Any]]:
    try:
        data = json.loads(line)
    except ValueError:
        raise ValidationError(f"line {number}: not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise ValidationError(f'line {number}: expected an object with a "prompt" string')
    options = {k: v for k, v in data.items() if k != "prompt"}
    unknown = set(options) - GENERATE_OPTIONS
    if unknown:
        allowed = ", ".join(sorted(GENERATE_OPTIONS))
        raise ValidationError(
            f"line {number}: unknown option(s) {', '.join(sorted(unknown))}; allowed: {allowed}"
        )
    return data["prompt"], options


@define
class Journal:
    """The append-only journal of a batch's output folder.

    Example:
        >>> import tempfile
        >>> journal = Journal(Path(tempfile.mkdtemp()) / JOURNAL_NAME)
        >>> journal.record("k", "submitting", request_uuid="u")
        >>> journal.state("k").phase
        'submitting'
    """

    path: Path
    states: dict[str, BatchState] = field(factory=dict)

    @classmethod
    def open(cls, folder: Path) -> Journal:
        """Load the journal of `folder` (empty when there is none yet)."""
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

    def record(self, key: str, event: str, **data: Any) -> None:
        """Append one event and fold it in.

        The line is flushed before this returns, so it survives the process being
        killed right after (a "submitting" line is on disk before the request leaves).
        """
        line = json.dumps({"key": key, "event": event, **data}, ensure_ascii=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")
            file.flush()
        self._fold(line)


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
    return evolve(state, **changes)


@define
class BatchProgress:
    """Counts a batch run reports as it goes."""

    total: int
    done: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    submitted: int = 0

    @property
    def pending(self) -> int:
        """Prompts neither done, failed nor unknown yet."""
        return self.total - self.done - self.failed - self.unknown


Listener = Callable[[BatchProgress, BatchItem, BatchState], None]


async def run_batch(
    client: AsyncClient,
    items: Iterable[BatchItem],
    out: Path,
    *,
    concurrency: int = 8,
    defaults: Mapping[str, Any] | None = None,
    retry_unknown: bool = False,
    stop: anyio.Event | None = None,
    on_change: Listener | None = None,
    timeout: float | None = None,
) -> tuple[BatchProgress, Journal]:
    """Run (or resume) a batch: skip finished prompts, wait for submitted ones, send new ones.

    When `stop` is set, no new submit starts; submits in flight finish and are
    journaled, and waits end (their TaskUIDs are in the journal for the next run).

    Example:
        >>> # progress, journal = await run_batch(client, read_prompts(text), Path("out"))
    """
    items = list(items)
    journal = Journal.open(out)
    progress = BatchProgress(total=len(items))
    stopper = _Stopper(stop or anyio.Event())
    slots = anyio.Semaphore(concurrency)

    def changed(item: BatchItem) -> None:
        if on_change is not None:
            on_change(progress, item, journal.state(item.key))

    async def one(item: BatchItem) -> None:
        try:
            await _run_item(client, item, out, journal, progress, defaults or {}, retry_unknown,
                            stopper, timeout)  # fmt: skip
        finally:
            slots.release()
            changed(item)

    async with anyio.create_task_group() as group:
        group.start_soon(stopper.watch)
        async with anyio.create_task_group() as workers:
            for item in items:
                await slots.acquire()
                if stopper.event.is_set():
                    slots.release()
                    break
                workers.start_soon(one, item)
        group.cancel_scope.cancel()
    return progress, journal


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


async def _run_item(
    client: AsyncClient,
    item: BatchItem,
    out: Path,
    journal: Journal,
    progress: BatchProgress,
    defaults: Mapping[str, Any],
    retry_unknown: bool,
    stopper: _Stopper,
    timeout: float | None,
) -> None:
    state = journal.state(item.key)
    if state.phase == "finished":
        progress.done += 1
        progress.skipped += 1
        return
    if state.phase == "failed" or (state.phase in ("unknown", "submitting") and not retry_unknown):
        _count_final(progress, state.phase)
        return
    task_uid = state.task_uid
    if task_uid is None:
        handle = await _submit(client, item, journal, defaults, state.request_uuid)
        if handle is None:
            _count_final(progress, journal.state(item.key).phase)
            return
        progress.submitted += 1
        task_uid = handle.task_uid
    with stopper.cancellable():  # a stop ends the wait; the submit above ran to its end
        await _wait_and_save(client, item, task_uid, out, journal, progress, timeout)


def _count_final(progress: BatchProgress, phase: str) -> None:
    if phase == "failed":
        progress.failed += 1
    else:
        progress.unknown += 1


async def _submit(
    client: AsyncClient,
    item: BatchItem,
    journal: Journal,
    defaults: Mapping[str, Any],
    request_uuid: str | None,
) -> TaskHandle | None:
    try:
        options = GenerateOptions.from_mapping({**defaults, **item.options})
        uri = await to_data_uri(options.image) if options.image is not None else None
        request = sdxl_request(item.prompt, options, image_uri=uri)
    except (PicpikError, TypeError) as error:  # a bad option on this line: nothing was sent
        journal.record(item.key, "failed", error=str(error))
        return None
    uuid = request_uuid or new_request_uuid()
    journal.record(item.key, "submitting", request_uuid=uuid, prompt=item.prompt)
    with anyio.CancelScope(shield=True):  # never abandon a submit half way: record its outcome
        try:
            handle = await client.submit(request, request_uuid=uuid)
        except SubmitOutcomeUnknownError as error:
            journal.record(item.key, "unknown", error=str(error))
            return None
        except PicpikError as error:  # refused by the service: nothing was created
            journal.record(item.key, "failed", error=str(error))
            return None
        journal.record(item.key, "submitted", task_uid=handle.task_uid)
    return handle


async def _wait_and_save(
    client: AsyncClient,
    item: BatchItem,
    task_uid: str,
    out: Path,
    journal: Journal,
    progress: BatchProgress,
    timeout: float | None,
) -> None:
    try:
        result = await client.wait(task_uid, timeout, prompt=item.prompt)
        paths = await client.download(result, out)
    except PicpikError as error:
        journal.record(item.key, "failed", error=str(error))
        progress.failed += 1
        return
    journal.record(item.key, "finished", task_uid=task_uid, files=[p.name for p in paths],
                   seed=result.seed, credits=result.credits)  # fmt: skip
    progress.done += 1
