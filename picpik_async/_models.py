"""The shared types of the PICPIK API: the request base, nested types, and every answer.

PURE: no I/O, no anyio, no httpx. Attributes are snake_case; the PascalCase wire
names live only in `_wire.py`. The request types themselves live in
`_actions.py`; the shared types here validate themselves when they are made,
so nothing out of range can reach the wire (docs/protocol.md,
"Request values"; docs/architecture.md, "Validation").

Extra wire fields: the docs leave some field lists open (sections 4.3-4.7 and
8.6). Every request, and each partially documented nested type, takes a
keyword-only ``extra_fields`` mapping of *wire* names to JSON values that is
merged into its wire form as given (never renamed, never guessed). A key that
names a known field of that type (in any spelling: ``Width``, ``width``) or,
for a request, a common field (``Action``, ``PublicKey``, ``Signature``,
``request_uuid``) is refused, so extras can only add, never override.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Generic, TypeVar, cast

import attrs
from attrs import field, frozen

from ._errors import ValidationError
from ._validators import (
    check_extras,
    float_range,
    instance_of,
    int_range,
    non_empty_str,
    one_of,
    to_extras,
    to_float,
    to_step,
    to_tuple,
    tuple_of,
)

__all__ = [
    "CreditBalance",
    "Envelope",
    "Image2Image",
    "InferenceParams",
    "ListModelsResponse",
    "ListRunningTasksResponse",
    "ListTasksDetailsResponse",
    "Model",
    "Request",
    "SubmitResponse",
    "TaskDetail",
    "TaskHandle",
    "TaskStatus",
]

SEED_MIN, SEED_MAX = -1, 2_147_483_647
SIZE_MIN, SIZE_MAX = 64, 2560
BATCH_MIN, BATCH_MAX = 1, 16
RESIZE_MODES = ("JustResize", "CropAndResize", "ResizeAndFill")

R = TypeVar("R")

# TaskUIDs end up in file names (`<TaskUID>-<index>.png`), so only a conservative
# alphabet is accepted, from callers and from answers alike. The documented ones
# are 20 xid-like characters (docs/protocol.md, "TaskUIDs").
TASK_UID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
TASK_UID_RULE: Final = "1..128 letters, digits, '-' or '_'"


def is_task_uid(value: object) -> bool:
    """Whether a value is a well-formed TaskUID (see `TASK_UID_PATTERN`).

    Example:
        >>> is_task_uid("cktlm6lrh4miq8ng9nf0"), is_task_uid("../../tmp/x")
        (True, False)
    """
    return isinstance(value, str) and TASK_UID_PATTERN.fullmatch(value) is not None


def check_task_uid(value: object, what: str = "task_uid") -> str:
    """Return a well-formed TaskUID, or raise `ValidationError` naming `what`.

    Example:
        >>> check_task_uid("")
        Traceback (most recent call last):
        ...
        picpik_async.ValidationError: task_uid must be a TaskUID (...), got ''
    """
    if not is_task_uid(value):
        raise ValidationError(f"{what} must be a TaskUID ({TASK_UID_RULE}), got {value!r:.80}")
    return cast("str", value)


# --- shared types (docs/protocol.md, "Actions") ----------------------------------


@frozen(kw_only=True)
class InferenceParams:
    """Per-model inference settings (section 4.2; only `lora_weight` is confirmed current).

    Fields left as None are not sent, so the service applies its own defaults.

    Example:
        >>> InferenceParams(cfg_scale=7.5, steps=20)
        InferenceParams(steps=20, sampler=None, clip_skip=None, cfg_scale=7.5, lora_weight=None)
    """

    steps: int | None = field(default=None, validator=int_range(6, 100))
    sampler: str | None = field(default=None, validator=instance_of(str, optional=True))
    clip_skip: int | None = field(default=None, validator=int_range(1, 12))
    cfg_scale: float | None = field(default=None, converter=to_float, validator=float_range(1, 30))
    lora_weight: float | None = field(default=None, converter=to_step, validator=float_range(-1, 2))


@frozen
class Model:
    """A generation model, referenced by its code (section 4.1).

    A `Model` returned by `list_models()` may be passed back unchanged.

    Example:
        >>> Model("PICPIK General").model_code
        'PICPIK General'
    """

    model_code: str = field(validator=non_empty_str)
    name: str | None = field(default=None, kw_only=True, validator=instance_of(str, optional=True))
    is_official: bool | None = field(
        default=None, kw_only=True, validator=instance_of(bool, optional=True)
    )
    trigger_word_list: tuple[str, ...] | None = field(
        default=None,
        kw_only=True,
        converter=attrs.converters.optional(to_tuple),
        validator=tuple_of(str),
    )
    inference_params: InferenceParams | None = field(
        default=None, kw_only=True, validator=instance_of(InferenceParams, optional=True)
    )


@frozen(kw_only=True)
class Image2Image:
    """Image-to-image settings: which image of `image_and_mask_list` to start from.

    The current field list is unpublished (section 4.3); fields beyond these
    (e.g. the `DeepFusion` of the older `BackgroundImageParam`, section 3.9) go
    in `extra_fields` under their wire names.

    Example:
        >>> Image2Image(image_index=0, refer_strength=0.35).refer_strength
        0.35
        >>> Image2Image(extra_fields={"DeepFusion": True}).extra_fields
        {'DeepFusion': True}
    """

    image_index: int = field(default=0, validator=int_range(0, 2**31 - 1))
    refer_strength: float = field(default=0.5, converter=to_step, validator=float_range(0, 1))
    resize_mode: str | None = field(default=None, validator=one_of(RESIZE_MODES))
    extra_fields: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=to_extras, validator=check_extras, hash=False
    )


# --- requests ---------------------------------------------------------------------


@frozen
class Request(Generic[R]):
    """Base of every request type: the Action it calls and the type it answers with.

    Every request takes a keyword-only `extra_fields`: wire fields the docs do
    not describe, merged into the body as given and signed with it. Keys that
    name a known field or a common field (section 1.2) are refused.

    Example:
        >>> from picpik_async import ListModels
        >>> ListModels(extra_fields={"Locale": "en"}).extra_fields
        {'Locale': 'en'}
    """

    action: ClassVar[str]
    response_type: ClassVar[type[Any]]
    creates_task: ClassVar[bool] = False
    # What a finished task of this request must hold: "images" or "texts".
    output: ClassVar[str] = "images"

    extra_fields: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=to_extras, validator=check_extras, hash=False
    )


@frozen
class SubmitResponse:
    """The answer to a task-creating request."""

    task_uid: str = field(validator=non_empty_str)


# --- responses --------------------------------------------------------------------


@frozen(kw_only=True)
class Envelope:
    """The common fields of every answer (section 1.3)."""

    ret_code: int
    action: str = ""
    message: str = ""
    request_uuid: str | None = None


class TaskStatus(enum.Enum):
    """What a task's status means to a waiter; see `picpik_async._polling.task_status`.

    The service's own status words are unpublished (section 5): the raw word stays
    in `TaskDetail.status`, this enum is its interpretation.
    """

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@frozen(kw_only=True)
class TaskDetail:
    """Status and results of one task (section 4.9).

    `status` is the service's raw word; `error_message` reads the misspelled
    `ErrorMassage` of the docs as well as `ErrorMessage`.
    """

    task_uid: str
    status: str
    action: str = ""
    img_list: tuple[str, ...] = ()
    seed: int | None = None
    txt_list: tuple[str, ...] = ()
    consume_api_point: int | None = None
    error_code: int = 0
    error_message: str = ""


@frozen
class ListTasksDetailsResponse:
    """The answer to `ListTasksDetails`."""

    task_detail_list: tuple[TaskDetail, ...]


@frozen(kw_only=True)
class ListModelsResponse:
    """The answer to `ListModels`: models keyed by name."""

    main_models: Mapping[str, Model]
    lora_models: Mapping[str, Model] = attrs.Factory(dict)
    embedding_models: Mapping[str, Model] = attrs.Factory(dict)
    hypernetwork_models: Mapping[str, Model] = attrs.Factory(dict)


@frozen
class ListRunningTasksResponse:
    """The answer to `ListRunningTasks`."""

    task_uid_list: tuple[str, ...]


@frozen(kw_only=True)
class CreditBalance:
    """The answer to `GetCreditBalance`.

    Example:
        >>> CreditBalance(total_credits=300, used_credits=20).remaining
        280
    """

    total_credits: int
    used_credits: int
    expire_timestamp: int | None = None

    @property
    def remaining(self) -> int:
        """Credits left: total minus used (inferred, section 3.20)."""
        return self.total_credits - self.used_credits


@frozen
class TaskHandle:
    """A created task: plain data, so one process can submit and another wait.

    Example:
        >>> TaskHandle("cktlm6lrh4miq8ng9nf0", "b91fcfbe-bb35-47ce-a168-bd6252c75270").task_uid
        'cktlm6lrh4miq8ng9nf0'
    """

    task_uid: str
    request_uuid: str
