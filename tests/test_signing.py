"""Tests for picpik_async._signing: known answers, encoding rules, the body, properties."""

from __future__ import annotations

import enum
import json
import math
import random
import traceback
import types
from typing import Any, ClassVar

import pytest
from doctests import run_doctests
from hypothesis import assume, given
from hypothesis import strategies as st

from picpik_async import _signing as signing_module
from picpik_async._errors import ValidationError
from picpik_async._signing import (
    _string_to_sign,
    drop_none,
    dumps,
    encode_value,
    format_float,
    sign,
)

# The account of PICPIK's published signing examples and test vectors (docs/protocol.md, "Signing").
PUBLIC_KEY = "abcdefg"
PRIVATE_KEY = "123456"


class TestKnownAnswers:
    """PICPIK's published signing examples and test vectors (docs/protocol.md, "Signing")."""

    list_models: ClassVar[dict[str, Any]] = {"Action": "ListModels", "PublicKey": PUBLIC_KEY}
    list_models_string = "ActionListModelsPublicKeyabcdefg123456"
    list_models_sha1 = "4a20bc1141494035f6aaaad13224c94c5a8bc3a5"

    start_app: ClassVar[dict[str, Any]] = {
        "Action": "StartPicpikApp",
        "PublicKey": PUBLIC_KEY,
        "AppId": "your_app_id",
    }
    start_app_string = "ActionStartPicpikAppAppIdyour_app_idPublicKeyabcdefg123456"
    start_app_sha1 = "c5e65ad1936ff695436917bf807d2281db33e7a3"

    service: ClassVar[dict[str, Any]] = {
        "prompt": "这是生成图片所需的提示词。",
        "width": 512,
        "height": 512,
        # The full-width comma is part of the vendor's example text, and of its hash.
        "refImage": "如果是图生图，此处填原图的base64字符串",  # noqa: RUF001
    }
    service_key = "ABCDEFG"
    service_string = (
        "height512prompt这是生成图片所需的提示词。"
        "refImage如果是图生图，此处填原图的base64字符串width512ABCDEFG"  # noqa: RUF001
    )
    service_sha1 = "bb4c607024f6eeb6198d070b658b2a9270fd468d"

    v1: ClassVar[dict[str, Any]] = {
        "Action": "GenerateImages",
        "PublicKey": PUBLIC_KEY,
        "request_uuid": "b91fcfbe-bb35-47ce-a168-bd6252c75270",
        "MainModel": {
            "ModelCode": "sd15_general",
            "InferenceParams": {"Steps": 20, "Sampler": "Euler a", "CFGScale": 7.5, "ClipSkip": 2},
        },
        "SubModelList": [
            {"ModelCode": "lora_watercolor", "InferenceParams": {"LoraWeight": 0.8}},
        ],
        "PositivePrompts": ["a cat sitting on a windowsill"],
        "Width": 768,
        "Height": 512,
        "BatchSize": 2,
        "Seed": -1,
    }
    v1_string = (
        "ActionGenerateImagesBatchSize2Height512MainModelInferenceParamsCFGScale7.5ClipSkip2"
        "SamplerEuler aSteps20ModelCodesd15_generalPositivePromptsa cat sitting on a windowsill"
        "PublicKeyabcdefgSeed-1SubModelListInferenceParamsLoraWeight0.8ModelCodelora_watercolor"
        "Width768request_uuidb91fcfbe-bb35-47ce-a168-bd6252c75270123456"
    )
    v1_sha1 = "141eb6ec793d7e6fbe583f84e21289b039381007"

    v2: ClassVar[dict[str, Any]] = {
        "Action": "ListTasksDetails",
        "PublicKey": PUBLIC_KEY,
        "TaskUIDList": ["ckti5nf2h4keq8mr9n00", "cktlm6lrh4miq8ng9nf0"],
        "request_uuid": "ebe3bd1a-2fb6-4a85-a1bd-a5d556bf0f50",
    }
    v2_string = (
        "ActionListTasksDetailsPublicKeyabcdefgTaskUIDListckti5nf2h4keq8mr9n00"
        "cktlm6lrh4miq8ng9nf0request_uuidebe3bd1a-2fb6-4a85-a1bd-a5d556bf0f50123456"
    )
    v2_sha1 = "30829b10a391b2a196a6b9214e2222590d002256"

    v3: ClassVar[dict[str, Any]] = {
        "Action": "ApplyReferenceStyle",
        "PublicKey": PUBLIC_KEY,
        "MainModel": {"ModelCode": "sd15_general", "InferenceParams": {"CFGScale": 7.0}},
        "StyleReferStrength": 0.35,
        "TranslatePrompts": False,
        "UseMainModelVAE": True,
        "RawImageIndex": 0,
        "StyleImageIndex": 1,
        "ImageList": ["data:image/png;base64,AAAA", "data:image/png;base64,BBBB"],
    }
    v3_string = (
        "ActionApplyReferenceStyleImageListdata:image/png;base64,AAAAdata:image/png;base64,BBBB"
        "MainModelInferenceParamsCFGScale7ModelCodesd15_generalPublicKeyabcdefgRawImageIndex0"
        "StyleImageIndex1StyleReferStrength0.35TranslatePromptsfalseUseMainModelVAEtrue123456"
    )
    v3_sha1 = "7ce4cb14f946b6fd4ce8b74d65ae5d774c21f092"

    v4: ClassVar[dict[str, Any]] = {
        "Action": "RemoveBackground",
        "PublicKey": PUBLIC_KEY,
        "RawImage": "data:image/jpeg;base64,xxx",
        "Box": [180, 264, 510, 642],
        "HairOptimization": "auto",
        "OnlyMask": True,
        "ErodeSize": 15,
    }
    v4_string = (
        "ActionRemoveBackgroundBox180264510642ErodeSize15HairOptimizationautoOnlyMasktrue"
        "PublicKeyabcdefgRawImagedata:image/jpeg;base64,xxx123456"
    )
    v4_sha1 = "7fcad5244ebc77c03a29a078e1444329b274d68c"

    v5: ClassVar[dict[str, Any]] = {
        "Action": "GenerateImages",
        "PublicKey": PUBLIC_KEY,
        "MainModel": {"ModelCode": "sd15_general"},
        "PositivePrompts": ["一只猫", "日落"],
        "TranslatePrompts": True,
    }
    v5_string = (
        "ActionGenerateImagesMainModelModelCodesd15_generalPositivePrompts一只猫日落"
        "PublicKeyabcdefgTranslatePromptstrue123456"
    )
    v5_sha1 = "a8f4641c79948f3aa80303af6937dc09baf869a5"

    vectors = (
        pytest.param(
            list_models, PRIVATE_KEY, list_models_string, list_models_sha1, id="ListModels"
        ),
        pytest.param(start_app, PRIVATE_KEY, start_app_string, start_app_sha1, id="StartPicpikApp"),
        pytest.param(service, service_key, service_string, service_sha1, id="service-chinese"),
        pytest.param(v1, PRIVATE_KEY, v1_string, v1_sha1, id="V1-nested-models"),
        pytest.param(v2, PRIVATE_KEY, v2_string, v2_sha1, id="V2-list-of-strings"),
        pytest.param(v3, PRIVATE_KEY, v3_string, v3_sha1, id="V3-floats-and-bools"),
        pytest.param(v4, PRIVATE_KEY, v4_string, v4_sha1, id="V4-list-of-ints"),
        pytest.param(v5, PRIVATE_KEY, v5_string, v5_sha1, id="V5-non-ascii"),
    )

    @pytest.mark.parametrize(("params", "private_key", "string", "sha1"), vectors)
    def test_string_to_sign(
        self, params: dict[str, Any], private_key: str, string: str, sha1: str
    ) -> None:
        """The string-to-sign matches the documented one exactly."""
        assert _string_to_sign(params, private_key) == string

    @pytest.mark.parametrize(("params", "private_key", "string", "sha1"), vectors)
    def test_signature(
        self, params: dict[str, Any], private_key: str, string: str, sha1: str
    ) -> None:
        """The signature matches the documented SHA1."""
        assert sign(params, private_key) == sha1

    @pytest.mark.parametrize(
        ("params", "sha1"),
        [
            pytest.param({"foo": "bar"}, "634edc1bb957c0d65e5ab5494cf3b7784fbc87af", id="foo"),
            pytest.param(
                {"foo": "bar", "PublicKey": "my_public_key"},
                "d4411ab30953fb0bbcb1e7313081f05e4e91a394",
                id="foo-with-public-key",
            ),
        ],
    )
    def test_ucloud_flat_vectors(self, params: dict[str, Any], sha1: str) -> None:
        """Flat requests sign exactly as UCloud's SDK signs them (§2.3)."""
        assert sign(params, "my_private_key") == sha1

    def test_signature_key_is_ignored(self) -> None:
        """A Signature already in the parameters takes no part in signing."""
        assert sign({**self.v1, "Signature": "0" * 40}, PRIVATE_KEY) == self.v1_sha1

    def test_signature_key_is_ignored_only_at_top_level(self) -> None:
        """A nested key named Signature is an ordinary parameter."""
        assert _string_to_sign({"A": {"Signature": "x"}}, "k") == "ASignaturexk"

    def test_dumps_of_vector_reads_back(self) -> None:
        """The body of a vector, with its signature, reads back equal from the JSON."""
        body = {**self.v1, "Signature": self.v1_sha1}
        assert json.loads(dumps(body)) == body


