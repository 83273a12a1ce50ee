"""Benchmark worker: one client, one scenario, in its own process; prints one JSON line.

Run by `run.py` with ``sys.executable``, so the CPU seconds and the resident
memory it reports belong to that client alone.

Two clients:

* ``picpik``: ``AsyncClient.generate_many(prompts, max_concurrency=N)`` with the
  library's defaults (64x64 images, no download); ``--batched`` polls with the
  batched per-task schedule (``PollSettings(running_set=False)``) where the
  library has that field, and with the defaults where it does not;
  ``--previous-defaults`` runs it with the defaults it had before issue 6
  (`PREVIOUS_DEFAULTS`), for comparison.
* ``per-task``: what openai-python, replicate, fal-client and Runware do: one
  poll loop per job, each sending ``ListTasksDetails([uid])`` every ``interval``
  seconds until the task is over (fal-client polls every 0.1 s, the others every
  0.5 or 1 s). A plain httpx script (one ``httpx.AsyncClient`` with generous
  limits) that signs with `picpik_async.sign` and writes bodies with the
  library's `dumps`, so both clients pay the same for signing and encoding.

Arrivals: with ``--span 0`` (burst) every prompt is there at once; with
``--span S`` the prompts come from an async generator that releases them evenly
over S seconds (`paced`): ``generate_many`` reads that generator, and the
per-task script starts a job for each prompt as it comes. Where
``generate_many`` refuses an async iterable, each prompt gets its own
``generate()`` call as it comes (the same client and poller); the JSON says which.

Every timestamp is ``time.monotonic()``, the clock the emulator stamps tasks with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import inspect
import json
import math
import os
import resource
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import _scenarios
import httpx

from picpik_async import AsyncClient, PicpikError, PollSettings, ValidationError, sign
from picpik_async._signing import dumps
from picpik_async.testing import DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY

SIZE = 64  # small images: the benchmark is about protocol cost, not pixels
TERMINAL_WORDS = frozenset({"Finished", "Error"})  # the emulator's (legacy) words
# Generous limits for the per-task script, as peers ship them (openai-python allows
# 1000 connections); keep-alive for all of them, so it never pays for reconnecting.
PER_TASK_CONNECTIONS = 1000
_TICK = 0.05  # seconds between two looks at the pending count (memory runs)


def rss_kb() -> int:
    """This process's resident set size now, in KiB."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:  # not Linux: the high-water mark is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss_kb() -> int:
    """The highest resident set size this process ever had, in KiB (Linux units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Recorder:
    """When each task's result reached the caller, and what the run cost the process."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.returned: dict[str, float] = {}
        self.errors: list[str] = []
        self.rss_first_result = 0
        self.rss_baseline = 0
        self.t0 = self.cpu0 = 0.0

    def start(self) -> None:
        gc.collect()
        self.rss_baseline = rss_kb()
        self.cpu0 = time.process_time()
        self.t0 = time.monotonic()

    def done(self, uid: str) -> None:
        now = time.monotonic()
        if not self.rss_first_result:
            self.rss_first_result = rss_kb()
        self.returned[uid] = now

    def failed(self, error: BaseException) -> None:
        if not self.rss_first_result:
            self.rss_first_result = rss_kb()
        self.errors.append(f"{type(error).__name__}: {error}"[:200])

    def result(self, **extra: Any) -> dict[str, Any]:
        cpu = time.process_time() - self.cpu0
        ends = list(self.returned.values())
        return {
            "n": self.n,
            "t0": self.t0,
            "t_end": max(ends) if ends else time.monotonic(),
            "returned": self.returned,
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
            "cpu_seconds": cpu,
            "rss_baseline_kb": self.rss_baseline,
            "rss_first_result_kb": self.rss_first_result,
            "rss_peak_kb": max(peak_rss_kb(), self.rss_first_result, rss_kb()),
            **extra,
        }


async def until_all_pending(
    body: Coroutine[Any, Any, None], pending: Callable[[], int], recorder: Recorder, deadline: float
) -> dict[str, Any]:
    """Run ``body`` until every task is pending at once; measure RSS then; cancel the rest.

    Used with a task latency far longer than the submit phase, so that every one
    of the N tasks is created and waited for at the same time. A prompt whose
    submit failed never becomes pending; the growth is divided by those that did.
    """
    run = asyncio.ensure_future(body)
    rss = 0
    reached = math.nan
    try:
        for _ in range(math.ceil(deadline / _TICK)):  # a bounded wait
            if pending() + len(recorder.errors) >= recorder.n or run.done():
                break
            await asyncio.sleep(_TICK)
        reached = time.monotonic() - recorder.t0
        for _ in range(10):  # a second of steady state: the poller keeps working
            rss = max(rss, rss_kb())
            await asyncio.sleep(0.1)
        count = pending()
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    if not count:
        raise RuntimeError(f"no task became pending; errors: {recorder.errors[:3]}")
    return {
        "n": recorder.n,
        "pending": count,
        "seconds_to_all_pending": reached,
        "rss_baseline_kb": recorder.rss_baseline,
        "rss_all_pending_kb": rss,
        "errors": len(recorder.errors),
        "error_samples": recorder.errors[:5],
    }


