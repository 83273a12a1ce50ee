"""The typed request of every current PICPIK action, each registered once (`_registry`).

PURE: no I/O, no anyio, no httpx. Every request validates itself when it is
made: documented ranges and enums (docs/protocol.md, "Request values") and the
cross-field rule that an index must point inside the image list it indexes.
The validators are those of `_validators.py`; the shared nested types and the
answers are in `_models.py`. Also here: `GenerateOptions`, the one definition
of `generate()`'s options, and the SDXL request built from them.

Optional fields default to None and are then not sent, so the service applies
its own documented defaults (section 3.0: `TranslatePrompts` true, 1024x1024,
...). Where the docs leave a type's fields open (`Mask`, `Foreground`, most of
`ControlNet` and `Image2Image`: sections 4.3-4.7 and 8.6), the known fields are
modelled and the rest goes in `extra_fields`, under wire names the caller
chooses; nothing here guesses a name.

Example:
    >>> from picpik_async import Model
    >>> ResizeImage(image="data:image/png;base64,iVBORw0KGgo=", width=2048, height=2048).width
    2048
    >>> request = ApplyReferenceStyle(
    ...     main_model=Model("PICPIK General"), raw_image_index=0, style_image_index=1,
    ...     image_list=["data:image/png;base64,AAAA", "data:image/png;base64,BBBB"],
    ... )
    >>> request.style_refer_strength is None  # not sent: the service default (0.5) applies
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Self, TypedDict, cast

import attrs
from attrs import field, frozen

from ._errors import ValidationError
from ._models import (
    BATCH_MAX,
    BATCH_MIN,
    SEED_MAX,
    SEED_MIN,
    SIZE_MAX,
    SIZE_MIN,
    CreditBalance,
    Image2Image,
    InferenceParams,
    ListModelsResponse,
    ListRunningTasksResponse,
    ListTasksDetailsResponse,
    Model,
    Request,
    SubmitResponse,
    check_task_uid,
)
from ._registry import register
from ._validators import (
    check_extras,
    float_range,
    instance_of,
    int_range,
    non_empty_str,
    one_of,
    to_extras,
    to_step,
    to_tuple,
    tuple_of,
    where,
)

__all__ = [
    "DEFAULT_MODEL",
    "DESCRIBE_LANGUAGES",
    "ApplyReferencePattern",
    "ApplyReferenceStyle",
    "BatchSubmitResponse",
    "ControlNet",
    "ControlNetModel",
    "Coordinate",
    "DescribeImages",
    "ExtractContents",
    "Foreground",
    "GenerateBackgrounds",
    "GenerateImages",
    "GenerateImagesSDXL",
    "GenerateOptions",
    "GeneratePatternsFromImage",
    "GenerationOptions",
    "GenerationRequest",
    "GetCreditBalance",
    "ListControlNets",
    "ListControlNetsResponse",
    "ListModels",
    "ListRunningTasks",
    "ListTasksDetails",
    "Mask",
    "MattingOptions",
    "ModifyMaskedPixels",
    "RemoveBackground",
    "RemoveBackgroundsInBatch",
    "RemoveContents",
    "ResizeImage",
    "RestoreFaces",
    "SwitchFace",
    "as_coordinates",
    "check_options",
    "generation_fields",
    "sdxl_request",
    "task_uids_of",
]

DEFAULT_MODEL: Final = "PICPIK General"
INDEX_MAX: Final = 2**31 - 1
RESIZE_MIN, RESIZE_MAX = 64, 4096  # section 3.14
FACE_INDEX_MIN, FACE_INDEX_MAX = 1, 100  # section 3.16
ERODE_MIN, ERODE_MAX = 0, 40  # sections 3.10-3.12
THRESHOLD_MIN, THRESHOLD_MAX = 0, 255  # sections 3.10-3.12
MASK_BLUR_MIN, MASK_BLUR_MAX = 0, 64  # section 3.13
MAX_CONTROL_NETS: Final = 3  # section 3.3
HAIR_OPTIMIZATION: Final = ("auto", "on", "off")  # sections 3.10-3.12
#: The output languages of DescribeImages (section 3.17).
DESCRIBE_LANGUAGES: Final = (
    "en", "zh", "ja", "ko", "fr", "es", "it", "de", "tr", "ru", "pt", "vi", "id", "th", "ms",
)  # fmt: skip


def _to_optional_tuple(value: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else to_tuple(value)


# --- validators (the `_models` helpers do the rest) ------------------------------


def _non_empty(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # Runs after the type check of `tuple_of`, so `value` is a tuple here.
    if value == ():
        raise ValidationError(f"{where(instance, attribute)} must hold at least one item")


def _at_most(limit: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, tuple) and len(value) > limit:
            raise ValidationError(
                f"{where(instance, attribute)} holds at most {limit} entries, got {len(value)}"
            )

    return check


def _is_coordinate(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INDEX_MAX


def _box(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """`[x1, y1, x2, y2]`: the top-left and bottom-right corners (sections 3.8, 3.10)."""
    if value is None and attribute.default is None:
        return
    ok = isinstance(value, tuple) and len(value) == 4 and all(map(_is_coordinate, value))
    if ok:
        x1, y1, x2, y2 = cast("tuple[int, int, int, int]", value)
        ok = x1 < x2 and y1 < y2
    if not ok:
        raise ValidationError(
            f"{where(instance, attribute)} must be [x1, y1, x2, y2]: four integers >= 0, "
            f"top-left then bottom-right (x1 < x2, y1 < y2), got {value!r:.80}"
        )


def _check_index(
    request: object, name: str, index: int | None, items: tuple[str, ...] | None, list_name: str
) -> None:
    """Refuse an index that does not point inside the image list it indexes."""
    count = len(items or ())
    if index is not None and not index < count:
        where = f"{type(request).__name__}.{name}"
        if not count:
            raise ValidationError(f"{where} is {index}, an index into {list_name}, which is empty")
        raise ValidationError(
            f"{where} must be in 0..{count - 1} (an index into {list_name}, which has "
            f"{count} item(s)), got {index}"
        )


# Lists of Base64 images (data URIs are accepted, section 1.1) and indexes into them.
_IMAGES: Final = [tuple_of(str, non_empty_items=True), _non_empty]
_INDEX: Final = int_range(0, INDEX_MAX)


# --- nested types (docs/protocol.md, "Actions") -----------------------------------


# --- the requests of the core actions (sections 3.1, 3.4, 3.18-3.20) ---


@register(method="generate")
@frozen(kw_only=True)
class GenerateImagesSDXL(Request[SubmitResponse]):
    """Generate images with an SDXL model (section 3.4); answers with a TaskUID.

    Example:
        >>> req = GenerateImagesSDXL(
        ...     main_model=Model("PICPIK General"), positive_prompts=["a red apple"], seed=42
        ... )
        >>> req.width, req.height
        (1024, 1024)
    """

    action: ClassVar[str] = "GenerateImagesSDXL"
    response_type: ClassVar[type[Any]] = SubmitResponse
    creates_task: ClassVar[bool] = True

    main_model: Model = field(validator=instance_of(Model))
    sub_model_list: tuple[Model, ...] = field(
        default=(), converter=to_tuple, validator=tuple_of(Model)
    )
    positive_prompts: tuple[str, ...] = field(
        default=(), converter=to_tuple, validator=tuple_of(str)
    )
    negative_prompts: tuple[str, ...] = field(
        default=(), converter=to_tuple, validator=tuple_of(str)
    )
    translate_prompts: bool = field(default=True, validator=instance_of(bool))
    seed: int = field(default=-1, validator=int_range(SEED_MIN, SEED_MAX))
    width: int = field(default=1024, validator=int_range(SIZE_MIN, SIZE_MAX))
    height: int = field(default=1024, validator=int_range(SIZE_MIN, SIZE_MAX))
    batch_size: int = field(default=1, validator=int_range(BATCH_MIN, BATCH_MAX))
    image2image: Image2Image | None = field(
        default=None, validator=instance_of(Image2Image, optional=True)
    )
    tiling: bool = field(default=False, validator=instance_of(bool))
    # Marked required by the docs (section 3.4 and 8.7): always sent, [] without images.
    image_and_mask_list: tuple[str, ...] = field(
        default=(), converter=to_tuple, validator=tuple_of(str, non_empty_items=True)
    )

    def __attrs_post_init__(self) -> None:
        if self.image2image is not None:
            count = len(self.image_and_mask_list)
            if not self.image2image.image_index < count:
                raise ValidationError(
                    f"GenerateImagesSDXL.image2image.image_index must be in 0..{count - 1} "
                    f"(an index into image_and_mask_list, which has {count} item(s)), "
                    f"got {self.image2image.image_index}"
                )


@register(method="list_tasks_details")
@frozen
class ListTasksDetails(Request[ListTasksDetailsResponse]):
    """Ask for the status and results of tasks (section 3.18).

    Example:
        >>> ListTasksDetails(["ckti5nf2h4keq8mr9n00"]).task_uid_list
        ('ckti5nf2h4keq8mr9n00',)
    """

    action: ClassVar[str] = "ListTasksDetails"
    response_type: ClassVar[type[Any]] = ListTasksDetailsResponse

    task_uid_list: tuple[str, ...] = field(
        converter=to_tuple, validator=tuple_of(str, non_empty_items=True)
    )

    def __attrs_post_init__(self) -> None:
        if not self.task_uid_list:
            raise ValidationError("ListTasksDetails.task_uid_list must hold at least one TaskUID")
        for index, uid in enumerate(self.task_uid_list):
            check_task_uid(uid, f"ListTasksDetails.task_uid_list[{index}]")


@register(method="list_models")
@frozen
class ListModels(Request[ListModelsResponse]):
    """List the available generation models (section 3.1)."""

    action: ClassVar[str] = "ListModels"
    response_type: ClassVar[type[Any]] = ListModelsResponse


@register(method="list_running_tasks")
@frozen
class ListRunningTasks(Request[ListRunningTasksResponse]):
    """List the TaskUIDs still running for the account (section 3.19)."""

    action: ClassVar[str] = "ListRunningTasks"
    response_type: ClassVar[type[Any]] = ListRunningTasksResponse


@register(method="get_credit_balance")
@frozen
class GetCreditBalance(Request[CreditBalance]):
    """Ask for the account's credit balance (section 3.20)."""

    action: ClassVar[str] = "GetCreditBalance"
    response_type: ClassVar[type[Any]] = CreditBalance


