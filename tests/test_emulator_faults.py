"""Tests for the emulator's pure fault knobs, answers, counters and public surface."""

from __future__ import annotations

import ast
import doctest
import inspect
import json
import random
from typing import Any

import pytest

import picpik_async.testing as testing
from picpik_async._errors import (
    AUTH_CODES,
    CREDIT_CODES,
    PARAM_CODES,
    RATE_CODES,
    APIError,
    classify_api_error,
)
from picpik_async.testing import (
    Counters,
    FaultKind,
    Faults,
    Malformed,
    RetCode,
    Trigger,
    _codes,
    _counters,
    _emulator,
    _faults,
    _images,
    _server,
    _service,
    _state,
    _transport,
)
from picpik_async.testing._faults import (
    as_trigger,
    decide_early,
    decide_failure,
    decide_late,
    malformed_answer,
)
from picpik_async.testing._service import Reply

OK_SUBMIT = {"RetCode": 0, "Action": "GenerateImagesSDXL", "Message": "", "TaskUID": "t" * 20}
OK_DETAILS = {
    "RetCode": 0,
    "Action": "ListTasksDetails",
    "Message": "",
    "request_uuid": "u1",
    "TaskDetailList": [{"TaskUID": "a" * 20, "Status": "Running"}],
}


class _CountingRandom(random.Random):
    """A Random that counts how often it is drawn from."""

    draws = 0

    def random(self) -> float:
        self.draws += 1
        return super().random()


class TestTrigger:
    def test_off_by_default_and_never_draws(self) -> None:
        """An inactive trigger never fires and leaves the rng alone."""
        rng = _CountingRandom(1)
        trigger = Trigger()
        assert not trigger.active
        assert not any(trigger.fires("ListModels", n, rng) for n in range(1, 50))
        assert rng.draws == 0

    def test_rate_one_always_fires(self) -> None:
        """A rate of 1 fires on every request."""
        assert all(Trigger(rate=1.0).fires("X", n, random.Random()) for n in range(1, 20))

    def test_rate_is_drawn_from_the_seeded_rng(self) -> None:
        """A rate fires about that often, and identically for the same seed."""
        trigger = Trigger(rate=0.3)

        def pattern(seed: int) -> list[bool]:
            rng = random.Random(seed)
            return [trigger.fires("X", n, rng) for n in range(1, 1001)]

        hits = pattern(3)
        assert hits == pattern(3)
        assert 200 < sum(hits) < 400

    def test_schedule_of_request_numbers(self) -> None:
        """A set fires exactly on those request numbers."""
        trigger = as_trigger({2, 5})
        assert [n for n in range(1, 8) if trigger.fires("X", n, random.Random())] == [2, 5]

    def test_schedule_function(self) -> None:
        """A function of the request number decides."""
        trigger = as_trigger(lambda n: n % 3 == 0)
        assert [n for n in range(1, 10) if trigger.fires("X", n, random.Random())] == [3, 6, 9]

    def test_limited_to_actions(self) -> None:
        """With actions given, other actions are never hit (and draw nothing)."""
        rng = _CountingRandom(0)
        trigger = Trigger(rate=1.0, actions={"GenerateImagesSDXL"})
        assert trigger.fires("GenerateImagesSDXL", 1, rng)
        assert not trigger.fires("ListTasksDetails", 1, rng)
        assert rng.draws == 1
        assert Trigger(actions="ListModels").actions == frozenset({"ListModels"})

    @pytest.mark.parametrize("rate", [-0.1, 1.5])
    def test_rate_must_be_a_probability(self, rate: float) -> None:
        """Rates outside 0..1 are refused."""
        with pytest.raises(ValueError, match="probability"):
            Trigger(rate=rate)

    def test_shorthands(self) -> None:
        """as_trigger reads None, numbers, sets, functions and Triggers; refuses bools."""
        assert as_trigger(None) == Trigger()
        assert as_trigger(1).rate == 1.0
        assert as_trigger([1, 1, 2]).schedule == frozenset({1, 2})
        trigger = Trigger(rate=0.5)
        assert as_trigger(trigger) is trigger
        with pytest.raises(TypeError, match="not a bool"):
            as_trigger(True)


