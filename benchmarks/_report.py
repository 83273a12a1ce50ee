"""The Markdown report: machine, set-up, headline, targets, tables per scenario and N, charts."""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import platform
import re
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import _metrics
import attrs
from _scenarios import (
    LABELS,
    OURS,
    PER_TASK_FAST,
    PER_TASK_SLOW,
    PREVIOUS,
    TARGETS,
    VARIANT_LAG_P95_MAX,
    VARIANT_SCENARIO,
    VARIANTS,
)

# The clients issue 6's targets compare.
TARGET_LABELS = (OURS, PER_TASK_FAST, PER_TASK_SLOW)

ANALYSIS_START = "<!-- analysis:start -->"
ANALYSIS_END = "<!-- analysis:end -->"
PACKAGES = (
    "picpik-async",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "attrs",
    "cattrs",
    "tenacity",
    "starlette",
    "uvicorn",
)

Metrics = dict[str, float]
ByN = dict[int, dict[str, Metrics]]  # N -> client label -> metrics


@attrs.define
class Collected:
    """Everything the timed runs produced, for the report and the charts."""

    results: dict[str, ByN] = attrs.Factory(dict)  # scenario name -> N -> label -> metrics
    # scenario name -> N -> label -> every task's completion lag in the first repeat
    lags: dict[str, dict[int, dict[str, list[float]]]] = attrs.Factory(dict)
    settings: dict[str, dict[str, Any]] = attrs.Factory(dict)  # label -> what the worker used
    skipped: list[tuple[str, int, str, str]] = attrs.Factory(list)  # scenario, N, label, why
    about: dict[str, str] = attrs.Factory(dict)  # scenario name -> its description
    feeds: set[str] = attrs.Factory(set)  # how picpik_async got its prompts, per arrival
    variants: dict[str, Metrics] = attrs.Factory(dict)  # running-list variant -> metrics


# metric key, row name, format, whether "ours / per-task" means something for it
ROWS: tuple[tuple[str, str, str, bool], ...] = (
    ("status_per_task", "status requests per task", "{:.3f}", True),
    ("running_list_per_task", "of which ListRunningTasks per task", "{:.3f}", False),
    ("http_per_task", "HTTP requests per task (all actions)", "{:.3f}", True),
    ("uids_per_status", "TaskUIDs per ListTasksDetails (mean)", "{:.1f}", True),
    ("wall", "wall time (s)", "{:.2f}", True),
    ("ideal", "ideal (s)", "{:.2f}", True),
    ("wall_ratio", "wall / ideal", "{:.3f}", True),
    ("wall_minus_ideal", "wall - ideal (s)", "{:.2f}", True),
    ("submit_span", "submit span (s)", "{:.2f}", True),
    ("submits_per_s", "submits per second", "{:.0f}", True),
    ("lag_p50", "completion lag p50 (s)", "{:.3f}", True),
    ("lag_p95", "completion lag p95 (s)", "{:.3f}", True),
    ("lag_max", "completion lag max (s)", "{:.3f}", True),
    ("interval_p95", "poll interval in effect p95 (s)", "{:.3f}", True),
    ("excess_p95", "lag - interval in effect, p95 (s)", "{:.3f}", False),
    ("delivery_p50", "delivery after the detecting poll p50 (s)", "{:.3f}", True),
    ("delivery_p95", "delivery after the detecting poll p95 (s)", "{:.3f}", True),
    ("poll_gap_p50", "gap between polls of one task p50 (s)", "{:.3f}", True),
    ("cpu_ms_per_task", "client CPU per task (ms)", "{:.2f}", True),
    ("server_cpu_ms_per_task", "emulator CPU per task (ms)", "{:.2f}", True),
    ("rss_baseline_mb", "client RSS before submitting (MiB)", "{:.1f}", False),
    ("rss_first_result_mb", "client RSS at the first result (MiB)", "{:.1f}", False),
    ("rss_peak_mb", "client peak RSS (MiB)", "{:.1f}", True),
    ("rss_kb_per_prompt_peak", "(peak RSS - RSS before) / N (KiB)", "{:.2f}", True),
    ("completed", "results returned", "{:.0f}", False),
    ("errors", "errors", "{:.0f}", False),
    ("timed_out", "stopped at its deadline (1 = yes)", "{:.0f}", False),
)


