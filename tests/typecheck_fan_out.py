"""Type-checked by CI (`mypy --strict tests`), never run: users' code reading fan-out results.

`generate_many()` is overloaded on `return_exceptions`: by default its items
are `GenerationResult`s, so `result.images` needs no narrowing.
"""

from __future__ import annotations

from typing import assert_type

import picpik_async as picpik


async def default_items_are_results(client: picpik.AsyncClient) -> None:
    """The default stream yields results."""
    async with client.generate_many(["a cat", "a dog"], width=768) as results:
        async for result in results:
            assert_type(result, picpik.GenerationResult)
            await result.images[0].save(f"{result.task_uid}.png")


async def bare_loop_items_are_results(client: picpik.AsyncClient) -> None:
    """The bare `async for` form is typed the same."""
    async for result in client.generate_many(["a cat"]):
        assert result.images[0].url


async def with_exceptions_items_may_be_errors(client: picpik.AsyncClient) -> None:
    """With return_exceptions=True, an item may be the error of its prompt."""
    async for item in client.generate_many(["a cat"], return_exceptions=True):
        assert_type(item, picpik.GenerationResult | picpik.PicpikError)
        if isinstance(item, picpik.PicpikError):
            assert item.prompt is not None
        else:
            assert item.images[0].url