class TestFaults:
    def test_all_off_by_default(self) -> None:
        """A default Faults has no active knob and no list limit."""
        faults = Faults()
        knobs = [faults.busy, faults.rate_limit, faults.server_error, faults.slow, faults.drop]
        knobs += [faults.malformed, faults.task_failure]
        assert not any(knob.active for knob in knobs)
        assert faults.max_list_length is None
        assert faults.malformed_kinds == tuple(Malformed)

    def test_kinds_accept_names(self) -> None:
        """Malformed kinds may be given by name, alone or in a list."""
        assert Faults(malformed_kinds="html").malformed_kinds == (Malformed.HTML,)
        kinds = Faults(malformed_kinds=["no_result", Malformed.HTML]).malformed_kinds
        assert kinds == (Malformed.NO_RESULT, Malformed.HTML)
        with pytest.raises(ValueError, match="at least one"):
            Faults(malformed_kinds=[])

    def test_server_error_status_must_be_5xx(self) -> None:
        """Only 5xx statuses make sense for the server-error fault."""
        with pytest.raises(ValueError, match="server_error_status"):
            Faults(server_error_status=404)


class TestDecisions:
    def test_early_refusals_in_order(self) -> None:
        """Busy wins over 429, which wins over 5xx; a slow delay can come along."""
        faults = Faults(busy={1}, rate_limit={1, 2}, server_error={1, 2, 3}, slow={1})
        rng = random.Random()
        first = decide_early(faults, "ListModels", 1, rng, "u1")
        assert first.fired == (FaultKind.SLOW, FaultKind.BUSY)
        assert first.delay == faults.slow_seconds
        assert decide_early(faults, "ListModels", 2, rng, None).fired == (FaultKind.RATE_LIMIT,)
        third = decide_early(faults, "ListModels", 3, rng, None)
        assert third.fired == (FaultKind.SERVER_ERROR,)
        assert third.answer is not None
        assert third.answer.status == 503
        assert decide_early(faults, "ListModels", 4, rng, None).answer is None

    def test_busy_answer(self) -> None:
        """Busy is HTTP 200 with a non-zero, retryable RetCode and the request_uuid echoed."""
        answer = decide_early(Faults(busy=1.0), "ListModels", 1, random.Random(), "u9").answer
        assert answer is not None
        assert answer.status == 200
        body = json.loads(answer.content)
        assert body == {
            "RetCode": 5000,
            "Action": "ListModels",
            "Message": "Service busy, please try again later",
            "request_uuid": "u9",
        }
        assert classify_api_error(body["RetCode"], body["Message"]) == (APIError, True)

    def test_rate_limit_answer(self) -> None:
        """429 carries Retry-After and RetCode 2102."""
        faults = Faults(rate_limit=1.0, retry_after=2.5)
        answer = decide_early(faults, "X", 1, random.Random(), None).answer
        assert answer is not None
        assert answer.status == 429
        assert dict(answer.headers) == {"Retry-After": "2.5"}
        assert json.loads(answer.content)["RetCode"] == RetCode.RATE_LIMITED

    def test_failure_only_for_task_actions(self) -> None:
        """The task-failure knob only hits task-creating actions."""
        faults = Faults(task_failure=1.0)
        assert decide_failure(faults, "GenerateImagesSDXL", 1, random.Random()) == faults.failure
        assert decide_failure(faults, "ListModels", 1, random.Random()) is None

    def test_late_faults_spare_refusals(self) -> None:
        """Drop and malformed only hit successful answers."""
        faults = Faults(drop=1.0, malformed=1.0)
        refused = Reply(body={"RetCode": 160, "Action": "X", "Message": "no"})
        answer, fired = decide_late(faults, "X", 1, random.Random(), refused)
        assert (answer.drop, fired) == (False, ())
        answer, fired = decide_late(faults, "X", 1, random.Random(), Reply(body=OK_SUBMIT))
        assert (answer.drop, fired) == (True, (FaultKind.DROP,))

    def test_malformed_picks_a_kind_that_fits(self) -> None:
        """Kinds that need a TaskDetailList are not used on other answers."""
        faults = Faults(malformed=1.0, malformed_kinds=["unasked_task", "duplicate_task"])
        answer, fired = decide_late(faults, "X", 1, random.Random(), Reply(body=OK_SUBMIT))
        assert (fired, json.loads(answer.content)) == ((), OK_SUBMIT)
        answer, fired = decide_late(faults, "X", 1, random.Random(), Reply(body=OK_DETAILS))
        assert fired == (FaultKind.MALFORMED,)
        assert len(json.loads(answer.content)["TaskDetailList"]) == 2


