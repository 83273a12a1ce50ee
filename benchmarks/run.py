"""Benchmark: picpik_async's batched poller against per-task polling, on a loopback emulator.

Issue 6: "We claim that our client costs far less than the way every other SDK
polls (one status request per job per interval: openai-python, replicate,
fal-client and Runware all do that). Prove it with numbers a reader can reproduce."

Usage, from the repository root after ``pip install ".[cli,emulator]"``::

    python benchmarks/run.py --quick     # N = 100, 1000; under two minutes; RESULTS-quick.md
    python benchmarks/run.py             # N = 100, 1000, 5000; writes benchmarks/RESULTS.md

Every run gets a fresh emulator process (`_server.py`, uvicorn on 127.0.0.1) and
a fresh client process (`_client_worker.py`), so CPU and memory are each side's
own. Task latency is 3 s ± 10 % (uniform). Every child process is stopped at the
end, also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
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

import _metrics
import _micro
import _report
import httpx

HERE = Path(__file__).resolve().parent
SERVER = HERE / "_server.py"
WORKER = HERE / "_client_worker.py"
# (label, worker arguments): the three clients of every scenario.
Spec = tuple[str, tuple[str, ...]]
CLIENTS: tuple[Spec, ...] = (
    (_report.OURS, ("--client=picpik",)),
    (_report.PER_TASK_FAST, ("--client=per-task", "--interval=0.5")),
    (_report.PER_TASK_SLOW, ("--client=per-task", "--interval=1")),
)
# Before/after (full mode, N >= 1000): picpik_async with the defaults it had before
# issue 6 (poll_growth 1.5, no cap on submits in flight), run alongside the three above.
PREVIOUS: Spec = (_report.PREVIOUS, ("--client=picpik", "--previous-defaults"))
# Memory runs: tasks outlast the run, so all N end up pending at once. The per-task
# loops poll once a minute there, so that polling does not starve their own submits;
# a sleeping poll loop holds the same objects whatever its interval.
MEMORY_LATENCY = 600.0
MEMORY_CLIENTS: tuple[Spec, ...] = (
    (_report.OURS, ("--client=picpik",)),
    (_report.PER_TASK_SLOW, ("--client=per-task", "--interval=60")),
)
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

    def __init__(self, latency: float, spread: float, seed: int = 1) -> None:
        self.args = [
            str(SERVER),
            f"--latency={latency}",
            f"--spread={spread}",
            f"--seed={seed}",
        ]
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


def run_worker(url: str, spec: Spec, n: int, *, memory: bool = False) -> dict[str, Any]:
    """Run one client in its own process and return its JSON record."""
    deadline = 60.0 + 0.1 * n  # far beyond any expected run; the worker stops itself
    label, options = spec
    args = [str(WORKER), *options, f"--url={url}", f"--n={n}", f"--deadline={deadline}"]
    args += ["--memory"] if memory else []
    proc = _spawn(args, subprocess.PIPE, subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=deadline + 30.0)
    finally:
        _stop(proc)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"{label} worker failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


# --- scenarios --------------------------------------------------------------------------------


def run_once(spec: Spec, n: int, args: Any, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    with Server(args.latency, args.spread, seed) as server:
        worker = run_worker(server.url, spec, n)
        records = server.records()
    metrics = _metrics.analyse(worker, records)
    print(
        f"  N={n:<5} {spec[0]:<26} wall {metrics['wall']:6.2f} s  "
        f"status/task {metrics['status_per_task']:.3f}  lag p95 {metrics['lag_p95']:.2f} s  "
        f"CPU/task {metrics['cpu_ms_per_task']:.2f} ms  "
        f"peak RSS {metrics['rss_peak_mb']:.0f} MiB  errors {worker['errors']}",
        flush=True,
    )
    return metrics, worker.get("settings", {})


Results = dict[int, dict[str, dict[str, float]]]


def run_scenarios(sizes: list[int], args: Any) -> tuple[Results, Any]:
    by_n: Results = {}
    settings: dict[str, Any] = {}
    for n in sizes:
        repeats = 1 if n >= 5000 else args.repeats
        specs = CLIENTS + ((PREVIOUS,) if args.previous and n >= 1000 else ())
        runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in specs}
        for repeat in range(repeats):
            # Clients alternate within a repeat, so slow drifts of the machine hit all alike;
            # the same seed gives every client the same sequence of task latencies.
            for spec in specs:
                metrics, used = run_once(spec, n, args, seed=repeat + 1)
                runs[spec[0]].append(metrics)
                settings[spec[0]] = used
        by_n[n] = {label: _metrics.median_of(r) for label, r in runs.items()}
    return by_n, settings


def run_memory(specs: tuple[Spec, ...], n: int) -> dict[str, dict[str, float]]:
    memory: dict[str, dict[str, float]] = {}
    for spec in specs:
        label = spec[0]
        with Server(MEMORY_LATENCY, 0.0) as server:
            worker = run_worker(server.url, spec, n, memory=True)
        memory[label] = _metrics.analyse_memory(worker)
        print(
            f"  memory N={n:<5} {label:<26} all pending after "
            f"{memory[label]['seconds_to_all_pending']:.1f} s, "
            f"{memory[label]['rss_kb_per_pending_task']:.2f} KiB per pending task",
            flush=True,
        )
    return memory


def setup_lines(args: Any, settings: dict[str, Any]) -> list[str]:
    sizes = ", ".join(str(n) for n in args.sizes)
    ours = settings.get(_report.OURS, {})
    connections = settings.get(_report.PER_TASK_FAST, {}).get("connections", "?")
    repeats = (
        f"N < 5000: each metric is the median of {args.repeats} runs, N >= 5000: one run"
        if args.repeats > 1
        else "one run per scenario"
    )
    lines = [
        f"- emulator: `picpik_async.testing.Emulator(latency=jittered({args.latency}, "
        f"spread={args.spread}))` (uniform), served by uvicorn (h11, asyncio, no access log) "
        "on 127.0.0.1 in its own process; a fresh process for every run",
        f"- N concurrent prompts: {sizes}; each client in its own process; {repeats}",
        "- picpik_async: `client.generate_many(prompts, max_concurrency=N, width=64, "
        "height=64)` on an `AsyncClient` with the library's defaults, images not downloaded; "
        + (_report.describe_settings(ours) if ours else "default settings"),
    ]
    if _report.PREVIOUS in settings:
        lines.append(
            f"- {_report.PREVIOUS} (N >= 1000 and the memory runs): the same client with "
            "`AsyncClient(poll=PollSettings(poll_growth=1.5), submit_concurrency=1_000_000)`, "
            "the defaults before issue 6 (a cap above any N is no cap)"
        )
    return [
        *lines,
        "- per-task polling: one `httpx.AsyncClient` "
        f"(max_connections = keep-alive = {connections}), "
        "bodies signed with `picpik_async.sign` and written with the library's `dumps`; "
        "each job submits, then sleeps the interval and sends `ListTasksDetails([uid])` "
        "until the task is over (replicate's and openai-python's poll loops)",
        "- the tasks are 64x64 SDXL generations; the emulator checks every signature",
        f"- memory runs (N = {max(args.sizes)}): emulator latency {MEMORY_LATENCY:.0f} s, so "
        "that all N tasks are pending at once; the per-task loops poll every 60 s there",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="picpik_async vs per-task polling benchmark.")
    parser.add_argument("--quick", action="store_true", help="N = 100, 1000; one run each")
    parser.add_argument("--sizes", type=int, nargs="+", help="override the N values")
    parser.add_argument("--repeats", type=int, help="runs per scenario for N < 5000")
    parser.add_argument("--latency", type=float, default=3.0, help="task latency, seconds")
    parser.add_argument("--spread", type=float, default=0.1, help="latency jitter, fraction")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    parser.add_argument(
        "--no-previous",
        action="store_true",
        help="skip picpik_async with its previous defaults (full mode runs it at N >= 1000)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the report (default: RESULTS.md, or RESULTS-quick.md with --quick)",
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([100, 1000] if args.quick else [100, 1000, 5000])
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.previous = not (args.quick or args.no_previous)
    args.output = args.output or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    if any(n < 1 or n > 20_000 for n in args.sizes):
        parser.error("N must be in 1..20000")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    # Ctrl-C and SIGTERM end the run through the `finally` that stops the children,
    # even when a shell started us in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = os.getloadavg()
    source_before = _report.source_fingerprint()
    started = time.monotonic()
    try:
        print(f"picpik_async benchmark, {mode} mode: N in {args.sizes}", flush=True)
        by_n, settings = run_scenarios(args.sizes, args)
        memory = run_memory(
            MEMORY_CLIENTS + ((PREVIOUS,) if args.previous else ()), max(args.sizes)
        )
        micro = None
        if not args.no_micro:
            print("micro-benchmarks of the pure core ...", flush=True)
            micro = _micro.table(_micro.run(quick=args.quick))
    finally:
        stop_all()
    text = _report.document(
        mode=mode,
        setup=setup_lines(args, settings),
        machine_lines=_report.machine(load_before, source_before),
        by_n=by_n,
        memory=memory,
        micro=micro,
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
