"""Tests for picpik_async._polling: status words, answer checks, and the poll schedule."""

from __future__ import annotations

import doctest
import math
import random
from typing import Any

import attrs
import pytest
from conftest import EXACT_POLL
from hypothesis import given, settings
from hypothesis import strategies as st

from picpik_async import _polling as polling_module
from picpik_async._errors import (
    APIError,
    ProtocolError,
    TaskFailedError,
    TaskNotFoundError,
    ValidationError,
)
from picpik_async._models import TaskDetail, TaskStatus
from picpik_async._polling import (
    BackOff,
    PollSchedule,
    PollSettings,
    Refused,
    RunningListOff,
    Settle,
    Split,
    Step,
    UnknownWord,
    Update,
    check_answer,
    is_known_status,
    task_status,
)

# Deterministic settings: no jitter, so every due time can be computed by hand.
EXACT = EXACT_POLL


def detail(status: str, error_code: int = 0, uid: str = "u1") -> TaskDetail:
    """A TaskDetail with the given status word and ErrorCode."""
    return TaskDetail(task_uid=uid, status=status, error_code=error_code)


def schedule(settings: PollSettings = EXACT, **kwargs: Any) -> PollSchedule:
    """A schedule with a seeded rng."""
    return PollSchedule(settings, rng=random.Random(0), **kwargs)


def kwargs(name: str, value: object) -> dict[str, Any]:
    """Keyword arguments setting one field, whatever its type."""
    return {name: value}


SUCCEEDED_WORDS = [
    "Finished",
    "finished",
    "FINISHED",
    "Success",
    "Succeeded",
    "SUCCEEDED",
    "Completed",
    "Complete",
    "Done",
    "done",
    " Done ",
]
FAILED_WORDS = [
    "Error",
    "ERROR",
    "Failed",
    "failed",
    "Failure",
    "Cancelled",
    "Canceled",
    "Timeout",
    "TIMED_OUT",
    "Timed Out",
    "Expired",
]
PENDING_KNOWN = [
    "Queuing",
    "Queued",
    "Running",
    "RUNNING",
    "Pending",
    "Processing",
    "Waiting",
    "Created",
    "In Progress",
    "in_progress",
]
UNKNOWN_WORDS = ["", "   ", "Mystery", "Succeeding", "Paused", "42", "完成"]


class TestTaskStatus:
    """One pure function decides what a status word means (docs/protocol.md, "Status words")."""

    @pytest.mark.parametrize("word", [pytest.param(w, id=repr(w)) for w in SUCCEEDED_WORDS])
    def test_success_words(self, word: str) -> None:
        """Success words in any case and spacing mean SUCCEEDED."""
        assert task_status(detail(word)) is TaskStatus.SUCCEEDED

    @pytest.mark.parametrize("word", [pytest.param(w, id=repr(w)) for w in FAILED_WORDS])
    def test_failure_words(self, word: str) -> None:
        """Failure words in any case and spacing mean FAILED."""
        assert task_status(detail(word)) is TaskStatus.FAILED

    @pytest.mark.parametrize(
        "word", [pytest.param(w, id=repr(w)) for w in PENDING_KNOWN + UNKNOWN_WORDS]
    )
    def test_other_words_are_pending(self, word: str) -> None:
        """Queuing, running and any unknown word mean the task is still going."""
        assert task_status(detail(word)) is TaskStatus.PENDING

    @pytest.mark.parametrize(
        ("word", "code"),
        [
            pytest.param("Finished", 1, id="finished"),
            pytest.param("Success", 500, id="success"),
            pytest.param("Running", 2, id="running"),
            pytest.param("", 3, id="empty"),
            pytest.param("Mystery", -1, id="negative-code"),
        ],
    )
    def test_error_code_wins(self, word: str, code: int) -> None:
        """A non-zero ErrorCode is a failure whatever the word says."""
        assert task_status(detail(word, code)) is TaskStatus.FAILED

    @given(word=st.text(), code=st.integers())
    def test_total(self, word: str, code: int) -> None:
        """Every status word and code maps to one of the three interpretations."""
        status = task_status(detail(word, code))
        assert isinstance(status, TaskStatus)
        if code != 0:
            assert status is TaskStatus.FAILED


class TestIsKnownStatus:
    """Known words are recognised in any case; unknown ones are flagged for logging."""

    @pytest.mark.parametrize(
        "word",
        [pytest.param(w, id=repr(w)) for w in SUCCEEDED_WORDS + FAILED_WORDS + PENDING_KNOWN],
    )
    def test_known(self, word: str) -> None:
        """Every success, failure and pending word is known."""
        assert is_known_status(word)

    @pytest.mark.parametrize("word", [pytest.param(w, id=repr(w)) for w in UNKNOWN_WORDS])
    def test_unknown(self, word: str) -> None:
        """Other words are unknown."""
        assert not is_known_status(word)


class TestCheckAnswer:
    """A ListTasksDetails answer is indexed by TaskUID and must only name UIDs asked for."""

    def test_indexes_by_uid(self) -> None:
        """Each detail is found under its TaskUID; UIDs left out are simply absent."""
        first, second = detail("Running", uid="u1"), detail("Done", uid="u2")
        assert check_answer(["u1", "u2", "u3"], [second, first]) == {"u1": first, "u2": second}

    def test_empty_answer(self) -> None:
        """An answer naming no task is an empty index."""
        assert check_answer(["u1"], []) == {}

    def test_unknown_uid(self) -> None:
        """A TaskUID that was not asked for is a ProtocolError."""
        with pytest.raises(ProtocolError, match="'u9', not asked"):
            check_answer(["u1"], [detail("Running", uid="u9")])

    def test_duplicate_uid(self) -> None:
        """A TaskUID answered twice is a ProtocolError."""
        with pytest.raises(ProtocolError, match="twice for TaskUID 'u1'"):
            check_answer(["u1"], [detail("Running"), detail("Done")])