async def paced(prompts: list[str], span: float) -> AsyncIterator[str]:
    """Yield the prompts evenly over ``span`` seconds, the first at once (0: all at once).

    Each prompt is due at a fixed offset from the start, so a slow consumer does
    not push the later ones back: it gets them as soon as it asks.
    """
    start = time.monotonic()
    gap = span / len(prompts) if prompts else 0.0
    for i, prompt in enumerate(prompts):
        delay = start + i * gap - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield prompt


# --- our client -------------------------------------------------------------------


# The library's defaults before issue 6's first benchmark run: intervals grew by 1.5,
# and every submit went straight to httpx (a cap far above any N means no cap).
PREVIOUS_DEFAULTS: dict[str, Any] = {
    "poll": PollSettings(poll_growth=1.5),
    "submit_concurrency": 1_000_000,
}


def picpik_options(*, previous: bool, batched: bool) -> dict[str, Any]:
    """`AsyncClient` keyword arguments for the variant asked for; {} is the library's defaults."""
    if previous:
        return PREVIOUS_DEFAULTS
    if batched and _scenarios.has_running_set():
        # Through a dict: the field exists only after the running-set poller's merge.
        batched_schedule: dict[str, Any] = {"running_set": False}
        return {"poll": PollSettings(**batched_schedule)}
    return {}


async def consume_many(client: AsyncClient, prompts: Any, recorder: Recorder) -> None:
    """Run ``generate_many`` over ``prompts`` (a list or an async iterable) to its end."""
    async for item in client.generate_many(
        prompts,
        max_concurrency=recorder.n,
        return_exceptions=True,
        width=SIZE,
        height=SIZE,
    ):
        if isinstance(item, PicpikError):
            recorder.failed(item)
        else:
            recorder.done(item.task_uid)


async def consume_one_by_one(
    client: AsyncClient, prompts: AsyncIterator[str], recorder: Recorder
) -> None:
    """A ``generate()`` call per prompt as it comes, all on one client."""

    async def one(prompt: str) -> None:
        try:
            result = await client.generate(prompt, width=SIZE, height=SIZE)
        except PicpikError as error:
            recorder.failed(error)
        else:
            recorder.done(result.task_uid)

    async with asyncio.TaskGroup() as group:
        async for prompt in prompts:
            group.create_task(one(prompt))


def feeder(
    client: AsyncClient, prompts: list[str], span: float, recorder: Recorder
) -> tuple[Coroutine[Any, Any, None], str]:
    """The coroutine that feeds the client, and how it does (for the report)."""
    if not span:
        return consume_many(client, prompts, recorder), "generate_many(list)"
    probe: Any = paced(prompts, span)  # typed Any: this library may take only iterables
    try:
        # generate_many checks its argument when called, before any I/O; the probe
        # generator is never started, so it releases nothing.
        client.generate_many(probe, width=SIZE, height=SIZE)
    except ValidationError:
        run = consume_one_by_one(client, paced(prompts, span), recorder)
        return run, "generate() per prompt (generate_many takes no async iterable here)"
    return consume_many(client, paced(prompts, span), recorder), "generate_many(async generator)"


async def run_picpik(
    url: str,
    prompts: list[str],
    deadline: float,
    *,
    span: float,
    memory: bool,
    previous: bool = False,
    batched: bool = False,
) -> dict[str, Any]:
    recorder = Recorder(len(prompts))
    options = picpik_options(previous=previous, batched=batched)
    async with AsyncClient(
        public_key=DEFAULT_PUBLIC_KEY, private_key=DEFAULT_PRIVATE_KEY, base_url=url, **options
    ) as client:
        await client.get_credit_balance()  # warm-up: a connection, every lazy import
        recorder.start()
        consume, feed = feeder(client, prompts, span, recorder)
        if memory:
            # The one peek at a private attribute: how many TaskUIDs the poller waits for.
            waiter = client._waiter
            return await until_all_pending(
                consume, lambda: waiter.pending if waiter else 0, recorder, deadline
            )
        timed_out = False
        try:
            async with asyncio.timeout(deadline):
                await consume
        except TimeoutError:
            timed_out = True
        default_cap = inspect.signature(AsyncClient).parameters["submit_concurrency"].default
        settings = {
            "poll": repr(client.poll),
            "retry": repr(client.retry),
            "submit_concurrency": options.get("submit_concurrency", default_cap),
            "feed": feed,
        }
    return recorder.result(timed_out=timed_out, settings=settings)


# --- the per-task polling baseline -----------------------------------------------------


