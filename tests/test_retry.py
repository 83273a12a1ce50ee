"""Tests for picpik_async._retry: what is retried, how long to wait, and the retry loop."""

from __future__ import annotations

import logging
import math
import random
from datetime import UTC, datetime
from typing import Any

import anyio
import attrs
import pytest
from doctests import run_doctests
from hypothesis import given
from hypothesis import strategies as st

from picpik_async import _retry as retry_module
from picpik_async._actions import ListModels
from picpik_async._errors import (
    APIError,
    AuthenticationError,
    ClientClosedError,
    PicpikError,
    ProtocolError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskTimeoutError,
    TransportError,
    ValidationError,
)
from picpik_async._protocol import build_body, lost_answer
from picpik_async._retry import RetryEvent, RetryPolicy, is_retryable, parse_retry_after

REQUEST_UUID = "b91fcfbe-bb35-47ce-a168-bd6252c75270"
# A private key used only to sign the body below: it must never reach a log line.
PRIVATE_KEY = "pk-3e8a0c5d1b7f"
BACKENDS = [pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
NO_JITTER = RetryPolicy(jitter=0, backoff_initial=0.5, backoff_max=4)


class TestIsRetryable:
    """Which failed attempts may be repeated (docs/protocol.md, "Answers and HTTP statuses")."""

    @pytest.mark.parametrize(
        ("error", "retryable"),
        [
            pytest.param(APIError("busy", ret_code=5000, retryable=True), True, id="busy"),
            pytest.param(APIError("bad", ret_code=160), False, id="permanent-api-error"),
            pytest.param(AuthenticationError("bad signature"), False, id="authentication"),
            pytest.param(RateLimitError("slow down"), True, id="rate-limit"),
            pytest.param(RateLimitError("no", retryable=False), False, id="permanent-rate-limit"),
            pytest.param(TransportError("connect failed"), True, id="transport"),
            pytest.param(ProtocolError("garbled"), True, id="garbled-read"),
            pytest.param(
                SubmitOutcomeUnknownError("lost", request_uuid=REQUEST_UUID),
                False,
                id="unknown-submit",
            ),
            pytest.param(ValidationError("width"), False, id="validation"),
            pytest.param(TaskFailedError("u", 1, "boom"), False, id="task-failed"),
            pytest.param(TaskTimeoutError("u", 1.0), False, id="task-timeout"),
            pytest.param(ClientClosedError("closed"), False, id="client-closed"),
            pytest.param(PicpikError("root"), False, id="root"),
            pytest.param(ValueError("bug"), False, id="value-error"),
            pytest.param(KeyError("bug"), False, id="key-error"),
        ],
    )
    def test_default_policy(self, error: BaseException, retryable: bool) -> None:
        """Each kind of error is retried, or not, under the default policy."""
        assert is_retryable(error, RetryPolicy()) is retryable

    def test_unknown_submits_opt_in(self) -> None:
        """A lost submit is retried only when retry_unknown_submits is on."""
        unknown = SubmitOutcomeUnknownError("lost", request_uuid=REQUEST_UUID)
        policy = RetryPolicy(retry_unknown_submits=True)
        assert is_retryable(unknown, policy) is True
        assert is_retryable(APIError("bad"), policy) is False

    @pytest.mark.parametrize(
        "sent", [pytest.param(True, id="sent"), pytest.param(False, id="unsent")]
    )
    def test_lost_read_answers(self, sent: bool) -> None:
        """A read action's lost answer is retried whether or not the request left."""
        error = lost_answer(ListModels(), request_uuid=REQUEST_UUID, sent=sent, reason="reset")
        assert is_retryable(error, RetryPolicy()) is True


class TestBackoff:
    """RetryPolicy.backoff: exponential, jittered, capped; Retry-After honoured."""

    @pytest.mark.parametrize(
        ("attempt", "wait"),
        [
            pytest.param(1, 0.5, id="first"),
            pytest.param(2, 1.0, id="second"),
            pytest.param(3, 2.0, id="third"),
            pytest.param(4, 4.0, id="reaches-cap"),
            pytest.param(5, 4.0, id="capped"),
            pytest.param(60, 4.0, id="far-past-cap"),
        ],
    )
    def test_exponential_without_jitter(self, attempt: int, wait: float) -> None:
        """Without jitter the wait doubles from backoff_initial up to backoff_max."""
        assert NO_JITTER.backoff(attempt, None, random.Random(0)) == wait

    @given(
        attempt=st.integers(1, 40),
        jitter=st.floats(0, 1),
        seed=st.integers(0, 2**32),
    )
    def test_jitter_bounds(self, attempt: int, jitter: float, seed: int) -> None:
        """With jitter j the wait is within base*(1-j/2) .. base*(1+j/2)."""
        policy = RetryPolicy(jitter=jitter, backoff_initial=0.5, backoff_max=15)
        base = min(15.0, 0.5 * 2.0 ** (attempt - 1))
        wait = policy.backoff(attempt, APIError("busy", retryable=True), random.Random(seed))
        assert base * (1 - jitter / 2) <= wait <= base * (1 + jitter / 2)
        assert 0 <= wait <= 15 * 1.5

    def test_jitter_uses_the_rng(self) -> None:
        """The random part comes from the rng handed in, so a seed makes it repeatable."""
        policy = RetryPolicy(jitter=0.5)
        waits = [policy.backoff(2, None, random.Random(7)) for _ in range(3)]
        assert len(set(waits)) == 1
        assert policy.backoff(2, None, random.Random(8)) != waits[0]

    @pytest.mark.parametrize(
        ("retry_after", "wait"),
        [
            pytest.param(3.0, 3.0, id="honoured"),
            pytest.param(0.0, 0.0, id="zero"),
            pytest.param(60.0, 60.0, id="at-cap"),
            pytest.param(3600.0, 60.0, id="capped"),
        ],
    )
    def test_retry_after(self, retry_after: float, wait: float) -> None:
        """A RateLimitError's retry_after replaces the backoff, capped by retry_after_max."""
        error = RateLimitError("slow down", retry_after=retry_after)
        assert RetryPolicy().backoff(1, error, random.Random(0)) == wait
        assert RetryPolicy().backoff(9, error, random.Random(0)) == wait

    def test_rate_limit_without_retry_after(self) -> None:
        """A RateLimitError without retry_after backs off like any other error."""
        error = RateLimitError("slow down")
        assert NO_JITTER.backoff(3, error, random.Random(0)) == 2.0


class TestParseRetryAfter:
    """Retry-After is delta-seconds or an HTTP date (RFC 9110 10.2.3)."""

    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("value", "seconds"),
        [
            pytest.param("3", 3.0, id="seconds"),
            pytest.param("0", 0.0, id="zero"),
            pytest.param("1.5", 1.5, id="float"),
            pytest.param(" 2 ", 2.0, id="padded"),
            pytest.param("-5", 0.0, id="negative-clamped"),
            pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 60.0, id="http-date"),
            pytest.param("Wed, 21 Oct 2015 07:28:30 +0000", 90.0, id="numeric-zone"),
            pytest.param("Wed, 21 Oct 2015 09:28:00 +0200", 60.0, id="other-zone"),
            pytest.param("Wed, 21 Oct 2015 07:28:00", 60.0, id="no-zone-is-utc"),
            pytest.param("Wed, 21 Oct 2015 07:00:00 GMT", 0.0, id="date-in-the-past"),
            pytest.param("Thu, 01 Jan 1970 00:00:00 GMT", 0.0, id="epoch"),
        ],
    )
    def test_parsed(self, value: str, seconds: float) -> None:
        """Usable values give the seconds to wait, never negative."""
        assert parse_retry_after(value, self.now) == seconds

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(None, id="absent"),
            pytest.param("", id="empty"),
            pytest.param("   ", id="blank"),
            pytest.param("soon", id="garbage"),
            pytest.param("Mon, 99 Foo 2015 07:28:00 GMT", id="bad-date"),
            pytest.param("inf", id="inf"),
            pytest.param("-inf", id="minus-inf"),
            pytest.param("nan", id="nan"),
            pytest.param("1e400", id="overflows-to-inf"),
        ],
    )
    def test_unusable(self, value: str | None) -> None:
        """Unusable values give None, so the normal backoff applies."""
        assert parse_retry_after(value, self.now) is None

    def test_defaults_to_the_current_time(self) -> None:
        """Without `now`, a date is measured from the current time."""
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
        far = parse_retry_after("Sat, 01 Jan 2201 00:00:00 GMT")
        assert far is not None
        assert far > 0

    @given(st.text())
    def test_never_raises(self, value: str) -> None:
        """Any header text gives None or a finite, non-negative number."""
        seconds = parse_retry_after(value, self.now)
        assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


