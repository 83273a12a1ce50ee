"""Tests for picpik_async._protocol: signed bodies, answers to models or errors, lost answers."""

from __future__ import annotations

import doctest
import email.utils
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from doctests import run_doctests
from hypothesis import given
from hypothesis import strategies as st

from picpik_async import _protocol as protocol_module
from picpik_async._actions import (
    GenerateImagesSDXL,
    GetCreditBalance,
    ListModels,
    ListRunningTasks,
    ListTasksDetails,
)
from picpik_async._errors import (
    APIError,
    AuthenticationError,
    ProtocolError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TransportError,
)
from picpik_async._models import (
    CreditBalance,
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
from picpik_async._protocol import (
    MAX_RESPONSE_BYTES,
    build_body,
    garbled_answer,
    lost_answer,
    new_request_uuid,
    parse_response,
    wire_params,
)
from picpik_async._signing import sign

PUBLIC_KEY = "abcdefg"
PRIVATE_KEY = "123456"
# A private key that cannot occur by chance in a body.
DISTINCT_KEY = "pk-9d4f1c0b7e2a"
REQUEST_UUID = "ebe3bd1a-2fb6-4a85-a1bd-a5d556bf0f50"
UID_1 = "ckti5nf2h4keq8mr9n00"
UID_2 = "cktlm6lrh4miq8ng9nf0"
SUBMIT = GenerateImagesSDXL(main_model=Model("PICPIK General"), positive_prompts=["a red apple"])
READS: list[Request[Any]] = [
    ListTasksDetails([UID_1]),
    ListModels(),
    ListRunningTasks(),
    GetCreditBalance(),
]


def body_of(request: Request[Any], *, private_key: str = PRIVATE_KEY) -> dict[str, Any]:
    """The decoded signed body of a request, with the test account."""
    raw = build_body(
        request, public_key=PUBLIC_KEY, private_key=private_key, request_uuid=REQUEST_UUID
    )
    body: dict[str, Any] = json.loads(raw)
    return body


def answer(request: Request[Any], **fields: Any) -> Any:
    """Parse a 200 answer made of the common success fields plus `fields`."""
    data = {"RetCode": 0, "Action": request.action, "Message": "", "request_uuid": REQUEST_UUID}
    return parse(request, {**data, **fields})


def parse(
    request: Request[Any],
    data: object,
    *,
    status_code: int = 200,
    retry_after: str | None = None,
) -> Any:
    """Parse an answer whose body is `data` as JSON (or raw bytes)."""
    content = data if isinstance(data, bytes) else json.dumps(data).encode()
    return parse_response(
        request,
        status_code=status_code,
        content=content,
        request_uuid=REQUEST_UUID,
        retry_after=retry_after,
    )


class TestBuildBody:
    """The signed JSON body: Action, parameters, PublicKey, request_uuid and Signature."""

    # The published signing test vector V2 (docs/protocol.md, "Signing").
    v2_request = ListTasksDetails([UID_1, UID_2])
    v2_signature = "30829b10a391b2a196a6b9214e2222590d002256"
    v2_body: ClassVar[bytes] = (
        b'{"Action":"ListTasksDetails",'
        b'"TaskUIDList":["ckti5nf2h4keq8mr9n00","cktlm6lrh4miq8ng9nf0"],'
        b'"PublicKey":"abcdefg","request_uuid":"ebe3bd1a-2fb6-4a85-a1bd-a5d556bf0f50",'
        b'"Signature":"30829b10a391b2a196a6b9214e2222590d002256"}'
    )

    def test_v2_vector(self) -> None:
        """The ListTasksDetails vector V2 gives the published signature and these bytes."""
        raw = build_body(
            self.v2_request,
            public_key=PUBLIC_KEY,
            private_key=PRIVATE_KEY,
            request_uuid=REQUEST_UUID,
        )
        assert raw == self.v2_body
        assert json.loads(raw)["Signature"] == self.v2_signature

    @pytest.mark.parametrize(
        "request_",
        [
            pytest.param(SUBMIT, id="sdxl"),
            pytest.param(
                GenerateImagesSDXL(
                    main_model=Model(
                        "PICPIK General", inference_params=InferenceParams(cfg_scale=7.0, steps=20)
                    ),
                    sub_model_list=[Model("lora", inference_params=InferenceParams(lora_weight=1))],
                    image2image=Image2Image(refer_strength=0.35),
                    image_and_mask_list=["data:image/png;base64,AAAA"],
                ),
                id="sdxl-nested",
            ),
            *(pytest.param(r, id=r.action) for r in READS),
        ],
    )
    def test_common_fields_and_signature(self, request_: Request[Any]) -> None:
        """The body has the common fields and signs everything else with the private key."""
        body = body_of(request_)
        assert body["Action"] == request_.action
        assert body["PublicKey"] == PUBLIC_KEY
        assert body["request_uuid"] == REQUEST_UUID
        unsigned = {key: value for key, value in body.items() if key != "Signature"}
        assert body["Signature"] == sign(unsigned, PRIVATE_KEY)
        assert unsigned == {
            "Action": request_.action,
            **wire_params(request_),
            "PublicKey": PUBLIC_KEY,
            "request_uuid": REQUEST_UUID,
        }

    def test_none_is_dropped(self) -> None:
        """Unset optional fields are not sent at any depth (docs/protocol.md, "Request values")."""
        request = GenerateImagesSDXL(
            main_model=Model("m", inference_params=InferenceParams(cfg_scale=7.5)),
            image2image=Image2Image(),
            image_and_mask_list=["data:image/png;base64,AAAA"],
        )
        body = body_of(request)
        assert body["MainModel"] == {"ModelCode": "m", "InferenceParams": {"CFGScale": 7.5}}
        assert body["Image2Image"] == {"ImageIndex": 0, "ReferStrength": 0.5}
        assert b"null" not in build_body(
            request, public_key=PUBLIC_KEY, private_key=PRIVATE_KEY, request_uuid=REQUEST_UUID
        )

    def test_image_and_mask_list_always_sent(self) -> None:
        """ImageAndMaskList is marked required by the docs, so it is sent as [] when empty."""
        body = body_of(SUBMIT)
        assert body["ImageAndMaskList"] == []
        assert body["SubModelList"] == body["NegativePrompts"] == []

    def test_float_sent_as_signed(self) -> None:
        """An integral float is sent as an integer, exactly as it is signed."""
        request = GenerateImagesSDXL(
            main_model=Model("m", inference_params=InferenceParams(cfg_scale=7.0))
        )
        raw = build_body(
            request, public_key=PUBLIC_KEY, private_key=PRIVATE_KEY, request_uuid=REQUEST_UUID
        )
        assert b'"CFGScale":7}' in raw

    @pytest.mark.parametrize(
        "request_",
        [pytest.param(SUBMIT, id="sdxl"), *(pytest.param(r, id=r.action) for r in READS)],
    )
    def test_private_key_never_in_body(self, request_: Request[Any]) -> None:
        """The private key only enters the hash, never the body."""
        raw = build_body(
            request_, public_key=PUBLIC_KEY, private_key=DISTINCT_KEY, request_uuid=REQUEST_UUID
        )
        assert DISTINCT_KEY.encode() not in raw
        assert json.loads(raw)["Signature"] != body_of(request_)["Signature"]

    @given(
        private_key=st.text(min_size=8, max_size=40).filter(str.isalnum),
        prompts=st.lists(st.text(max_size=20), max_size=3),
        seed=st.integers(-1, 2_147_483_647),
    )
    def test_signature_property(self, private_key: str, prompts: list[str], seed: int) -> None:
        """For any key and parameters, the Signature signs the rest of the body with that key."""
        request = GenerateImagesSDXL(
            main_model=Model("PICPIK General"), positive_prompts=prompts, seed=seed
        )
        body = body_of(request, private_key=private_key)
        signature = body.pop("Signature")
        assert signature == sign(body, private_key)
        assert len(signature) == 40

    def test_wire_params(self) -> None:
        """wire_params is the action's own parameters, without the common fields."""
        assert wire_params(ListModels()) == {}
        assert wire_params(ListTasksDetails([UID_1])) == {"TaskUIDList": [UID_1]}
        assert "Action" not in wire_params(SUBMIT)

    def test_new_request_uuid(self) -> None:
        """A fresh lower-case UUID4 each time."""
        first, second = new_request_uuid(), new_request_uuid()
        assert first != second
        assert uuid.UUID(first).version == 4
        assert first == first.lower() == str(uuid.UUID(first))


class TestSuccess:
    """A RetCode 0 answer becomes the request's response model."""

    def test_submit(self) -> None:
        """A submit answer gives its TaskUID."""
        assert answer(SUBMIT, TaskUID=UID_1) == SubmitResponse(UID_1)

    def test_list_tasks_details(self) -> None:
        """A ListTasksDetails answer gives the TaskDetails."""
        detail = {
            "TaskUID": UID_1,
            "Action": "GenerateImagesSDXL",
            "Status": "Finished",
            "ImgList": ["https://example.invalid/1.png"],
            "Seed": 42,
            "ConsumeApiPoint": 6,
            "ErrorCode": 0,
            "ErrorMassage": "",
        }
        result = answer(ListTasksDetails([UID_1]), TaskDetailList=[detail])
        assert result == ListTasksDetailsResponse(
            (
                TaskDetail(
                    task_uid=UID_1,
                    status="Finished",
                    action="GenerateImagesSDXL",
                    img_list=("https://example.invalid/1.png",),
                    seed=42,
                    consume_api_point=6,
                ),
            )
        )

    def test_list_models(self) -> None:
        """A ListModels answer gives the models keyed by name."""
        general = {"Name": "General", "ModelCode": "PICPIK General", "IsOfficial": True}
        result = answer(ListModels(), MainModels={"General": general})
        assert result == ListModelsResponse(
            main_models={"General": Model("PICPIK General", name="General", is_official=True)}
        )

    def test_list_running_tasks(self) -> None:
        """The documented ListRunningTasks example reads (docs/protocol.md, "Actions")."""
        data = {
            "Action": "ListRunningTasks",
            "RetCode": 0,
            "Message": "",
            "request_uuid": REQUEST_UUID,
            "TaskUIDList": ["taskUId1"],
        }
        assert parse(ListRunningTasks(), data) == ListRunningTasksResponse(("taskUId1",))

    def test_credit_balance(self) -> None:
        """The documented GetCreditBalance example reads (docs/protocol.md, "Credits")."""
        result = answer(
            GetCreditBalance(), TotalCredits=804000, UsedCredits=4641, ExpireTimestamp=1727331226
        )
        assert result == CreditBalance(
            total_credits=804000, used_credits=4641, expire_timestamp=1727331226
        )

    @pytest.mark.parametrize(
        "echoed",
        [
            pytest.param("", id="empty"),
            pytest.param("RestoreFaces", id="wrong-action"),
            pytest.param("ListModelsResponse", id="ucloud-convention"),
        ],
    )
    def test_echoed_action_is_ignored(self, echoed: str) -> None:
        """The echoed Action is unreliable (docs/protocol.md, "Answers and HTTP statuses")."""
        assert answer(ListModels(), Action=echoed, MainModels={}) == ListModelsResponse(
            main_models={}
        )

    @pytest.mark.parametrize(
        "echo",
        [
            pytest.param(REQUEST_UUID.upper(), id="upper-case"),
            pytest.param(None, id="absent"),
            pytest.param("", id="empty"),
        ],
    )
    def test_request_uuid_echo_accepted(self, echo: str | None) -> None:
        """A matching echo in any case, or none at all, is accepted."""
        data: dict[str, Any] = {"RetCode": 0, "TaskUIDList": []}
        if echo is not None:
            data["request_uuid"] = echo
        assert parse(ListRunningTasks(), data) == ListRunningTasksResponse(())

    def test_body_of_the_maximum_size(self) -> None:
        """An answer exactly MAX_RESPONSE_BYTES long is still read."""
        content = json.dumps({"RetCode": 0, "TaskUIDList": []}).encode()
        content += b" " * (MAX_RESPONSE_BYTES - len(content))
        assert parse(ListRunningTasks(), content) == ListRunningTasksResponse(())


class TestRetCode:
    """A non-zero RetCode raises the classified APIError with the call's context."""

    @pytest.mark.parametrize(
        ("ret_code", "message", "cls", "retryable"),
        [
            pytest.param(
                171, "Signature verification failed", AuthenticationError, False, id="auth"
            ),
            pytest.param(160, "Params [Width] not available", APIError, False, id="param"),
            pytest.param(2101, "Insufficient credits", APIError, False, id="credits"),
            pytest.param(2102, "Too many requests", RateLimitError, True, id="rate-limit"),
            pytest.param(5000, "Server busy", APIError, True, id="busy"),
            pytest.param(9999, "", APIError, True, id="unknown"),
        ],
    )
    def test_classified(
        self, ret_code: int, message: str, cls: type[APIError], retryable: bool
    ) -> None:
        """The error has the class, retryability, code, message, action and request_uuid."""
        with pytest.raises(APIError) as caught:
            answer(SUBMIT, RetCode=ret_code, Message=message, Action="SomethingElse")
        error = caught.value
        assert type(error) is cls
        assert error.retryable is retryable
        assert (error.ret_code, error.message) == (ret_code, message)
        assert (error.action, error.request_uuid) == ("GenerateImagesSDXL", REQUEST_UUID)
        assert error.http_status is None
        assert PRIVATE_KEY not in str(error)

    def test_rate_limit_code_has_no_retry_after(self) -> None:
        """A throttling RetCode in a 200 answer carries no Retry-After."""
        with pytest.raises(RateLimitError) as caught:
            answer(ListModels(), RetCode=2102, Message="")
        assert caught.value.retry_after is None

    def test_error_answer_needs_no_task_uid(self) -> None:
        """A refused submit has no TaskUID, and that is not a protocol error."""
        with pytest.raises(APIError, match="RetCode 160"):
            answer(SUBMIT, RetCode=160, Message="bad")

    def test_message_may_be_absent(self) -> None:
        """A failure without a Message still raises the APIError."""
        with pytest.raises(APIError) as caught:
            parse(ListModels(), {"RetCode": 5000})
        assert caught.value.message == ""


class TestHttpErrors:
    """Non-2xx answers become APIErrors whatever their body."""

    def test_429_with_retry_after_seconds(self) -> None:
        """HTTP 429 is a RateLimitError carrying the Retry-After seconds."""
        with pytest.raises(RateLimitError) as caught:
            parse(ListModels(), b"<html>slow down</html>", status_code=429, retry_after="3")
        error = caught.value
        assert error.retry_after == 3.0
        assert (error.http_status, error.retryable, error.ret_code) == (429, True, None)
        assert error.message == "too many requests"
        assert (error.action, error.request_uuid) == ("ListModels", REQUEST_UUID)

    def test_429_with_retry_after_date(self) -> None:
        """An HTTP-date Retry-After becomes the seconds until that date."""
        when = datetime.now(UTC) + timedelta(seconds=120)
        header = email.utils.format_datetime(when, usegmt=True)
        with pytest.raises(RateLimitError) as caught:
            parse(ListModels(), b"", status_code=429, retry_after=header)
        assert caught.value.retry_after == pytest.approx(120, abs=5)

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param(None, id="absent"),
            pytest.param("soon", id="garbage"),
            pytest.param("", id="empty"),
        ],
    )
    def test_429_without_usable_retry_after(self, header: str | None) -> None:
        """Without a usable Retry-After, retry_after is None (the backoff decides)."""
        with pytest.raises(RateLimitError) as caught:
            parse(ListModels(), b"", status_code=429, retry_after=header)
        assert caught.value.retry_after is None

    def test_429_with_json_body(self) -> None:
        """A JSON 429 body lends its Message and RetCode to the error."""
        data = {"RetCode": 2102, "Message": "Rate limit exceeded"}
        with pytest.raises(RateLimitError) as caught:
            parse(SUBMIT, data, status_code=429)
        assert (caught.value.ret_code, caught.value.message) == (2102, "Rate limit exceeded")

    @pytest.mark.parametrize("status_code", [500, 502, 503, 504])
    def test_5xx_html(self, status_code: int) -> None:
        """A 5xx HTML page is a retryable APIError named after its status."""
        with pytest.raises(APIError) as caught:
            parse(ListModels(), b"<html><h1>Bad Gateway</h1></html>", status_code=status_code)
        error = caught.value
        assert type(error) is APIError
        assert error.retryable is True
        assert (error.http_status, error.ret_code) == (status_code, None)
        assert error.message == f"HTTP {status_code}"
        assert (error.action, error.request_uuid) == ("ListModels", REQUEST_UUID)

    def test_5xx_json(self) -> None:
        """A 5xx JSON body lends its RetCode and Message to the error."""
        with pytest.raises(APIError) as caught:
            parse(ListModels(), {"RetCode": 5000, "Message": "busy"}, status_code=503)
        assert (caught.value.ret_code, caught.value.message) == (5000, "busy")
        assert caught.value.retryable is True

    @pytest.mark.parametrize(
        ("status_code", "body", "cls", "retryable"),
        [
            pytest.param(401, b"Unauthorized", AuthenticationError, False, id="401"),
            pytest.param(403, b"", AuthenticationError, False, id="403"),
            pytest.param(400, b"<html/>", APIError, False, id="400"),
            pytest.param(404, b"not found", APIError, False, id="404"),
            pytest.param(
                400, b'{"RetCode": true, "Message": 5}', APIError, False, id="400-odd-json"
            ),
        ],
    )
    def test_other_statuses(
        self, status_code: int, body: bytes, cls: type[APIError], retryable: bool
    ) -> None:
        """Other statuses are classified by the HTTP status."""
        with pytest.raises(APIError) as caught:
            parse(ListModels(), body, status_code=status_code)
        assert type(caught.value) is cls
        assert caught.value.retryable is retryable
        assert caught.value.ret_code is None
        assert caught.value.message == f"HTTP {status_code}"


