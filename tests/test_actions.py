"""Tests for picpik_async._actions: every action's ranges, types, index rules and wire form.

Also the `extra_fields` mechanism of `_models` and `_wire` (undocumented wire
fields, merged as given, collisions refused) and the answer types.
Synchronous: the pure core needs no event loop.
"""

from __future__ import annotations

import doctest
import json
import math
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from doctests import run_doctests
from hypothesis import given, settings
from hypothesis import strategies as st

from picpik_async import _actions as actions_module
from picpik_async._actions import (
    DESCRIBE_LANGUAGES,
    ApplyReferencePattern,
    ApplyReferenceStyle,
    BatchSubmitResponse,
    ControlNet,
    ControlNetModel,
    Coordinate,
    DescribeImages,
    ExtractContents,
    Foreground,
    GenerateBackgrounds,
    GenerateImages,
    GenerateImagesSDXL,
    GenerateOptions,
    GeneratePatternsFromImage,
    GenerationOptions,
    GenerationRequest,
    ListControlNets,
    ListControlNetsResponse,
    ListModels,
    ListTasksDetails,
    Mask,
    MattingOptions,
    ModifyMaskedPixels,
    RemoveBackground,
    RemoveBackgroundsInBatch,
    RemoveContents,
    ResizeImage,
    RestoreFaces,
    SwitchFace,
    as_coordinates,
    check_options,
    generation_fields,
    sdxl_request,
    task_uids_of,
)
from picpik_async._errors import ProtocolError, ValidationError
from picpik_async._models import (
    Image2Image,
    InferenceParams,
    Model,
    Request,
    SubmitResponse,
)
from picpik_async._protocol import build_body, parse_response, wire_params
from picpik_async._signing import drop_none, sign
from picpik_async._wire import structure, unstructure, wire_name

IMG = "data:image/png;base64,AAAA"
GENERAL = Model("PICPIK General")
PUBLIC_KEY, PRIVATE_KEY = "abcdefg", "123456"

# The smallest valid keyword arguments of every task-creating request.
VALID: dict[type[Any], dict[str, Any]] = {
    GenerateImages: {"main_model": GENERAL},
    ModifyMaskedPixels: {"main_model": GENERAL, "masked": Mask(), "image_and_mask_list": [IMG]},
    ApplyReferenceStyle: {
        "main_model": GENERAL,
        "raw_image_index": 0,
        "style_image_index": 1,
        "image_list": [IMG, IMG],
    },
    ApplyReferencePattern: {
        "main_model": GENERAL,
        "raw_image_index": 0,
        "mask_index": 1,
        "pattern_image_index": 2,
        "image_and_mask_list": [IMG, IMG, IMG],
    },
    GeneratePatternsFromImage: {"main_model": GENERAL, "raw_image": IMG, "box": [0, 0, 64, 64]},
    GenerateBackgrounds: {
        "main_model": GENERAL,
        "transparent_foreground": Foreground(),
        "image_list": [IMG],
    },
    RemoveBackground: {"raw_image": IMG},
    RemoveBackgroundsInBatch: {"raw_images": [IMG]},
    ExtractContents: {"raw_image": IMG, "include_point_list": [Coordinate(1, 2)]},
    RemoveContents: {"raw_image": IMG, "mask": IMG},
    ResizeImage: {"image": IMG, "width": 64, "height": 64},
    RestoreFaces: {"raw_image": IMG},
    SwitchFace: {"raw_image": IMG, "new_face_image": IMG},
    DescribeImages: {"image_list": [IMG]},
}
TASK_REQUESTS = list(VALID)
GENERATIONS = [cls for cls in TASK_REQUESTS if issubclass(cls, GenerationRequest)]
MATTING = [RemoveBackground, RemoveBackgroundsInBatch, ExtractContents]

Factory = Callable[..., Any]


def maker(cls: type[Any]) -> Factory:
    """A factory for `cls` filling in its smallest valid arguments."""

    def make(**changes: Any) -> Any:
        return cls(**{**VALID[cls], **changes})

    make.__name__ = cls.__name__
    return make


def each(classes: list[type[Any]], name: str, *values: object) -> list[Any]:
    """Parameters (factory, field, value) for every class and value."""
    return [
        pytest.param(maker(cls), name, value, id=f"{cls.__name__}-{name}-{value!r}")
        for cls in classes
        for value in values
    ]


# (factory, field, value, the range the message must name)
OUT_OF_RANGE = [
    *[
        pytest.param(*p.values, "64..2560", id=p.id)
        for p in each(GENERATIONS, "width", 63, 2561) + each(GENERATIONS, "height", 63, 2561)
    ],
    *[pytest.param(*p.values, "-1..2147483647", id=p.id) for p in each(GENERATIONS, "seed", -2)],
    *[pytest.param(*p.values, "1..16", id=p.id) for p in each(GENERATIONS, "batch_size", 0, 17)],
    *[pytest.param(*p.values, "0..40", id=p.id) for p in each(MATTING, "erode_size", -1, 41)],
    *[
        pytest.param(*p.values, "0..255", id=p.id)
        for name in ("foreground_threshold", "background_threshold")
        for p in each(MATTING, name, -1, 256)
    ],
    *[
        pytest.param(*p.values, "0..64", id=p.id)
        for p in each([RemoveContents], "mask_blur", -1, 65)
    ],
    *[
        pytest.param(*p.values, "64..4096", id=p.id)
        for name in ("width", "height")
        for p in each([ResizeImage], name, 63, 4097, 10)
    ],
    *[
        pytest.param(*p.values, "1..100", id=p.id)
        for p in each([SwitchFace], "raw_face_index", 0, 101, -1)
    ],
    pytest.param(maker(ApplyReferenceStyle), "style_refer_strength", 1.5, "0..1", id="style-1.5"),
    pytest.param(maker(ApplyReferenceStyle), "style_refer_strength", -0.1, "0..1", id="style-neg"),
    pytest.param(
        maker(ApplyReferencePattern), "pattern_refer_strength", 1.01, "0..1", id="pattern-above"
    ),
    pytest.param(maker(RestoreFaces), "restore_strength", 2.0, "0..1", id="restore-2"),
    pytest.param(maker(RestoreFaces), "restore_strength", math.nan, "0..1", id="restore-nan"),
    pytest.param(maker(RestoreFaces), "restore_strength", math.inf, "0..1", id="restore-inf"),
    pytest.param(ControlNet, "image_index", -1, "0..2147483647", id="controlnet-image-index"),
    pytest.param(
        lambda **kw: ControlNet(image_index=0, **kw), "mask_index", -1, "0..2", id="mask-index"
    ),
    pytest.param(lambda **kw: Coordinate(y=0, **kw), "x", -1, "0..2147483647", id="coordinate-x"),
    pytest.param(
        lambda **kw: Coordinate(x=0, **kw), "y", 2**31, "0..2147483647", id="coordinate-y"
    ),
    pytest.param(maker(SwitchFace), "raw_face_index", 2**31, "1..100", id="face-huge"),
]

