"""Tests for picpik_async._errors: the exception tree, messages, and the failure classifier."""

from __future__ import annotations

import doctest
import re

import pytest
from doctests import run_doctests
from hypothesis import assume, given
from hypothesis import strategies as st

from picpik_async import _errors as errors_module
from picpik_async import _images as images_module
from picpik_async._actions import ListModels
from picpik_async._errors import (
    APIError,
    AuthenticationError,
    ClientClosedError,
    ImageExpiredError,
    PicpikError,
    ProtocolError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskNotFoundError,
    TaskTimeoutError,
    TransportError,
    ValidationError,
    classify_api_error,
    is_parameter_error,
)
from picpik_async._protocol import lost_answer

# A value that is never handed to any error below: it must never show up in one.
SECRET = "PRIVATE-KEY-2f9c81d7e0"  # noqa: S105 - a dummy, never a real key

AUTHENTICATION = [
    pytest.param(171, "Signature verification failed", None, id="code-171"),
    pytest.param(172, "", None, id="code-172-no-message"),
    pytest.param(173, "whatever", None, id="code-173"),
    pytest.param(None, "Invalid Signature", None, id="signature-word"),
    pytest.param(5000, "SIGNATURE mismatch", None, id="signature-any-case"),
    pytest.param(None, "PublicKey not found", None, id="publickey-word"),
    pytest.param(None, "public key is disabled", None, id="public-key-words"),
    pytest.param(None, "bad PrivateKey", None, id="privatekey-word"),
    pytest.param(None, "private  key\nexpired", None, id="private-key-words-spaced"),
    pytest.param(None, "Unauthorized", None, id="auth-word"),
    pytest.param(None, "HTTP 401", 401, id="http-401"),
    pytest.param(None, "HTTP 403", 403, id="http-403"),
]

PERMANENT = [
    pytest.param(160, "", None, id="param-code-160"),
    pytest.param(161, "", None, id="param-code-161"),
    pytest.param(230, "", None, id="param-code-230"),
    pytest.param(5000, "Params [Width] not available", None, id="param-word"),
    pytest.param(5000, "Invalid value for BatchSize", None, id="invalid-word"),
    pytest.param(5000, "illegal argument", None, id="illegal-word"),
    pytest.param(5000, "Missing required field MainModel", None, id="missing-word"),
    pytest.param(5000, "Seed must be positive", None, id="must-be-words"),
    pytest.param(5000, "Width out of  range", None, id="out-of-range-words"),
    pytest.param(2101, "", None, id="credit-code"),
    pytest.param(5000, "Insufficient credits", None, id="insufficient-credits"),
    pytest.param(5000, "credit balance not enough", None, id="credit-words"),
    pytest.param(5000, "Not enough points", None, id="not-enough"),
    pytest.param(5000, "quota exceeded", None, id="quota-exceeded"),
    pytest.param(5000, "prompt contains sensitive words", None, id="sensitive-content"),
    pytest.param(5000, "rejected by content policy", None, id="content-policy"),
    pytest.param(None, "HTTP 400", 400, id="http-400"),
    pytest.param(None, "HTTP 404", 404, id="http-404"),
    pytest.param(None, "HTTP 405", 405, id="http-405"),
    pytest.param(None, "HTTP 413", 413, id="http-413"),
    pytest.param(None, "HTTP 422", 422, id="http-422"),
]

RATE_LIMITED = [
    pytest.param(None, "HTTP 429", 429, id="http-429"),
    pytest.param(None, "Signature verification failed", 429, id="http-429-wins"),
    pytest.param(2102, "", None, id="rate-code"),
    pytest.param(5000, "Too many requests", None, id="too-many-requests"),
    pytest.param(5000, "too  many\nrequests", None, id="too-many-requests-spaced"),
    pytest.param(5000, "Rate limit exceeded", None, id="rate-limit"),
    pytest.param(5000, "request throttled", None, id="throttled"),
    pytest.param(5000, "Request frequency too high", None, id="frequency"),
]