class TestGarbledAnswers:
    """2xx answers that do not fit the contract raise ProtocolError."""

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param(b"<html><body>OK</body></html>", id="html"),
            pytest.param(b"", id="empty"),
            pytest.param(b"\xff\xfe\xfa", id="not-utf8"),
            pytest.param(b'{"RetCode": 0', id="truncated"),
            pytest.param(b"[]", id="array"),
            pytest.param(b'"RetCode"', id="string"),
            pytest.param(b"0", id="number"),
            pytest.param(b"null", id="null"),
        ],
    )
    def test_not_a_json_object(self, content: bytes) -> None:
        """A 200 answer that is not a JSON object is a ProtocolError naming the action."""
        with pytest.raises(ProtocolError, match="ListModels answer is not a JSON object"):
            parse(ListModels(), content)

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param({"Message": "", "TaskUIDList": []}, id="ret-code-missing"),
            pytest.param({"RetCode": "0", "TaskUIDList": []}, id="ret-code-string"),
            pytest.param({"RetCode": None, "TaskUIDList": []}, id="ret-code-null"),
            pytest.param({"RetCode": 0.0, "TaskUIDList": []}, id="ret-code-float"),
            pytest.param({"RetCode": 0, "Message": 5, "TaskUIDList": []}, id="message-int"),
            pytest.param({"RetCode": 0, "request_uuid": 7, "TaskUIDList": []}, id="uuid-int"),
        ],
    )
    def test_bad_envelope(self, data: dict[str, Any]) -> None:
        """A missing or mistyped envelope field is a ProtocolError."""
        with pytest.raises(ProtocolError, match="Envelope"):
            parse(ListRunningTasks(), data)

    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param({}, id="missing"),
            pytest.param({"TaskUID": None}, id="null"),
            pytest.param({"TaskUID": 42}, id="int"),
        ],
    )
    def test_success_without_task_uid(self, fields: dict[str, Any]) -> None:
        """A RetCode 0 submit answer without a TaskUID is a ProtocolError."""
        with pytest.raises(ProtocolError, match="SubmitResponse"):
            answer(SUBMIT, **fields)

    def test_success_with_bad_payload(self) -> None:
        """A RetCode 0 answer whose payload has the wrong shape is a ProtocolError."""
        with pytest.raises(ProtocolError, match="ListTasksDetailsResponse"):
            answer(ListTasksDetails([UID_1]), TaskDetailList={"TaskUID": UID_1})

    def test_request_uuid_mismatch(self) -> None:
        """An answer echoing another request_uuid is not ours."""
        other = "00000000-0000-4000-8000-000000000000"
        with pytest.raises(ProtocolError, match="echoes request_uuid") as caught:
            answer(SUBMIT, request_uuid=other, TaskUID=UID_1)
        assert other in str(caught.value)
        assert REQUEST_UUID in str(caught.value)

    def test_too_large(self) -> None:
        """An answer larger than MAX_RESPONSE_BYTES is refused before it is decoded."""
        content = b" " * (MAX_RESPONSE_BYTES + 1)
        with pytest.raises(ProtocolError, match="larger than"):
            parse(ListModels(), content)

    def test_too_large_even_for_errors(self) -> None:
        """The size limit applies to error statuses too."""
        with pytest.raises(ProtocolError, match="larger than"):
            parse(ListModels(), b" " * (MAX_RESPONSE_BYTES + 1), status_code=502)


