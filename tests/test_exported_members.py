"""The public surface: `picpik_async.__all__` is sorted, resolves, and is complete."""

from __future__ import annotations

import doctest
import importlib
import pickle
import re
import tomllib
import traceback
import types
import typing
from pathlib import Path

import attrs
import pytest
from doctests import run_doctests

import picpik_async
from picpik_async import PicpikError, _validators
from picpik_async._signing import sign

ROOT = Path(__file__).resolve().parent.parent

# Exported classes and functions (not `__version__`, nor the `ImageInput` alias).
PUBLISHED = [
    name
    for name in picpik_async.__all__
    if isinstance(getattr(picpik_async, name), type | types.FunctionType)
]

# Private modules whose `__all__` lists feed the public surface.
PRIVATE_MODULES = [
    "_actions",
    "_client",
    "_decoding",
    "_errors",
    "_files",
    "_images",
    "_models",
    "_polling",
    "_protocol",
    "_registry",
    "_results",
    "_retry",
    "_signing",
    "_streams",
    "_sync",
    "_validators",
    "_wire",
]

# Names listed in a private module's `__all__` that are deliberately not re-exported:
# helpers of the pure core that the client and the emulator use, not users.
INTERNAL = {
    "_actions": {
        "DEFAULT_MODEL",
        "DESCRIBE_LANGUAGES",
        "sdxl_request",
        "as_coordinates",
        "check_options",
        "generation_fields",
        "task_uids_of",
    },
    "_client": {"DEFAULT_BASE_URL"},
    "_decoding": {"ACCEPT_ENCODING", "BodyDecoder", "codings", "too_large"},
    "_files": {
        "IMAGE_SUFFIXES",
        "NAME_FIELDS",
        "check_name_template",
        "child_path",
        "image_file_name",
        "templated_file_name",
        "text_file_name",
    },
    "_images": {
        "DOWNLOAD_TIMEOUT",
        "Downloader",
        "MAX_DOWNLOAD_BYTES",
        "MAX_IMAGE_BYTES",
        "extension_for",
        "sniff_mime",
        "to_data_uri",
    },
    "_registry": {"ACTIONS", "Action", "register"},
    "_validators": set(_validators.__all__),
    "_streams": {"AttemptDeadline", "TooLateToSend", "collect_body", "copy_body", "read_body"},
    "_results": set(),
    "_sync": set(),
    "_errors": {"classify_api_error"},
    "_models": set(),
    "_polling": {
        "FailedPoll",
        "PollSchedule",
        "check_answer",
        "is_known_status",
        "missing_output",
        "on_failed_poll",
    },
    "_protocol": {
        "build_body",
        "garbled_answer",
        "lost_answer",
        "new_request_uuid",
        "parse_response",
        "proves_refusal",
        "wire_params",
    },
    "_retry": {"is_retryable", "parse_retry_after"},
    "_signing": {"drop_none", "dumps", "encode_value", "format_float"},
    "_wire": {"converter", "structure", "unstructure", "wire_name"},
}


def private_module(name: str) -> types.ModuleType:
    """Import one of the package's private modules."""
    return importlib.import_module(f"picpik_async.{name}")


def test_all_is_sorted() -> None:
    """`__all__` is sorted, like httpx's and anyio's."""
    assert picpik_async.__all__ == sorted(picpik_async.__all__)


def test_all_has_no_duplicates() -> None:
    """Each name is exported once."""
    assert len(set(picpik_async.__all__)) == len(picpik_async.__all__)


@pytest.mark.parametrize("name", picpik_async.__all__)
def test_every_name_resolves(name: str) -> None:
    """Every name in `__all__` is an attribute of the package."""
    assert getattr(picpik_async, name) is not None


@pytest.mark.parametrize("module_name", PRIVATE_MODULES)
def test_private_all_is_public_or_internal(module_name: str) -> None:
    """Every name a private module lists is either exported or knowingly internal."""
    module = private_module(module_name)
    listed = set(module.__all__)
    exported = listed & set(picpik_async.__all__)
    assert listed == exported | INTERNAL[module_name]
    assert not exported & INTERNAL[module_name]
    for name in exported:
        assert getattr(picpik_async, name) is getattr(module, name)


