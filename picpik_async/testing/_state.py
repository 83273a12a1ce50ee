"""The emulator's task state machine: tasks, their phases over time, credits and images.

PURE: no I/O. This module never imports anyio, httpx, starlette or Pillow, never
awaits and never sleeps. Time comes from an injected clock (monotonic seconds)
and chance from an injected `random.Random`, so a test can drive every
transition by moving a `ManualClock`.

A task is a frozen record. Its phase is *derived* from the clock: the record
holds a timeline of ``(until, phase)`` steps and a final outcome, and
`Task.phase_at` reads them (the h11 idea of a state machine as data, not as
if-chains in the caller). Nothing ever has to "tick".

Example:
    >>> import random
    >>> clock = ManualClock()
    >>> state = ServiceState(clock=clock, rng=random.Random(1), latency=4.0)
    >>> task, created = state.submit(TaskRequest(prompt="a red apple", width=512, height=512))
    >>> task.phase_at(clock()), created
    (<Phase.QUEUING: 'queuing'>, True)
    >>> clock.advance(2.0); task.phase_at(clock())
    <Phase.RUNNING: 'running'>
    >>> clock.advance(2.0); task.phase_at(clock())
    <Phase.FINISHED: 'finished'>
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Iterable
from typing import Final

import attrs
from attrs import define, field, frozen

from picpik_async._models import SEED_MAX

__all__ = [
    "DEFAULT_CREDITS",
    "DEFAULT_IMAGE_TTL",
    "DEFAULT_STATUS_WORDS",
    "Clock",
    "Credits",
    "Failure",
    "ImageLookup",
    "ImageSpec",
    "InsufficientCreditsError",
    "Latency",
    "ManualClock",
    "Phase",
    "RunningList",
    "ServiceState",
    "StatusWords",
    "Task",
    "TaskRequest",
    "draw_latency",
    "jittered",
    "task_cost",
]

#: A monotonic clock: seconds as a float, only differences matter.
Clock = Callable[[], float]
#: A latency: fixed seconds, or a function drawing seconds from the emulator's rng.
Latency = float | Callable[[random.Random], float]

#: Images are kept 24 hours (docs/protocol.md, "Images").
DEFAULT_IMAGE_TTL: Final = 24 * 60 * 60.0
#: Credits of a new emulator account. The documented free allowance is only 300
#: (section 1.1); test suites and benchmarks would run dry, so the default is larger.
DEFAULT_CREDITS: Final = 100_000
#: Credits per image per megapixel, see `task_cost`.
DEFAULT_CREDITS_PER_MEGAPIXEL: Final = 4

# TaskUIDs look like xids: 20 characters of base32hex, lower case (section 1.4).
_UID_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuv"
_UID_LENGTH: Final = 20
_MEGAPIXEL: Final = 1024 * 1024


class Phase(enum.Enum):
    """Where a task is in its life (the legacy status words, docs/protocol.md "Status words")."""

    QUEUING = "queuing"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        """Whether the task is over (finished or failed)."""
        return self in (Phase.FINISHED, Phase.ERROR)


@frozen
class StatusWords:
    """The `Status` words the emulator reports for each phase.

    The current API's words are unpublished (docs/protocol.md, "Status words");
    the defaults are the documented legacy set. Tests pass other words to check
    that a client does not depend on them.

    Example:
        >>> words = StatusWords("Pending", "Processing", "Success", "Failed")
        >>> words.word(Phase.FINISHED)
        'Success'
    """

    queuing: str = "Queuing"
    running: str = "Running"
    finished: str = "Finished"
    error: str = "Error"

    def word(self, phase: Phase) -> str:
        """The word reported for ``phase``."""
        words = {
            Phase.QUEUING: self.queuing,
            Phase.RUNNING: self.running,
            Phase.FINISHED: self.finished,
            Phase.ERROR: self.error,
        }
        return words[phase]


#: The documented legacy status words (section 5).
DEFAULT_STATUS_WORDS: Final = StatusWords()


@define
class ManualClock:
    """A clock that only moves when told to; pass it as ``clock=`` to the emulator.

    Example:
        >>> clock = ManualClock()
        >>> clock.advance(1.5)
        >>> clock()
        1.5
    """

    now: float = 0.0

    def __call__(self) -> float:
        """The current time in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back; got {seconds!r} seconds")
        self.now += seconds


