"""The figures and the Markdown report of `distributed.py`.

`summarise` turns one configuration's raw records (`distributed.Measured`) into
plain numbers; `document` writes the report; `profile_table` reads py-spy's raw
collapsed stacks. No process is started here.

Definitions (also written into the report):

- **wall**: seconds from starting `picpik batch` until it exited (its start-up, adding
  the rows, deferring the jobs, the work, the final table it prints); **prompts/s** is
  prompts / wall.
- **ledger ops/prompt**: the sum of the ``ledger: N operations`` lines printed by every
  process (each counts its own ledger transactions), divided by the prompts.
- **status req/task**: ListTasksDetails + ListRunningTasks requests the emulator
  received, divided by the tasks it created.
- **duplicates**: prompts the emulator created more than one task for (from each task's
  prompt, in the emulator's own records); must be 0. **missing**: prompts with no task.
- **credits**: what the emulator charged (`credits.used`) / what the ledger recorded
  (`picpik runs --json`, summed over the runs of the configuration's database).
- **CPU s**: a picpik process's own user + system seconds (``os.wait4``); the emulator's
  (``getrusage`` in its process, from ``/_bench/tasks``); PostgreSQL's (the postmaster,
  its exited backends and its live children, from ``/proc``); **other**: what the whole
  machine was busy for meanwhile (``/proc/stat``) minus all of those, i.e. this script and
  anything else running on the machine. **machine busy** is the machine's busy time over
  wall x cores; **busy before**, the same over the 5 s before the configuration started
  (it waits for a quiet machine, `--idle-wait`).
- **jobs queued**: when the first of the run's jobs was in ``procrastinate_jobs``
  (workers are started then); **first task** / **last task done**: the emulator's
  creation time of the first task and the time the last task reached its outcome;
  **tail**: from the last task done until the batch exited (detecting it, downloading,
  settling, the batch's end-of-run check, printing the table of every prompt).
  **steady prompts/s**: prompts / (last task done - first task created).
"""

from __future__ import annotations

import datetime
import math
import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _report

if TYPE_CHECKING:
    from distributed import Child, Measured, Settings

#: The packages whose versions the report gives, besides `_report.PACKAGES`.
PACKAGES = ("psycopg", "psycopg-pool", "procrastinate", "rich", "click")
#: A py-spy sample whose innermost frame is one of these is a thread waiting, not working.
IDLE_FRAMES = (".wait (threading.py", ".select (selectors.py", ".get (queue.py", "sleep (")
PROFILE_ROWS = 10
#: The lines the picpik processes end with (read after undoing rich's wrapping).
LEDGER_LINE = re.compile(r"ledger: (\d+) operations")
BATCH_LINE = re.compile(
    r"submitted (\d+), done (\d+) \(skipped \d+\), failed (\d+), "
    r"unknown outcome (\d+), pending (\d+)"
)
WORKER_LINE = re.compile(
    r"worker: submitted (\d+), done (\d+), failed (\d+), unknown outcome (\d+)"
)


# --- figures ---------------------------------------------------------------------------------


def summarise(measured: Measured) -> dict[str, Any]:
    """The figures of one configuration, as plain numbers, lists and dicts."""
    batch = measured.batch
    children = [batch, *measured.workers]
    prompts = len(measured.expected)
    wall = batch.ended - batch.started
    summary: dict[str, Any] = {
        "processes": measured.processes,
        "prompts": prompts,
        "wall": wall,
        "rate": prompts / wall,
        "timed_out": measured.timed_out,
        "exit_codes": [child.returncode for child in children],
        "postgres_version": measured.postgres_version,
        "images": measured.images,
        "runs": _run_totals(measured.runs),
        "left": measured.left,
        "complaints": {child.name: child.complaints for child in children},
        "profiles": {
            name: profile_table(path, _cpu_of(measured, name), emulator=name == "emulator")
            for name, path in measured.profiles.items()
        },
    }
    summary |= _ledger_figures(children, prompts)
    summary |= _emulator_figures(measured)
    summary |= _timeline(measured, wall)
    summary |= _cpu_figures(measured, children, wall)
    return summary


def _ledger_figures(children: Sequence[Child], prompts: int) -> dict[str, Any]:
    outputs = [child.output for child in children]
    operations = [_last_int(LEDGER_LINE, text) for text in outputs]
    submitted = [_last_int(BATCH_LINE, outputs[0])]
    submitted += [_last_int(WORKER_LINE, text) for text in outputs[1:]]
    known = [n for n in operations if n is not None]
    return {
        "names": [child.name for child in children],
        "ledger_ops": operations,
        "ledger_per_prompt": sum(known) / prompts if len(known) == len(operations) else math.nan,
        "submitted": submitted,
        "summary_line": _last_match(BATCH_LINE, outputs[0]),
    }


