"""Tests for the emulator's HTTP behaviour, in-process through Emulator.transport().

Every test runs on asyncio and trio. Bodies are signed here with the pure signer,
never through a client, and time is a ManualClock.
"""

from __future__ import annotations

import ast
import base64
import doctest
import graphlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from picpik_async import testing as testing_package
from picpik_async._errors import ProtocolError
from picpik_async._models import (
    CreditBalance,
    ListModelsResponse,
    ListTasksDetailsResponse,
    TaskDetail,
)
from picpik_async._polling import check_answer
from picpik_async._signing import dumps, sign
from picpik_async._wire import structure
from picpik_async.testing import (
    DEFAULT_PRIVATE_KEY,
    DEFAULT_PUBLIC_KEY,
    Emulator,
    Failure,
    Faults,
    Malformed,
    ManualClock,
    RetCode,
    StatusWords,
    Trigger,
)

pytestmark = pytest.mark.anyio

LATENCY = 4.0  # with the default queue share: queuing for 1.2 s, running until 4 s
PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f3b0b50000000049454e44ae426082"
    )
).decode()


# --- helpers --------------------------------------------------------------------


def signed(
    body: dict[str, Any],
    *,
    public_key: str = DEFAULT_PUBLIC_KEY,
    private_key: str = DEFAULT_PRIVATE_KEY,
) -> bytes:
    """The JSON bytes of ``body`` with PublicKey and a Signature added."""
    full = {"PublicKey": public_key, **body}
    full["Signature"] = sign(full, private_key)
    return dumps(full)


async def call(http: httpx.AsyncClient, body: dict[str, Any], **keys: str) -> dict[str, Any]:
    """POST a signed body to / and return the decoded JSON answer (HTTP 200 expected)."""
    response = await http.post("/", content=signed(body, **keys))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def sdxl(**fields: Any) -> dict[str, Any]:
    """A valid GenerateImagesSDXL body, with fields overridden (None removes one)."""
    body: dict[str, Any] = {
        "Action": "GenerateImagesSDXL",
        "MainModel": {"ModelCode": "PICPIK General"},
        "ImageAndMaskList": [],
        "PositivePrompts": ["a red apple"],
        "Width": 512,
        "Height": 512,
        **fields,
    }
    return {key: value for key, value in body.items() if value is not None}


async def submit(http: httpx.AsyncClient, **fields: Any) -> str:
    """Create a task and return its TaskUID."""
    answer = await call(http, sdxl(**fields))
    assert answer["RetCode"] == 0, answer
    uid: str = answer["TaskUID"]
    return uid


async def details(http: httpx.AsyncClient, *uids: str) -> list[dict[str, Any]]:
    """The TaskDetailList for ``uids``."""
    answer = await call(http, {"Action": "ListTasksDetails", "TaskUIDList": list(uids)})
    assert answer["RetCode"] == 0, answer
    found: list[dict[str, Any]] = answer["TaskDetailList"]
    return found


async def finished_images(http: httpx.AsyncClient, clock: ManualClock, **fields: Any) -> list[str]:
    """Create a task, let it finish and return its image URLs."""
    uid = await submit(http, **fields)
    clock.advance(LATENCY)
    (detail,) = await details(http, uid)
    urls: list[str] = detail["ImgList"]
    return urls


def read_details_answer(content: bytes, asked: list[str]) -> None:
    """Read a ListTasksDetails answer the way the client core would, raising on nonsense."""
    answer = json.loads(content)
    if not isinstance(answer, dict) or "RetCode" not in answer:
        raise ProtocolError("not an answer envelope")
    parsed = structure(answer, ListTasksDetailsResponse)
    check_answer(asked, parsed.task_detail_list)


# --- fixtures -------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Emulator:
    return Emulator(clock=clock, latency=LATENCY, seed=7)


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url) as client:
        yield client


# --- authentication -----------------------------------------------------------------


