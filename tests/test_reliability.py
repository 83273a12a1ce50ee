"""Reliability and security: ambiguous submits, a soak with every fault, shutdown, secrets."""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest
from conftest import status_requests

import picpik_async as picpik
from picpik_async._protocol import MAX_RESPONSE_BYTES
from picpik_async.testing import Emulator, Faults, Malformed, Trigger, serve_emulator

pytestmark = pytest.mark.anyio

SUBMIT = "GenerateImagesSDXL"
POLL = "ListTasksDetails"
RETRY = picpik.RetryPolicy(max_attempts=12, backoff_initial=0.005, backoff_max=0.05)
POLL_FAST = picpik.PollSettings(
    poll_initial=0.05, poll_max=0.3, poll_grid=0.05, running_interval=0.1, running_grace=0.05
)


def client_for(
    emulator: Emulator, *, base_url: str | None = None, **kwargs: Any
) -> picpik.AsyncClient:
    """A client on the emulator: in-process unless a served base_url is given."""
    options: dict[str, Any] = {
        "public_key": emulator.public_key,
        "private_key": emulator.private_key,
        "retry": RETRY,
        "poll": POLL_FAST,
    }
    if base_url is None:
        options.update(base_url=emulator.url, transport=emulator.transport())
    else:
        options["base_url"] = base_url
    options.update(kwargs)
    return picpik.AsyncClient(**options)


async def test_dropped_submits_become_unknown_outcomes_never_duplicates() -> None:
    """8% dropped submit answers: one SubmitOutcomeUnknownError each, the rest succeed."""
    faults = Faults(drop=Trigger(rate=0.08, actions={SUBMIT}))
    emulator = Emulator(latency=0.1, seed=21, faults=faults)
    async with client_for(emulator) as client:
        prompts = [f"prompt {i}" for i in range(150)]
        items = [i async for i in client.generate_many(prompts, return_exceptions=True)]
    unknown = [i for i in items if isinstance(i, picpik.SubmitOutcomeUnknownError)]
    results = [i for i in items if isinstance(i, picpik.GenerationResult)]
    counters = emulator.counters
    assert len(items) == 150
    assert counters.faults["drop"] > 0
    assert len(unknown) == counters.faults["drop"]
    assert len(results) == 150 - len(unknown)
    assert counters.tasks_created == 150  # the dropped submits did create their tasks
    assert counters.duplicate_tasks() == {}
    assert counters.requests[SUBMIT] == 150  # nothing was resent
    for error in unknown:
        assert counters.tasks_per_request_uuid[error.request_uuid] == 1
        assert error.prompt in prompts


@pytest.mark.slow
async def test_soak_every_fault_at_once_over_a_real_socket() -> None:
    """2,000 prompts, 200 at a time, every fault on: all accounted for, nothing duplicated."""
    faults = Faults(
        busy=0.05,
        rate_limit=0.03,
        retry_after=0.02,
        server_error=0.03,
        slow=0.02,
        slow_seconds=0.05,
        malformed=Trigger(rate=0.05, actions={POLL}),
        task_failure=0.03,
    )
    fds_before = len(os.listdir("/proc/self/fd"))
    tasks_before = len(anyio.get_running_tasks())
    async with serve_emulator(latency=0.2, seed=5, faults=faults) as server:
        emulator = server.emulator
        outcomes: Counter[str] = Counter()
        with anyio.fail_after(240):  # a hang fails the test instead of the CI run
            async with client_for(emulator, base_url=server.url) as client:
                prompts = (f"soak {i}" for i in range(2000))
                async for item in client.generate_many(
                    prompts, max_concurrency=200, return_exceptions=True, width=64, height=64
                ):
                    outcomes[type(item).__name__] += 1
        counters = emulator.counters
    assert sum(outcomes.values()) == 2000
    assert set(outcomes) <= {"GenerationResult", "TaskFailedError"}
    assert outcomes["TaskFailedError"] == counters.faults["task_failure"]
    assert counters.tasks_created == 2000
    assert counters.duplicate_tasks() == {}
    for kind in ("busy", "rate_limit", "server_error", "slow", "malformed"):
        assert counters.faults[kind] > 0, kind
    assert len(os.listdir("/proc/self/fd")) <= fds_before
    assert len(anyio.get_running_tasks()) == tasks_before