class PerTask:
    """One poll loop per job, as peer SDKs poll; signs with `picpik_async.sign`."""

    def __init__(self, http: httpx.AsyncClient, url: str, interval: float) -> None:
        self.http = http
        self.url = url.rstrip("/") + "/"
        self.interval = interval
        self.pending = 0

    async def call(self, body: dict[str, Any]) -> dict[str, Any]:
        body["PublicKey"] = DEFAULT_PUBLIC_KEY
        body["request_uuid"] = str(uuid.uuid4())
        body["Signature"] = sign(body, DEFAULT_PRIVATE_KEY)
        headers = {"Content-Type": "application/json"}
        response = await self.http.post(self.url, content=dumps(body), headers=headers)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        if answer.get("RetCode") != 0:
            raise RuntimeError(f"RetCode {answer.get('RetCode')}: {answer.get('Message')}")
        return answer

    async def submit(self, prompt: str) -> str:
        # The very body `AsyncClient.generate(prompt, width=64, height=64)` sends.
        answer = await self.call(
            {
                "Action": "GenerateImagesSDXL",
                "MainModel": {"ModelCode": "PICPIK General"},
                "SubModelList": [],
                "PositivePrompts": [prompt],
                "NegativePrompts": [],
                "TranslatePrompts": True,
                "Seed": -1,
                "Width": SIZE,
                "Height": SIZE,
                "BatchSize": 1,
                "Tiling": False,
                "ImageAndMaskList": [],
            }
        )
        return str(answer["TaskUID"])

    async def poll(self, uid: str) -> dict[str, Any] | None:
        answer = await self.call({"Action": "ListTasksDetails", "TaskUIDList": [uid]})
        details = answer.get("TaskDetailList") or []
        return details[0] if details else None

    async def job(self, prompt: str, recorder: Recorder) -> None:
        try:
            uid = await self.submit(prompt)
        except (httpx.HTTPError, RuntimeError) as error:
            recorder.failed(error)
            return
        self.pending += 1
        while True:  # bounded by the run's deadline
            # Like replicate's wait() and openai's poll helpers: sleep, then ask again.
            await asyncio.sleep(self.interval)
            try:
                detail = await self.poll(uid)
            except (httpx.HTTPError, RuntimeError) as error:
                recorder.errors.append(f"poll: {type(error).__name__}: {error}"[:200])
                continue
            if detail and (detail.get("Status") in TERMINAL_WORDS or detail.get("ErrorCode")):
                self.pending -= 1
                recorder.done(uid)
                return


async def run_per_task(
    url: str, prompts: list[str], interval: float, deadline: float, *, span: float, memory: bool
) -> dict[str, Any]:
    recorder = Recorder(len(prompts))
    limits = httpx.Limits(
        max_connections=PER_TASK_CONNECTIONS, max_keepalive_connections=PER_TASK_CONNECTIONS
    )
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0, pool=None)) as http:
        runner = PerTask(http, url, interval)
        await runner.call({"Action": "GetCreditBalance"})  # warm-up, as for our client

        async def jobs() -> None:
            async with asyncio.TaskGroup() as group:
                async for prompt in paced(prompts, span):  # span 0: all at once
                    group.create_task(runner.job(prompt, recorder))

        recorder.start()
        if memory:
            return await until_all_pending(jobs(), lambda: runner.pending, recorder, deadline)
        timed_out = False
        try:
            async with asyncio.timeout(deadline):
                await jobs()
        except TimeoutError:
            timed_out = True
    settings = {"interval": interval, "connections": PER_TASK_CONNECTIONS}
    return recorder.result(timed_out=timed_out, settings=settings)


# --- process plumbing ---------------------------------------------------------------------


def _watch_parent() -> None:
    """Exit if the benchmark runner goes away (we are re-parented)."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=["picpik", "per-task"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--interval", type=float, default=1.0, help="per-task poll interval")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds for the run")
    parser.add_argument(
        "--span", type=float, default=0.0, help="feed the prompts over this many seconds"
    )
    parser.add_argument(
        "--batched",
        action="store_true",
        help="picpik: PollSettings(running_set=False) where the library has that field",
    )
    parser.add_argument(
        "--previous-defaults",
        action="store_true",
        help="picpik: poll_growth 1.5 and no cap on submits (the defaults before issue 6)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="stop once all N tasks are pending and report the RSS then (needs a long latency)",
    )
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("the benchmark only talks to loopback (http://127.0.0.1:PORT)")
    threading.Thread(target=_watch_parent, daemon=True).start()

    prompts = [f"benchmark prompt {i}: a lighthouse at dusk" for i in range(args.n)]
    if args.client == "picpik":
        run = run_picpik(
            args.url,
            prompts,
            args.deadline,
            span=args.span,
            memory=args.memory,
            previous=args.previous_defaults,
            batched=args.batched,
        )
    else:
        run = run_per_task(
            args.url, prompts, args.interval, args.deadline, span=args.span, memory=args.memory
        )
    result = asyncio.run(run)
    result["client"] = args.client
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