class TestEncoding:
    """The value encoding of docs/protocol.md, "Value encoding"."""

    def test_top_level_keys_sort_by_code_point(self) -> None:
        """Capitals sort before underscore, which sorts before lower case."""
        params = {"request_uuid": "u", "_x": 2, "Zeta": 1, "Alpha": 0}
        assert _string_to_sign(params, "K") == "Alpha0Zeta1_x2request_uuiduK"

    def test_none_values_are_dropped(self) -> None:
        """A None value signs the same as a missing key, at every level."""
        with_none = {
            "Action": "GenerateImages",
            "Seed": None,
            "MainModel": {"ModelCode": "m", "InferenceParams": None},
            "SubModelList": [{"ModelCode": "l", "Weight": None}],
        }
        without = {
            "Action": "GenerateImages",
            "MainModel": {"ModelCode": "m"},
            "SubModelList": [{"ModelCode": "l"}],
        }
        assert sign(with_none, PRIVATE_KEY) == sign(without, PRIVATE_KEY)
        assert sign(with_none, PRIVATE_KEY) == sign(drop_none(with_none), PRIVATE_KEY)

    def test_empty_values_emit_only_the_key(self) -> None:
        """Empty strings, lists and mappings contribute nothing after their key."""
        params = {"A": "", "B": [], "C": {}, "D": ()}
        assert _string_to_sign(params, "K") == "ABCDK"

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("data:image/png;base64,AA==", "data:image/png;base64,AA==", id="str-raw"),
            pytest.param('a "quoted" \\ text\n', 'a "quoted" \\ text\n', id="str-unescaped"),
            pytest.param(True, "true", id="true"),
            pytest.param(False, "false", id="false"),
            pytest.param(0, "0", id="zero"),
            pytest.param(-1, "-1", id="negative-int"),
            pytest.param(2147483647, "2147483647", id="int32-max"),
            pytest.param(["a", "b"], "ab", id="list-of-str"),
            pytest.param([180, 264], "180264", id="list-of-int"),
            pytest.param([[1, 2], [3]], "123", id="nested-lists-flatten"),
            pytest.param([[[]], [["x"]]], "x", id="deep-lists-flatten"),
            pytest.param(("a", 1, True), "a1true", id="tuple-like-list"),
            pytest.param({"b": 1, "a": 2}, "a2b1", id="mapping-sorted"),
            pytest.param([{"b": 1, "a": 2}, {"c": "x"}], "a2b1cx", id="list-of-objects"),
            pytest.param({"X": {"Z": None, "Y": [1.5]}}, "XY1.5", id="nested-mapping"),
            pytest.param(types.MappingProxyType({"k": "v"}), "kv", id="any-mapping"),
        ],
    )
    def test_encode_value(self, value: object, expected: str) -> None:
        """Each kind of value encodes as the table says."""
        assert encode_value(value) == expected

    def test_int_subclasses_encode_as_plain_ints(self) -> None:
        """An IntEnum member encodes as its number, not its name."""

        class Level(enum.IntEnum):
            HIGH = 3

        assert encode_value(Level.HIGH) == "3"
        assert dumps({"L": Level.HIGH}) == b'{"L":3}'

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(42.0, "42", id="integral"),
            pytest.param(7.0, "7", id="cfg-integral"),
            pytest.param(-0.0, "0", id="negative-zero"),
            pytest.param(7.5, "7.5", id="7.5"),
            pytest.param(0.35, "0.35", id="0.35"),
            pytest.param(-0.5, "-0.5", id="-0.5"),
            pytest.param(0.8, "0.8", id="0.8"),
            pytest.param(1e-05, "0.00001", id="1e-05-positional"),
            pytest.param(1.2345675e-07, "0.00000012345675", id="tiny-positional"),
            pytest.param(0.1 + 0.2, "0.30000000000000004", id="0.1+0.2"),
            pytest.param(1234567.5, "1234567.5", id="1234567.5"),
            pytest.param(1.5e16, "15000000000000000", id="large-integral"),
            pytest.param(2.0**60, "1152921504606846976", id="exact-integral"),
        ],
    )
    def test_floats(self, value: float, expected: str) -> None:
        """Floats are written without exponent, integral ones as integers."""
        assert format_float(value) == expected
        assert encode_value(value) == expected
        assert float(expected) == value


