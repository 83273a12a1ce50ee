"""Tests for picpik_async._models: ranges, types, cross-field rules, frozen plain data."""

from __future__ import annotations

import doctest
import json
import math
import pickle
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from doctests import run_doctests

import picpik_async
from picpik_async import _models as models_module
from picpik_async._actions import (
    GenerateImagesSDXL,
    GetCreditBalance,
    ListModels,
    ListRunningTasks,
    ListTasksDetails,
)
from picpik_async._models import (
    CreditBalance,
    Envelope,
    Image2Image,
    InferenceParams,
    ListModelsResponse,
    ListRunningTasksResponse,
    ListTasksDetailsResponse,
    Model,
    SubmitResponse,
    TaskDetail,
    TaskHandle,
    TaskStatus,
)

GENERAL = Model("PICPIK General")
UID_1 = "ckti5nf2h4keq8mr9n00"
UID_2 = "cktlm6lrh4miq8ng9nf0"
REQUEST_UUID = "b91fcfbe-bb35-47ce-a168-bd6252c75270"
IMAGE = "data:image/png;base64,AAAA"

Factory = Callable[..., object]


def sdxl(**kwargs: Any) -> GenerateImagesSDXL:
    """A GenerateImagesSDXL with the general model and the given fields."""
    return GenerateImagesSDXL(main_model=GENERAL, **kwargs)


def image2image_request(**kwargs: Any) -> GenerateImagesSDXL:
    """A GenerateImagesSDXL starting from one image, with the given Image2Image fields."""
    return sdxl(image2image=Image2Image(**kwargs), image_and_mask_list=[IMAGE])


# Every out-of-range value: (factory, field, value, the range the message must name).
OUT_OF_RANGE = [
    pytest.param(sdxl, "width", 10, "64..2560", id="width-10"),
    pytest.param(sdxl, "width", 63, "64..2560", id="width-below"),
    pytest.param(sdxl, "width", 2561, "64..2560", id="width-above"),
    pytest.param(sdxl, "height", 63, "64..2560", id="height-below"),
    pytest.param(sdxl, "height", 2561, "64..2560", id="height-above"),
    pytest.param(sdxl, "seed", -2, "-1..2147483647", id="seed-below"),
    pytest.param(sdxl, "seed", 2_147_483_648, "-1..2147483647", id="seed-above"),
    pytest.param(sdxl, "batch_size", 0, "1..16", id="batch-size-below"),
    pytest.param(sdxl, "batch_size", 17, "1..16", id="batch-size-above"),
    pytest.param(InferenceParams, "steps", 5, "6..100", id="steps-below"),
    pytest.param(InferenceParams, "steps", 101, "6..100", id="steps-above"),
    pytest.param(InferenceParams, "clip_skip", 0, "1..12", id="clip-skip-below"),
    pytest.param(InferenceParams, "clip_skip", 13, "1..12", id="clip-skip-above"),
    pytest.param(InferenceParams, "cfg_scale", 0.5, "1..30", id="cfg-scale-below"),
    pytest.param(InferenceParams, "cfg_scale", 30.5, "1..30", id="cfg-scale-above"),
    pytest.param(InferenceParams, "cfg_scale", math.inf, "1..30", id="cfg-scale-inf"),
    pytest.param(InferenceParams, "cfg_scale", math.nan, "1..30", id="cfg-scale-nan"),
    pytest.param(InferenceParams, "lora_weight", -1.5, "-1..2", id="lora-weight-below"),
    pytest.param(InferenceParams, "lora_weight", 2.5, "-1..2", id="lora-weight-above"),
    pytest.param(InferenceParams, "lora_weight", -math.inf, "-1..2", id="lora-weight-inf"),
    pytest.param(Image2Image, "refer_strength", -0.5, "0..1", id="refer-strength-below"),
    pytest.param(Image2Image, "refer_strength", 1.5, "0..1", id="refer-strength-above"),
    pytest.param(Image2Image, "image_index", -1, "0..2147483647", id="image-index-negative"),
]

