"""PNG charts of a benchmark run, drawn with matplotlib (the ``bench`` extra).

Two charts, written next to the report (``charts/<mode>-*.png``):

* status requests per task against N, per client, one panel per scenario run
  at more than one N (log-log);
* the completion-lag distribution per client (ECDF, log time axis) in the
  headline scenario.

matplotlib is imported only here, with the Agg backend (no display needed);
`write` raises ImportError when it is missing, and `run.py` says how to install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _report import ByN, Collected
from _scenarios import HEADLINE, LABELS

INSTALL_HINT = "pip install '.[bench]' (or: pip install 'matplotlib>=3.8')"
_DPI = 110


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend; ImportError if matplotlib is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(label: str) -> str:
    """One colour per client in every chart and panel (the legend is drawn once)."""
    return f"C{LABELS.index(label)}"


def headline_run(collected: Collected) -> tuple[str, int] | None:
    """The scenario and N the lag chart shows: the headline scenario at N = 1000 if run.

    Falls back to the headline scenario's largest N, then to any scenario's.
    """
    for scenario in (HEADLINE, *collected.lags):
        sizes = collected.lags.get(scenario, {})
        if sizes:
            return scenario, 1000 if 1000 in sizes else max(sizes)
    return None


def status_chart(results: dict[str, ByN], path: Path) -> bool:
    """Status requests per task against N, per client; False if there is nothing to draw."""
    swept = {name: by_n for name, by_n in results.items() if len(by_n) > 1} or results
    if not swept:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(swept), figsize=(5.5 * len(swept), 4.2), squeeze=False)
    for ax, (scenario, by_n) in zip(axes[0], swept.items(), strict=True):
        for label in LABELS:
            points = sorted(
                (n, at[label]["status_per_task"]) for n, at in by_n.items() if label in at
            )
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=label, color=_color(label))
        ax.set(xscale="log", yscale="log", title=scenario, xlabel="N (concurrent prompts)")
        ax.set_ylabel("status requests per task")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return True


def lag_chart(lags: dict[str, list[float]], title: str, path: Path) -> bool:
    """ECDF of the completion lag per client; False if there is nothing to draw."""
    present = [label for label in LABELS if lags.get(label)]
    if not present:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label in present:
        ordered = sorted(max(lag, 1e-3) for lag in lags[label])  # log axis: no zeros
        share = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, share, where="post", label=label, color=_color(label))
    ax.set(xscale="log", ylim=(0, 1.01), title=title)
    ax.set_xlabel("completion lag (s): task finished -> result returned")
    ax.set_ylabel("share of tasks")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return True


def write(collected: Collected, directory: Path, prefix: str) -> list[tuple[str, Path]]:
    """Draw every chart there is data for into ``directory``; (title, path) of each.

    Raises:
        ImportError: matplotlib is not installed.
    """
    _pyplot()  # fail before creating anything
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    status = directory / f"{prefix}-status-per-task.png"
    if status_chart(collected.results, status):
        written.append(("status requests per task against N", status))
    chosen = headline_run(collected)
    if chosen is not None:
        scenario, n = chosen
        title = f"completion lag, {scenario}, N = {n}"
        lag = directory / f"{prefix}-lag-ecdf.png"
        if lag_chart(collected.lags[scenario][n], title, lag):
            written.append((title, lag))
    return written
