"""The one cattrs converter between our snake_case models and PICPIK's PascalCase wire form.

PURE: no I/O, no anyio, no httpx. Only attrs classes are renamed, never user
dicts. Unknown answer fields are ignored (forward compatible); a missing or
mistyped required field raises `ProtocolError` through `structure()`.

A model's `extra_fields` (undocumented wire fields, see `_models`) are merged
into its wire form as given; reading wire data never fills them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._errors import ProtocolError, ValidationError

__all__ = ["converter", "structure", "unstructure", "wire_name"]

T = TypeVar("T")

# Names that are not plain PascalCase of the attribute (docs/protocol.md, "Field names on
# the wire").
RENAMES: Final[Mapping[str, str]] = {
    "cfg_scale": "CFGScale",
    "task_uid": "TaskUID",
    "task_uid_list": "TaskUIDList",
    "request_uuid": "request_uuid",
    "image2image": "Image2Image",
    "error_message": "ErrorMassage",  # sic: the docs misspell it (section 8.12)
    "use_main_model_vae": "UseMainModelVAE",  # section 3.0
    "background_image2image": "BackgroundImage2Image",  # section 3.9
}

# The attribute that carries a model's undocumented wire fields (see `_models`).
EXTRA_FIELDS: Final = "extra_fields"

# Other spellings accepted in answers, per class: wire alias -> canonical wire name.
# The legacy TaskDetail (section 4.10) is read too, should an old endpoint answer.
ALIASES: Final[Mapping[str, Mapping[str, str]]] = {
    "TaskDetail": {
        "ErrorMessage": "ErrorMassage",
        "TaskUid": "TaskUID",
        "TaskStatus": "Status",
        "FinalPictureUrls": "ImgList",
        "TaskErrorMsg": "ErrorMassage",
        "TaskErrorCode": "ErrorCode",
        "TaskType": "Action",
    },
}


def wire_name(attribute: str) -> str:
    """The wire name of a model attribute.

    Example:
        >>> wire_name("batch_size"), wire_name("cfg_scale")
        ('BatchSize', 'CFGScale')
    """
    return RENAMES.get(attribute) or "".join(part.capitalize() for part in attribute.split("_"))


def _strict(kind: type[Any]) -> Callable[[object, type[Any]], Any]:
    """A structure hook that refuses values of the wrong JSON type instead of coercing them."""

    def hook(value: object, _: type[Any]) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {kind.__name__}, got a boolean")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return hook


def _is_var_tuple(cls: Any) -> bool:
    args = get_args(cls)
    return get_origin(cls) is tuple and len(args) == 2 and args[1] is Ellipsis


def _var_tuple_hook(cls: Any) -> Callable[[object, Any], tuple[Any, ...]]:
    item = get_args(cls)[0]

    def hook(value: object, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return tuple(converter.structure(v, item) for v in value)

    return hook


def _renames(cls: type[Any]) -> dict[str, Any]:
    return {
        a.name: override(omit=True)
        if a.name == EXTRA_FIELDS
        else override(rename=wire_name(a.name))
        for a in attrs.fields(cls)
    }


def _unstructure_factory(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    generated = make_dict_unstructure_fn(cls, converter, **_renames(cls))
    if EXTRA_FIELDS not in attrs.fields_dict(cls):
        return generated

    def hook(obj: Any) -> dict[str, Any]:
        # The model refused keys that collide with its own fields, so this only adds.
        data: dict[str, Any] = generated(obj)
        data.update(obj.extra_fields)
        return data

    return hook


def _structure_factory(cls: type[Any]) -> Callable[[Mapping[str, Any], Any], Any]:
    generated = make_dict_structure_fn(cls, converter, **_renames(cls))
    aliases = ALIASES.get(cls.__name__, {})

    def hook(value: Mapping[str, Any], target: Any) -> Any:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object for {cls.__name__}, got {type(value).__name__}")
        # null means absent: optional fields take their default, required ones fail.
        data = {k: v for k, v in value.items() if v is not None}
        for alias, canonical in aliases.items():
            if alias in data and canonical not in data:
                data[canonical] = data[alias]
        return generated(data, target)

    return hook


converter: Final = cattrs.Converter(forbid_extra_keys=False)
for _kind in (str, int, float, bool):
    converter.register_structure_hook(_kind, _strict(_kind))
converter.register_structure_hook_factory(_is_var_tuple, _var_tuple_hook)
converter.register_unstructure_hook_factory(attrs.has, _unstructure_factory)
converter.register_structure_hook_factory(attrs.has, _structure_factory)


def unstructure(obj: Any) -> Any:
    """Turn a model into its wire form (PascalCase dicts, lists for tuples, None kept).

    Example:
        >>> from picpik_async import Model
        >>> unstructure(Model("PICPIK General"))["ModelCode"]
        'PICPIK General'
    """
    return converter.unstructure(obj)


def structure(data: object, cls: type[T], *, validate: bool = False) -> T:
    """Build a model from wire data, raising `ProtocolError` when it does not fit.

    By default values are not range-checked (a newer service may report a value
    our request validation would refuse); types always are. With `validate=True`
    (the emulator reading a request) a range error raises `ValidationError`.

    Example:
        >>> from picpik_async import TaskDetail
        >>> structure({"TaskUID": "u1", "Status": "Running"}, TaskDetail).status
        'Running'
    """
    try:
        if validate:
            return converter.structure(data, cls)
        with attrs.validators.disabled():
            return converter.structure(data, cls)
    except Exception as exc:  # any failure here is the data's fault
        invalid = _first_validation_error(exc)
        if invalid is not None:
            raise invalid from None
        raise ProtocolError(f"answer does not fit {cls.__name__}: {_summary(exc)}") from exc


def _first_validation_error(exc: BaseException) -> ValidationError | None:
    if isinstance(exc, ValidationError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_validation_error(inner)
            if found is not None:
                return found
    return None


def _summary(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