@frozen(kw_only=True)
class ControlNet:
    """One entry of GenerateImages' `ControlNetList` (section 4.4).

    Only the image and mask indexes and the invert flag are documented; pass
    the rest (model and pre-processor codes, weights) in `extra_fields` under
    the wire names you know.

    Example:
        >>> ControlNet(image_index=0, extra_fields={"ControlWeight": 0.8}).image_index
        0
    """

    image_index: int = field(validator=_INDEX)
    mask_index: int | None = field(default=None, validator=_INDEX)
    invert_mask: bool | None = field(default=None, validator=instance_of(bool, optional=True))
    extra_fields: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=to_extras, validator=check_extras, hash=False
    )


@frozen(kw_only=True)
class Mask:
    """The `Masked` area of ModifyMaskedPixels (section 3.5).

    Its field list is unpublished (section 4.6): pass its fields in
    `extra_fields` under their wire names.

    Example:
        >>> Mask(extra_fields={"MaskBlur": 4}).extra_fields
        {'MaskBlur': 4}
    """

    extra_fields: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=to_extras, validator=check_extras, hash=False
    )


@frozen(kw_only=True)
class Foreground:
    """The `TransparentForeground` of GenerateBackgrounds (section 3.9).

    Its field list is unpublished (section 4.7): pass its fields in
    `extra_fields`. The foreground image itself must be a PNG with alpha.

    Example:
        >>> Foreground().extra_fields
        {}
    """

    extra_fields: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=to_extras, validator=check_extras, hash=False
    )