def jittered(center: float, *, spread: float = 0.25) -> Callable[[random.Random], float]:
    """A latency drawn uniformly within ``center * (1 ± spread)``.

    Example:
        >>> draw = jittered(2.0, spread=0.5)
        >>> 1.0 <= draw(random.Random(7)) <= 3.0
        True
    """
    if center < 0 or not 0 <= spread <= 1:
        raise ValueError(f"need center >= 0 and 0 <= spread <= 1, got {center!r}, {spread!r}")
    low, high = center * (1 - spread), center * (1 + spread)

    def draw(rng: random.Random) -> float:
        return rng.uniform(low, high)

    return draw


def draw_latency(latency: Latency, rng: random.Random) -> float:
    """Seconds from creation to the end of a task: the fixed value or one draw, at least 0.

    Example:
        >>> draw_latency(1.5, random.Random()), draw_latency(lambda rng: -3.0, random.Random())
        (1.5, 0.0)
    """
    seconds = latency(rng) if callable(latency) else float(latency)
    return max(0.0, seconds)


def task_cost(
    width: int, height: int, batch_size: int, *, per_megapixel: int = DEFAULT_CREDITS_PER_MEGAPIXEL
) -> int:
    """The credits a generation costs (its `ConsumeApiPoint`); the emulator's own formula.

    PICPIK does not publish its prices (docs/protocol.md, "Credits": a task's
    detail only reports the charge). The emulator charges each image
    ``ceil(per_megapixel * width * height / 2**20)`` credits, at least 1, so the
    cost is proportional to the batch size and grows with the pixel count.

    Example:
        >>> task_cost(1024, 1024, 1), task_cost(512, 768, 2), task_cost(64, 64, 16)
        (4, 4, 16)
    """
    per_image = max(1, math.ceil(per_megapixel * width * height / _MEGAPIXEL))
    return per_image * batch_size


@frozen(kw_only=True)
class TaskRequest:
    """What a task-creating request asked for, in the terms the state machine needs.

    ``prompt`` is what the placeholder images show. Editing actions make images
    of their inputs' sizes: ``sizes`` then gives one ``(width, height)`` per
    result image and overrides ``width``, ``height`` and ``batch_size``.
    ``texts`` are text results (DescribeImages, docs/protocol.md "Actions"),
    charged one credit each.
    """

    prompt: str
    action: str = "GenerateImagesSDXL"
    seed: int = -1
    width: int = 1024
    height: int = 1024
    batch_size: int = 1
    request_uuid: str | None = None
    sizes: tuple[tuple[int, int], ...] = ()
    texts: tuple[str, ...] = ()


@frozen(kw_only=True)
class RunningList:
    """How the emulated ListRunningTasks bends the truth (all off by default).

    PICPIK does not say whether queued tasks count as running, nor how fresh the
    list is (docs/protocol.md, "ListRunningTasks"), so the client is tested against
    each variant.

    Args:
        refused: answer ListRunningTasks with RetCode 161, as for an unknown action.
        omits_queued: leave tasks that are still queuing out of the list.
        drops_early: a task leaves the list this many seconds before it is over.
        lags: a task stays in the list this many seconds after it is over.

    Example:
        >>> RunningList(lags=2.0).lags
        2.0
    """

    refused: bool = False
    omits_queued: bool = False
    drops_early: float = field(default=0.0, converter=float, validator=attrs.validators.ge(0.0))
    lags: float = field(default=0.0, converter=float, validator=attrs.validators.ge(0.0))

    def lists(self, task: Task, now: float) -> bool:
        """Whether `task` is in the list at `now`."""
        if self.omits_queued and task.phase_at(now) is Phase.QUEUING:
            return False
        return now < task.done_at - self.drops_early + self.lags


