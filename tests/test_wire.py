"""Tests for picpik_async._wire: renames, aliases, strict types, and round trips."""

from __future__ import annotations

import contextlib
import doctest
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picpik_async import _wire as wire_module
from picpik_async._actions import (
    GenerateImagesSDXL,
    GetCreditBalance,
    ListModels,
    ListRunningTasks,
    ListTasksDetails,
)
from picpik_async._errors import (
    APIError,
    ProtocolError,
    SubmitOutcomeUnknownError,
    ValidationError,
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
    Request,
    SubmitResponse,
    TaskDetail,
)
from picpik_async._protocol import parse_response
from picpik_async._signing import drop_none
from picpik_async._wire import structure, unstructure, wire_name

UID = "cktlm6lrh4miq8ng9nf0"
REQUEST_UUID = "ebe3bd1a-2fb6-4a85-a1bd-a5d556bf0f50"


class TestRenames:
    """Irregular wire names are explicit renames (house style 2); the rest is PascalCase."""

    @pytest.mark.parametrize(
        ("attribute", "wire"),
        [
            pytest.param("cfg_scale", "CFGScale", id="cfg-scale"),
            pytest.param("task_uid", "TaskUID", id="task-uid"),
            pytest.param("task_uid_list", "TaskUIDList", id="task-uid-list"),
            pytest.param("request_uuid", "request_uuid", id="request-uuid"),
            pytest.param("image2image", "Image2Image", id="image2image"),
            pytest.param("error_message", "ErrorMassage", id="error-massage-sic"),
            pytest.param("batch_size", "BatchSize", id="plain-pascal-case"),
            pytest.param("image_and_mask_list", "ImageAndMaskList", id="image-and-mask-list"),
            pytest.param("ret_code", "RetCode", id="ret-code"),
            pytest.param("consume_api_point", "ConsumeApiPoint", id="consume-api-point"),
            pytest.param("seed", "Seed", id="one-word"),
        ],
    )
    def test_wire_name(self, attribute: str, wire: str) -> None:
        """Each attribute has the wire name the docs use."""
        assert wire_name(attribute) == wire

    @pytest.mark.parametrize(
        ("obj", "wire"),
        [
            pytest.param(
                InferenceParams(cfg_scale=7.5, lora_weight=0.8),
                {
                    "Steps": None,
                    "Sampler": None,
                    "ClipSkip": None,
                    "CFGScale": 7.5,
                    "LoraWeight": 0.8,
                },
                id="inference-params",
            ),
            pytest.param(SubmitResponse(UID), {"TaskUID": UID}, id="submit-response"),
            pytest.param(ListTasksDetails([UID]), {"TaskUIDList": [UID]}, id="list-tasks-details"),
            pytest.param(
                ListRunningTasksResponse((UID,)), {"TaskUIDList": [UID]}, id="running-tasks"
            ),
            pytest.param(
                Envelope(ret_code=0, request_uuid=REQUEST_UUID),
                {"RetCode": 0, "Action": "", "Message": "", "request_uuid": REQUEST_UUID},
                id="envelope",
            ),
            pytest.param(
                TaskDetail(task_uid=UID, status="Error", error_code=5, error_message="boom"),
                {
                    "TaskUID": UID,
                    "Status": "Error",
                    "Action": "",
                    "ImgList": [],
                    "Seed": None,
                    "TxtList": [],
                    "ConsumeApiPoint": None,
                    "ErrorCode": 5,
                    "ErrorMassage": "boom",
                },
                id="task-detail",
            ),
            pytest.param(
                Image2Image(image_index=1, refer_strength=0.35, resize_mode="JustResize"),
                {"ImageIndex": 1, "ReferStrength": 0.35, "ResizeMode": "JustResize"},
                id="image2image",
            ),
            pytest.param(
                CreditBalance(total_credits=804000, used_credits=4641, expire_timestamp=17),
                {"TotalCredits": 804000, "UsedCredits": 4641, "ExpireTimestamp": 17},
                id="credit-balance",
            ),
        ],
    )
    def test_round_trip(self, obj: object, wire: dict[str, Any]) -> None:
        """The model becomes exactly this wire form, and the wire form becomes the model."""
        assert unstructure(obj) == wire
        assert structure(wire, type(obj)) == obj

    def test_request_wire_form(self) -> None:
        """A full SDXL request uses the documented names, Image2Image included."""
        request = GenerateImagesSDXL(
            main_model=Model("PICPIK General", inference_params=InferenceParams(cfg_scale=7)),
            sub_model_list=[Model("lora", inference_params=InferenceParams(lora_weight=0.8))],
            positive_prompts=["a red apple"],
            image2image=Image2Image(),
            image_and_mask_list=["data:image/png;base64,AAAA"],
        )
        wire = drop_none(unstructure(request))
        assert wire == {
            "MainModel": {"ModelCode": "PICPIK General", "InferenceParams": {"CFGScale": 7.0}},
            "SubModelList": [{"ModelCode": "lora", "InferenceParams": {"LoraWeight": 0.8}}],
            "PositivePrompts": ["a red apple"],
            "NegativePrompts": [],
            "TranslatePrompts": True,
            "Seed": -1,
            "Width": 1024,
            "Height": 1024,
            "BatchSize": 1,
            "Image2Image": {"ImageIndex": 0, "ReferStrength": 0.5},
            "Tiling": False,
            "ImageAndMaskList": ["data:image/png;base64,AAAA"],
        }
        assert structure(wire, GenerateImagesSDXL) == request

    def test_user_dict_keys_are_not_renamed(self) -> None:
        """Keys of a model map (user data) are kept as they are; only attrs fields are renamed."""
        response = ListModelsResponse(main_models={"picpik_general": Model("m")})
        assert list(unstructure(response)["MainModels"]) == ["picpik_general"]