class TestSettings:
    """PollSettings takes numbers and refuses bad ones."""

    def test_defaults(self) -> None:
        """The defaults of docs/protocol.md, "Polling": 1.5 s, x1.25, 8 s, 200 UIDs, 0.5 s ticks."""
        settings = PollSettings()
        assert (settings.poll_initial, settings.poll_growth, settings.poll_max) == (1.5, 1.25, 8.0)
        assert (settings.poll_batch_size, settings.poll_concurrency) == (200, 4)
        assert settings.running_set
        assert (settings.running_interval, settings.running_grace) == (0.5, 1.0)
        assert settings.running_retry == 60.0
        assert (settings.poll_jitter, settings.poll_grid) == (0.1, 0.25)
        assert (settings.max_misses, settings.max_failures) == (5, 10)

    @pytest.mark.parametrize("name", ["poll_initial", "poll_max", "poll_growth", "poll_grid"])
    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(0, id="zero"),
            pytest.param(-1.0, id="negative"),
            pytest.param(math.nan, id="nan"),
            pytest.param(math.inf, id="inf"),
            pytest.param(True, id="bool"),
            pytest.param("1", id="str"),
            pytest.param(None, id="none"),
        ],
    )
    def test_bad_durations(self, name: str, value: object) -> None:
        """Durations and factors must be finite numbers > 0."""
        with pytest.raises(ValidationError, match=f"PollSettings.{name} must be a number > 0"):
            PollSettings(**kwargs(name, value))

    @pytest.mark.parametrize(
        ("name", "low", "high"),
        [
            pytest.param("poll_batch_size", 1, 1000, id="batch-size"),
            pytest.param("poll_concurrency", 1, 64, id="concurrency"),
            pytest.param("max_misses", 1, 1000, id="max-misses"),
            pytest.param("max_failures", 1, 1000, id="max-failures"),
        ],
    )
    def test_counts(self, name: str, low: int, high: int) -> None:
        """Counts are integers within their range; the ends are accepted."""
        assert getattr(PollSettings(**kwargs(name, low)), name) == low
        assert getattr(PollSettings(**kwargs(name, high)), name) == high
        for bad in (low - 1, high + 1, True, 2.0, "5", None):
            with pytest.raises(ValidationError, match=f"PollSettings.{name} must be an integer"):
                PollSettings(**kwargs(name, bad))

    @pytest.mark.parametrize("value", [0, 0.1, 1])
    def test_jitter_accepted(self, value: float) -> None:
        """No jitter and fractions of the interval are accepted."""
        assert PollSettings(poll_jitter=value).poll_jitter == value

    def test_negative_jitter_refused(self) -> None:
        """A negative jitter is refused."""
        with pytest.raises(ValueError, match="poll_jitter"):
            PollSettings(poll_jitter=-0.1)


class TestWatching:
    """watch/unwatch count waiters; a TaskUID is forgotten when its last waiter leaves."""

    def test_reference_counting(self) -> None:
        """Two waiters keep a UID until both have left."""
        s = schedule()
        s.watch("u1", now=0)
        s.watch("u1", now=0.5)
        assert s.waiters() == {"u1": 2}
        s.unwatch("u1")
        assert "u1" in s
        assert s.waiters() == {"u1": 1}
        s.unwatch("u1")
        assert "u1" not in s
        assert len(s) == 0

    def test_unwatch_unknown(self) -> None:
        """Unwatching a UID nobody watches does nothing."""
        s = schedule()
        s.watch("u1", now=0)
        s.unwatch("u2")
        assert s.waiters() == {"u1": 1}

    def test_joining_keeps_the_schedule(self) -> None:
        """A second waiter joins the existing schedule instead of restarting it."""
        s = schedule()
        s.watch("u1", now=0)
        s.watch("u1", now=10)
        assert s.next_due() == 1.0

    def test_forget(self) -> None:
        """forget drops a UID whatever its waiters; an unknown UID is ignored."""
        s = schedule()
        s.watch("u1", now=0)
        s.watch("u1", now=0)
        s.forget("u1")
        s.forget("u2")
        assert len(s) == 0
        assert s.next_due() is None

    def test_len_and_contains(self) -> None:
        """len counts watched UIDs and `in` tells whether one is watched."""
        s = schedule()
        for uid in ("a", "b", "c"):
            s.watch(uid, now=0)
        assert len(s) == 3
        assert "b" in s
        assert "z" not in s