class TestAuthentication:
    async def test_good_signature_is_accepted(self, http: httpx.AsyncClient) -> None:
        """A body signed with the account's keys succeeds, with an empty Message."""
        answer = await call(http, {"Action": "GetCreditBalance"})
        assert (answer["RetCode"], answer["Message"], answer["Action"]) == (
            0,
            "",
            "GetCreditBalance",
        )

    async def test_bad_signature(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """A signature made with another private key is refused (RetCode 171)."""
        answer = await call(http, sdxl(), private_key="wrong")
        assert answer["RetCode"] == RetCode.BAD_SIGNATURE
        assert answer["Message"] == "Signature verification failed"
        assert "TaskUID" not in answer
        assert emulator.counters.tasks_created == 0

    async def test_tampered_body(self, http: httpx.AsyncClient) -> None:
        """Changing a value after signing breaks the signature."""
        body = json.loads(signed(sdxl()))
        body["Width"] = 1024
        response = await http.post("/", json=body)
        assert response.json()["RetCode"] == RetCode.BAD_SIGNATURE

    async def test_unknown_public_key(self, http: httpx.AsyncClient) -> None:
        """A PublicKey of no account is refused (RetCode 172), even if self-consistent."""
        answer = await call(http, {"Action": "ListModels"}, public_key="someone", private_key="x")
        assert answer["RetCode"] == RetCode.UNKNOWN_PUBLIC_KEY

    @pytest.mark.parametrize(
        ("missing", "code"),
        [
            pytest.param("Signature", RetCode.BAD_SIGNATURE, id="signature"),
            pytest.param("PublicKey", RetCode.UNKNOWN_PUBLIC_KEY, id="public-key"),
            pytest.param("Action", RetCode.INVALID_PARAMETER, id="action"),
        ],
    )
    async def test_missing_common_field(
        self, http: httpx.AsyncClient, missing: str, code: RetCode
    ) -> None:
        """A body without Signature, PublicKey or Action is refused, naming the field."""
        body = json.loads(signed({"Action": "ListModels"}))
        del body[missing]
        answer = (await http.post("/", json=body)).json()
        assert answer["RetCode"] == code
        assert missing in answer["Message"]

    @pytest.mark.parametrize("content", [b"<html>", b"[1, 2]", b'{"Width": NaN}'])
    async def test_not_a_json_object(self, http: httpx.AsyncClient, content: bytes) -> None:
        """Bodies that are not a JSON object are refused with HTTP 200 and RetCode 160."""
        response = await http.post("/", content=content)
        assert response.status_code == 200
        assert response.json()["RetCode"] == RetCode.INVALID_PARAMETER

    async def test_unknown_action(self, http: httpx.AsyncClient) -> None:
        """An Action the emulator does not know is refused (RetCode 161)."""
        answer = await call(http, {"Action": "MakeCoffee"})
        assert answer["RetCode"] == RetCode.UNKNOWN_ACTION
        assert answer["Message"] == "Action not found: MakeCoffee"


# --- validation ---------------------------------------------------------------------


class TestValidation:
    @pytest.mark.parametrize(
        ("fields", "words"),
        [
            pytest.param({"Width": 10}, ["Width", "64..2560", "10"], id="width-10"),
            pytest.param({"Height": 4000}, ["Height", "64..2560"], id="height-4000"),
            pytest.param({"BatchSize": 17}, ["BatchSize", "1..16", "17"], id="batch-17"),
            pytest.param({"BatchSize": 0}, ["BatchSize", "1..16"], id="batch-0"),
            pytest.param({"Seed": -2}, ["Seed", "-1..2147483647"], id="seed-minus-2"),
            pytest.param({"Seed": 2**31}, ["Seed"], id="seed-too-big"),
            pytest.param({"MainModel": None}, ["Missing", "MainModel"], id="no-main-model"),
            pytest.param({"MainModel": {}}, ["MainModel.ModelCode"], id="no-model-code"),
            pytest.param({"ImageAndMaskList": None}, ["ImageAndMaskList"], id="no-image-list"),
            pytest.param(
                {"Image2Image": {"ImageIndex": 1}, "ImageAndMaskList": [PNG_1X1]},
                ["Image2Image.ImageIndex", "0..0", "ImageAndMaskList"],
                id="image-index-outside-list",
            ),
            pytest.param(
                {"MainModel": {"ModelCode": "m", "InferenceParams": {"CFGScale": 50}}},
                ["CFGScale", "1..30"],
                id="cfg-scale-50",
            ),
            pytest.param({"ImageAndMaskList": ["%%%"]}, ["ImageAndMaskList[0]"], id="not-base64"),
            pytest.param({"Width": "512"}, ["Width", "integer"], id="width-string"),
            pytest.param({"Seed": True}, ["Seed", "integer"], id="seed-bool"),
            pytest.param({"PositivePrompts": "cat"}, ["PositivePrompts", "list"], id="prompts-str"),
            pytest.param({"MainModel": "m"}, ["MainModel", "object"], id="model-str"),
            pytest.param({"TranslatePrompts": "yes"}, ["TranslatePrompts"], id="bool-str"),
            pytest.param({"request_uuid": 5}, ["request_uuid", "string"], id="uuid-int"),
        ],
    )
    async def test_generate_refusals(
        self, http: httpx.AsyncClient, emulator: Emulator, fields: dict[str, Any], words: list[str]
    ) -> None:
        """Each invalid submit gets RetCode 160 naming the field (and range); nothing is made."""
        answer = await call(http, sdxl(**fields))
        assert answer["RetCode"] == RetCode.INVALID_PARAMETER
        for word in words:
            assert word in answer["Message"]
        assert emulator.counters.tasks_created == 0
        assert emulator.credits.used == 0

    async def test_image_to_image_inside_the_list_is_accepted(
        self, http: httpx.AsyncClient
    ) -> None:
        """An Image2Image index inside ImageAndMaskList (data URI or bare Base64) is fine."""
        images = [f"data:image/png;base64,{PNG_1X1}", PNG_1X1]
        fields = {"Image2Image": {"ImageIndex": 1, "ReferStrength": 0.35}}
        await submit(http, ImageAndMaskList=images, **fields)

    @pytest.mark.parametrize(
        ("uids", "words"),
        [
            pytest.param([], ["TaskUIDList", "at least one"], id="empty"),
            pytest.param("abc", ["TaskUIDList", "list"], id="string"),
            pytest.param([1, 2], ["TaskUIDList"], id="numbers"),
            pytest.param([""], ["TaskUIDList"], id="empty-string"),
            pytest.param(None, ["Missing", "TaskUIDList"], id="missing"),
        ],
    )
    async def test_task_uid_list_refusals(
        self, http: httpx.AsyncClient, uids: Any, words: list[str]
    ) -> None:
        """TaskUIDList must be a non-empty list of non-empty strings."""
        body: dict[str, Any] = {"Action": "ListTasksDetails"}
        if uids is not None:
            body["TaskUIDList"] = uids
        answer = await call(http, body)
        assert answer["RetCode"] == RetCode.INVALID_PARAMETER
        for word in words:
            assert word in answer["Message"]

    async def test_any_model_code_by_default(self, http: httpx.AsyncClient) -> None:
        """Without strict_models, codes of the real service are accepted."""
        await submit(http, MainModel={"ModelCode": "some_real_sdxl_model"})

    async def test_strict_models(self, clock: ManualClock) -> None:
        """With strict_models, codes outside the ListModels catalogue are refused."""
        emulator = Emulator(clock=clock, strict_models=True)
        async with httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url) as http:
            answer = await call(http, sdxl(MainModel={"ModelCode": "nope"}))
            assert answer["RetCode"] == RetCode.INVALID_PARAMETER
            assert "MainModel.ModelCode" in answer["Message"]
            lora = {"ModelCode": "emulator_lora_watercolor"}
            await submit(http, SubModelList=[lora])
            answer = await call(http, sdxl(SubModelList=[{"ModelCode": "PICPIK General"}]))
            assert "SubModelList[0].ModelCode" in answer["Message"]


