"""Every action end to end: AsyncClient methods against the in-process emulator.

The emulator checks each signed body the way the service would, so an accepted
request proves that our signer and the emulator agree on every nested shape.
Runs on asyncio and trio. The emulator's own checks (required fields, Base64
images, sizes, texts) are also tested directly through its pure `handle()`.
"""

from __future__ import annotations

import base64
import doctest
import io
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import make_client
from PIL import Image

import picpik_async as picpik
from picpik_async._signing import sign
from picpik_async.testing import Emulator, ManualClock, RetCode
from picpik_async.testing._images import image_size
from picpik_async.testing._plans import DEFAULT_CONTROL_NETS, FALLBACK_SIZE, describe_text
from picpik_async.testing._service import TASK_ACTIONS, Settings, handle
from picpik_async.testing._state import ServiceState

GENERAL = picpik.Model("PICPIK General")


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    """A real PNG of the given size."""
    out = io.BytesIO()
    Image.new(mode, (width, height), "red" if mode == "RGB" else None).save(out, "PNG")
    return out.getvalue()


def uri(data: bytes, mime: str = "image/png") -> str:
    """A data URI of some bytes."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


PHOTO = png(320, 200)
FACE = png(48, 64)
MASK = png(320, 200, "L")
CUTOUT = png(96, 80, "RGBA")
# A PNG signature followed by garbage: accepted as input, not decodable by Pillow.
GARBLED = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4


def size_of(data: bytes) -> tuple[int, int]:
    """The (width, height) of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as picture:
        width, height = picture.size
    return width, height


async def image_sizes(result: picpik.GenerationResult) -> list[tuple[int, int]]:
    """The sizes of a result's images, downloaded."""
    return [size_of(await image.read()) for image in result.images]


# Every task-creating request, built with real images: (request, expected image sizes).
PROBES: list[Any] = [
    pytest.param(
        picpik.GenerateImages(
            main_model=GENERAL,
            positive_prompts=["a cat"],
            width=128,
            height=96,
            batch_size=2,
            seed=5,
            image_and_mask_list=[uri(PHOTO), uri(MASK)],
            image2image=picpik.Image2Image(image_index=0, refer_strength=0.3),
            control_net_list=[
                picpik.ControlNet(image_index=0, mask_index=1, invert_mask=True),
                picpik.ControlNet(image_index=0, extra_fields={"ControlModel": {"ModelCode": "x"}}),
            ],
            tileable=True,
            use_main_model_vae=True,
        ),
        [(128, 96), (128, 96)],
        id="GenerateImages",
    ),
    pytest.param(
        picpik.GenerateImages(main_model=GENERAL), [FALLBACK_SIZE], id="GenerateImages-defaults"
    ),
    pytest.param(
        picpik.ModifyMaskedPixels(
            main_model=picpik.Model("m", inference_params=picpik.InferenceParams(cfg_scale=7.5)),
            masked=picpik.Mask(extra_fields={"MaskIndex": 1}),
            image_and_mask_list=[uri(PHOTO), uri(MASK)],
        ),
        [(320, 200)],
        id="ModifyMaskedPixels",
    ),
    pytest.param(
        picpik.ApplyReferenceStyle(
            main_model=GENERAL,
            raw_image_index=1,
            style_image_index=0,
            style_refer_strength=0.35,
            image_list=[uri(FACE), uri(PHOTO)],
            negative_prompts=[],
        ),
        [(320, 200)],
        id="ApplyReferenceStyle",
    ),
    pytest.param(
        picpik.ApplyReferencePattern(
            main_model=GENERAL,
            raw_image_index=0,
            mask_index=1,
            pattern_image_index=2,
            chaotic_mode=False,
            image_and_mask_list=[uri(PHOTO), uri(MASK), uri(FACE)],
            width=256,
        ),
        [(256, 200)],
        id="ApplyReferencePattern",
    ),
    pytest.param(
        picpik.GeneratePatternsFromImage(
            main_model=GENERAL, raw_image=uri(PHOTO), box=[10, 10, 90, 60], tiling=True
        ),
        [(320, 200)],
        id="GeneratePatternsFromImage",
    ),
    pytest.param(
        picpik.GenerateBackgrounds(
            main_model=GENERAL,
            transparent_foreground=picpik.Foreground(extra_fields={"ImageIndex": 0}),
            background_image2image=picpik.Image2Image(
                image_index=1, resize_mode="ResizeAndFill", extra_fields={"DeepFusion": True}
            ),
            image_list=[uri(CUTOUT), uri(PHOTO)],
        ),
        [(96, 80)],
        id="GenerateBackgrounds",
    ),
    pytest.param(
        picpik.RemoveBackground(
            raw_image=uri(PHOTO),
            box=[0, 0, 100, 100],
            erode_size=15,
            foreground_threshold=240,
            background_threshold=15,
            hair_optimization="on",
            only_mask=True,
        ),
        [(320, 200)],
        id="RemoveBackground",
    ),
    pytest.param(
        picpik.RemoveBackgroundsInBatch(raw_images=[uri(PHOTO), uri(FACE)], erode_size=0),
        [(320, 200), (48, 64)],
        id="RemoveBackgroundsInBatch",
    ),
    pytest.param(
        picpik.ExtractContents(
            raw_image=uri(PHOTO),
            include_point_list=[picpik.Coordinate(72, 170)],
            exclude_point_list=[picpik.Coordinate(1, 1)],
        ),
        [(320, 200)],
        id="ExtractContents",
    ),
    pytest.param(
        picpik.RemoveContents(raw_image=uri(PHOTO), mask=uri(MASK), invert_mask=True, mask_blur=0),
        [(320, 200)],
        id="RemoveContents",
    ),
    pytest.param(
        picpik.ResizeImage(image=uri(FACE), width=4096, height=64), [(4096, 64)], id="ResizeImage"
    ),
    pytest.param(
        picpik.RestoreFaces(raw_image=uri(FACE, "image/png"), restore_strength=1),
        [(48, 64)],
        id="RestoreFaces",
    ),
    pytest.param(
        picpik.SwitchFace(raw_image=uri(PHOTO), new_face_image=uri(FACE), raw_face_index=100),
        [(320, 200)],
        id="SwitchFace",
    ),
    pytest.param(
        picpik.RemoveBackground(raw_image=uri(GARBLED)), [FALLBACK_SIZE], id="undecodable-input"
    ),
]


