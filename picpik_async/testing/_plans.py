"""What the emulator does with each action beyond SDXL: checks, then the task it plans.

PURE: no I/O. This module never imports anyio, httpx, starlette or Pillow and
never awaits. Each task-creating action (docs/protocol.md, "Actions")
has an `ActionSpec`: the request model that validates it, the fields
the docs mark required, the Base64 images to check, and a `plan` function that
says what the task will produce: images of the right size (the requested size
for generation and ResizeImage, the input's size for editing actions) or texts
(DescribeImages). Image sizes come from an injected `Measure` (Pillow, in
`_images.py`), so this module stays pure.

Example:
    >>> from picpik_async._actions import ResizeImage
    >>> spec = ACTION_SPECS["ResizeImage"]
    >>> plan = spec.plan(ResizeImage(image="data:,a", width=2048, height=512), lambda image: None)
    >>> plan.sizes, plan.prompt
    (((2048, 512),), 'ResizeImage to 2048x512')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from attrs import frozen

from picpik_async._actions import (
    ApplyReferencePattern,
    ApplyReferenceStyle,
    ControlNetModel,
    DescribeImages,
    ExtractContents,
    GenerateBackgrounds,
    GenerateImages,
    GeneratePatternsFromImage,
    GenerationRequest,
    ListControlNetsResponse,
    ModifyMaskedPixels,
    RemoveBackground,
    RemoveBackgroundsInBatch,
    RemoveContents,
    ResizeImage,
    RestoreFaces,
    SwitchFace,
)
from picpik_async._models import Request

__all__ = [
    "ACTION_SPECS",
    "DEFAULT_CONTROL_NETS",
    "FALLBACK_SIZE",
    "MAX_SIDE",
    "ActionSpec",
    "Measure",
    "Plan",
    "describe_text",
]

#: Reads an image's (width, height) from its Base64 or data URI; None if it cannot.
Measure = Callable[[str], tuple[int, int] | None]

#: The size assumed for an input image that cannot be decoded.
FALLBACK_SIZE: Final = (1024, 1024)
#: Placeholder results are at most this many pixels a side (ResizeImage's maximum, 3.14).
MAX_SIDE: Final = 4096

# A few of the documented ControlNets (section 3.2); the keys are the display names.
DEFAULT_CONTROL_NETS: Final = ListControlNetsResponse(
    pre_processors={
        name: ControlNetModel(name)
        for name in ("canny", "depth_leres", "depth", "depth_zoe", "lineart", "openpose_full")
    },
    control_models={
        "Hard Edge": ControlNetModel("control_v11p_sd15_canny"),
        "Depth": ControlNetModel("control_v11f1p_sd15_depth"),
        "Lineart": ControlNetModel("control_v11p_sd15_lineart"),
        "Pose": ControlNetModel("control_v11p_sd15_openpose"),
        "Inpaint": ControlNetModel("control_v11p_sd15_inpaint"),
    },
)


@frozen(kw_only=True)
class Plan:
    """What one task will produce: its images (one size each), its texts, its seed."""

    prompt: str
    sizes: tuple[tuple[int, int], ...] = ()
    texts: tuple[str, ...] = ()
    seed: int = -1


@frozen(kw_only=True)
class ActionSpec:
    """How the emulator reads and runs one task-creating action."""

    model: type[Request[Any]]
    #: Wire names the docs mark required (or likely required), refused when missing.
    required: tuple[str, ...]
    #: (where, image) pairs to check as Base64, e.g. ("ImageList[1]", "data:...").
    images: Callable[[Any], list[tuple[str, str]]]
    plan: Callable[[Any, Measure], Plan]


def _measured(measure: Measure, image: str) -> tuple[int, int]:
    width, height = measure(image) or FALLBACK_SIZE
    return min(max(width, 1), MAX_SIDE), min(max(height, 1), MAX_SIDE)


def _listed(name: str, images: tuple[str, ...] | None) -> list[tuple[str, str]]:
    return [(f"{name}[{i}]", image) for i, image in enumerate(images or ())]


def _label(request: GenerationRequest) -> str:
    prompts = ", ".join(request.positive_prompts or ())
    return f"{request.action}: {prompts}" if prompts else request.action


def _generated(request: GenerationRequest, measure: Measure, source: str | None) -> Plan:
    """A generation's images: the requested size, else the source image's, else 1024x1024."""
    default = _measured(measure, source) if source is not None else FALLBACK_SIZE
    size = (request.width or default[0], request.height or default[1])
    seed = -1 if request.seed is None else request.seed
    return Plan(prompt=_label(request), sizes=(size,) * (request.batch_size or 1), seed=seed)


def _same_size(action: str, image: str, measure: Measure) -> Plan:
    return Plan(prompt=action, sizes=(_measured(measure, image),))


def describe_text(index: int, size: tuple[int, int], language: str) -> str:
    """The emulator's deterministic caption of image ``index`` (0-based) in ``language``.

    Example:
        >>> describe_text(0, (640, 480), "fr")
        '[fr] placeholder description of image 1 (640x480)'
    """
    return f"[{language}] placeholder description of image {index + 1} ({size[0]}x{size[1]})"


def _describe(request: DescribeImages, measure: Measure) -> Plan:
    language = request.translate_description or "en"  # the documented default (section 3.17)
    texts = tuple(
        describe_text(i, _measured(measure, image), language)
        for i, image in enumerate(request.image_list)
    )
    return Plan(prompt=request.action, texts=texts)


def _resize(request: ResizeImage, measure: Measure) -> Plan:
    label = f"{request.action} to {request.width}x{request.height}"
    return Plan(prompt=label, sizes=((request.width, request.height),))


def _batch(request: RemoveBackgroundsInBatch, measure: Measure) -> Plan:
    sizes = tuple(_measured(measure, image) for image in request.raw_images)
    return Plan(prompt=request.action, sizes=sizes)


_GENERATION: Final = ("MainModel",)  # section 3.0: the one required shared field

ACTION_SPECS: Final[Mapping[str, ActionSpec]] = {
    "GenerateImages": ActionSpec(
        model=GenerateImages,
        required=_GENERATION,
        images=lambda r: _listed("ImageAndMaskList", r.image_and_mask_list),
        plan=lambda r, m: _generated(r, m, None),
    ),
    "ModifyMaskedPixels": ActionSpec(
        model=ModifyMaskedPixels,
        required=(*_GENERATION, "Masked", "ImageAndMaskList"),
        images=lambda r: _listed("ImageAndMaskList", r.image_and_mask_list),
        plan=lambda r, m: _generated(r, m, r.image_and_mask_list[0]),
    ),
    "ApplyReferenceStyle": ActionSpec(
        model=ApplyReferenceStyle,
        required=(*_GENERATION, "RawImageIndex", "StyleImageIndex", "ImageList"),
        images=lambda r: _listed("ImageList", r.image_list),
        plan=lambda r, m: _generated(r, m, r.image_list[r.raw_image_index]),
    ),
    "ApplyReferencePattern": ActionSpec(
        model=ApplyReferencePattern,
        required=(
            *_GENERATION,
            "RawImageIndex",
            "MaskIndex",
            "PatternImageIndex",
            "ImageAndMaskList",
        ),
        images=lambda r: _listed("ImageAndMaskList", r.image_and_mask_list),
        plan=lambda r, m: _generated(r, m, r.image_and_mask_list[r.raw_image_index]),
    ),
    "GeneratePatternsFromImage": ActionSpec(
        model=GeneratePatternsFromImage,
        required=(*_GENERATION, "RawImage", "Box"),
        images=lambda r: [("RawImage", r.raw_image)],
        plan=lambda r, m: _generated(r, m, r.raw_image),
    ),
    "GenerateBackgrounds": ActionSpec(
        model=GenerateBackgrounds,
        required=(*_GENERATION, "TransparentForeground", "ImageList"),
        images=lambda r: _listed("ImageList", r.image_list),
        # The older docs: the size defaults to the foreground's (section 3.9). Which
        # image is the foreground is undocumented (section 4.7): the first one here.
        plan=lambda r, m: _generated(r, m, r.image_list[0]),
    ),
    "RemoveBackground": ActionSpec(
        model=RemoveBackground,
        required=("RawImage",),
        images=lambda r: [("RawImage", r.raw_image)],
        plan=lambda r, m: _same_size(r.action, r.raw_image, m),
    ),
    "RemoveBackgroundsInBatch": ActionSpec(
        model=RemoveBackgroundsInBatch,
        required=("RawImages",),
        images=lambda r: _listed("RawImages", r.raw_images),
        plan=_batch,
    ),
    "ExtractContents": ActionSpec(
        model=ExtractContents,
        required=("RawImage", "IncludePointList"),
        images=lambda r: [("RawImage", r.raw_image)],
        plan=lambda r, m: _same_size(r.action, r.raw_image, m),
    ),
    "RemoveContents": ActionSpec(
        model=RemoveContents,
        required=("RawImage", "Mask"),
        images=lambda r: [("RawImage", r.raw_image), ("Mask", r.mask)],
        plan=lambda r, m: _same_size(r.action, r.raw_image, m),
    ),
    "ResizeImage": ActionSpec(
        model=ResizeImage,
        required=("Width", "Height", "Image"),
        images=lambda r: [("Image", r.image)],
        plan=_resize,
    ),
    "RestoreFaces": ActionSpec(
        model=RestoreFaces,
        required=("RawImage",),
        images=lambda r: [("RawImage", r.raw_image)],
        plan=lambda r, m: _same_size(r.action, r.raw_image, m),
    ),
    "SwitchFace": ActionSpec(
        model=SwitchFace,
        required=("RawImage", "NewFaceImage"),
        images=lambda r: [("RawImage", r.raw_image), ("NewFaceImage", r.new_face_image)],
        plan=lambda r, m: _same_size(r.action, r.raw_image, m),
    ),
    "DescribeImages": ActionSpec(
        model=DescribeImages,
        required=("ImageList",),
        images=lambda r: _listed("ImageList", r.image_list),
        plan=_describe,
    ),
}
