"""What the benchmark runs: task latencies, arrival patterns, clients and the scenario matrix.

Shared by `run.py` (which runs the matrix), `_server.py` (which turns a latency
spec from its command line into the emulator's latency function) and
`_report.py` (labels, skip reasons). No I/O here.

A latency spec is ``name:key=value,...``, one of

* ``uniform:low=2.7,high=3.3``: uniform between ``low`` and ``high`` seconds;
* ``lognormal:median=6,sigma=0.5,low=2,high=40``: log-normal with that median
  and shape, clipped to ``low..high``;
* ``fixed:seconds=600``: every task takes exactly that long.

A scenario is a latency distribution, an arrival pattern (``burst``: all N
prompts at once; ``steady``: the N prompts fed at a fixed rate over a span) and
the N values to run it at.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import attrs
from attrs import frozen

from picpik_async import PollSettings

LatencyFn = Callable[[random.Random], float]

# --- task latencies ---------------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[str, dict[str, float]]:
    """``"lognormal:median=6,sigma=0.5"`` -> ``("lognormal", {"median": 6.0, "sigma": 0.5})``."""
    name, _, rest = spec.partition(":")
    params: dict[str, float] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"latency parameter {item!r} is not key=value (in {spec!r})")
        params[key.strip()] = float(value)
    return name.strip(), params


def uniform(low: float, high: float) -> LatencyFn:
    """Seconds drawn uniformly from ``low..high``."""
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got {low!r}, {high!r}")
    return lambda rng: rng.uniform(low, high)


def lognormal(median: float, sigma: float, low: float, high: float) -> LatencyFn:
    """Log-normal seconds (``median`` = e**mu, shape ``sigma``), clipped to ``low..high``."""
    if median <= 0 or sigma < 0 or not 0 <= low <= high:
        raise ValueError(f"bad log-normal: median {median!r}, sigma {sigma!r}, {low!r}..{high!r}")
    mu = math.log(median)
    return lambda rng: min(high, max(low, rng.lognormvariate(mu, sigma)))


def fixed(seconds: float) -> LatencyFn:
    """Always ``seconds``."""
    return lambda rng: seconds


_MAKERS: dict[str, Callable[..., LatencyFn]] = {
    "uniform": uniform,
    "lognormal": lognormal,
    "fixed": fixed,
}


def latency_from_spec(spec: str) -> LatencyFn:
    """The emulator latency function a spec names (see the module docstring)."""
    name, params = parse_spec(spec)
    try:
        make = _MAKERS[name]
    except KeyError:
        raise ValueError(f"unknown latency distribution {name!r} in {spec!r}") from None
    try:
        return make(**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for {name!r} in {spec!r}: {error}") from None


@frozen
class Distribution:
    """A task-latency distribution, as the emulator process is told it."""

    name: str
    spec: str  # see latency_from_spec
    queue_share: float  # the part of a task's latency spent "Queuing" before "Running"
    longest: float  # no task takes longer (seconds)
    about: str  # for the report

    def server_args(self) -> list[str]:
        """The `_server.py` options that set this distribution."""
        return [f"--latency={self.spec}", f"--queue-share={self.queue_share}"]


UNIFORM3 = Distribution(
    "uniform3", "uniform:low=2.7,high=3.3", 0.3, 3.3, "uniform 2.7-3.3 s (3 s ± 10 %)"
)
LONG = Distribution("long", "uniform:low=8,high=16", 0.3, 16.0, "uniform 8-16 s")
LOGNORMAL = Distribution(
    "lognormal",
    "lognormal:median=6,sigma=0.5,low=2,high=40",
    0.4,
    40.0,
    "log-normal, median 6 s, sigma 0.5, clipped to 2-40 s",
)
DISTRIBUTIONS = {d.name: d for d in (UNIFORM3, LONG, LOGNORMAL)}
# Memory runs: tasks outlast the run, so all N end up pending at once.
MEMORY = Distribution("memory", "fixed:seconds=600", 0.3, 600.0, "600 s, every task")

# --- arrivals ---------------------------------------------------------------------------------


@frozen
class Arrival:
    """How the N prompts reach the client: all at once, or evenly over ``span`` seconds."""

    name: str
    span: float

    @property
    def about(self) -> str:
        """For the report."""
        if not self.span:
            return "burst: all N prompts at once"
        return f"steady: the N prompts evenly over {self.span:g} s"


BURST = Arrival("burst", 0.0)
STEADY = Arrival("steady", 10.0)
ARRIVALS = {a.name: a for a in (BURST, STEADY)}

# --- clients ----------------------------------------------------------------------------------


def has_running_set() -> bool:
    """Whether this picpik_async has `PollSettings.running_set` (the ListRunningTasks poller)."""
    return "running_set" in attrs.fields_dict(PollSettings)


OURS = "picpik_async"
BATCHED = "picpik_async batched" if has_running_set() else "picpik_async batched (= defaults)"
PER_TASK_FAL = "per-task 0.1 s (fal-client)"
PER_TASK_FAST = "per-task 0.5 s"
PER_TASK_SLOW = "per-task 1 s"
PREVIOUS = "picpik_async, previous defaults"


@frozen
class Client:
    """One client of the comparison: its label, `--clients` key and worker options."""

    key: str
    label: str
    args: tuple[str, ...]
    interval: float | None = None  # per-task polling interval; None for picpik_async


CLIENTS = (
    Client("ours", OURS, ("--client=picpik",)),
    Client("batched", BATCHED, ("--client=picpik", "--batched")),
    Client("pt0.1", PER_TASK_FAL, ("--client=per-task", "--interval=0.1"), 0.1),
    Client("pt0.5", PER_TASK_FAST, ("--client=per-task", "--interval=0.5"), 0.5),
    Client("pt1", PER_TASK_SLOW, ("--client=per-task", "--interval=1"), 1.0),
)
# Before/after issue 6 (only with --previous): the defaults picpik_async had before it.
PREVIOUS_CLIENT = Client("previous", PREVIOUS, ("--client=picpik", "--previous-defaults"))
# The per-task loops poll once a minute in the memory runs, so that polling does not
# starve their own submits; a sleeping poll loop holds the same objects whatever its interval.
MEMORY_CLIENTS = (
    Client("ours", OURS, ("--client=picpik",)),
    Client("pt1", PER_TASK_SLOW, ("--client=per-task", "--interval=60"), 60.0),
)
LABELS = (OURS, BATCHED, PER_TASK_FAL, PER_TASK_FAST, PER_TASK_SLOW)

# Per-task polling through httpx is CPU-bound at a few hundred requests per second on
# one core (RESULTS.md, "Why per-task polling falls over"): past these sizes a run
# would take minutes, saturate both cores and measure mostly its own backlog.
PER_TASK_MAX_N = 5000
FAL_INTERVAL_MAX_N = 999


def skip_reason(client: Client, n: int) -> str | None:
    """Why the matrix leaves this client out at this N, or None if it runs."""
    if client.interval is None:
        return None
    if n > PER_TASK_MAX_N:
        return (
            f"per-task polling above N = {PER_TASK_MAX_N}: at the ~13 ms of client CPU a "
            "task it cost at N = 5000, one run keeps a core busy for minutes, and what it "
            "measures is its own backlog"
        )
    if client.interval < 0.5 and n > FAL_INTERVAL_MAX_N:
        return (
            "per-task polling every 0.1 s at N >= 1000: the loops ask for 10,000 "
            "requests a second, some 30 to 50 times what the script sends on one core"
        )
    return None


# --- the matrix -------------------------------------------------------------------------------


@frozen
class Scenario:
    """A distribution and an arrival pattern, run at each of ``sizes``."""

    distribution: Distribution
    arrival: Arrival
    sizes: tuple[int, ...]

    @property
    def name(self) -> str:
        """``distribution/arrival``, e.g. ``lognormal/steady``."""
        return f"{self.distribution.name}/{self.arrival.name}"

    @property
    def about(self) -> str:
        """For the report: the latency distribution and the arrival pattern."""
        d = self.distribution
        return f"{d.about}, {d.queue_share:.0%} of it queuing; {self.arrival.about}"

    def deadline(self, n: int) -> float:
        """Seconds a worker gets for one run before it stops itself and reports what it has."""
        return self.arrival.span + self.distribution.longest + 30.0 + 0.01 * n


# The scenario of issue 6's targets (today's benchmark) and the one the lag chart shows.
TARGETS = f"{UNIFORM3.name}/{BURST.name}"
HEADLINE = f"{LOGNORMAL.name}/{STEADY.name}"

# Full run: every distribution x arrival at N = 1000, and the N sweep on the two
# scenarios that matter most (today's, and the one most like the service).
FULL = (
    Scenario(UNIFORM3, BURST, (100, 1000, 10_000)),
    Scenario(LOGNORMAL, STEADY, (100, 1000, 10_000)),
    Scenario(UNIFORM3, STEADY, (1000,)),
    Scenario(LONG, BURST, (1000, 10_000)),
    Scenario(LONG, STEADY, (1000,)),
    Scenario(LOGNORMAL, BURST, (1000,)),
)
QUICK = (
    Scenario(UNIFORM3, BURST, (100, 1000)),
    Scenario(LOGNORMAL, STEADY, (100,)),
)


# --- running-list variants -----------------------------------------------------------------
# Issue 13's fallbacks: how the emulated ListRunningTasks bends the truth
# (`picpik_async.testing.RunningList`), each run once with picpik_async on VARIANT_SCENARIO.


@frozen
class Variant:
    """One way the running list may behave, as `_server.py --running-list` is told it."""

    name: str
    spec: str  # "" or "field" or "field=seconds", comma-separated: RunningList's fields
    about: str

    def server_args(self) -> list[str]:
        """The `_server.py` option that sets this variant (none for the honest list)."""
        return [f"--running-list={self.spec}"] if self.spec else []


VARIANTS = (
    Variant("honest", "", "the list shows each task exactly until it is over"),
    Variant("refused", "refused", "ListRunningTasks is refused (RetCode 161, unknown action)"),
    Variant("omits queued", "omits_queued", "queued tasks are left out of the list"),
    Variant("drops early", "drops_early=1.5", "a task leaves the list 1.5 s before it is over"),
    Variant("lags", "lags=1.5", "a task stays in the list 1.5 s after it is over"),
)
VARIANT_SCENARIO = Scenario(UNIFORM3, BURST, (1000,))
VARIANT_LAG_P95_MAX = 2.5  # issue 13: every variant within 2.5 s at p95


def running_list_options(spec: str) -> dict[str, bool | float]:
    """``"omits_queued,lags=1.5"`` -> ``{"omits_queued": True, "lags": 1.5}``."""
    options: dict[str, bool | float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, value = item.partition("=")
        options[key.strip()] = float(value) if sep else True
    return options


def select(
    matrix: Sequence[Scenario], names: list[str] | None, sizes: list[int] | None
) -> list[Scenario]:
    """The scenarios named (all if None), each at ``sizes`` instead of its own if given."""
    chosen = [s for s in matrix if names is None or s.name in names]
    if names is not None:
        known = {s.name for s in matrix} | {f"{d}/{a}" for d in DISTRIBUTIONS for a in ARRIVALS}
        unknown = set(names) - known
        if unknown:
            raise ValueError(f"unknown scenarios: {sorted(unknown)}; known: {sorted(known)}")
        # A named scenario outside the matrix runs at the matrix's N = 1000.
        missing = [n for n in names if n not in {s.name for s in chosen}]
        chosen += [_scenario(name, (1000,)) for name in missing]
    if sizes is not None:
        chosen = [attrs.evolve(s, sizes=tuple(sizes)) for s in chosen]
    return chosen


def _scenario(name: str, sizes: tuple[int, ...]) -> Scenario:
    distribution, arrival = name.split("/")
    return Scenario(DISTRIBUTIONS[distribution], ARRIVALS[arrival], sizes)