BOUNDARIES = [
    *each(GENERATIONS, "width", 64, 2560),
    *each(GENERATIONS, "height", 64, 2560),
    *each(GENERATIONS, "seed", -1, 2_147_483_647),
    *each(GENERATIONS, "batch_size", 1, 16),
    *each(GENERATIONS, "translate_prompts", True, False),
    *each(GENERATIONS, "use_main_model_vae", True, False),
    *each(MATTING, "erode_size", 0, 40),
    *each(MATTING, "foreground_threshold", 0, 255),
    *each(MATTING, "background_threshold", 0, 255),
    *each(MATTING, "hair_optimization", "auto", "on", "off"),
    *each(MATTING, "only_mask", True, False),
    *each([RemoveContents], "mask_blur", 0, 64),
    *each([RemoveContents], "invert_mask", True, False),
    *each([ResizeImage], "width", 64, 4096),
    *each([ResizeImage], "height", 64, 4096),
    *each([SwitchFace], "raw_face_index", 1, 100),
    *each([RestoreFaces], "restore_strength", 0.0, 1.0),
    *each([ApplyReferenceStyle], "style_refer_strength", 0.0, 1.0),
    *each([ApplyReferencePattern], "pattern_refer_strength", 0.0, 1.0),
    *each([ApplyReferencePattern], "chaotic_mode", True, False),
    *each([GenerateImages], "tileable", True, False),
    *each([GeneratePatternsFromImage], "tiling", True),
    *each([DescribeImages], "translate_description", *DESCRIBE_LANGUAGES),
    *each([RemoveBackground], "box", (0, 0, 1, 1), (0, 0, 2**31 - 2, 2**31 - 1)),
]

# (factory, keyword arguments, the field the message must name)
WRONG_TYPES = [
    *[
        pytest.param(maker(cls), {name: value}, name, id=f"{cls.__name__}-{name}-{value!r}")
        for cls in GENERATIONS
        for name, value in [
            ("width", 512.0),
            ("height", "512"),
            ("seed", True),
            ("batch_size", False),
            ("translate_prompts", 1),
            ("use_main_model_vae", "yes"),
            ("main_model", "PICPIK General"),
            ("positive_prompts", "a cat"),
            ("negative_prompts", [1]),
            ("sub_model_list", ["lora"]),
        ]
    ],
    *[
        pytest.param(maker(cls), {name: value}, name, id=f"{cls.__name__}-{name}-{value!r}")
        for cls in MATTING
        for name, value in [
            ("erode_size", 1.5),
            ("foreground_threshold", True),
            ("hair_optimization", "maybe"),
            ("hair_optimization", "AUTO"),
            ("only_mask", 1),
        ]
    ],
    pytest.param(maker(RemoveBackground), {"raw_image": ""}, "raw_image", id="empty-image"),
    pytest.param(maker(RemoveBackground), {"raw_image": b"x"}, "raw_image", id="bytes-image"),
    pytest.param(maker(RemoveBackgroundsInBatch), {"raw_images": IMG}, "raw_images", id="str"),
    pytest.param(maker(RemoveBackgroundsInBatch), {"raw_images": [""]}, "raw_images", id="blank"),
    pytest.param(maker(DescribeImages), {"image_list": [1]}, "image_list", id="int-image"),
    pytest.param(
        maker(DescribeImages), {"translate_description": "EN"}, "translate_description", id="EN"
    ),
    pytest.param(
        maker(DescribeImages), {"translate_description": "xx"}, "translate_description", id="xx"
    ),
    pytest.param(maker(ResizeImage), {"width": "64"}, "width", id="str-width"),
    pytest.param(maker(ResizeImage), {"image": None}, "image", id="none-image"),
    pytest.param(maker(RestoreFaces), {"restore_strength": "0.5"}, "restore_strength", id="str"),
    pytest.param(maker(RestoreFaces), {"restore_strength": True}, "restore_strength", id="bool"),
    pytest.param(maker(SwitchFace), {"raw_face_index": 1.0}, "raw_face_index", id="float-face"),
    pytest.param(maker(RemoveContents), {"invert_mask": "no"}, "invert_mask", id="str-invert"),
    pytest.param(maker(ModifyMaskedPixels), {"masked": {}}, "masked", id="dict-mask"),
    pytest.param(
        maker(GenerateBackgrounds),
        {"transparent_foreground": None},
        "transparent_foreground",
        id="none-foreground",
    ),
    pytest.param(
        maker(GenerateImages), {"image2image": {"ImageIndex": 0}}, "image2image", id="dict-i2i"
    ),
    pytest.param(
        maker(GenerateImages),
        {"control_net_list": [{"ImageIndex": 0}]},
        "control_net_list",
        id="dict-controlnet",
    ),
    pytest.param(
        maker(ExtractContents),
        {"include_point_list": [(1, 2)]},
        "include_point_list",
        id="tuple-point",
    ),
    pytest.param(
        maker(ExtractContents), {"exclude_point_list": "1,2"}, "exclude_point_list", id="str"
    ),
    pytest.param(
        maker(ApplyReferenceStyle), {"raw_image_index": True}, "raw_image_index", id="bool-index"
    ),
    pytest.param(ControlNet, {"image_index": 0, "invert_mask": 1}, "invert_mask", id="int-flag"),
    pytest.param(Coordinate, {"x": 1.0, "y": 2}, "x", id="float-x"),
    pytest.param(ControlNetModel, {"model_code": " "}, "model_code", id="blank-code"),
    pytest.param(
        ControlNetModel,
        {"model_code": "c", "inference_params": {"Steps": 1}},
        "inference_params",
        id="dict-params",
    ),
]

