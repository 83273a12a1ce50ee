"""The poll schedule of the batched waiter: what is due, in which chunks, and when next.

PURE: no I/O, no anyio, no httpx, no clock of its own: every method takes `now`
(seconds on any monotonic clock). `_waiter.py` drives it (docs/protocol.md,
"Polling"; docs/architecture.md, "The data path of one `generate()`").

Every event of the poller (a tick, an answer, a failed request) is answered with
decisions as data: `Step` (send these chunks and maybe a ListRunningTasks, then
nothing is due for so long), `Settle`, `Update`, `UnknownWord`, `Split`,
`Refused`, `BackOff`, `RunningListOff`. `_waiter.py` only carries them out: it
sends the requests, sleeps, sets events and logs.
"""

from __future__ import annotations

import enum
import heapq
import math
import random
import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, assert_never

import attrs
from attrs import define, field, frozen

from ._errors import (
    PicpikError,
    ProtocolError,
    TaskFailedError,
    TaskNotFoundError,
    ValidationError,
    is_parameter_error,
)
from ._models import TaskDetail, TaskStatus

__all__ = [
    "FailedPoll",
    "PollSchedule",
    "PollSettings",
    "check_answer",
    "is_known_status",
    "missing_output",
    "on_failed_poll",
    "task_status",
]

# Status words: only the legacy set is documented (docs/protocol.md, "Status words").
SUCCESS_WORDS: Final = frozenset(
    {"finished", "success", "succeeded", "completed", "complete", "done"}
)
FAILURE_WORDS: Final = frozenset(
    {"error", "failed", "failure", "cancelled", "canceled", "timeout", "timedout", "expired"}
)
PENDING_WORDS: Final = frozenset(
    {"queuing", "queued", "running", "pending", "processing", "waiting", "created", "inprogress"}
)


def _word(status: str) -> str:
    return "".join(ch for ch in status.lower() if ch.isalnum())


def task_status(detail: TaskDetail) -> TaskStatus:
    """Interpret a TaskDetail: failed, succeeded or still pending.

    `ErrorCode` != 0 is a failure whatever the word says; success and failure
    words are matched in any case; any other word means the task is still going.

    Example:
        >>> task_status(TaskDetail(task_uid="u", status="SUCCEEDED"))
        <TaskStatus.SUCCEEDED: 'succeeded'>
    """
    if detail.error_code != 0:
        return TaskStatus.FAILED
    word = _word(detail.status)
    if word in SUCCESS_WORDS:
        return TaskStatus.SUCCEEDED
    if word in FAILURE_WORDS:
        return TaskStatus.FAILED
    return TaskStatus.PENDING


def missing_output(detail: TaskDetail, expects: str | None) -> str | None:
    """Why a finished task's detail is not a usable result, or None when it is.

    A task reported finished with nothing to show is an error, not an empty
    success: `expects` is "images" or "texts" when the request is known (what
    `Request.output` says), None when only the TaskUID is (then either will do).

    Example:
        >>> missing_output(TaskDetail(task_uid="u", status="Finished"), "images")
        'finished without any image URL'
    """
    has = {"images": bool(detail.img_list), "texts": bool(detail.txt_list)}
    if expects is None:
        return None if any(has.values()) else "finished without any image URL or text"
    if has[expects]:
        return None
    return "finished without any image URL" if expects == "images" else "finished without any text"


class FailedPoll(enum.Enum):
    """What the poller does with a ListTasksDetails request that failed (after retries)."""

    SPLIT = "split"  # the list may be too long: halve it, ask for each half
    SETTLE = "settle"  # one TaskUID the service refuses: that task's waiters fail now
    BACK_OFF = "back_off"  # the service is unwell: back the whole poller off


def on_failed_poll(chunk_size: int, error: PicpikError) -> FailedPoll:
    """Decide what a failed poll means (design: only a single-UID failure is that task's).

    Example:
        >>> from picpik_async import APIError
        >>> on_failed_poll(8, APIError("TaskUIDList invalid", ret_code=160))
        <FailedPoll.SPLIT: 'split'>
    """
    if not (is_parameter_error(error) or isinstance(error, ValidationError)):
        return FailedPoll.BACK_OFF
    return FailedPoll.SPLIT if chunk_size > 1 else FailedPoll.SETTLE


