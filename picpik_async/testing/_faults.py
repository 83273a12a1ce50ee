"""Fault injection for the emulator: the knobs, when they fire, and the answers they make.

PURE: no I/O. This module never imports anyio, httpx or starlette and never
awaits: a fault that delays an answer only *says* how long; `_app.py` sleeps.

Each knob is a `Trigger`: a rate (a probability drawn from the emulator's
seeded rng), a schedule (a set of request numbers, or a function of the
request number), or both, optionally limited to some actions. The request
number is the per-action counter, ``counters.requests[action]``, including
the request at hand (the first ListModels call is number 1).

Faults are decided at two moments (docs/architecture.md, "The emulator"):

* before the request is processed: slow, busy, HTTP 429, HTTP 5xx. Nothing was
  created, so a retry is always safe;
* after it was processed, only when it succeeded: a dropped connection or a
  malformed answer. A submit hit by either *did* create its task.

Example:
    >>> faults = Faults(busy={1}, rate_limit=Trigger(rate=1.0, actions={"ListModels"}))
    >>> faults.busy.fires("GetCreditBalance", 1, random.Random(0))
    True
    >>> faults.rate_limit.fires("GetCreditBalance", 2, random.Random(0))
    False
"""

from __future__ import annotations

import enum
import json
import random
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final

import attrs
from attrs import field, frozen

from picpik_async._signing import dumps, format_float

from ._codes import RetCode
from ._service import (
    ENVELOPE_FIELDS,
    TASK_ACTIONS,
    HttpAnswer,
    Reply,
    envelope,
    json_answer,
)
from ._state import Failure, RunningList

__all__ = [
    "EarlyFaults",
    "FaultKind",
    "Faults",
    "Malformed",
    "Trigger",
    "as_trigger",
    "decide_early",
    "decide_failure",
    "decide_late",
    "malformed_answer",
]

#: A schedule: the request numbers on which a fault fires, or a test of the number.
Schedule = Callable[[int], bool] | frozenset[int]

BUSY_MESSAGE: Final = "Service busy, please try again later"

_HTML_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>PICPIK</title></head>"
    b"<body><h1>Welcome to PICPIK</h1><p>This page is not an API answer.</p></body></html>\n"
)
_SERVER_ERROR_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>%d</title></head>"
    b"<body><center><h1>%d Service Unavailable</h1></center><hr><center>gateway</center>"
    b"</body></html>\n"
)


class FaultKind(enum.Enum):
    """The kinds of injected fault; `Counters.faults` counts them by value."""

    BUSY = "busy"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    SLOW = "slow"
    DROP = "drop"
    MALFORMED = "malformed"
    TASK_FAILURE = "task_failure"
    LIST_TOO_LONG = "list_too_long"


class Malformed(enum.Enum):
    """The ways an answer can be malformed.

    Each applies to a successful answer, after the request was processed.
    """

    #: An HTML page with HTTP 200 instead of JSON.
    HTML = "html"
    #: The JSON text cut in half.
    TRUNCATED_JSON = "truncated_json"
    #: Result fields of the wrong JSON type (e.g. TaskDetailList as a string).
    WRONG_TYPES = "wrong_types"
    #: The required RetCode missing from the envelope.
    MISSING_FIELDS = "missing_fields"
    #: RetCode 0 without the result (no TaskUID for a submit, no TaskDetailList, ...).
    NO_RESULT = "no_result"
    #: ListTasksDetails: a TaskDetail for a TaskUID that was not asked.
    UNASKED_TASK = "unasked_task"
    #: ListTasksDetails: the same TaskDetail twice.
    DUPLICATE_TASK = "duplicate_task"


