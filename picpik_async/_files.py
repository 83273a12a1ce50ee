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
from pathlib import Path, PurePath
from typing import Final

from ._errors import ProtocolError
from ._models import TASK_UID_RULE, is_task_uid

__all__ = ["IMAGE_SUFFIXES", "child_path", "image_file_name", "text_file_name"]

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