class TestMalformedAnswers:
    def test_html(self) -> None:
        """HTML with HTTP 200 instead of JSON."""
        answer = malformed_answer(Malformed.HTML, OK_SUBMIT)
        assert (answer.status, answer.media_type) == (200, "text/html")
        assert answer.content.startswith(b"<!DOCTYPE html>")

    def test_truncated(self) -> None:
        """Truncated JSON does not parse."""
        content = malformed_answer(Malformed.TRUNCATED_JSON, OK_SUBMIT).content
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)

    def test_wrong_types(self) -> None:
        """Result fields change JSON type: lists become strings, strings numbers."""
        details = json.loads(malformed_answer(Malformed.WRONG_TYPES, OK_DETAILS).content)
        assert isinstance(details["TaskDetailList"], str)
        submit = json.loads(malformed_answer(Malformed.WRONG_TYPES, OK_SUBMIT).content)
        assert isinstance(submit["TaskUID"], int)
        assert submit["RetCode"] == 0

    def test_missing_ret_code(self) -> None:
        """The envelope's required RetCode is missing."""
        body = json.loads(malformed_answer(Malformed.MISSING_FIELDS, OK_SUBMIT).content)
        assert "RetCode" not in body
        assert body["TaskUID"] == OK_SUBMIT["TaskUID"]

    def test_no_result(self) -> None:
        """RetCode 0 without a TaskUID."""
        body = json.loads(malformed_answer(Malformed.NO_RESULT, OK_SUBMIT).content)
        assert body == {"RetCode": 0, "Action": "GenerateImagesSDXL", "Message": ""}

    def test_unasked_task(self) -> None:
        """An extra TaskDetail for a UID that was never handed out."""
        body = json.loads(malformed_answer(Malformed.UNASKED_TASK, OK_DETAILS).content)
        uids = [detail["TaskUID"] for detail in body["TaskDetailList"]]
        assert uids[0] == "a" * 20
        assert uids[1] != uids[0]
        assert len(uids[1]) == 20

    def test_duplicate_task(self) -> None:
        """The same TaskDetail twice."""
        body = json.loads(malformed_answer(Malformed.DUPLICATE_TASK, OK_DETAILS).content)
        first, second = body["TaskDetailList"]
        assert first == second


class TestCounters:
    def test_reset_and_duplicates(self) -> None:
        """reset() zeroes every counter; duplicate_tasks() lists uuids with >1 task."""
        counters = Counters()
        counters.requests["ListModels"] += 2
        counters.list_lengths.append(3)
        counters.tasks_created = 3
        counters.tasks_per_request_uuid.update({"a": 1, "b": 2})
        counters.faults["drop"] += 1
        counters.image_downloads = 4
        assert counters.duplicate_tasks() == {"b": 2}
        counters.reset()
        assert counters == Counters()


class TestCodes:
    def test_codes_are_classified_by_the_client_core(self) -> None:
        """The emulator's RetCodes are the numbers picpik_async._errors knows."""
        assert {RetCode.BAD_SIGNATURE, RetCode.UNKNOWN_PUBLIC_KEY} <= AUTH_CODES
        assert {RetCode.INVALID_PARAMETER, RetCode.UNKNOWN_ACTION, RetCode.LIST_TOO_LONG} <= (
            PARAM_CODES
        )
        assert RetCode.INSUFFICIENT_CREDITS in CREDIT_CODES
        assert RetCode.RATE_LIMITED in RATE_CODES
        assert classify_api_error(RetCode.BUSY, "Service busy, please try again later")[1]


class TestPurity:
    @pytest.mark.parametrize(
        "module", [_codes, _counters, _faults, _service, _state], ids=lambda m: m.__name__
    )
    def test_pure_modules_do_no_io(self, module: Any) -> None:
        """The pure core imports no I/O library (house style: pure core, I/O shell)."""
        tree = ast.parse(inspect.getsource(module))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        io_libraries = {
            "anyio",
            "asyncio",
            "httpx",
            "starlette",
            "uvicorn",
            "PIL",
            "trio",
            "socket",
        }
        assert not {name.split(".")[0] for name in imported} & io_libraries


class TestPublicSurface:
    def test_all_is_sorted_and_complete(self) -> None:
        """picpik_async.testing exports a sorted __all__ naming every public attribute.

        Sorted the way ruff's RUF022 sorts: constants, then classes, then functions.
        """

        def isort_style(name: str) -> tuple[bool, bool, str]:
            return (not name.isupper(), not name[:1].isupper(), name)

        assert testing.__all__ == sorted(testing.__all__, key=isort_style)
        public = {name for name in vars(testing) if not name.startswith("_")}
        public -= {"annotations"}
        assert set(testing.__all__) == public

    @pytest.mark.parametrize(
        "module",
        [
            _codes,
            _counters,
            _emulator,
            _faults,
            _images,
            _server,
            _service,
            _state,
            _transport,
            testing,
        ],
        ids=lambda module: module.__name__.rsplit(".", 1)[-1],
    )
    def test_docstring_examples(self, module: Any) -> None:
        """The examples in the docstrings run and say what they show."""
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0