TRANSIENT = [
    pytest.param(5000, "Server busy, please retry", None, id="busy"),
    pytest.param(5001, "Timeout", None, id="timeout"),
    pytest.param(9999, "", None, id="unknown-code"),
    pytest.param(None, "", None, id="nothing-known"),
    pytest.param(None, "HTTP 500", 500, id="http-500"),
    pytest.param(None, "HTTP 502", 502, id="http-502"),
    pytest.param(None, "HTTP 503", 503, id="http-503"),
    pytest.param(None, "HTTP 504", 504, id="http-504"),
    pytest.param(None, "HTTP 408", 408, id="http-408-request-timeout"),
    pytest.param(None, "HTTP 409", 409, id="http-409-conflict"),
]


class TestClassifyApiError:
    """`classify_api_error` maps (RetCode, Message, HTTP status) to a class and retryability."""

    @pytest.mark.parametrize(("ret_code", "message", "http_status"), AUTHENTICATION)
    def test_authentication(
        self, ret_code: int | None, message: str, http_status: int | None
    ) -> None:
        """Signature and key problems are AuthenticationError, never retried."""
        assert classify_api_error(ret_code, message, http_status) == (AuthenticationError, False)

    @pytest.mark.parametrize(("ret_code", "message", "http_status"), PERMANENT)
    def test_permanent(self, ret_code: int | None, message: str, http_status: int | None) -> None:
        """Parameter, credit and content refusals and other 4xx are permanent APIErrors."""
        assert classify_api_error(ret_code, message, http_status) == (APIError, False)

    @pytest.mark.parametrize(("ret_code", "message", "http_status"), RATE_LIMITED)
    def test_rate_limited(
        self, ret_code: int | None, message: str, http_status: int | None
    ) -> None:
        """HTTP 429 and throttling codes or words are a retryable RateLimitError."""
        assert classify_api_error(ret_code, message, http_status) == (RateLimitError, True)

    @pytest.mark.parametrize(("ret_code", "message", "http_status"), TRANSIENT)
    def test_transient(self, ret_code: int | None, message: str, http_status: int | None) -> None:
        """Busy, timeout, unknown codes and 5xx are retryable APIErrors."""
        assert classify_api_error(ret_code, message, http_status) == (APIError, True)

    def test_http_status_is_optional(self) -> None:
        """Without an HTTP status the RetCode and Message alone decide."""
        assert classify_api_error(171, "") == (AuthenticationError, False)
        assert classify_api_error(9999, "") == (APIError, True)

    @given(
        ret_code=st.none() | st.integers(),
        message=st.text(),
        http_status=st.none() | st.integers(100, 599),
    )
    def test_always_an_api_error(
        self, ret_code: int | None, message: str, http_status: int | None
    ) -> None:
        """Whatever the input, the answer is an APIError class; only RateLimitError is forced."""
        cls, retryable = classify_api_error(ret_code, message, http_status)
        assert issubclass(cls, APIError)
        if cls is RateLimitError:
            assert retryable
        if cls is AuthenticationError:
            assert not retryable


def _api_error(ret_code: int | None, message: str, http_status: int | None = None) -> APIError:
    """Build the error the classifier would build for an answer."""
    cls, retryable = classify_api_error(ret_code, message, http_status)
    return cls(message, ret_code=ret_code, http_status=http_status, retryable=retryable)


class TestIsParameterError:
    """Only a permanent refusal of the parameters counts (the poller splits chunks on it)."""

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(_api_error(160, ""), id="param-code"),
            pytest.param(_api_error(230, "whatever"), id="another-param-code"),
            pytest.param(_api_error(5000, "TaskUIDList too long: invalid"), id="invalid-word"),
            pytest.param(_api_error(None, "Params error", 400), id="http-400-param-word"),
            pytest.param(APIError("Missing TaskUIDList"), id="missing-word-no-code"),
        ],
    )
    def test_parameter_errors(self, error: APIError) -> None:
        """Parameter codes and words make a parameter error."""
        assert is_parameter_error(error)

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(_api_error(171, "Signature verification failed"), id="authentication"),
            pytest.param(
                AuthenticationError("invalid public key", ret_code=160), id="auth-param-code"
            ),
            pytest.param(_api_error(2102, "invalid rate"), id="rate-limit"),
            pytest.param(
                RateLimitError("invalid", ret_code=160, retryable=False), id="permanent-rate-limit"
            ),
            pytest.param(_api_error(2101, "Insufficient credits"), id="credits"),
            pytest.param(_api_error(None, "HTTP 404", 404), id="http-404"),
            pytest.param(APIError("invalid", ret_code=160, retryable=True), id="retryable"),
            pytest.param(_api_error(9999, "server busy"), id="busy"),
            pytest.param(ProtocolError("invalid answer"), id="protocol-error"),
            pytest.param(ValueError("invalid"), id="value-error"),
            pytest.param(TransportError("missing"), id="transport-error"),
        ],
    )
    def test_other_errors(self, error: BaseException) -> None:
        """Everything else, including non-API errors, is not a parameter error."""
        assert not is_parameter_error(error)