class TestEncodingErrors:
    """Values that cannot be signed are refused with a ValidationError naming the key path."""

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(math.nan, id="nan"),
            pytest.param(math.inf, id="inf"),
            pytest.param(-math.inf, id="-inf"),
        ],
    )
    def test_non_finite_floats(self, value: float) -> None:
        """NaN and infinities are refused everywhere, naming the nested key."""
        params = {"MainModel": {"InferenceParams": {"CFGScale": value}}}
        with pytest.raises(ValidationError, match=r"^MainModel\.InferenceParams\.CFGScale: "):
            sign(params, PRIVATE_KEY)
        with pytest.raises(ValidationError, match=r"^MainModel\.InferenceParams\.CFGScale: "):
            dumps(params)
        with pytest.raises(ValidationError, match="not a finite number"):
            format_float(value)
        with pytest.raises(ValueError, match=r"^value: "):
            encode_value(value)

    def test_none_inside_a_list(self) -> None:
        """A None element of a list is refused, naming its index."""
        params = {"SubModelList": [{"ModelCode": "m"}, None]}
        with pytest.raises(ValidationError, match=r"^SubModelList\[1\]: None inside a list"):
            sign(params, PRIVATE_KEY)
        with pytest.raises(ValidationError, match=r"^SubModelList\[1\]: "):
            dumps(params)

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            pytest.param({"Blob": b"abc"}, r"^Blob: .* type bytes", id="bytes"),
            pytest.param({"Tags": {"a", "b"}}, r"^Tags: .* type set", id="set"),
            pytest.param({"M": {"L": [object()]}}, r"^M\.L\[0\]: .* type object", id="nested"),
            pytest.param({"M": {1: "x"}}, r"^M: mapping keys must be str, not int", id="int-key"),
            pytest.param({2: "x"}, r"^value: mapping keys must be str", id="top-level-int-key"),
        ],
    )
    def test_unsupported_values(self, params: dict[Any, Any], message: str) -> None:
        """Types outside JSON, and non-str keys, are refused by sign and dumps."""
        with pytest.raises(ValidationError, match=message):
            sign(params, PRIVATE_KEY)
        with pytest.raises(ValidationError, match=message):
            dumps(params)

    def test_unsupported_top_level_value(self) -> None:
        """encode_value names the value itself when there is no key path."""
        with pytest.raises(ValidationError, match=r"^value: cannot sign a value of type NoneType"):
            encode_value(None)

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            pytest.param({"P": "cat\ud800"}, r"^P: text is not valid Unicode", id="value"),
            pytest.param({"L": ["ok", "\udc00"]}, r"^L\[1\]: text is not valid", id="in-list"),
            pytest.param(
                {"A": 1, "B": [2.5, True], "C": {"D": "ok"}, "P": "\ud800"},
                r"^P: text is not valid",
                id="after-other-values",
            ),
            pytest.param({"M": {"\ud800": 1}}, r"^a key in M: text is not valid", id="nested-key"),
            pytest.param({"\ud800": 1}, r"^a top-level key: text is not valid", id="top-key"),
        ],
    )
    def test_lone_surrogates(self, params: dict[str, Any], message: str) -> None:
        """Text that cannot be UTF-8 encoded is refused, naming where it sits."""
        with pytest.raises(ValidationError, match=message):
            sign(params, PRIVATE_KEY)
        with pytest.raises(ValidationError, match=message):
            dumps(params)

    def test_lone_surrogate_in_private_key(self) -> None:
        """A broken private key is reported as such, without being quoted."""
        with pytest.raises(ValidationError, match=r"^the private key: text is not valid"):
            sign({"Action": "ListModels"}, "12\ud8003456")

    def test_lone_surrogate_in_ignored_signature(self) -> None:
        """A broken Signature value is ignored by sign, but refused by dumps."""
        params = {"Action": "ListModels", "Signature": "\ud800"}
        assert sign(params, PRIVATE_KEY) == sign({"Action": "ListModels"}, PRIVATE_KEY)
        with pytest.raises(ValidationError, match=r"^Signature: text is not valid"):
            dumps(params)