def _emulator_figures(measured: Measured) -> dict[str, Any]:
    records, asked = measured.tasks, measured.prompts
    requests: dict[str, int] = records["requests"]
    status = requests.get("ListTasksDetails", 0) + requests.get("ListRunningTasks", 0)
    created = records["tasks_created"]
    per_prompt = Counter(task["prompt"] for task in asked["tasks"])
    return {
        "requests": requests,
        "status_requests": status,
        "status_per_task": status / created if created else math.nan,
        "tasks_created": created,
        "duplicates": sum(1 for n in per_prompt.values() if n > 1),
        "extra_tasks": sum(n - 1 for n in per_prompt.values() if n > 1),
        "missing": len(set(measured.expected) - per_prompt.keys()),
        "strangers": len(per_prompt.keys() - set(measured.expected)),
        "uuid_max": asked["tasks_per_request_uuid_max"],
        "credits_emulator": asked["credits_used"],
        "credits_ledger": sum(run["credits"] for run in measured.runs),
    }


def _timeline(measured: Measured, wall: float) -> dict[str, float]:
    """Seconds after the batch started (the emulator's clock is the same CLOCK_MONOTONIC)."""
    start = measured.batch.started
    tasks = measured.tasks["tasks"].values()
    first = min((task["created"] for task in tasks), default=math.nan)
    last = max((task["done"] for task in tasks), default=math.nan)
    return {
        "jobs_queued": measured.jobs_deferred - start,
        "first_task": first - start,
        "last_done": last - start,
        "tail": wall - (last - start),
        "steady_rate": len(measured.expected) / (last - first) if last > first else math.nan,
    }


def _cpu_figures(measured: Measured, children: Sequence[Child], wall: float) -> dict[str, Any]:
    picpik = [child.cpu_seconds for child in children]
    emulator = float(measured.tasks["cpu_seconds"])
    measured_total = sum(picpik) + emulator + measured.postgres_cpu + measured.sampler_cpu
    cores = os.cpu_count() or 1
    return {
        "cpu": picpik,
        "rss": [child.max_rss_mib for child in children],
        "cpu_picpik": sum(picpik),
        "cpu_emulator": emulator,
        "cpu_postgres": measured.postgres_cpu,
        "cpu_sampler": measured.sampler_cpu,
        "cpu_other": measured.machine_busy - measured_total,
        "busy_before": measured.busy_before,
        "busy_share": measured.machine_busy / (wall * cores),
    }


def _cpu_of(measured: Measured, name: str) -> float:
    if name == "emulator":
        return float(measured.tasks["cpu_seconds"])
    return measured.batch.cpu_seconds if name == "batch" else math.nan


def _run_totals(runs: Iterable[dict[str, Any]]) -> dict[str, int]:
    keys = ("total", "finished", "failed", "unknown", "pending", "credits")
    runs = list(runs)
    return {key: sum(run[key] for run in runs) for key in keys} | {"runs": len(runs)}


def _last_match(pattern: re.Pattern[str], text: str) -> str:
    found = list(pattern.finditer(text))
    return found[-1].group(0) if found else "(not found)"


def _last_int(pattern: re.Pattern[str], text: str) -> int | None:
    found = list(pattern.finditer(text))
    return int(found[-1].group(1)) if found else None


# --- py-spy profiles ---------------------------------------------------------------------------


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw output: one ``frame;frame;...;frame count`` line per distinct stack."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _where(frame: str) -> str:
    """``Cls.fn (psycopg/_cursor_base.py:602)`` -> ``psycopg``; picpik_async by module."""
    path = frame.rpartition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    if parts[0] == "picpik_async":
        return "/".join([*parts[:-1], parts[-1].removesuffix(".py")])
    return parts[0].removesuffix(".py")


