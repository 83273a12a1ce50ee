"""The attrs validators and converters shared by every model and request.

PURE: no I/O, no anyio, no httpx. Each validator raises `ValidationError`
naming the model, the field, the allowed range and the value, so a bad value
fails where it is made (docs/architecture.md, "Validation").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import attrs

from ._errors import ValidationError
from ._signing import encode_value

__all__ = [
    "COMMON_FIELDS",
    "check_extras",
    "float_range",
    "fold",
    "instance_of",
    "int_range",
    "non_empty_str",
    "one_of",
    "to_extras",
    "to_float",
    "to_step",
    "to_tuple",
    "tuple_of",
    "where",
]

# The common request fields (section 1.2 of the API): the protocol sets them, extras may not.
COMMON_FIELDS: Final = ("Action", "PublicKey", "Signature", "request_uuid")


def _is_request(instance: object) -> bool:
    """Whether a model is a request (it names a wire action)."""
    return isinstance(getattr(type(instance), "action", None), str)


def where(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def int_range(lo: int, hi: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and attribute.default is None:
            return
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValidationError(
                f"{where(instance, attribute)} must be an integer in {lo}..{hi}, got {value!r}"
            )

    return check


def float_range(lo: float, hi: float) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and attribute.default is None:
            return
        ok = isinstance(value, float) and math.isfinite(value) and lo <= value <= hi
        if not ok:
            raise ValidationError(
                f"{where(instance, attribute)} must be a number in {lo:g}..{hi:g}, got {value!r}"
            )

    return check


def to_step(value: float | None) -> float | None:
    """Round a user number to the documented 0.01 step (docs/protocol.md, "Request values")."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return round(float(value), 2)
    return value


def to_float(value: float | None) -> float | None:
    # Ints are accepted for float fields; bools are left for the validator to refuse.
    raw: Any = value
    return float(raw) if type(raw) is int else value


def to_tuple(value: Sequence[Any]) -> tuple[Any, ...]:
    # Lists become tuples (hashable, frozen); anything else is left for the
    # validator to refuse with the field's name (a bare str would split into chars).
    if isinstance(value, list | tuple):
        return tuple(value)
    return cast("tuple[Any, ...]", value)


def tuple_of(kind: type, *, non_empty_items: bool = False) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and attribute.default is None:
            return
        bad = not isinstance(value, tuple) or not all(isinstance(v, kind) for v in value)
        if not bad and non_empty_items:
            bad = not all(value)  # type: ignore[arg-type]
        if bad:
            raise ValidationError(
                f"{where(instance, attribute)} must be a list of {kind.__name__}"
                f"{' (non-empty)' if non_empty_items else ''}, got {value!r:.80}"
            )

    return check


def instance_of(kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise ValidationError(
                f"{where(instance, attribute)} must be {names}, got {value!r:.80}"
            )

    return check


def non_empty_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{where(instance, attribute)} must be a non-empty string, got {value!r}"
        )


def one_of(choices: Sequence[str]) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and value not in choices:
            allowed = ", ".join(choices)
            raise ValidationError(
                f"{where(instance, attribute)} must be one of {allowed}, got {value!r}"
            )

    return check


def to_extras(value: Mapping[str, Any]) -> dict[str, Any]:
    # A private copy, so a caller's later change to its dict cannot reach the wire;
    # anything but a mapping is left for the validator to refuse with the field's name.
    raw: object = value
    return dict(value) if isinstance(raw, Mapping) else cast("dict[str, Any]", raw)


def fold(name: str) -> str:
    """One spelling for all spellings of a field name: `Width`, `width`; `CFGScale`, `cfg_scale`."""
    return name.replace("_", "").casefold()


def check_extras(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    place = where(instance, attribute)
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ValidationError(
            f"{place} must be a mapping of wire field names (non-empty strings) to values, "
            f"got {value!r:.80}"
        )
    fields = attrs.fields(cast("type[attrs.AttrsInstance]", type(instance)))
    known = {fold(a.name): a.name for a in fields if a is not attribute}
    common = {fold(name): name for name in COMMON_FIELDS} if _is_request(instance) else {}
    for key in value:
        if fold(key) in common:
            raise ValidationError(
                f"{place} key {key!r} is the common field {common[fold(key)]!r} "
                "(section 1.2), which the client sets itself"
            )
        if fold(key) in known:
            raise ValidationError(
                f"{place} key {key!r} collides with the known field "
                f"{known[fold(key)]!r}; set {known[fold(key)]}= instead"
            )
    try:
        encode_value(value)
    except ValidationError as exc:
        raise ValidationError(f"{place} cannot be sent: {exc}") from None