# Cross-field rules: an index must point inside the list it indexes.
BAD_INDEXES = [
    pytest.param(
        maker(GenerateImages),
        {"image2image": Image2Image(image_index=0)},
        "image2image.image_index",
        id="image2image-without-images",
    ),
    pytest.param(
        maker(GenerateImages),
        {"image2image": Image2Image(image_index=1), "image_and_mask_list": [IMG]},
        "image2image.image_index",
        id="image2image-past-the-end",
    ),
    pytest.param(
        maker(GenerateImages),
        {"control_net_list": [ControlNet(image_index=1)], "image_and_mask_list": [IMG]},
        "control_net_list[0].image_index",
        id="controlnet-image",
    ),
    pytest.param(
        maker(GenerateImages),
        {
            "control_net_list": [
                ControlNet(image_index=0),
                ControlNet(image_index=0, mask_index=2),
            ],
            "image_and_mask_list": [IMG, IMG],
        },
        "control_net_list[1].mask_index",
        id="controlnet-mask",
    ),
    pytest.param(
        maker(ModifyMaskedPixels),
        {"image2image": Image2Image(image_index=1)},
        "image2image.image_index",
        id="inpaint-image2image",
    ),
    pytest.param(
        maker(ApplyReferenceStyle), {"raw_image_index": 2}, "raw_image_index", id="style-raw"
    ),
    pytest.param(
        maker(ApplyReferenceStyle), {"style_image_index": 5}, "style_image_index", id="style-ref"
    ),
    *[
        pytest.param(maker(ApplyReferencePattern), {name: 3}, name, id=f"pattern-{name}")
        for name in ("raw_image_index", "mask_index", "pattern_image_index")
    ],
    pytest.param(
        maker(GenerateBackgrounds),
        {"background_image2image": Image2Image(image_index=1)},
        "background_image2image.image_index",
        id="backgrounds",
    ),
]

# Lists and boxes that break a documented shape.
BAD_SHAPES = [
    *[
        pytest.param(maker(cls), {name: []}, name, id=f"{cls.__name__}-empty-{name}")
        for cls, name in [
            (ModifyMaskedPixels, "image_and_mask_list"),
            (ApplyReferenceStyle, "image_list"),
            (ApplyReferencePattern, "image_and_mask_list"),
            (GenerateBackgrounds, "image_list"),
            (RemoveBackgroundsInBatch, "raw_images"),
            (ExtractContents, "include_point_list"),
            (DescribeImages, "image_list"),
        ]
    ],
    pytest.param(
        maker(GenerateImages),
        {"control_net_list": [ControlNet(image_index=0)] * 4, "image_and_mask_list": [IMG]},
        "control_net_list",
        id="four-controlnets",
    ),
    *[
        pytest.param(maker(cls), {"box": box}, "box", id=f"{cls.__name__}-box-{box!r}")
        for cls in (RemoveBackground, GeneratePatternsFromImage)
        for box in [
            [0, 0, 10],
            [0, 0, 10, 10, 10],
            [-1, 0, 10, 10],
            [10, 0, 10, 10],
            [0, 10, 10, 5],
            [0, 0, True, 10],
            [0, 0, 10.0, 10],
            "0,0,10,10",
        ]
    ],
]


