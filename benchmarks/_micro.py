"""Micro-benchmarks of the pure core: signing and the converter, against a hand-written baseline.

The baseline is the least a correct client must do for the same request: build
the wire dict by hand, sign it with a minimal recursive encoder and hashlib, and
write it with ``json.dumps``. It is checked against the library (same signature,
same JSON value) before anything is timed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import timeit
from collections.abc import Callable
from typing import Any

import attrs

from picpik_async import GenerateImagesSDXL, Image2Image, InferenceParams, Model, sign
from picpik_async._protocol import build_body, wire_params
from picpik_async._signing import dumps
from picpik_async._wire import unstructure

PUBLIC_KEY = "benchmark-public"
PRIVATE_KEY = "benchmark-secret"
REQUEST_UUID = "b91fcfbe-bb35-47ce-a168-bd6252c75270"
IMAGE_BYTES = 786_432  # base64 of 768 KiB is exactly 1 MiB of text


def one_megabyte_image() -> str:
    """A data URI with 1 MiB of base64 (random bytes: nothing compresses or repeats)."""
    raw = random.Random(0).randbytes(IMAGE_BYTES)
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def full_request(image: str | None) -> GenerateImagesSDXL:
    """A GenerateImagesSDXL with every field set (the image ones only when ``image``)."""
    return GenerateImagesSDXL(
        main_model=Model(
            "PICPIK General",
            inference_params=InferenceParams(
                steps=30, sampler="Euler a", clip_skip=2, cfg_scale=7.5
            ),
        ),
        sub_model_list=[
            Model("emulator_lora_watercolor", inference_params=InferenceParams(lora_weight=0.8))
        ],
        positive_prompts=["a lighthouse at dusk, watercolor", "soft evening light"],
        negative_prompts=["blurry", "text, watermark"],
        translate_prompts=False,
        seed=42,
        width=1024,
        height=768,
        batch_size=2,
        tiling=False,
        image2image=Image2Image(image_index=0, refer_strength=0.35, resize_mode="CropAndResize")
        if image
        else None,
        image_and_mask_list=[image] if image else [],
    )


# --- the hand-written baseline -------------------------------------------------------------


def _hand_encode(parts: list[str], value: Any) -> None:
    """Append the string-to-sign encoding of docs/protocol.md "Value encoding", minimally."""
    if isinstance(value, str):
        parts.append(value)
    elif isinstance(value, bool):
        parts.append("true" if value else "false")
    elif isinstance(value, int):
        parts.append(str(value))
    elif isinstance(value, float):
        parts.append(str(int(value)) if value.is_integer() else repr(value))
    elif isinstance(value, list):
        for item in value:
            _hand_encode(parts, item)
    else:
        for key in sorted(value):
            parts.append(key)
            _hand_encode(parts, value[key])


def hand_sign(params: dict[str, Any], private_key: str) -> str:
    """Sorted keys, ``key + encode(value)``, the private key, SHA1 (section 2.1)."""
    parts: list[str] = []
    for key in sorted(params):
        if key != "Signature":
            parts.append(key)
            _hand_encode(parts, params[key])
    parts.append(private_key)
    return hashlib.sha1("".join(parts).encode(), usedforsecurity=False).hexdigest()


def _hand_params(params: InferenceParams | None) -> dict[str, Any] | None:
    if params is None:
        return None
    names = {
        "steps": "Steps",
        "sampler": "Sampler",
        "clip_skip": "ClipSkip",
        "cfg_scale": "CFGScale",
        "lora_weight": "LoraWeight",
    }
    return {
        wire: getattr(params, name)
        for name, wire in names.items()
        if getattr(params, name) is not None
    }


def _hand_model(model: Model) -> dict[str, Any]:
    wire: dict[str, Any] = {"ModelCode": model.model_code}
    params = _hand_params(model.inference_params)
    if params is not None:
        wire["InferenceParams"] = params
    return wire


def hand_wire(request: GenerateImagesSDXL) -> dict[str, Any]:
    """The wire dict of a GenerateImagesSDXL, written out field by field."""
    wire: dict[str, Any] = {
        "MainModel": _hand_model(request.main_model),
        "SubModelList": [_hand_model(m) for m in request.sub_model_list],
        "PositivePrompts": list(request.positive_prompts),
        "NegativePrompts": list(request.negative_prompts),
        "TranslatePrompts": request.translate_prompts,
        "Seed": request.seed,
        "Width": request.width,
        "Height": request.height,
        "BatchSize": request.batch_size,
        "Tiling": request.tiling,
        "ImageAndMaskList": list(request.image_and_mask_list),
    }
    i2i = request.image2image
    if i2i is not None:
        wire["Image2Image"] = {"ImageIndex": i2i.image_index, "ReferStrength": i2i.refer_strength}
        if i2i.resize_mode is not None:
            wire["Image2Image"]["ResizeMode"] = i2i.resize_mode
    return wire


def hand_body(request: GenerateImagesSDXL) -> bytes:
    body = {"Action": request.action, **hand_wire(request)}
    body["PublicKey"] = PUBLIC_KEY
    body["request_uuid"] = REQUEST_UUID
    body["Signature"] = hand_sign(body, PRIVATE_KEY)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _ours_body(request: GenerateImagesSDXL) -> bytes:
    return build_body(
        request, public_key=PUBLIC_KEY, private_key=PRIVATE_KEY, request_uuid=REQUEST_UUID
    )


def check_baseline(request: GenerateImagesSDXL) -> dict[str, Any]:
    """Prove the baseline does the same job; return the signed wire body both time."""
    ours = json.loads(_ours_body(request))
    theirs = json.loads(hand_body(request))
    assert ours == theirs, "hand-written body differs from build_body"
    assert hand_wire(request) == wire_params(request), "hand-written wire dict differs"
    body = {key: value for key, value in ours.items() if key != "Signature"}
    assert hand_sign(body, PRIVATE_KEY) == sign(body, PRIVATE_KEY) == ours["Signature"]
    return body


# --- timing ------------------------------------------------------------------------------------


@attrs.frozen
class Row:
    """One micro-benchmark: ours and the baseline, in operations per second."""

    operation: str
    payload: str
    ours: float
    baseline: float

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline


def ops_per_second(fn: Callable[[], object], repeats: int, budget: float) -> float:
    """Best of ``repeats`` timeit runs, each at least ``budget`` seconds long."""
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < budget:  # like Timer.autorange, with our own budget
        number *= 2
    best = min(timer.repeat(repeat=repeats, number=number))
    return number / best


def run(*, quick: bool) -> list[Row]:
    repeats, budget = (3, 0.05) if quick else (7, 0.2)
    rows: list[Row] = []
    for payload, image in (("no image", None), ("1 MiB image", one_megabyte_image())):
        request = full_request(image)
        body = check_baseline(request)
        pairs: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
            (
                "sign (signed wire dict)",
                lambda b=body: sign(b, PRIVATE_KEY),
                lambda b=body: hand_sign(b, PRIVATE_KEY),
            ),
            (
                "_wire.unstructure (model -> wire)",
                lambda r=request: unstructure(r),
                lambda r=request: hand_wire(r),
            ),
            (
                "dumps (wire dict -> JSON bytes)",
                lambda b=body: dumps(b),
                lambda b=body: json.dumps(b, ensure_ascii=False, separators=(",", ":")).encode(),
            ),
            (
                "_protocol.build_body (all of it)",
                lambda r=request: _ours_body(r),
                lambda r=request: hand_body(r),
            ),
        ]
        for operation, ours, baseline in pairs:
            rows.append(
                Row(
                    operation,
                    payload,
                    ops_per_second(ours, repeats, budget),
                    ops_per_second(baseline, repeats, budget),
                )
            )
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| operation | body | picpik_async ops/s | hand-written ops/s | ours / hand |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.operation} | {r.payload} | {r.ours:,.0f} | {r.baseline:,.0f} | {r.ratio:.2f} |"
        for r in rows
    ]
    return "\n".join(lines)
