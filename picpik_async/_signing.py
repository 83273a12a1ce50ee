"""PICPIK request signatures, and the JSON body that matches them.

PURE: this module does no I/O, never imports anyio or httpx and never awaits.

The algorithm is the one of ``docs/protocol.md``, "Signing" (and
https://picpik.ai/api-docs/signature): drop ``Signature``, sort the top-level
keys, concatenate ``key + encode(value)`` for each, append the private key and
take the lowercase hex SHA1 of the UTF-8 bytes. Nested values are *not*
flattened into dotted keys the way UCloud's SDK does it (section 2.3): lists
concatenate their encoded elements and mappings their sorted ``key + value``
pairs, recursively.

Two rules keep the signature and the bytes on the wire in agreement:

* ``None`` values are left out of every mapping, both when signing and in
  `dumps`; a ``None`` directly inside a list is refused, because there is no
  way to leave it out without changing the meaning of the list.
* Floats are written by `format_float` in both places, so ``7.0`` is signed
  as ``7`` and sent as ``7``, and ``1e-05`` is signed and sent as ``0.00001``.

No error raised here ever contains the private key or the string-to-sign
(which ends with the private key); messages name the offending key path only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar, overload

from picpik_async._errors import ValidationError

__all__ = ["drop_none", "dumps", "encode_value", "format_float", "sign"]

_T = TypeVar("_T")

# The key that carries the signature is never part of what is signed (spec §2.1 step 1).
_SIGNATURE_KEY = "Signature"

# One reusable encoder for JSON strings: json's C-accelerated escaping, non-ASCII kept.
_JSON_STRING = json.JSONEncoder(ensure_ascii=False)

_SUPPORTED = "str, int, float, bool, list, tuple or a mapping with str keys"


def sign(params: Mapping[str, Any], private_key: str) -> str:
    """Compute the PICPIK signature of a request.

    Every key except ``Signature`` is signed; keys whose value is ``None`` are
    left out at every nesting level, exactly as `dumps` leaves them out of the
    body. Top-level keys sort by code point, so ``request_uuid`` comes after
    every capitalised key.

    Args:
        params: the request parameters, as they will be sent in the JSON body.
        private_key: the account's private key; it only ever enters the hash.

    Returns:
        The 40-character lowercase hex SHA1 to send as ``Signature``.

    Raises:
        ValidationError: a value cannot be signed (NaN or infinity, ``None``
            inside a list, an unsupported type, a non-str key, or text that is
            not valid Unicode). The message names the key path, never the key.

    Example:
        >>> sign({"Action": "ListModels", "PublicKey": "abcdefg"}, "123456")
        '4a20bc1141494035f6aaaad13224c94c5a8bc3a5'
    """
    data = _utf8(_string_to_sign(params, private_key))
    if data is None:
        # Raised outside any `except` block on purpose: a chained UnicodeEncodeError
        # would carry the whole string-to-sign, private key included.
        raise ValidationError(_unencodable_message(_signed_params(params), "the private key"))
    # The API mandates SHA1 (spec §2.1 step 5); the choice is not ours to make. Ruff's S324
    # already accepts SHA1 with usedforsecurity=False, so no noqa is needed (RUF100).
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def encode_value(value: object) -> str:
    """Encode one value the way it appears in the string-to-sign (spec table 2.2).

    Strings are used raw, booleans become ``true``/``false``, integers their
    decimal digits, floats go through `format_float`, lists and tuples
    concatenate their encoded elements, and mappings concatenate
    ``key + encode(value)`` in sorted key order, skipping ``None`` values.

    Args:
        value: a JSON-like value.

    Returns:
        The encoded text (empty for an empty string, list or mapping).

    Raises:
        ValidationError: the value, or something nested in it, cannot be signed.

    Example:
        >>> encode_value({"b": [1, 2.5], "a": True})
        'atrueb12.5'
    """
    parts: list[str] = []
    _encode_into(parts, value, "")
    return "".join(parts)


def format_float(value: float) -> str:
    """Write a float the one way it is both signed and sent.

    Integral floats take integer form (``42.0`` gives ``42``, ``-0.0`` gives
    ``0``). Other floats take the shortest text that reads back as the same
    float (Python's ``repr``), written positionally, never in exponent form:
    ``1e-05`` gives ``0.00001``.

    Args:
        value: a finite float.

    Returns:
        The decimal text; ``float(format_float(x)) == x`` always holds.

    Raises:
        ValidationError: the value is NaN or infinite (also a ValueError).

    Example:
        >>> format_float(7.0), format_float(0.35), format_float(1.2345675e-07)
        ('7', '0.35', '0.00000012345675')
    """
    return _format_float(value, "")


@overload
def drop_none(value: Mapping[str, Any]) -> dict[str, Any]: ...
@overload
def drop_none(value: list[Any] | tuple[Any, ...]) -> list[Any]: ...
@overload
def drop_none(value: _T) -> _T: ...
def drop_none(value: object) -> object:
    """Copy a JSON-like structure, leaving out every ``None`` value of every mapping.

    Mappings become dicts (key order kept) and tuples become lists; other
    values are returned as they are.

    Args:
        value: a JSON-like value.

    Returns:
        The copy without ``None``-valued keys.

    Raises:
        ValidationError: a ``None`` sits directly inside a list; it cannot be
            dropped without shifting the other elements, nor signed unambiguously.

    Example:
        >>> drop_none({"Seed": None, "Prompts": [{"Text": "cat", "Weight": None}]})
        {'Prompts': [{'Text': 'cat'}]}
    """
    return _drop_none(value, "")


def dumps(body: Mapping[str, Any]) -> bytes:
    """Serialise a request body to the JSON bytes that are sent.

    The output is compact UTF-8 JSON with non-ASCII characters kept as they
    are and keys in the order given. Floats are written with `format_float`
    so that the JSON text and the string-to-sign agree, and ``None``-valued
    keys are left out just as `sign` leaves them out.

    Args:
        body: the request body, usually including its ``Signature``.

    Returns:
        The UTF-8 encoded JSON document.

    Raises:
        ValidationError: a value cannot be sent (same rules as `sign`).

    Example:
        >>> dumps({"Action": "GenerateImages", "CFGScale": 7.0, "Strength": 1e-05})
        b'{"Action":"GenerateImages","CFGScale":7,"Strength":0.00001}'
    """
    parts: list[str] = []
    _dump_into(parts, body, "")
    data = _utf8("".join(parts))
    if data is None:
        raise ValidationError(_unencodable_message(body, "the body"))
    return data


def _string_to_sign(params: Mapping[str, Any], private_key: str) -> str:
    """Build the text that is hashed; it ends with the private key, so never show it."""
    parts: list[str] = []
    _encode_into(parts, _signed_params(params), "")
    parts.append(private_key)
    return "".join(parts)


def _signed_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the top-level parameters that take part in the signature."""
    return {key: value for key, value in params.items() if key != _SIGNATURE_KEY}


def _encode_into(parts: list[str], value: object, path: str) -> None:
    """Append the string-to-sign encoding of ``value`` to ``parts``."""
    if isinstance(value, str):
        parts.append(value)
    elif isinstance(value, Mapping):
        for key in _sorted_keys(value, path):
            item = value[key]
            if item is not None:
                parts.append(key)
                _encode_into(parts, item, _key_path(path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _encode_into(parts, _list_item(item, path, index), f"{path}[{index}]")
    else:
        parts.append(_scalar_text(value, path))


def _dump_into(parts: list[str], value: object, path: str) -> None:
    """Append the compact JSON text of ``value`` to ``parts``."""
    if isinstance(value, str):
        parts.append(_JSON_STRING.encode(value))
    elif isinstance(value, Mapping):
        parts.append("{")
        separator = ""
        for key, item in value.items():
            _check_key(key, path)
            if item is not None:
                parts.extend((separator, _JSON_STRING.encode(key), ":"))
                _dump_into(parts, item, _key_path(path, key))
                separator = ","
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _dump_into(parts, _list_item(item, path, index), f"{path}[{index}]")
        parts.append("]")
    else:
        parts.append(_scalar_text(value, path))


def _drop_none(value: object, path: str) -> object:
    """Do the work of `drop_none`, tracking the key path for error messages."""
    if isinstance(value, Mapping):
        return {
            key: _drop_none(item, _key_path(path, str(key)))
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, list | tuple):
        return [
            _drop_none(_list_item(item, path, index), f"{path}[{index}]")
            for index, item in enumerate(value)
        ]
    return value


def _scalar_text(value: object, path: str) -> str:
    """Encode a bool, int or float; the text is the same when signed and when sent."""
    # bool before int: True is an int too, and must read "true", not "1".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # int() first so that an IntEnum or other subclass cannot change the text.
        return str(int(value))
    if isinstance(value, float):
        return _format_float(value, path)
    raise ValidationError(
        f"{_where(path)}: cannot sign a value of type {type(value).__name__}; expected {_SUPPORTED}"
    )


def _format_float(value: float, path: str) -> str:
    """Do the work of `format_float`, naming ``path`` when the value is refused."""
    if not math.isfinite(value):
        raise ValidationError(
            f"{_where(path)}: {value!r} is not a finite number; "
            "PICPIK requests cannot carry NaN or infinity"
        )
    if value.is_integer():
        # int() gives the exact integer, so the JSON reads back equal to the float.
        return str(int(value))
    # repr is the shortest round-trip text; Decimal writes it without an exponent.
    # No precision is given, so the decimal context cannot round anything here.
    return format(Decimal(repr(float(value))), "f")


def _sorted_keys(mapping: Mapping[Any, Any], path: str) -> list[str]:
    """Return the keys of ``mapping`` in code-point order (spec §2.1 step 2).

    Code-point order is also UTF-8 byte order, which is what a byte-wise
    server-side sort would produce, even outside the Basic Multilingual Plane.
    """
    keys = list(mapping)
    for key in keys:
        _check_key(key, path)
    keys.sort()
    return keys


def _check_key(key: object, path: str) -> None:
    """Refuse a mapping key that is not a string."""
    if not isinstance(key, str):
        raise ValidationError(f"{_where(path)}: mapping keys must be str, not {type(key).__name__}")


def _list_item(item: _T, path: str, index: int) -> _T:
    """Return a list element, refusing ``None`` (it cannot be dropped or signed)."""
    if item is None:
        raise ValidationError(
            f"{path}[{index}]: None inside a list cannot be signed unambiguously; remove it"
        )
    return item


def _key_path(path: str, key: str) -> str:
    """Extend a dotted key path, e.g. ``MainModel`` + ``CFGScale``."""
    return f"{path}.{key}" if path else key


def _where(path: str) -> str:
    """Name a position for an error message."""
    return path or "value"


def _utf8(text: str) -> bytes | None:
    """Encode ``text`` as UTF-8, or return None if it holds a lone surrogate."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Deliberately dropped: the exception object holds the whole text.
        return None


def _unencodable_message(value: object, fallback: str) -> str:
    """Describe where a lone surrogate sits, without quoting any of the text."""
    where = _find_unencodable(value, "") or fallback
    return f"{where}: text is not valid Unicode (it holds a lone surrogate)"


def _find_unencodable(value: object, path: str) -> str | None:
    """Name the first key or string that is not valid UTF-8, or return None."""
    if isinstance(value, str):
        return _where(path) if _utf8(value) is None else None
    children: list[tuple[object, str]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _utf8(key) is None:
                # The key itself cannot be quoted: a lone surrogate does not even print.
                return f"a key in {path}" if path else "a top-level key"
            children.append((item, _key_path(path, key)))
    elif isinstance(value, list | tuple):
        children.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
    for child, child_path in children:
        found = _find_unencodable(child, child_path)
        if found is not None:
            return found
    return None