# --- lifecycle ---------------------------------------------------------------------


class TestLifecycle:
    async def test_queuing_running_finished(
        self, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        """A task is Queuing, then Running, then Finished with its images and charge."""
        uid = await submit(http, BatchSize=2, Seed=5)
        statuses = []
        for step in (0.0, 1.5, 2.5):
            clock.advance(step)
            (detail,) = await details(http, uid)
            statuses.append(detail["Status"])
            if detail["Status"] != "Finished":
                assert detail["ImgList"] == []
        assert statuses == ["Queuing", "Running", "Finished"]
        task = structure(detail, TaskDetail)
        assert task.action == "GenerateImagesSDXL"
        assert (task.seed, task.consume_api_point, task.error_code) == (5, 2, 0)
        assert task.img_list == (
            f"http://emulator.picpik.localhost/images/{uid}/0.png",
            f"http://emulator.picpik.localhost/images/{uid}/1.png",
        )

    async def test_custom_status_words(self, clock: ManualClock) -> None:
        """Configured words are reported, including for a failed task."""
        words = StatusWords("Pending", "Processing", "Success", "Failed")
        faults = Faults(task_failure={2})
        emulator = Emulator(clock=clock, latency=LATENCY, status_words=words, faults=faults)
        async with httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url) as http:
            good, bad = await submit(http), await submit(http)
            seen = []
            for step in (0.0, 2.0, 2.0):
                clock.advance(step)
                seen.append([detail["Status"] for detail in await details(http, good, bad)])
        assert seen == [
            ["Pending", "Pending"],
            ["Processing", "Processing"],
            ["Success", "Failed"],
        ]

    async def test_random_seed_is_reported(self, http: httpx.AsyncClient) -> None:
        """Seed -1 (or no Seed) is replaced by the seed actually used."""
        uid = await submit(http, Seed=-1)
        (detail,) = await details(http, uid)
        assert 0 <= detail["Seed"] <= 2_147_483_647

    async def test_unknown_uids_are_absent(self, http: httpx.AsyncClient) -> None:
        """ListTasksDetails answers only for known UIDs, once each."""
        uid = await submit(http)
        found = await details(http, "cktlm6lrh4miq8ng9nf0", uid, uid)
        assert [detail["TaskUID"] for detail in found] == [uid]
        assert await details(http, "cktlm6lrh4miq8ng9nf0") == []

    async def test_list_running_tasks(self, http: httpx.AsyncClient, clock: ManualClock) -> None:
        """ListRunningTasks lists unfinished tasks only."""
        uid = await submit(http)
        answer = await call(http, {"Action": "ListRunningTasks"})
        assert answer["TaskUIDList"] == [uid]
        clock.advance(LATENCY)
        answer = await call(http, {"Action": "ListRunningTasks"})
        assert answer["TaskUIDList"] == []

    async def test_list_models(self, http: httpx.AsyncClient) -> None:
        """ListModels answers a catalogue that fits the client's model."""
        answer = await call(http, {"Action": "ListModels"})
        models = structure(answer, ListModelsResponse)
        assert "PICPIK General" in models.main_models
        assert models.lora_models["Watercolor"].trigger_word_list == ("watercolor",)

    async def test_request_uuid_is_echoed(self, http: httpx.AsyncClient) -> None:
        """request_uuid comes back on success and on refusal, and is absent when not sent."""
        ok = await call(http, {"Action": "ListModels", "request_uuid": "u-1"})
        refused = await call(http, sdxl(Width=10, request_uuid="u-2"))
        assert (ok["request_uuid"], refused["request_uuid"]) == ("u-1", "u-2")
        assert "request_uuid" not in await call(http, {"Action": "ListModels"})