class TestValidation:
    """Every documented range, enum, type and index rule is enforced at construction."""

    @pytest.mark.parametrize(("make", "name", "value", "allowed"), OUT_OF_RANGE)
    def test_out_of_range_is_refused(
        self, make: Factory, name: str, value: object, allowed: str
    ) -> None:
        """An out-of-range value raises ValidationError naming field, value and range."""
        with pytest.raises(ValidationError) as caught:
            make(**{name: value})
        message = str(caught.value)
        assert f".{name} " in message
        assert repr(value) in message or str(value) in message
        assert allowed in message
        assert isinstance(caught.value, ValueError)

    @pytest.mark.parametrize(("make", "name", "value"), BOUNDARIES)
    def test_boundaries_are_accepted(self, make: Factory, name: str, value: object) -> None:
        """Both ends of every range, and every enum value, are accepted and kept."""
        kept = getattr(make(**{name: value}), name)
        assert kept == (tuple(value) if isinstance(value, list) else value)

    @pytest.mark.parametrize(("make", "kwargs", "name"), WRONG_TYPES)
    def test_wrong_type_is_refused(self, make: Factory, kwargs: dict[str, Any], name: str) -> None:
        """A value of the wrong type raises ValidationError naming the field."""
        with pytest.raises(ValidationError) as caught:
            make(**kwargs)
        assert f".{name} " in str(caught.value)

    @pytest.mark.parametrize(("make", "kwargs", "name"), BAD_INDEXES)
    def test_index_outside_its_list_is_refused(
        self, make: Factory, kwargs: dict[str, Any], name: str
    ) -> None:
        """An index that does not point inside its image list is refused, naming both."""
        with pytest.raises(ValidationError) as caught:
            make(**kwargs)
        message = str(caught.value)
        assert f".{name} " in message
        assert "list" in message

    @pytest.mark.parametrize(("make", "kwargs", "name"), BAD_SHAPES)
    def test_bad_list_shapes_are_refused(
        self, make: Factory, kwargs: dict[str, Any], name: str
    ) -> None:
        """Empty required lists, four ControlNets and malformed boxes are refused."""
        with pytest.raises(ValidationError) as caught:
            make(**kwargs)
        assert f".{name} " in str(caught.value)

    @pytest.mark.parametrize("cls", TASK_REQUESTS, ids=lambda c: c.__name__)
    def test_smallest_valid_request(self, cls: type[Any]) -> None:
        """The smallest request is valid, creates a task and answers with a TaskUID."""
        request = cls(**VALID[cls])
        assert request.creates_task is True
        assert issubclass(request.response_type, SubmitResponse)
        assert request.action == cls.__name__

    def test_indexes_inside_their_lists_are_accepted(self) -> None:
        """Indexes at the last item of their list are valid."""
        request = GenerateImages(
            main_model=GENERAL,
            image_and_mask_list=[IMG, IMG, IMG],
            image2image=Image2Image(image_index=2),
            control_net_list=[
                ControlNet(image_index=0, mask_index=1, invert_mask=True),
                ControlNet(image_index=2),
                ControlNet(image_index=1, mask_index=2),
            ],
        )
        assert len(request.control_net_list or ()) == 3
        assert maker(ApplyReferenceStyle)(raw_image_index=1, style_image_index=0)
        assert maker(GenerateBackgrounds)(background_image2image=Image2Image(image_index=0))

    def test_strengths_are_rounded_to_the_step(self) -> None:
        """Strengths are rounded to their 0.01 step; ints become floats (section 2.4)."""
        assert RestoreFaces(raw_image=IMG, restore_strength=0.355001).restore_strength == 0.36
        strength = maker(ApplyReferenceStyle)(style_refer_strength=1).style_refer_strength
        assert strength == 1.0
        assert type(strength) is float

    def test_optional_fields_default_to_none(self) -> None:
        """Optional fields are None when unset, so they are not sent."""
        request = GenerateImages(main_model=GENERAL)
        assert wire_params(request) == {"MainModel": {"ModelCode": "PICPIK General"}}
        assert wire_params(RemoveBackground(raw_image=IMG)) == {"RawImage": IMG}

    def test_missing_required_fields(self) -> None:
        """Leaving out a required field fails at construction."""
        with pytest.raises(TypeError, match="width"):
            ResizeImage(image=IMG, height=64)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="masked"):
            ModifyMaskedPixels(main_model=GENERAL, image_and_mask_list=[IMG])  # type: ignore[call-arg]

    def test_requests_are_frozen_and_hashable(self) -> None:
        """Requests are immutable values; equal requests hash equally."""
        request = maker(RemoveBackgroundsInBatch)(raw_images=[IMG, IMG])
        same = maker(RemoveBackgroundsInBatch)(raw_images=(IMG, IMG))
        assert request == same
        assert hash(request) == hash(same)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            request.raw_images = ()