BOUNDARIES = [
    pytest.param(sdxl, "seed", -1, id="seed-min"),
    pytest.param(sdxl, "seed", 2_147_483_647, id="seed-max"),
    pytest.param(sdxl, "width", 64, id="width-min"),
    pytest.param(sdxl, "width", 2560, id="width-max"),
    pytest.param(sdxl, "height", 64, id="height-min"),
    pytest.param(sdxl, "height", 2560, id="height-max"),
    pytest.param(sdxl, "batch_size", 1, id="batch-size-min"),
    pytest.param(sdxl, "batch_size", 16, id="batch-size-max"),
    pytest.param(Image2Image, "refer_strength", 0.0, id="refer-strength-min"),
    pytest.param(Image2Image, "refer_strength", 1.0, id="refer-strength-max"),
    pytest.param(InferenceParams, "lora_weight", -1.0, id="lora-weight-min"),
    pytest.param(InferenceParams, "lora_weight", 2.0, id="lora-weight-max"),
    pytest.param(InferenceParams, "steps", 6, id="steps-min"),
    pytest.param(InferenceParams, "steps", 100, id="steps-max"),
    pytest.param(InferenceParams, "clip_skip", 1, id="clip-skip-min"),
    pytest.param(InferenceParams, "clip_skip", 12, id="clip-skip-max"),
    pytest.param(InferenceParams, "cfg_scale", 1.0, id="cfg-scale-min"),
    pytest.param(InferenceParams, "cfg_scale", 30.0, id="cfg-scale-max"),
]

# Values of the wrong type: (factory, keyword arguments, the field the message must name).
WRONG_TYPES = [
    pytest.param(sdxl, {"seed": True}, "seed", id="bool-for-seed"),
    pytest.param(sdxl, {"width": False}, "width", id="bool-for-width"),
    pytest.param(sdxl, {"batch_size": True}, "batch_size", id="bool-for-batch-size"),
    pytest.param(sdxl, {"width": 512.0}, "width", id="float-for-width"),
    pytest.param(sdxl, {"height": "512"}, "height", id="str-for-height"),
    pytest.param(InferenceParams, {"steps": True}, "steps", id="bool-for-steps"),
    pytest.param(InferenceParams, {"clip_skip": False}, "clip_skip", id="bool-for-clip-skip"),
    pytest.param(InferenceParams, {"cfg_scale": True}, "cfg_scale", id="bool-for-cfg-scale"),
    pytest.param(InferenceParams, {"lora_weight": True}, "lora_weight", id="bool-for-lora"),
    pytest.param(InferenceParams, {"lora_weight": "1"}, "lora_weight", id="str-for-lora"),
    pytest.param(InferenceParams, {"cfg_scale": "7.5"}, "cfg_scale", id="str-for-cfg-scale"),
    pytest.param(InferenceParams, {"sampler": 5}, "sampler", id="int-for-sampler"),
    pytest.param(Image2Image, {"image_index": True}, "image_index", id="bool-for-image-index"),
    pytest.param(Image2Image, {"refer_strength": False}, "refer_strength", id="bool-strength"),
    pytest.param(Image2Image, {"resize_mode": "Stretch"}, "resize_mode", id="unknown-resize"),
    pytest.param(sdxl, {"positive_prompts": "a cat"}, "positive_prompts", id="str-for-prompts"),
    pytest.param(sdxl, {"negative_prompts": "blur"}, "negative_prompts", id="str-for-negative"),
    pytest.param(sdxl, {"image_and_mask_list": IMAGE}, "image_and_mask_list", id="str-images"),
    pytest.param(sdxl, {"positive_prompts": [1]}, "positive_prompts", id="int-in-prompts"),
    pytest.param(sdxl, {"image_and_mask_list": [""]}, "image_and_mask_list", id="empty-image"),
    pytest.param(sdxl, {"sub_model_list": ["PICPIK General"]}, "sub_model_list", id="str-lora"),
    pytest.param(sdxl, {"sub_model_list": [{"ModelCode": "x"}]}, "sub_model_list", id="dict-lora"),
    pytest.param(sdxl, {"sub_model_list": GENERAL}, "sub_model_list", id="model-not-list"),
    pytest.param(sdxl, {"translate_prompts": "yes"}, "translate_prompts", id="str-for-bool"),
    pytest.param(sdxl, {"tiling": 1}, "tiling", id="int-for-bool"),
    pytest.param(sdxl, {"image2image": {"ImageIndex": 0}}, "image2image", id="dict-image2image"),
    pytest.param(
        GenerateImagesSDXL, {"main_model": "PICPIK General"}, "main_model", id="str-model"
    ),
    pytest.param(Model, {"model_code": 5}, "model_code", id="int-for-model-code"),
    pytest.param(Model, {"model_code": "  "}, "model_code", id="blank-model-code"),
    pytest.param(Model, {"model_code": "m", "name": 5}, "name", id="int-for-name"),
    pytest.param(Model, {"model_code": "m", "is_official": "true"}, "is_official", id="str-bool"),
    pytest.param(
        Model,
        {"model_code": "m", "trigger_word_list": "w"},
        "trigger_word_list",
        id="str-for-trigger-words",
    ),
    pytest.param(
        Model,
        {"model_code": "m", "trigger_word_list": [7]},
        "trigger_word_list",
        id="int-in-trigger-words",
    ),
    pytest.param(
        Model,
        {"model_code": "m", "inference_params": {"Steps": 10}},
        "inference_params",
        id="dict-for-inference-params",
    ),
    pytest.param(ListTasksDetails, {"task_uid_list": UID_1}, "task_uid_list", id="str-for-uids"),
    pytest.param(ListTasksDetails, {"task_uid_list": [1]}, "task_uid_list", id="int-for-uid"),
    pytest.param(ListTasksDetails, {"task_uid_list": [""]}, "task_uid_list", id="empty-uid"),
]