def kwargs(name: str, value: object) -> dict[str, Any]:
    """Keyword arguments setting one field, whatever its type."""
    return {name: value}


class TestPolicyValidation:
    """RetryPolicy takes numbers and refuses bad ones with ValidationError."""

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(0, id="zero"),
            pytest.param(101, id="too-many"),
            pytest.param(-1, id="negative"),
            pytest.param(True, id="bool"),
            pytest.param(2.0, id="float"),
            pytest.param("3", id="str"),
            pytest.param(None, id="none"),
        ],
    )
    def test_bad_max_attempts(self, value: object) -> None:
        """max_attempts must be an integer in 1..100."""
        with pytest.raises(ValidationError, match=r"max_attempts must be an integer in 1\.\.100"):
            RetryPolicy(max_attempts=value)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [1, 100])
    def test_max_attempts_bounds(self, value: int) -> None:
        """Both ends of max_attempts are accepted."""
        assert RetryPolicy(max_attempts=value).max_attempts == value

    @pytest.mark.parametrize(
        "name", ["max_total", "backoff_initial", "backoff_max", "jitter", "retry_after_max"]
    )
    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(-1, id="negative"),
            pytest.param(-0.001, id="slightly-negative"),
            pytest.param(math.nan, id="nan"),
            pytest.param(math.inf, id="inf"),
            pytest.param("1", id="str"),
            pytest.param(None, id="none"),
        ],
    )
    def test_bad_numbers(self, name: str, value: object) -> None:
        """Durations and the jitter fraction must be finite numbers >= 0."""
        with pytest.raises(ValidationError, match=f"RetryPolicy.{name} must be a number >= 0"):
            RetryPolicy(**kwargs(name, value))

    @pytest.mark.parametrize(
        "name", ["max_total", "backoff_initial", "backoff_max", "jitter", "retry_after_max"]
    )
    def test_zero_and_ints_are_accepted(self, name: str) -> None:
        """Zero and plain ints are valid durations."""
        assert getattr(RetryPolicy(**kwargs(name, 0)), name) == 0
        assert getattr(RetryPolicy(**kwargs(name, 1)), name) == 1

    def test_defaults(self) -> None:
        """The defaults are the documented ones, and unknown submits are not retried."""
        policy = RetryPolicy()
        assert (policy.max_attempts, policy.max_total) == (5, 120.0)
        assert (policy.backoff_initial, policy.backoff_max) == (0.5, 15.0)
        assert (policy.jitter, policy.retry_after_max) == (0.5, 60.0)
        assert policy.retry_unknown_submits is False

    def test_frozen(self) -> None:
        """A policy is an immutable value."""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            RetryPolicy().max_attempts = 3  # type: ignore[misc]