class TestErrorMessageSpellings:
    """TaskDetail reads ErrorMassage (sic), ErrorMessage, and the legacy field names."""

    base: dict[str, Any] = {"TaskUID": UID, "Status": "Error"}  # noqa: RUF012 - read only

    @pytest.mark.parametrize(
        "field",
        [
            pytest.param("ErrorMassage", id="documented-misspelling"),
            pytest.param("ErrorMessage", id="correct-spelling"),
            pytest.param("TaskErrorMsg", id="legacy"),
        ],
    )
    def test_each_spelling_is_read(self, field: str) -> None:
        """Each spelling fills error_message."""
        detail = structure({**self.base, field: "boom"}, TaskDetail)
        assert detail.error_message == "boom"

    def test_documented_spelling_wins(self) -> None:
        """When both spellings are sent, the documented ErrorMassage is used."""
        data = {**self.base, "ErrorMessage": "alias", "ErrorMassage": "canonical"}
        assert structure(data, TaskDetail).error_message == "canonical"

    def test_null_documented_spelling_falls_back(self) -> None:
        """A null ErrorMassage counts as absent, so ErrorMessage is used."""
        data = {**self.base, "ErrorMassage": None, "ErrorMessage": "alias"}
        assert structure(data, TaskDetail).error_message == "alias"

    def test_written_with_documented_spelling(self) -> None:
        """On the way out only the documented ErrorMassage is written."""
        wire = unstructure(TaskDetail(task_uid=UID, status="Error", error_message="boom"))
        assert wire["ErrorMassage"] == "boom"
        assert "ErrorMessage" not in wire

    def test_legacy_task_detail(self) -> None:
        """A legacy TaskDetail (docs/protocol.md, "Status words") reads into the current model."""
        legacy = {
            "TaskUid": UID,
            "TaskType": "TaskGeneratePicture",
            "TaskStatus": "Finished",
            "FinalPictureUrls": ["https://example.invalid/1.png"],
            "TaskErrorMsg": "",
            "TaskErrorCode": 0,
        }
        assert structure(legacy, TaskDetail) == TaskDetail(
            task_uid=UID,
            status="Finished",
            action="TaskGeneratePicture",
            img_list=("https://example.invalid/1.png",),
        )

    @pytest.mark.parametrize(
        ("alias", "canonical", "attribute", "old", "new"),
        [
            pytest.param("TaskUid", "TaskUID", "task_uid", "old", "new", id="task-uid"),
            pytest.param("TaskStatus", "Status", "status", "Queuing", "Running", id="status"),
            pytest.param(
                "FinalPictureUrls", "ImgList", "img_list", ["o"], ["n"], id="final-picture-urls"
            ),
            pytest.param("TaskErrorCode", "ErrorCode", "error_code", 1, 2, id="error-code"),
            pytest.param("TaskType", "Action", "action", "Old", "New", id="action"),
        ],
    )
    def test_current_name_wins(
        self, alias: str, canonical: str, attribute: str, old: object, new: object
    ) -> None:
        """When a legacy and a current name are both sent, the current one is used."""
        data = {"TaskUID": UID, "Status": "Running", alias: old, canonical: new}
        value = getattr(structure(data, TaskDetail), attribute)
        assert value == (tuple(new) if isinstance(new, list) else new)


