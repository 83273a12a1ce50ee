"""Benchmark: picpik_async's batched poller against per-task polling, on a loopback emulator.

Issue 6: "We claim that our client costs far less than the way every other SDK
polls (one status request per job per interval: openai-python, replicate,
fal-client and Runware all do that). Prove it with numbers a reader can reproduce."
Issue 13: scenarios that look like the service (longer and log-normal task
latencies with a queueing phase, prompts arriving steadily, N up to 10,000),
fal-client's 0.1 s interval, and charts.

Usage, from the repository root after ``pip install ".[cli,emulator,bench]"``::

    python benchmarks/run.py --quick     # about 5 minutes; writes RESULTS-quick.md
    python benchmarks/run.py             # about 25 minutes; writes benchmarks/RESULTS.md
    python benchmarks/run.py --list      # the scenario matrix and what it skips, no runs
    python benchmarks/run.py --quick --scenario uniform3/burst --sizes 100 --no-micro

The matrix (scenarios, N, clients, skipped combinations) is in `_scenarios.py`.
Every run gets a fresh emulator process (`_server.py`, uvicorn on 127.0.0.1) and
a fresh client process (`_client_worker.py`), so CPU and memory are each side's
own; every worker has a deadline, after which it stops and reports what it has.
Every child process is stopped at the end, also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, NoReturn

import _charts
import _metrics
import _micro
import _report
import _scenarios
import httpx
from _report import Collected
from _scenarios import Client, Scenario

HERE = Path(__file__).resolve().parent
SERVER = HERE / "_server.py"
WORKER = HERE / "_client_worker.py"
# Memory runs: at most this N (the RSS target of issue 6 is set at N = 5000).
MEMORY_MAX_N = 5000
SERVER_START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

_children: set[subprocess.Popen[bytes]] = set()


# --- child processes --------------------------------------------------------------------------


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a child (SIGTERM), then kill it if it lingers; always reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _children.discard(proc)


def stop_all() -> None:
    for proc in list(_children):
        _stop(proc)


def _spawn(args: list[str], stdout: int, stderr: IO[bytes] | int) -> subprocess.Popen[bytes]:
    # Only ever this interpreter running one of our own scripts with our own arguments.
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, *args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
    )
    _children.add(proc)
    return proc


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    box: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: box.put(stream.readline()), daemon=True).start()
    try:
        return box.get(timeout=timeout)
    except queue.Empty:
        return b""


class Server:
    """A fresh emulator process on a free loopback port, for one run."""

    def __init__(
        self, distribution: _scenarios.Distribution, seed: int = 1, extra: tuple[str, ...] = ()
    ) -> None:
        self.args = [str(SERVER), *distribution.server_args(), f"--seed={seed}", *extra]
        # The emulator's stderr, shown if it fails; closed in __exit__.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> Server:
        try:
            self.proc = _spawn(self.args, subprocess.PIPE, self.log)
            assert self.proc.stdout is not None
            line = _read_line(self.proc.stdout, SERVER_START_TIMEOUT)
            if not line:
                self._fail("did not start")
            self.url = f"http://127.0.0.1:{json.loads(line)['port']}"
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            _stop(self.proc)
        self.log.close()

    def records(self) -> dict[str, Any]:
        """Tasks, poll times, counters and CPU seconds (the benchmark-only route)."""
        response = httpx.get(f"{self.url}/_bench/tasks", timeout=60.0)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def _fail(self, what: str) -> NoReturn:
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"the emulator {what}:\n{tail}")


def run_worker(
    url: str, client: Client, n: int, deadline: float, *, span: float = 0.0, memory: bool = False
) -> dict[str, Any]:
    """Run one client in its own process and return its JSON record."""
    args = [str(WORKER), *client.args, f"--url={url}", f"--n={n}", f"--deadline={deadline}"]
    args += [f"--span={span}"] + (["--memory"] if memory else [])
    proc = _spawn(args, subprocess.PIPE, subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=deadline + 60.0)  # the worker stops itself first
    finally:
        _stop(proc)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(
            f"{client.label} worker failed ({proc.returncode}):\n{err.decode()[-3000:]}"
        )
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


# --- scenarios --------------------------------------------------------------------------------


Measured = tuple[dict[str, float], list[float], dict[str, Any]]  # metrics, lags, settings


def run_once(scenario: Scenario, client: Client, n: int, seed: int) -> Measured:
    """One client, one N, one fresh emulator: its metrics, every task's lag, its settings."""
    with Server(scenario.distribution, seed) as server:
        worker = run_worker(server.url, client, n, scenario.deadline(n), span=scenario.arrival.span)
        records = server.records()
    metrics = _metrics.analyse(worker, records)
    print_run(scenario, client, n, metrics)
    return metrics, _metrics.lags(worker, records), worker.get("settings", {})