# --- machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def memory_total() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return "unknown"
    found = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return f"{int(found.group(1)) / 1024**2:.1f} GiB" if found else "unknown"


def versions() -> str:
    parts = []
    for name in PACKAGES:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def source_fingerprint() -> str:
    """A short hash of the installed picpik_async sources: which library was measured."""
    import picpik_async

    root = Path(picpik_async.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def machine(load_before: tuple[float, float, float], source_before: str) -> list[str]:
    after = os.getloadavg()
    source = source_fingerprint()
    if source != source_before:
        source = f"{source_before} at the start, {source} at the end (edited during the run)"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    return [
        f"- CPU: {cpu_model()}; {os.cpu_count()} logical cores ({usable} usable by this run)",
        f"- memory: {memory_total()}; OS: {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- packages: {versions()}; picpik_async sources sha256 {source}",
        "- load average (1, 5, 15 min) before the run: "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after it: "
        + ", ".join(f"{x:.2f}" for x in after),
    ]


# --- tables -----------------------------------------------------------------------------------


def _cell(fmt: str, value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else fmt.format(value)


def _ratio(ours: float, theirs: float) -> str:
    if any(math.isnan(x) for x in (ours, theirs)) or theirs == 0:
        return "n/a"
    return f"{ours / theirs:.3g}"


def scenario_table(results: dict[str, Metrics]) -> str:
    """One N: a row per metric, a column per client, then the ratios ours / per-task."""
    present = [label for label in LABELS if label in results]
    head = ["metric", *present]
    ratios = [label for label in (PER_TASK_FAST, PER_TASK_SLOW) if label in present]
    if OURS in results:
        head += [f"ours / {label}" for label in ratios]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for key, name, fmt, comparable in ROWS:
        cells = [_cell(fmt, results[label][key]) for label in present]
        if OURS in results:
            ours = results[OURS][key]
            cells += [_ratio(ours, results[r][key]) if comparable else "" for r in ratios]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- targets ----------------------------------------------------------------------------------


def _verdict(ok: bool, how: str) -> str:
    return ("met" if ok else "MISSED") + f" ({how})"


Check = tuple[str, str, str]


def _status_checks(at: dict[str, Metrics]) -> list[Check]:
    ours, slow = at[OURS]["status_per_task"], at[PER_TASK_SLOW]["status_per_task"]
    share = ours / slow
    return [
        (
            "status requests per task <= 1/10 of per-task polling at 1 s",
            f"{ours:.3f} vs {slow:.3f}: {share:.3f} of it (1/{slow / ours:.0f})",
            _verdict(share <= 0.1, f"limit 0.100, margin {0.1 - share:+.3f}"),
        ),
        (
            "status requests per task < 0.1",
            f"{ours:.3f}",
            _verdict(ours < 0.1, f"margin {0.1 - ours:+.3f}"),
        ),
    ]


def _wall_checks(at: dict[str, Metrics]) -> list[Check]:
    ours, fast = at[OURS], at[PER_TASK_FAST]
    within = ours["wall_ratio"] / fast["wall_ratio"]
    fewer = fast["status_per_task"] / ours["status_per_task"]
    return [
        (
            "wall / ideal within 10% of per-task polling at 0.5 s",
            f"{ours['wall_ratio']:.3f} vs {fast['wall_ratio']:.3f}: x{within:.3f}; "
            f"wall {ours['wall']:.2f} s vs {fast['wall']:.2f} s",
            _verdict(within <= 1.10, f"limit x1.100, margin {(1.10 - within) * 100:+.1f} points"),
        ),
        (
            "... while sending >= 20x fewer status requests than per-task at 0.5 s",
            f"{fewer:.0f}x fewer",
            _verdict(fewer >= 20, f"limit 20x, margin {fewer - 20:+.0f}"),
        ),
    ]


def _lag_check(at: dict[str, Metrics]) -> list[Check]:
    ours = at[OURS]
    excess = ours["excess_p95"]
    return [
        (
            "completion lag p95 <= current poll interval + 100 ms",
            f"lag p95 {ours['lag_p95']:.3f} s, interval in effect p95 "
            f"{ours['interval_p95']:.3f} s; per task, lag - interval p95 {excess * 1000:.0f} ms",
            _verdict(excess <= 0.1, f"limit 100 ms, margin {(0.1 - excess) * 1000:+.0f} ms"),
        )
    ]


def _cpu_checks(by_n: dict[int, dict[str, Metrics]]) -> list[Check]:
    checks = []
    for n, at in sorted(by_n.items()):
        ours = at[OURS]["cpu_ms_per_task"]
        best = min(at[label]["cpu_ms_per_task"] for label in (PER_TASK_FAST, PER_TASK_SLOW))
        checks.append(
            (
                f"client CPU per task below per-task polling's (N={n})",
                f"{ours:.2f} ms vs {best:.2f} ms (the cheaper per-task variant)",
                _verdict(ours < best, f"x{ours / best:.2f}"),
            )
        )
    return checks


def _rss_check(memory: dict[str, Metrics]) -> list[Check]:
    if OURS not in memory:
        return []
    ours = memory[OURS]
    n = int(ours["n"])
    note = "" if n >= 5000 else " (quick mode: the target is set at N=5000)"
    value = ours["rss_kb_per_pending_task"]
    return [
        (
            f"RSS growth < 10 KiB per pending task at N={n}{note}",
            f"{value:.2f} KiB",
            _verdict(value < 10, f"margin {10 - value:+.2f} KiB"),
        )
    ]


def targets(by_n: ByN, memory: dict[str, Metrics]) -> list[Check]:
    """The issue's targets, measured on the targets scenario: (target, measured, verdict)."""
    complete = {n: at for n, at in by_n.items() if all(label in at for label in TARGET_LABELS)}
    if not complete:
        return []
    reference = 1000 if 1000 in complete else max(complete)
    at = complete[reference]
    checks: list[Check] = []
    for make in (_status_checks, _wall_checks, _lag_check):
        make_checks: Callable[[dict[str, Metrics]], list[Check]] = make
        checks += [(f"{name} (N={reference})", m, v) for name, m, v in make_checks(at)]
    return checks + _cpu_checks(complete) + _rss_check(memory)


def targets_table(checks: list[Check]) -> str:
    if not checks:
        return f"_Not measured: this run has no {TARGETS} scenario with all three clients._"
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in checks]
    return "\n".join(lines)


# --- the whole file ---------------------------------------------------------------------------


HEADLINE_KEYS = (
    ("status_per_task", "status req/task", "{:.3f}"),
    ("wall_ratio", "wall/ideal", "{:.2f}"),
    ("lag_p50", "lag p50 (s)", "{:.2f}"),
    ("lag_p95", "lag p95 (s)", "{:.2f}"),
    ("lag_max", "lag max (s)", "{:.2f}"),
    ("cpu_ms_per_task", "CPU/task (ms)", "{:.2f}"),
    ("rss_peak_mb", "peak RSS (MiB)", "{:.1f}"),
)


def note(metrics: Metrics) -> str:
    """What a reader must know about a run besides its figures: deadline, losses, errors."""
    notes = []
    if metrics.get("timed_out"):
        notes.append("stopped at its deadline")
    if metrics["completed"] < metrics["n"]:
        notes.append(f"{metrics['completed']:.0f} of {metrics['n']:.0f} returned")
    if metrics["errors"]:
        notes.append(f"{metrics['errors']:.0f} errors")
    return "; ".join(notes)


def headline(results: dict[str, ByN]) -> str:
    """One short table: the key metrics of every scenario, N and client."""
    head = ["scenario", "N", "client", *[name for _, name, _ in HEADLINE_KEYS], "note"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|---|---:|---" + "|---:" * len(HEADLINE_KEYS) + "|---|",
    ]
    for scenario, by_n in results.items():
        for n, at in sorted(by_n.items()):
            for label in LABELS:
                if label in at:
                    cells = [_cell(fmt, at[label][key]) for key, _, fmt in HEADLINE_KEYS]
                    row = [scenario, str(n), label, *cells, note(at[label])]
                    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def skipped_table(skipped: list[tuple[str, int, str, str]]) -> str:
    """The combinations the matrix left out, and why."""
    if not skipped:
        return "_None: every client ran in every scenario and N of this run._"
    lines = ["| scenario | N | client | why |", "|---|---:|---|---|"]
    lines += [f"| {scenario} | {n} | {label} | {why} |" for scenario, n, label, why in skipped]
    return "\n".join(lines)


def charts_lines(charts: list[tuple[str, str]] | str) -> list[str]:
    """Markdown image links (title, path relative to the report), or why there are none."""
    if isinstance(charts, str):
        return [f"_{charts}_"]
    lines: list[str] = []
    for title, path in charts:
        lines += [f"![{title}]({path})", ""]
    return lines[:-1]


BEFORE_AFTER_ROWS = (
    "status_per_task",
    "wall",
    "wall_ratio",
    "wall_minus_ideal",
    "submit_span",
    "lag_p50",
    "lag_p95",
    "interval_p95",
    "excess_p95",
    "delivery_p95",
    "cpu_ms_per_task",
    "rss_peak_mb",
    "errors",
)


def before_after_table(at: dict[str, Metrics]) -> str:
    """One N: picpik_async with its previous and its current defaults, and per-task at 0.5 s."""
    columns = [(PREVIOUS, at[PREVIOUS]), (OURS + " (defaults now)", at[OURS])]
    columns.append((PER_TASK_FAST, at[PER_TASK_FAST]))
    head = ["metric", *(name for name, _ in columns)]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * len(columns) + "|"]
    names = {key: (name, fmt) for key, name, fmt, _ in ROWS}
    for key in BEFORE_AFTER_ROWS:
        name, fmt = names[key]
        lines.append(f"| {name} | " + " | ".join(_cell(fmt, m[key]) for _, m in columns) + " |")
    fast = at[PER_TASK_FAST]["wall_ratio"]
    cells = [f"x{m['wall_ratio'] / fast:.3f}" for _, m in columns]
    lines.append("| wall / ideal, relative to per-task 0.5 s | " + " | ".join(cells) + " |")
    return "\n".join(lines)