@frozen
class Failure:
    """How a task fails when the task-failure fault hits it (TaskDetail, section 4.9)."""

    code: int = 3001
    message: str = "Image generation failed (emulated task failure)"


@frozen(kw_only=True)
class Task:
    """One task: what was asked, what it costs, and its timeline.

    `timeline` lists ``(until, phase)`` steps in order: the task is in ``phase``
    while the clock is below ``until``; after the last step it is in `outcome`.
    """

    uid: str
    action: str
    request_uuid: str | None
    prompt: str
    seed: int
    width: int
    height: int
    batch_size: int
    cost: int
    created_at: float
    timeline: tuple[tuple[float, Phase], ...]
    outcome: Phase
    error_code: int = 0
    error_message: str = ""
    sizes: tuple[tuple[int, int], ...] = ()
    texts: tuple[str, ...] = ()

    @property
    def done_at(self) -> float:
        """When the task reaches its outcome."""
        return self.timeline[-1][0] if self.timeline else self.created_at

    def phase_at(self, now: float) -> Phase:
        """The phase at time ``now``, read from the timeline."""
        for until, phase in self.timeline:
            if now < until:
                return phase
        return self.outcome


@frozen
class ImageSpec:
    """Everything needed to draw one result image; equal specs draw equal PNGs."""

    prompt: str
    seed: int
    index: int
    width: int
    height: int


class ImageLookup(enum.Enum):
    """Why an image URL does not serve an image."""

    MISSING = "missing"
    EXPIRED = "expired"


@define
class Credits:
    """The account's credit balance (GetCreditBalance, section 3.20)."""

    total: int
    used: int = 0
    expire_timestamp: int | None = None

    @property
    def remaining(self) -> int:
        """Credits left: total minus used (inferred, section 3.20)."""
        return self.total - self.used


class InsufficientCreditsError(Exception):
    """A task would cost more credits than are left; nothing was created or charged."""

    def __init__(self, cost: int, remaining: int) -> None:
        self.cost = cost
        self.remaining = remaining
        super().__init__(f"the task costs {cost} credits, {remaining} left")


