"""Build signed request bodies and read answers into models or errors.

PURE: no I/O, no anyio, no httpx. The I/O layer hands over the HTTP status,
the Retry-After header and the body bytes; everything the protocol decides
about them is decided here (docs/protocol.md, "Requests" to "Unknown outcomes").
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final, TypeVar

from ._errors import (
    PicpikError,
    ProtocolError,
    RateLimitError,
    ResponseTooLargeError,
    SubmitOutcomeUnknownError,
    TransportError,
    classify_api_error,
)
from ._models import (
    TASK_UID_RULE,
    Envelope,
    ListRunningTasksResponse,
    ListTasksDetailsResponse,
    Request,
    SubmitResponse,
    is_task_uid,
)
from ._retry import parse_retry_after
from ._signing import drop_none, dumps, sign
from ._wire import structure, unstructure

__all__ = [
    "build_body",
    "garbled_answer",
    "lost_answer",
    "new_request_uuid",
    "parse_response",
    "proves_refusal",
    "wire_params",
]

R = TypeVar("R")

# Largest answer body read into memory. The biggest documented answers are
# lists of URLs or models: a few hundred KB at most.
MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024


def new_request_uuid() -> str:
    """A fresh random request_uuid (UUID4, lower case), as the docs' examples use."""
    return str(uuid.uuid4())


def wire_params(request: Request[Any]) -> dict[str, Any]:
    """The action parameters of a request in wire form, `None` fields dropped.

    Example:
        >>> from picpik_async import ListTasksDetails
        >>> wire_params(ListTasksDetails(["u1"]))
        {'TaskUIDList': ['u1']}
    """
    params: dict[str, Any] = drop_none(unstructure(request))
    return params


def build_body(
    request: Request[Any], *, public_key: str, private_key: str, request_uuid: str
) -> bytes:
    """The signed JSON body of a request: Action, PublicKey, request_uuid and Signature added.

    Example:
        >>> from picpik_async import ListModels
        >>> build_body(ListModels(), public_key="abcdefg", private_key="123456",
        ...            request_uuid="u")  # doctest: +ELLIPSIS
        b'{"Action":"ListModels","PublicKey":"abcdefg","request_uuid":"u","Signature":"..."}'
    """
    body: dict[str, Any] = {"Action": request.action, **wire_params(request)}
    body["PublicKey"] = public_key
    body["request_uuid"] = request_uuid
    body["Signature"] = sign(body, private_key)
    return dumps(body)


def parse_response(
    request: Request[R],
    *,
    status_code: int,
    content: bytes,
    request_uuid: str,
    retry_after: str | None = None,
) -> R:
    """Read an answer into the request's response model, or raise the matching error.

    Args:
        request: the request that was sent (it names the action and answer type).
        status_code: the HTTP status of the answer.
        content: the answer's body bytes.
        request_uuid: the request_uuid that was sent, for error context.
        retry_after: the Retry-After header, if any.

    Raises:
        APIError: or a subclass, for a non-zero RetCode or an HTTP error status.
        ProtocolError: for an answer that does not fit the contract.
    """
    action = request.action
    context: dict[str, Any] = {"action": action, "request_uuid": request_uuid}
    if len(content) > MAX_RESPONSE_BYTES:  # the reader stops sooner; this guards direct callers
        raise ResponseTooLargeError(
            f"{action} answer is larger than {MAX_RESPONSE_BYTES} bytes", limit=MAX_RESPONSE_BYTES
        )
    data = _decode(content)
    if status_code == 429:
        message = _message_of(data) or "too many requests"
        raise RateLimitError(
            message,
            retry_after=parse_retry_after(retry_after),
            http_status=429,
            ret_code=_ret_code_of(data),
            **context,
        )
    if 300 <= status_code < 400:
        # Never followed (the signed body would go elsewhere) and never retried:
        # the same request would be redirected again.
        raise ProtocolError(
            f"{action} answered HTTP {status_code}, a redirect, which is never followed: "
            "check base_url (https, host and path)",
            retryable=False,
            http_status=status_code,
        )
    if not 200 <= status_code < 300:
        raise _http_error(request, status_code, data, context)
    if not isinstance(data, dict):
        raise ProtocolError(f"{action} answer is not a JSON object")
    envelope = structure(data, Envelope)
    if envelope.ret_code != 0:
        cls, retryable = classify_api_error(envelope.ret_code, envelope.message)
        raise cls(envelope.message, ret_code=envelope.ret_code, retryable=retryable, **context)
    _check_echo(envelope, request_uuid, action)
    result: R = structure(data, request.response_type)
    if isinstance(result, SubmitResponse) and not result.task_uid.strip():
        raise ProtocolError(f"{action} answer has an empty TaskUID")
    _check_task_uids(result, action)
    return result


