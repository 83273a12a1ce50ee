"""The names of the files the library writes, and the rule that keeps them in their folder.

PURE: no I/O, no anyio, no httpx (pathlib is used for its string rules only).

Every file the library names itself is `<TaskUID>-<index><ext>` or
`<TaskUID>.txt` inside a folder the caller chose. A TaskUID comes from the
service, so it is checked twice: when the answer is parsed (`_protocol`) and
here, where it becomes a name, so no answer can make us write elsewhere
(docs/protocol.md, "TaskUIDs").
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path, PurePath
from typing import Final

from ._errors import ProtocolError, ValidationError
from ._models import TASK_UID_RULE, is_task_uid

__all__ = [
    "IMAGE_SUFFIXES",
    "NAME_FIELDS",
    "check_name_template",
    "child_path",
    "image_file_name",
    "templated_file_name",
    "text_file_name",
]

IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})


def _checked_uid(task_uid: str) -> str:
    if not is_task_uid(task_uid):
        raise ProtocolError(
            f"TaskUID {task_uid!r:.60} cannot name a file (expected {TASK_UID_RULE})",
            retryable=False,
        )
    return task_uid


def image_file_name(task_uid: str, index: int, suffix: str) -> str:
    """The file name of result image `index` of a task.

    Example:
        >>> image_file_name("cktlm6lrh4miq8ng9nf0", 0, ".png")
        'cktlm6lrh4miq8ng9nf0-0.png'
    """
    if suffix not in IMAGE_SUFFIXES:
        suffix = ".png"
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ProtocolError(f"image index {index!r} cannot name a file", retryable=False)
    return f"{_checked_uid(task_uid)}-{index}{suffix}"


#: The fields a file-name template may use.
NAME_FIELDS: Final = ("task_uid", "index", "seed", "prompt")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


def check_name_template(template: str, *, what: str = "name") -> str:
    """Refuse a file-name template with unknown fields, separators or bad format syntax.

    Example:
        >>> check_name_template("{index}-{seed}")
        '{index}-{seed}'
    """
    try:
        fields = [field for _, field, spec, _ in string.Formatter().parse(template)
                  if field is not None]  # fmt: skip
    except ValueError as error:
        raise ValidationError(f"{what} {template!r}: {error}") from None
    allowed = ", ".join("{" + f + "}" for f in NAME_FIELDS)
    unknown = [f for f in fields if f not in NAME_FIELDS]
    if unknown:
        raise ValidationError(
            f"{what} {template!r}: unknown field {{{unknown[0]}}}; allowed: {allowed}"
        )
    if not template or any(c in template for c in "/\\\0") or template.strip(".") == "":
        raise ValidationError(
            f"{what} {template!r} must be a plain file name (no / or \\), with fields {allowed}"
        )
    return template


def templated_file_name(
    template: str, *, task_uid: str, index: int, seed: int | None, prompt: str, suffix: str,
    images: int = 1,
) -> str:  # fmt: skip
    """A result image's file name from a template such as ``{index}-{seed}``.

    The prompt is cut to 60 characters of letters, digits, ``.``, ``-`` and
    ``_``. A template without ``{index}`` for a task with several images gets
    ``-<index>`` added, so no image overwrites another. The name is checked by
    `child_path` where it is used.

    Example:
        >>> templated_file_name("{prompt}-{seed}", task_uid="cktlm6lrh4miq8ng9nf0", index=0,
        ...                     seed=42, prompt="a red apple", suffix=".png")
        'a-red-apple-42.png'
    """
    check_name_template(template)
    if suffix not in IMAGE_SUFFIXES:
        suffix = ".png"
    slug = _UNSAFE.sub("-", prompt).strip("-.")[:60] or "image"
    seed_text = str(seed) if seed is not None else "unknown"
    stem = template.format(
        task_uid=_checked_uid(task_uid), index=index, seed=seed_text, prompt=slug
    )
    if images > 1 and "{index}" not in template:
        stem = f"{stem}-{index}"
    return stem + suffix


def text_file_name(task_uid: str) -> str:
    """The file name of a task's text results.

    Example:
        >>> text_file_name("cktlm6lrh4miq8ng9nf0")
        'cktlm6lrh4miq8ng9nf0.txt'
    """
    return f"{_checked_uid(task_uid)}.txt"


def child_path(folder: str | os.PathLike[str], name: str) -> Path:
    """`folder / name`, refusing any name that is not one plain component.

    A plain component has no separator, is not `.` or `..` and is not
    absolute, so the result always lies directly inside `folder`.

    Example:
        >>> child_path("out", "a-0.png").as_posix()
        'out/a-0.png'
    """
    pure = PurePath(name)
    plain = (
        name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and not pure.is_absolute()
        and pure.name == name
    )
    if not plain:
        raise ProtocolError(f"{name!r:.60} is not a plain file name", retryable=False)
    return Path(folder) / name
