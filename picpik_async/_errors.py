"""The exception tree of picpik_async, and the pure classifier of API failures.

PURE: no I/O, no anyio, no httpx.

    PicpikError
    ├── ValidationError (also a ValueError)   bad input, raised before any I/O
    ├── ClientClosedError (also a RuntimeError)  the client is closed or not open for the call
    ├── ImageSaveError (also an OSError)       writing a downloaded image failed midway
    ├── BudgetExceededError                   a submit would pass the client's CreditBudget
    ├── LedgerError                           a batch ledger could not be opened or written
    ├── APIError                              non-zero RetCode or HTTP error answer
    │   ├── AuthenticationError                   signature or key problems
    │   ├── RateLimitError                        HTTP 429 or a throttling RetCode
    │   └── ImageExpiredError                     an image URL is gone (24-hour retention)
    ├── TransportError                        connect/read failures, timeouts
    │   └── SubmitOutcomeUnknownError             a submit was sent, its answer lost
    ├── ProtocolError                         an answer that does not fit the contract
    │   └── ResponseTooLargeError                 an answer or image past its size limit
    ├── TaskFailedError                       the task ran and failed
    │   └── TaskNotFoundError                     the service stopped reporting the task
    └── TaskTimeoutError                      a wait ran out of time (also a TimeoutError)

Every error's text is built from public values only: the private key and the
string-to-sign never appear in a message or a repr.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, NamedTuple

__all__ = [
    "APIError",
    "AuthenticationError",
    "BudgetExceededError",
    "ClientClosedError",
    "ImageExpiredError",
    "ImageSaveError",
    "LedgerError",
    "PicpikError",
    "ProtocolError",
    "RateLimitError",
    "ResponseTooLargeError",
    "SubmitOutcomeUnknownError",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "TransportError",
    "ValidationError",
    "classify_api_error",
]


class PicpikError(Exception):
    """Root of every error raised by picpik_async.

    `prompt` is set on errors yielded by `generate_many(return_exceptions=True)`,
    to say which prompt failed.
    """

    prompt: str | None = None


class LedgerError(PicpikError):
    """A batch ledger could not be opened or written (the database's error is in the text)."""


class BudgetExceededError(PicpikError):
    """A submit would pass the client's `CreditBudget`; raised before anything is sent.

    Attributes:
        max_credits: the budget.
        estimate: what the submit was estimated to cost.
        remaining: credits left, minus what submits in flight have reserved.
    """

    def __init__(self, message: str, *, max_credits: int, estimate: int, remaining: int) -> None:
        self.max_credits = max_credits
        self.estimate = estimate
        self.remaining = remaining
        super().__init__(message)


class ValidationError(PicpikError, ValueError):
    """A request value is out of range or of the wrong type; raised before any I/O.

    Example:
        >>> from picpik_async import GenerateImagesSDXL, Model
        >>> GenerateImagesSDXL(main_model=Model("PICPIK General"), width=10)
        Traceback (most recent call last):
        ...
        picpik_async.ValidationError: GenerateImagesSDXL.width must be ...
    """


class ClientClosedError(PicpikError, RuntimeError):
    """The client cannot take this call: it is closed, or a waiting call came outside `async with`.

    Raised before anything is sent; the message names the method called. Also
    raised by a `generate_many()` stream read after it was stopped.
    """


class APIError(PicpikError):
    """The service refused a request: a non-zero RetCode or an HTTP error status.

    Attributes:
        ret_code: the RetCode of the answer, or None when the answer had none.
        message: the service's Message (or a description of the HTTP failure).
        action: the Action that was called.
        request_uuid: the request_uuid sent with the call.
        http_status: the HTTP status of the answer, when known.
        retryable: whether repeating the same request may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        ret_code: int | None = None,
        action: str = "",
        request_uuid: str | None = None,
        http_status: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.message = message
        self.ret_code = ret_code
        self.action = action
        self.request_uuid = request_uuid
        self.http_status = http_status
        self.retryable = retryable
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"{self.action or 'request'} failed"]
        if self.ret_code is not None:
            parts.append(f"RetCode {self.ret_code}")
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        text = ", ".join(parts) + f": {self.message or '(no message)'}"
        if self.request_uuid:
            text += f" (request_uuid={self.request_uuid})"
        return text


class AuthenticationError(APIError):
    """The service rejected the signature or the public key (permanent)."""


class RateLimitError(APIError):
    """The service throttled the caller (HTTP 429 or a throttling RetCode).

    `retry_after` holds the seconds the service asked to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ImageExpiredError(APIError):
    """An image URL no longer answers: PICPIK keeps result images for 24 hours only."""


class TransportError(PicpikError):
    """The request could not be completed on the network (connect, read, timeout).

    The underlying httpx exception is kept as `__cause__`.

    Attributes:
        request_uuid: the request_uuid of the call, when it had one.
        action: the Action that was called ("download" for an image), or "".
    """

    def __init__(self, message: str, *, request_uuid: str | None = None, action: str = "") -> None:
        self.request_uuid = request_uuid
        self.action = action
        super().__init__(message)


class SubmitOutcomeUnknownError(TransportError):
    """A task-creating request was sent but its answer was lost.

    The task may or may not exist (and may or may not be charged). Retrying
    with the same `request_uuid` is the only way to ask again; see the README
    section "Failure modes".
    """

    request_uuid: str

    def __init__(self, message: str, *, request_uuid: str, action: str = "") -> None:
        super().__init__(
            f"{message} (request_uuid={request_uuid})", request_uuid=request_uuid, action=action
        )


class ImageSaveError(PicpikError, OSError):
    """Writing a downloaded image failed midway (disk full, an I/O error).

    Also an OSError, as such failures were before. The OSError is the `__cause__`.
    A path that cannot take the file at all is a `ValidationError`, raised
    before the download starts.
    """


class ProtocolError(PicpikError):
    """An answer did not fit the documented contract (not JSON, wrong types, missing fields).

    `retryable` says whether asking again may help: a garbled answer to a read
    may be a glitch; a redirect or an oversized answer will come back the same.
    `http_status` is the answer's HTTP status when it is the reason (a redirect).
    """

    def __init__(
        self, message: str, *, retryable: bool = True, http_status: int | None = None
    ) -> None:
        self.retryable = retryable
        self.http_status = http_status
        super().__init__(message)


class ResponseTooLargeError(ProtocolError):
    """An answer or an image download was larger than its limit (counted decoded).

    Attributes:
        limit: the limit in bytes.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        self.limit = limit
        super().__init__(message, retryable=False)


class TaskFailedError(PicpikError):
    """The task was created but finished in a failed state."""

    def __init__(
        self, task_uid: str, error_code: int, error_message: str, status: str = ""
    ) -> None:
        self.task_uid = task_uid
        self.error_code = error_code
        self.error_message = error_message
        self.status = status
        detail = error_message or status or "no message"
        super().__init__(f"task {task_uid} failed (ErrorCode {error_code}): {detail}")


class TaskNotFoundError(TaskFailedError):
    """The service stopped reporting a task that was being waited for."""

    def __init__(self, task_uid: str, polls: int) -> None:
        super().__init__(
            task_uid, -1, f"missing from {polls} ListTasksDetails answers in a row", "NotFound"
        )


class TaskTimeoutError(PicpikError, TimeoutError):
    """A wait for a task ran out of time; the task itself goes on on the service."""

    def __init__(self, task_uid: str, timeout: float) -> None:
        self.task_uid = task_uid
        self.timeout = timeout
        super().__init__(f"task {task_uid} not finished after {timeout:g} s")


# --- classification ---------------------------------------------------------
#
# The RetCode table is unpublished (docs/protocol.md, "RetCodes we assume"), so a
# failed answer is matched by known numbers, by HTTP status and by words in its
# Message, against the rules of `_RULES` in order.

_AUTH_WORDS: Final = ("signature", "publickey", "public key", "privatekey", "private key", "auth")
_PARAM_WORDS: Final = ("param", "invalid", "illegal", "missing", "must be", "out of range")
_CREDIT_WORDS: Final = ("credit", "balance", "insufficient", "not enough", "quota exceeded")
_RATE_WORDS: Final = ("rate limit", "too many requests", "throttl", "frequency")
_REJECT_WORDS: Final = ("sensitive", "content policy", "forbidden content", "rejected")

# Codes our emulator uses, mirroring common UCloud-style gateway codes.
AUTH_CODES: Final = frozenset({171, 172, 173})
PARAM_CODES: Final = frozenset({160, 161, 230})
CREDIT_CODES: Final = frozenset({2101})
RATE_CODES: Final = frozenset({2102})

# Client errors that are not worth repeating: every 4xx but 408 (timeout) and
# 409 (conflict); 429 is matched by the rate-limit rule before this one.
_PERMANENT_HTTP: Final = frozenset(range(400, 500)) - {408, 409}


class _Rule(NamedTuple):
    """One row of the classifier: what it matches, and what a match means."""

    error: type[APIError]
    retryable: bool
    http_statuses: frozenset[int] = frozenset()
    ret_codes: frozenset[int] = frozenset()
    words: tuple[str, ...] = ()

    def matches(self, ret_code: int | None, message: str, http_status: int | None) -> bool:
        return (
            http_status in self.http_statuses
            or ret_code in self.ret_codes
            or _has_word(message, self.words)
        )


# First match wins; an answer no rule matches is a retryable `APIError`.
_RULES: Final = (
    _Rule(RateLimitError, True, frozenset({429}), RATE_CODES, _RATE_WORDS),
    _Rule(AuthenticationError, False, frozenset({401, 403}), AUTH_CODES, _AUTH_WORDS),
    _Rule(
        APIError,
        False,
        ret_codes=PARAM_CODES | CREDIT_CODES,
        words=(*_CREDIT_WORDS, *_PARAM_WORDS, *_REJECT_WORDS),
    ),
    _Rule(APIError, False, http_statuses=_PERMANENT_HTTP),
)


def _has_word(message: str, words: Iterable[str]) -> bool:
    low = re.sub(r"\s+", " ", message.lower())
    return any(word in low for word in words)


def classify_api_error(
    ret_code: int | None, message: str, http_status: int | None = None
) -> tuple[type[APIError], bool]:
    """Decide which error class a failed answer maps to and whether it is retryable.

    The decision is the first matching row of the module's rule table.

    Args:
        ret_code: the RetCode, or None when the answer carried none.
        message: the Message of the answer ("" when absent).
        http_status: the HTTP status, when the failure came as one.

    Returns:
        `(error_class, retryable)`.

    Example:
        >>> classify_api_error(171, "Signature verification failed")
        (<class 'picpik_async.AuthenticationError'>, False)
    """
    for rule in _RULES:
        if rule.matches(ret_code, message, http_status):
            return rule.error, rule.retryable
    return APIError, True


def is_parameter_error(error: BaseException) -> bool:
    """Whether an API error says the request's parameters were refused.

    The poller splits a multi-UID ListTasksDetails chunk only on such errors.
    """
    if not isinstance(error, APIError) or error.retryable:
        return False
    if isinstance(error, AuthenticationError | RateLimitError):
        return False
    return error.ret_code in PARAM_CODES or _has_word(error.message, _PARAM_WORDS)