class TestWire:
    """Wire names, known-answer signatures and round trips of every action."""

    @pytest.mark.parametrize(
        ("attribute", "wire"),
        [
            pytest.param("use_main_model_vae", "UseMainModelVAE", id="vae"),
            pytest.param("background_image2image", "BackgroundImage2Image", id="background-i2i"),
            pytest.param("control_net_list", "ControlNetList", id="controlnets"),
            pytest.param("raw_face_index", "RawFaceIndex", id="face-index"),
            pytest.param("translate_description", "TranslateDescription", id="language"),
            pytest.param("include_point_list", "IncludePointList", id="points"),
            pytest.param("pre_processors", "PreProcessors", id="pre-processors"),
        ],
    )
    def test_wire_names(self, attribute: str, wire: str) -> None:
        """Irregular names are explicit renames; the rest is PascalCase (section 3)."""
        assert wire_name(attribute) == wire

    def test_v1_generate_images(self) -> None:
        """Test vector V1 (section 2.6): nested Model, InferenceParams, SubModelList."""
        request = GenerateImages(
            main_model=Model(
                "sd15_general",
                inference_params=InferenceParams(
                    steps=20, sampler="Euler a", cfg_scale=7.5, clip_skip=2
                ),
            ),
            sub_model_list=[
                Model("lora_watercolor", inference_params=InferenceParams(lora_weight=0.8))
            ],
            positive_prompts=["a cat sitting on a windowsill"],
            width=768,
            height=512,
            batch_size=2,
            seed=-1,
        )
        body = json.loads(
            build_body(
                request,
                public_key=PUBLIC_KEY,
                private_key=PRIVATE_KEY,
                request_uuid="b91fcfbe-bb35-47ce-a168-bd6252c75270",
            )
        )
        assert body["Signature"] == "141eb6ec793d7e6fbe583f84e21289b039381007"

    @pytest.mark.parametrize(
        ("request_", "signature"),
        [
            pytest.param(
                ApplyReferenceStyle(
                    main_model=Model(
                        "sd15_general", inference_params=InferenceParams(cfg_scale=7.0)
                    ),
                    style_refer_strength=0.35,
                    translate_prompts=False,
                    use_main_model_vae=True,
                    raw_image_index=0,
                    style_image_index=1,
                    image_list=["data:image/png;base64,AAAA", "data:image/png;base64,BBBB"],
                ),
                "7ce4cb14f946b6fd4ce8b74d65ae5d774c21f092",
                id="v3-apply-reference-style",
            ),
            pytest.param(
                RemoveBackground(
                    raw_image="data:image/jpeg;base64,xxx",
                    box=[180, 264, 510, 642],
                    hair_optimization="auto",
                    only_mask=True,
                    erode_size=15,
                ),
                "7fcad5244ebc77c03a29a078e1444329b274d68c",
                id="v4-remove-background",
            ),
            pytest.param(
                GenerateImages(
                    main_model=Model("sd15_general"),
                    positive_prompts=["一只猫", "日落"],
                    translate_prompts=True,
                ),
                "a8f4641c79948f3aa80303af6937dc09baf869a5",
                id="v5-non-ascii",
            ),
        ],
    )
    def test_known_answer_vectors(self, request_: Request[Any], signature: str) -> None:
        """Test vectors V3-V5 (section 2.6) sign to the published values (no request_uuid)."""
        body = {"Action": request_.action, "PublicKey": PUBLIC_KEY, **wire_params(request_)}
        assert sign(body, PRIVATE_KEY) == signature

    def test_nested_wire_form(self) -> None:
        """Nested types take their wire names; points are {X, Y}; tuples are lists."""
        request = ExtractContents(
            raw_image=IMG,
            include_point_list=[Coordinate(72, 270)],
            exclude_point_list=[Coordinate(0, 1)],
            hair_optimization="on",
        )
        assert wire_params(request) == {
            "HairOptimization": "on",
            "RawImage": IMG,
            "IncludePointList": [{"X": 72, "Y": 270}],
            "ExcludePointList": [{"X": 0, "Y": 1}],
        }
        net = GenerateImages(
            main_model=GENERAL,
            control_net_list=[ControlNet(image_index=0, mask_index=1, invert_mask=False)],
            image_and_mask_list=[IMG, IMG],
            use_main_model_vae=True,
        )
        params = wire_params(net)
        assert params["ControlNetList"] == [{"ImageIndex": 0, "MaskIndex": 1, "InvertMask": False}]
        assert params["UseMainModelVAE"] is True

    @settings(deadline=None, max_examples=60)
    @given(data=st.data())
    def test_round_trips(self, data: st.DataObject) -> None:
        """object -> JSON wire form -> object (validated, as the emulator reads it) is equal."""
        request = data.draw(st.one_of(*[requests(cls) for cls in TASK_REQUESTS]))
        wire = json.loads(json.dumps(drop_none(unstructure(request))))
        assert structure(wire, type(request), validate=True) == request
        again = drop_none(unstructure(structure(wire, type(request))))
        assert again == wire

    @pytest.mark.parametrize("cls", TASK_REQUESTS, ids=lambda c: c.__name__)
    def test_every_action_builds_a_signed_body(self, cls: type[Any]) -> None:
        """Each request becomes a signed body naming its Action."""
        body = json.loads(
            build_body(cls(**VALID[cls]), public_key="pk", private_key="sk", request_uuid="u")
        )
        assert body["Action"] == cls.__name__
        assert len(body["Signature"]) == 40