@pytest.mark.anyio
class TestEveryActionThroughTheEmulator:
    """submit + wait for each action: accepted (signature agrees), images of the right size."""

    @pytest.mark.parametrize(("request_", "sizes"), PROBES)
    async def test_submit_wait_and_download(
        self,
        client: picpik.AsyncClient,
        emulator: Emulator,
        request_: picpik.Request[picpik.SubmitResponse],
        sizes: list[tuple[int, int]],
    ) -> None:
        """The emulator accepts the signed request and its result has the expected images."""
        (handle,) = await client.submit_tasks(request_)
        result = await client.wait(handle, timeout=10)
        assert result.detail.action == request_.action
        assert await image_sizes(result) == sizes
        assert result.credits is not None
        assert result.credits >= len(sizes)
        assert emulator.counters.tasks_created == 1
        assert request_.action in TASK_ACTIONS

    async def test_describe_images_lands_in_txt_list(self, client: picpik.AsyncClient) -> None:
        """DescribeImages' captions come back in TaskDetail.TxtList, in the asked language."""
        request = picpik.DescribeImages(
            image_list=[uri(PHOTO), uri(FACE)], translate_description="ja"
        )
        result = await client.wait(await client.submit(request), timeout=10)
        assert result.images == ()
        assert result.texts == (
            describe_text(0, (320, 200), "ja"),
            describe_text(1, (48, 64), "ja"),
        )
        assert result.detail.txt_list == result.texts
        assert result.credits == 2

    async def test_list_control_nets(self, client: picpik.AsyncClient) -> None:
        """ListControlNets answers the catalogue with documented SD1.5 codes (section 3.2)."""
        catalogue = await client.list_control_nets()
        assert catalogue == DEFAULT_CONTROL_NETS
        codes = {model.model_code for model in catalogue.control_models.values()}
        assert "control_v11p_sd15_canny" in codes
        assert "canny" in catalogue.pre_processors
        assert await client.call(picpik.ListControlNets()) == catalogue

    async def test_extra_fields_are_sent_and_signed(self, emulator: Emulator) -> None:
        """Extras reach the wire at every level, and the emulator accepts the signature."""
        bodies: list[dict[str, Any]] = []
        inner = emulator.transport()

        class Recording(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.method == "POST":
                    bodies.append(json.loads(request.content))
                return await inner.handle_async_request(request)

        request = picpik.GenerateImages(
            main_model=GENERAL,
            image_and_mask_list=[uri(PHOTO)],
            control_net_list=[picpik.ControlNet(image_index=0, extra_fields={"Weight": 0.8})],
            extra_fields={"Sharpness": 3, "Style": {"Name": "watercolour"}},
        )
        async with make_client(emulator, transport=Recording()) as client:
            handle = await client.submit(request)
        sent = bodies[0]
        assert sent["Sharpness"] == 3
        assert sent["Style"] == {"Name": "watercolour"}
        assert sent["ControlNetList"] == [{"ImageIndex": 0, "Weight": 0.8}]
        assert handle.task_uid

    async def test_strict_models_apply_to_sd15_actions(self) -> None:
        """With strict_models, an unknown ModelCode of a generation action is refused."""
        emulator = Emulator(latency=0.05, strict_models=True)
        async with make_client(emulator) as client:
            with pytest.raises(picpik.APIError, match="not a known model") as caught:
                await client.submit(picpik.GenerateImages(main_model=picpik.Model("nope")))
            await client.submit(picpik.GenerateImages(main_model=GENERAL))
        assert caught.value.ret_code == RetCode.INVALID_PARAMETER
        assert emulator.counters.tasks_created == 1


@pytest.mark.anyio
class TestClientMethods:
    """The natural-name methods: image inputs as path, bytes or data URI; a finished result."""

    async def test_generate_sd15(self, client: picpik.AsyncClient) -> None:
        """generate_sd15 sends GenerateImages with the images and ControlNets given."""
        result = await client.generate_sd15(
            "a cat",
            images=[PHOTO],
            control_nets=[picpik.ControlNet(image_index=0)],
            image2image=picpik.Image2Image(image_index=0),
            tileable=False,
            negative_prompt="blur",
            width=96,
            height=64,
            seed=11,
            batch_size=2,
            sub_models=["Watercolor"],
            use_main_model_vae=True,
            translate_prompts=False,
            timeout=10,
        )
        assert result.seed == 11
        assert result.prompt == "a cat"
        assert result.detail.action == "GenerateImages"
        assert await image_sizes(result) == [(96, 64), (96, 64)]

    async def test_upscale_from_a_path(self, client: picpik.AsyncClient, tmp_path: Any) -> None:
        """upscale reads a file and returns an image of the requested size."""
        path = tmp_path / "in.png"
        path.write_bytes(FACE)
        result = await client.upscale(path, width=200, height=300)
        assert result.detail.action == "ResizeImage"
        assert await image_sizes(result) == [(200, 300)]

    async def test_remove_background(self, client: picpik.AsyncClient) -> None:
        """remove_background keeps the input's size; options pass through."""
        result = await client.remove_background(
            uri(PHOTO), box=[0, 0, 10, 10], only_mask=True, hair_optimization="off"
        )
        assert await image_sizes(result) == [(320, 200)]

    async def test_remove_backgrounds(self, client: picpik.AsyncClient) -> None:
        """remove_backgrounds answers one result per task, one image per input."""
        results = await client.remove_backgrounds([PHOTO, FACE, CUTOUT], erode_size=3)
        assert len(results) == 1
        assert await image_sizes(results[0]) == [(320, 200), (48, 64), (96, 80)]

    async def test_extract_contents(self, client: picpik.AsyncClient) -> None:
        """extract_contents takes (x, y) pairs."""
        result = await client.extract_contents(
            PHOTO, [(72, 170), picpik.Coordinate(5, 5)], exclude_points=[(0, 0)], only_mask=False
        )
        assert result.detail.action == "ExtractContents"
        assert await image_sizes(result) == [(320, 200)]

    async def test_remove_contents(self, client: picpik.AsyncClient) -> None:
        """remove_contents erases under the mask, keeping the size."""
        result = await client.remove_contents(PHOTO, MASK, invert_mask=False, mask_blur=64)
        assert await image_sizes(result) == [(320, 200)]

    async def test_inpaint(self, client: picpik.AsyncClient) -> None:
        """inpaint sends [image, mask] and the given Masked fields."""
        result = await client.inpaint(
            PHOTO, MASK, "a green sofa", mask_fields={"MaskIndex": 1}, seed=3
        )
        assert result.prompt == "a green sofa"
        assert await image_sizes(result) == [(320, 200)]

    async def test_apply_style(self, client: picpik.AsyncClient) -> None:
        """apply_style redraws the first image in the style of the second."""
        result = await client.apply_style(FACE, PHOTO, strength=0.6, model="PICPIK Interior Design")
        assert result.detail.action == "ApplyReferenceStyle"
        assert await image_sizes(result) == [(48, 64)]

    async def test_restore_faces_and_swap_face(self, client: picpik.AsyncClient) -> None:
        """restore_faces and swap_face keep the raw image's size."""
        restored = await client.restore_faces(FACE, strength=0.8)
        swapped = await client.swap_face(PHOTO, FACE, face_index=2)
        assert await image_sizes(restored) == [(48, 64)]
        assert await image_sizes(swapped) == [(320, 200)]

    async def test_describe_returns_the_texts(self, client: picpik.AsyncClient) -> None:
        """describe returns TxtList; English by default (the service default)."""
        texts = await client.describe(PHOTO, uri(FACE))
        assert texts == [describe_text(0, (320, 200), "en"), describe_text(1, (48, 64), "en")]
        assert await client.describe(GARBLED, language="ko") == [
            describe_text(0, FALLBACK_SIZE, "ko")
        ]

    async def test_submit_and_wait(self, client: picpik.AsyncClient) -> None:
        """submit_and_wait runs any task-creating request, e.g. GenerateBackgrounds."""
        request = picpik.GenerateBackgrounds(
            main_model=GENERAL,
            transparent_foreground=picpik.Foreground(),
            image_list=[uri(CUTOUT)],
            positive_prompts=["a beach"],
        )
        result = await client.submit_and_wait(request, 10, prompt="a beach")
        assert result.prompt == "a beach"
        assert await image_sizes(result) == [(96, 80)]

    @pytest.mark.parametrize(
        ("call", "words"),
        [
            pytest.param(lambda c: c.upscale(PHOTO, width=63, height=64), "64..4096", id="size"),
            pytest.param(lambda c: c.remove_background(PHOTO, erode=3), "erode", id="option"),
            pytest.param(lambda c: c.remove_backgrounds([]), "at least one", id="no-images"),
            pytest.param(lambda c: c.describe(), "at least one", id="describe-nothing"),
            pytest.param(lambda c: c.describe(PHOTO, language="xx"), "one of", id="language"),
            pytest.param(lambda c: c.swap_face(PHOTO, FACE, face_index=0), "1..100", id="face"),
            pytest.param(lambda c: c.generate_sd15("  "), "prompt", id="blank-prompt"),
            pytest.param(lambda c: c.generate_sd15("x", colour=1), "colour", id="unknown"),
            pytest.param(
                lambda c: c.generate_sd15("x", control_nets=[picpik.ControlNet(image_index=0)]),
                "empty",
                id="controlnet-without-image",
            ),
            pytest.param(lambda c: c.extract_contents(PHOTO, []), "at least one", id="no-points"),
            pytest.param(lambda c: c.restore_faces(b"not an image"), "not a PNG", id="bytes"),
            pytest.param(lambda c: c.apply_style(PHOTO, PHOTO, strength=2), "0..1", id="strength"),
            pytest.param(
                lambda c: c.inpaint(PHOTO, MASK, mask_fields={"": 1}), "mapping", id="mask"
            ),
            pytest.param(
                lambda c: c.remove_contents(PHOTO, MASK, mask_blur=65), "0..64", id="blur"
            ),
        ],
    )
    async def test_bad_input_fails_before_any_request(
        self,
        client: picpik.AsyncClient,
        emulator: Emulator,
        call: Callable[[picpik.AsyncClient], Any],
        words: str,
    ) -> None:
        """Bad arguments raise ValidationError and send nothing."""
        with pytest.raises(picpik.ValidationError, match=words):
            await call(client)
        assert sum(emulator.counters.requests.values()) == 0

    async def test_task_failure_surfaces(self) -> None:
        """A failed editing task raises TaskFailedError like a generation."""
        from picpik_async.testing import Faults

        emulator = Emulator(latency=0.05, faults=Faults(task_failure=1.0))
        async with make_client(emulator) as client:
            with pytest.raises(picpik.TaskFailedError):
                await client.restore_faces(FACE)


@pytest.mark.anyio
class TestSubmitTasks:
    """submit_tasks() returns a handle for every TaskUID of the answer (section 8.8)."""

    @staticmethod
    def answering(fields: dict[str, Any]) -> httpx.MockTransport:
        """A transport answering every request with RetCode 0 and `fields`."""

        def reply(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"RetCode": 0, "Message": "", **fields})

        return httpx.MockTransport(reply)

    @pytest.mark.parametrize(
        ("fields", "uids"),
        [
            pytest.param({"TaskUIDList": ["u1", "u2", "u3"]}, ["u1", "u2", "u3"], id="list"),
            pytest.param({"TaskUID": "u1"}, ["u1"], id="one"),
        ],
    )
    async def test_both_answer_shapes(self, fields: dict[str, Any], uids: list[str]) -> None:
        """A TaskUIDList answer gives one handle per task; all share the request_uuid."""
        request = picpik.RemoveBackgroundsInBatch(raw_images=[uri(PHOTO), uri(FACE)])
        async with picpik.AsyncClient(
            public_key="pk", private_key="sk", transport=self.answering(fields)
        ) as client:
            handles = await client.submit_tasks(request, request_uuid="fixed")
            with pytest.raises(picpik.ValidationError, match="submit_tasks"):
                await client.submit(request)  # refused before any request is sent
        assert [h.task_uid for h in handles] == uids
        assert {h.request_uuid for h in handles} == {"fixed"}

    async def test_plain_submit_answers(self, client: picpik.AsyncClient) -> None:
        """For other actions submit_tasks() gives the one handle submit() would."""
        handles = await client.submit_tasks(picpik.RestoreFaces(raw_image=uri(FACE)))
        assert len(handles) == 1
        with pytest.raises(picpik.ValidationError, match="does not create a task"):
            await client.submit_tasks(picpik.ListControlNets())  # type: ignore[arg-type]


