"""Edge cases of the pure core found in review: deep JSON, empty TaskUID, jitter bounds, splits."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from picpik_async._actions import GenerateImagesSDXL, ListModels
from picpik_async._errors import APIError, ProtocolError, ValidationError
from picpik_async._models import (
    Model,
)
from picpik_async._polling import PollSchedule, PollSettings
from picpik_async._protocol import parse_response
from picpik_async._retry import RetryPolicy

REQUEST_UUID = "ebe3bd1a-2fb6-4a85-a1bd-a5d556bf0f50"
SUBMIT = GenerateImagesSDXL(main_model=Model("PICPIK General"))
DEEP = b"[" * 100_000 + b"]" * 100_000


def test_deeply_nested_answer_is_a_protocol_error() -> None:
    """A pathologically nested 200 answer is a ProtocolError, not a RecursionError."""
    with pytest.raises(ProtocolError, match="not a JSON object"):
        parse_response(ListModels(), status_code=200, content=DEEP, request_uuid=REQUEST_UUID)


def test_deeply_nested_error_page_is_an_api_error() -> None:
    """A pathologically nested 502 body is still a retryable APIError."""
    with pytest.raises(APIError) as caught:
        parse_response(ListModels(), status_code=502, content=DEEP, request_uuid=REQUEST_UUID)
    assert caught.value.retryable is True


def test_success_with_empty_task_uid() -> None:
    """A RetCode 0 submit answer with an empty TaskUID is a ProtocolError."""
    data = {"RetCode": 0, "request_uuid": REQUEST_UUID, "TaskUID": ""}
    with pytest.raises(ProtocolError, match="TaskUID"):
        parse_response(
            SUBMIT, status_code=200, content=json.dumps(data).encode(), request_uuid=REQUEST_UUID
        )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(-0.1, id="negative"),
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
        pytest.param(2.5, id="above-one"),
        pytest.param("0.1", id="str"),
        pytest.param(True, id="bool"),
    ],
)
def test_bad_poll_jitter(value: object) -> None:
    """poll_jitter outside 0..1 (or not a number) raises ValidationError, like other settings."""
    kwargs: dict[str, Any] = {"poll_jitter": value}
    with pytest.raises(ValidationError, match=r"PollSettings\.poll_jitter"):
        PollSettings(**kwargs)


@pytest.mark.parametrize(
    "value",
    [pytest.param(1.5, id="above-one"), pytest.param(3.0, id="negative-waits")],
)
def test_retry_jitter_above_one(value: float) -> None:
    """RetryPolicy.jitter is a fraction: above 1 is refused (above 2 gives negative waits)."""
    with pytest.raises(ValidationError, match=r"RetryPolicy\.jitter"):
        RetryPolicy(jitter=value)


def test_retry_backoff_never_negative() -> None:
    """No accepted policy produces a negative wait."""
    try:
        policy = RetryPolicy(jitter=3.0)
    except ValidationError:
        return
    assert min(policy.backoff(1, None, random.Random(seed)) for seed in range(20)) >= 0


@pytest.mark.parametrize("name", ["max_total", "backoff_initial", "jitter"])
def test_retry_policy_refuses_bools(name: str) -> None:
    """A bool is not a duration (PollSettings already refuses bools)."""
    kwargs: dict[str, Any] = {name: True}
    with pytest.raises(ValidationError):
        RetryPolicy(**kwargs)


def test_split_never_returns_an_empty_chunk() -> None:
    """Splitting a one-UID chunk yields no empty chunk (an empty ListTasksDetails is invalid)."""
    s = PollSchedule(PollSettings())
    assert all(s.split(["u1"]))