class TestExtraFields:
    """Undocumented wire fields: merged as given, signed, never overriding known fields."""

    def test_merged_into_the_request_and_signed(self) -> None:
        """extra_fields join the body at the top level and change the signature."""
        plain = RestoreFaces(raw_image=IMG)
        extra = RestoreFaces(raw_image=IMG, extra_fields={"FaceModel": "gfpgan", "Alpha": 0.5})
        assert wire_params(extra) == {"RawImage": IMG, "FaceModel": "gfpgan", "Alpha": 0.5}
        bodies = [
            json.loads(build_body(r, public_key="pk", private_key="sk", request_uuid="u"))
            for r in (plain, extra)
        ]
        assert bodies[0]["Signature"] != bodies[1]["Signature"]
        assert bodies[1]["FaceModel"] == "gfpgan"

    def test_merged_into_nested_types(self) -> None:
        """ControlNet, Mask, Foreground and Image2Image carry their own extras."""
        request = GenerateImages(
            main_model=GENERAL,
            image_and_mask_list=[IMG],
            image2image=Image2Image(extra_fields={"DeepFusion": True}),
            control_net_list=[
                ControlNet(
                    image_index=0,
                    extra_fields={"ControlModel": {"ModelCode": "control_v11p_sd15_canny"}},
                )
            ],
        )
        params = wire_params(request)
        assert params["Image2Image"] == {"ImageIndex": 0, "ReferStrength": 0.5, "DeepFusion": True}
        assert params["ControlNetList"] == [
            {"ImageIndex": 0, "ControlModel": {"ModelCode": "control_v11p_sd15_canny"}}
        ]
        masked = maker(ModifyMaskedPixels)(masked=Mask(extra_fields={"MaskIndex": 0}))
        assert wire_params(masked)["Masked"] == {"MaskIndex": 0}
        backgrounds = maker(GenerateBackgrounds)(
            transparent_foreground=Foreground(extra_fields={"ImageIndex": 0})
        )
        assert wire_params(backgrounds)["TransparentForeground"] == {"ImageIndex": 0}

    def test_existing_requests_take_extras_too(self) -> None:
        """The mechanism is on the Request base: SDXL and reads take extras as well."""
        sdxl = GenerateImagesSDXL(main_model=GENERAL, extra_fields={"Sharpness": 2})
        assert wire_params(sdxl)["Sharpness"] == 2
        assert wire_params(ListTasksDetails(["u1"], extra_fields={"Verbose": True})) == {
            "TaskUIDList": ["u1"],
            "Verbose": True,
        }
        assert wire_params(ListModels()) == {}

    def test_none_values_are_not_sent(self) -> None:
        """A None extra is dropped like every None (section 2.2)."""
        assert wire_params(RestoreFaces(raw_image=IMG, extra_fields={"Alpha": None})) == {
            "RawImage": IMG
        }

    @pytest.mark.parametrize(
        ("make", "key", "known"),
        [
            pytest.param(maker(ResizeImage), "Width", "width", id="wire-name"),
            pytest.param(maker(ResizeImage), "width", "width", id="attribute-name"),
            pytest.param(maker(ResizeImage), "WIDTH", "width", id="upper-case"),
            pytest.param(maker(GenerateImages), "UseMainModelVAE", "use_main_model_vae", id="vae"),
            pytest.param(maker(GenerateImages), "Batch_Size", "batch_size", id="odd-spelling"),
            pytest.param(maker(GenerateImages), "Image2Image", "image2image", id="image2image"),
            pytest.param(
                lambda **kw: ListTasksDetails(["u"], **kw),
                "TaskUIDList",
                "task_uid_list",
                id="uids",
            ),
            pytest.param(
                lambda **kw: ControlNet(image_index=0, **kw), "MaskIndex", "mask_index", id="nested"
            ),
            pytest.param(Image2Image, "ReferStrength", "refer_strength", id="image2image-field"),
        ],
    )
    def test_collisions_with_known_fields_are_refused(
        self, make: Factory, key: str, known: str
    ) -> None:
        """A key naming a known field, in any spelling, is refused: set the field itself."""
        with pytest.raises(ValidationError) as caught:
            make(extra_fields={key: 1})
        message = str(caught.value)
        assert ".extra_fields " in message
        assert repr(key) in message
        assert known in message

    @pytest.mark.parametrize("key", ["Action", "PublicKey", "Signature", "request_uuid", "action"])
    def test_common_fields_are_refused(self, key: str) -> None:
        """Action, PublicKey, Signature and request_uuid belong to the client (section 1.2)."""
        with pytest.raises(ValidationError, match="common field"):
            RestoreFaces(raw_image=IMG, extra_fields={key: "x"})

    def test_common_field_names_are_fine_inside_nested_types(self) -> None:
        """Only requests reserve the common fields; a nested type has none."""
        assert Mask(extra_fields={"Action": "redraw"}).extra_fields == {"Action": "redraw"}

    @pytest.mark.parametrize(
        ("extras", "words"),
        [
            pytest.param([("A", 1)], "mapping", id="list"),
            pytest.param("A=1", "mapping", id="str"),
            pytest.param({1: "x"}, "mapping", id="int-key"),
            pytest.param({"": "x"}, "mapping", id="empty-key"),
            pytest.param({"A": math.nan}, "cannot be sent", id="nan"),
            pytest.param({"A": [None]}, "cannot be sent", id="none-in-list"),
            pytest.param({"A": object()}, "cannot be sent", id="object"),
            pytest.param({"A": Mask()}, "cannot be sent", id="model-value"),
        ],
    )
    def test_bad_extras_are_refused(self, extras: object, words: str) -> None:
        """extra_fields must be a str-keyed mapping of values that can be signed and sent."""
        with pytest.raises(ValidationError, match=words):
            RestoreFaces(raw_image=IMG, extra_fields=extras)  # type: ignore[arg-type]

    def test_extras_are_copied_and_compared(self) -> None:
        """The mapping is copied (later edits do not leak in) and takes part in equality."""
        mine = {"Alpha": 1}
        request = RestoreFaces(raw_image=IMG, extra_fields=mine)
        mine["Alpha"] = 2
        assert request.extra_fields == {"Alpha": 1}
        assert request != RestoreFaces(raw_image=IMG)
        assert request == RestoreFaces(raw_image=IMG, extra_fields={"Alpha": 1})
        assert hash(request) == hash(RestoreFaces(raw_image=IMG, extra_fields={"Alpha": [1]}))

    def test_reading_never_fills_extras(self) -> None:
        """Unknown wire fields are ignored when reading, not collected as extras."""
        read = structure({"RawImage": IMG, "Alpha": 1}, RestoreFaces, validate=True)
        assert read == RestoreFaces(raw_image=IMG)
        assert (
            structure({"ExtraFields": {"A": 1}, "RawImage": IMG}, RestoreFaces).extra_fields == {}
        )