class TestDue:
    """First poll after poll_initial, snapped to the grid; due UIDs taken in chunks."""

    @pytest.mark.parametrize(
        ("now", "due"),
        [
            pytest.param(0.0, 1.0, id="on-grid"),
            pytest.param(0.1, 1.25, id="snaps-up"),
            pytest.param(0.25, 1.25, id="already-on-grid"),
            pytest.param(0.26, 1.5, id="just-past-grid"),
            pytest.param(10.0, 11.0, id="later"),
        ],
    )
    def test_first_poll(self, now: float, due: float) -> None:
        """The first poll is poll_initial after watching, snapped up to the grid."""
        s = schedule()
        s.watch("u1", now=now)
        assert s.next_due() == due
        assert s.take_due(due - 0.01) == []
        assert s.take_due(due) == [["u1"]]

    def test_burst_shares_a_request(self) -> None:
        """UIDs watched close together fall on the same grid point and share a chunk."""
        s = schedule(PollSettings(poll_initial=1, poll_grid=0.5, poll_jitter=0))
        for i, now in enumerate([0.01, 0.2, 0.45]):
            s.watch(f"u{i}", now=now)
        assert s.take_due(1.5) == [["u0", "u1", "u2"]]

    def test_taken_uids_are_in_flight(self) -> None:
        """Taken UIDs are not returned again, and next_due ignores them."""
        s = schedule()
        s.watch("u1", now=0)
        s.watch("u2", now=1)
        assert s.take_due(1.0) == [["u1"]]
        assert s.take_due(100.0) == [["u2"]]
        assert s.take_due(1000.0) == []
        assert s.next_due() is None

    def test_next_due_is_the_earliest(self) -> None:
        """next_due is the earliest due time of a UID not in flight."""
        s = schedule()
        assert s.next_due() is None
        s.watch("late", now=5)
        s.watch("early", now=2)
        assert s.next_due() == 3.0
        s.take_due(3.0)
        assert s.next_due() == 6.0

    @pytest.mark.parametrize(
        ("count", "sizes"),
        [
            pytest.param(1, [1], id="one"),
            pytest.param(3, [3], id="exactly-one-chunk"),
            pytest.param(4, [3, 1], id="one-over"),
            pytest.param(7, [3, 3, 1], id="seven"),
        ],
    )
    def test_chunks(self, count: int, sizes: list[int]) -> None:
        """Due UIDs come in chunks of at most the batch size, in the order watched."""
        s = schedule()
        uids = [f"u{i}" for i in range(count)]
        for uid in uids:
            s.watch(uid, now=0)
        chunks = s.take_due(1.0)
        assert [len(c) for c in chunks] == sizes
        assert [uid for chunk in chunks for uid in chunk] == uids

    def test_batch_size_override(self) -> None:
        """An explicit batch_size replaces the settings' poll_batch_size."""
        s = schedule(batch_size=2)
        assert s.batch_size == 2
        assert schedule().batch_size == 3
        for i in range(3):
            s.watch(f"u{i}", now=0)
        assert s.take_due(1.0) == [["u0", "u1"], ["u2"]]

    def test_default_rng(self) -> None:
        """A schedule needs only its settings."""
        s = PollSchedule(PollSettings())
        s.watch("u1", now=0)
        assert s.take_due(1.5) == [["u1"]]


class TestSplit:
    """A refused multi-UID chunk is halved, and the smaller size is remembered."""

    @pytest.mark.parametrize(
        ("size", "halves", "batch"),
        [
            pytest.param(2, (1, 1), 1, id="two"),
            pytest.param(3, (1, 2), 1, id="three"),
            pytest.param(4, (2, 2), 2, id="four"),
            pytest.param(7, (3, 4), 3, id="seven"),
        ],
    )
    def test_halves(self, size: int, halves: tuple[int, int], batch: int) -> None:
        """The chunk is split in two, in order, and the batch size shrinks to the first half."""
        s = schedule(batch_size=50)
        chunk = [f"u{i}" for i in range(size)]
        first, second = s.split(chunk)
        assert (len(first), len(second)) == halves
        assert first + second == chunk
        assert s.batch_size == batch

    def test_never_grows(self) -> None:
        """Splitting a chunk larger than the batch size does not raise the batch size."""
        s = schedule(batch_size=2)
        s.split([f"u{i}" for i in range(10)])
        assert s.batch_size == 2

    def test_never_below_one(self) -> None:
        """Splitting a single UID keeps the batch size at 1."""
        s = schedule(batch_size=1)
        s.split(["u1"])
        s.split(["u1"])
        assert s.batch_size == 1

    def test_smaller_chunks_afterwards(self) -> None:
        """After a split, take_due hands out chunks of the remembered size."""
        s = schedule(batch_size=4)
        for i in range(4):
            s.watch(f"u{i}", now=0)
        [chunk] = s.take_due(1.0)
        s.split(chunk)
        for uid in chunk:
            s.pending(uid, now=1.0)
        assert [len(c) for c in s.take_due(100.0)] == [2, 2]


class TestPending:
    """A still-running task is polled again, at a growing interval."""

    def test_interval_grows_to_max(self) -> None:
        """Each pending answer multiplies the interval by poll_growth, up to poll_max."""
        s = schedule()
        s.watch("u1", now=0)
        now, gaps = 1.0, []
        for _ in range(5):
            assert s.take_due(now) == [["u1"]]
            s.pending("u1", now)
            due = s.next_due()
            assert due is not None
            gaps.append(due - now)
            now = due
        assert gaps == [2.0, 4.0, 5.0, 5.0, 5.0]

    def test_due_is_snapped(self) -> None:
        """The next due time snaps up to the grid."""
        s = schedule()
        s.watch("u1", now=0)
        s.take_due(1.0)
        s.pending("u1", now=1.1)
        assert s.next_due() == 3.25

    def test_jitter_within_bounds(self) -> None:
        """With jitter j the next interval is within interval*(1 -+ j/2), before snapping."""
        settings = PollSettings(poll_initial=1, poll_growth=2, poll_jitter=0.5, poll_grid=0.01)
        for seed in range(50):
            s = PollSchedule(settings, rng=random.Random(seed))
            s.watch("u1", now=0)
            s.take_due(1.0)
            s.pending("u1", now=1.0)
            due = s.next_due()
            assert due is not None
            assert 1.0 + 2 * 0.75 - 1e-9 <= due <= 1.0 + 2 * 1.25 + 0.01 + 1e-9

    def test_unknown_uid(self) -> None:
        """A pending answer for a UID no longer watched is ignored."""
        s = schedule()
        s.pending("gone", now=1.0)
        assert len(s) == 0

    def test_resets_misses_and_failures(self) -> None:
        """A pending answer clears the task's count of misses and failures."""
        s = schedule()
        s.watch("u1", now=0)
        for _ in range(EXACT.max_misses - 1):
            s.take_due(100.0)
            assert s.missing("u1", now=0) is False
        for _ in range(EXACT.max_failures - 1):
            assert s.failed(["u1"], now=0) == []
        s.pending("u1", now=0)
        for _ in range(EXACT.max_misses - 1):
            assert s.missing("u1", now=0) is False
        assert s.failed(["u1"], now=0) == []


