"""AsyncClient against the in-process emulator, on asyncio and trio."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from conftest import FAST_POLL, make_client, status_requests

import picpik_async as picpik
from picpik_async.testing import (
    Emulator,
    Faults,
    ManualClock,
    StatusWords,
    Trigger,
    serve_emulator,
)

pytestmark = pytest.mark.anyio


async def test_generate_returns_images_seed_and_credits(
    client: picpik.AsyncClient, emulator: Emulator
) -> None:
    """generate() submits, waits and returns the reported seed, credits and image URLs."""
    result = await client.generate("a red apple", width=512, height=768, seed=42, batch_size=2)
    assert result.seed == 42
    assert result.credits is not None
    assert result.credits > 0
    assert len(result.images) == 2
    assert result.prompt == "a red apple"
    assert result.request_uuid is not None
    assert emulator.counters.tasks_created == 1
    data = await result.images[1].read()
    assert data.startswith(b"\x89PNG")


async def test_random_seed_is_reported(client: picpik.AsyncClient) -> None:
    """Seed -1 comes back as the seed the service picked."""
    result = await client.generate("a pear")
    assert result.seed is not None
    assert result.seed >= 0


async def test_read_calls(client: picpik.AsyncClient) -> None:
    """The typed read calls answer with models."""
    models = await client.list_models()
    assert "PICPIK General" in {m.model_code for m in models.main_models.values()}
    before = await client.get_credit_balance()
    handle = await client.submit(
        picpik.GenerateImagesSDXL(main_model=picpik.Model("PICPIK General"))
    )
    assert handle.task_uid in await client.list_running_tasks()
    details = await client.list_tasks_details([handle.task_uid])
    assert [d.task_uid for d in details] == [handle.task_uid]
    after = await client.get_credit_balance()
    assert after.used_credits > before.used_credits
    assert after.remaining == after.total_credits - after.used_credits


async def test_many_concurrent_generates_with_faults_cost_few_polls() -> None:
    """300 concurrent generate() calls through every transient fault all succeed, batched."""
    polls_only = {"ListTasksDetails"}
    faults = Faults(
        busy=0.10,
        server_error=0.05,
        rate_limit=0.03,
        retry_after=0.01,
        malformed=Trigger(rate=0.05, actions=polls_only),
        max_list_length=40,
    )
    emulator = Emulator(latency=0.3, seed=11, faults=faults)
    results: list[picpik.GenerationResult] = []

    async def one(opened: picpik.AsyncClient, i: int) -> None:
        results.append(await opened.generate(f"prompt {i}", width=256, height=256))

    # Poll timing in proportion to the 0.3 s tasks, as the defaults are to real ones.
    poll = picpik.PollSettings(
        poll_initial=0.25, poll_max=0.6, poll_grid=0.1, running_interval=0.2, running_grace=0.1
    )
    fanned = make_client(emulator, poll=poll)
    async with fanned as opened, anyio.create_task_group() as group:
        for i in range(300):
            group.start_soon(one, opened, i)
    counters = emulator.counters
    assert len(results) == 300
    assert counters.tasks_created == 300
    assert counters.duplicate_tasks() == {}
    assert counters.faults["busy"] > 0
    assert counters.faults["rate_limit"] > 0
    assert counters.faults["server_error"] > 0
    assert status_requests(emulator) / 300 <= 0.25
    assert max(counters.list_lengths) <= poll.poll_batch_size
    assert any(length > 40 for length in counters.list_lengths)  # the limit was found ...
    assert counters.list_lengths[-1] <= 40  # ... and remembered


async def test_bad_private_key_fails_once(emulator: Emulator) -> None:
    """A wrong private key is an AuthenticationError after exactly one request."""
    async with make_client(emulator, private_key="not-the-key") as client:
        with pytest.raises(picpik.AuthenticationError) as caught:
            await client.get_credit_balance()
    assert emulator.counters.requests["GetCreditBalance"] == 1
    assert caught.value.retryable is False
    assert "not-the-key" not in str(caught.value)


async def test_unknown_status_words_and_failures() -> None:
    """Pending/Processing/Success/Failed are understood; failures come back as errors."""
    words = StatusWords("Pending", "Processing", "Success", "Failed")
    emulator = Emulator(latency=0.1, seed=3, status_words=words, faults=Faults(task_failure={2, 4}))
    async with make_client(emulator) as client:
        prompts = [f"p{i}" for i in range(6)]
        outcomes = [o async for o in client.generate_many(prompts, return_exceptions=True)]
    failures = [o for o in outcomes if isinstance(o, picpik.TaskFailedError)]
    assert len(outcomes) == 6
    assert len(failures) == 2
    assert all(f.status == "Failed" and f.error_code != 0 for f in failures)
    assert {f.prompt for f in failures} <= {f"p{i}" for i in range(6)}


async def test_generate_many_raises_first_error_without_return_exceptions() -> None:
    """Without return_exceptions the first failure stops the run."""
    emulator = Emulator(latency=0.05, faults=Faults(task_failure=1.0))
    async with make_client(emulator) as client:
        with pytest.raises(picpik.TaskFailedError):
            async for _ in client.generate_many(["a", "b", "c"]):
                pass


async def test_generate_many_validates_options_before_io(
    client: picpik.AsyncClient, emulator: Emulator
) -> None:
    """A bad option fails on the first iteration, before any request."""
    with pytest.raises(picpik.ValidationError, match="width"):
        async for _ in client.generate_many(["a"], width=10):
            pass
    assert sum(emulator.counters.requests.values()) == 0


async def test_wait_timeout_leaves_other_waiters_alone() -> None:
    """wait(timeout=...) raises TaskTimeoutError for that waiter only."""
    emulator = Emulator(latency=0.3)
    async with make_client(emulator) as client:
        slow = await client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
        other: list[picpik.GenerationResult] = []

        async def patient() -> None:
            other.append(await client.wait(slow.task_uid))

        async with anyio.create_task_group() as group:
            group.start_soon(patient)
            with pytest.raises(picpik.TaskTimeoutError) as caught:
                await client.wait(slow, timeout=0.1)
        assert caught.value.task_uid == slow.task_uid
        assert [r.task_uid for r in other] == [slow.task_uid]


async def test_cancelled_waiters_stop_status_traffic() -> None:
    """Once every waiter is cancelled, the poller sends nothing more."""
    emulator = Emulator(latency=60)
    async with make_client(emulator) as client:
        handles = [
            await client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))
            for _ in range(5)
        ]
        with anyio.move_on_after(0.15):  # the first poll is due at 0.05 s
            async with anyio.create_task_group() as group:
                for handle in handles:
                    group.start_soon(client.wait, handle)
        await anyio.sleep(0.05)  # a poll already on its way may still land
        polls = status_requests(emulator)
        assert polls > 0
        await anyio.sleep(0.25)  # longer than poll_max and a tick: a poller still going would poll
        assert status_requests(emulator) == polls


async def test_chunk_is_split_only_on_parameter_errors() -> None:
    """A transient failure of a long list does not shrink the batch size."""
    # The first two polls are refused as busy (transient): whichever lists they were.
    faults = Faults(busy=Trigger(schedule={1, 2}, actions={"ListTasksDetails"}))
    emulator = Emulator(latency=0.2, seed=5, faults=faults)
    request = picpik.GenerateImagesSDXL(main_model=picpik.Model("m"))
    # No jitter and a coarse grid: the 60 tasks are first due together, so the first
    # poll (refused, then retried) is a list of 50 twice, unless the batch size shrank.
    poll = picpik.PollSettings(
        poll_initial=0.05,
        poll_max=0.2,
        poll_grid=0.25,
        poll_jitter=0,
        poll_batch_size=50,
        running_set=False,
    )
    async with make_client(emulator, poll=poll) as client:
        handles = [await client.submit(request) for _ in range(60)]
        async with anyio.create_task_group() as group:
            for handle in handles:
                group.start_soon(client.wait, handle)
    assert emulator.counters.faults["busy"] > 0
    assert emulator.counters.list_lengths.count(50) >= 2


async def test_retry_hook_and_log(caplog: pytest.LogCaptureFixture) -> None:
    """Each retry calls on_retry and logs one INFO line, without the private key."""
    events: list[picpik.RetryEvent] = []
    emulator = Emulator(latency=0.05, faults=Faults(busy={1, 2}))
    caplog.set_level(logging.DEBUG, logger="picpik_async")
    async with make_client(emulator, on_retry=events.append) as client:
        await client.get_credit_balance()
    assert [e.attempt for e in events] == [1, 2]
    assert all(isinstance(e.error, picpik.APIError) for e in events)
    retry_lines = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retry_lines) == 2
    assert all(r.levelno == logging.INFO for r in retry_lines)
    assert emulator.private_key not in caplog.text


async def test_permanent_errors_are_not_retried(
    client: picpik.AsyncClient, emulator: Emulator
) -> None:
    """A parameter error from the service fails on the first attempt."""
    emulator.faults = Faults(max_list_length=2)
    with pytest.raises(picpik.APIError) as caught:
        await client.call(picpik.ListTasksDetails(["a", "b", "c"]), request_uuid="fixed-uuid")
    assert emulator.counters.requests["ListTasksDetails"] == 1
    assert caught.value.retryable is False
    assert caught.value.request_uuid == "fixed-uuid"
    assert caught.value.ret_code is not None


async def test_submit_outcome_unknown_is_not_retried_by_default() -> None:
    """A dropped submit answer is SubmitOutcomeUnknownError carrying the request_uuid."""
    emulator = Emulator(latency=0.05, faults=Faults(drop=Trigger(schedule={1})))
    async with make_client(emulator) as client:
        with pytest.raises(picpik.SubmitOutcomeUnknownError) as caught:
            await client.generate("lost")
    counters = emulator.counters
    assert counters.tasks_created == 1
    assert counters.requests["GenerateImagesSDXL"] == 1
    assert counters.tasks_per_request_uuid[caught.value.request_uuid] == 1


async def test_unknown_submits_retried_with_same_uuid_when_asked() -> None:
    """With retry_unknown_submits the same request_uuid is sent again."""
    emulator = Emulator(
        latency=0.05, faults=Faults(drop=Trigger(schedule={1})), dedupe_request_uuid=True
    )
    policy = picpik.RetryPolicy(
        max_attempts=3, backoff_initial=0.001, backoff_max=0.01, retry_unknown_submits=True
    )
    async with make_client(emulator, retry=policy) as client:
        result = await client.generate("found again")
    counters = emulator.counters
    assert counters.requests["GenerateImagesSDXL"] == 2
    assert counters.reused_request_uuids == 1
    assert counters.tasks_created == 1
    assert result.request_uuid is not None


async def test_read_actions_retry_dropped_connections(emulator: Emulator) -> None:
    """A dropped answer to a read is simply asked again."""
    emulator.faults = Faults(drop=Trigger(schedule={1}))
    async with make_client(emulator) as client:
        balance = await client.get_credit_balance()
    assert balance.total_credits > 0
    assert emulator.counters.requests["GetCreditBalance"] == 2


async def test_closed_client_refuses_work(emulator: Emulator) -> None:
    """Using a client after aclose() is a ClientClosedError."""
    client = make_client(emulator)
    async with client:
        pass
    with pytest.raises(picpik.ClientClosedError):
        await client.get_credit_balance()
    with pytest.raises(picpik.ClientClosedError):
        async with client:
            pass


async def test_aclose_ends_pending_waits() -> None:
    """aclose() ends pending waits with ClientClosedError at once."""
    emulator = Emulator(latency=60)
    errors: list[BaseException] = []
    async with make_client(emulator) as client:
        handle = await client.submit(picpik.GenerateImagesSDXL(main_model=picpik.Model("m")))

        async def waiter() -> None:
            try:
                await client.wait(handle)
            except picpik.ClientClosedError as error:
                errors.append(error)

        with anyio.fail_after(1):
            async with anyio.create_task_group() as group:
                group.start_soon(waiter)
                await anyio.sleep(0.05)
                await client.aclose()
    assert len(errors) == 1
    assert handle.task_uid in str(errors[0])


async def test_wait_needs_an_open_client(emulator: Emulator) -> None:
    """wait() outside `async with` says how to open the client."""
    client = make_client(emulator)
    try:
        with pytest.raises(RuntimeError, match="async with"):
            await client.wait("uid")
    finally:
        await client.aclose()


def test_missing_keys_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key and no environment variable: ValidationError naming the variable."""
    monkeypatch.delenv("PICPIK_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("PICPIK_PRIVATE_KEY", raising=False)
    with pytest.raises(picpik.ValidationError, match="PICPIK_PUBLIC_KEY"):
        picpik.AsyncClient()
    with pytest.raises(picpik.ValidationError, match="PICPIK_PRIVATE_KEY"):
        picpik.AsyncClient(public_key="pk")


def test_keys_and_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys and base URL default to the PICPIK_* variables; repr hides the private key."""
    monkeypatch.setenv("PICPIK_PUBLIC_KEY", "env-public")
    monkeypatch.setenv("PICPIK_PRIVATE_KEY", "env-private-secret")
    monkeypatch.setenv("PICPIK_BASE_URL", "https://api.picpikai.com")
    client = picpik.AsyncClient()
    assert client.public_key == "env-public"
    assert client.base_url == "https://api.picpikai.com"
    assert "env-private-secret" not in repr(client)
    assert "env-private-secret" not in repr(vars(client))


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PICPIK_BASE_URL the international station is used."""
    monkeypatch.delenv("PICPIK_BASE_URL", raising=False)
    client = picpik.AsyncClient(public_key="a", private_key="b")
    assert client.base_url == "https://api.picpik.ai"


def test_plain_http_to_a_remote_host_warns(caplog: pytest.LogCaptureFixture) -> None:
    """http:// to a non-loopback host logs a warning; loopback does not."""
    with caplog.at_level(logging.WARNING, logger="picpik_async"):
        picpik.AsyncClient(public_key="a", private_key="b", base_url="http://127.0.0.1:8000")
        assert not caplog.records
        picpik.AsyncClient(public_key="a", private_key="b", base_url="http://example.com")
    assert "not encrypted" in caplog.text


def test_bad_base_url_is_refused() -> None:
    """A base URL that is not http(s) is a ValidationError."""
    with pytest.raises(picpik.ValidationError, match="base_url"):
        picpik.AsyncClient(public_key="a", private_key="b", base_url="ftp://x")


async def test_image_to_image(client: picpik.AsyncClient, emulator: Emulator) -> None:
    """image= bytes become ImageAndMaskList[0] with an Image2Image on it."""
    first = await client.generate("seed image", width=128, height=128)
    png = await first.images[0].read()
    result = await client.generate("variation", image=png, refer_strength=0.3)
    assert result.images
    with pytest.raises(picpik.ValidationError, match="not a PNG"):
        await client.generate("bad", image=b"not an image")


async def test_download_saves_every_image(client: picpik.AsyncClient, tmp_path: Any) -> None:
    """download() writes <TaskUID>-<index>.png for each image."""
    result = await client.generate("two", batch_size=2, width=64, height=64)
    paths = await client.download(result, tmp_path / "out")
    assert [p.name for p in paths] == [f"{result.task_uid}-0.png", f"{result.task_uid}-1.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


async def test_expired_image_says_24_hours() -> None:
    """An expired image URL raises ImageExpiredError mentioning the 24-hour retention."""
    clock = ManualClock()  # tasks finish at once; the images' age moves only by hand
    emulator = Emulator(latency=0.0, image_ttl=60.0, clock=clock)
    async with make_client(emulator) as client:
        result = await client.generate("old", width=64, height=64)
        clock.advance(61.0)
        with pytest.raises(picpik.ImageExpiredError, match="24 hours"):
            await result.images[0].read()


async def test_caller_owned_http_client_is_not_closed(emulator: Emulator) -> None:
    """An httpx.AsyncClient passed in stays open after the client closes."""
    async with httpx.AsyncClient(transport=emulator.transport()) as http:
        async with make_client(emulator, transport=None, http_client=http) as client:
            await client.get_credit_balance()
        assert not http.is_closed


async def test_smoke_over_a_real_socket() -> None:
    """generate() against the emulator served on a loopback port."""
    async with serve_emulator(latency=0.1) as server:
        emulator = server.emulator
        async with picpik.AsyncClient(
            public_key=emulator.public_key,
            private_key=emulator.private_key,
            base_url=server.url,
            poll=FAST_POLL,
        ) as client:
            result = await client.generate("over tcp", width=64, height=64)
            assert (await result.images[0].read()).startswith(b"\x89PNG")
        assert emulator.counters.tasks_created == 1


async def test_errors_in_the_block_propagate_unwrapped(emulator: Emulator) -> None:
    """An exception inside `async with client` is raised as is, not as an ExceptionGroup."""
    with pytest.raises(picpik.ValidationError):
        async with make_client(emulator) as client:
            await client.generate("x", width=10)
    with pytest.raises(KeyError):
        async with make_client(emulator):
            raise KeyError("mine")


async def test_outer_cancellation_closes_the_client() -> None:
    """Cancelling around `async with client` ends it cleanly and closes its sockets."""
    emulator = Emulator(latency=60)
    client = make_client(emulator)
    with anyio.move_on_after(0.1) as scope:
        async with client:
            await client.generate("never finishes")
    assert scope.cancelled_caught
    with pytest.raises(picpik.ClientClosedError):
        await client.get_credit_balance()


async def test_generate_many_refuses_bad_prompts_before_io(
    client: picpik.AsyncClient, emulator: Emulator
) -> None:
    """An empty prompt anywhere in the list fails before the first request."""
    with pytest.raises(picpik.ValidationError, match="prompt"):
        async for _ in client.generate_many(["fine", "  "]):
            pass
    assert sum(emulator.counters.requests.values()) == 0


async def test_leaving_generate_many_early_cancels_the_rest(emulator: Emulator) -> None:
    """Breaking out of the loop stops the prompts still in flight."""
    async with make_client(emulator) as client:
        async for _ in client.generate_many([f"p{i}" for i in range(20)], max_concurrency=2):
            break
        await anyio.sleep(0.15)
        created = emulator.counters.tasks_created
        await anyio.sleep(0.25)  # the time for more than one more task of each slot
        assert emulator.counters.tasks_created == created < 20


async def test_submits_in_flight_are_capped() -> None:
    """No more than submit_concurrency task-creating requests reach the service at once."""
    slow_submits = Trigger(rate=1.0, actions={"GenerateImagesSDXL"})
    emulator = Emulator(latency=0.05, faults=Faults(slow=slow_submits, slow_seconds=0.1))
    in_flight = 0
    peak = 0
    transport = emulator.transport()

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            submit = b"GenerateImagesSDXL" in request.content
            in_flight += submit
            peak = max(peak, in_flight)
            try:
                return await transport.handle_async_request(request)
            finally:
                in_flight -= submit

    capped = make_client(emulator, transport=Counting(), submit_concurrency=3)
    async with capped as client, anyio.create_task_group() as group:
        for i in range(12):
            group.start_soon(client.generate, f"p{i}")
    assert peak == 3
    assert emulator.counters.tasks_created == 12


def test_submit_concurrency_is_validated() -> None:
    """submit_concurrency must be a positive integer."""
    with pytest.raises(picpik.ValidationError, match="submit_concurrency"):
        picpik.AsyncClient(public_key="a", private_key="b", submit_concurrency=0)


def test_idle_connections_are_dropped_before_the_server_drops_them() -> None:
    """A submit on a connection the server is closing has an unknown outcome: our pool
    lets idle connections go before uvicorn's keep-alive timeout (and nginx's) ends."""
    import uvicorn

    from picpik_async._client import DEFAULT_LIMITS

    assert DEFAULT_LIMITS.keepalive_expiry is not None
    server_side = uvicorn.Config(app=None).timeout_keep_alive  # type: ignore[arg-type]
    assert DEFAULT_LIMITS.keepalive_expiry < server_side