class TestAnswers:
    """BatchSubmitResponse and ListControlNetsResponse read every documented shape."""

    @pytest.mark.parametrize(
        ("fields", "uids"),
        [
            pytest.param({"TaskUID": "u1"}, ("u1",), id="one-uid"),
            pytest.param({"TaskUIDList": ["u1", "u2"]}, ("u1", "u2"), id="list"),
            pytest.param({"TaskUID": "u1", "TaskUIDList": ["u1", "u2"]}, ("u1", "u2"), id="both"),
            pytest.param({"TaskUID": "u0", "TaskUIDList": ["u1"]}, ("u0", "u1"), id="different"),
        ],
    )
    def test_batch_answer_shapes(self, fields: dict[str, Any], uids: tuple[str, ...]) -> None:
        """RemoveBackgroundsInBatch may answer one TaskUID or a list (section 8.8)."""
        request = maker(RemoveBackgroundsInBatch)()
        content = json.dumps({"RetCode": 0, "Action": request.action, **fields}).encode()
        answer = parse_response(request, status_code=200, content=content, request_uuid="u")
        assert isinstance(answer, BatchSubmitResponse)
        assert task_uids_of(answer) == uids
        assert answer.task_uid == uids[0]

    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param({}, id="neither"),
            pytest.param({"TaskUIDList": []}, id="empty-list"),
            pytest.param({"TaskUIDList": "u1"}, id="str-list"),
            pytest.param({"TaskUID": 5}, id="int-uid"),
        ],
    )
    def test_batch_answer_without_a_task_is_a_protocol_error(self, fields: dict[str, Any]) -> None:
        """An answer naming no task is a ProtocolError (the task may exist: not retried here)."""
        request = maker(RemoveBackgroundsInBatch)()
        content = json.dumps({"RetCode": 0, **fields}).encode()
        with pytest.raises(ProtocolError):
            parse_response(request, status_code=200, content=content, request_uuid="u")

    def test_batch_response_made_by_hand(self) -> None:
        """Made directly, it needs at least one TaskUID."""
        with pytest.raises(ValidationError, match="task_uid"):
            BatchSubmitResponse()
        with pytest.raises(ValidationError, match="task_uid_list"):
            BatchSubmitResponse(task_uid_list=[""])
        assert BatchSubmitResponse("u1").task_uid_list == ("u1",)
        assert task_uids_of(SubmitResponse("u9")) == ("u9",)

    def test_list_control_nets_answer(self) -> None:
        """ListControlNets answers maps of {ModelCode, InferenceParams} (sections 3.2, 4.5)."""
        request = ListControlNets()
        assert request.creates_task is False
        content = json.dumps(
            {
                "RetCode": 0,
                "PreProcessors": {"canny": {"ModelCode": "canny", "InferenceParams": {}}},
                "ControlModels": {
                    "Hard Edge": {
                        "ModelCode": "control_v11p_sd15_canny",
                        "InferenceParams": {"LoraWeight": 1, "Unknown": 3},
                    }
                },
            }
        ).encode()
        answer = parse_response(request, status_code=200, content=content, request_uuid="u")
        assert isinstance(answer, ListControlNetsResponse)
        assert answer.pre_processors["canny"].model_code == "canny"
        params = answer.control_models["Hard Edge"].inference_params
        assert params == InferenceParams(lora_weight=1.0)
        empty = parse_response(request, status_code=200, content=b'{"RetCode":0}', request_uuid="u")
        assert empty == ListControlNetsResponse()

    def test_list_control_nets_answer_needs_model_codes(self) -> None:
        """A ControlNet entry without a ModelCode does not fit the contract."""
        content = json.dumps({"RetCode": 0, "ControlModels": {"x": {}}}).encode()
        with pytest.raises(ProtocolError):
            parse_response(ListControlNets(), status_code=200, content=content, request_uuid="u")


class TestHelpers:
    """The pure request-building helpers the client methods use."""

    def test_generation_fields(self) -> None:
        """Options become the shared fields; unset ones are left out or None."""
        fields = generation_fields(
            "a cat",
            {
                "negative_prompt": "blur",
                "model": "m",
                "sub_models": ["lora", Model("x")],
                "seed": 3,
            },
            default_model="PICPIK General",
        )
        assert fields["main_model"] == Model("m")
        assert fields["sub_model_list"] == [Model("lora"), Model("x")]
        assert fields["positive_prompts"] == ["a cat"]
        assert fields["negative_prompts"] == ["blur"]
        assert fields["seed"] == 3
        assert "width" not in fields
        bare = generation_fields(None, {}, default_model=GENERAL)
        assert bare["main_model"] is GENERAL
        assert (
            bare["positive_prompts"] is bare["negative_prompts"] is bare["sub_model_list"] is None
        )

    @pytest.mark.parametrize(
        ("prompt", "options", "words"),
        [
            pytest.param("x", {"colour": "red"}, "unknown option", id="unknown-option"),
            pytest.param("  ", {}, "prompt", id="blank-prompt"),
            pytest.param(5, {}, "prompt", id="int-prompt"),
            pytest.param("x", {"sub_models": "lora"}, "sub_models", id="str-sub-models"),
            pytest.param("x", {"model": ""}, "model_code", id="empty-model"),
        ],
    )
    def test_generation_fields_refuse(self, prompt: Any, options: Any, words: str) -> None:
        """Bad options fail as ValidationError before any request is made."""
        with pytest.raises(ValidationError, match=words):
            generation_fields(prompt, options, default_model="m")

    def test_check_options(self) -> None:
        """Known option names pass; others are refused, named."""
        check_options({"only_mask": True, "erode_size": 3}, MattingOptions)
        check_options({"width": 64}, GenerationOptions)
        with pytest.raises(ValidationError, match="box, nope"):
            check_options({"nope": 1, "box": 2}, MattingOptions)

    def test_as_coordinates(self) -> None:
        """Pairs and Coordinates become Coordinates; anything else is refused."""
        assert as_coordinates([(1, 2), [3, 4], Coordinate(5, 6)]) == [  # type: ignore[list-item]
            Coordinate(1, 2),
            Coordinate(3, 4),
            Coordinate(5, 6),
        ]
        for bad in ([(1, 2, 3)], [5], ["12"]):
            with pytest.raises(ValidationError, match="point"):
                as_coordinates(bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="x"):
            as_coordinates([(-1, 0)])