@pytest.mark.parametrize(
    "kind",
    [pytest.param(k, id=k.value) for k in Malformed if k not in (Malformed.UNASKED_TASK,
                                                                  Malformed.DUPLICATE_TASK)],
)  # fmt: skip
async def test_malformed_submit_answer_is_an_unknown_outcome(kind: Malformed) -> None:
    """A garbled answer to a submit: SubmitOutcomeUnknownError, not KeyError, not a resend."""
    faults = Faults(malformed=Trigger(schedule={1}, actions={SUBMIT}), malformed_kinds=(kind,))
    emulator = Emulator(latency=0.05, faults=faults)
    async with client_for(emulator) as client:
        with pytest.raises(picpik.SubmitOutcomeUnknownError) as caught:
            await client.generate("garbled")
    assert emulator.counters.requests[SUBMIT] == 1
    assert emulator.counters.tasks_per_request_uuid[caught.value.request_uuid] == 1


@pytest.mark.parametrize("kind", [pytest.param(k, id=k.value) for k in Malformed])
async def test_malformed_poll_answers_are_retried(kind: Malformed) -> None:
    """Each kind of garbled poll answer is a ProtocolError the poller retries past."""
    faults = Faults(malformed=Trigger(schedule={1, 2}, actions={POLL}), malformed_kinds=(kind,))
    emulator = Emulator(latency=0.05, faults=faults)
    async with client_for(emulator) as client:
        result = await client.generate("eventually fine")
    assert result.images
    assert emulator.counters.faults["malformed"] == 2


class _Chunks(httpx.AsyncByteStream):
    """A body streamed in chunks, with no Content-Length."""

    def __init__(self, size: int) -> None:
        self._size = size

    async def __aiter__(self) -> Any:
        sent = 0
        while sent < self._size:
            yield b"a" * 65536
            sent += 65536


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_huge_answers_are_refused(declared: bool) -> None:
    """A body over the size cap is a ResponseTooLargeError, not retried (it would come again)."""
    size = MAX_RESPONSE_BYTES + 10
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if declared:
            return httpx.Response(200, content=b"a" * size)
        return httpx.Response(200, stream=_Chunks(size))

    policy = picpik.RetryPolicy(max_attempts=2, backoff_initial=0.001)
    async with picpik.AsyncClient(
        public_key="p", private_key="s", base_url="http://127.0.0.1:1",
        transport=httpx.MockTransport(handler), retry=policy,
    ) as client:  # fmt: skip
        with pytest.raises(picpik.ResponseTooLargeError, match=r"more than|larger than"):
            await client.get_credit_balance()
    assert len(calls) == 1


async def test_a_silent_server_is_a_timeout_not_a_hang() -> None:
    """Answers slower than the client timeout: TransportError for reads, unknown for submits."""
    emulator = Emulator(latency=0.05, faults=Faults(slow=1.0, slow_seconds=0.6))  # 3x the timeout
    policy = picpik.RetryPolicy(max_attempts=2, backoff_initial=0.001)
    async with (
        serve_emulator(emulator) as server,
        client_for(emulator, base_url=server.url, timeout=0.2, retry=policy) as client,
    ):
        with anyio.fail_after(5), pytest.raises(picpik.TransportError):
            await client.get_credit_balance()
        with anyio.fail_after(5), pytest.raises(picpik.SubmitOutcomeUnknownError):
            await client.generate("slow")