class Flaky:
    """A call that fails with the given errors, in order, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Run:
    """One logical call driven through `RetryPolicy.retrying` on a real event loop."""

    def __init__(self, policy: RetryPolicy, backend: str, *, hook: bool = True) -> None:
        self.policy = policy
        self.backend = backend
        self.delays: list[float] = []
        self.events: list[RetryEvent] = []
        self.hook = hook

    async def sleep(self, delay: float) -> None:
        """A fake sleep: records the delay and returns at once."""
        self.delays.append(delay)

    def __call__(self, call: Flaky) -> str:
        """Run `call` under the policy; return its result or raise its last error."""

        async def main() -> str:
            retrying = self.policy.retrying(
                sleep=self.sleep,
                action="ListModels",
                request_uuid=REQUEST_UUID,
                on_retry=self.events.append if self.hook else None,
                rng=random.Random(0),
            )
            result = ""
            async for attempt in retrying:
                with attempt:
                    result = call()
            return result

        result: str = anyio.run(main, backend=self.backend)
        return result


def busy(n: int = 1) -> list[APIError]:
    """`n` retryable API errors."""
    return [APIError("busy", ret_code=5000, retryable=True) for _ in range(n)]


@pytest.mark.parametrize("backend", BACKENDS)
class TestRetrying:
    """The tenacity loop of one logical call, on asyncio and on trio."""

    def test_success_after_failures(self, backend: str) -> None:
        """A call failing twice with a retryable error succeeds on the third attempt."""
        run, call = Run(NO_JITTER, backend), Flaky(*busy(2))
        assert run(call) == "ok"
        assert call.calls == 3
        assert run.delays == [0.5, 1.0]

    def test_first_try(self, backend: str) -> None:
        """A call that succeeds at once neither sleeps nor reports a retry."""
        run, call = Run(NO_JITTER, backend), Flaky()
        assert run(call) == "ok"
        assert (call.calls, run.delays, run.events) == (1, [], [])

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(APIError("bad", ret_code=160), id="permanent-api-error"),
            pytest.param(AuthenticationError("bad signature", ret_code=171), id="authentication"),
            pytest.param(
                SubmitOutcomeUnknownError("lost", request_uuid=REQUEST_UUID), id="unknown-submit"
            ),
            pytest.param(ValueError("a bug"), id="not-ours"),
        ],
    )
    def test_permanent_error_fails_at_once(self, backend: str, error: BaseException) -> None:
        """A permanent error is raised as itself on the first attempt, with no sleep."""
        run, call = Run(NO_JITTER, backend), Flaky(error, *busy(3))
        with pytest.raises(type(error)) as caught:
            run(call)
        assert caught.value is error
        assert (call.calls, run.delays, run.events) == (1, [], [])

    def test_gives_up_after_max_attempts(self, backend: str) -> None:
        """After max_attempts failures the last error is raised as itself."""
        errors = busy(5)
        run, call = Run(attrs.evolve(NO_JITTER, max_attempts=3), backend), Flaky(*errors)
        with pytest.raises(APIError) as caught:
            run(call)
        assert caught.value is errors[2]
        assert call.calls == 3
        assert run.delays == [0.5, 1.0]

    def test_gives_up_before_max_total(self, backend: str) -> None:
        """No attempt is started whose wait would pass max_total."""
        policy = RetryPolicy(jitter=0, backoff_initial=5, max_total=1)
        run, call = Run(policy, backend), Flaky(*busy(2))
        with pytest.raises(APIError, match="busy"):
            run(call)
        assert call.calls == 1
        assert run.delays == []

    def test_unknown_submit_retried_when_allowed(self, backend: str) -> None:
        """With retry_unknown_submits, a lost submit is sent again."""
        policy = attrs.evolve(NO_JITTER, retry_unknown_submits=True)
        run = Run(policy, backend)
        call = Flaky(SubmitOutcomeUnknownError("lost", request_uuid=REQUEST_UUID))
        assert run(call) == "ok"
        assert call.calls == 2

    def test_retry_after_is_slept(self, backend: str) -> None:
        """A RateLimitError's retry_after is the wait, capped by retry_after_max."""
        policy = attrs.evolve(NO_JITTER, retry_after_max=10)
        run = Run(policy, backend)
        call = Flaky(RateLimitError("slow", retry_after=3), RateLimitError("slow", retry_after=99))
        assert run(call) == "ok"
        assert run.delays == [3.0, 10.0]

    def test_transport_and_protocol_errors_are_retried(self, backend: str) -> None:
        """Read actions retry lost connections and garbled answers."""
        run, call = Run(NO_JITTER, backend), Flaky(TransportError("reset"), ProtocolError("bad"))
        assert run(call) == "ok"
        assert call.calls == 3

    def test_on_retry_events(self, backend: str) -> None:
        """The on_retry hook gets a RetryEvent before each retry sleep."""
        errors = busy(2)
        run = Run(NO_JITTER, backend)
        run(Flaky(*errors))
        assert run.events == [
            RetryEvent(
                action="ListModels",
                request_uuid=REQUEST_UUID,
                attempt=1,
                error=errors[0],
                wait=0.5,
            ),
            RetryEvent(
                action="ListModels",
                request_uuid=REQUEST_UUID,
                attempt=2,
                error=errors[1],
                wait=1.0,
            ),
        ]
        assert [event.wait for event in run.events] == run.delays

    def test_no_hook(self, backend: str) -> None:
        """Without an on_retry hook the retries happen all the same."""
        run, call = Run(NO_JITTER, backend, hook=False), Flaky(*busy(2))
        assert run(call) == "ok"
        assert run.delays == [0.5, 1.0]

    def test_jittered_delays_match_backoff(self, backend: str) -> None:
        """The slept delays are the policy's backoff for the rng handed in."""
        policy = RetryPolicy(jitter=0.5, backoff_initial=0.5)
        run = Run(policy, backend)
        run(Flaky(*busy(3)))
        rng = random.Random(0)
        assert run.delays == [policy.backoff(n, None, rng) for n in (1, 2, 3)]

    def test_log_line_per_retry(self, backend: str, caplog: pytest.LogCaptureFixture) -> None:
        """Each retry logs one INFO line naming the call, and never the private key."""
        body = build_body(
            ListModels(), public_key="abcdefg", private_key=PRIVATE_KEY, request_uuid=REQUEST_UUID
        )
        errors: list[Any] = [
            APIError(body.decode(), ret_code=5000, request_uuid=REQUEST_UUID, retryable=True),
            TransportError(f"reset while sending {body.decode()}"),
        ]
        caplog.set_level(logging.INFO, logger="picpik_async")
        run = Run(NO_JITTER, backend)
        run(Flaky(*errors))
        records = [r for r in caplog.records if r.name == "picpik_async"]
        assert len(records) == 2
        assert all(r.levelno == logging.INFO for r in records)
        first, second = (r.getMessage() for r in records)
        assert first.startswith("retrying ListModels (attempt 2 of 5) in 0.50 s after APIError")
        assert second.startswith("retrying ListModels (attempt 3 of 5) in 1.00 s after Transport")
        for message in (first, second):
            assert message.endswith(f"(request_uuid={REQUEST_UUID})")
            assert PRIVATE_KEY not in message


def test_docstring_examples() -> None:
    """The examples in the module's docstrings run and give the answers shown."""
    result = run_doctests(retry_module)
    assert result.attempted >= 2
    assert result.failed == 0