class TestHierarchy:
    """The tree drawn in the module docstring."""

    @pytest.mark.parametrize(
        ("cls", "bases"),
        [
            pytest.param(ValidationError, (PicpikError, ValueError), id="validation"),
            pytest.param(ClientClosedError, (PicpikError, RuntimeError), id="client-closed"),
            pytest.param(APIError, (PicpikError,), id="api"),
            pytest.param(AuthenticationError, (APIError, PicpikError), id="authentication"),
            pytest.param(RateLimitError, (APIError, PicpikError), id="rate-limit"),
            pytest.param(ImageExpiredError, (APIError, PicpikError), id="image-expired"),
            pytest.param(TransportError, (PicpikError,), id="transport"),
            pytest.param(
                SubmitOutcomeUnknownError, (TransportError, PicpikError), id="submit-unknown"
            ),
            pytest.param(ProtocolError, (PicpikError,), id="protocol"),
            pytest.param(TaskFailedError, (PicpikError,), id="task-failed"),
            pytest.param(TaskNotFoundError, (TaskFailedError, PicpikError), id="task-not-found"),
            pytest.param(TaskTimeoutError, (PicpikError, TimeoutError), id="task-timeout"),
        ],
    )
    def test_bases(self, cls: type[BaseException], bases: tuple[type[BaseException], ...]) -> None:
        """Each error has the documented parents and is a PicpikError, an Exception."""
        for base in (*bases, PicpikError, Exception):
            assert issubclass(cls, base)

    def test_every_error_is_listed(self) -> None:
        """Every exception class of the module is a PicpikError and is in its __all__."""
        classes = {
            name
            for name, value in vars(errors_module).items()
            if isinstance(value, type) and issubclass(value, BaseException)
        }
        assert classes <= set(errors_module.__all__)
        for name in classes:
            assert issubclass(getattr(errors_module, name), PicpikError)

    def test_every_error_is_in_the_drawn_tree(self) -> None:
        """Each error of the module is drawn in the module docstring's tree."""
        drawn = set(re.findall(r"[├└]── (\w+)", errors_module.__doc__ or ""))
        classes = {
            name
            for name, value in vars(errors_module).items()
            if isinstance(value, type) and issubclass(value, PicpikError)
        }
        assert classes - {"PicpikError"} == drawn

    def test_image_expired_error_is_importable_from_images(self) -> None:
        """Internal callers that import it from `_images` get the same class."""
        assert images_module.ImageExpiredError is ImageExpiredError

    def test_api_errors_are_not_transport_errors(self) -> None:
        """A refused request and a lost one are different branches of the tree."""
        assert not issubclass(APIError, TransportError)
        assert not issubclass(TransportError, APIError)
        assert not issubclass(ProtocolError, APIError | TransportError)