def test_doctests() -> None:
    """The examples in the module's docstrings run."""
    result = run_doctests(actions_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 20
    assert result.failed == 0


# --- strategies for valid requests -------------------------------------------------

texts = st.text(max_size=8)
images = st.text(min_size=1, max_size=8).filter(str.strip)
indexes = st.integers(0, 2)
strengths = st.floats(0, 1).map(lambda v: round(v, 2))
models = st.builds(
    Model,
    model_code=st.text(min_size=1, max_size=8).filter(str.strip),
    inference_params=st.none() | st.builds(InferenceParams, steps=st.none() | st.integers(6, 100)),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """None (not sent) or a value."""
    return st.none() | strategy


SHARED: dict[str, st.SearchStrategy[Any]] = {
    "main_model": models,
    "sub_model_list": maybe(st.lists(models, max_size=2)),
    "positive_prompts": maybe(st.lists(texts, max_size=2)),
    "negative_prompts": maybe(st.lists(texts, max_size=2)),
    "translate_prompts": maybe(st.booleans()),
    "seed": maybe(st.integers(-1, 2_147_483_647)),
    "width": maybe(st.integers(64, 2560)),
    "height": maybe(st.integers(64, 2560)),
    "batch_size": maybe(st.integers(1, 16)),
    "use_main_model_vae": maybe(st.booleans()),
}
MATTING_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "erode_size": maybe(st.integers(0, 40)),
    "foreground_threshold": maybe(st.integers(0, 255)),
    "background_threshold": maybe(st.integers(0, 255)),
    "hair_optimization": maybe(st.sampled_from(["auto", "on", "off"])),
    "only_mask": maybe(st.booleans()),
}
boxes = st.tuples(
    st.integers(0, 500), st.integers(0, 500), st.integers(1, 500), st.integers(1, 500)
).map(lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]])
points = st.builds(Coordinate, st.integers(0, 4096), st.integers(0, 4096))
three_images = st.lists(images, min_size=3, max_size=3)

SPECIFIC: dict[type[Any], dict[str, st.SearchStrategy[Any]]] = {
    GenerateImages: {
        "image_and_mask_list": st.just([IMG, IMG, IMG]),
        "image2image": maybe(st.builds(Image2Image, image_index=indexes, refer_strength=strengths)),
        "control_net_list": maybe(
            st.lists(
                st.builds(
                    ControlNet,
                    image_index=indexes,
                    mask_index=maybe(indexes),
                    invert_mask=maybe(st.booleans()),
                ),
                max_size=3,
            )
        ),
        "tileable": maybe(st.booleans()),
    },
    ModifyMaskedPixels: {
        "image_and_mask_list": three_images,
        "image2image": maybe(st.builds(Image2Image, image_index=indexes)),
        "masked": st.just(Mask()),
    },
    ApplyReferenceStyle: {
        "image_list": three_images,
        "raw_image_index": indexes,
        "style_image_index": indexes,
        "style_refer_strength": maybe(strengths),
    },
    ApplyReferencePattern: {
        "image_and_mask_list": three_images,
        "raw_image_index": indexes,
        "mask_index": indexes,
        "pattern_image_index": indexes,
        "pattern_refer_strength": maybe(strengths),
        "chaotic_mode": maybe(st.booleans()),
    },
    GeneratePatternsFromImage: {"raw_image": images, "box": boxes, "tiling": maybe(st.booleans())},
    GenerateBackgrounds: {
        "image_list": three_images,
        "transparent_foreground": st.just(Foreground()),
        "background_image2image": maybe(
            st.builds(
                Image2Image,
                image_index=indexes,
                resize_mode=maybe(st.sampled_from(["JustResize", "ResizeAndFill"])),
            )
        ),
    },
    RemoveBackground: {**MATTING_FIELDS, "raw_image": images, "box": maybe(boxes)},
    RemoveBackgroundsInBatch: {
        **MATTING_FIELDS,
        "raw_images": st.lists(images, min_size=1, max_size=3),
    },
    ExtractContents: {
        **MATTING_FIELDS,
        "raw_image": images,
        "include_point_list": st.lists(points, min_size=1, max_size=3),
        "exclude_point_list": maybe(st.lists(points, max_size=3)),
    },
    RemoveContents: {
        "raw_image": images,
        "mask": images,
        "invert_mask": maybe(st.booleans()),
        "mask_blur": maybe(st.integers(0, 64)),
    },
    ResizeImage: {"image": images, "width": st.integers(64, 4096), "height": st.integers(64, 4096)},
    RestoreFaces: {"raw_image": images, "restore_strength": maybe(strengths)},
    SwitchFace: {
        "raw_image": images,
        "new_face_image": images,
        "raw_face_index": maybe(st.integers(1, 100)),
    },
    DescribeImages: {
        "image_list": st.lists(images, min_size=1, max_size=3),
        "translate_description": maybe(st.sampled_from(DESCRIBE_LANGUAGES)),
    },
}


def requests(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Valid requests of one action."""
    fields = {**(SHARED if issubclass(cls, GenerationRequest) else {}), **SPECIFIC[cls]}
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


def test_strategies_cover_every_action() -> None:
    """The round-trip strategies know every task-creating action."""
    assert set(SPECIFIC) == set(TASK_REQUESTS)


def test_sdxl_request_and_options() -> None:
    """generate()'s request builder: image-to-image wiring, unknown options, empty prompts."""
    options = GenerateOptions(refer_strength=0.3)
    request = sdxl_request("a cat", options, image_uri="data:image/png;base64,AAAA")
    assert request.image_and_mask_list == ("data:image/png;base64,AAAA",)
    assert request.image2image == Image2Image(image_index=0, refer_strength=0.3)
    assert GenerateOptions.from_mapping({"width": 512, "image": b"x"}).width == 512
    with pytest.raises(ValidationError, match="colour"):
        GenerateOptions.from_mapping({"colour": "red"})
    with pytest.raises(ValidationError, match="prompt must be a non-empty"):
        sdxl_request("   ")
    with pytest.raises(ValidationError, match="sub_models"):
        sdxl_request("a cat", GenerateOptions(sub_models="abc"))