def is_known_status(status: str) -> bool:
    """Whether a status word is one we recognise (unknown words are logged once)."""
    word = _word(status)
    return word in SUCCESS_WORDS or word in FAILURE_WORDS or word in PENDING_WORDS


def check_answer(asked: Sequence[str], details: Iterable[TaskDetail]) -> dict[str, TaskDetail]:
    """Index a ListTasksDetails answer by TaskUID, refusing UIDs not asked and duplicates.

    Raises:
        ProtocolError: the answer names a TaskUID twice or one that was not asked.
    """
    wanted = set(asked)
    found: dict[str, TaskDetail] = {}
    for detail in details:
        uid = detail.task_uid
        if uid not in wanted:
            raise ProtocolError(f"ListTasksDetails answered for TaskUID {uid!r:.40}, not asked")
        if uid in found:
            raise ProtocolError(f"ListTasksDetails answered twice for TaskUID {uid!r:.40}")
        found[uid] = detail
    return found


def _positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValidationError(f"PollSettings.{attribute.name} must be a number > 0, got {value!r}")


def _fraction(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and 0 <= number <= 1):
        raise ValidationError(
            f"PollSettings.{attribute.name} must be a number in 0..1, got {value!r}"
        )


def _flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(f"PollSettings.{attribute.name} must be True or False, got {value!r}")


