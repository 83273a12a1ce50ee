"""CreditBudget: no submit is sent unless its estimated price fits."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from conftest import make_client

import picpik_async as picpik
from picpik_async.testing import Emulator, Faults, Trigger

pytestmark = pytest.mark.anyio

SMALL: Any = {"width": 64, "height": 64}  # 1 credit an image on the emulator


async def test_generate_many_stops_at_the_budget() -> None:
    """100 prompts of one credit, a budget of 40: exactly 40 created, the rest refused unsent."""
    emulator = Emulator(latency=0.05, seed=1)
    budget = picpik.CreditBudget(max_credits=40)
    async with make_client(emulator, budget=budget) as client:
        items = [
            item
            async for item in client.generate_many(
                [f"p{i}" for i in range(100)], return_exceptions=True, max_concurrency=8, **SMALL
            )
        ]
    results = [i for i in items if isinstance(i, picpik.GenerationResult)]
    refused = [i for i in items if isinstance(i, picpik.BudgetExceededError)]
    assert emulator.state.credits.used == 40 == len(results)
    assert len(refused) == 60
    assert emulator.counters.requests["GenerateImagesSDXL"] == 40  # refused ones never sent
    assert (budget.spent, budget.reserved, budget.remaining) == (40, 0, 0)


async def test_the_first_submit_goes_alone_then_prices_are_known() -> None:
    """With nothing known, the first reserves everything left; submit() does not wait."""
    emulator = Emulator(latency=0.05, seed=2)
    budget = picpik.CreditBudget(max_credits=10)
    async with make_client(emulator, budget=budget) as client:
        request = picpik.GenerateImagesSDXL(
            main_model=picpik.Model("PICPIK General"), positive_prompts=["a"], **SMALL
        )
        first = await client.submit(request)
        assert budget.reserved == 10
        with pytest.raises(picpik.BudgetExceededError, match="10 reserved by submits in flight"):
            await client.submit(request)
        await client.wait(first)
        assert (budget.spent, budget.reserved) == (1, 0)
        await client.submit(request)
        assert budget.reserved == 1  # the price is known now


async def test_a_refused_submit_releases_its_reservation() -> None:
    emulator = Emulator(
        latency=0.05, faults=Faults(busy=Trigger(rate=1.0, actions={"GenerateImagesSDXL"}))
    )
    budget = picpik.CreditBudget(max_credits=5)
    async with make_client(emulator, budget=budget, max_retries=0) as client:
        with pytest.raises(picpik.APIError):
            await client.generate("x", **SMALL)
    assert (budget.spent, budget.reserved) == (0, 0)


async def test_a_lost_answer_counts_as_spent() -> None:
    emulator = Emulator(
        latency=0.05, faults=Faults(drop=Trigger(schedule={1}, actions={"GenerateImagesSDXL"}))
    )
    budget = picpik.CreditBudget(max_credits=5)
    async with make_client(emulator, budget=budget) as client:
        with pytest.raises(picpik.SubmitOutcomeUnknownError):
            await client.generate("x", **SMALL)
    assert (budget.spent, budget.reserved) == (5, 0)  # the whole estimate: the price was unknown


async def test_a_failed_task_counts_its_estimate() -> None:
    emulator = Emulator(latency=0.05, faults=Faults(task_failure=1.0))
    budget = picpik.CreditBudget(max_credits=5)
    async with make_client(emulator, budget=budget) as client:
        with pytest.raises(picpik.TaskFailedError):
            await client.generate("x", **SMALL)
    assert (budget.spent, budget.reserved) == (5, 0)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_max_credits_is_checked(value: object) -> None:
    with pytest.raises(
        picpik.ValidationError, match=r"CreditBudget.max_credits must be an integer >= 1"
    ):
        picpik.CreditBudget(max_credits=value)  # type: ignore[arg-type]


def test_budget_must_be_a_credit_budget() -> None:
    with pytest.raises(picpik.ValidationError, match="budget must be a CreditBudget"):
        picpik.AsyncClient(public_key="p", private_key="k", budget=40)  # type: ignore[arg-type]


def test_the_blocking_client_takes_a_budget() -> None:
    emulator = Emulator(latency=0.05)
    budget = picpik.CreditBudget(max_credits=1)
    with picpik.Client(public_key=emulator.public_key, private_key=emulator.private_key,
                       base_url=emulator.url, transport=emulator.transport(),
                       budget=budget) as client:  # fmt: skip
        client.generate("x", **SMALL)
        with pytest.raises(picpik.BudgetExceededError):
            client.generate("y", **SMALL)
    assert budget.spent == 1


async def test_a_timed_out_wait_does_not_make_the_next_generate_wait_forever() -> None:
    """The timed-out task keeps its reservation (it goes on, and will cost), but nobody
    waits for it: a generate() that does not fit fails at once instead of hanging."""
    slow_first = iter([1.0])  # the task that times out takes 1 s; the one after, 0.1 s
    emulator = Emulator(latency=lambda rng: next(slow_first, 0.1))
    budget = picpik.CreditBudget(max_credits=5)
    async with make_client(emulator, budget=budget) as client:
        with pytest.raises(picpik.TaskTimeoutError) as caught:
            await client.generate("slow", timeout=0.2, **SMALL)
        with anyio.fail_after(5), pytest.raises(picpik.BudgetExceededError):
            await client.generate("next", **SMALL)
        await client.wait(caught.value.task_uid)  # seen to end: the reservation settles
        assert (budget.spent, budget.reserved) == (1, 0)
        await client.generate("now it fits", **SMALL)
    assert budget.spent == 2