class TestTransportError:
    """What a TransportError carries."""

    def test_defaults(self) -> None:
        """Built with a message only, it has no request_uuid and no action."""
        error = TransportError("reset")
        assert (error.request_uuid, error.action, str(error)) == (None, "", "reset")

    def test_carries_request_uuid_and_action(self) -> None:
        """Both are keyword arguments, kept as attributes; the message is unchanged."""
        error = TransportError("reset", request_uuid="u-1", action="ListModels")
        assert (error.request_uuid, error.action, str(error)) == ("u-1", "ListModels", "reset")

    @pytest.mark.parametrize("sent", [True, False])
    def test_a_lost_answer_names_its_call(self, sent: bool) -> None:
        """`lost_answer` fills both, for a read sent or not."""
        error = lost_answer(ListModels(), request_uuid="u-3", sent=sent, reason="reset")
        assert type(error) is TransportError
        assert (error.request_uuid, error.action) == ("u-3", "ListModels")

    def test_submit_outcome_unknown_sets_them_too(self) -> None:
        """The subclass keeps its own message form and fills the same attributes."""
        error = SubmitOutcomeUnknownError("lost", request_uuid="u-2", action="GenerateImagesSDXL")
        assert (error.request_uuid, error.action) == ("u-2", "GenerateImagesSDXL")
        assert str(error) == "lost (request_uuid=u-2)"


class TestClassifierTable:
    """`classify_api_error` is the first matching row of `_RULES`."""

    def test_rules_decide_every_case(self) -> None:
        """Walking the table by hand gives what the classifier says."""
        cases = [(171, "", None), (None, "", 429), (160, "", None), (None, "", 404), (1, "", 500)]
        for ret_code, message, status in cases:
            rule = next(
                (r for r in errors_module._RULES if r.matches(ret_code, message, status)), None
            )
            expected = (rule.error, rule.retryable) if rule else (APIError, True)
            assert classify_api_error(ret_code, message, status) == expected

    @pytest.mark.parametrize("status", [408, 409, 429, 500, 502, None])
    def test_retried_http_statuses_are_not_permanent(self, status: int | None) -> None:
        """408, 409, 429 and 5xx are not in the permanent-4xx row."""
        assert classify_api_error(None, "", status)[1] is True


class TestApiErrorText:
    """What an APIError carries and how it reads."""

    @pytest.mark.parametrize(
        ("error", "text"),
        [
            pytest.param(
                APIError(
                    "bad Width",
                    ret_code=160,
                    action="GenerateImagesSDXL",
                    request_uuid="u-1",
                    http_status=400,
                ),
                "GenerateImagesSDXL failed, RetCode 160, HTTP 400: bad Width (request_uuid=u-1)",
                id="everything",
            ),
            pytest.param(
                APIError("busy", ret_code=0, action="ListModels"),
                "ListModels failed, RetCode 0: busy",
                id="ret-code-zero-is-shown",
            ),
            pytest.param(
                APIError("", http_status=502), "request failed, HTTP 502: (no message)", id="bare"
            ),
            pytest.param(
                APIError("x", request_uuid=""), "request failed: x", id="empty-request-uuid"
            ),
        ],
    )
    def test_text(self, error: APIError, text: str) -> None:
        """The text names the action, RetCode, HTTP status, message and request_uuid it has."""
        assert str(error) == text

    def test_defaults(self) -> None:
        """An APIError is permanent and anonymous unless told otherwise."""
        error = APIError("m")
        assert (error.ret_code, error.action, error.request_uuid) == (None, "", None)
        assert error.http_status is None
        assert error.retryable is False

    def test_rate_limit_defaults_to_retryable(self) -> None:
        """A RateLimitError is retryable unless said otherwise, and keeps retry_after."""
        assert RateLimitError("slow down").retryable is True
        assert RateLimitError("slow down").retry_after is None
        error = RateLimitError("slow down", retry_after=2.5, retryable=False, http_status=429)
        assert (error.retry_after, error.retryable, error.http_status) == (2.5, False, 429)

    @given(
        cls=st.sampled_from([APIError, AuthenticationError, RateLimitError]),
        message=st.text(),
        ret_code=st.none() | st.integers(),
        action=st.text(),
        request_uuid=st.none() | st.text(),
        http_status=st.none() | st.integers(100, 599),
        retryable=st.booleans(),
    )
    def test_carries_values_and_no_secret(
        self,
        cls: type[APIError],
        message: str,
        ret_code: int | None,
        action: str,
        request_uuid: str | None,
        http_status: int | None,
        retryable: bool,
    ) -> None:
        """Any APIError keeps the values it was given and shows nothing it was not given."""
        assume(SECRET not in message + action + (request_uuid or ""))
        error = cls(
            message,
            ret_code=ret_code,
            action=action,
            request_uuid=request_uuid,
            http_status=http_status,
            retryable=retryable,
        )
        assert (error.message, error.ret_code, error.action) == (message, ret_code, action)
        assert (error.request_uuid, error.http_status) == (request_uuid, http_status)
        assert error.retryable is retryable
        assert message in str(error)
        if request_uuid:
            assert request_uuid in str(error)
        assert SECRET not in str(error)
        assert SECRET not in repr(error)