class TestRanges:
    """Every documented range is checked on creation (docs/protocol.md, "Request values")."""

    def test_width_10_is_refused(self) -> None:
        """The documented example: a width of 10 raises ValidationError, a ValueError too."""
        with pytest.raises(picpik_async.ValidationError) as caught:
            GenerateImagesSDXL(main_model=Model("PICPIK General"), width=10)
        assert isinstance(caught.value, ValueError)
        assert str(caught.value) == (
            "GenerateImagesSDXL.width must be an integer in 64..2560, got 10"
        )

    @pytest.mark.parametrize(("make", "name", "value", "allowed"), OUT_OF_RANGE)
    def test_out_of_range_is_refused(
        self, make: Factory, name: str, value: object, allowed: str
    ) -> None:
        """An out-of-range value raises ValidationError naming the field, value and range."""
        with pytest.raises(ValueError, match="must be") as caught:
            make(**{name: value})
        assert isinstance(caught.value, picpik_async.ValidationError)
        message = str(caught.value)
        assert f".{name} " in message
        assert repr(value) in message
        assert allowed in message

    @pytest.mark.parametrize(("make", "name", "value"), BOUNDARIES)
    def test_boundaries_are_accepted(self, make: Factory, name: str, value: object) -> None:
        """Both ends of every range are valid values and are kept as given."""
        assert getattr(make(**{name: value}), name) == value

    @pytest.mark.parametrize(
        ("value", "kept"),
        [
            pytest.param(0.123456, 0.12, id="down"),
            pytest.param(0.876, 0.88, id="up"),
            pytest.param(2.004, 2.0, id="rounds-into-range"),
            pytest.param(-1.004, -1.0, id="rounds-into-range-low"),
            pytest.param(1, 1.0, id="int"),
        ],
    )
    def test_lora_weight_is_rounded_to_the_step(self, value: float, kept: float) -> None:
        """LoraWeight is rounded to its documented 0.01 step before the range check."""
        weight = InferenceParams(lora_weight=value).lora_weight
        assert weight == kept
        assert type(weight) is float

    @pytest.mark.parametrize(
        ("value", "kept"),
        [
            pytest.param(0.354, 0.35, id="down"),
            pytest.param(0.355001, 0.36, id="up"),
            pytest.param(1.004, 1.0, id="rounds-into-range"),
            pytest.param(1, 1.0, id="int"),
            pytest.param(0, 0.0, id="zero-int"),
        ],
    )
    def test_refer_strength_is_rounded_to_the_step(self, value: float, kept: float) -> None:
        """ReferStrength is rounded to the 0.01 step; ints become floats."""
        strength = Image2Image(refer_strength=value).refer_strength
        assert strength == kept
        assert type(strength) is float

    def test_rounding_past_the_range_is_refused(self) -> None:
        """A value that rounds to just outside the range is refused with the rounded value."""
        with pytest.raises(picpik_async.ValidationError, match=r"got 2\.01"):
            InferenceParams(lora_weight=2.006)

    def test_cfg_scale_takes_ints_as_floats(self) -> None:
        """An int CFGScale is stored as a float, so it is sent as a JSON number."""
        cfg = InferenceParams(cfg_scale=7).cfg_scale
        assert cfg == 7.0
        assert type(cfg) is float

    def test_cfg_scale_is_kept_exact(self) -> None:
        """CFGScale has no documented step, so it is kept as given."""
        assert InferenceParams(cfg_scale=7.555).cfg_scale == 7.555

    @pytest.mark.parametrize(
        "mode",
        [
            pytest.param("JustResize", id="just-resize"),
            pytest.param("CropAndResize", id="crop-and-resize"),
            pytest.param("ResizeAndFill", id="resize-and-fill"),
            pytest.param(None, id="unset"),
        ],
    )
    def test_resize_modes_are_accepted(self, mode: str | None) -> None:
        """The three documented resize modes, and leaving it unset, are valid."""
        assert Image2Image(resize_mode=mode).resize_mode == mode