def _task_uids_in(answer: object) -> tuple[str, ...]:
    if isinstance(answer, SubmitResponse):
        return (answer.task_uid, *getattr(answer, "task_uid_list", ()))
    if isinstance(answer, ListTasksDetailsResponse):
        return tuple(detail.task_uid for detail in answer.task_detail_list)
    if isinstance(answer, ListRunningTasksResponse):
        return answer.task_uid_list
    return ()


def _check_task_uids(answer: object, action: str) -> None:
    # A TaskUID names files on disk: one that could climb out of a folder
    # (`../x`, `/tmp/x`) is a broken answer, never a path (docs/protocol.md).
    for uid in _task_uids_in(answer):
        if not is_task_uid(uid):
            raise ProtocolError(
                f"{action} answer holds a malformed TaskUID {uid!r:.60} (expected {TASK_UID_RULE})",
                retryable=False,
            )


def _decode(content: bytes) -> object:
    """The JSON value of a body, or None when it is not JSON."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _message_of(data: object) -> str:
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        return str(data["Message"])
    return ""


def _ret_code_of(data: object) -> int | None:
    if isinstance(data, dict):
        code = data.get("RetCode")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def proves_refusal(status_code: int, ret_code: int | None) -> bool:
    """Whether an HTTP error answer to a task-creating request proves no task was made.

    Only a throttle (429), "unavailable" (503) or a refusal RetCode in a JSON
    envelope say so; a gateway's 500, 502 or 504 may come after the service
    created (and charged) the task.

    Example:
        >>> proves_refusal(503, None), proves_refusal(504, None), proves_refusal(500, 5000)
        (True, False, True)
    """
    return status_code in (429, 503) or (ret_code is not None and ret_code != 0)


def _http_error(
    request: Request[Any], status_code: int, data: object, context: dict[str, Any]
) -> PicpikError:
    ret_code = _ret_code_of(data)
    message = _message_of(data) or f"HTTP {status_code}"
    cls, retryable = classify_api_error(ret_code, message, status_code)
    if request.creates_task and not proves_refusal(status_code, ret_code):
        if status_code >= 500:
            return SubmitOutcomeUnknownError(
                f"{request.action} answered HTTP {status_code} after the request was sent; "
                "the task may or may not exist",
                request_uuid=context["request_uuid"],
                action=request.action,
            )
        retryable = False  # a 4xx from a gateway: refused, but not provably retry-safe
    return cls(message, ret_code=ret_code, http_status=status_code, retryable=retryable, **context)


def _check_echo(envelope: Envelope, request_uuid: str, action: str) -> None:
    # An answer that names another request is not ours (section 1.3: the echoed
    # Action is unreliable, request_uuid is the only trustworthy echo).
    echoed = envelope.request_uuid
    if echoed and echoed.lower() != request_uuid.lower():
        raise ProtocolError(
            f"{action} answer echoes request_uuid {echoed!r:.60}, expected {request_uuid!r}"
        )


def lost_answer(
    request: Request[Any], *, request_uuid: str, sent: bool, reason: str
) -> TransportError:
    """The error for a request whose answer never arrived.

    A task-creating request that may have reached the service has an unknown
    outcome: a task (and a charge) may exist. It becomes
    `SubmitOutcomeUnknownError`, which is not retried by default
    (docs/protocol.md, "Unknown outcomes"). Anything else is a plain, retryable
    `TransportError`. Both carry the `request_uuid` and the action.

    Example:
        >>> from picpik_async import ListModels
        >>> type(lost_answer(ListModels(), request_uuid="u", sent=True, reason="reset"))
        <class 'picpik_async.TransportError'>
    """
    if sent and request.creates_task:
        return SubmitOutcomeUnknownError(
            f"{request.action} was sent but its answer was lost ({reason}); "
            "the task may or may not exist",
            request_uuid=request_uuid,
            action=request.action,
        )
    where = "answer lost" if sent else "never sent"
    return TransportError(
        f"{request.action} {where}: {reason} (request_uuid={request_uuid})",
        request_uuid=request_uuid,
        action=request.action,
    )


def garbled_answer(
    request: Request[Any], error: ProtocolError, *, request_uuid: str
) -> PicpikError:
    """The error for an answer that does not fit the contract.

    For a task-creating request the service may have created the task even
    though we cannot read its TaskUID, so the outcome is unknown; a redirect
    is the exception: it never reached the service, and says so at once.
    """
    redirect = error.http_status is not None and 300 <= error.http_status < 400
    if request.creates_task and not redirect:
        unknown = SubmitOutcomeUnknownError(
            f"{request.action} answer could not be read ({error}); the task may or may not exist",
            request_uuid=request_uuid,
            action=request.action,
        )
        unknown.__cause__ = error
        return unknown
    return error