class TestMissing:
    """A UID missing from answers is polled again, until max_misses in a row."""

    def test_fails_after_max_misses(self) -> None:
        """missing returns True on the max_misses-th miss in a row."""
        s = schedule()
        s.watch("u1", now=0)
        results = []
        for _ in range(EXACT.max_misses):
            s.take_due(1000.0)
            results.append(s.missing("u1", now=0))
        assert results == [False, False, True]

    def test_rescheduled_at_the_same_interval(self) -> None:
        """A miss puts the UID back on the schedule, one interval later, not in flight."""
        s = schedule()
        s.watch("u1", now=0)
        s.take_due(1.0)
        assert s.missing("u1", now=1.0) is False
        assert s.next_due() == 2.0
        assert s.take_due(2.0) == [["u1"]]

    def test_unknown_uid(self) -> None:
        """A miss for a UID no longer watched is not a failure."""
        assert schedule().missing("gone", now=0) is False


class TestFailed:
    """A failed poll request backs the whole poller off (docs/protocol.md, "Polling schedule")."""

    def test_pauses_the_whole_poller(self) -> None:
        """After a failure take_due returns nothing before paused_until, for every UID."""
        s = schedule()
        s.watch("u1", now=0)
        s.watch("u2", now=0)
        [chunk] = s.take_due(1.0)
        s.watch("u3", now=0.5)
        assert s.failed(["u1"], now=1.0) == []
        assert s.paused_until == 2.0
        assert s.take_due(1.99) == []
        assert s.next_due() == 2.0
        assert sorted(uid for c in s.take_due(2.0) for uid in c) == ["u1", "u3"]
        assert chunk == ["u1", "u2"]

    def test_backoff_doubles_up_to_max(self) -> None:
        """Each failure in a row doubles the pause, from poll_initial up to poll_max."""
        s = schedule()
        s.watch("u1", now=0)
        pauses = []
        for _ in range(5):
            s.failed([], now=100.0)
            pauses.append(s.paused_until - 100.0)
            s.paused_until = -math.inf
        assert pauses == [1.0, 2.0, 4.0, 5.0, 5.0]
        assert s.failures_in_row == 5

    def test_answered_resets_the_backoff(self) -> None:
        """A successful poll request starts the doubling over."""
        s = schedule()
        s.failed([], now=0)
        s.failed([], now=0)
        s.answered()
        assert s.failures_in_row == 0
        s.failed([], now=100.0)
        assert s.paused_until == 101.0

    def test_pause_never_shortened(self) -> None:
        """A later, shorter backoff does not end an earlier, longer pause."""
        s = schedule()
        for _ in range(3):
            s.failed([], now=0)
        assert s.paused_until == 4.0
        s.answered()
        s.failed([], now=0.5)
        assert s.paused_until == 4.0

    def test_exhausted_after_max_failures(self) -> None:
        """UIDs whose polls failed max_failures times in a row are returned."""
        s = schedule()
        s.watch("u1", now=0)
        s.watch("u2", now=0)
        assert s.failed(["u1", "u2"], now=0) == []
        assert s.failed(["u1"], now=0) == []
        assert s.failed(["u1", "u2"], now=0) == ["u1"]
        assert s.failed(["u2"], now=0) == ["u2"]

    def test_unknown_uids_skipped(self) -> None:
        """UIDs forgotten while their request was in flight are skipped."""
        s = schedule()
        s.watch("u1", now=0)
        s.take_due(1.0)
        s.forget("u1")
        for _ in range(EXACT.max_failures):
            assert s.failed(["u1"], now=1.0) == []

    def test_rescheduled_after_the_pause(self) -> None:
        """A failed chunk is due again when the pause ends, not in flight."""
        s = schedule()
        s.watch("u1", now=0)
        s.take_due(1.0)
        s.failed(["u1"], now=1.1)
        assert s.next_due() == 2.25
        assert s.take_due(2.25) == [["u1"]]

    def test_exponent_is_bounded(self) -> None:
        """Very long failure streaks do not overflow the backoff."""
        s = schedule(PollSettings(max_failures=1000, poll_jitter=0))
        s.watch("u1", now=0)
        for _ in range(500):
            s.failed(["u1"], now=0)
        assert s.paused_until == 8.0


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("watch"), st.integers(0, 9), st.floats(0, 3)),
        st.tuples(st.just("unwatch"), st.integers(0, 9), st.floats(0, 3)),
        st.tuples(st.just("take"), st.just(0), st.floats(0, 3)),
    ),
    max_size=60,
)


REFUSED = APIError("TaskUIDList invalid", ret_code=160)
BUSY = APIError("busy", ret_code=5, retryable=True)


def watched(*uids: str, now: float = 0.0) -> PollSchedule:
    """An EXACT schedule watching the UIDs, all taken (in flight) at their first poll."""
    s = schedule()
    for uid in uids:
        s.watch(uid, now)
    s.take_due(now + EXACT.poll_initial)
    return s


class TestStep:
    """step(): the chunks to send now, and how long nothing else is due."""

    def test_nothing_watched(self) -> None:
        """Nobody waits: no chunk, and sleep until something changes."""
        assert schedule().step(now=3.0) == Step(chunks=(), sleep=math.inf)

    def test_not_yet_due(self) -> None:
        """A UID not due yet: no chunk, sleep until it is."""
        s = schedule()
        s.watch("u1", now=0.0)
        assert s.step(now=0.25) == Step(chunks=(), sleep=0.75)

    def test_due_in_chunks_then_all_in_flight(self) -> None:
        """Due UIDs come in batch-sized chunks; with all in flight, sleep until a change."""
        s = schedule()
        for uid in ["a", "b", "c", "d"]:
            s.watch(uid, now=0.0)
        assert s.step(now=1.0) == Step(chunks=(("a", "b", "c"), ("d",)), sleep=math.inf)

    def test_paused_poller_sleeps_until_the_pause_ends(self) -> None:
        """While the poller is paused a due UID waits; once the pause is over it is taken."""
        s = schedule(attrs_evolve(EXACT, poll_batch_size=1))
        s.watch("a", now=0.0)
        s.paused_until = 5.0
        assert s.step(now=4.0) == Step(chunks=(), sleep=1.0)
        s.paused_until = 0.0
        assert s.step(now=4.0).chunks == (("a",),)

    def test_still_wanted(self) -> None:
        """Only UIDs still watched are asked for."""
        s = watched("a", "b", "c")
        s.unwatch("b")
        assert s.still_wanted(["a", "b", "c"]) == ["a", "c"]


