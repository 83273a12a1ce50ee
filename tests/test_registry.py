"""The registry of actions is complete, and every piece derived from it exists.

Adding an action (docs/architecture.md, "Adding an action") is a request type
with `@register(...)`, its emulator behaviour and its export; these tests fail
when any of them, or a mirrored piece (the client method, its blocking twin),
is missing.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import picpik_async as picpik
from picpik_async._models import Request
from picpik_async._registry import ACTIONS, register
from picpik_async.testing import _service

SPECS = list(ACTIONS.values())
IDS = [spec.name for spec in SPECS]


def concrete_requests(base: type[Any] = Request) -> set[type[Any]]:
    """Every request type of the package that names a wire action."""
    found: set[type[Any]] = set()
    for cls in base.__subclasses__():
        if cls.__module__.startswith("picpik_async") and "action" in vars(cls):
            found.add(cls)
        found |= concrete_requests(cls)
    return found


def test_every_request_type_is_registered() -> None:
    """A request type without `@register` would be invisible to every check below."""
    assert concrete_requests() == {spec.request for spec in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_request_and_answer_are_exported(spec: Any) -> None:
    """Users can import the request type and its answer type from `picpik_async`."""
    assert getattr(picpik, spec.request.__name__) is spec.request
    assert spec.request.__name__ in picpik.__all__
    assert getattr(picpik, spec.answer.__name__) is spec.answer


@pytest.mark.parametrize("spec", [s for s in SPECS if s.method], ids=lambda s: s.name)
def test_client_methods_exist_on_both_clients(spec: Any) -> None:
    """The named method exists on AsyncClient (async) and on Client (blocking)."""
    method = getattr(picpik.AsyncClient, spec.method)
    assert inspect.iscoroutinefunction(inspect.unwrap(method)), spec.method
    twin = getattr(picpik.Client, spec.method)
    assert not inspect.iscoroutinefunction(twin), spec.method


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_the_emulator_handles_every_action(spec: Any) -> None:
    """The emulator answers every action, and creates tasks exactly for the task-creating ones."""
    assert spec.name in _service._HANDLERS
    assert (spec.name in _service.TASK_ACTIONS) is spec.creates_task


def test_an_action_is_registered_once() -> None:
    """Registering the same wire name twice is refused."""
    with pytest.raises(RuntimeError, match="registered twice"):
        register(method=None)(picpik.ListModels)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_action_names_its_answer(spec: Any) -> None:
    """Each request type says which model its answer is read into."""
    assert isinstance(spec.answer, type)
    assert spec.request.__module__ == "picpik_async" or spec.request.__module__.endswith("_actions")