@frozen
class Coordinate:
    """A point in pixels, for ExtractContents (section 4.8).

    Example:
        >>> Coordinate(72, 270)
        Coordinate(x=72, y=270)
    """

    x: int = field(validator=int_range(0, INDEX_MAX))
    y: int = field(validator=int_range(0, INDEX_MAX))


@frozen
class ControlNetModel:
    """A pre-processor or a ControlNet model, as ListControlNets lists them (section 4.5).

    Example:
        >>> ControlNetModel("control_v11p_sd15_canny").model_code
        'control_v11p_sd15_canny'
    """

    model_code: str = field(validator=non_empty_str)
    inference_params: InferenceParams | None = field(
        default=None, kw_only=True, validator=instance_of(InferenceParams, optional=True)
    )


# --- answers ---------------------------------------------------------------------------


@frozen
class BatchSubmitResponse(SubmitResponse):
    """The answer to RemoveBackgroundsInBatch: one `TaskUID` or a `TaskUIDList` (section 8.8).

    Either form is accepted. `task_uid` is the first task and `task_uid_list`
    every task, so `AsyncClient.submit()` keeps working (it returns the first
    task's handle) and `AsyncClient.submit_tasks()` returns them all.

    Example:
        >>> BatchSubmitResponse(task_uid_list=["u1", "u2"]).task_uid
        'u1'
        >>> BatchSubmitResponse("u1").task_uid_list
        ('u1',)
    """

    task_uid: str = field(default="", validator=instance_of(str))
    task_uid_list: tuple[str, ...] = field(
        default=(), converter=to_tuple, validator=tuple_of(str, non_empty_items=True)
    )

    @task_uid_list.validator
    def _one_at_least(self, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        if not value and not self.task_uid.strip():
            raise ValidationError("BatchSubmitResponse needs a task_uid or a task_uid_list")

    def __attrs_post_init__(self) -> None:
        # An answer with only TaskUIDList still has a task_uid, and the other way round.
        # (An answer with neither keeps task_uid "", which `parse_response` refuses.)
        first = (self.task_uid,) if self.task_uid else ()
        uids = tuple(dict.fromkeys((*first, *self.task_uid_list)))
        object.__setattr__(self, "task_uid", uids[0] if uids else "")
        object.__setattr__(self, "task_uid_list", uids)


@frozen(kw_only=True)
class ListControlNetsResponse:
    """The answer to ListControlNets: pre-processors and ControlNet models by name (section 3.2).

    Example:
        >>> answer = ListControlNetsResponse(
        ...     control_models={"Hard Edge": ControlNetModel("control_v11p_sd15_canny")}
        ... )
        >>> answer.control_models["Hard Edge"].model_code
        'control_v11p_sd15_canny'
    """

    pre_processors: Mapping[str, ControlNetModel] = attrs.Factory(dict)
    control_models: Mapping[str, ControlNetModel] = attrs.Factory(dict)


# --- generation requests (shared parameters of section 3.0) --------------------------


@frozen(kw_only=True)
class GenerationRequest(Request[SubmitResponse]):
    """The parameters every SD1.5 generation action shares (section 3.0); a base class.

    Optional fields left as None are not sent: the service defaults apply
    (prompts translated, seed -1, 1024x1024, one image, the VAE not used).

    Example:
        >>> from picpik_async import Model
        >>> request = GenerateImages(main_model=Model("PICPIK General"), width=768)
        >>> isinstance(request, GenerationRequest), request.height
        (True, None)
    """

    response_type: ClassVar[type[Any]] = SubmitResponse
    creates_task: ClassVar[bool] = True

    main_model: Model = field(validator=instance_of(Model))
    sub_model_list: tuple[Model, ...] | None = field(
        default=None, converter=_to_optional_tuple, validator=tuple_of(Model)
    )
    positive_prompts: tuple[str, ...] | None = field(
        default=None, converter=_to_optional_tuple, validator=tuple_of(str)
    )
    negative_prompts: tuple[str, ...] | None = field(
        default=None, converter=_to_optional_tuple, validator=tuple_of(str)
    )
    translate_prompts: bool | None = field(default=None, validator=instance_of(bool, optional=True))
    seed: int | None = field(default=None, validator=int_range(SEED_MIN, SEED_MAX))
    width: int | None = field(default=None, validator=int_range(SIZE_MIN, SIZE_MAX))
    height: int | None = field(default=None, validator=int_range(SIZE_MIN, SIZE_MAX))
    batch_size: int | None = field(default=None, validator=int_range(BATCH_MIN, BATCH_MAX))
    use_main_model_vae: bool | None = field(
        default=None, validator=instance_of(bool, optional=True)
    )


@register(method="generate_sd15")
@frozen(kw_only=True)
class GenerateImages(GenerationRequest):
    """Text-to-image, image-to-image and ControlNet on SD1.5 models (section 3.3).

    `image2image` and each `ControlNet` point into `image_and_mask_list` by index.

    Example:
        >>> from picpik_async import Model
        >>> GenerateImages(main_model=Model("PICPIK General"), positive_prompts=["a cat"]).action
        'GenerateImages'
    """

    action: ClassVar[str] = "GenerateImages"

    control_net_list: tuple[ControlNet, ...] | None = field(
        default=None,
        converter=_to_optional_tuple,
        validator=[tuple_of(ControlNet), _at_most(MAX_CONTROL_NETS)],
    )
    image2image: Image2Image | None = field(
        default=None, validator=instance_of(Image2Image, optional=True)
    )
    tileable: bool | None = field(default=None, validator=instance_of(bool, optional=True))
    image_and_mask_list: tuple[str, ...] | None = field(
        default=None, converter=_to_optional_tuple, validator=tuple_of(str, non_empty_items=True)
    )

    def __attrs_post_init__(self) -> None:
        images, name = self.image_and_mask_list, "image_and_mask_list"
        if self.image2image is not None:
            _check_index(
                self, "image2image.image_index", self.image2image.image_index, images, name
            )
        for i, net in enumerate(self.control_net_list or ()):
            _check_index(self, f"control_net_list[{i}].image_index", net.image_index, images, name)
            _check_index(self, f"control_net_list[{i}].mask_index", net.mask_index, images, name)


@register(method="inpaint")
@frozen(kw_only=True)
class ModifyMaskedPixels(GenerationRequest):
    """Inpainting / outpainting: redraw the masked area (section 3.5).

    Example:
        >>> from picpik_async import Model
        >>> ModifyMaskedPixels(
        ...     main_model=Model("PICPIK General"), masked=Mask(),
        ...     image_and_mask_list=["data:image/png;base64,AAAA"],
        ... ).action
        'ModifyMaskedPixels'
    """

    action: ClassVar[str] = "ModifyMaskedPixels"

    image2image: Image2Image | None = field(
        default=None, validator=instance_of(Image2Image, optional=True)
    )
    masked: Mask = field(validator=instance_of(Mask))
    image_and_mask_list: tuple[str, ...] = field(converter=to_tuple, validator=_IMAGES)

    def __attrs_post_init__(self) -> None:
        if self.image2image is not None:
            index, images = self.image2image.image_index, self.image_and_mask_list
            _check_index(self, "image2image.image_index", index, images, "image_and_mask_list")


@register(method="apply_style")
@frozen(kw_only=True)
class ApplyReferenceStyle(GenerationRequest):
    """Redraw the raw image in the style of a reference image (section 3.6).

    Example:
        >>> from picpik_async import Model
        >>> ApplyReferenceStyle(
        ...     main_model=Model("PICPIK General"), raw_image_index=0, style_image_index=1,
        ...     style_refer_strength=0.35, image_list=["data:,a", "data:,b"],
        ... ).style_refer_strength
        0.35
    """

    action: ClassVar[str] = "ApplyReferenceStyle"

    raw_image_index: int = field(validator=_INDEX)
    style_image_index: int = field(validator=_INDEX)
    style_refer_strength: float | None = field(
        default=None, converter=to_step, validator=float_range(0, 1)
    )
    image_list: tuple[str, ...] = field(converter=to_tuple, validator=_IMAGES)

    def __attrs_post_init__(self) -> None:
        for name in ("raw_image_index", "style_image_index"):
            _check_index(self, name, getattr(self, name), self.image_list, "image_list")


@register(method=None)
@frozen(kw_only=True)
class ApplyReferencePattern(GenerationRequest):
    """Redraw a masked area of the raw image with a reference pattern (section 3.7).

    Example:
        >>> from picpik_async import Model
        >>> ApplyReferencePattern(
        ...     main_model=Model("PICPIK General"), raw_image_index=0, mask_index=1,
        ...     pattern_image_index=2, image_and_mask_list=["data:,a", "data:,m", "data:,p"],
        ... ).pattern_image_index
        2
    """

    action: ClassVar[str] = "ApplyReferencePattern"

    raw_image_index: int = field(validator=_INDEX)
    mask_index: int = field(validator=_INDEX)
    pattern_image_index: int = field(validator=_INDEX)
    pattern_refer_strength: float | None = field(
        default=None, converter=to_step, validator=float_range(0, 1)
    )
    chaotic_mode: bool | None = field(default=None, validator=instance_of(bool, optional=True))
    image_and_mask_list: tuple[str, ...] = field(converter=to_tuple, validator=_IMAGES)

    def __attrs_post_init__(self) -> None:
        for name in ("raw_image_index", "mask_index", "pattern_image_index"):
            _check_index(
                self, name, getattr(self, name), self.image_and_mask_list, "image_and_mask_list"
            )


@register(method=None)
@frozen(kw_only=True)
class GeneratePatternsFromImage(GenerationRequest):
    """Extract what is inside a box of the raw image and redraw it as a pattern (section 3.8).

    Example:
        >>> from picpik_async import Model
        >>> GeneratePatternsFromImage(
        ...     main_model=Model("PICPIK General"), raw_image="data:,a", box=[0, 0, 64, 64]
        ... ).box
        (0, 0, 64, 64)
    """

    action: ClassVar[str] = "GeneratePatternsFromImage"

    raw_image: str = field(validator=non_empty_str)
    box: tuple[int, ...] = field(converter=to_tuple, validator=_box)
    tiling: bool | None = field(default=None, validator=instance_of(bool, optional=True))


@register(method=None)
@frozen(kw_only=True)
class GenerateBackgrounds(GenerationRequest):
    """Generate a background behind a transparent foreground (section 3.9).

    Example:
        >>> from picpik_async import Model
        >>> GenerateBackgrounds(
        ...     main_model=Model("PICPIK General"), transparent_foreground=Foreground(),
        ...     image_list=["data:image/png;base64,AAAA"],
        ... ).action
        'GenerateBackgrounds'
    """

    action: ClassVar[str] = "GenerateBackgrounds"

    background_image2image: Image2Image | None = field(
        default=None, validator=instance_of(Image2Image, optional=True)
    )
    transparent_foreground: Foreground = field(validator=instance_of(Foreground))
    image_list: tuple[str, ...] = field(converter=to_tuple, validator=_IMAGES)

    def __attrs_post_init__(self) -> None:
        if self.background_image2image is not None:
            index = self.background_image2image.image_index
            name = "background_image2image.image_index"
            _check_index(self, name, index, self.image_list, "image_list")


# --- editing requests -------------------------------------------------------------------


@frozen(kw_only=True)
class _MattingRequest(Request[SubmitResponse]):
    """The options RemoveBackground, RemoveBackgroundsInBatch and ExtractContents share."""

    response_type: ClassVar[type[Any]] = SubmitResponse
    creates_task: ClassVar[bool] = True

    erode_size: int | None = field(default=None, validator=int_range(ERODE_MIN, ERODE_MAX))
    foreground_threshold: int | None = field(
        default=None, validator=int_range(THRESHOLD_MIN, THRESHOLD_MAX)
    )
    background_threshold: int | None = field(
        default=None, validator=int_range(THRESHOLD_MIN, THRESHOLD_MAX)
    )
    hair_optimization: str | None = field(default=None, validator=one_of(HAIR_OPTIMIZATION))
    only_mask: bool | None = field(default=None, validator=instance_of(bool, optional=True))


@register(method="remove_background")
@frozen(kw_only=True)
class RemoveBackground(_MattingRequest):
    """Remove the background, or return only the subject's mask (section 3.10).

    Example:
        >>> RemoveBackground(raw_image="data:image/jpeg;base64,xxx", only_mask=True).only_mask
        True
    """

    action: ClassVar[str] = "RemoveBackground"

    raw_image: str = field(validator=non_empty_str)
    box: tuple[int, ...] | None = field(default=None, converter=_to_optional_tuple, validator=_box)


@register(method="remove_backgrounds")
@frozen(kw_only=True)
class RemoveBackgroundsInBatch(_MattingRequest):
    """RemoveBackground for several images at once (section 3.11).

    The answer may carry one TaskUID or a list (section 8.8): see `BatchSubmitResponse`.

    Example:
        >>> RemoveBackgroundsInBatch(raw_images=["data:,a", "data:,b"]).raw_images
        ('data:,a', 'data:,b')
    """

    action: ClassVar[str] = "RemoveBackgroundsInBatch"
    response_type: ClassVar[type[Any]] = BatchSubmitResponse

    raw_images: tuple[str, ...] = field(converter=to_tuple, validator=_IMAGES)


@register(method="extract_contents")
@frozen(kw_only=True)
class ExtractContents(_MattingRequest):
    """Cut out the content around clicked points, or return its mask (section 3.12).

    Example:
        >>> ExtractContents(raw_image="data:,a", include_point_list=[Coordinate(72, 270)]).action
        'ExtractContents'
    """

    action: ClassVar[str] = "ExtractContents"

    raw_image: str = field(validator=non_empty_str)
    include_point_list: tuple[Coordinate, ...] = field(
        converter=to_tuple, validator=[tuple_of(Coordinate), _non_empty]
    )
    exclude_point_list: tuple[Coordinate, ...] | None = field(
        default=None, converter=_to_optional_tuple, validator=tuple_of(Coordinate)
    )


@register(method="remove_contents")
@frozen(kw_only=True)
class RemoveContents(Request[SubmitResponse]):
    """Erase what a monochrome mask marks white (section 3.13).

    Example:
        >>> RemoveContents(raw_image="data:,a", mask="data:,m", mask_blur=12).mask_blur
        12
    """

    action: ClassVar[str] = "RemoveContents"
    response_type: ClassVar[type[Any]] = SubmitResponse
    creates_task: ClassVar[bool] = True

    raw_image: str = field(validator=non_empty_str)
    mask: str = field(validator=non_empty_str)
    invert_mask: bool | None = field(default=None, validator=instance_of(bool, optional=True))
    mask_blur: int | None = field(default=None, validator=int_range(MASK_BLUR_MIN, MASK_BLUR_MAX))


@register(method="upscale")
@frozen(kw_only=True)
class ResizeImage(Request[SubmitResponse]):
    """AI-assisted resize, the upscaler: to Width x Height, each 64..4096 (section 3.14).

    Example:
        >>> ResizeImage(image="data:,a", width=4096, height=64).height
        64
    """

    action: ClassVar[str] = "ResizeImage"
    response_type: ClassVar[type[Any]] = SubmitResponse
    creates_task: ClassVar[bool] = True

    width: int = field(validator=int_range(RESIZE_MIN, RESIZE_MAX))
    height: int = field(validator=int_range(RESIZE_MIN, RESIZE_MAX))
    image: str = field(validator=non_empty_str)


@register(method="restore_faces")
@frozen(kw_only=True)
class RestoreFaces(Request[SubmitResponse]):
    """Repair deformed faces (section 3.15).

    Example:
        >>> RestoreFaces(raw_image="data:,a", restore_strength=0.8).restore_strength
        0.8
    """

    action: ClassVar[str] = "RestoreFaces"
    response_type: ClassVar[type[Any]] = SubmitResponse
    creates_task: ClassVar[bool] = True

    restore_strength: float | None = field(
        default=None, converter=to_step, validator=float_range(0, 1)
    )
    raw_image: str = field(validator=non_empty_str)


@register(method="swap_face")
@frozen(kw_only=True)
class SwitchFace(Request[SubmitResponse]):
    """Replace a face of the raw image with the face of another image (section 3.16).

    `raw_face_index` is 1-based: 1..100, the service default is 1.

    Example:
        >>> SwitchFace(raw_image="data:,a", new_face_image="data:,b", raw_face_index=2).action
        'SwitchFace'
    """

    action: ClassVar[str] = "SwitchFace"
    response_type: ClassVar[type[Any]] = SubmitResponse
    creates_task: ClassVar[bool] = True

    raw_image: str = field(validator=non_empty_str)
    raw_face_index: int | None = field(
        default=None, validator=int_range(FACE_INDEX_MIN, FACE_INDEX_MAX)
    )
    new_face_image: str = field(validator=non_empty_str)


@register(method="describe")
@frozen(kw_only=True)
class DescribeImages(Request[SubmitResponse]):
    """Image to text; the captions land in `TaskDetail.txt_list` (section 3.17).

    `translate_description` is the output language, one of the codes of section
    3.17: en zh ja ko fr es it de tr ru pt vi id th ms (the service default is `en`).

    Example:
        >>> DescribeImages(image_list=["data:,a"], translate_description="fr").action
        'DescribeImages'
    """

    action: ClassVar[str] = "DescribeImages"
    response_type: ClassVar[type[Any]] = SubmitResponse
    creates_task: ClassVar[bool] = True
    output: ClassVar[str] = "texts"

    image_list: tuple[str, ...] = field(converter=to_tuple, validator=_IMAGES)
    translate_description: str | None = field(default=None, validator=one_of(DESCRIBE_LANGUAGES))


@register(method="list_control_nets")
@frozen
class ListControlNets(Request[ListControlNetsResponse]):
    """List the ControlNet models and pre-processors (section 3.2); a read action.

    Example:
        >>> ListControlNets().response_type.__name__
        'ListControlNetsResponse'
    """

    action: ClassVar[str] = "ListControlNets"
    response_type: ClassVar[type[Any]] = ListControlNetsResponse


# --- request-building helpers for the client ---------------------------------------------


class GenerationOptions(TypedDict, total=False):
    """The shared generation options (section 3.0) the client's action methods take.

    Left out, a field is not sent and the service default applies; `model`
    defaults to the client's default model.

    Example:
        >>> options: GenerationOptions = {"seed": 42, "width": 768, "model": "PICPIK General"}
        >>> # result = await client.apply_style("room.png", "style.png", **options)
    """

    negative_prompt: str
    model: str | Model
    sub_models: list[str | Model] | tuple[str | Model, ...]
    seed: int
    width: int
    height: int
    batch_size: int
    translate_prompts: bool
    use_main_model_vae: bool


class MattingOptions(TypedDict, total=False):
    """The matting options of RemoveBackground(s) and ExtractContents (sections 3.10-3.12).

    Example:
        >>> options: MattingOptions = {"only_mask": True, "hair_optimization": "on"}
        >>> # result = await client.remove_background("shoe.jpg", **options)
    """

    erode_size: int
    foreground_threshold: int
    background_threshold: int
    hair_optimization: str
    only_mask: bool


_PASSED_AS_IS: Final = (
    "seed",
    "width",
    "height",
    "batch_size",
    "translate_prompts",
    "use_main_model_vae",
)


def check_options(options: Mapping[str, Any], kind: Any) -> None:
    """Refuse option names that `kind` (a TypedDict) does not know, before any I/O.

    Example:
        >>> check_options({"only_mask": True}, MattingOptions)
    """
    unknown = set(options) - set(kind.__optional_keys__)
    if unknown:
        raise ValidationError(f"unknown option(s): {', '.join(sorted(unknown))}")


def _as_model(model: object) -> Model:
    return model if isinstance(model, Model) else Model(model)  # type: ignore[arg-type]


def generation_fields(
    prompt: str | None, options: Mapping[str, Any], *, default_model: str | Model
) -> dict[str, Any]:
    """The shared fields (section 3.0) of a generation request, from `GenerationOptions`.

    Example:
        >>> fields = generation_fields("a cat", {"seed": 7}, default_model="PICPIK General")
        >>> fields["positive_prompts"], fields["seed"], fields["main_model"].model_code
        (['a cat'], 7, 'PICPIK General')
    """
    check_options(options, GenerationOptions)
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise ValidationError(f"prompt must be a non-empty string, got {prompt!r:.80}")
    subs = options.get("sub_models", ())
    if not isinstance(subs, list | tuple):
        raise ValidationError(f"sub_models must be a list of model codes, got {subs!r:.80}")
    negative = options.get("negative_prompt")
    return {
        "main_model": _as_model(options.get("model", default_model)),
        "sub_model_list": [_as_model(m) for m in subs] or None,
        "positive_prompts": [prompt] if prompt else None,
        "negative_prompts": [negative] if negative else None,
        **{key: options[key] for key in _PASSED_AS_IS if key in options},
    }


def as_coordinates(points: Iterable[Coordinate | tuple[int, int]]) -> list[Coordinate]:
    """Points as `Coordinate`s; `(x, y)` pairs are accepted.

    Example:
        >>> as_coordinates([(72, 270), Coordinate(1, 2)])
        [Coordinate(x=72, y=270), Coordinate(x=1, y=2)]
    """
    coordinates = []
    for point in points:
        if isinstance(point, Coordinate):
            coordinates.append(point)
        elif isinstance(point, list | tuple) and len(point) == 2:
            coordinates.append(Coordinate(*point))
        else:
            raise ValidationError(f"a point must be an (x, y) pair, got {point!r:.80}")
    return coordinates


def task_uids_of(answer: SubmitResponse) -> tuple[str, ...]:
    """Every TaskUID a submit answer names, in order (one, or several: section 8.8).

    Example:
        >>> task_uids_of(SubmitResponse("u1"))
        ('u1',)
        >>> task_uids_of(BatchSubmitResponse(task_uid_list=["a", "b"]))
        ('a', 'b')
    """
    if isinstance(answer, BatchSubmitResponse):
        return answer.task_uid_list
    return (answer.task_uid,)


@frozen(kw_only=True)
class GenerateOptions:
    """The options of `generate()`, defined once.

    `AsyncClient.generate()`'s keywords (explicit, for IDEs and `help()`), the
    keywords `generate_many()` accepts, the keys of a batch file's JSON lines
    and the `picpik generate`/`batch` options are derived from these fields or
    checked against them by tests (tests/test_options.py). `sdxl_request()`
    turns them into the request. Values are checked there, by the request
    model; `image` (a path, bytes or data URI) is read by the client.

    Example:
        >>> GenerateOptions(width=768).height
        1024
    """

    negative_prompt: str | None = None
    model: str | Model = DEFAULT_MODEL
    width: int = 1024
    height: int = 1024
    seed: int = -1
    batch_size: int = 1
    tiling: bool = False
    translate_prompts: bool = True
    image: str | bytes | os.PathLike[str] | None = None
    refer_strength: float = 0.5
    sub_models: Sequence[str | Model] = ()

    @classmethod
    def names(cls) -> frozenset[str]:
        """The option names.

        Example:
            >>> "seed" in GenerateOptions.names()
            True
        """
        return frozenset(attrs.fields_dict(cls))

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], *, what: str = "generate()") -> Self:
        """The options named in a mapping; unknown names are refused, naming `what`.

        Example:
            >>> GenerateOptions.from_mapping({"width": 768}).width
            768
        """
        unknown = set(options) - cls.names()
        if unknown:
            allowed = ", ".join(sorted(cls.names()))
            raise ValidationError(
                f"unknown {what} option(s): {', '.join(sorted(unknown))}; allowed: {allowed}"
            )
        return cls(**options)