class TestLostAnswer:
    """A request whose answer never arrived: unknown outcome for a sent submit only."""

    def test_sent_submit(self) -> None:
        """A sent submit may have created a task: SubmitOutcomeUnknownError with request_uuid."""
        error = lost_answer(SUBMIT, request_uuid=REQUEST_UUID, sent=True, reason="read timeout")
        assert isinstance(error, SubmitOutcomeUnknownError)
        assert (error.request_uuid, error.action) == (REQUEST_UUID, "GenerateImagesSDXL")
        assert "read timeout" in str(error)
        assert REQUEST_UUID in str(error)

    def test_unsent_submit(self) -> None:
        """A submit that never left is a plain TransportError: nothing was created."""
        error = lost_answer(SUBMIT, request_uuid=REQUEST_UUID, sent=False, reason="connect failed")
        assert type(error) is TransportError
        assert str(error) == (
            f"GenerateImagesSDXL never sent: connect failed (request_uuid={REQUEST_UUID})"
        )

    @pytest.mark.parametrize(
        "sent", [pytest.param(True, id="sent"), pytest.param(False, id="unsent")]
    )
    @pytest.mark.parametrize("request_", [pytest.param(r, id=r.action) for r in READS])
    def test_read(self, request_: Request[Any], sent: bool) -> None:
        """A read action's lost answer is a plain TransportError, sent or not."""
        error = lost_answer(request_, request_uuid=REQUEST_UUID, sent=sent, reason="reset")
        assert type(error) is TransportError
        where = "answer lost" if sent else "never sent"
        assert str(error) == f"{request_.action} {where}: reset (request_uuid={REQUEST_UUID})"


class TestGarbledAnswer:
    """An unreadable answer: unknown outcome for a submit, the ProtocolError otherwise."""

    def test_submit(self) -> None:
        """A garbled submit answer may hide a created task."""
        cause = ProtocolError("answer does not fit SubmitResponse")
        error = garbled_answer(SUBMIT, cause, request_uuid=REQUEST_UUID)
        assert isinstance(error, SubmitOutcomeUnknownError)
        assert error.request_uuid == REQUEST_UUID
        assert error.action == "GenerateImagesSDXL"
        assert error.__cause__ is cause
        assert "answer does not fit SubmitResponse" in str(error)

    @pytest.mark.parametrize("request_", [pytest.param(r, id=r.action) for r in READS])
    def test_read(self, request_: Request[Any]) -> None:
        """A garbled read answer is just the ProtocolError itself."""
        cause = ProtocolError("garbled")
        assert garbled_answer(request_, cause, request_uuid=REQUEST_UUID) is cause


def test_docstring_examples() -> None:
    """The examples in the module's docstrings run and give the answers shown."""
    result = run_doctests(protocol_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3
    assert result.failed == 0