class TestTypes:
    """Values of the wrong type are refused, never coerced."""

    @pytest.mark.parametrize(("make", "kwargs", "name"), WRONG_TYPES)
    def test_wrong_type_is_refused(self, make: Factory, kwargs: dict[str, Any], name: str) -> None:
        """A value of the wrong type raises ValidationError naming the field."""
        with pytest.raises(picpik_async.ValidationError) as caught:
            make(**kwargs)
        assert f".{name} " in str(caught.value)

    def test_string_prompt_is_not_split_into_characters(self) -> None:
        """A bare string for a list field is refused rather than split into characters."""
        with pytest.raises(picpik_async.ValidationError, match="list of str") as caught:
            sdxl(positive_prompts="abc")
        assert "('a', 'b', 'c')" not in str(caught.value)

    def test_lists_become_tuples(self) -> None:
        """List fields accept lists and tuples and store tuples (hashable, frozen)."""
        request = sdxl(
            positive_prompts=["a cat"],
            negative_prompts=("blur",),
            sub_model_list=[Model("lora", trigger_word_list=["watercolor"])],
        )
        assert request.positive_prompts == ("a cat",)
        assert request.negative_prompts == ("blur",)
        assert request.sub_model_list[0].trigger_word_list == ("watercolor",)
        same = sdxl(
            positive_prompts=("a cat",),
            negative_prompts=["blur"],
            sub_model_list=(Model("lora", trigger_word_list=("watercolor",)),),
        )
        assert request == same
        assert hash(request) == hash(same)

    def test_optional_fields_default_to_none(self) -> None:
        """Unset optional fields are None, so they are not sent."""
        assert InferenceParams() == InferenceParams(
            steps=None, sampler=None, clip_skip=None, cfg_scale=None, lora_weight=None
        )
        model = Model("m")
        assert (model.name, model.is_official, model.trigger_word_list) == (None, None, None)
        assert model.inference_params is None

    def test_full_model_is_accepted(self) -> None:
        """A Model with every field set, as ListModels returns it, is valid."""
        params = InferenceParams(steps=20, sampler="Euler a", clip_skip=2, cfg_scale=7.5)
        model = Model(
            "lora_watercolor",
            name="Watercolor",
            is_official=True,
            trigger_word_list=["watercolor"],
            inference_params=params,
        )
        assert model.inference_params == params
        assert model.is_official is True

    def test_request_defaults(self) -> None:
        """GenerateImagesSDXL defaults are documented (docs/protocol.md, "Request values")."""
        request = sdxl()
        assert (request.width, request.height, request.batch_size, request.seed) == (
            1024,
            1024,
            1,
            -1,
        )
        assert request.translate_prompts is True
        assert request.tiling is False
        assert request.image2image is None
        assert request.image_and_mask_list == ()
        assert request.sub_model_list == ()
        assert request.positive_prompts == request.negative_prompts == ()