@define(kw_only=True)
class ServiceState:
    """All tasks and the credit balance of one emulated account.

    Args:
        clock: monotonic seconds; `ManualClock` in tests.
        rng: the source of seeds, latencies and TaskUIDs.
        latency: seconds from creation to the outcome (a number, or a function of
            the rng such as `jittered`).
        queue_share: the part of the latency spent in the queuing phase.
        image_ttl: seconds an image stays downloadable after the task finished.
        credits: the balance tasks are charged to.
        credits_per_megapixel: see `task_cost`.
        dedupe_request_uuid: when true, a submit that repeats a request_uuid gets
            the task made the first time instead of a new one. PICPIK documents
            no such guarantee (section 6), so the default is false.
    """

    clock: Clock
    rng: random.Random
    latency: Latency = 2.0
    queue_share: float = field(
        default=0.3, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    image_ttl: float = DEFAULT_IMAGE_TTL
    credits: Credits = attrs.Factory(lambda: Credits(total=DEFAULT_CREDITS))
    credits_per_megapixel: int = DEFAULT_CREDITS_PER_MEGAPIXEL
    dedupe_request_uuid: bool = False
    tasks: dict[str, Task] = attrs.Factory(dict)
    first_task_of: dict[str, str] = attrs.Factory(dict)

    def submit(self, request: TaskRequest, *, failure: Failure | None = None) -> tuple[Task, bool]:
        """Create (and charge) a task, or find the one its request_uuid made before.

        Returns:
            ``(task, created)``; ``created`` is false only for a deduplicated submit.

        Raises:
            InsufficientCreditsError: the balance does not cover the task.
        """
        earlier = self._earlier_task(request.request_uuid)
        if earlier is not None:
            return earlier, False
        cost = self._cost(request)
        if cost > self.credits.remaining:
            raise InsufficientCreditsError(cost, self.credits.remaining)
        task = self._new_task(request, cost, failure)
        self.credits.used += cost
        self.tasks[task.uid] = task
        if request.request_uuid is not None:
            self.first_task_of.setdefault(request.request_uuid, task.uid)
        return task, True

    def details(self, uids: Iterable[str]) -> list[Task]:
        """The known tasks among ``uids``, once each, in the order asked.

        Unknown UIDs are left out, as the service leaves them out (section 3.18).
        """
        found = (self.tasks.get(uid) for uid in dict.fromkeys(uids))
        return [task for task in found if task is not None]

    def running(self, quirks: RunningList | None = None) -> list[Task]:
        """Tasks not yet over, in creation order (ListRunningTasks, section 3.19).

        `quirks` bends the list the ways a real service might (see `RunningList`).
        """
        now = self.clock()
        if quirks is None or quirks == RunningList():
            return [task for task in self.tasks.values() if not task.phase_at(now).terminal]
        return [task for task in self.tasks.values() if quirks.lists(task, now)]

    def image(self, uid: str, index: int) -> ImageSpec | ImageLookup:
        """The image ``index`` of task ``uid``, or why it cannot be served.

        An image exists once its task finished, for `image_ttl` seconds.
        """
        task = self.tasks.get(uid)
        now = self.clock()
        if task is None or not 0 <= index < task.batch_size:
            return ImageLookup.MISSING
        if task.phase_at(now) is not Phase.FINISHED:
            return ImageLookup.MISSING
        if now >= task.done_at + self.image_ttl:
            return ImageLookup.EXPIRED
        width, height = task.sizes[index] if task.sizes else (task.width, task.height)
        return ImageSpec(task.prompt, task.seed, index, width, height)

    def _cost(self, request: TaskRequest) -> int:
        """Each image at the per-megapixel price of its size, plus a credit per text."""
        if not request.sizes:
            images = task_cost(
                request.width,
                request.height,
                request.batch_size,
                per_megapixel=self.credits_per_megapixel,
            )
        else:
            images = sum(
                task_cost(width, height, 1, per_megapixel=self.credits_per_megapixel)
                for width, height in request.sizes
            )
        return images + len(request.texts)

    def _earlier_task(self, request_uuid: str | None) -> Task | None:
        if not self.dedupe_request_uuid or request_uuid is None:
            return None
        uid = self.first_task_of.get(request_uuid)
        return None if uid is None else self.tasks[uid]

    def _new_task(self, request: TaskRequest, cost: int, failure: Failure | None) -> Task:
        now = self.clock()
        total = draw_latency(self.latency, self.rng)
        queued_until = now + total * self.queue_share
        return Task(
            uid=self._new_uid(),
            action=request.action,
            request_uuid=request.request_uuid,
            prompt=request.prompt,
            # Seed -1 means "pick one" and the task reports the one picked (section 3.0, 4.9).
            seed=self.rng.randint(0, SEED_MAX) if request.seed == -1 else request.seed,
            width=request.width,
            height=request.height,
            batch_size=len(request.sizes) if request.sizes else request.batch_size,
            cost=cost,
            created_at=now,
            timeline=((queued_until, Phase.QUEUING), (now + total, Phase.RUNNING)),
            outcome=Phase.FINISHED if failure is None else Phase.ERROR,
            error_code=0 if failure is None else failure.code,
            error_message="" if failure is None else failure.message,
            sizes=request.sizes,
            texts=request.texts,
        )

    def _new_uid(self) -> str:
        while True:
            uid = "".join(self.rng.choices(_UID_ALPHABET, k=_UID_LENGTH))
            if uid not in self.tasks:
                return uid