def print_run(scenario: Scenario, client: Client, n: int, metrics: dict[str, float]) -> None:
    """One progress line per run."""
    note = _report.note(metrics)
    print(
        f"  {scenario.name:<17} N={n:<6} {client.label:<34} wall {metrics['wall']:6.2f} s  "
        f"status/task {metrics['status_per_task']:.3f}  lag p50/p95/max "
        f"{metrics['lag_p50']:.2f}/{metrics['lag_p95']:.2f}/{metrics['lag_max']:.2f} s  "
        f"CPU/task {metrics['cpu_ms_per_task']:.2f} ms  RSS {metrics['rss_peak_mb']:.0f} MiB"
        + (f"  [{note}]" if note else ""),
        flush=True,
    )


def repeats_for(scenario: Scenario, n: int, repeats: int) -> int:
    """Runs per client: ``repeats`` for the targets scenario below N = 5000, else one."""
    return repeats if scenario.name == _scenarios.TARGETS and n < 5000 else 1


def clients_for(scenario: Scenario, n: int, args: Any) -> list[Client]:
    """The clients chosen for this run, plus the previous defaults where asked for."""
    chosen = list(args.clients)
    if args.previous and scenario.name == _scenarios.TARGETS and n >= 1000:
        chosen.append(_scenarios.PREVIOUS_CLIENT)
    return chosen


def run_size(scenario: Scenario, n: int, args: Any, collected: Collected) -> None:
    """Every client at one N of a scenario, alternating within each repeat."""
    runs: dict[str, list[dict[str, float]]] = {}
    lags: dict[str, list[float]] = {}
    for repeat in range(repeats_for(scenario, n, args.repeats)):
        # Clients alternate within a repeat, so slow drifts of the machine hit all alike;
        # the same seed gives every client the same sequence of task latencies.
        for client in clients_for(scenario, n, args):
            why = _scenarios.skip_reason(client, n)
            if why is not None:
                if repeat == 0:
                    collected.skipped.append((scenario.name, n, client.label, why))
                continue
            metrics, lag, used = run_once(scenario, client, n, seed=repeat + 1)
            runs.setdefault(client.label, []).append(metrics)
            lags.setdefault(client.label, lag)  # the first repeat's
            if "feed" in used:  # differs by arrival, so it is reported apart
                collected.feeds.add(f"{scenario.arrival.name}: `{used.pop('feed')}`")
            collected.settings[client.label] = used
    collected.results.setdefault(scenario.name, {})[n] = {
        label: _metrics.median_of(r) for label, r in runs.items()
    }
    collected.lags.setdefault(scenario.name, {})[n] = lags


def run_scenarios(scenarios: list[Scenario], args: Any) -> Collected:
    collected = Collected()
    for scenario in scenarios:
        collected.about[scenario.name] = scenario.about
        for n in scenario.sizes:
            run_size(scenario, n, args, collected)
    return collected


def run_variants() -> dict[str, dict[str, float]]:
    """picpik_async against each way the running list may bend (issue 13's fallbacks)."""
    scenario = _scenarios.VARIANT_SCENARIO
    (n,) = scenario.sizes
    ours = next(c for c in _scenarios.CLIENTS if c.label == _scenarios.OURS)
    results: dict[str, dict[str, float]] = {}
    for variant in _scenarios.VARIANTS:
        with Server(scenario.distribution, extra=tuple(variant.server_args())) as server:
            worker = run_worker(server.url, ours, n, scenario.deadline(n))
            records = server.records()
        metrics = _metrics.analyse(worker, records)
        metrics["tasks_created"] = records["tasks_created"]
        metrics["duplicate_tasks"] = records.get("duplicate_tasks", math.nan)
        results[variant.name] = metrics
        print(
            f"  running list {variant.name:<13} N={n:<5} returned {metrics['completed']:.0f}, "
            f"errors {metrics['errors']:.0f}, created {metrics['tasks_created']:.0f}, "
            f"duplicates {metrics['duplicate_tasks']:.0f}, status/task "
            f"{metrics['status_per_task']:.3f}, lag p95 {metrics['lag_p95']:.2f} s",
            flush=True,
        )
    return results