class TestOtherErrors:
    """The errors outside the APIError branch."""

    @given(message=st.text(), request_uuid=st.text(), action=st.text())
    def test_submit_outcome_unknown(self, message: str, request_uuid: str, action: str) -> None:
        """SubmitOutcomeUnknownError carries and shows its request_uuid, and nothing secret."""
        assume(SECRET not in message + request_uuid + action)
        error = SubmitOutcomeUnknownError(message, request_uuid=request_uuid, action=action)
        assert (error.request_uuid, error.action) == (request_uuid, action)
        assert f"(request_uuid={request_uuid})" in str(error)
        assert SECRET not in str(error)
        assert SECRET not in repr(error)

    def test_submit_outcome_unknown_action_is_optional(self) -> None:
        """The action defaults to empty."""
        assert SubmitOutcomeUnknownError("lost", request_uuid="u").action == ""

    @pytest.mark.parametrize(
        ("error_message", "status", "detail"),
        [
            pytest.param("NSFW content", "Failed", "NSFW content", id="message-first"),
            pytest.param("", "Failed", "Failed", id="status-when-no-message"),
            pytest.param("", "", "no message", id="neither"),
        ],
    )
    def test_task_failed(self, error_message: str, status: str, detail: str) -> None:
        """TaskFailedError carries the task's UID, code, message and status."""
        error = TaskFailedError("uid1", 7, error_message, status)
        assert (error.task_uid, error.error_code) == ("uid1", 7)
        assert (error.error_message, error.status) == (error_message, status)
        assert str(error) == f"task uid1 failed (ErrorCode 7): {detail}"

    def test_task_failed_status_is_optional(self) -> None:
        """The status defaults to empty."""
        assert TaskFailedError("uid1", 1, "boom").status == ""

    def test_task_not_found(self) -> None:
        """TaskNotFoundError is a TaskFailedError with code -1 that says how many polls missed."""
        error = TaskNotFoundError("uid1", 5)
        assert (error.task_uid, error.error_code, error.status) == ("uid1", -1, "NotFound")
        assert "5 ListTasksDetails answers" in error.error_message
        assert "uid1" in str(error)

    @pytest.mark.parametrize(
        ("timeout", "shown"),
        [
            pytest.param(300, "300 s", id="int"),
            pytest.param(2.5, "2.5 s", id="float"),
        ],
    )
    def test_task_timeout(self, timeout: float, shown: str) -> None:
        """TaskTimeoutError is a TimeoutError that names the task and the time waited."""
        error = TaskTimeoutError("uid1", timeout)
        assert isinstance(error, TimeoutError)
        assert (error.task_uid, error.timeout) == ("uid1", timeout)
        assert str(error) == f"task uid1 not finished after {shown}"

    @given(
        task_uid=st.text(),
        code=st.integers(),
        text=st.text(),
        status=st.text(),
        timeout=st.floats(0, 1e6),
        polls=st.integers(0, 1000),
    )
    def test_no_secret_in_task_errors(
        self, task_uid: str, code: int, text: str, status: str, timeout: float, polls: int
    ) -> None:
        """Task errors show only the values they were given."""
        assume(SECRET not in task_uid + text + status)
        for error in (
            TaskFailedError(task_uid, code, text, status),
            TaskNotFoundError(task_uid, polls),
            TaskTimeoutError(task_uid, timeout),
        ):
            assert SECRET not in str(error)
            assert SECRET not in repr(error)


def test_docstring_examples() -> None:
    """The examples in the module's docstrings run and give the answers shown."""
    result = run_doctests(errors_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3  # the classes' examples too (see tests/doctests.py)
    assert result.failed == 0