class TestForwardCompatibility:
    """Unknown answer fields are ignored; optional ones may be null or absent."""

    def test_unknown_fields_are_ignored(self) -> None:
        """New fields at any level do not break reading an answer."""
        data = {
            "RetCode": 0,
            "NewTopLevel": {"x": [1, 2]},
            "TaskDetailList": [{"TaskUID": UID, "Status": "Running", "Progress": 0.5}],
        }
        response = structure(data, ListTasksDetailsResponse)
        assert response == ListTasksDetailsResponse((TaskDetail(task_uid=UID, status="Running"),))

    def test_null_optional_fields_take_defaults(self) -> None:
        """A null optional field reads like an absent one."""
        data = {
            "TaskUID": UID,
            "Status": "Running",
            "Action": None,
            "ImgList": None,
            "Seed": None,
            "ErrorCode": None,
            "ErrorMassage": None,
        }
        assert structure(data, TaskDetail) == TaskDetail(task_uid=UID, status="Running")

    def test_ints_are_read_as_floats(self) -> None:
        """A JSON integer is a valid value for a float field."""
        params = structure({"CFGScale": 7, "LoraWeight": 1}, InferenceParams)
        assert (params.cfg_scale, params.lora_weight) == (7.0, 1.0)
        assert type(params.cfg_scale) is float


BAD_ANSWERS = [
    pytest.param({"UsedCredits": 1}, CreditBalance, "total_credits", id="missing-required"),
    pytest.param({}, Envelope, "ret_code", id="missing-ret-code"),
    pytest.param({"Status": "Running"}, TaskDetail, "task_uid", id="missing-task-uid"),
    pytest.param({"TaskUID": None}, SubmitResponse, "task_uid", id="null-task-uid"),
    pytest.param({"RetCode": None}, Envelope, "ret_code", id="null-ret-code"),
    pytest.param(
        {"TaskDetailList": None}, ListTasksDetailsResponse, "task_detail_list", id="null-list"
    ),
    pytest.param(
        {"TotalCredits": "10", "UsedCredits": 1}, CreditBalance, "total_credits", id="str-for-int"
    ),
    pytest.param({"TaskUID": 12345}, SubmitResponse, "task_uid", id="int-for-str"),
    pytest.param({"RetCode": True}, Envelope, "ret_code", id="bool-for-int"),
    pytest.param(
        {"TaskUID": UID, "Status": "Done", "ErrorCode": False},
        TaskDetail,
        "error_code",
        id="bool-for-error-code",
    ),
    pytest.param(
        {"TaskUID": UID, "Status": "Done", "Seed": 1.5}, TaskDetail, "seed", id="float-for-int"
    ),
    pytest.param(
        {"TaskUID": UID, "Status": "Done", "ImgList": "https://x/1.png"},
        TaskDetail,
        "img_list",
        id="str-for-list",
    ),
    pytest.param(
        {"TaskUIDList": {"0": UID}}, ListRunningTasksResponse, "task_uid_list", id="dict-for-list"
    ),
    pytest.param(
        {"TaskDetailList": [[UID, "Running"]]},
        ListTasksDetailsResponse,
        "task_detail_list",
        id="list-for-object",
    ),
    pytest.param({"MainModels": []}, ListModelsResponse, "main_models", id="list-for-map"),
    pytest.param(
        {"MainModels": {"General": "PICPIK General"}},
        ListModelsResponse,
        "main_models",
        id="str-for-model",
    ),
    pytest.param(
        {"MainModels": {"General": {"ModelCode": "m", "IsOfficial": 1}}},
        ListModelsResponse,
        "is_official",
        id="int-for-bool",
    ),
    pytest.param({"CFGScale": "7.5"}, InferenceParams, "cfg_scale", id="str-for-float"),
    pytest.param({"CFGScale": 10**400}, InferenceParams, "cfg_scale", id="int-too-big-for-float"),
    pytest.param({"CFGScale": True}, InferenceParams, "cfg_scale", id="bool-for-float"),
    pytest.param({"Sampler": {}}, InferenceParams, "sampler", id="object-for-str"),
]