MEMORY_ROWS = (
    ("seconds_to_all_pending", "seconds until all N were pending", "{:.1f}"),
    ("rss_baseline_mb", "RSS before submitting (MiB)", "{:.1f}"),
    ("rss_all_pending_mb", "RSS with all N pending (MiB)", "{:.1f}"),
    ("pending", "tasks pending at the measurement", "{:.0f}"),
    ("rss_kb_per_pending_task", "RSS growth per pending task (KiB)", "{:.2f}"),
    ("errors", "errors", "{:.0f}"),
)


def memory_table(memory: dict[str, Metrics]) -> str:
    present = [label for label in (OURS, PREVIOUS, PER_TASK_FAST, PER_TASK_SLOW) if label in memory]
    head = ["metric", *(f"{label} (N={memory[label]['n']:.0f})" for label in present)]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * len(present) + "|"]
    for key, name, fmt in MEMORY_ROWS:
        cells = [_cell(fmt, memory[label][key]) for label in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variants_table(variants: dict[str, Metrics]) -> str:
    """Issue 13's fallbacks: every task right, none created twice, lag p95 within bounds."""
    head = (
        "| running list | behaviour | results / N | errors | tasks created | duplicates "
        "| status req/task | of which ListRunningTasks | lag p50 (s) | lag p95 (s) "
        "| lag max (s) | verdict |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    limit = VARIANT_LAG_P95_MAX
    for variant in VARIANTS:
        m = variants.get(variant.name)
        if m is None:
            continue
        right = m["completed"] == m["n"] == m["tasks_created"] and not m["errors"]
        ok = right and m["duplicate_tasks"] == 0 and m["lag_p95"] <= limit
        how = f"all right, none twice, p95 <= {limit:g} s" if ok else "see the row"
        lines.append(
            f"| {variant.name} | {variant.about} | {m['completed']:.0f} / {m['n']:.0f} "
            f"| {m['errors']:.0f} | {m['tasks_created']:.0f} | {m['duplicate_tasks']:.0f} "
            f"| {m['status_per_task']:.3f} | {m['running_list_per_task']:.3f} "
            f"| {m['lag_p50']:.2f} | {m['lag_p95']:.2f} | {m['lag_max']:.2f} "
            f"| {_verdict(ok, how)} |"
        )
    return "\n".join(lines)


def previous_analysis(path: Path) -> str | None:
    """The hand-written analysis block of an existing RESULTS.md, kept across runs."""
    try:
        text = path.read_text()
    except OSError:
        return None
    start, end = text.find(ANALYSIS_START), text.find(ANALYSIS_END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(ANALYSIS_END)]


def document(
    *,
    mode: str,
    setup: list[str],
    machine_lines: list[str],
    collected: Collected,
    memory: dict[str, Metrics],
    micro: str | None,
    charts: list[tuple[str, str]] | str,
    analysis: str | None,
    elapsed: float,
) -> str:
    """The whole RESULTS file."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    by_n = collected.results.get(TARGETS, {})
    parts = [
        "# picpik_async benchmark results",
        "",
        f"Written by `python benchmarks/run.py{' --quick' if mode == 'quick' else ''}` "
        f"({mode} mode) on {now}; the run took {elapsed / 60:.1f} min. "
        "Every figure below is measured, none is asserted; rerun the command to reproduce.",
        "",
        "## Machine",
        "",
        *machine_lines,
        "",
        "## Set-up",
        "",
        *setup,
        "",
        "## Headline",
        "",
        headline(collected.results),
        "",
        "## Charts",
        "",
        *charts_lines(charts),
        "",
        f"## Targets (issue 6, on {TARGETS})",
        "",
        targets_table(targets(by_n, memory)),
        "",
        "## Skipped combinations",
        "",
        skipped_table(collected.skipped),
        "",
        *_scenario_sections(collected),
    ]
    if collected.variants:
        scenario = VARIANT_SCENARIO
        parts += [
            "## Running-list variants (issue 13's fallbacks)",
            "",
            f"picpik_async with its defaults on {scenario.name}, N = {scenario.sizes[0]}, "
            "one run each; the emulator's `RunningList` knobs bend ListRunningTasks.",
            "",
            variants_table(collected.variants),
            "",
        ]
    if memory:
        parts += ["## Memory with all N tasks pending", "", memory_table(memory), ""]
    parts += _before_after_sections(by_n)
    if micro:
        parts += ["## Micro-benchmarks of the pure core", "", micro, ""]
    parts += ["## Definitions", "", *_definitions(), ""]
    return "\n".join(parts + _analysis_lines(mode, analysis))


def _scenario_sections(collected: Collected) -> list[str]:
    """A section per scenario, a table per N."""
    parts: list[str] = []
    for scenario, by_n in collected.results.items():
        parts += [f"## {scenario}: {collected.about.get(scenario, '')}", ""]
        for n, at in sorted(by_n.items()):
            parts += [f"### {scenario}, N = {n}", "", scenario_table(at), ""]
    return parts


def _before_after_sections(by_n: ByN) -> list[str]:
    """The before/after tables, for the N at which the previous defaults ran."""
    compared = {n: at for n, at in sorted(by_n.items()) if PREVIOUS in at}
    if not compared:
        return []
    parts = [f"## Before / after: the previous defaults ({TARGETS})", "", *BEFORE_AFTER_NOTE]
    for n, at in compared.items():
        parts += [f"### N = {n}", "", before_after_table(at), ""]
    return parts


def _analysis_lines(mode: str, analysis: str | None) -> list[str]:
    """The hand-written analysis kept from the previous file, or a placeholder."""
    if mode == "quick" and not analysis:
        return ["_A quick run: no hand-written analysis; see RESULTS.md for the full run._", ""]
    lines = []
    if analysis and mode == "quick":
        lines += [
            "> This file now holds a quick run; the analysis below was written for a full one.",
            "",
        ]
    return [*lines, analysis or f"{ANALYSIS_START}\n_No analysis written yet._\n{ANALYSIS_END}", ""]


BEFORE_AFTER_NOTE = [
    "The library's defaults changed after issue 6's first run: `submit_concurrency` "
    "(at most 28 task-creating requests in flight then, 16 since issue 13's runs, the rest "
    "of the 64-connection pool left to the poller) and `PollSettings.poll_growth=1.25` "
    "(was 1.5). The previous-defaults "
    "column is the same client with `poll_growth=1.5` and `submit_concurrency=1_000_000` "
    "(no cap), run in the same repeats, with the same emulator seeds; the other two columns "
    "repeat the tables above.",
    "",
]


def _definitions() -> list[str]:
    doc = _metrics.__doc__ or ""
    body = doc.split("Definitions (also written into RESULTS.md):", 1)[-1]
    return body.strip().splitlines()


def describe_settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key}: `{value}`" for key, value in settings.items())