class TestSecrets:
    """The private key never appears in an error, its repr or its traceback."""

    canary = "canary-private-key-must-not-leak"

    @pytest.mark.parametrize(
        ("params", "private_key"),
        [
            pytest.param({"CFGScale": math.nan}, canary, id="nan"),
            pytest.param({"L": [None]}, canary, id="none-in-list"),
            pytest.param({"Blob": b"x"}, canary, id="unsupported"),
            pytest.param({"P": "\ud800"}, canary, id="surrogate-in-value"),
            pytest.param({"P": "x"}, canary + "\ud800", id="surrogate-in-private-key"),
        ],
    )
    def test_errors_do_not_leak_the_private_key(
        self, params: dict[str, Any], private_key: str
    ) -> None:
        """Message, repr and the printed traceback chain are free of the key."""
        with pytest.raises(ValidationError) as info:
            sign(params, private_key)
        exc = info.value
        printed = "".join(traceback.format_exception(exc))
        for text in (str(exc), repr(exc), printed):
            assert self.canary not in text
        assert exc.__cause__ is None
        assert exc.__context__ is None


class TestDropNone:
    """drop_none copies a JSON-like structure without None-valued keys."""

    def test_drops_at_every_level(self) -> None:
        """None values go from every mapping, also those inside lists; order is kept."""
        body = {
            "Seed": None,
            "Action": "A",
            "MainModel": {"InferenceParams": None, "ModelCode": "m"},
            "SubModelList": ({"ModelCode": "l", "InferenceParams": {"LoraWeight": None}},),
            "Prompts": ["x", ["y"]],
        }
        expected = {
            "Action": "A",
            "MainModel": {"ModelCode": "m"},
            "SubModelList": [{"ModelCode": "l", "InferenceParams": {}}],
            "Prompts": ["x", ["y"]],
        }
        result = drop_none(body)
        assert result == expected
        assert list(result) == ["Action", "MainModel", "SubModelList", "Prompts"]

    def test_returns_a_copy(self) -> None:
        """The input is left untouched and shares no containers with the result."""
        inner = {"a": None, "b": 1}
        body = {"M": inner, "L": [inner]}
        result = drop_none(body)
        assert inner == {"a": None, "b": 1}
        assert result["M"] is not inner
        assert result["L"][0] is not inner

    def test_mapping_types_become_dicts(self) -> None:
        """Any Mapping comes back as a plain dict."""
        assert drop_none(types.MappingProxyType({"a": 1, "b": None})) == {"a": 1}

    @pytest.mark.parametrize("value", ["text", 1, 1.5, True, None])
    def test_scalars_are_returned_as_they_are(self, value: object) -> None:
        """A scalar is its own copy."""
        assert drop_none(value) is value

    def test_none_inside_a_list_is_refused(self) -> None:
        """A None list element cannot be dropped without shifting the others."""
        with pytest.raises(ValidationError, match=r"^M\.L\[2\]: None inside a list"):
            drop_none({"M": {"L": [1, 2, None]}})