class TestBadAnswers:
    """Answers that do not fit the contract raise ProtocolError, never KeyError or TypeError."""

    @pytest.mark.parametrize(("data", "cls", "where"), BAD_ANSWERS)
    def test_protocol_error(self, data: object, cls: type[Any], where: str) -> None:
        """The error names the type being read and the offending field."""
        with pytest.raises(ProtocolError) as caught:
            structure(data, cls)
        message = str(caught.value)
        assert message.startswith(f"answer does not fit {cls.__name__}: ")
        assert where in message
        assert caught.value.__cause__ is not None

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param([], id="list"),
            pytest.param("RetCode", id="str"),
            pytest.param(0, id="int"),
            pytest.param(None, id="null"),
            pytest.param(True, id="bool"),
        ],
    )
    @pytest.mark.parametrize(
        "cls", [pytest.param(c, id=c.__name__) for c in (Envelope, TaskDetail, CreditBalance)]
    )
    def test_not_an_object(self, data: object, cls: type[Any]) -> None:
        """A JSON value that is not an object cannot be any model."""
        with pytest.raises(ProtocolError, match=f"answer does not fit {cls.__name__}"):
            structure(data, cls)


class TestValidate:
    """Answers are not range-checked by default; `validate=True` checks them like requests."""

    @pytest.mark.parametrize(
        ("data", "cls", "attribute"),
        [
            pytest.param({"Steps": 500}, InferenceParams, "steps", id="steps"),
            pytest.param({"CFGScale": 99}, InferenceParams, "cfg_scale", id="cfg-scale"),
            pytest.param({"ReferStrength": 3}, Image2Image, "refer_strength", id="refer-strength"),
            pytest.param({"ModelCode": ""}, Model, "model_code", id="empty-model-code"),
            pytest.param(
                {"MainModel": {"ModelCode": "m"}, "Width": 10}, GenerateImagesSDXL, "width", id="w"
            ),
            pytest.param(
                {"MainModel": {"ModelCode": "m"}, "BatchSize": 64},
                GenerateImagesSDXL,
                "batch_size",
                id="batch-size",
            ),
            pytest.param(
                {"MainModel": {"ModelCode": "m", "InferenceParams": {"ClipSkip": 99}}},
                GenerateImagesSDXL,
                "clip_skip",
                id="nested",
            ),
            pytest.param(
                {"MainModel": {"ModelCode": "m"}, "SubModelList": [{"ModelCode": " "}]},
                GenerateImagesSDXL,
                "model_code",
                id="in-a-list",
            ),
        ],
    )
    def test_out_of_range(self, data: dict[str, Any], cls: type[Any], attribute: str) -> None:
        """Default structure keeps an out-of-range value; validate=True refuses it."""
        structure(data, cls)
        with pytest.raises(ValidationError, match=f".{attribute} must be"):
            structure(data, cls, validate=True)

    def test_kept_value(self) -> None:
        """The out-of-range value read from an answer is kept as it was sent."""
        assert structure({"Steps": 500}, InferenceParams).steps == 500

    def test_validation_error_found_among_type_errors(self) -> None:
        """A range error next to a type error still surfaces as ValidationError."""
        data = {"MainModel": 5, "SubModelList": [{"ModelCode": ""}]}
        with pytest.raises(ValidationError, match="model_code"):
            structure(data, GenerateImagesSDXL, validate=True)

    def test_type_errors_stay_protocol_errors(self) -> None:
        """With validate=True, type errors alone are still ProtocolError."""
        data = {"MainModel": 5, "Width": "wide"}
        with pytest.raises(ProtocolError, match="GenerateImagesSDXL"):
            structure(data, GenerateImagesSDXL, validate=True)

    def test_valid_request_passes(self) -> None:
        """A valid request reads the same with and without validation."""
        data = {"TaskUIDList": [UID, "u2"]}
        assert structure(data, ListTasksDetails, validate=True) == ListTasksDetails([UID, "u2"])
        assert structure(data, ListTasksDetails) == ListTasksDetails([UID, "u2"])


# --- strategies for valid models ----------------------------------------------------

texts = st.text(max_size=12)
non_empty = st.text(min_size=1, max_size=12)
model_codes = non_empty.filter(str.strip)
optional_ints = st.none() | st.integers(-(2**40), 2**40)

