"""A credit budget for one client: no submit is sent unless its estimated price fits.

The rule is the batch ledger's (`_ledger`: `PriceBook`, `estimate_for`,
`admit`), kept in memory: a task-creating request reserves its estimated
price before it is sent; the reservation becomes the reported price when the
client sees the task finish (`ConsumeApiPoint`), is released when the service
refuses the request (nothing was created), and is counted as spent when the
outcome is unknown or the task failed (it may have been charged). So the
client never spends more than `max_credits` plus the estimation error of the
submits in flight.

Prices are learned per action and pixel count. Until one task of a kind has
reported its price, a submit of that kind reserves everything left, so the
first one goes alone.

Example:
    >>> budget = CreditBudget(max_credits=100)
    >>> budget.remaining
    100
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
from attrs import define, field, frozen

from ._errors import BudgetExceededError, ValidationError
from ._ledger import PriceBook, admit, estimate_for

__all__ = ["CreditBudget"]


def _positive(instance: object, attribute: Any, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(f"CreditBudget.max_credits must be an integer >= 1, got {value!r}")


@frozen
class _Reservation:
    action: str
    pixels: int
    images: int
    credits: int


def _shape(request: Any) -> tuple[int, int]:
    """(pixels, images) of a task-creating request: SDXL's size and batch, else (0, 1)."""
    width, height = getattr(request, "width", None), getattr(request, "height", None)
    pixels = width * height if isinstance(width, int) and isinstance(height, int) else 0
    images = getattr(request, "batch_size", None)
    return pixels, images if isinstance(images, int) and images > 0 else 1


@define
class CreditBudget:
    """At most `max_credits` credits for the tasks a client creates.

    Pass it to `AsyncClient(budget=...)` (or `Client`). `generate()` and
    `generate_many()` wait while the budget is held by submits in flight that
    are being waited for (their price may come out lower than reserved), and
    raise `BudgetExceededError` once it cannot fit; `submit()`, which does
    not wait for its task, raises at once. A task whose wait timed out, or
    that was never waited for, keeps its reservation until a `wait()` sees it
    end. One budget may be shared by several clients of one event loop.

    Attributes:
        max_credits: the ceiling.
        spent: credits of finished tasks (as reported), and estimates of
            failed tasks and of submits whose outcome is unknown.
        reserved: estimates of submits in flight or tasks not yet seen to end.

    Example:
        >>> async def main() -> None:
        ...     async with AsyncClient(budget=CreditBudget(max_credits=40)) as client:
        ...         async for result in client.generate_many(["a cat"] * 100):
        ...             ...  # stops with BudgetExceededError after about 40 credits
    """

    max_credits: int = field(validator=_positive)
    spent: int = field(default=0, init=False)
    reserved: int = field(default=0, init=False)
    _books: dict[str, PriceBook] = field(factory=dict, init=False, repr=False)
    _tasks: dict[str, _Reservation] = field(factory=dict, init=False, repr=False)
    _changed: anyio.Event | None = field(default=None, init=False, repr=False)
    #: Submits between their reservation and their answer.
    _sending: int = field(default=0, init=False, repr=False)
    #: TaskUIDs being waited for right now (by `AsyncClient.wait` and what calls it).
    _watched: Counter[str] = field(factory=Counter, init=False, repr=False)

    @property
    def remaining(self) -> int:
        """Credits neither spent nor reserved."""
        return self.max_credits - self.spent - self.reserved

    async def reserve(self, request: Any, *, wait: bool) -> _Reservation:
        """Reserve the estimated price of `request`, or raise `BudgetExceededError`."""
        pixels, images = _shape(request)
        while True:
            book = self._books.get(request.action, PriceBook())
            estimate = estimate_for(
                book, pixels, images, max_credits=self.max_credits,
                committed=self.spent + self.reserved,
            )  # fmt: skip
            verdict = admit(
                self.max_credits, committed=self.spent, in_flight=self.reserved, estimate=estimate
            )
            if verdict == "ok":
                self.reserved += estimate
                self._sending += 1
                return _Reservation(request.action, pixels, images, estimate)
            if verdict == "wait" and wait and self._will_settle():
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
                continue
            held = f", {self.reserved} reserved by submits in flight" if self.reserved else ""
            raise BudgetExceededError(
                f"{request.action} would cost about {estimate} credits and the budget has "
                f"{self.remaining} of max_credits={self.max_credits} left{held}; nothing was sent",
                max_credits=self.max_credits,
                estimate=estimate,
                remaining=self.remaining,
            )

    def _will_settle(self) -> bool:
        """Whether some reservation is held by a submit or a wait that will end it.

        A task submitted and never waited for (or whose wait timed out) keeps
        its reservation, but waiting for it could last forever: then a submit
        that does not fit fails at once.
        """
        return self._sending > 0 or any(self._watched[uid] for uid in self._tasks)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _release(self, reservation: _Reservation, *, spent: int) -> None:
        self.reserved -= reservation.credits
        self.spent += spent
        self._notify()

    def refused(self, reservation: _Reservation) -> None:
        """The service refused the submit: nothing was created."""
        self._sending -= 1
        self._release(reservation, spent=0)

    def unknown(self, reservation: _Reservation) -> None:
        """The submit's answer was lost: the task may exist, so its estimate is spent."""
        self._sending -= 1
        self._release(reservation, spent=reservation.credits)

    @contextmanager
    def watching(self, task_uid: str) -> Iterator[None]:
        """Mark a task as waited for while the block runs (its reservation will settle)."""
        self._watched[task_uid] += 1
        try:
            yield
        finally:
            self._watched[task_uid] -= 1
            if not self._watched[task_uid]:
                del self._watched[task_uid]
            self._notify()  # a submit waiting on this one looks again

    def submitted(self, reservation: _Reservation, task_uids: Sequence[str]) -> None:
        """The submit created these tasks; the reservation waits for their end."""
        self._sending -= 1
        if not task_uids:
            self._release(reservation, spent=0)
            return
        share, extra = divmod(reservation.credits, len(task_uids))
        for index, uid in enumerate(task_uids):
            credits = share + (1 if index < extra else 0)
            self._tasks[uid] = _Reservation(
                reservation.action, reservation.pixels, reservation.images, credits
            )

    def finished(self, task_uid: str, credits: int | None) -> None:
        """A task finished; `credits` is its `ConsumeApiPoint` (None: not reported)."""
        reservation = self._tasks.pop(task_uid, None)
        if reservation is None:
            return
        if credits is not None:
            book = self._books.get(reservation.action, PriceBook())
            self._books[reservation.action] = book.learn(
                reservation.pixels, images=reservation.images, credits=credits
            )
        self._release(reservation, spent=credits if credits is not None else reservation.credits)

    def failed(self, task_uid: str) -> None:
        """A task failed: it may have been charged, so its estimate is spent."""
        reservation = self._tasks.pop(task_uid, None)
        if reservation is not None:
            self._release(reservation, spent=reservation.credits)
