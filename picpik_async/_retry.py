"""What is retried, how long to wait, and the tenacity object that does it.

PURE: no I/O, no anyio, no httpx; the sleep function is handed in by the
client (anyio.sleep), so the same code runs under asyncio and trio.

The rules (docs/protocol.md, "Answers and HTTP statuses" and "Unknown outcomes"):

- a non-zero RetCode means nothing was created: retry unless it is permanent;
- HTTP 429 and 5xx, and errors that prove the request never left: retry;
- read actions also retry read timeouts, dropped connections and garbled answers;
- a submit whose answer was lost is a `SubmitOutcomeUnknownError`, retried only
  when `RetryPolicy.retry_unknown_submits` is on (with the same request_uuid).
"""

from __future__ import annotations

import email.utils
import inspect
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import attrs
from attrs import field, frozen
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from ._errors import (
    APIError,
    ProtocolError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TransportError,
    ValidationError,
)

__all__ = ["RetryEvent", "RetryPolicy", "is_retryable", "parse_retry_after"]

logger: Final = logging.getLogger("picpik_async")
# One generator for all jitter: a Random per call would cost 2.5 KB per queued call.
_JITTER: Final = random.Random()  # noqa: S311 - jitter, not cryptography


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and number >= 0):
        raise ValidationError(f"RetryPolicy.{attribute.name} must be a number >= 0, got {value!r}")


def _fraction(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    _positive(instance, attribute, value)
    if value > 1:
        raise ValidationError(
            f"RetryPolicy.{attribute.name} must be a number in 0..1, got {value!r}"
        )


def _attempts(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
        raise ValidationError(
            f"RetryPolicy.max_attempts must be an integer in 1..100, got {value!r}"
        )


@frozen(kw_only=True)
class RetryEvent:
    """What the `on_retry` hook is told before each retry sleep."""

    action: str
    request_uuid: str
    attempt: int
    error: BaseException
    wait: float


@frozen(kw_only=True)
class RetryPolicy:
    """How calls are retried: numbers, not tenacity objects.

    Args:
        max_attempts: attempts per call, the first one included.
        max_total: seconds after which no new attempt is started.
        backoff_initial: the first wait, doubled each retry ...
        backoff_max: ... up to this many seconds.
        jitter: the fraction of each wait drawn at random (0 = none).
        retry_after_max: the longest `Retry-After` honoured, in seconds.
        retry_unknown_submits: resend a submit whose answer was lost, with the
            same request_uuid. Off by default: it may create (and charge) a
            second task if the service does not deduplicate by request_uuid.

    Example:
        >>> RetryPolicy(max_attempts=3, backoff_initial=0.2).max_attempts
        3
    """

    max_attempts: int = field(default=5, validator=_attempts)
    max_total: float = field(default=120.0, validator=_positive)
    backoff_initial: float = field(default=0.5, validator=_positive)
    backoff_max: float = field(default=15.0, validator=_positive)
    jitter: float = field(default=0.5, validator=_fraction)
    retry_after_max: float = field(default=60.0, validator=_positive)
    retry_unknown_submits: bool = False

    def backoff(self, attempt: int, error: BaseException | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return min(error.retry_after, self.retry_after_max)
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))
        return base * (1 - self.jitter / 2 + self.jitter * rng.random())

    def retrying(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]],
        action: str,
        request_uuid: str,
        on_retry: Callable[[RetryEvent], object] | None = None,
        rng: random.Random | None = None,
    ) -> AsyncRetrying:
        """A tenacity `AsyncRetrying` for one logical call.

        The caller reuses the same request_uuid and signed body on every attempt.
        """
        rand = rng or _JITTER

        def wait(state: RetryCallState) -> float:
            return self.backoff(state.attempt_number, _error_of(state), rand)

        def before_sleep(state: RetryCallState) -> None:
            error = _error_of(state)
            delay = state.upcoming_sleep
            logger.info(
                "retrying %s (attempt %d of %d) in %.2f s after %s (request_uuid=%s)",
                action, state.attempt_number + 1, self.max_attempts, delay,
                _describe(error), request_uuid,
            )  # fmt: skip
            if on_retry is not None and error is not None:
                event = RetryEvent(
                    action=action,
                    request_uuid=request_uuid,
                    attempt=state.attempt_number,
                    error=error,
                    wait=delay,
                )
                _call_hook(on_retry, event)

        return AsyncRetrying(
            sleep=sleep,
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_total),
            wait=wait,
            retry=retry_if_exception(lambda exc: is_retryable(exc, self)),
            before_sleep=before_sleep,
            reraise=True,
        )


def is_retryable(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether one failed attempt may be repeated (see the module docstring).

    The client has already turned every lost submit answer into a
    `SubmitOutcomeUnknownError`, so a plain `TransportError` or `ProtocolError`
    reaching here is either a read action or a request that never left.

    Example:
        >>> is_retryable(ProtocolError("garbled"), RetryPolicy())
        True
    """
    if isinstance(error, SubmitOutcomeUnknownError):
        return policy.retry_unknown_submits
    if isinstance(error, APIError | ProtocolError):
        return error.retryable
    return isinstance(error, TransportError)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    Example:
        >>> parse_retry_after("3")
        3.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _seconds_until(text: str, now: datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(UTC))).total_seconds()


def _call_hook(on_retry: Callable[[RetryEvent], object], event: RetryEvent) -> None:
    """Run the user's hook; what it raises is logged, never the call's outcome."""
    try:
        outcome = on_retry(event)
    except Exception:
        logger.warning("on_retry callback raised for %s; ignored", event.action, exc_info=True)
        return
    if inspect.isawaitable(outcome):  # an async hook slipped through: it cannot run here
        getattr(outcome, "close", lambda: None)()
        logger.warning("on_retry callback returned an awaitable, which is never awaited")


def _error_of(state: RetryCallState) -> BaseException | None:
    outcome = state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}" if error is not None else "no error"