def _probability(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in 0..1, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be a number of seconds >= 0, got {value!r}")


def _schedule(value: Callable[[int], bool] | Iterable[int] | None) -> Schedule | None:
    if value is None or callable(value):
        return value
    return frozenset(value)


def _actions(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


@frozen
class Trigger:
    """When one fault fires: on a schedule, with a probability, for some actions.

    Args:
        rate: probability per request, drawn from the emulator's seeded rng.
        schedule: request numbers (1-based, per action) on which it always fires,
            or a function of that number.
        actions: the actions it applies to; None means every action.

    Example:
        >>> every_third = Trigger(schedule=lambda n: n % 3 == 0)
        >>> [every_third.fires("ListModels", n, random.Random()) for n in (1, 2, 3)]
        [False, False, True]
    """

    rate: float = field(default=0.0, converter=float, validator=_probability)
    schedule: Schedule | None = field(default=None, converter=_schedule)
    actions: frozenset[str] | None = field(default=None, converter=_actions)

    @property
    def active(self) -> bool:
        """Whether this trigger can fire at all."""
        return self.rate > 0 or self.schedule is not None

    def applies_to(self, action: str) -> bool:
        """Whether the trigger covers ``action``."""
        return self.actions is None or action in self.actions

    def fires(self, action: str, number: int, rng: random.Random) -> bool:
        """Whether the fault hits request ``number`` of ``action``.

        The rng is drawn only for a covered action with a non-zero rate, so a
        knob that is off never changes what the other knobs draw.
        """
        if not self.applies_to(action):
            return False
        if self.schedule is not None and _on_schedule(self.schedule, number):
            return True
        return self.rate > 0 and rng.random() < self.rate


#: What `Faults` accepts for a knob: a Trigger, a rate, request numbers or a function.
TriggerLike = Trigger | float | Collection[int] | Callable[[int], bool] | None


def _on_schedule(schedule: Schedule, number: int) -> bool:
    if isinstance(schedule, frozenset):
        return number in schedule
    return bool(schedule(number))


def as_trigger(value: TriggerLike) -> Trigger:
    """Read a knob: a Trigger, a rate, a set of request numbers or a function of the number.

    Example:
        >>> as_trigger(0.25).rate, as_trigger({2, 4}).schedule == frozenset({2, 4})
        (0.25, True)
    """
    if value is None:
        return Trigger()
    if isinstance(value, Trigger):
        return value
    if isinstance(value, bool):
        raise TypeError("a fault knob takes a rate, request numbers or a function, not a bool")
    if isinstance(value, int | float):
        return Trigger(rate=value)
    if callable(value):
        return Trigger(schedule=value)
    return Trigger(schedule=frozenset(value))


def _kinds(value: Malformed | str | Iterable[Malformed | str]) -> tuple[Malformed, ...]:
    items = [value] if isinstance(value, Malformed | str) else list(value)
    kinds = tuple(Malformed(item) for item in items)
    if not kinds:
        raise ValueError("malformed_kinds needs at least one kind")
    return kinds


@frozen(kw_only=True)
class Faults:
    """Every fault knob of the emulator; all off by default.

    Each knob takes a `Trigger`, or a shorthand for one: a number is a rate,
    a set of ints the request numbers it fires on, a function of the request
    number a schedule.

    Args:
        busy: answer RetCode 5000 "Service busy, please try again later" (HTTP 200).
        rate_limit: answer HTTP 429 with ``Retry-After: retry_after`` and RetCode 2102.
        retry_after: the seconds the 429 answer asks to wait.
        server_error: answer HTTP ``server_error_status`` with an HTML page.
        server_error_status: the 5xx status used (503 by default).
        slow: delay the answer by ``slow_seconds`` before processing it.
        slow_seconds: the delay of a slow answer.
        drop: process the request, then break the connection before the answer's
            body arrives (the task of a submit exists; the caller never learns its TaskUID).
        malformed: process the request, then send a malformed answer of one of
            ``malformed_kinds`` (chosen by the rng among those that fit the answer).
        malformed_kinds: the `Malformed` kinds to choose from (names or members).
        task_failure: a created task ends in the error status with ``failure``.
        failure: the ErrorCode and ErrorMassage of a failed task.
        max_list_length: refuse a longer TaskUIDList with RetCode 230.
        running_list: how ListRunningTasks bends the truth (`RunningList`).

    Example:
        >>> Faults(drop={1}, malformed=0.1, malformed_kinds="html").malformed_kinds
        (<Malformed.HTML: 'html'>,)
    """

    busy: Trigger = field(factory=Trigger, converter=as_trigger)
    rate_limit: Trigger = field(factory=Trigger, converter=as_trigger)
    retry_after: float = field(default=1.0, converter=float, validator=_non_negative)
    server_error: Trigger = field(factory=Trigger, converter=as_trigger)
    server_error_status: int = field(default=503, validator=attrs.validators.in_(range(500, 600)))
    slow: Trigger = field(factory=Trigger, converter=as_trigger)
    slow_seconds: float = field(default=0.5, converter=float, validator=_non_negative)
    drop: Trigger = field(factory=Trigger, converter=as_trigger)
    malformed: Trigger = field(factory=Trigger, converter=as_trigger)
    malformed_kinds: tuple[Malformed, ...] = field(default=tuple(Malformed), converter=_kinds)
    task_failure: Trigger = field(factory=Trigger, converter=as_trigger)
    failure: Failure = field(factory=Failure)
    max_list_length: int | None = field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    running_list: RunningList = field(factory=RunningList)


# --- decisions --------------------------------------------------------------------


@frozen
class EarlyFaults:
    """What happens before a request is processed: a delay, maybe an answer instead."""

    delay: float = 0.0
    answer: HttpAnswer | None = None
    fired: tuple[FaultKind, ...] = ()


def decide_early(
    faults: Faults, action: str, number: int, rng: random.Random, request_uuid: str | None
) -> EarlyFaults:
    """Decide the faults that strike before processing: slow, then busy, 429 or 5xx.

    At most one of busy, 429 and 5xx fires (checked in that order); a slow
    answer may come with any of them.
    """
    fired: list[FaultKind] = []
    delay = 0.0
    if faults.slow.fires(action, number, rng):
        delay = faults.slow_seconds
        fired.append(FaultKind.SLOW)
    refusals = (
        (FaultKind.BUSY, faults.busy, _busy_answer),
        (FaultKind.RATE_LIMIT, faults.rate_limit, _rate_limit_answer),
        (FaultKind.SERVER_ERROR, faults.server_error, _server_error_answer),
    )
    for kind, trigger, make in refusals:
        if trigger.fires(action, number, rng):
            answer = make(faults, action, request_uuid)
            return EarlyFaults(delay, answer, (*fired, kind))
    return EarlyFaults(delay, None, tuple(fired))


def decide_failure(faults: Faults, action: str, number: int, rng: random.Random) -> Failure | None:
    """The failure a task created by this request will end in, if the fault strikes."""
    if action in TASK_ACTIONS and faults.task_failure.fires(action, number, rng):
        return faults.failure
    return None


def decide_late(
    faults: Faults, action: str, number: int, rng: random.Random, reply: Reply
) -> tuple[HttpAnswer, tuple[FaultKind, ...]]:
    """Turn a processed reply into the answer sent: as it is, dropped or malformed.

    Only successful replies are dropped or malformed: a refusal changed nothing,
    so breaking it would test nothing more than a fault decided early.
    """
    answer = json_answer(reply.body)
    if reply.ret_code != RetCode.OK:
        return answer, ()
    if faults.drop.fires(action, number, rng):
        return attrs.evolve(answer, drop=True), (FaultKind.DROP,)
    if faults.malformed.fires(action, number, rng):
        kinds = [kind for kind in faults.malformed_kinds if _fits(kind, reply.body)]
        if kinds:
            kind = rng.choice(kinds)
            return malformed_answer(kind, reply.body), (FaultKind.MALFORMED,)
    return answer, ()


# --- answers ----------------------------------------------------------------------


def _busy_answer(faults: Faults, action: str, request_uuid: str | None) -> HttpAnswer:
    return json_answer(envelope(action, request_uuid, RetCode.BUSY, BUSY_MESSAGE))


def _rate_limit_answer(faults: Faults, action: str, request_uuid: str | None) -> HttpAnswer:
    seconds = format_float(faults.retry_after)
    message = f"Too many requests, retry after {seconds} s"
    body = envelope(action, request_uuid, RetCode.RATE_LIMITED, message)
    return HttpAnswer(content=dumps(body), status=429, headers=(("Retry-After", seconds),))


def _server_error_answer(faults: Faults, action: str, request_uuid: str | None) -> HttpAnswer:
    status = faults.server_error_status
    return HttpAnswer(
        content=_SERVER_ERROR_PAGE % (status, status), status=status, media_type="text/html"
    )


def _results(body: Mapping[str, Any]) -> list[str]:
    return [key for key in body if key not in ENVELOPE_FIELDS]


def _details(body: Mapping[str, Any]) -> list[Any]:
    details = body.get("TaskDetailList")
    return details if isinstance(details, list) else []


def _fits(kind: Malformed, body: Mapping[str, Any]) -> bool:
    """Whether ``kind`` can be made from this answer."""
    if kind in (Malformed.UNASKED_TASK, Malformed.DUPLICATE_TASK):
        return bool(_details(body))
    if kind in (Malformed.WRONG_TYPES, Malformed.NO_RESULT):
        return bool(_results(body))
    return True


def _wrong_type(value: object) -> object:
    # A string where anything else belongs, a number where a string belongs.
    return len(value) if isinstance(value, str) else json.dumps(value)


def malformed_answer(kind: Malformed, body: Mapping[str, Any]) -> HttpAnswer:
    """The answer ``body`` spoiled the way ``kind`` says.

    Example:
        >>> malformed_answer(Malformed.NO_RESULT, {"RetCode": 0, "TaskUID": "u"}).content
        b'{"RetCode":0}'
    """
    if kind is Malformed.HTML:
        return HttpAnswer(content=_HTML_PAGE, media_type="text/html")
    if kind is Malformed.TRUNCATED_JSON:
        content = dumps(body)
        return HttpAnswer(content=content[: len(content) // 2])
    spoiled = dict(body)
    if kind is Malformed.WRONG_TYPES:
        spoiled.update({key: _wrong_type(body[key]) for key in _results(body)})
    elif kind is Malformed.MISSING_FIELDS:
        del spoiled["RetCode"]
    elif kind is Malformed.NO_RESULT:
        spoiled = {key: value for key, value in body.items() if key in ENVELOPE_FIELDS}
    else:
        first = _details(body)[0]
        extra = first
        if kind is Malformed.UNASKED_TASK:
            # "z" is outside the TaskUID alphabet, so this UID was never handed out.
            extra = {**first, "TaskUID": "z" + str(first["TaskUID"])[1:]}
        spoiled["TaskDetailList"] = [*_details(body), extra]
    return HttpAnswer(content=dumps(spoiled))
