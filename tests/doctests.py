"""Run a private module's docstring examples, those of the classes it exports included.

`picpik_async/__init__.py` makes every exported class and function report
`picpik_async` as its `__module__` (as httpx does), and `doctest.testmod` only looks
into objects whose module is the one it was given: it would skip, without a word, the
examples of `_errors.ValidationError`, `_models.TaskHandle` or `_signing.sign`.
`run_doctests` also looks into the classes and functions the module lists in its
`__all__` and that report the package's name.
"""

from __future__ import annotations

import doctest
import inspect
import types

__all__ = ["run_doctests"]

PACKAGE = "picpik_async"


class _ExportedNameFinder(doctest.DocTestFinder):
    """A DocTestFinder that also accepts the module's exported, re-homed names."""

    def _from_module(self, module: types.ModuleType | None, object: object) -> bool:
        rehomed = inspect.isclass(object) or inspect.isfunction(object)
        if module is not None and rehomed and getattr(object, "__module__", None) == PACKAGE:
            name = getattr(object, "__name__", "")
            exported = getattr(module, "__all__", ())
            return name in exported and vars(module).get(name) is object
        return bool(super()._from_module(module, object))  # type: ignore[misc]


def run_doctests(module: types.ModuleType, *, optionflags: int = 0) -> doctest.TestResults:
    """Like `doctest.testmod(module, optionflags=...)`, seeing exported classes too.

    Example:
        >>> import picpik_async._errors
        >>> run_doctests(picpik_async._errors, optionflags=doctest.ELLIPSIS).failed
        0
    """
    finder = _ExportedNameFinder()
    runner = doctest.DocTestRunner(verbose=False, optionflags=optionflags)
    for test in finder.find(module, module.__name__):
        runner.run(test)
    return runner.summarize(verbose=False)