def run_memory(clients: tuple[Client, ...], n: int) -> dict[str, dict[str, float]]:
    memory: dict[str, dict[str, float]] = {}
    deadline = 60.0 + 0.1 * n  # far beyond any expected run; the worker stops itself
    for client in clients:
        with Server(_scenarios.MEMORY) as server:
            worker = run_worker(server.url, client, n, deadline, memory=True)
        memory[client.label] = _metrics.analyse_memory(worker)
        print(
            f"  memory N={n:<5} {client.label:<34} all pending after "
            f"{memory[client.label]['seconds_to_all_pending']:.1f} s, "
            f"{memory[client.label]['rss_kb_per_pending_task']:.2f} KiB per pending task",
            flush=True,
        )
    return memory


def write_charts(collected: Collected, output: Path, mode: str) -> list[tuple[str, str]] | str:
    """Draw the charts next to the report; their relative links, or why there are none."""
    try:
        written = _charts.write(collected, output.parent / "charts", mode)
    except ImportError:
        why = f"charts skipped: matplotlib is not installed; {_charts.INSTALL_HINT}"
        print(why, flush=True)
        return why
    for _, path in written:
        print(f"chart written to {path}", flush=True)
    return [(title, os.path.relpath(path, output.parent)) for title, path in written]


# --- the report's set-up section ---------------------------------------------------------------


def setup_lines(scenarios: list[Scenario], args: Any, collected: Collected) -> list[str]:
    settings = collected.settings
    ours = settings.get(_scenarios.OURS, {})
    batched = settings.get(_scenarios.BATCHED, {})
    connections = next((s["connections"] for s in settings.values() if "connections" in s), "?")
    lines = [
        "- emulator: `picpik_async.testing.Emulator(latency=..., queue_share=..., seed=...)`, "
        "served by uvicorn (h11 with TCP_NODELAY, asyncio, no access log) on 127.0.0.1 in its "
        "own process; a fresh process for every run; the same seed gives every client the "
        "same sequence of task latencies",
        *(
            f"- scenario `{s.name}` (N = {', '.join(str(n) for n in s.sizes)}): "
            f"{s.about}; latency spec `{s.distribution.spec}`"
            for s in scenarios
        ),
        "- arrivals: burst = all N prompts handed over at t0; steady = the prompts come "
        "from an async generator that releases one every span / N seconds "
        f"({_scenarios.STEADY.span:g} s for all N)",
        f"- repeats: {_repeats_line(args)}; every worker stops at its deadline "
        "(the scenario's arrival span + its longest task + 30 s + N / 100 s) and reports "
        "what it has",
        "- picpik_async: `client.generate_many(prompts, max_concurrency=N, width=64, "
        "height=64)` on an `AsyncClient` with the library's defaults, images not downloaded; "
        + (_report.describe_settings(ours) if ours else "default settings"),
        "- how picpik_async got its prompts: "
        + "; ".join(sorted(collected.feeds))
        + " (a steady arrival goes to `generate_many` as an async generator where it takes "
        "one, else to one `generate()` per prompt as it comes, on the same client)",
        f"- {_scenarios.BATCHED}: the same client with "
        + (
            "`PollSettings(running_set=False)` (the batched per-task schedule)"
            if _scenarios.has_running_set()
            else "the library's defaults: this picpik_async has no `PollSettings.running_set`, "
            "so its default poller is the batched one"
        )
        + ("; " + _report.describe_settings(batched) if batched else ""),
    ]
    if _scenarios.PREVIOUS in settings:
        lines.append(
            f"- {_scenarios.PREVIOUS} ({_scenarios.TARGETS}, N >= 1000, and the memory runs): "
            "the same client with `AsyncClient(poll=PollSettings(poll_growth=1.5), "
            "submit_concurrency=1_000_000)`, the defaults before issue 6 (a cap above any N "
            "is no cap)"
        )
    return [
        *lines,
        "- per-task polling: one `httpx.AsyncClient` "
        f"(max_connections = keep-alive = {connections}), "
        "bodies signed with `picpik_async.sign` and written with the library's `dumps`; "
        "each job submits, then sleeps the interval and sends `ListTasksDetails([uid])` "
        "until the task is over (replicate's and openai-python's loops at 0.5 s and 1 s, "
        "fal-client's at 0.1 s); with a steady arrival a job starts as its prompt comes",
        "- the tasks are 64x64 SDXL generations; the emulator checks every signature",
        f"- memory runs (N = {memory_size(scenarios)}): every task takes "
        f"{_scenarios.MEMORY.longest:.0f} s, so that all N tasks are pending at once; the "
        "per-task loops poll every 60 s there",
    ]


def _repeats_line(args: Any) -> str:
    if args.repeats <= 1:
        return "one run per client, scenario and N"
    return (
        f"{_scenarios.TARGETS} at N < 5000: each metric is the median of {args.repeats} runs; "
        "everything else: one run"
    )