def test_settle_takes_exactly_one_outcome() -> None:
    """A Settle carries a detail or an error, never both and never neither."""
    with pytest.raises(ValueError, match="exactly one"):
        Settle("u1")
    with pytest.raises(ValueError, match="exactly one"):
        Settle("u1", detail=detail("Finished"), error=BUSY)


class TestOnAnswer:
    """on_answer(): what an answer means for each asked TaskUID."""

    def test_pending_is_an_update_and_rescheduled(self) -> None:
        """A running task: one Update, and its next poll is poll_growth times further."""
        s = watched("u1")
        running = detail("Running")
        assert s.on_answer(["u1"], [running], now=1.0) == [Update(running)]
        assert s.next_due() == 3.0

    def test_succeeded_settles_with_the_detail(self) -> None:
        """A finished task settles with its detail and is forgotten."""
        s = watched("u1")
        done = detail("Finished")
        assert s.on_answer(["u1"], [done], now=1.0) == [Settle("u1", detail=done)]
        assert "u1" not in s

    def test_failed_settles_with_task_failed_error(self) -> None:
        """A failed task settles with TaskFailedError carrying its code, message and word."""
        s = watched("u1")
        failed = TaskDetail(task_uid="u1", status="Failed", error_code=4, error_message="no")
        [decision] = s.on_answer(["u1"], [failed], now=1.0)
        assert isinstance(decision, Settle)
        assert decision.detail is None
        assert isinstance(decision.error, TaskFailedError)
        error = decision.error
        assert (error.error_code, error.error_message, error.status) == (4, "no", "Failed")
        assert "u1" not in s

    def test_missing_waits_then_settles_with_not_found(self) -> None:
        """Missing from max_misses answers in a row: TaskNotFoundError; before, nothing."""
        s = watched("u1")
        assert s.on_answer(["u1"], [], now=1.0) == []
        assert s.on_answer(["u1"], [], now=2.0) == []
        [decision] = s.on_answer(["u1"], [], now=3.0)
        assert isinstance(decision, Settle)
        assert isinstance(decision.error, TaskNotFoundError)
        assert "u1" not in s

    def test_unknown_word_once(self) -> None:
        """An unknown word is reported the first time only; known words never."""
        s = watched("u1", "u2")
        first = s.on_answer(["u1", "u2"], [detail("Mystery"), detail("Mystery", uid="u2")], 1.0)
        assert first == [
            UnknownWord("Mystery"),
            Update(detail("Mystery")),
            Update(detail("Mystery", uid="u2")),
        ]
        assert s.on_answer(["u1"], [detail("Queuing")], now=3.0) == [Update(detail("Queuing"))]

    def test_an_answer_ends_the_backoff(self) -> None:
        """A good answer resets the poller-wide failures in a row."""
        s = watched("u1")
        s.failures_in_row = 3
        s.on_answer(["u1"], [detail("Running")], now=1.0)
        assert s.failures_in_row == 0

    @pytest.mark.parametrize(
        "answer",
        [
            pytest.param([detail("Running", uid="u9")], id="not-asked"),
            pytest.param([detail("Running"), detail("Running")], id="twice"),
        ],
    )
    def test_garbled_answer_is_a_failed_poll(self, answer: list[TaskDetail]) -> None:
        """An answer naming a UID not asked, or twice, backs the poller off."""
        s = watched("u1")
        [decision] = s.on_answer(["u1"], answer, now=1.0)
        assert isinstance(decision, BackOff)
        assert isinstance(decision.error, ProtocolError)
        assert s.failures_in_row == 1


class TestOnFailure:
    """on_failure(): split a refused list, settle a refused UID, or back off."""

    def test_refused_list_is_split(self) -> None:
        """A parameter error on several UIDs: Split into halves, smaller batch remembered."""
        s = watched("a", "b", "c")
        [decision] = s.on_failure(["a", "b", "c"], REFUSED, now=1.0)
        assert decision == Split(chunks=(("a",), ("b", "c")))
        assert isinstance(decision, Split)
        assert decision.asked == 3
        assert s.batch_size == 1
        assert s.failures_in_row == 0

    def test_refused_single_uid_settles_alone(self) -> None:
        """A parameter error on one UID: Refused, then Settle with that error."""
        s = watched("a", "b")
        decisions = s.on_failure(["a"], REFUSED, now=1.0)
        assert decisions == [Refused("a", REFUSED), Settle("a", error=REFUSED)]
        assert "a" not in s
        assert "b" in s

    def test_validation_error_counts_as_a_refusal(self) -> None:
        """A ValidationError (our own check refused the list) splits like a parameter error."""
        s = watched("a", "b")
        [decision] = s.on_failure(["a", "b"], ValidationError("bad uid"), now=1.0)
        assert isinstance(decision, Split)

    def test_transient_failure_backs_off(self) -> None:
        """Any other error: BackOff for the whole poller; nobody settles yet."""
        s = watched("a", "b")
        assert s.on_failure(["a", "b"], BUSY, now=1.0) == [BackOff(2, BUSY, until=2.0)]
        assert s.batch_size == EXACT.poll_batch_size
        assert s.step(now=1.5) == Step(chunks=(), sleep=0.5)

    def test_out_of_patience_settles(self) -> None:
        """The max_failures-th failure in a row settles the chunk's UIDs with the error."""
        s = watched("a")
        for now in (1.0, 2.0):
            [backoff] = s.on_failure(["a"], BUSY, now=now)
            assert isinstance(backoff, BackOff)
            s.take_due(now=100.0)
        decisions = s.on_failure(["a"], BUSY, now=100.0)
        assert decisions[1:] == [Settle("a", error=BUSY)]
        assert isinstance(decisions[0], BackOff)
        assert "a" not in s


