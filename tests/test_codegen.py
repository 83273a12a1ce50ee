"""The generated blocking twins: fresh, complete, and the generator's handling of odd shapes.

`picpik_async/_sync_methods.py` is written by `python -m picpik_async._codegen`
from `AsyncClient`'s source (house style 3b: one definition, derived twins).
"""

from __future__ import annotations

import inspect
import textwrap
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import picpik_async as picpik
from picpik_async import _codegen

# Async-only lifetime, and what only the blocking client has (documented in `Client`).
ASYNC_ONLY = {"aclose"}
BLOCKING_ONLY = {"close", "read_image", "save_image"}
# Hand-written twins whose parameters' annotations are wider on purpose.
WIDER_ANNOTATIONS = {"download": {"result"}}


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """The public functions of a class, inherited ones included."""
    return {
        name: method
        for name, method in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def parameters(method: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()]


def test_checked_in_file_is_fresh() -> None:
    """`_sync_methods.py` is what the generator writes now: CI fails when it is stale."""
    assert _codegen.TARGET.read_text(encoding="utf-8") == _codegen.generate(), (
        "picpik_async/_sync_methods.py is stale: run `python -m picpik_async._codegen`"
    )


def test_check_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--check` exits 1 on a stale file and leaves it alone; without it the file is written."""
    target = tmp_path / "picpik_async" / "_sync_methods.py"
    target.parent.mkdir()
    target.write_text("# stale\n", encoding="utf-8")
    monkeypatch.setattr(_codegen, "TARGET", target)
    monkeypatch.setattr(_codegen, "HERE", target.parent)
    monkeypatch.setattr(_codegen, "read_sources", lambda names: real_sources(names))
    assert _codegen.main(["--check"]) == 1
    assert target.read_text(encoding="utf-8") == "# stale\n"
    assert _codegen.main([]) == 0
    assert _codegen.main(["--check"]) == 0


def real_sources(names: typing.Sequence[str]) -> dict[str, str]:
    """The package's own module sources."""
    here = Path(picpik.__file__).parent
    return {name: (here / f"{name}.py").read_text(encoding="utf-8") for name in names}


def test_clients_have_the_same_public_methods() -> None:
    """Client and AsyncClient: same methods, same parameter names, kinds and defaults."""
    blocking = public_methods(picpik.Client)
    asynchronous = public_methods(picpik.AsyncClient)
    assert set(blocking) - BLOCKING_ONLY == set(asynchronous) - ASYNC_ONLY
    assert "list_tasks" in blocking
    for name in set(blocking) & set(asynchronous):
        assert parameters(blocking[name]) == parameters(asynchronous[name]), name
        wider = WIDER_ANNOTATIONS.get(name, set())
        ours = inspect.signature(blocking[name]).parameters.values()
        theirs = inspect.signature(asynchronous[name]).parameters.values()
        for mine, other in zip(ours, theirs, strict=True):
            if mine.name not in wider:
                assert mine.annotation == other.annotation, f"{name}({mine.name})"


def test_overloads_are_mirrored() -> None:
    """Each overload of an AsyncClient method has a blocking twin with its parameters."""
    for name, method in public_methods(picpik.AsyncClient).items():
        if name in ASYNC_ONLY:
            continue
        twins = typing.get_overloads(getattr(picpik.Client, name))
        assert [parameters(o) for o in twins] == [
            parameters(o) for o in typing.get_overloads(method)
        ], name


def test_no_method_forwards_star_args() -> None:
    """No blocking method hides its parameters behind `*args, **kwargs`."""
    for name, method in public_methods(picpik.Client).items():
        text = str(inspect.signature(method))
        assert "P.args" not in text, name
        assert "P.kwargs" not in text, name


def test_result_methods_return_blocking_results() -> None:
    """The return annotations are mapped: results, lists of them, and streams."""
    hints = {
        name: inspect.signature(m).return_annotation
        for name, m in public_methods(picpik.Client).items()
    }
    assert hints["generate"] == "BlockingResult"
    assert hints["remove_backgrounds"] == "list[BlockingResult]"
    assert hints["describe"] == "list[str]"
    assert hints["generate_many"].startswith("Iterator[")


# --- the generator on made-up sources -------------------------------------------------------

CLIENT = '''
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar, Unpack, overload

from ._images import ImageInput
from ._mixin import Mixin, needs_open
from ._options import DEFAULT, Options
from ._results import GenerationResult
from ._errors import PicpikError

R = TypeVar("R")


class ResultStream:
    """Results."""


class AsyncClient(Mixin):
    async def __aenter__(self) -> AsyncClient:
        return self

    async def aclose(self) -> None:
        """Close."""

    async def _private(self) -> None:
        """Private."""

    @property
    def name(self) -> str:
        return ""

    @needs_open
    async def make(
        self, prompt: str, /, size: int = DEFAULT, *images: ImageInput, **options: Unpack[Options]
    ) -> GenerationResult:
        """Make one.

        More words that are not copied.
        """

    async def echo(self, value: R, *, times: int = 1) -> R:
        """Echo."""

    @overload
    def many(
        self, prompts: Iterable[str], *, return_exceptions: Literal[False] = False
    ) -> ResultStream[GenerationResult]: ...
    @overload
    def many(
        self, prompts: Iterable[str], *, return_exceptions: Literal[True]
    ) -> ResultStream[GenerationResult | PicpikError]: ...
    def many(
        self, prompts: Iterable[str], *, return_exceptions: bool = False
    ) -> ResultStream[GenerationResult] | ResultStream[GenerationResult | PicpikError]:
        """Many."""
        raise NotImplementedError
'''

MIXIN = '''
from __future__ import annotations

from collections.abc import Sequence

from ._results import GenerationResult


def needs_open(method):
    return method


class Mixin:
    async def echo(self, value: int) -> int:
        """Overridden by the client: not this one."""

    @needs_open
    async def batch(self, images: Sequence[str]) -> list[GenerationResult]:
        """Batch."""
'''


def generated(client: str = CLIENT, mixin: str = MIXIN) -> str:
    """The generator's output for made-up sources (compiled, so it is valid Python)."""
    text = _codegen.generate({"_client": client, "_mixin": mixin})
    compile(text, "_sync_methods.py", "exec")
    return text


def test_signatures_are_copied_with_every_kind() -> None:
    """Positional-only, defaults, *args, **Unpack[...]: copied and passed on by kind."""
    text = generated()
    assert (
        "    def make(\n        self, prompt: str, /, size: int = DEFAULT, *images: ImageInput, "
        "**options: Unpack[Options]\n    ) -> BlockingResult:"
    ) in text
    assert "functools.partial(self._async.make, prompt, size, *images, **options)" in text
    assert "return self._wrap(self._run(job))" in text
    assert '"""Make one.\n\n        Blocking twin of `AsyncClient.make()`' in text
    assert "More words" not in text


def test_decorators_private_and_lifetime_are_left_out() -> None:
    """`@needs_open` is not copied; dunders, private methods, aclose and properties have no twin."""
    text = generated()
    assert "needs_open" not in text
    for absent in ("__aenter__", "aclose", "_private", "def name("):
        assert absent not in text


def test_overloads_and_literals() -> None:
    """Overload groups keep their Literal parameters; streams become plain iterators."""
    text = generated()
    assert text.count("@overload\n    def many(") == 2
    assert (
        "return_exceptions: Literal[False] = False\n    ) -> Iterator[BlockingResult]: ..." in text
    )
    assert ") -> Iterator[BlockingResult | PicpikError]: ..." in text
    assert ") -> Iterator[BlockingResult] | Iterator[BlockingResult | PicpikError]:" in text
    assert "return self._iterate(self._run_sync(job))" in text


def test_the_subclass_wins_and_mixins_are_read() -> None:
    """A mixin's method is twinned unless the client overrides it; TypeVars are copied."""
    text = generated()
    assert "def batch(self, images: Sequence[str]) -> list[BlockingResult]:" in text
    assert "return self._wrap_all(self._run(job))" in text
    assert "def echo(self, value: R, *, times: int = 1) -> R:" in text
    assert "Overridden" not in text
    assert 'R = TypeVar("R")' in text


def test_imports_follow_the_source() -> None:
    """Defaults are imported at run time, names only annotations use under TYPE_CHECKING."""
    text = generated()
    runtime, _, typed = text.partition("if TYPE_CHECKING:")
    assert "from ._options import DEFAULT\n" in runtime
    assert "from ._options import Options" in typed
    assert "from ._images import ImageInput" in typed
    assert "Literal" in typed
    # AsyncClient is the one class-level annotation: imported at run time, so that
    # `typing.get_type_hints(Client)` resolves (importing _client from here is no cycle).
    assert "from ._client import AsyncClient\n" in runtime
    assert "from ._client import" not in typed


@pytest.mark.parametrize(
    ("method", "message"),
    [
        pytest.param(
            "async def odd(self) -> tuple[GenerationResult, ...]:\n        'Odd.'",
            "no conversion",
            id="unknown-result-shape",
        ),
        pytest.param(
            "async def odd(self) -> Unknown:\n        'Odd.'",
            "neither imports nor defines",
            id="unimported-name",
        ),
        pytest.param("async def odd(self):\n        'Odd.'", "annotate", id="no-return-type"),
        pytest.param("async def odd(self) -> int:\n        pass", "docstring", id="no-docstring"),
        pytest.param(
            "async def odd(self, job: int) -> int:\n        'Odd.'", "shadows", id="shadowing"
        ),
        pytest.param(
            "@staticmethod\nasync def odd() -> int:\n        'Odd.'", "static", id="static"
        ),
    ],
)
def test_shapes_it_refuses(method: str, message: str) -> None:
    """What the generator cannot twin faithfully fails loudly, naming the method."""
    client = CLIENT + textwrap.indent(f"\n{method}\n", "    ")
    with pytest.raises(_codegen.CodegenError, match=message):
        _codegen.Generator({"_client": client, "_mixin": MIXIN}).render()


def test_the_blocking_client_type_hints_resolve() -> None:
    """`typing.get_type_hints(Client)` works (cattrs and users may call it)."""
    assert typing.get_type_hints(picpik.Client)["_async"] is picpik.AsyncClient