inference_params = st.builds(
    InferenceParams,
    steps=st.none() | st.integers(6, 100),
    sampler=st.none() | texts,
    clip_skip=st.none() | st.integers(1, 12),
    cfg_scale=st.none() | st.floats(1, 30),
    lora_weight=st.none() | st.floats(-1, 2),
)

models = st.builds(
    Model,
    model_code=model_codes,
    name=st.none() | texts,
    is_official=st.none() | st.booleans(),
    trigger_word_list=st.none() | st.lists(texts, max_size=3),
    inference_params=st.none() | inference_params,
)


@st.composite
def image2image(draw: st.DrawFn, images: int = 16) -> Image2Image:
    """An Image2Image pointing at one of `images` images."""
    return Image2Image(
        image_index=draw(st.integers(0, images - 1)),
        refer_strength=draw(st.floats(0, 1)),
        resize_mode=draw(st.sampled_from([None, "JustResize", "CropAndResize", "ResizeAndFill"])),
    )


@st.composite
def sdxl_requests(draw: st.DrawFn) -> GenerateImagesSDXL:
    """A valid GenerateImagesSDXL, Image2Image pointing into its images when present."""
    images = draw(st.lists(non_empty, max_size=3))
    return GenerateImagesSDXL(
        main_model=draw(models),
        sub_model_list=draw(st.lists(models, max_size=2)),
        positive_prompts=draw(st.lists(texts, max_size=3)),
        negative_prompts=draw(st.lists(texts, max_size=3)),
        translate_prompts=draw(st.booleans()),
        seed=draw(st.integers(-1, 2_147_483_647)),
        width=draw(st.integers(64, 2560)),
        height=draw(st.integers(64, 2560)),
        batch_size=draw(st.integers(1, 16)),
        image2image=draw(st.none() | image2image(len(images))) if images else None,
        tiling=draw(st.booleans()),
        image_and_mask_list=images,
    )


task_details = st.builds(
    TaskDetail,
    task_uid=texts,
    status=texts,
    action=texts,
    img_list=st.lists(texts, max_size=3).map(tuple),
    seed=optional_ints,
    txt_list=st.lists(texts, max_size=3).map(tuple),
    consume_api_point=optional_ints,
    error_code=st.integers(-(2**40), 2**40),
    error_message=texts,
)

model_maps = st.dictionaries(texts, models, max_size=3)

task_uids = st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)

MODELS = st.one_of(
    sdxl_requests(),
    models,
    inference_params,
    image2image(),
    task_details,
    st.builds(ListTasksDetailsResponse, st.lists(task_details, max_size=3).map(tuple)),
    st.builds(
        ListModelsResponse,
        main_models=model_maps,
        lora_models=model_maps,
        embedding_models=model_maps,
        hypernetwork_models=model_maps,
    ),
    st.builds(
        CreditBalance,
        total_credits=st.integers(0, 2**40),
        used_credits=st.integers(0, 2**40),
        expire_timestamp=optional_ints,
    ),
    st.builds(
        Envelope,
        ret_code=st.integers(-(2**31), 2**31),
        action=texts,
        message=texts,
        request_uuid=st.none() | texts,
    ),
    st.builds(SubmitResponse, model_codes),
    st.builds(ListRunningTasksResponse, st.lists(texts, max_size=3).map(tuple)),
    st.builds(ListTasksDetails, st.lists(task_uids, min_size=1, max_size=3)),
)


class TestRoundTrips:
    """Every model survives the wire form, both ways (house style 5)."""

    @settings(deadline=None)
    @given(obj=MODELS)
    def test_object_wire_object(self, obj: object) -> None:
        """object -> JSON wire form -> object gives back an equal object."""
        wire = json.loads(json.dumps(unstructure(obj)))
        assert structure(wire, type(obj)) == obj

    @settings(deadline=None)
    @given(obj=MODELS)
    def test_wire_object_wire(self, obj: object) -> None:
        """wire form -> object -> wire form gives back the same wire form (nulls dropped)."""
        wire = json.loads(json.dumps(drop_none(unstructure(obj))))
        again = drop_none(unstructure(structure(wire, type(obj))))
        assert again == wire

    @settings(deadline=None)
    @given(obj=MODELS)
    def test_validated_round_trip(self, obj: object) -> None:
        """A valid model also reads back with validation on (the emulator's path)."""
        assert structure(unstructure(obj), type(obj), validate=True) == obj