def _count(lo: int, hi: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValidationError(
                f"PollSettings.{attribute.name} must be an integer in {lo}..{hi}, got {value!r}"
            )

    return check


@frozen(kw_only=True)
class PollSettings:
    """How the batched waiter polls.

    Args:
        poll_initial: seconds from registration to a task's first poll.
        poll_max: the longest interval between two polls of a task.
        poll_growth: each interval is the previous one times this.
        poll_jitter: fraction of each interval drawn at random.
        poll_grid: due times snap up to multiples of this, so tasks submitted
            close together share requests.
        poll_batch_size: TaskUIDs per ListTasksDetails request (shrinks by itself
            if the service refuses long lists).
        poll_concurrency: ListTasksDetails requests in flight at once.
        max_misses: polls in a row a task may be missing from answers before its
            waiters fail with `TaskNotFoundError`.
        max_failures: failed polls in a row (after retries) before a task's
            waiters fail with the last error.
        running_set: watch pending tasks with one ListRunningTasks per tick and
            fetch the details only of those that left the list (the default);
            False polls every task on its own schedule above.
        running_interval: seconds between two ticks while tasks are watched that
            way (half of it while fewer than 200 were since the list was last
            idle; twice it after 3 s in which none ended). Long tasks stretch all
            three, up to twice, so that the full interval is 5% of the median time
            the last 64 tasks took to finish or fail. While all of them fit in one
            ListTasksDetails, the tick is that request instead of a
            ListRunningTasks.
        running_grace: seconds a new task may be missing from the running list
            before its absence counts (the list may not show it at once).
        running_retry: seconds the poller keeps to each task's own schedule after
            the running list was refused, failed, or let most tasks go too early.

    Example:
        >>> PollSettings(poll_initial=0.5).poll_batch_size
        200
    """

    poll_initial: float = field(default=1.5, validator=_positive)
    poll_max: float = field(default=8.0, validator=_positive)
    poll_growth: float = field(default=1.25, validator=_positive)
    poll_jitter: float = field(default=0.1, validator=_fraction)
    poll_grid: float = field(default=0.25, validator=_positive)
    poll_batch_size: int = field(default=200, validator=_count(1, 1000))
    poll_concurrency: int = field(default=4, validator=_count(1, 64))
    max_misses: int = field(default=5, validator=_count(1, 1000))
    max_failures: int = field(default=10, validator=_count(1, 1000))
    running_set: bool = field(default=True, validator=_flag)
    running_interval: float = field(default=0.5, validator=_positive)
    running_grace: float = field(default=1.0, validator=_positive)
    running_retry: float = field(default=60.0, validator=_positive)


# --- decisions: what the waiter is to do ------------------------------------------


@frozen
class Step:
    """What the poller does now: send these chunks (and a ListRunningTasks when `tick`),
    then sleep up to `sleep` seconds.

    `sleep` is `math.inf` when nothing is due (nobody waits, or every watched
    TaskUID is in flight): the poller then sleeps until a waiter comes or a poll ends.
    """

    chunks: tuple[tuple[str, ...], ...]
    sleep: float
    tick: bool = False


@frozen
class Settle:
    """A task's waiters are done: with its final detail, or with an error (exactly one)."""

    uid: str
    detail: TaskDetail | None = None
    error: PicpikError | None = None

    def __attrs_post_init__(self) -> None:
        if (self.detail is None) == (self.error is None):
            raise ValueError("Settle takes exactly one of detail and error")


@frozen
class Update:
    """The task is still going and was rescheduled: give its waiters the detail (`on_update`)."""

    detail: TaskDetail


@frozen
class UnknownWord:
    """A status word seen for the first time that we do not know (treated as pending)."""

    word: str


@frozen
class Split:
    """The service refused a list of TaskUIDs as a parameter error: poll each part instead."""

    chunks: tuple[tuple[str, ...], ...]

    @property
    def asked(self) -> int:
        """How many TaskUIDs the refused list held."""
        return sum(len(chunk) for chunk in self.chunks)


@frozen
class Refused:
    """The service refused a single TaskUID; a `Settle` with the error follows."""

    uid: str
    error: PicpikError


@frozen
class BackOff:
    """A poll of `asked` TaskUIDs failed: the whole poller pauses until `until`.

    A `Settle` follows for each TaskUID out of patience (`max_failures`).
    """

    asked: int
    error: PicpikError
    until: float


@frozen
class RunningListOff:
    """The running list is not used until `until`: each task is polled on its own schedule."""

    reason: str
    until: float


#: What the poller is told to do after one status request, in order.
Decision = Settle | Update | UnknownWord | Split | Refused | BackOff | RunningListOff


# Running-set mode (docs/protocol.md, "Polling"). While fewer tasks than
# _FEW_TASKS were watched since the list was last idle, ticks come twice as often:
# one request per tick is still cheap, and the lag halves (the last tasks of a big
# run keep the full interval: they are not a small run). After _QUIET seconds in
# which no task left the list (long tasks early in their life), ticks come half as
# often until one does.
_FEW_TASKS: Final = 200
_QUIET: Final = 3.0
# Long tasks stretch the tick: running_interval becomes _LONG_SHARE of the median
# time the last _DURATIONS tasks took to finish or fail, up to _MAX_STRETCH times
# itself, and the halved and doubled intervals above stretch alike. A result is
# then late by about the same share of its task's time, whatever that is.
_LONG_SHARE: Final = 0.05
_MAX_STRETCH: Final = 2.0
_DURATIONS: Final = 64
# A task the list still shows is fetched anyway this often: a list that lags, or
# never lets a task go, costs lag but never a task.
_RECHECK: Final = 30.0
# How many tasks must have left the list before the poller judges it: if most of
# them were still pending, the list is not a change signal for this account.
_TRUST_SAMPLE: Final = 10


@define
class _Entry:
    interval: float
    since: float = 0.0
    order: int = 0  # when it was first watched: due tasks are asked for in this order
    due: float = math.inf
    push: int = 0  # which of the queue's records for this task is the live one
    waiters: int = 1
    misses: int = 0
    failures: int = 0
    in_flight: bool = False
    by_list: bool = False  # watched through ListRunningTasks, not its own schedule
    listed: bool = False  # seen in the running list at least once
    absent: bool = False  # left the running list: its details are due


@define
class PollSchedule:
    """Which TaskUIDs are watched, and when each is next due.

    With `running_list` (the waiter can send ListRunningTasks and
    `settings.running_set` is on), new tasks are watched through the running list:
    `step` asks for a tick, `on_running` reads its answer, and only tasks that
    left the list are fetched. Otherwise each task is polled on its own schedule.

    Example:
        >>> s = PollSchedule(PollSettings(poll_initial=1, poll_grid=0.5))
        >>> s.watch("u1", now=0.2)
        >>> s.take_due(now=1.0), s.take_due(now=1.5)
        ([], [['u1']])
    """

    settings: PollSettings
    rng: random.Random = field(factory=random.Random)
    batch_size: int = field(default=0)
    running_list: bool = field(default=False)
    paused_until: float = field(default=-math.inf)
    failures_in_row: int = field(default=0)
    running_off_until: float = field(default=-math.inf)
    #: Up to this many tasks watched by the list, a tick is one ListTasksDetails
    #: of them all instead (None: as many as fit in one request).
    details_tick_up_to: int | None = field(default=None)
    _entries: dict[str, _Entry] = field(factory=dict, init=False)
    # Due times as a heap of (due, push, uid): a record is live while its task is
    # watched, not in flight, and `push` is its latest. Stale ones are dropped as
    # they surface, so a step costs O(log n) for each task due, not O(n).
    _queue: list[tuple[float, int, str]] = field(factory=list, init=False)
    _pushes: int = field(default=0, init=False)
    _unknown_words: set[str] = field(factory=set, init=False)
    _by_list: int = field(default=0, init=False)
    _next_tick: float = field(default=math.inf, init=False)
    _tick_in_flight: bool = field(default=False, init=False)
    _tick_sent: float = field(default=0.0, init=False)
    _last_change: float = field(default=0.0, init=False)
    _absences: int = field(default=0, init=False)
    _dropouts: int = field(default=0, init=False)
    _durations: deque[float] = field(factory=lambda: deque(maxlen=_DURATIONS), init=False)
    _stretch: float = field(default=1.0, init=False)
    _peak: int = field(default=0, init=False)  # most tasks watched by the list since idle

    def __attrs_post_init__(self) -> None:
        self.batch_size = self.batch_size or self.settings.poll_batch_size
        self.running_list = self.running_list and self.settings.running_set

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    def _snap(self, when: float) -> float:
        grid = self.settings.poll_grid
        return math.ceil(when / grid) * grid

    def _jittered(self, interval: float) -> float:
        spread = self.settings.poll_jitter
        return interval * (1 - spread / 2 + spread * self.rng.random())

    def watch(self, uid: str, now: float, *, follow: bool = False) -> None:
        """Start (or join) watching a TaskUID: through the running list, or its first
        poll `poll_initial` away.

        `follow`: the waiter wants every pending detail (an `on_update` callback),
        which the running list does not give: the task keeps to its own schedule.
        """
        entry = self._entries.get(uid)
        first = self.settings.poll_initial
        if entry is not None:
            entry.waiters += 1
            if follow and entry.by_list:
                self._leave_list(entry)
                if not entry.in_flight:
                    self._due_at(uid, entry, self._snap(max(now, entry.since + first)))
            return
        self._pushes += 1
        if follow or not self.uses_running_list(now):
            entry = self._entries[uid] = _Entry(interval=first, since=now, order=self._pushes)
            self._due_at(uid, entry, self._snap(now + first))
            return
        if not self._by_list:  # the first task for the list since it was idle
            self._last_change = now
        entry = _Entry(interval=first, since=now, order=self._pushes, by_list=True)
        self._entries[uid] = entry
        self._due_at(uid, entry, now + _RECHECK)
        self._by_list += 1
        self._peak = max(self._peak, self._by_list)
        if self._next_tick == math.inf:
            self._next_tick = now + self._tick_interval(now)

    def unwatch(self, uid: str) -> None:
        """One waiter of a TaskUID left; forget the TaskUID when none is left."""
        entry = self._entries.get(uid)
        if entry is None:
            return
        entry.waiters -= 1
        if entry.waiters <= 0:
            self.forget(uid)

    def forget(self, uid: str) -> None:
        """Stop watching a TaskUID whatever its waiters (it reached a final state)."""
        entry = self._entries.pop(uid, None)
        if entry is not None:
            self._leave_list(entry)

    def uses_running_list(self, now: float) -> bool:
        """Whether a task watched now is watched through ListRunningTasks."""
        return self.running_list and now >= self.running_off_until

    def watched_by_list(self) -> int:
        """How many tasks are watched through the running list."""
        return self._by_list

    def _due_at(self, uid: str, entry: _Entry, when: float) -> None:
        """Set when a task is next due (its earlier records in the queue go stale)."""
        self._pushes += 1
        entry.due, entry.push = when, self._pushes
        heapq.heappush(self._queue, (when, self._pushes, uid))
        if len(self._queue) > 4 * len(self._entries) + 64:  # mostly stale: rebuild it
            live = self._entries.items()
            self._queue = [(e.due, e.push, u) for u, e in live if not e.in_flight]
            heapq.heapify(self._queue)

    def _first_due(self) -> tuple[float, str] | None:
        """The live record due first, dropping the stale ones above it."""
        queue = self._queue
        while queue:
            when, push, uid = queue[0]
            entry = self._entries.get(uid)
            if entry is not None and entry.push == push and not entry.in_flight:
                return when, uid
            heapq.heappop(queue)
        return None

    def next_due(self) -> float | None:
        """When the next poll is due, or None when nothing is watched or all are in flight."""
        first = self._first_due()
        return max(first[0], self.paused_until) if first is not None else None

    def take_due(self, now: float) -> list[list[str]]:
        """The due TaskUIDs in request-sized chunks; they are marked in flight."""
        if now < self.paused_until:
            return []
        due = []
        while (first := self._first_due()) is not None and first[0] <= now:
            heapq.heappop(self._queue)
            self._entries[first[1]].in_flight = True
            due.append(first[1])
        due.sort(key=lambda uid: self._entries[uid].order)
        size = self.batch_size
        return [due[i : i + size] for i in range(0, len(due), size)]

    def split(self, chunk: Sequence[str]) -> list[list[str]]:
        """Halve a chunk the service refused as too long, and remember the smaller size."""
        half = max(1, len(chunk) // 2)
        self.batch_size = max(1, min(self.batch_size, half))
        return [part for part in (list(chunk[:half]), list(chunk[half:])) if part]

    def answered(self) -> None:
        """A poll request succeeded: the poller-wide backoff is over."""
        self.failures_in_row = 0

    def pending(self, uid: str, now: float) -> None:
        """The task is still going: schedule its next poll (or recheck) further out."""
        entry = self._entries.get(uid)
        if entry is None:
            return
        entry.in_flight = False
        entry.misses = entry.failures = 0
        if entry.absent:
            # It left the running list, yet its details say it still runs (the
            # list omits queued tasks, or drops them early): its own schedule
            # watches it from now on.
            self._leave_list(entry)
        if entry.by_list:
            self._due_at(uid, entry, now + _RECHECK)
            return
        entry.interval = min(self.settings.poll_max, entry.interval * self.settings.poll_growth)
        self._due_at(uid, entry, self._snap(now + self._jittered(entry.interval)))

    def missing(self, uid: str, now: float) -> bool:
        """The answer did not mention the task; True when it has been missing too long."""
        entry = self._entries.get(uid)
        if entry is None:
            return False
        self._leave_list(entry)  # unknown to the details too: its own schedule decides
        entry.misses += 1
        if entry.misses >= self.settings.max_misses:
            return True
        entry.in_flight = False
        self._due_at(uid, entry, self._snap(now + self._jittered(entry.interval)))
        return False

    def failed(self, chunk: Sequence[str], now: float) -> list[str]:
        """A poll request failed: back the whole poller off; return TaskUIDs out of patience.

        The backoff doubles with each failed request in a row, from `poll_initial`
        up to `poll_max`; it is shared by all tasks (docs/protocol.md, "Polling
        schedule": a failed poll backs off the whole poller, not each task).
        """
        self.failures_in_row += 1
        settings = self.settings
        exponent = min(self.failures_in_row - 1, 30)
        backoff = self._jittered(min(settings.poll_max, settings.poll_initial * 2.0**exponent))
        self.paused_until = max(self.paused_until, now + backoff)
        exhausted = []
        for uid in chunk:
            entry = self._entries.get(uid)
            if entry is None:
                continue
            entry.in_flight = False
            entry.failures += 1
            self._due_at(uid, entry, self._snap(now + backoff))
            if entry.failures >= self.settings.max_failures:
                exhausted.append(uid)
        return exhausted

    def waiters(self) -> Mapping[str, int]:
        """How many waiters each watched TaskUID has (for tests and debugging)."""
        return {uid: e.waiters for uid, e in self._entries.items()}

    # --- the running list -----------------------------------------------------------

    def _tick_interval(self, now: float) -> float:
        interval = self.settings.running_interval * self._stretch
        if self._peak < _FEW_TASKS:
            interval /= 2
        if now - self._last_change >= _QUIET:
            interval *= 2
        return interval

    def _tick_time(self) -> float | None:
        if not self._by_list or self._tick_in_flight:
            return None
        return self._next_tick

    def _leave_list(self, entry: _Entry) -> None:
        if entry.by_list:
            entry.by_list = False
            self._by_list -= 1
            if not self._by_list:
                self._next_tick = math.inf
                self._peak = 0
        entry.absent = False

    def on_running(self, uids: Iterable[str], now: float) -> None:
        """Read a ListRunningTasks answer: tasks that left the list are due now.

        A task counts as gone once it was seen in the list, or once it is older
        than `running_grace` (the list may not show a new task at once).
        TaskUIDs of other processes of the account are ignored.

        Example:
            >>> s = PollSchedule(PollSettings(running_grace=1), running_list=True)
            >>> s.watch("u1", now=0.0)
            >>> s.on_running(["u1", "someone-else"], now=0.5)
            >>> s.on_running([], now=0.75)
            >>> s.step(now=0.75).chunks
            (('u1',),)
        """
        self._tick_in_flight = False
        listed = set(uids)
        grace = self.settings.running_grace
        left = False
        for uid, entry in self._entries.items():
            if not entry.by_list or entry.absent or entry.in_flight:
                continue
            if uid in listed:
                entry.listed = True
            elif entry.listed or now - entry.since >= grace:
                entry.absent = True
                self._due_at(uid, entry, now)
                left = True
        if left:
            self._last_change = now
        # Paced from when the tick was sent: a slow answer does not stretch the interval.
        interval = self._tick_interval(now)
        self._next_tick = self._tick_sent + interval if self._by_list else math.inf

    def _took(self, seconds: float) -> None:
        """A task watched by the list ended after `seconds`: the tick may stretch."""
        self._durations.append(seconds)
        share = _LONG_SHARE * statistics.median(self._durations)
        self._stretch = min(_MAX_STRETCH, max(1.0, share / self.settings.running_interval))

    def on_running_failure(self, error: PicpikError, now: float) -> list[Decision]:
        """A ListRunningTasks request failed (after retries) or was refused.

        Every task goes to its own schedule; the list is tried again for tasks
        watched after `running_retry` seconds.
        """
        self._tick_in_flight = False
        return [self._running_off(f"ListRunningTasks failed ({error})", now)]

    def _running_off(self, reason: str, now: float) -> RunningListOff:
        self.running_off_until = now + self.settings.running_retry
        self._absences = self._dropouts = 0
        first = self.settings.poll_initial
        for uid, entry in self._entries.items():
            if entry.by_list and not entry.in_flight:
                self._due_at(uid, entry, self._snap(max(now, entry.since + first)))
            self._leave_list(entry)
        return RunningListOff(reason, self.running_off_until)

    def _judge_list(self, now: float) -> list[Decision]:
        """Stop using the running list when most tasks that left it were still going."""
        if self._absences < _TRUST_SAMPLE or 2 * self._dropouts <= self._absences:
            return []
        if not self.uses_running_list(now):
            return []
        reason = f"{self._dropouts} of {self._absences} tasks left the running list too early"
        return [self._running_off(reason, now)]

    # --- decisions ------------------------------------------------------------------

    def step(self, now: float) -> Step:
        """Take the due TaskUIDs in chunks (and the tick, if due); say how long nothing
        else is due.

        Example:
            >>> s = PollSchedule(PollSettings(poll_initial=1, poll_grid=0.5))
            >>> s.watch("u1", now=0.0)
            >>> s.step(now=0.25)
            Step(chunks=(), sleep=0.75, tick=False)
            >>> s.step(now=1.0)
            Step(chunks=(('u1',),), sleep=inf, tick=False)
        """
        tick_at = self._tick_time()
        tick = tick_at is not None and tick_at <= now
        up_to = self.batch_size if self.details_tick_up_to is None else self.details_tick_up_to
        if tick and self._by_list <= up_to and now >= self.paused_until:
            # Every task the list watches fits in one ListTasksDetails: that one
            # request is the tick, and it says more than the list would.
            tick = False
            for uid, entry in self._entries.items():
                if entry.by_list and not entry.in_flight:
                    self._due_at(uid, entry, now)
            self._next_tick = now + self._tick_interval(now)
            tick_at = self._next_tick
        elif tick:
            self._tick_in_flight = True
            self._tick_sent = now
            tick_at = None
        chunks = tuple(tuple(chunk) for chunk in self.take_due(now))
        times = [t for t in (self.next_due(), tick_at) if t is not None]
        return Step(chunks, max(0.0, min(times) - now) if times else math.inf, tick)

    def still_wanted(self, chunk: Sequence[str]) -> list[str]:
        """The TaskUIDs of a chunk someone still waits for (waiters leave while it queues)."""
        return [uid for uid in chunk if uid in self._entries]

    def on_answer(
        self, chunk: Sequence[str], details: Iterable[TaskDetail], now: float
    ) -> list[Decision]:
        """Decide what a ListTasksDetails answer for `chunk` means, task by task.

        A garbled answer (a TaskUID not asked, or twice) is a failed poll.
        """
        try:
            found = check_answer(chunk, details)
        except ProtocolError as error:
            return self.on_failure(chunk, error, now)
        self.answered()
        decisions = [d for uid in chunk for d in self._on_detail(uid, found.get(uid), now)]
        return [*decisions, *self._judge_list(now)]

    def on_failure(self, chunk: Sequence[str], error: PicpikError, now: float) -> list[Decision]:
        """Decide what a failed ListTasksDetails request (after retries) for `chunk` means."""
        match on_failed_poll(len(chunk), error):
            case FailedPoll.SPLIT:
                # The list may be longer than the service accepts (undocumented):
                # halve it and try each half (docs/protocol.md, "Polling").
                return [Split(tuple(tuple(part) for part in self.split(chunk)))]
            case FailedPoll.SETTLE:
                return [Refused(chunk[0], error), self._settle(chunk[0], error=error)]
            case FailedPoll.BACK_OFF:
                exhausted = self.failed(chunk, now)
                settled = [self._settle(uid, error=error) for uid in exhausted]
                return [BackOff(len(chunk), error, self.paused_until), *settled]
            case unreachable:
                assert_never(unreachable)

    def _on_detail(self, uid: str, detail: TaskDetail | None, now: float) -> list[Decision]:
        if detail is None:
            if self.missing(uid, now):
                return [self._settle(uid, error=TaskNotFoundError(uid, self.settings.max_misses))]
            return []
        status = task_status(detail)
        entry = self._entries.get(uid)
        if entry is not None and entry.absent:
            self._absences += 1
            self._dropouts += status is TaskStatus.PENDING
        elif entry is not None and entry.by_list and status is not TaskStatus.PENDING:
            self._last_change = now  # a tick made of details saw a task end
            self._next_tick = min(self._next_tick, now + self._tick_interval(now))
        if entry is not None and entry.by_list and status is not TaskStatus.PENDING:
            self._took(now - entry.since)
        match status:
            case TaskStatus.PENDING:
                self.pending(uid, now)
                return [*self._note_word(detail.status), Update(detail)]
            case TaskStatus.SUCCEEDED:
                return [self._settle(uid, detail=detail)]
            case TaskStatus.FAILED:
                code, message = detail.error_code, detail.error_message
                return [self._settle(uid, error=TaskFailedError(uid, code, message, detail.status))]
            case unreachable:
                assert_never(unreachable)

    def _settle(
        self, uid: str, *, detail: TaskDetail | None = None, error: PicpikError | None = None
    ) -> Settle:
        self.forget(uid)
        return Settle(uid, detail, error)

    def _note_word(self, word: str) -> list[Decision]:
        """An `UnknownWord` the first time an unknown status word is seen (logged once)."""
        if is_known_status(word) or word in self._unknown_words:
            return []
        self._unknown_words.add(word)
        return [UnknownWord(word)]