#: What a picpik process's sample was doing: the first activity one of whose markers is in
#: one of its frames. The ledger comes first (a claim or settle inside a submit or a
#: download is the ledger's); Procrastinate after the work its jobs run (a job's frames
#: hold procrastinate/worker.py), so that it keeps only its own polling and heartbeats.
CLIENT_ACTIVITIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ledger transactions (PostgresLedger, psycopg)", ("PostgresLedger.",)),
    ("console output (rich: a line per prompt, the final table)",
     ("rich/", "_BatchView", "_print_batch_table")),
    ("gallery page (index.html)", ("_gallery",)),
    ("downloading and saving images", ("Downloader.", "GeneratedImage.save")),
    ("status polling (TaskWaiter, ListTasksDetails)", ("_waiter.py", "_polling.py")),
    ("submits (GenerateImagesSDXL)", ("AsyncClient.submit",)),
    ("Procrastinate's own work (fetching jobs, heartbeats)", ("procrastinate/",)),
    ("other psycopg (connection pools)", ("psycopg",)),
    ("worker threads (file writes through anyio.to_thread)", ("WorkerThread.run",)),
)  # fmt: skip
EMULATOR_ACTIVITIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("drawing result images (PIL: the caption, PNG encoding)", ("render_png", "PIL/")),
    ("API requests (signature check, task state, JSON)", ("_service.py", "_app.py")),
    ("HTTP serving (uvicorn, h11, starlette)", ("uvicorn/", "h11/", "starlette/")),
)