def sdxl_request(
    prompt: str, options: GenerateOptions | None = None, *, image_uri: str | None = None
) -> GenerateImagesSDXL:
    """The `GenerateImagesSDXL` request that `generate()` sends (validated here).

    `options.image` is ignored: the client reads it and passes its data URI as
    `image_uri`, which becomes `ImageAndMaskList[0]` with an `Image2Image` on it.

    Example:
        >>> sdxl_request("a red apple", GenerateOptions(seed=42)).positive_prompts
        ('a red apple',)
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError(f"prompt must be a non-empty string, got {prompt!r:.80}")
    o = options or GenerateOptions()
    if not isinstance(o.sub_models, list | tuple):
        raise ValidationError(f"sub_models must be a list of model codes, got {o.sub_models!r:.80}")
    reference = Image2Image(image_index=0, refer_strength=o.refer_strength) if image_uri else None
    return GenerateImagesSDXL(
        main_model=_as_model(o.model),
        sub_model_list=[_as_model(m) for m in o.sub_models],
        positive_prompts=[prompt],
        negative_prompts=[o.negative_prompt] if o.negative_prompt else [],
        translate_prompts=o.translate_prompts,
        seed=o.seed,
        width=o.width,
        height=o.height,
        batch_size=o.batch_size,
        tiling=o.tiling,
        image2image=reference,
        image_and_mask_list=[image_uri] if image_uri else [],
    )