# --- credits ------------------------------------------------------------------------


class TestCredits:
    async def test_balance_goes_down(self, http: httpx.AsyncClient) -> None:
        """Each task debits its ConsumeApiPoint from the balance."""
        before = structure(await call(http, {"Action": "GetCreditBalance"}), CreditBalance)
        uid = await submit(http, Width=1024, Height=1024, BatchSize=3)
        (detail,) = await details(http, uid)
        after = structure(await call(http, {"Action": "GetCreditBalance"}), CreditBalance)
        assert detail["ConsumeApiPoint"] == 12
        assert after.used_credits - before.used_credits == 12
        assert after.total_credits == before.total_credits
        assert after.expire_timestamp is not None

    async def test_insufficient_credits(self, clock: ManualClock) -> None:
        """A task the balance cannot cover is refused with 2101; nothing is created."""
        emulator = Emulator(clock=clock, credits=5)
        async with httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url) as http:
            await submit(http, Width=1024, Height=1024)
            answer = await call(http, sdxl(Width=1024, Height=1024))
        assert answer["RetCode"] == RetCode.INSUFFICIENT_CREDITS
        assert "Insufficient credits" in answer["Message"]
        assert "TaskUID" not in answer
        assert emulator.counters.tasks_created == 1
        assert (emulator.credits.used, emulator.credits.remaining) == (4, 1)


# --- images -------------------------------------------------------------------------