async def test_cancelling_generate_during_submit_leaves_nothing_behind() -> None:
    """A generate() cancelled mid-submit leaves no waiter and no task in the client."""
    emulator = Emulator(latency=0.05, faults=Faults(slow=Trigger(schedule={1}, actions={SUBMIT}),
                                                    slow_seconds=2))  # fmt: skip
    async with client_for(emulator) as client:
        tasks_before = len(anyio.get_running_tasks())
        with anyio.move_on_after(0.2) as scope:
            await client.generate("cancelled")
        assert scope.cancelled_caught
        assert client._waiter is not None
        assert client._waiter.pending == 0
        assert len(anyio.get_running_tasks()) == tasks_before
        result = await client.generate("the next one works")
        assert result.images


async def test_task_group_cancellation_stops_polling() -> None:
    """Cancelling a task group of waiters stops their polling."""
    emulator = Emulator(latency=60)
    async with client_for(emulator) as client:
        handles = [await client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
                   for _ in range(3)]  # fmt: skip
        async with anyio.create_task_group() as group:
            for handle in handles:
                group.start_soon(client.wait, handle)
            await anyio.sleep(0.15)  # the first polls are due at 0.05 s
            group.cancel_scope.cancel()
        assert client._waiter is not None
        assert client._waiter.pending == 0
        await anyio.sleep(0.05)  # a poll already on its way may still land
        polls = status_requests(emulator)
        assert polls > 0
        await anyio.sleep(0.35)  # longer than poll_max and a tick: a poller still going would poll
        assert status_requests(emulator) == polls


async def test_private_key_never_appears_in_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run with retries and errors logs (DEBUG included) nothing containing the key."""
    secret = "s3cr3t-private-key-do-not-leak"  # noqa: S105 - the key we hunt for
    faults = Faults(busy=0.2, server_error=0.1, rate_limit=0.1, retry_after=0.01,
                    drop=Trigger(rate=0.1, actions={SUBMIT}), task_failure=0.2)  # fmt: skip
    emulator = Emulator(latency=0.05, seed=8, faults=faults, private_key=secret)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with client_for(emulator) as client:
        texts.append(repr(client))
        prompts = [f"p{i}" for i in range(30)]
        async for item in client.generate_many(prompts, return_exceptions=True):
            texts.append(repr(item))
            texts.append(str(item))
    async with client_for(emulator, private_key="wrong-" + secret) as bad:
        with pytest.raises(picpik.AuthenticationError) as caught:
            await bad.get_credit_balance()
        texts += [str(caught.value), repr(caught.value), repr(bad)]
    assert caplog.records
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert secret not in caplog.text
    assert all(secret not in text for text in texts)


async def test_tls_verification_is_on_by_default() -> None:
    """The client's own httpx client verifies certificates and host names."""
    client = picpik.AsyncClient(public_key="p", private_key="s")
    try:
        pool = client._http._transport._pool  # type: ignore[attr-defined]
        context: ssl.SSLContext = pool._ssl_context
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    finally:
        await client.aclose()


def test_hostile_json_never_escapes_as_key_or_type_error() -> None:
    """Answers with wrong shapes become ProtocolError through the whole parse path."""
    from picpik_async._protocol import parse_response

    request = picpik.ListTasksDetails(["u1"])
    bodies: list[object] = [
        {"RetCode": 0, "TaskDetailList": [{"TaskUID": "u1"}]},
        {"RetCode": 0, "TaskDetailList": [{"TaskUID": ["u1"], "Status": "Running"}]},
        {"RetCode": "0", "TaskDetailList": []},
        {"RetCode": 0, "TaskDetailList": {"TaskUID": "u1"}},
        {"RetCode": None},
        ["RetCode", 0],
        "RetCode",
        12,
    ]
    for body in bodies:
        with pytest.raises(picpik.ProtocolError):
            parse_response(request, status_code=200, content=json.dumps(body).encode(),
                           request_uuid="r")  # fmt: skip
