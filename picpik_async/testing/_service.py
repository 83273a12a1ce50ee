"""The emulated PICPIK API as a pure function: a decoded request body in, a reply out.

PURE: no I/O. This module never imports anyio, httpx, starlette or Pillow and
never awaits. It checks a request the way the service would (common fields,
signature, Action, every parameter), acts on a `ServiceState` and builds the
answer envelope. `_app.py` moves bytes; the fault knobs in `_faults.py` decide
what happens around this function.

Answers follow the UCloud style the API comes from: HTTP 200 with a non-zero
``RetCode`` and a ``Message`` for every refusal (docs/protocol.md, "Answers and
HTTP statuses" and "RetCodes we assume").

Example:
    >>> import random
    >>> from picpik_async._signing import sign
    >>> from picpik_async.testing._state import ManualClock
    >>> state = ServiceState(clock=ManualClock(), rng=random.Random(0))
    >>> settings = Settings(public_key="pk", private_key="sk")
    >>> body = {"Action": "GetCreditBalance", "PublicKey": "pk", "request_uuid": "u1"}
    >>> body["Signature"] = sign(body, "sk")
    >>> handle(body, state, settings).body["UsedCredits"]
    0
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from attrs import field, frozen

from picpik_async._actions import (
    GenerateImagesSDXL,
    GenerationRequest,
    ListControlNets,
    ListTasksDetails,
)
from picpik_async._errors import ProtocolError, ValidationError
from picpik_async._models import (
    CreditBalance,
    InferenceParams,
    ListModelsResponse,
    Model,
    TaskDetail,
)
from picpik_async._signing import drop_none, dumps, sign
from picpik_async._wire import structure, unstructure, wire_name

from ._codes import RetCode
from ._plans import ACTION_SPECS, DEFAULT_CONTROL_NETS, ActionSpec, Measure
from ._state import (
    DEFAULT_STATUS_WORDS,
    Failure,
    InsufficientCreditsError,
    Phase,
    RunningList,
    ServiceState,
    StatusWords,
    Task,
    TaskRequest,
)

__all__ = [
    "DEFAULT_MODELS",
    "ENVELOPE_FIELDS",
    "TASK_ACTIONS",
    "HttpAnswer",
    "Reply",
    "Settings",
    "action_of",
    "decode_body",
    "envelope",
    "handle",
    "image_path",
    "json_answer",
    "request_uuid_of",
]

_M = TypeVar("_M")

# What ListModels offers (section 3.1). "PICPIK General" and "PICPIK Interior
# Design" are the codes the docs name (section 4.1); the LoRA is made up.
DEFAULT_MODELS: Final = ListModelsResponse(
    main_models={
        "PICPIK General": Model(
            "PICPIK General",
            name="PICPIK General",
            is_official=True,
            inference_params=InferenceParams(steps=30, sampler="Euler", cfg_scale=7.5),
        ),
        "PICPIK Interior Design": Model(
            "PICPIK Interior Design", name="PICPIK Interior Design", is_official=True
        ),
    },
    lora_models={
        "Watercolor": Model(
            "emulator_lora_watercolor",
            name="Watercolor",
            is_official=False,
            trigger_word_list=["watercolor"],
            inference_params=InferenceParams(lora_weight=0.8),
        ),
    },
)

# The common answer fields (section 1.3); everything else in an answer is its result.
ENVELOPE_FIELDS: Final = frozenset({"RetCode", "Action", "Message", "request_uuid"})
# Actions that create (and charge) a task.
TASK_ACTIONS: Final = frozenset({GenerateImagesSDXL.action, *ACTION_SPECS})

_DATA_URI_PREFIX: Final = re.compile(r"data:image/[\w.+-]+;base64,", re.ASCII)
# Snake-case names in our model errors, shown to callers in their wire spelling.
_DOLLAR_PATH: Final = re.compile(r"\$((?:\.\w+)+)")
_CLASS_PATH: Final = re.compile(r"\b[A-Z]\w*((?:\.[a-z]\w*)+)")
_SNAKE: Final = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_TYPE_WORDS: Final = {
    "int": "an integer",
    "str": "a string",
    "tuple": "a list",
    "bool": "a boolean",
}


def _unmeasured(image: str) -> tuple[int, int] | None:
    """The `Measure` that knows no image sizes: every input counts as 1024x1024."""
    return None


@frozen(kw_only=True)
class Settings:
    """What a request is judged against, besides the state.

    Args:
        public_key: the one account's public key.
        private_key: its private key (only ever fed to `sign`).
        words: the Status words to report.
        base_url: where image URLs point (the base URL the request came to).
        models: the ListModels catalogue.
        strict_models: refuse ModelCodes that are not in `models`. Off by
            default: the real catalogue is unknown here, and a user's test
            suite sends the codes of the real service.
        max_list_length: refuse longer TaskUIDLists with RetCode 230 (None: no limit).
        running_list: how ListRunningTasks bends the truth (`RunningList`).
        failure: make the task a submit creates fail this way (the fault).
        measure_image: reads an input image's size, for the editing actions
            whose results keep it (the emulator passes Pillow's reader).
    """

    public_key: str
    private_key: str
    words: StatusWords = DEFAULT_STATUS_WORDS
    base_url: str = "http://emulator.picpik.localhost"
    models: ListModelsResponse = DEFAULT_MODELS
    strict_models: bool = False
    max_list_length: int | None = None
    running_list: RunningList = field(factory=RunningList)
    failure: Failure | None = None
    measure_image: Measure = _unmeasured


@frozen(kw_only=True)
class Reply:
    """The JSON answer to one request, and the task it created, if any."""

    body: Mapping[str, Any]
    task: Task | None = None
    created: bool = False

    @property
    def ret_code(self) -> int:
        """The RetCode of the answer."""
        code: int = self.body["RetCode"]
        return code


@frozen(kw_only=True)
class HttpAnswer:
    """One HTTP answer, ready to send: status, body bytes, headers.

    ``drop`` asks the I/O layer to break the connection after the headers, so
    the caller never reads this body (the connection-drop fault).
    """

    content: bytes
    status: int = 200
    media_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False


@frozen
class _Done:
    """What an action handler produced: its result fields and the task it made."""

    fields: Mapping[str, Any]
    task: Task | None = None
    created: bool = False


class _RefusedError(Exception):
    """Raised by the checks and handlers to answer a non-zero RetCode."""

    def __init__(self, code: RetCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


# --- reading a request ----------------------------------------------------------


def decode_body(content: bytes) -> object:
    """The JSON value of a request body, or None when it is not JSON.

    NaN and Infinity are refused: they are not JSON and cannot be signed.

    Example:
        >>> decode_body(b'{"Action": "ListModels"}'), decode_body(b"<html>")
        ({'Action': 'ListModels'}, None)
    """
    try:
        value: object = json.loads(content, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        return None
    return value


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def action_of(data: object) -> str:
    """The Action a decoded body names, or "" when it names none."""
    action = data.get("Action") if isinstance(data, dict) else None
    return action if isinstance(action, str) else ""


def request_uuid_of(data: object) -> str | None:
    """The request_uuid a decoded body carries, when it is a string."""
    value = data.get("request_uuid") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


# --- answering ------------------------------------------------------------------


def envelope(
    action: str, request_uuid: str | None, code: RetCode, message: str = ""
) -> dict[str, Any]:
    """The common answer fields (section 1.3); request_uuid only when one was sent.

    Example:
        >>> envelope("ListModels", "u1", RetCode.OK)
        {'RetCode': 0, 'Action': 'ListModels', 'Message': '', 'request_uuid': 'u1'}
    """
    body: dict[str, Any] = {"RetCode": int(code), "Action": action, "Message": message}
    if request_uuid is not None:
        body["request_uuid"] = request_uuid
    return body


def json_answer(body: Mapping[str, Any], *, status: int = 200) -> HttpAnswer:
    """An HTTP answer carrying ``body`` as JSON."""
    return HttpAnswer(content=dumps(body), status=status)


def image_path(task_uid: str, index: int) -> str:
    """The path of a result image on the emulator.

    Example:
        >>> image_path("cktlm6lrh4miq8ng9nf0", 1)
        '/images/cktlm6lrh4miq8ng9nf0/1.png'
    """
    return f"/images/{task_uid}/{index}.png"


def handle(data: object, state: ServiceState, settings: Settings) -> Reply:
    """Answer one decoded request body: authenticate, validate, act, reply.

    Every refusal is a `Reply` with a non-zero RetCode; nothing is created then.

    Args:
        data: the decoded JSON body (`decode_body`); None when it was not JSON.
        state: the account's tasks and credits (changed by task-creating actions).
        settings: keys, words, base URL and the limits in force.

    Returns:
        The reply, with the task a submit created.
    """
    action = action_of(data)
    request_uuid = request_uuid_of(data)
    try:
        params = _checked_common_fields(data, settings)
        handler = _HANDLERS.get(action)
        if handler is None:
            # Section 8.4: no published code; 161 is the emulator's "unknown Action".
            raise _RefusedError(RetCode.UNKNOWN_ACTION, f"Action not found: {action}")
        done = handler(params, state, settings)
    except _RefusedError as refused:
        return Reply(body=envelope(action, request_uuid, refused.code, refused.message))
    body = {**envelope(action, request_uuid, RetCode.OK), **done.fields}
    return Reply(body=body, task=done.task, created=done.created)


def _checked_common_fields(data: object, settings: Settings) -> dict[str, Any]:
    """Check the common fields (section 1.2) and the signature; return the body.

    The action handlers read their parameters from the whole body: the model
    converter ignores the common fields, as it ignores any unknown field.
    """
    if not isinstance(data, dict):
        raise _RefusedError(RetCode.INVALID_PARAMETER, "Request body must be a JSON object")
    if not action_of(data):
        raise _RefusedError(RetCode.INVALID_PARAMETER, "Missing required parameter Action")
    _authenticate(data, settings)
    if "request_uuid" in data and request_uuid_of(data) is None:
        raise _RefusedError(
            RetCode.INVALID_PARAMETER, "Invalid parameter request_uuid: expected a string"
        )
    return data


def _authenticate(data: dict[str, Any], settings: Settings) -> None:
    """Check PublicKey and Signature (section 2), comparing in constant time."""
    public_key = data.get("PublicKey")
    if not isinstance(public_key, str) or not public_key:
        raise _RefusedError(RetCode.UNKNOWN_PUBLIC_KEY, "Missing required parameter PublicKey")
    if public_key != settings.public_key:
        raise _RefusedError(RetCode.UNKNOWN_PUBLIC_KEY, "PublicKey not found: no such account")
    signature = data.get("Signature")
    if not isinstance(signature, str) or not signature:
        raise _RefusedError(RetCode.BAD_SIGNATURE, "Missing required parameter Signature")
    try:
        expected = sign(data, settings.private_key)
    except ValidationError as exc:
        # A body the algorithm cannot encode (e.g. null inside a list) cannot carry a
        # valid signature either; the message names the key path, never the key.
        raise _RefusedError(RetCode.INVALID_PARAMETER, f"Invalid parameter: {exc}") from None
    given = signature.encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode("ascii"), given):
        raise _RefusedError(RetCode.BAD_SIGNATURE, "Signature verification failed")


# --- actions ----------------------------------------------------------------------


def _generate_images_sdxl(params: dict[str, Any], state: ServiceState, settings: Settings) -> _Done:
    """GenerateImagesSDXL (section 3.4): validate, charge, create a task."""
    # The docs mark ImageAndMaskList required even for text-to-image (sections 3.4, 8.7).
    _require(params, "MainModel", "ImageAndMaskList")
    request = _structured(params, GenerateImagesSDXL)
    _check_images(request.image_and_mask_list)
    if settings.strict_models:
        _check_models(request, settings.models)
    wanted = TaskRequest(
        action=GenerateImagesSDXL.action,
        prompt=", ".join(request.positive_prompts),
        seed=request.seed,
        width=request.width,
        height=request.height,
        batch_size=request.batch_size,
        request_uuid=request_uuid_of(params) or None,
    )
    return _create(wanted, state, settings)


def _create(wanted: TaskRequest, state: ServiceState, settings: Settings) -> _Done:
    """Charge and create the task (or refuse for credits); answer its TaskUID."""
    try:
        task, created = state.submit(wanted, failure=settings.failure)
    except InsufficientCreditsError as exc:
        raise _RefusedError(
            RetCode.INSUFFICIENT_CREDITS,
            f"Insufficient credits: the task costs {exc.cost}, {exc.remaining} left",
        ) from None
    return _Done({"TaskUID": task.uid}, task, created)


def _task_action(spec: ActionSpec) -> Callable[[dict[str, Any], ServiceState, Settings], _Done]:
    """The handler of a task-creating action of `_plans.ACTION_SPECS` (sections 3.3, 3.5-3.17).

    RemoveBackgroundsInBatch, whose answer shape is unknown (section 8.8), gets one
    task with one image per input and the plain `TaskUID` answer of the others.
    """

    def handler(params: dict[str, Any], state: ServiceState, settings: Settings) -> _Done:
        _require(params, *spec.required)
        request = _structured(params, spec.model)
        for where, image in spec.images(request):
            _check_image(where, image)
        if settings.strict_models and isinstance(request, GenerationRequest):
            _check_models(request, settings.models)
        plan = spec.plan(request, settings.measure_image)
        wanted = TaskRequest(
            action=request.action,
            prompt=plan.prompt,
            seed=plan.seed,
            batch_size=len(plan.sizes),
            sizes=plan.sizes,
            texts=plan.texts,
            request_uuid=request_uuid_of(params) or None,
        )
        return _create(wanted, state, settings)

    return handler


def _list_tasks_details(params: dict[str, Any], state: ServiceState, settings: Settings) -> _Done:
    """ListTasksDetails (section 3.18): the known tasks among those asked."""
    _require(params, "TaskUIDList")
    uids = _structured(params, ListTasksDetails).task_uid_list
    limit = settings.max_list_length
    if limit is not None and len(uids) > limit:
        # The real limit is undocumented (docs/protocol.md, "Polling"); the code is ours.
        raise _RefusedError(
            RetCode.LIST_TOO_LONG, f"TaskUIDList has {len(uids)} entries, at most {limit} allowed"
        )
    now = state.clock()
    details = [_detail(task, now, settings) for task in state.details(uids)]
    return _Done({"TaskDetailList": details})


def _list_models(params: dict[str, Any], state: ServiceState, settings: Settings) -> _Done:
    """ListModels (section 3.1): the catalogue."""
    fields: dict[str, Any] = drop_none(unstructure(settings.models))
    return _Done(fields)


def _list_running_tasks(params: dict[str, Any], state: ServiceState, settings: Settings) -> _Done:
    """ListRunningTasks (section 3.19): UIDs not yet finished or failed."""
    quirks = settings.running_list
    if quirks.refused:
        raise _RefusedError(RetCode.UNKNOWN_ACTION, "Action not found: ListRunningTasks")
    return _Done({"TaskUIDList": [task.uid for task in state.running(quirks)]})


def _list_control_nets(params: dict[str, Any], state: ServiceState, settings: Settings) -> _Done:
    """ListControlNets (section 3.2): a few of the documented ControlNets."""
    fields: dict[str, Any] = drop_none(unstructure(DEFAULT_CONTROL_NETS))
    return _Done(fields)


def _get_credit_balance(params: dict[str, Any], state: ServiceState, settings: Settings) -> _Done:
    """GetCreditBalance (section 3.20)."""
    credits = state.credits
    balance = CreditBalance(
        total_credits=credits.total,
        used_credits=credits.used,
        expire_timestamp=credits.expire_timestamp,
    )
    fields: dict[str, Any] = drop_none(unstructure(balance))
    return _Done(fields)


_HANDLERS: Final[Mapping[str, Callable[[dict[str, Any], ServiceState, Settings], _Done]]] = {
    "GenerateImagesSDXL": _generate_images_sdxl,
    "ListTasksDetails": _list_tasks_details,
    "ListModels": _list_models,
    "ListRunningTasks": _list_running_tasks,
    "GetCreditBalance": _get_credit_balance,
    ListControlNets.action: _list_control_nets,
    **{action: _task_action(spec) for action, spec in ACTION_SPECS.items()},
}


def _detail(task: Task, now: float, settings: Settings) -> dict[str, Any]:
    """One TaskDetail (section 4.9) as it stands at ``now``."""
    phase = task.phase_at(now)
    failed = phase is Phase.ERROR
    urls: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    if phase is Phase.FINISHED:
        base = settings.base_url.rstrip("/")
        urls = tuple(base + image_path(task.uid, i) for i in range(task.batch_size))
        texts = task.texts
    detail = TaskDetail(
        task_uid=task.uid,
        status=settings.words.word(phase),
        action=task.action,
        img_list=urls,
        seed=task.seed,
        txt_list=texts,
        consume_api_point=task.cost,
        error_code=task.error_code if failed else 0,
        error_message=task.error_message if failed else "",
    )
    wire: dict[str, Any] = drop_none(unstructure(detail))
    return wire


# --- validation helpers ---------------------------------------------------------


def _require(params: Mapping[str, Any], *names: str) -> None:
    """Refuse a request that lacks a required field (null counts as missing)."""
    for name in names:
        if params.get(name) is None:
            raise _RefusedError(RetCode.INVALID_PARAMETER, f"Missing required parameter {name}")


def _structured(params: Mapping[str, Any], cls: type[_M]) -> _M:
    """Build the request model, turning its errors into RetCode 160 with wire names."""
    try:
        return structure(params, cls, validate=True)
    except ValidationError as exc:
        message = f"Invalid parameter: {_wire_words(str(exc))}"
    except ProtocolError as exc:
        message = _type_error_message(str(exc))
    raise _RefusedError(RetCode.INVALID_PARAMETER, message)


def _check_images(images: tuple[str, ...]) -> None:
    """Each ImageAndMaskList entry must be Base64, optionally as a data URI (section 1.1)."""
    for index, image in enumerate(images):
        _check_image(f"ImageAndMaskList[{index}]", image)


def _check_image(where: str, image: str) -> None:
    """An image parameter must be Base64, optionally as a data URI (section 1.1)."""
    prefix = _DATA_URI_PREFIX.match(image)
    payload = image[prefix.end() :] if prefix else image
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _RefusedError(
            RetCode.INVALID_PARAMETER, f"Invalid parameter {where}: not a Base64 image"
        ) from None


def _check_models(
    request: GenerateImagesSDXL | GenerationRequest, models: ListModelsResponse
) -> None:
    """Refuse ModelCodes that the catalogue does not offer (only with strict_models)."""
    main = {model.model_code for model in models.main_models.values()}
    subs = {
        model.model_code
        for group in (models.lora_models, models.embedding_models, models.hypernetwork_models)
        for model in group.values()
    }
    wanted = [("MainModel", request.main_model.model_code, main)]
    wanted += [
        (f"SubModelList[{i}]", sub.model_code, subs)
        for i, sub in enumerate(request.sub_model_list or ())
    ]
    for where, code, known in wanted:
        if code not in known:
            raise _RefusedError(
                RetCode.INVALID_PARAMETER,
                f"Invalid parameter {where}.ModelCode: {code!r} is not a known model "
                f"(see ListModels; known: {', '.join(sorted(known))})",
            )


def _type_error_message(text: str) -> str:
    """Rephrase a structuring failure ("expected int @ $.width") for the caller.

    Example:
        >>> _type_error_message("does not fit X: invalid value for type, expected int @ $.width")
        'Invalid parameter Width: expected an integer'
    """
    summary = text.split(": ", 1)[-1]
    parts = []
    for part in summary.split("; "):
        what, _, where = part.partition(" @ ")
        what = what.removeprefix("invalid value for type, ")
        if what.startswith("expected "):
            kind = what.removeprefix("expected ")
            what = f"expected {_TYPE_WORDS.get(kind, 'an object' if kind[:1].isupper() else kind)}"
        if what == "required field missing":
            parts.append(f"Missing required parameter {_wire_words(where).lstrip('.')}")
        else:
            parts.append(f"Invalid parameter {_wire_words(where).lstrip('.')}: {what}")
    return "; ".join(parts)


def _wire_words(text: str) -> str:
    """Write the snake_case field names of a model error the way the wire spells them.

    Example:
        >>> _wire_words("GenerateImagesSDXL.batch_size must be in 1..16 (see image_and_mask_list)")
        'BatchSize must be in 1..16 (see ImageAndMaskList)'
    """
    text = _DOLLAR_PATH.sub(lambda m: _wire_path(m.group(1)), text)
    text = _CLASS_PATH.sub(lambda m: _wire_path(m.group(1)), text)
    return _SNAKE.sub(lambda m: wire_name(m.group(0)), text)


def _wire_path(dotted: str) -> str:
    """``.main_model.model_code`` -> ``MainModel.ModelCode``."""
    return ".".join(wire_name(part) for part in dotted.lstrip(".").split("."))