def memory_size(scenarios: list[Scenario]) -> int:
    """The N of the memory runs: the largest N of the run, at most `MEMORY_MAX_N`."""
    return min(MEMORY_MAX_N, max(n for s in scenarios for n in s.sizes))


def print_matrix(scenarios: list[Scenario], args: Any) -> None:
    """What the run would do (``--list``)."""
    for scenario in scenarios:
        for n in scenario.sizes:
            repeats = repeats_for(scenario, n, args.repeats)
            print(
                f"{scenario.name} N={n} ({repeats} run(s) each, deadline "
                f"{scenario.deadline(n):.0f} s):"
            )
            for client in clients_for(scenario, n, args):
                why = _scenarios.skip_reason(client, n)
                print(f"    {client.label:<34} {'SKIPPED: ' + why if why else 'runs'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="picpik_async vs per-task polling benchmark.")
    parser.add_argument(
        "--quick", action="store_true", help="the quick matrix (_scenarios.QUICK); one run each"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="DIST/ARRIVAL",
        help="run only this scenario, e.g. lognormal/steady (repeatable); "
        f"distributions: {', '.join(_scenarios.DISTRIBUTIONS)}; "
        f"arrivals: {', '.join(_scenarios.ARRIVALS)}",
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="run every scenario at these N")
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=[c.key for c in _scenarios.CLIENTS],
        help="run only these clients (default: all)",
    )
    parser.add_argument(
        "--repeats", type=int, help=f"runs per client for {_scenarios.TARGETS} at N < 5000"
    )
    parser.add_argument(
        "--previous",
        action="store_true",
        help=f"also run picpik_async with its pre-issue-6 defaults ({_scenarios.TARGETS}, "
        "N >= 1000, and the memory runs)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="skip the running-list variants (refused, omits queued, drops early, lags)",
    )
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    parser.add_argument("--no-charts", action="store_true", help="draw no PNG charts")
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the report (default: RESULTS.md, or RESULTS-quick.md with --quick)",
    )
    args = parser.parse_args(argv)
    if args.sizes and any(n < 1 or n > 20_000 for n in args.sizes):
        parser.error("N must be in 1..20000")
    try:
        matrix = _scenarios.QUICK if args.quick else _scenarios.FULL
        args.scenarios = _scenarios.select(matrix, args.scenario, args.sizes)
    except ValueError as error:
        parser.error(str(error))
    wanted = args.clients or [c.key for c in _scenarios.CLIENTS]
    args.clients = [c for c in _scenarios.CLIENTS if c.key in wanted]
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.output = args.output or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    return args


def measure(args: argparse.Namespace) -> tuple[Collected, dict[str, Any], str | None]:
    """Every timed run, the memory runs and the micro-benchmarks."""
    collected = run_scenarios(args.scenarios, args)
    if not args.no_variants:
        collected.variants = run_variants()
    memory: dict[str, Any] = {}
    if not args.no_memory:
        previous = (_scenarios.PREVIOUS_CLIENT,) if args.previous else ()
        clients = (*_scenarios.MEMORY_CLIENTS, *previous)
        memory = run_memory(clients, memory_size(args.scenarios))
    micro = None
    if not args.no_micro:
        print("micro-benchmarks of the pure core ...", flush=True)
        micro = _micro.table(_micro.run(quick=args.quick))
    return collected, memory, micro


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    if args.list:
        print_matrix(args.scenarios, args)
        return
    # Ctrl-C and SIGTERM end the run through the `finally` that stops the children,
    # even when a shell started us in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = os.getloadavg()
    source_before = _report.source_fingerprint()
    started = time.monotonic()
    names = ", ".join(s.name for s in args.scenarios)
    print(f"picpik_async benchmark, {mode} mode: {names}", flush=True)
    try:
        collected, memory, micro = measure(args)
    finally:
        stop_all()
    charts: list[tuple[str, str]] | str = "charts not drawn (--no-charts)"
    if not args.no_charts:
        charts = write_charts(collected, args.output, mode)
    text = _report.document(
        mode=mode,
        setup=setup_lines(args.scenarios, args, collected),
        machine_lines=_report.machine(load_before, source_before),
        collected=collected,
        memory=memory,
        micro=micro,
        charts=charts,
        analysis=_report.previous_analysis(args.output),
        elapsed=time.monotonic() - started,
    )
    print()
    print(text.split("## Definitions")[0].rstrip())
    args.output.write_text(text)
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; every child process was stopped", file=sys.stderr)
        sys.exit(130)