class TestImages:
    async def test_png_of_the_exact_size(self, http: httpx.AsyncClient, clock: ManualClock) -> None:
        """Each URL serves a PNG of exactly Width x Height."""
        urls = await finished_images(http, clock, Width=512, Height=768, BatchSize=2)
        for url in urls:
            response = await http.get(url)
            assert response.status_code == 200
            assert response.headers["content-type"] == "image/png"
            image = Image.open(io.BytesIO(response.content))
            assert (image.format, image.size) == ("PNG", (512, 768))

    async def test_deterministic_for_prompt_seed_and_index(
        self, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        """Same (prompt, seed, index): same bytes; another prompt or index: other bytes."""
        first = await finished_images(http, clock, Seed=3, BatchSize=2)
        again = await finished_images(http, clock, Seed=3, BatchSize=2)
        other = await finished_images(http, clock, Seed=3, PositivePrompts=["a green pear"])

        async def png(url: str) -> bytes:
            return (await http.get(url)).content

        assert first[0] != again[0]  # two tasks, two URLs ...
        assert await png(first[0]) == await png(again[0])  # ... the same picture
        assert await png(first[0]) != await png(first[1])
        assert await png(first[0]) != await png(other[0])

    async def test_downloads_are_counted(
        self, http: httpx.AsyncClient, clock: ManualClock, emulator: Emulator
    ) -> None:
        """Served images are counted; 404s are not."""
        (url,) = await finished_images(http, clock)
        await http.get(url)
        await http.get(url)
        await http.get(url.replace("/0.png", "/1.png"))
        assert emulator.counters.image_downloads == 2

    async def test_unknown_image_is_404(self, http: httpx.AsyncClient) -> None:
        """Unknown tasks and unfinished tasks have no images."""
        uid = await submit(http)
        for path in ("/images/cktlm6lrh4miq8ng9nf0/0.png", f"/images/{uid}/0.png"):
            response = await http.get(path)
            assert response.status_code == 404
            assert "No such image" in response.text

    async def test_expired_image_is_404(self, clock: ManualClock) -> None:
        """After the TTL the image URL answers 404 saying the image expired."""
        emulator = Emulator(clock=clock, latency=LATENCY, image_ttl=60.0)
        async with httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url) as http:
            (url,) = await finished_images(http, clock)
            assert (await http.get(url)).status_code == 200
            clock.advance(60.0)
            response = await http.get(url)
        assert response.status_code == 404
        assert "expired" in response.text

    async def test_home_page(self, http: httpx.AsyncClient) -> None:
        """GET / says what this is (handy as a readiness probe)."""
        response = await http.get("/")
        assert response.status_code == 200
        assert "PICPIK emulator" in response.text


# --- faults -------------------------------------------------------------------------