class TestImage2Image:
    """`Image2Image.image_index` must point into `image_and_mask_list` (cross-field rule)."""

    @pytest.mark.parametrize(
        ("index", "images"),
        [
            pytest.param(0, [IMAGE], id="first-of-one"),
            pytest.param(1, [IMAGE, IMAGE], id="last-of-two"),
            pytest.param(0, [IMAGE, IMAGE, IMAGE], id="first-of-three"),
        ],
    )
    def test_index_inside_the_list_is_accepted(self, index: int, images: list[str]) -> None:
        """An image_index that names an image of the list is valid."""
        request = sdxl(image2image=Image2Image(image_index=index), image_and_mask_list=images)
        assert request.image2image == Image2Image(image_index=index)

    @pytest.mark.parametrize(
        ("index", "images"),
        [
            pytest.param(0, [], id="no-images"),
            pytest.param(1, [IMAGE], id="one-past-the-end"),
            pytest.param(5, [IMAGE, IMAGE], id="far-past-the-end"),
        ],
    )
    def test_index_outside_the_list_is_refused(self, index: int, images: list[str]) -> None:
        """An image_index past the end of image_and_mask_list raises ValidationError."""
        with pytest.raises(picpik_async.ValidationError) as caught:
            sdxl(image2image=Image2Image(image_index=index), image_and_mask_list=images)
        message = str(caught.value)
        assert "image2image.image_index" in message
        assert f"got {index}" in message
        assert f"has {len(images)} item(s)" in message

    def test_images_without_image2image_are_accepted(self) -> None:
        """Images may be sent without Image2Image; the rule applies only when it is set."""
        assert sdxl(image_and_mask_list=[IMAGE]).image_and_mask_list == (IMAGE,)

    def test_image2image_defaults(self) -> None:
        """Image2Image starts from the first image at half strength."""
        assert image2image_request().image2image == Image2Image(
            image_index=0, refer_strength=0.5, resize_mode=None
        )


class TestListTasksDetails:
    """ListTasksDetails needs at least one non-empty TaskUID."""

    def test_empty_list_is_refused(self) -> None:
        """An empty TaskUIDList raises ValidationError."""
        with pytest.raises(picpik_async.ValidationError, match="at least one TaskUID"):
            ListTasksDetails([])

    @pytest.mark.parametrize(
        "uids",
        [
            pytest.param([UID_1], id="one"),
            pytest.param([UID_1, UID_2], id="two"),
            pytest.param((UID_1,), id="tuple"),
        ],
    )
    def test_uids_are_kept_in_order(self, uids: list[str]) -> None:
        """The UIDs are stored as a tuple, in the order given."""
        assert ListTasksDetails(uids).task_uid_list == tuple(uids)


class TestRequestTypes:
    """Each request names its Action, its answer type and whether it creates a task."""

    @pytest.mark.parametrize(
        ("request_", "action", "response_type", "creates_task"),
        [
            pytest.param(sdxl(), "GenerateImagesSDXL", SubmitResponse, True, id="sdxl"),
            pytest.param(
                ListTasksDetails([UID_1]),
                "ListTasksDetails",
                ListTasksDetailsResponse,
                False,
                id="list-tasks-details",
            ),
            pytest.param(ListModels(), "ListModels", ListModelsResponse, False, id="list-models"),
            pytest.param(
                ListRunningTasks(),
                "ListRunningTasks",
                ListRunningTasksResponse,
                False,
                id="list-running-tasks",
            ),
            pytest.param(
                GetCreditBalance(), "GetCreditBalance", CreditBalance, False, id="credit-balance"
            ),
        ],
    )
    def test_request_metadata(
        self,
        request_: picpik_async.Request[Any],
        action: str,
        response_type: type[Any],
        creates_task: bool,
    ) -> None:
        """Action, response type and creates_task are class-level facts of the request."""
        assert request_.action == action
        assert request_.response_type is response_type
        assert request_.creates_task is creates_task
        assert "action" not in attrs.fields_dict(type(request_))