def attrs_evolve(settings: PollSettings, **changes: Any) -> PollSettings:
    """A copy of the settings with some fields changed."""
    return attrs.evolve(settings, **changes)


class TestScheduleProperty:
    """Whatever the order of watch, unwatch and take_due, no UID is starved."""

    @settings(deadline=None)
    @given(
        operations=OPERATIONS,
        batch_size=st.integers(1, 5),
        initial=st.floats(0.1, 2),
        grid=st.floats(0.05, 1),
    )
    def test_every_watched_uid_is_taken(
        self,
        operations: list[tuple[str, int, float]],
        batch_size: int,
        initial: float,
        grid: float,
    ) -> None:
        """Every watched UID is eventually taken, once per watch, in chunks of <= batch_size."""
        settings = PollSettings(
            poll_initial=initial, poll_grid=grid, poll_batch_size=batch_size, poll_jitter=0
        )
        s = PollSchedule(settings, rng=random.Random(0))
        waiters: dict[str, int] = {}
        taken: set[str] = set()  # UIDs taken since their entry was created
        now = 0.0

        def take(at: float) -> None:
            for chunk in s.take_due(at):
                assert 1 <= len(chunk) <= batch_size
                for uid in chunk:
                    assert waiters.get(uid, 0) > 0, "an unwatched UID was taken"
                    assert uid not in taken, "a UID in flight was taken again"
                    taken.add(uid)

        for operation, index, step in operations:
            now += step
            uid = f"u{index}"
            if operation == "watch":
                s.watch(uid, now)
                waiters[uid] = waiters.get(uid, 0) + 1
            elif operation == "unwatch":
                s.unwatch(uid)
                if waiters.get(uid, 0) > 0:
                    waiters[uid] -= 1
                    if waiters[uid] == 0:
                        taken.discard(uid)
            else:
                take(now)
        assert s.waiters() == {uid: n for uid, n in waiters.items() if n > 0}
        due = s.next_due()
        if due is not None:
            assert due <= now + initial + grid + 1e-6
            take(due)
        take(now + initial + grid + 1.0)
        assert taken == {uid for uid, n in waiters.items() if n > 0}


def test_docstring_examples() -> None:
    """The examples in the module's docstrings run and give the answers shown."""
    result = doctest.testmod(polling_module)
    assert result.attempted >= 3
    assert result.failed == 0


# --- the running list (issue 13) -----------------------------------------------------

#: Running-list settings that are easy to reckon with: 1 s ticks (0.5 s below 200 tasks).
LISTED = attrs.evolve(EXACT, running_interval=1.0, running_grace=2.0, running_retry=100.0)
FINISHED = "Finished"


def listed(**kwargs: Any) -> PollSchedule:
    """A schedule that watches new tasks through the running list (never a details tick)."""
    return schedule(LISTED, running_list=True, details_tick_up_to=0, **kwargs)


def finished(uid: str) -> TaskDetail:
    """A finished TaskDetail with one image."""
    return TaskDetail(task_uid=uid, status=FINISHED, img_list=("https://img/x.png",))