class TestFaultsBeforeProcessing:
    async def test_busy(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """Busy: RetCode 5000 with the busy message; nothing created; counted."""
        emulator.faults = Faults(busy={1})
        answer = await call(http, sdxl(request_uuid="u1"))
        assert answer == {
            "RetCode": 5000,
            "Action": "GenerateImagesSDXL",
            "Message": "Service busy, please try again later",
            "request_uuid": "u1",
        }
        assert emulator.counters.tasks_created == 0
        assert emulator.counters.faults["busy"] == 1
        await submit(http, request_uuid="u1")  # request 2 goes through

    async def test_rate_limited(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """429 with Retry-After and RetCode 2102; nothing created; counted."""
        emulator.faults = Faults(rate_limit=1.0, retry_after=3)
        response = await http.post("/", content=signed(sdxl()))
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert response.json()["RetCode"] == RetCode.RATE_LIMITED
        assert emulator.counters.tasks_created == 0
        assert emulator.counters.faults["rate_limit"] == 1

    async def test_server_error(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """503 with an HTML body; nothing created; counted."""
        emulator.faults = Faults(server_error=1.0)
        response = await http.post("/", content=signed(sdxl()))
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("text/html")
        assert "<html>" in response.text
        assert emulator.counters.tasks_created == 0
        assert emulator.counters.faults["server_error"] == 1

    async def test_slow(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """A slow answer still arrives and is counted."""
        emulator.faults = Faults(slow=1.0, slow_seconds=0.01)
        assert (await call(http, {"Action": "ListModels"}))["RetCode"] == 0
        assert emulator.counters.faults["slow"] == 1

    async def test_only_for_some_actions(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """A knob limited to some actions leaves the others alone."""
        emulator.faults = Faults(busy=Trigger(rate=1.0, actions={"ListModels"}))
        assert (await call(http, {"Action": "ListModels"}))["RetCode"] == RetCode.BUSY
        assert (await call(http, {"Action": "GetCreditBalance"}))["RetCode"] == 0

    async def test_schedule_function(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """A schedule function sees the per-action request number."""
        emulator.faults = Faults(busy=lambda n: n % 2 == 1)
        codes = [(await call(http, {"Action": "ListModels"}))["RetCode"] for _ in range(4)]
        assert codes == [RetCode.BUSY, 0, RetCode.BUSY, 0]

    async def test_rate_is_reproducible_with_a_seed(self, clock: ManualClock) -> None:
        """The same seed gives the same pattern of faults."""

        async def pattern() -> list[int]:
            emulator = Emulator(clock=clock, seed=123, faults=Faults(busy=0.5))
            transport = emulator.transport()
            async with httpx.AsyncClient(transport=transport, base_url=emulator.url) as http:
                return [(await call(http, {"Action": "ListModels"}))["RetCode"] for _ in range(20)]

        first = await pattern()
        assert first == await pattern()
        assert 0 < first.count(RetCode.BUSY) < 20


class TestFaultsAfterProcessing:
    async def test_drop_after_the_task_was_made(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """A dropped submit raises RemoteProtocolError, yet its task exists and is charged."""
        emulator.faults = Faults(drop=Trigger(schedule={1}, actions={"GenerateImagesSDXL"}))
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/", content=signed(sdxl(request_uuid="u1")))
        assert emulator.counters.tasks_created == 1
        assert emulator.counters.faults["drop"] == 1
        assert emulator.credits.used > 0
        running = await call(http, {"Action": "ListRunningTasks"})
        assert len(running["TaskUIDList"]) == 1

    async def test_drop_spares_refusals(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """A refused request is answered normally even when the drop knob fires."""
        emulator.faults = Faults(drop=1.0)
        assert (await call(http, sdxl(Width=10)))["RetCode"] == RetCode.INVALID_PARAMETER
        assert emulator.counters.faults["drop"] == 0

    @pytest.mark.parametrize("kind", list(Malformed), ids=lambda kind: kind.value)
    async def test_malformed(
        self, http: httpx.AsyncClient, emulator: Emulator, clock: ManualClock, kind: Malformed
    ) -> None:
        """Each malformed kind yields an answer the client core rejects; it is counted."""
        uid = await submit(http)
        emulator.faults = Faults(malformed=1.0, malformed_kinds=[kind])
        body = {"Action": "ListTasksDetails", "TaskUIDList": [uid]}
        response = await http.post("/", content=signed(body))
        assert response.status_code == 200
        assert emulator.counters.faults["malformed"] == 1
        with pytest.raises((ProtocolError, ValueError)):
            read_details_answer(response.content, [uid])

    async def test_malformed_submit_still_creates_the_task(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """RetCode 0 without TaskUID: the task was made all the same."""
        emulator.faults = Faults(malformed=1.0, malformed_kinds="no_result")
        answer = await call(http, sdxl())
        assert answer["RetCode"] == 0
        assert "TaskUID" not in answer
        assert emulator.counters.tasks_created == 1

    async def test_task_failure(
        self, http: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
    ) -> None:
        """A failed task ends in Error with ErrorCode and ErrorMassage (sic), and no images."""
        emulator.faults = Faults(task_failure=1.0, failure=Failure(3100, "GPU on fire"))
        uid = await submit(http)
        clock.advance(LATENCY)
        (detail,) = await details(http, uid)
        assert detail["Status"] == "Error"
        assert (detail["ErrorCode"], detail["ErrorMassage"]) == (3100, "GPU on fire")
        assert detail["ImgList"] == []
        assert emulator.counters.faults["task_failure"] == 1

    async def test_list_length_limit(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """A TaskUIDList over the limit is refused with 230 and counted; at the limit it passes."""
        emulator.faults = Faults(max_list_length=2)
        answer = await call(http, {"Action": "ListTasksDetails", "TaskUIDList": ["a", "b", "c"]})
        assert answer["RetCode"] == RetCode.LIST_TOO_LONG
        assert answer["Message"] == "TaskUIDList has 3 entries, at most 2 allowed"
        assert await details(http, "a", "b") == []
        assert emulator.counters.faults["list_too_long"] == 1


# --- counters -----------------------------------------------------------------------


class TestCounters:
    async def test_requests_and_list_lengths(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """Requests are counted per action; every ListTasksDetails list length is kept."""
        uid = await submit(http)
        await details(http, uid)
        await details(http, uid, "x", "y")
        await call(http, {"Action": "ListTasksDetails", "TaskUIDList": []})
        await call(http, {"Action": "ListModels"}, private_key="bad")
        counters = emulator.counters
        assert counters.requests == {
            "GenerateImagesSDXL": 1,
            "ListTasksDetails": 3,
            "ListModels": 1,
        }
        assert counters.list_lengths == [1, 3, 0]
        assert counters.tasks_created == 1

    async def test_request_uuid_reuse(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """Reused request_uuids are counted, with how many tasks each made."""
        emulator.faults = Faults(busy={1})
        await call(http, sdxl(request_uuid="u1"))  # busy: nothing made
        await submit(http, request_uuid="u1")
        await submit(http, request_uuid="u2")
        await submit(http, request_uuid="u2")  # the emulator does not dedupe by default
        counters = emulator.counters
        assert counters.reused_request_uuids == 2
        assert counters.tasks_per_request_uuid == {"u1": 1, "u2": 2}
        assert counters.duplicate_tasks() == {"u2": 2}

    async def test_dedupe(self, clock: ManualClock) -> None:
        """With dedupe_request_uuid a repeated submit answers the first TaskUID."""
        emulator = Emulator(clock=clock, dedupe_request_uuid=True)
        async with httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url) as http:
            first = await submit(http, request_uuid="u1")
            again = await submit(http, request_uuid="u1")
        assert first == again
        assert emulator.counters.tasks_created == 1
        assert emulator.counters.duplicate_tasks() == {}

    async def test_reset(self, http: httpx.AsyncClient, emulator: Emulator) -> None:
        """reset() clears counters, not tasks; schedules count again from 1."""
        uid = await submit(http)
        emulator.counters.reset()
        assert emulator.counters.requests == {}
        assert [d["TaskUID"] for d in await details(http, uid)] == [uid]
        assert emulator.counters.requests == {"ListTasksDetails": 1}


class TestModuleStructure:
    """How the emulator's modules depend on each other (read from their source)."""

    PACKAGE = Path(testing_package.__file__).parent

    def modules(self) -> dict[str, ast.Module]:
        """Each module of `picpik_async.testing`, parsed."""
        return {
            path.stem: ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted(self.PACKAGE.glob("*.py"))
        }

    def test_no_import_cycle(self) -> None:
        """The modules import each other without a cycle, TYPE_CHECKING imports included."""
        graph = {
            name: {
                node.module
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
            }
            for name, tree in self.modules().items()
        }
        order = graphlib.TopologicalSorter(graph)
        order.prepare()  # raises graphlib.CycleError on a cycle

    def test_app_does_not_import_the_emulator(self) -> None:
        """`_app` is handed the emulator's request path; it never imports `_emulator`."""
        tree = self.modules()["_app"]
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "_emulator" not in imported

    def test_no_private_names_across_modules(self) -> None:
        """No module reaches for another's `_private` names, by attribute or by import."""
        found = []
        for name, tree in self.modules().items():
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 1:
                    found += [f"{name}: {a.name}" for a in node.names if a.name.startswith("_")]
                if isinstance(node, ast.Attribute) and self.is_foreign_private(node):
                    found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
        assert found == []

    @staticmethod
    def is_foreign_private(node: ast.Attribute) -> bool:
        """`x._name` where `x` is not `self` or `cls` (dunders are not private)."""
        if not node.attr.startswith("_") or node.attr.startswith("__"):
            return False
        owner = node.value
        return not (isinstance(owner, ast.Name) and owner.id in ("self", "cls"))

    def test_doctests(self) -> None:
        """The examples of the app and emulator modules run."""
        from picpik_async.testing import _app, _emulator

        for module in (_app, _emulator):
            result = doctest.testmod(module)
            assert result.attempted > 0
            assert result.failed == 0