def _activity(frames: list[str], activities: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    for name, markers in activities:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return "other (event loop, start-up)"


def profile_table(path: Path, cpu_seconds: float, *, emulator: bool) -> str:
    """Where a process's busy samples were: by activity, and by the package of the
    innermost frame, with the CPU seconds they stand for."""
    busy = [
        (frames, n)
        for frames, n in read_stacks(path)
        if not any(idle in frames[-1] for idle in IDLE_FRAMES)
    ]
    total = sum(n for _, n in busy)
    if not total:
        return "_no samples_"
    activities = EMULATOR_ACTIVITIES if emulator else CLIENT_ACTIVITIES
    by_activity: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    for frames, n in busy:
        by_activity[_activity(frames, activities)] += n
        by_package[_where(frames[-1])] += n
    lines = ["| activity | share | ~CPU s |", "|---|---:|---:|"]
    lines += [_share_row(name, n, total, cpu_seconds) for name, n in by_activity.most_common()]
    lines += ["", "| innermost frame in | share | ~CPU s |", "|---|---:|---:|"]
    top = by_package.most_common(PROFILE_ROWS)
    lines += [_share_row(f"`{name}`", n, total, cpu_seconds) for name, n in top]
    return "\n".join(lines)


def _share_row(name: str, n: int, total: int, cpu_seconds: float) -> str:
    share = n / total
    cpu = "n/a" if math.isnan(cpu_seconds) else f"{share * cpu_seconds:.1f}"
    return f"| {name} | {share:.1%} | {cpu} |"


# --- the document ------------------------------------------------------------------------------


def document(
    *,
    settings: Settings,
    summaries: list[dict[str, Any]],
    machine_lines: list[str],
    git_line: str,
    elapsed: float,
    analysis: str | None,
) -> str:
    """The whole report."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/distributed.py" + (" --quick" if settings.quick else "")
    parts = [
        "# Distributed batch runs: `picpik batch` + `picpik worker` on a PostgreSQL ledger",
        "",
        f"Written by `{command}` on {now}; the run took {elapsed / 60:.1f} min. Every figure "
        "is measured; rerun the command to reproduce.",
        "",
        "## Machine",
        "",
        *machine_lines,
        f"- {_versions(summaries)}",
        f"- {git_line} (at the start of the run); every process ran a copy of picpik_async/ "
        "taken then (PYTHONPATH), so edits to the working tree during the run did not reach "
        "them",
        f"- every process of a configuration (the emulator, PostgreSQL, `picpik batch`, the "
        f"workers) shares these {os.cpu_count()} cores",
        "",
        "## Set-up",
        "",
        *setup_lines(settings),
        "",
        "## Results",
        "",
        results_table(summaries),
        "",
        "### CPU seconds",
        "",
        cpu_table(summaries),
        "",
        "### Per process",
        "",
        process_table(summaries),
        "",
        "### Timeline and checks",
        "",
        timeline_table(summaries),
        "",
        *check_lines(summaries),
        "",
        *profile_sections(summaries, settings.profile_rate),
        "## Definitions",
        "",
        *_definitions(),
        "",
    ]
    return "\n".join(parts + _analysis(analysis))


def git_state() -> str:
    """The checkout measured: its commit, and whether picpik_async/ had changes not committed."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:  # git, with our own arguments
            done = subprocess.run(  # noqa: S603
                ["git", "-C", str(root), *args],  # noqa: S607
                capture_output=True, text=True, check=True, timeout=30,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    commit = git("log", "-1", "--format=%h %s")[:90] or "unknown"
    dirty = git("status", "--porcelain", "--", "picpik_async")
    return f"git: {commit}" + ("; picpik_async/ has changes not committed" if dirty else "")


def _versions(summaries: list[dict[str, Any]]) -> str:
    postgres = summaries[0]["postgres_version"] if summaries else "not run"
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return f"PostgreSQL: {postgres} (tests/_postgres.py's throwaway server); {', '.join(found)}"


def setup_lines(settings: Settings) -> list[str]:
    """How the runs were made."""
    size, seconds, queuing = settings.size, settings.task_seconds, settings.queue_share
    return [
        f"- {settings.prompts} distinct prompts, {size}x{size} images "
        f"(`--width {size} --height {size}`), one a line in a text file",
        f"- emulator: `Emulator(latency=fixed {seconds} s, queue_share={queuing}, "
        f"seed={settings.seed})`: every task takes exactly {seconds} s "
        f"({queuing * seconds:.2f} s queuing), short, so that the runs measure the "
        "client, the ledger and the emulator rather than waiting; served by uvicorn in its own "
        "process (`_distributed_server.py`, i.e. `_server.py`), a fresh one per configuration",
        "- ledger: a fresh PostgreSQL server per configuration (`tests/_postgres.py`: fsync, "
        "synchronous_commit and full_page_writes off), reached through `PICPIK_LEDGER`; the "
        "API address and keys through `PICPIK_BASE_URL`, `PICPIK_PUBLIC_KEY`, "
        "`PICPIK_PRIVATE_KEY`",
        f"- N processes: `picpik batch prompts.txt --out out-batch --job-size {settings.job_size} "
        f"--concurrency {settings.concurrency} --width {size} --height {size}`, plus N - 1 "
        f"`picpik worker --out out-workerI --until-done --concurrency {settings.concurrency} "
        f"--jobs {settings.jobs}`, each with its own output folder (as on separate machines), "
        "started once the batch's jobs are queued",
        f"- per process at most {settings.concurrency} prompts in flight (`--concurrency`) over "
        f"{settings.jobs} jobs of {settings.job_size} prompts (picpik batch runs 4 jobs at once, "
        "a fixed value; the workers' `--jobs`)",
        f"- a configuration that has not finished after {settings.deadline():.0f} s is stopped",
    ]


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return fmt.format(value)


def results_table(summaries: list[dict[str, Any]]) -> str:
    """The headline table: a row per configuration."""
    base = summaries[0]["rate"] if summaries and summaries[0]["processes"] == 1 else math.nan
    lines = [
        "| processes | wall (s) | prompts/s | vs 1 process | ledger ops/prompt | "
        "status req/task | tasks created | duplicates | credits: emulator / ledger | "
        "exit codes |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for s in summaries:
        late = " (stopped at its deadline)" if s["timed_out"] else ""
        lines.append(
            f"| {s['processes']} | {s['wall']:.1f}{late} | {s['rate']:.1f} | "
            f"{_num(s['rate'] / base, '{:.2f}x')} | {_num(s['ledger_per_prompt'], '{:.3f}')} | "
            f"{s['status_per_task']:.4f} | {s['tasks_created']} | {s['duplicates']} | "
            f"{s['credits_emulator']} / {s['credits_ledger']} | "
            f"{', '.join(str(code) for code in s['exit_codes'])} |"
        )
    return "\n".join(lines)


def cpu_table(summaries: list[dict[str, Any]]) -> str:
    """Who used the CPU, and how much per prompt."""
    lines = [
        "| processes | picpik processes | emulator | PostgreSQL | other | machine busy | "
        "busy before | ms/prompt: picpik / emulator / PostgreSQL |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        n = s["prompts"]
        sampler = f" (+ py-spy {s['cpu_sampler']:.1f})" if s["cpu_sampler"] else ""
        lines.append(
            f"| {s['processes']} | {s['cpu_picpik']:.1f}{sampler} | {s['cpu_emulator']:.1f} | "
            f"{s['cpu_postgres']:.1f} | {s['cpu_other']:.1f} | {s['busy_share']:.0%} | "
            f"{_num(s['busy_before'], '{:.0%}')} | "
            f"{1000 * s['cpu_picpik'] / n:.2f} / {1000 * s['cpu_emulator'] / n:.2f} / "
            f"{1000 * s['cpu_postgres'] / n:.2f} |"
        )
    return "\n".join(lines)


def process_table(summaries: list[dict[str, Any]]) -> str:
    """A row per picpik process: what it submitted, its ledger operations, CPU and memory."""
    lines = [
        "| processes | process | submitted | ledger ops | ledger ops/submitted | CPU s | "
        "CPU ms/submitted | peak RSS (MiB) | exit code |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        for i, name in enumerate(s["names"]):
            submitted, ops, cpu = s["submitted"][i], s["ledger_ops"][i], s["cpu"][i]
            per = ops / submitted if ops is not None and submitted else math.nan
            ms = 1000 * cpu / submitted if submitted else math.nan
            lines.append(
                f"| {s['processes']} | {name} | {_num(submitted, '{}')} | {_num(ops, '{}')} | "
                f"{_num(per, '{:.2f}')} | {_num(cpu)} | {_num(ms, '{:.2f}')} | "
                f"{_num(s['rss'][i])} | {s['exit_codes'][i]} |"
            )
    return "\n".join(lines)


def timeline_table(summaries: list[dict[str, Any]]) -> str:
    """When things happened, in seconds after the batch started."""
    lines = [
        "| processes | jobs queued (s) | first task (s) | last task done (s) | tail (s) | "
        "steady prompts/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s['processes']} | {s['jobs_queued']:.2f} | {s['first_task']:.2f} | "
        f"{s['last_done']:.1f} | {s['tail']:.1f} | {_num(s['steady_rate'])} |"
        for s in summaries
    ]
    return "\n".join(lines)


def check_lines(summaries: list[dict[str, Any]]) -> list[str]:
    """The consistency checks, a line per configuration, and what went wrong if anything."""
    lines = []
    for s in summaries:
        lines += [_check_line(s), *_trouble_lines(s)]
    return lines


def _trouble_lines(s: dict[str, Any]) -> list[str]:
    """Rows not finished, jobs left, and what the processes complained about on stderr."""
    lines = [f"  - rows not finished: {n} {state} ({error or 'no error text'})"
             for state, error, n in s["left"].get("rows", [])]  # fmt: skip
    jobs = ", ".join(f"{n} {status} after {attempts} attempt(s)"
                     for status, attempts, n in s["left"].get("jobs", []))  # fmt: skip
    if jobs:
        events = ", ".join(f"{kind} {n}" for kind, n in s["left"].get("events", []))
        lines.append(f"  - jobs left in procrastinate_jobs: {jobs}; their events: {events}")
    for name, complaints in s["complaints"].items():
        if complaints:
            shown = "; ".join(f"`{line[:160]}`" for line in dict.fromkeys(complaints))
            lines.append(f"  - {name}'s stderr, {len(complaints)} line(s): {shown[:1500]}")
    return lines


def _check_line(s: dict[str, Any]) -> str:
    runs = s["runs"]
    requests = ", ".join(f"{name} {n}" for name, n in sorted(s["requests"].items()))
    return (
        f"- {s['processes']} process(es): batch said `{s['summary_line']}`; "
        f"`picpik runs --json`: {runs['runs']} run, total {runs['total']}, finished "
        f"{runs['finished']}, failed {runs['failed']}, unknown {runs['unknown']}, pending "
        f"{runs['pending']}; images saved {s['images']}; prompts with no task "
        f"{s['missing']}, tasks for prompts not in the file {s['strangers']}, extra tasks "
        f"{s['extra_tasks']}, most tasks per request_uuid {s['uuid_max']}; requests: "
        f"{requests}"
    )


def profile_sections(summaries: list[dict[str, Any]], rate: int) -> list[str]:
    """The py-spy tables of a --profile run (nothing otherwise)."""
    parts: list[str] = []
    for s in summaries:
        for name, table in s["profiles"].items():
            parts += [f"### Profile: {name}, {s['processes']} process(es)", "", table, ""]
    if not parts:
        return []
    return [
        f"## Profiles (py-spy, {rate} Hz, --nonblocking)",
        "",
        "Samples in which a thread was busy (a thread waiting in a lock, the selector or a "
        "queue is left out); `~CPU s` spreads the process's CPU seconds over them.",
        "",
        *parts,
    ]


def _definitions() -> list[str]:
    """The definitions of this module's docstring: one text for the code and the report."""
    body = (__doc__ or "").split("Definitions (also written into the report):", 1)[-1]
    return body.strip().splitlines()


def _analysis(analysis: str | None) -> list[str]:
    if analysis:
        return [analysis, ""]
    return [f"{_report.ANALYSIS_START}\n_No analysis written yet._\n{_report.ANALYSIS_END}", ""]
