"""The registry of PICPIK actions: each described once, where its request type is defined.

PURE: no I/O, no anyio, no httpx.

A request type names its wire `action`, its answer type (`response_type`) and
whether it `creates_task`; `@register(method=...)` on the class adds the one
fact the class cannot know: the `AsyncClient` method that sends it (None when
only `submit()` or `call()` do). Tests walk `ACTIONS` and fail when a piece is
missing: an export, a client method or its blocking twin, an emulator
handler (tests/test_registry.py; docs/architecture.md, "Adding an action").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from attrs import frozen

__all__ = ["ACTIONS", "Action", "register"]

C = TypeVar("C", bound=type[Any])


@frozen
class Action:
    """One PICPIK action as the library knows it.

    Example:
        >>> from picpik_async import ListModels
        >>> ACTIONS["ListModels"].method, ACTIONS["ListModels"].creates_task
        ('list_models', False)
    """

    request: type[Any]
    method: str | None

    @property
    def name(self) -> str:
        """The wire name (`Action`)."""
        name: str = self.request.action
        return name

    @property
    def answer(self) -> type[Any]:
        """The answer's model."""
        answer: type[Any] = self.request.response_type
        return answer

    @property
    def creates_task(self) -> bool:
        """Whether a call creates (and is charged for) a task."""
        return bool(self.request.creates_task)


#: Every action, by wire name, in the order the request types are defined.
ACTIONS: Final[dict[str, Action]] = {}


def register(*, method: str | None) -> Callable[[C], C]:
    """Class decorator: enter a request type in `ACTIONS`, with its client method.

    Example:
        >>> # @register(method="upscale")
        >>> # class ResizeImage(Request[SubmitResponse]): ...
    """

    def enter(cls: C) -> C:
        name = cls.action
        if name in ACTIONS:
            raise RuntimeError(f"action {name} is registered twice")
        ACTIONS[name] = Action(cls, method)
        return cls

    return enter
