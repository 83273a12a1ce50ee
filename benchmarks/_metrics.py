"""Turn one scenario's raw records (client worker + emulator) into the reported metrics.

Definitions (also written into RESULTS.md):

* t0: the client's `time.monotonic()` just before its first submit (with a
  steady arrival, the first prompt is fed at t0 and the last one span seconds later).
* status requests per task: ListTasksDetails plus ListRunningTasks requests the
  emulator received / N (both are status traffic); the row below it counts the
  ListRunningTasks alone.
* HTTP requests per task: every POST the emulator received, minus the one
  warm-up GetCreditBalance, / N.
* submit span: from t0 until the emulator created the last task.
* ideal: from t0 until the last task finished on the emulator, i.e. the submit
  time of the task that finished last plus its latency: when a client that
  learned of every completion at the instant it happened, for free, would be done.
* wall: from t0 until the caller received the last result.
* completion lag of a task: from its finish on the emulator's clock to the moment
  the caller's await returned it (the same CLOCK_MONOTONIC in both processes).
* polls of a task: the ListTasksDetails requests that named it, and every
  ListRunningTasks answered from its creation up to the first one after it
  finished (the answer that no longer listed it), from the times the emulator
  recorded.
* poll interval in effect for a task: the time between the poll that first saw it
  finished and the poll before it (or its creation, if there was none). The lag
  target compares each task's lag with its own interval: lag - interval is what
  the client adds after the poll.
* delivery: from the poll that saw a task finished (emulator clock) to the
  moment the caller's await returned it: the answer's trip back and the client's
  own work, including any wait for its busy event loop.
* client CPU: `time.process_time()` of the worker process from t0 to the end.
* RSS per prompt at peak: (the worker's peak RSS - its RSS just before t0) / N.
  With a 3 s latency not all N tasks are ever pending at once at large N (the
  submit phase lasts longer than a task), so the memory target is measured
  apart, in the memory runs.
* RSS growth per pending task (memory runs): the emulator's latency is set far
  beyond the run (600 s), the client submits all N prompts as in its timed run,
  and once all N tasks exist and are being waited for, its RSS (the highest of
  ten samples over one more second) minus its RSS just before t0, divided by the
  number of pending tasks (N, unless a submit failed: then it says so).

Percentiles are nearest-rank.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _detecting_poll(polls: list[float], created: float, done: float) -> tuple[float, float] | None:
    """The poll that first saw the task finished, and the interval in effect then."""
    before = [p for p in polls if p < done]
    after = [p for p in polls if p >= done]
    if not after:
        return None
    seen = min(after)
    return seen, seen - (max(before) if before else created)


def _poll_gaps(polls: list[float]) -> list[float]:
    ordered = sorted(polls)
    return [b - a for a, b in itertools.pairwise(ordered)]


def polls_of(task: dict[str, Any], running_polls: list[float]) -> list[float]:
    """A task's polls: its ListTasksDetails, and the ListRunningTasks that covered it.

    ``running_polls`` is sorted (the emulator appends as it answers). The
    ListRunningTasks that count are those from the task's creation up to and
    including the first one at or after its finish, the one it was missing from.
    """
    first = bisect.bisect_left(running_polls, task["created"])
    last = bisect.bisect_left(running_polls, task["done"]) + 1
    return sorted([*task["polls"], *running_polls[first:last]])


def lags(worker: dict[str, Any], bench: dict[str, Any]) -> list[float]:
    """Every returned task's completion lag (seconds), in no particular order."""
    tasks = bench["tasks"]
    returned: dict[str, float] = worker["returned"]
    return [at - tasks[uid]["done"] for uid, at in returned.items() if uid in tasks]


def analyse(worker: dict[str, Any], bench: dict[str, Any]) -> dict[str, float]:
    """The metrics of one run, as plain numbers (see the module docstring)."""
    n = worker["n"]
    t0 = worker["t0"]
    tasks = bench["tasks"]
    requests = bench["requests"]
    running_polls = sorted(bench.get("running_polls", []))
    returned: dict[str, float] = worker["returned"]

    excess, intervals, delivery, gaps = [], [], [], []
    for uid, at in returned.items():
        task = tasks.get(uid)
        if task is None:
            continue
        polls = polls_of(task, running_polls)
        detected = _detecting_poll(polls, task["created"], task["done"])
        if detected is not None:
            seen, interval = detected
            intervals.append(interval)
            excess.append(at - task["done"] - interval)
            delivery.append(at - seen)
        gaps += _poll_gaps(polls)
    lag = lags(worker, bench)

    running = requests.get("ListRunningTasks", 0)
    status = requests.get("ListTasksDetails", 0) + running
    total = sum(requests.values()) - 1  # minus the warm-up GetCreditBalance
    created = [t["created"] for t in tasks.values()]
    done = [t["done"] for t in tasks.values()]
    lengths = bench["list_lengths"]
    wall = worker["t_end"] - t0
    ideal = max(done) - t0 if done else math.nan
    submit_span = max(created) - t0 if created else math.nan
    rss_growth = worker["rss_peak_kb"] - worker["rss_baseline_kb"]
    return {
        "n": n,
        "completed": len(returned),
        "errors": worker["errors"],
        "timed_out": float(bool(worker.get("timed_out"))),
        "status_per_task": status / n,
        "running_list_per_task": running / n,
        "http_per_task": total / n,
        "uids_per_status": statistics.fmean(lengths) if lengths else math.nan,
        "wall": wall,
        "ideal": ideal,
        "wall_ratio": wall / ideal,
        "wall_minus_ideal": wall - ideal,
        "submit_span": submit_span,
        "submits_per_s": n / submit_span if submit_span > 0 else math.nan,
        "lag_p50": percentile(lag, 50),
        "lag_p95": percentile(lag, 95),
        "lag_max": max(lag) if lag else math.nan,
        "interval_p50": percentile(intervals, 50),
        "interval_p95": percentile(intervals, 95),
        "excess_p95": percentile(excess, 95),
        "delivery_p50": percentile(delivery, 50),
        "delivery_p95": percentile(delivery, 95),
        "poll_gap_p50": percentile(gaps, 50),
        "cpu_ms_per_task": worker["cpu_seconds"] / n * 1000,
        "server_cpu_ms_per_task": bench["cpu_seconds"] / n * 1000,
        "rss_baseline_mb": worker["rss_baseline_kb"] / 1024,
        "rss_first_result_mb": worker["rss_first_result_kb"] / 1024,
        "rss_peak_mb": worker["rss_peak_kb"] / 1024,
        "rss_kb_per_prompt_peak": rss_growth / n,
    }


def analyse_memory(worker: dict[str, Any]) -> dict[str, float]:
    """The metrics of one memory run (see the module docstring)."""
    growth = worker["rss_all_pending_kb"] - worker["rss_baseline_kb"]
    return {
        "n": worker["n"],
        "seconds_to_all_pending": worker["seconds_to_all_pending"],
        "rss_baseline_mb": worker["rss_baseline_kb"] / 1024,
        "rss_all_pending_mb": worker["rss_all_pending_kb"] / 1024,
        "pending": worker["pending"],
        "rss_kb_per_pending_task": growth / worker["pending"],
        "errors": worker["errors"],
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's median over repeated runs of the same scenario."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}