class TestDumps:
    """dumps writes the JSON body that matches the signature."""

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(7.0, id="integral"),
            pytest.param(-0.0, id="negative-zero"),
            pytest.param(7.5, id="7.5"),
            pytest.param(0.35, id="0.35"),
            pytest.param(-0.5, id="-0.5"),
            pytest.param(1e-05, id="1e-05"),
            pytest.param(1.2345675e-07, id="tiny"),
            pytest.param(0.1 + 0.2, id="0.1+0.2"),
            pytest.param(1234567.5, id="1234567.5"),
            pytest.param(1e22, id="1e22"),
            pytest.param(5e-324, id="smallest-subnormal"),
        ],
    )
    def test_floats_match_the_signed_text(self, value: float) -> None:
        """A float is written byte for byte as it is signed, and reads back equal."""
        encoded = encode_value(value).encode()
        assert dumps({"F": value}) == b'{"F":' + encoded + b"}"
        assert dumps({"L": [value, value]}) == b'{"L":[' + encoded + b"," + encoded + b"]}"
        assert json.loads(dumps({"F": value}))["F"] == value

    def test_compact_and_ordered(self) -> None:
        """Separators are compact and keys keep the order they were given in."""
        body = {
            "Zeta": 1,
            "Action": "GenerateImages",
            "MainModel": {"ModelCode": "m", "InferenceParams": {"CFGScale": 7.0, "Steps": 20}},
            "SubModelList": [{"ModelCode": "l"}, {"ModelCode": "k"}],
            "Box": (1, -2),
            "Flags": [True, False],
            "Empty": [],
            "Nothing": {},
        }
        assert dumps(body) == (
            b'{"Zeta":1,"Action":"GenerateImages",'
            b'"MainModel":{"ModelCode":"m","InferenceParams":{"CFGScale":7,"Steps":20}},'
            b'"SubModelList":[{"ModelCode":"l"},{"ModelCode":"k"}],'
            b'"Box":[1,-2],"Flags":[true,false],"Empty":[],"Nothing":{}}'
        )

    def test_none_values_are_left_out(self) -> None:
        """None-valued keys are not sent, just as they are not signed."""
        body = {"A": None, "B": 1, "C": {"D": None}, "E": None}
        assert dumps(body) == b'{"B":1,"C":{}}'

    def test_non_ascii_is_kept(self) -> None:
        """Non-ASCII text is sent as UTF-8, not as \\u escapes."""
        body = {"PositivePrompts": ["一只猫", "日落"], "Ünïcödé": "😀"}
        assert dumps(body) == '{"PositivePrompts":["一只猫","日落"],"Ünïcödé":"😀"}'.encode()

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param('say "hi"', id="quotes"),
            pytest.param("C:\\path\\", id="backslashes"),
            pytest.param("line\nbreak\ttab\r", id="whitespace-controls"),
            pytest.param("\x00\x01\x1f\x7f", id="control-chars"),
            pytest.param("\u2028\u2029</script>", id="separators-and-slash"),
        ],
    )
    def test_strings_are_escaped(self, text: str) -> None:
        """Strings and keys are escaped so the JSON reads back exactly."""
        data = dumps({text: text})
        assert json.loads(data) == {text: text}
        assert b"\n" not in data
        assert b"\x00" not in data

    def test_large_string(self) -> None:
        """A multi-megabyte Base64 image goes through unchanged."""
        image = "data:image/png;base64," + "QUJD" * 1_000_000
        assert dumps({"RawImage": image}) == b'{"RawImage":"' + image.encode() + b'"}'