class TestRunningList:
    """One ListRunningTasks per tick; details only for tasks that left the list."""

    def test_off_unless_the_waiter_can_send_it(self) -> None:
        """Without `running_list` (or with running_set=False) every task has its own schedule."""
        for s in (schedule(LISTED), schedule(attrs.evolve(LISTED, running_set=False))):
            s.watch("u1", now=0.0)
            assert s.watched_by_list() == 0
            assert s.step(now=0.0) == Step((), 1.0, tick=False)

    def test_a_tick_is_due_each_interval_and_nothing_else(self) -> None:
        """A watched task costs one tick per interval (halved below 200 tasks), no details."""
        s = listed()
        s.watch("u1", now=0.0)
        assert s.step(now=0.0) == Step((), 0.5, tick=False)
        assert s.step(now=0.5) == Step((), 29.5, tick=True)  # in flight; a recheck at 30 s
        s.on_running(["u1"], now=0.5)
        assert s.step(now=0.5) == Step((), 0.5, tick=False)

    def test_a_slow_answer_does_not_stretch_the_interval(self) -> None:
        """Ticks are paced from when they were sent, not from when they were answered."""
        s = listed()
        s.watch("u1", now=0.0)
        assert s.step(now=0.5).tick
        s.on_running(["u1"], now=0.7)  # answered 0.2 s later
        assert s.step(now=0.7).sleep == pytest.approx(0.3)  # next tick at 1.0, not 1.2
        assert s.step(now=1.0).tick

    def test_ticks_stop_when_nobody_waits(self) -> None:
        """No task watched: no tick is due."""
        s = listed()
        s.watch("u1", now=0.0)
        s.unwatch("u1")
        assert s.step(now=5.0) == Step((), math.inf, tick=False)

    def test_with_many_tasks_ticks_take_the_full_interval(self) -> None:
        """200 tasks or more: one tick per running_interval."""
        s = listed()
        names = [f"u{i}" for i in range(200)]
        for uid in names:
            s.watch(uid, now=0.0)
        assert s.step(now=0.5).tick is True  # planned when the first task came
        s.on_running(names, now=0.5)
        assert s.step(now=1.0).tick is False
        assert s.step(now=1.5).tick is True

    def test_ticks_slow_down_while_nothing_changes(self) -> None:
        """After 3 s in which no task left the list, ticks come half as often until one does."""
        s = listed()
        s.watch("u1", now=0.0)
        s.watch("u2", now=0.0)
        assert s.step(now=3.0).tick
        s.on_running(["u1", "u2"], now=3.0)
        assert s.step(now=3.0).sleep == 1.0  # 0.5 s doubled
        assert s.step(now=4.0).tick
        s.on_running(["u2"], now=4.0)  # u1 left: a change
        assert s.step(now=4.0) == Step((("u1",),), 0.5, tick=False)

    @staticmethod
    def u1_left() -> PollSchedule:
        """u1 and u2 were listed at 0.5 s; at 1.0 s only u2 is."""
        s = listed()
        s.watch("u1", now=0.0)
        s.watch("u2", now=0.0)
        s.on_running(["u1", "u2"], now=0.5)
        s.on_running(["u2"], now=1.0)
        return s

    def test_a_task_that_left_is_fetched_once(self) -> None:
        """Seen in the list, then missing from it: its details are due at once."""
        s = self.u1_left()
        assert s.step(now=1.0).chunks == (("u1",),)
        assert s.on_answer(["u1"], [finished("u1")], now=1.0) == [Settle("u1", finished("u1"))]
        assert "u1" not in s
        assert s.watched_by_list() == 1

    def test_a_new_task_gets_a_grace_period(self) -> None:
        """Never listed yet: its absence counts only once it is running_grace old."""
        s = listed()
        s.watch("u1", now=0.0)
        s.on_running([], now=1.5)
        assert s.step(now=1.5).chunks == ()
        s.on_running([], now=2.0)
        assert s.step(now=2.0).chunks == (("u1",),)

    def test_other_processes_tasks_are_ignored(self) -> None:
        """The list is the account's: TaskUIDs nobody here waits for change nothing."""
        s = listed()
        s.watch("u1", now=0.0)
        s.on_running(["u1", *(f"other{i}" for i in range(10_000))], now=0.5)
        assert len(s) == 1
        assert s.step(now=0.5).chunks == ()

    def test_absent_but_pending_keeps_to_its_own_schedule(self) -> None:
        """Left the list yet still running: polled on its own schedule from then on."""
        s = self.u1_left()
        s.step(now=1.0)
        assert s.on_answer(["u1"], [detail("Running")], now=1.0) == [Update(detail("Running"))]
        assert s.watched_by_list() == 1
        s.on_running(["u2"], now=1.5)  # still absent: no second fetch from the list
        assert s.step(now=1.5).chunks == ()
        assert s.step(now=3.0).chunks == (("u1",),)  # 1.0 + poll_initial * growth

    def test_a_task_still_listed_is_rechecked_now_and_then(self) -> None:
        """A list that never lets a task go costs lag, never the task: details every 30 s."""
        s = listed()
        s.watch("u1", now=0.0)
        s.on_running(["u1"], now=0.5)
        assert s.step(now=29.0).chunks == ()
        s.on_running(["u1"], now=29.9)
        assert s.step(now=30.0).chunks == (("u1",),)
        s.on_answer(["u1"], [detail("Running")], now=30.0)
        assert s.watched_by_list() == 1  # still through the list
        assert s.step(now=59.0).chunks == ()

    def test_follow_keeps_a_task_on_its_own_schedule(self) -> None:
        """A waiter with on_update wants every pending detail: per-task polling."""
        s = listed()
        s.watch("u1", now=0.0, follow=True)
        assert s.watched_by_list() == 0
        s.watch("u2", now=0.0)
        s.watch("u2", now=0.5, follow=True)  # a second waiter, with on_update, joins
        assert s.watched_by_list() == 0
        assert s.step(now=1.0).chunks == (("u1", "u2"),)

    def test_a_failed_tick_falls_back_to_per_task_polling(self) -> None:
        """Refused or failing: every task on its own schedule, the list retried later."""
        s = listed()
        s.watch("u1", now=0.0)
        s.step(now=0.5)
        error = APIError("Action not found: ListRunningTasks", ret_code=161)
        assert s.on_running_failure(error, now=0.5) == [
            RunningListOff(f"ListRunningTasks failed ({error})", 100.5)
        ]
        assert s.watched_by_list() == 0
        assert s.step(now=1.0) == Step((("u1",),), math.inf, tick=False)
        s.watch("u2", now=50.0)  # while the list is off: its own schedule
        assert s.watched_by_list() == 0
        s.watch("u3", now=100.5)  # retried after running_retry
        assert s.watched_by_list() == 1

    def test_a_list_that_lets_most_tasks_go_early_is_dropped(self) -> None:
        """Most tasks that left the list were still pending: the list is not used for a while."""
        s = listed()
        names = [f"u{i}" for i in range(12)]
        for uid in names:
            s.watch(uid, now=0.0)
        s.on_running([], now=2.0)
        s.batch_size = 100
        (chunk,) = s.step(now=2.0).chunks
        decisions = s.on_answer(chunk, [detail("Queuing", uid=uid) for uid in chunk], now=2.0)
        assert decisions[-1] == RunningListOff(
            "12 of 12 tasks left the running list too early", 102.0
        )
        assert s.watched_by_list() == 0
        s.watch("late", now=3.0)
        assert s.watched_by_list() == 0

    def test_a_few_early_leavers_do_not_condemn_the_list(self) -> None:
        """Below ten absences, or a minority pending: the list stays in use."""
        s = listed()
        for i in range(12):
            s.watch(f"u{i}", now=0.0)
        s.on_running([], now=2.0)
        s.batch_size = 100
        (chunk,) = s.step(now=2.0).chunks
        answers = [detail("Running", uid=u) if u in ("u0", "u1") else finished(u) for u in chunk]
        assert not any(isinstance(d, RunningListOff) for d in s.on_answer(chunk, answers, 2.0))
        s.watch("next", now=2.5)
        assert s.watched_by_list() == 1

    def test_a_task_unknown_to_the_details_leaves_the_list(self) -> None:
        """Absent from the list and from the details: max_misses decides, on its own schedule."""
        s = listed()
        s.watch("u1", now=0.0)
        s.on_running([], now=2.0)
        s.step(now=2.0)
        assert s.on_answer(["u1"], [], now=2.0) == []
        assert s.watched_by_list() == 0

    @staticmethod
    def run_tasks(s: PollSchedule, count: int, start: float, took: float) -> float:
        """Watch `count` tasks at `start`, each listed until it ends `took` later; tick
        and answer on a 0.25 s grid until all are settled; return when they were."""
        names = [f"t{start}-{i}" for i in range(count)]
        for uid in names:
            s.watch(uid, now=start)
        now = start
        while any(uid in s for uid in names):
            now += 0.25
            step = s.step(now)
            over = now >= start + took
            for chunk in step.chunks:
                answers = [finished(u) if over else detail("Running", uid=u) for u in chunk]
                s.on_answer(chunk, answers, now=now)
            if step.tick:
                s.on_running([] if over else names, now=now)
        return now

    def test_long_tasks_stretch_the_tick(self) -> None:
        """Tasks that took about 30 s: ticks 5% of that apart, at most twice the interval."""
        s = listed()
        s.batch_size = 1_000
        end = self.run_tasks(s, 200, start=0.0, took=30.0)
        s.watch("next", now=end)
        assert 0.75 <= s.step(now=end).sleep <= 0.8  # 0.05 x 30-32 s, halved for one task
        end = self.run_tasks(s, 200, start=end, took=100.0)
        s.watch("later", now=end)
        assert s.step(now=end).sleep == 1.0  # 2 x 1 s, halved

    def test_short_tasks_keep_the_interval(self) -> None:
        """Tasks of 3 s: 5% of them is below running_interval, which stays."""
        s = listed()
        s.batch_size = 1_000
        end = self.run_tasks(s, 200, start=0.0, took=3.0)
        s.watch("next", now=end)
        assert s.step(now=end).sleep == 0.5

    def test_the_tail_of_a_big_run_keeps_its_pace(self) -> None:
        """Once 200 tasks were watched, the last few still get the full interval."""
        s = listed()
        s.batch_size = 1_000
        names = [f"u{i}" for i in range(200)]
        for uid in names:
            s.watch(uid, now=0.0)
        for now in (0.5, 1.5):  # the first tick was planned for one task: half the interval
            assert s.step(now=now).tick
            s.on_running(names, now=now)
        assert s.step(now=2.5).tick
        s.on_running(names[:5], now=2.5)  # 195 left the list
        (chunk,) = s.step(now=2.5).chunks
        s.on_answer(chunk, [finished(uid) for uid in chunk], now=2.5)
        assert s.watched_by_list() == 5
        assert s.step(now=3.5).tick
        s.on_running(names[:5], now=3.5)
        assert s.step(now=3.5).sleep == 1.0  # not halved for the five left

    def test_the_tick_in_flight_blocks_the_next(self) -> None:
        """One ListRunningTasks at a time."""
        s = listed()
        s.watch("u1", now=0.0)
        assert s.step(now=0.5).tick
        assert not s.step(now=5.0).tick
        s.on_running(["u1"], now=5.0)
        assert s.step(now=6.0).tick  # quiet for 5 s: 1 s between ticks