@pytest.mark.parametrize("module_name", PRIVATE_MODULES)
def test_private_all_resolves(module_name: str) -> None:
    """Every name a private module lists exists in that module."""
    module = private_module(module_name)
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name}"


def test_every_error_is_exported() -> None:
    """Every PicpikError subclass of the package is exported, so users can catch it."""
    errors = private_module("_errors")
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, PicpikError)
    }
    assert classes <= set(picpik_async.__all__)


def test_every_model_is_exported() -> None:
    """Every model and request type is exported."""
    assert set(private_module("_models").__all__) <= set(picpik_async.__all__)


@pytest.mark.parametrize(
    "name",
    [
        "sign",
        "task_status",
        "RetryPolicy",
        "RetryEvent",
        "PollSettings",
        "TaskHandle",
        "TaskStatus",
        "GenerateImagesSDXL",
        "Model",
        "InferenceParams",
        "Image2Image",
        "TaskDetail",
        "__version__",
    ],
)
def test_design_names_are_exported(name: str) -> None:
    """The pure core's public names (docs/architecture.md, "Module map") are exported."""
    assert name in picpik_async.__all__


def test_sign_is_exported() -> None:
    """`picpik_async.sign` is the signing function, and gives the documented answer."""
    assert picpik_async.sign is sign
    params = {"Action": "ListModels", "PublicKey": "abcdefg"}
    assert picpik_async.sign(params, "123456") == "4a20bc1141494035f6aaaad13224c94c5a8bc3a5"


def test_version() -> None:
    """The package has a version string."""
    assert isinstance(picpik_async.__version__, str)
    assert picpik_async.__version__


def test_version_lives_once() -> None:
    """pyproject.toml has no version of its own: hatchling reads `__version__` from `__init__`."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    source = ROOT / pyproject["tool"]["hatch"]["version"]["path"]
    assert source == Path(picpik_async.__file__)
    # The pattern hatchling's regex version source looks for, once and only once.
    found = re.findall(r"""^__version__\s*=\s*["']([^"']+)["']""", source.read_text(), re.M)
    assert found == [picpik_async.__version__]


@pytest.mark.parametrize("name", PUBLISHED)
def test_exported_names_report_the_package(name: str) -> None:
    """Exported classes and functions say `picpik_async`, not their private module."""
    assert getattr(picpik_async, name).__module__ == "picpik_async"


def test_errors_show_the_public_path() -> None:
    """A traceback names `picpik_async.APIError`, as a user imports it."""
    line = traceback.format_exception_only(picpik_async.APIError("no"))[-1]
    assert line.startswith("picpik_async.APIError: ")


@pytest.mark.parametrize("name", [n for n in PUBLISHED if attrs.has(getattr(picpik_async, n))])
def test_exported_annotations_still_resolve(name: str) -> None:
    """`typing.get_type_hints` still works on every exported model (cattrs relies on it)."""
    typing.get_type_hints(getattr(picpik_async, name))


@pytest.mark.parametrize(
    "name", [n for n in PUBLISHED if isinstance(getattr(picpik_async, n), type)]
)
def test_exported_classes_pickle_by_public_name(name: str) -> None:
    """Pickle finds every exported class under its public path."""
    cls = getattr(picpik_async, name)
    assert pickle.loads(pickle.dumps(cls)) is cls  # noqa: S301 - our own bytes


def test_docstring_examples_of_exported_names_still_run() -> None:
    """`tests/doctests.py` finds the examples `doctest.testmod` no longer sees."""
    module = private_module("_signing")
    names = {test.name for test in doctest.DocTestFinder().find(module) if test.examples}
    assert "picpik_async._signing.sign" not in names  # why the helper exists
    examples = sum(len(test.examples) for test in doctest.DocTestFinder().find(module))
    assert run_doctests(module, optionflags=0).attempted > examples