# --- Hypothesis properties ----------------------------------------------------------------

_KEYS = st.text(max_size=6)
_SCALARS = (
    st.text(max_size=10)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=20,
)
_PARAMS = st.dictionaries(_KEYS.filter(lambda key: key != "Signature"), _VALUES, max_size=6)

_Path = tuple[str | int, ...]


def _shuffled(value: object, rnd: random.Random) -> object:
    """Rebuild every dict of ``value`` with its keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {key: _shuffled(item, rnd) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rnd) for item in value]
    return value


def _leaf_paths(value: object, path: _Path = ()) -> list[_Path]:
    """List the paths of every scalar inside ``value``."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaf_paths(item, (*path, key))]
    if isinstance(value, list):
        return [
            leaf for index, item in enumerate(value) for leaf in _leaf_paths(item, (*path, index))
        ]
    return [path]


def _get(value: Any, path: _Path) -> Any:
    """Return the value at ``path``."""
    for step in path:
        value = value[step]
    return value


def _replaced(value: Any, path: _Path, new: object) -> Any:
    """Return a copy of ``value`` with the leaf at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], tuple(rest), new)}
    assert isinstance(head, int)
    return [*value[:head], _replaced(value[head], tuple(rest), new), *value[head + 1 :]]


def _same_json(sent: object, received: object) -> bool:
    """Compare a body with its JSON reading; an integral float may come back as an int."""
    if isinstance(sent, dict):
        return (
            isinstance(received, dict)
            and list(sent) == list(received)
            and all(_same_json(sent[key], received[key]) for key in sent)
        )
    if isinstance(sent, list):
        return (
            isinstance(received, list)
            and len(sent) == len(received)
            and all(_same_json(a, b) for a, b in zip(sent, received, strict=True))
        )
    if isinstance(sent, float) and sent.is_integer() and type(received) is int:
        return received == sent
    return type(received) is type(sent) and received == sent


class TestProperties:
    """Properties of signing and serialising that must hold for any JSON-like body."""

    @given(params=_PARAMS, rnd=st.randoms(use_true_random=False))
    def test_key_order_does_not_matter(self, params: dict[str, Any], rnd: random.Random) -> None:
        """Building the same mappings in another key order gives the same signature."""
        shuffled = _shuffled(params, rnd)
        assert isinstance(shuffled, dict)
        assert sign(shuffled, PRIVATE_KEY) == sign(params, PRIVATE_KEY)

    @given(params=_PARAMS, data=st.data())
    def test_any_changed_value_changes_the_signature(
        self, params: dict[str, Any], data: st.DataObject
    ) -> None:
        """Replacing one leaf by a value that encodes differently changes the signature."""
        leaves = [path for path in _leaf_paths(params) if path]
        assume(leaves)
        path = data.draw(st.sampled_from(leaves), label="path")
        old = _get(params, path)
        new = data.draw(_SCALARS.filter(lambda v: encode_value(v) != encode_value(old)), "new")
        changed = _replaced(params, path, new)
        assert sign(changed, PRIVATE_KEY) != sign(params, PRIVATE_KEY)

    @given(value=st.floats(allow_nan=False, allow_infinity=False))
    def test_format_float_round_trips_without_exponent(self, value: float) -> None:
        """Every finite float is written positionally and reads back as itself."""
        text = format_float(value)
        assert "e" not in text.lower()
        assert float(text) == value

    @given(body=_PARAMS)
    def test_dumps_round_trips(self, body: dict[str, Any]) -> None:
        """The JSON body reads back as the body it was made from."""
        assert _same_json(body, json.loads(dumps(body)))

    @given(body=_PARAMS)
    def test_dumps_reads_back_to_the_same_signature(self, body: dict[str, Any]) -> None:
        """What a server decodes from the body signs like what the client signed."""
        assert sign(json.loads(dumps(body)), PRIVATE_KEY) == sign(body, PRIVATE_KEY)


def test_docstring_examples() -> None:
    """The examples in the module's docstrings run and give what they show."""
    result = run_doctests(signing_module)
    assert result.attempted >= 5
    assert result.failed == 0