class TestDetailsTick:
    """While every listed task fits in one ListTasksDetails, that request is the tick."""

    def test_the_due_queue_stays_small(self) -> None:
        """Each details tick leaves a stale due record for every task, and a task on
        its own schedule keeps them from surfacing: the heap is rebuilt before it
        holds more than about four records a task (1,501 records here before)."""
        s = PollSchedule(PollSettings(), running_list=True)
        s.watch("own", now=0.0, follow=True)
        for i in range(100):
            s.watch(f"u{i}", now=0.0)
        now = 0.0
        while now < 30.0:
            now += 0.05
            for chunk in s.step(now).chunks:
                s.on_answer(chunk, [detail("Running", uid=uid) for uid in chunk], now=now)
        assert s.watched_by_list() == 100
        assert len(s._queue) <= 4 * 101 + 64 + 1

    def test_few_tasks_are_asked_for_directly(self) -> None:
        """Two tasks, a batch of three: each tick is one details request of both."""
        s = schedule(LISTED, running_list=True)
        s.watch("u1", now=0.0)
        s.watch("u2", now=0.0)
        assert s.step(now=0.5) == Step((("u1", "u2"),), 0.5, tick=False)
        s.on_answer(["u1", "u2"], [detail("Running", uid="u1"), finished("u2")], now=0.5)
        assert s.watched_by_list() == 1  # still watched through the tick, not its own schedule
        assert s.step(now=1.0) == Step((("u1",),), 0.5, tick=False)

    def test_more_tasks_than_a_request_holds_use_the_list(self) -> None:
        """Four tasks, a batch of three: the tick is a ListRunningTasks."""
        s = schedule(LISTED, running_list=True)
        for i in range(4):
            s.watch(f"u{i}", now=0.0)
        assert s.step(now=0.5).tick

    def test_a_task_ending_counts_as_a_change(self) -> None:
        """A details tick that sees a task end keeps the ticks at their short interval."""
        s = schedule(LISTED, running_list=True)
        s.watch("u1", now=0.0)
        s.watch("u2", now=0.0)
        s.step(now=3.5)
        s.on_answer(["u1", "u2"], [detail("Running", uid="u1"), finished("u2")], now=3.5)
        assert s.step(now=3.5).sleep == 0.5