# --- the emulator's checks, through its pure handle() -----------------------------------


def emulated(params: dict[str, Any], **settings: Any) -> tuple[dict[str, Any], ServiceState]:
    """Sign `params` and hand them to the emulator's pure core; its answer and state."""
    state = ServiceState(clock=ManualClock(), rng=random.Random(1), latency=1.0)
    body = {"PublicKey": "pk", "request_uuid": "u1", **params}
    body["Signature"] = sign(body, "sk")
    options: dict[str, Any] = {"public_key": "pk", "private_key": "sk", **settings}
    reply = handle(body, state, Settings(**options))
    return dict(reply.body), state


REQUIRED = [
    ("GenerateImages", {}, "MainModel"),
    ("ModifyMaskedPixels", {"MainModel": {"ModelCode": "m"}, "ImageAndMaskList": ["AAAA"]},
     "Masked"),
    ("ModifyMaskedPixels", {"MainModel": {"ModelCode": "m"}, "Masked": {}}, "ImageAndMaskList"),
    ("ApplyReferenceStyle", {"MainModel": {"ModelCode": "m"}, "RawImageIndex": 0,
                             "ImageList": ["AAAA"]}, "StyleImageIndex"),
    ("ApplyReferencePattern", {"MainModel": {"ModelCode": "m"}, "RawImageIndex": 0,
                               "MaskIndex": 0, "ImageAndMaskList": ["AAAA"]}, "PatternImageIndex"),
    ("GeneratePatternsFromImage", {"MainModel": {"ModelCode": "m"}, "RawImage": "AAAA"}, "Box"),
    ("GenerateBackgrounds", {"MainModel": {"ModelCode": "m"}, "ImageList": ["AAAA"]},
     "TransparentForeground"),
    ("RemoveBackground", {}, "RawImage"),
    ("RemoveBackgroundsInBatch", {"RawImage": "AAAA"}, "RawImages"),
    ("ExtractContents", {"RawImage": "AAAA"}, "IncludePointList"),
    ("RemoveContents", {"RawImage": "AAAA"}, "Mask"),
    ("ResizeImage", {"Image": "AAAA", "Width": 64}, "Height"),
    ("RestoreFaces", {"RestoreStrength": 0.5}, "RawImage"),
    ("SwitchFace", {"RawImage": "AAAA"}, "NewFaceImage"),
    ("DescribeImages", {"TranslateDescription": "en"}, "ImageList"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("action", "params", "missing"), [pytest.param(*r, id=f"{r[0]}-{r[2]}") for r in REQUIRED]
)
def test_emulator_refuses_missing_required_fields(
    action: str, params: dict[str, Any], missing: str
) -> None:
    """A missing required field is RetCode 160 naming it; nothing is created or charged."""
    answer, state = emulated({"Action": action, **params})
    assert answer["RetCode"] == RetCode.INVALID_PARAMETER
    assert answer["Message"] == f"Missing required parameter {missing}"
    assert state.tasks == {}
    assert state.credits.used == 0


@pytest.mark.parametrize(
    ("params", "words"),
    [
        pytest.param(
            {"Action": "ResizeImage", "Image": "AAAA", "Width": 5000, "Height": 64},
            "Invalid parameter: Width must be an integer in 64..4096, got 5000",
            id="range-in-wire-words",
        ),
        pytest.param(
            {"Action": "RemoveBackground", "RawImage": "not base64!"},
            "Invalid parameter RawImage: not a Base64 image",
            id="bad-base64",
        ),
        pytest.param(
            {"Action": "RemoveContents", "RawImage": "AAAA", "Mask": "%%%"},
            "Invalid parameter Mask: not a Base64 image",
            id="bad-mask",
        ),
        pytest.param(
            {"Action": "DescribeImages", "ImageList": ["AAAA", "@@"]},
            "Invalid parameter ImageList[1]: not a Base64 image",
            id="bad-list-item",
        ),
        pytest.param(
            {"Action": "SwitchFace", "RawImage": "AAAA", "NewFaceImage": 5},
            "Invalid parameter NewFaceImage: expected a string",
            id="wrong-type",
        ),
        pytest.param(
            {
                "Action": "ApplyReferenceStyle",
                "MainModel": {"ModelCode": "m"},
                "RawImageIndex": 0,
                "StyleImageIndex": 3,
                "ImageList": ["AAAA"],
            },
            "StyleImageIndex must be in 0..0",
            id="index-rule",
        ),
        pytest.param(
            {"Action": "DescribeImages", "ImageList": ["AAAA"], "TranslateDescription": "xx"},
            "TranslateDescription must be one of en",
            id="language",
        ),
    ],
)
def test_emulator_refuses_invalid_parameters(params: dict[str, Any], words: str) -> None:
    """Invalid parameters are RetCode 160 with the wire names in the message."""
    answer, state = emulated(params)
    assert answer["RetCode"] == RetCode.INVALID_PARAMETER
    assert words in answer["Message"]
    assert state.tasks == {}


def test_emulator_refuses_a_bad_signature_of_a_nested_body() -> None:
    """Changing a nested value after signing breaks the signature (section 2.2)."""
    state = ServiceState(clock=ManualClock(), rng=random.Random(1))
    body: dict[str, Any] = {
        "Action": "ExtractContents",
        "PublicKey": "pk",
        "RawImage": "AAAA",
        "IncludePointList": [{"X": 1, "Y": 2}],
    }
    body["Signature"] = sign(body, "sk")
    body["IncludePointList"][0]["X"] = 3
    reply = handle(body, state, Settings(public_key="pk", private_key="sk"))
    assert reply.ret_code == RetCode.BAD_SIGNATURE


def test_emulator_without_a_measure_uses_the_fallback_size() -> None:
    """The pure core alone knows no image sizes: inputs count as 1024x1024."""
    answer, state = emulated({"Action": "RestoreFaces", "RawImage": uri(FACE)})
    task = state.tasks[answer["TaskUID"]]
    assert task.sizes == (FALLBACK_SIZE,)
    measured, state = emulated(
        {"Action": "RestoreFaces", "RawImage": uri(FACE)}, measure_image=image_size
    )
    assert state.tasks[measured["TaskUID"]].sizes == ((48, 64),)


def test_image_size_reads_headers_only() -> None:
    """image_size measures PNG, JPEG and raw Base64; garbage gives None."""
    jpeg = io.BytesIO()
    Image.new("RGB", (33, 44)).save(jpeg, "JPEG")
    assert image_size(uri(jpeg.getvalue(), "image/jpeg")) == (33, 44)
    assert image_size(base64.b64encode(FACE).decode()) == (48, 64)
    assert image_size(uri(GARBLED)) is None
    assert image_size("not base64 at all!") is None


def test_huge_inputs_are_capped() -> None:
    """Placeholder results are at most 4096 pixels a side."""
    answer, state = emulated(
        {"Action": "RemoveBackground", "RawImage": "AAAA"}, measure_image=lambda image: (9000, 10)
    )
    assert state.tasks[answer["TaskUID"]].sizes == ((4096, 10),)


def test_emulator_doctests() -> None:
    """The examples in the emulator's plan and image modules run."""
    from picpik_async.testing import _images, _plans

    for module in (_plans, _images):
        result = doctest.testmod(module)
        assert result.attempted > 0
        assert result.failed == 0