class TestResponses:
    """Answer models: plain containers with a few computed conveniences."""

    @pytest.mark.parametrize(
        ("total", "used", "remaining"),
        [
            pytest.param(300, 20, 280, id="some-used"),
            pytest.param(804000, 4641, 799359, id="documented-example"),
            pytest.param(300, 0, 300, id="none-used"),
            pytest.param(300, 300, 0, id="all-used"),
        ],
    )
    def test_credit_balance_remaining(self, total: int, used: int, remaining: int) -> None:
        """CreditBalance.remaining is total minus used."""
        balance = CreditBalance(total_credits=total, used_credits=used)
        assert balance.remaining == remaining
        assert balance.expire_timestamp is None

    def test_task_detail_defaults(self) -> None:
        """A TaskDetail needs only its UID and status; the rest defaults to 'nothing'."""
        detail = TaskDetail(task_uid=UID_1, status="Running")
        assert detail == TaskDetail(
            task_uid=UID_1,
            status="Running",
            action="",
            img_list=(),
            seed=None,
            txt_list=(),
            consume_api_point=None,
            error_code=0,
            error_message="",
        )

    def test_envelope_defaults(self) -> None:
        """An Envelope needs only its RetCode."""
        assert Envelope(ret_code=0) == Envelope(
            ret_code=0, action="", message="", request_uuid=None
        )

    def test_list_models_response_defaults(self) -> None:
        """Only MainModels is required; the other model maps default to empty."""
        response = ListModelsResponse(main_models={"General": GENERAL})
        assert response.lora_models == response.embedding_models == {}
        assert response.hypernetwork_models == {}

    @pytest.mark.parametrize(
        ("status", "value"),
        [
            pytest.param(TaskStatus.PENDING, "pending", id="pending"),
            pytest.param(TaskStatus.SUCCEEDED, "succeeded", id="succeeded"),
            pytest.param(TaskStatus.FAILED, "failed", id="failed"),
        ],
    )
    def test_task_status_values(self, status: TaskStatus, value: str) -> None:
        """TaskStatus has exactly the three interpretations a waiter needs."""
        assert TaskStatus(value) is status
        assert len(TaskStatus) == 3


FROZEN = [
    pytest.param(sdxl(), "width", 512, id="generate-images-sdxl"),
    pytest.param(GENERAL, "model_code", "other", id="model"),
    pytest.param(InferenceParams(), "steps", 10, id="inference-params"),
    pytest.param(Image2Image(), "refer_strength", 0.1, id="image2image"),
    pytest.param(ListTasksDetails([UID_1]), "task_uid_list", (), id="list-tasks-details"),
    pytest.param(TaskDetail(task_uid=UID_1, status="Running"), "status", "Done", id="task-detail"),
    pytest.param(CreditBalance(total_credits=1, used_credits=0), "used_credits", 1, id="credits"),
    pytest.param(TaskHandle(UID_1, REQUEST_UUID), "task_uid", UID_2, id="task-handle"),
    pytest.param(Envelope(ret_code=0), "ret_code", 1, id="envelope"),
    pytest.param(SubmitResponse(UID_1), "task_uid", UID_2, id="submit-response"),
]


class TestFrozen:
    """Models are immutable values."""

    @pytest.mark.parametrize(("instance", "name", "value"), FROZEN)
    def test_assignment_raises(self, instance: object, name: str, value: object) -> None:
        """Assigning to a field raises attrs' FrozenInstanceError and changes nothing."""
        before = getattr(instance, name)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(instance, name, value)
        assert getattr(instance, name) == before

    def test_evolve_validates(self) -> None:
        """A changed copy is made with attrs.evolve, and is validated like a new one."""
        request = sdxl()
        assert attrs.evolve(request, width=512).width == 512
        with pytest.raises(picpik_async.ValidationError):
            attrs.evolve(request, width=5000)


class TestTaskHandle:
    """A TaskHandle is plain data: one process can submit and another wait."""

    handle = TaskHandle(UID_1, REQUEST_UUID)

    def test_fields(self) -> None:
        """It holds exactly the TaskUID and the request_uuid, as strings."""
        assert attrs.asdict(self.handle) == {"task_uid": UID_1, "request_uuid": REQUEST_UUID}

    def test_json_round_trip(self) -> None:
        """It survives a trip through JSON as a plain dict."""
        text = json.dumps(attrs.asdict(self.handle))
        assert TaskHandle(**json.loads(text)) == self.handle

    def test_pickle_round_trip(self) -> None:
        """It can be pickled, e.g. to hand it to another process."""
        assert pickle.loads(pickle.dumps(self.handle)) == self.handle  # noqa: S301 - our own bytes

    def test_value_semantics(self) -> None:
        """Equal handles compare and hash equal, so they can key a dict."""
        copy = TaskHandle(task_uid=UID_1, request_uuid=REQUEST_UUID)
        assert copy == self.handle
        assert {copy: 1}[self.handle] == 1
        assert TaskHandle(UID_2, REQUEST_UUID) != self.handle


def test_docstring_examples() -> None:
    """The examples in the module's docstrings run and give the answers shown."""
    result = run_doctests(models_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5
    assert result.failed == 0