# --- arbitrary JSON never escapes as anything but our errors ------------------------

FIELD_NAMES = [
    "RetCode",
    "Message",
    "Action",
    "request_uuid",
    "TaskUID",
    "TaskUIDList",
    "TaskDetailList",
    "Status",
    "ImgList",
    "Seed",
    "TxtList",
    "ConsumeApiPoint",
    "ErrorCode",
    "ErrorMassage",
    "ErrorMessage",
    "TaskUid",
    "TaskStatus",
    "FinalPictureUrls",
    "TaskErrorMsg",
    "TaskErrorCode",
    "TaskType",
    "MainModels",
    "LoraModels",
    "EmbeddingModels",
    "HypernetworkModels",
    "ModelCode",
    "Name",
    "IsOfficial",
    "TriggerWordList",
    "InferenceParams",
    "CFGScale",
    "LoraWeight",
    "Steps",
    "TotalCredits",
    "UsedCredits",
    "ExpireTimestamp",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["", UID, REQUEST_UUID, "Finished", "0"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6), children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=8)
    ),
    max_leaves=40,
)

# Answers that look nearly right, so the fuzzing reaches the nested models.
near_answers = st.fixed_dictionaries(
    {
        "RetCode": st.sampled_from([0, 0, 0, 171, 2102, 5000]) | json_scalars,
        "request_uuid": st.sampled_from([REQUEST_UUID, REQUEST_UUID.upper()]) | json_scalars,
    },
    optional={
        "Message": json_scalars,
        "TaskUID": json_scalars,
        "TaskUIDList": st.lists(json_scalars, max_size=3) | json_values,
        "TaskDetailList": st.lists(
            st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=10), max_size=3
        )
        | json_values,
        "MainModels": st.dictionaries(
            st.text(max_size=4),
            st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6) | json_values,
            max_size=3,
        ),
        "TotalCredits": json_scalars,
        "UsedCredits": json_scalars,
    },
)

REQUESTS: list[Request[Any]] = [
    ListTasksDetails([UID]),
    ListModels(),
    ListRunningTasks(),
    GetCreditBalance(),
    GenerateImagesSDXL(main_model=Model("PICPIK General")),
]


@pytest.mark.slow
class TestArbitraryJson:
    """Whatever JSON arrives, only ProtocolError or APIError (both PicpikError) escape.

    Any other exception fails the test: only these two are suppressed.
    """

    @settings(max_examples=300, deadline=None)
    @given(value=json_values | near_answers)
    def test_structure(self, value: object) -> None:
        """Reading any JSON value as ListTasksDetailsResponse gives a model or ProtocolError."""
        with contextlib.suppress(ProtocolError):
            assert isinstance(structure(value, ListTasksDetailsResponse), ListTasksDetailsResponse)

    @settings(max_examples=300, deadline=None)
    @given(
        value=json_values | near_answers,
        request=st.sampled_from(REQUESTS),
        status_code=st.sampled_from([200, 200, 201, 400, 401, 404, 429, 500, 503]),
        retry_after=st.none() | st.text(max_size=30),
    )
    def test_parse_response(
        self, value: object, request: Request[Any], status_code: int, retry_after: str | None
    ) -> None:
        """parse_response of any JSON body gives the answer model or one of our errors.

        (SubmitOutcomeUnknownError: a 5xx to a task-creating request.)
        """
        content = json.dumps(value).encode()
        with contextlib.suppress(ProtocolError, APIError, SubmitOutcomeUnknownError):
            result = parse_response(
                request,
                status_code=status_code,
                content=content,
                request_uuid=REQUEST_UUID,
                retry_after=retry_after,
            )
            assert isinstance(result, request.response_type)

    @given(content=st.binary(max_size=64), status_code=st.sampled_from([200, 429, 502]))
    def test_parse_response_bytes(self, content: bytes, status_code: int) -> None:
        """parse_response of arbitrary bytes gives the answer model or ProtocolError/APIError."""
        with contextlib.suppress(ProtocolError, APIError):
            parse_response(
                ListModels(), status_code=status_code, content=content, request_uuid=REQUEST_UUID
            )


def test_docstring_examples() -> None:
    """The examples in the module's docstrings run and give the answers shown."""
    result = doctest.testmod(wire_module)
    assert result.attempted >= 3
    assert result.failed == 0
