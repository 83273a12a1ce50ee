"""The action methods of `AsyncClient`: every PICPIK action beyond SDXL (issue 8).

I/O, thin: each method turns image inputs into data URIs, builds the typed
request of `_actions.py` (validated before any I/O), submits it and waits with
the client's batched poller. `timeout` bounds the wait. Bare section numbers
are those of PICPIK's API documentation; our notes: docs/protocol.md, "Actions".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar, Unpack

from ._actions import (
    DEFAULT_MODEL,
    ApplyReferenceStyle,
    ControlNet,
    Coordinate,
    DescribeImages,
    ExtractContents,
    GenerateImages,
    GenerationOptions,
    ListControlNets,
    ListControlNetsResponse,
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
)
from ._images import ImageInput, to_data_uri
from ._models import Image2Image, Request, SubmitResponse, TaskDetail, TaskHandle
from ._results import GenerationResult

__all__ = ["ActionMethods", "needs_client", "needs_open"]

R = TypeVar("R")
T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="ActionMethods")


def needs_open(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """For methods that wait: refuse, before anything is sent, unless the client is open.

    A task submitted by a client that cannot wait would be paid for and then
    lost, so `ClientClosedError` (naming the method) comes first.
    """
    name = method.__name__

    @functools.wraps(method)
    async def checked(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        self._check_usable(name, waits=True)
        return await method(self, *args, **kwargs)

    return checked


def needs_client(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """For methods that only send: refuse with `ClientClosedError` once the client is closed."""
    name = method.__name__

    @functools.wraps(method)
    async def checked(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        self._check_usable(name, waits=False)
        return await method(self, *args, **kwargs)

    return checked


class ActionMethods:
    """Mixed into `AsyncClient`, which provides the primitives below."""

    def _check_usable(self, method: str, *, waits: bool) -> None:
        raise NotImplementedError

    async def call(self, request: Request[R], *, request_uuid: str | None = None) -> R:
        raise NotImplementedError

    async def submit_tasks(
        self, request: Request[SubmitResponse], *, request_uuid: str | None = None
    ) -> list[TaskHandle]:
        raise NotImplementedError

    async def submit_and_wait(
        self,
        request: Request[SubmitResponse],
        timeout: float | None = None,
        *,
        prompt: str | None = None,
    ) -> GenerationResult:
        raise NotImplementedError

    async def wait(
        self,
        task: str | TaskHandle,
        timeout: float | None = None,
        *,
        prompt: str | None = None,
        on_update: Callable[[TaskDetail], object] | None = None,
    ) -> GenerationResult:
        raise NotImplementedError

    @needs_open
    async def generate_sd15(
        self,
        prompt: str,
        *,
        images: Sequence[ImageInput] = (),
        image2image: Image2Image | None = None,
        control_nets: Sequence[ControlNet] = (),
        tileable: bool | None = None,
        timeout: float | None = None,
        **options: Unpack[GenerationOptions],
    ) -> GenerationResult:
        """Generate with an SD1.5 model, optionally with ControlNets (GenerateImages, 3.3).

        `images` become `ImageAndMaskList`; `image2image` and each `ControlNet`
        point into it by index.

        Example:
            >>> # result = await client.generate_sd15("a cat", images=["pose.png"],
            >>> #     control_nets=[ControlNet(image_index=0)], width=768, seed=7)
        """
        request = GenerateImages(
            **generation_fields(prompt, options, default_model=DEFAULT_MODEL),
            image_and_mask_list=[await to_data_uri(i) for i in images] or None,
            image2image=image2image,
            control_net_list=list(control_nets) or None,
            tileable=tileable,
        )
        return await self.submit_and_wait(request, timeout, prompt=prompt)

    @needs_open
    async def upscale(
        self, image: ImageInput, *, width: int, height: int, timeout: float | None = None
    ) -> GenerationResult:
        """Resize an image to width x height (64..4096) with AI detail (ResizeImage, 3.14).

        Example:
            >>> # result = await client.upscale("photo.png", width=2048, height=2048)
        """
        request = ResizeImage(image=await to_data_uri(image), width=width, height=height)
        return await self.submit_and_wait(request, timeout)

    @needs_open
    async def remove_background(
        self,
        image: ImageInput,
        *,
        box: Sequence[int] | None = None,
        timeout: float | None = None,
        **options: Unpack[MattingOptions],
    ) -> GenerationResult:
        """Cut out the subject, or get its mask with `only_mask=True` (RemoveBackground, 3.10).

        Example:
            >>> # result = await client.remove_background("shoe.jpg", only_mask=True)
        """
        check_options(options, MattingOptions)
        uri = await to_data_uri(image)
        request = RemoveBackground(raw_image=uri, box=box, **options)
        return await self.submit_and_wait(request, timeout)

    @needs_open
    async def remove_backgrounds(
        self,
        images: Sequence[ImageInput],
        *,
        timeout: float | None = None,
        **options: Unpack[MattingOptions],
    ) -> list[GenerationResult]:
        """RemoveBackground for many images in one request (RemoveBackgroundsInBatch, 3.11).

        Returns one result per task the service created (one, or one per image).

        Example:
            >>> # results = await client.remove_backgrounds(["a.png", "b.png"])
        """
        check_options(options, MattingOptions)
        uris = [await to_data_uri(i) for i in images]
        handles = await self.submit_tasks(RemoveBackgroundsInBatch(raw_images=uris, **options))
        return [await self.wait(handle, timeout) for handle in handles]

    @needs_open
    async def extract_contents(
        self,
        image: ImageInput,
        include_points: Sequence[Coordinate | tuple[int, int]],
        *,
        exclude_points: Sequence[Coordinate | tuple[int, int]] = (),
        timeout: float | None = None,
        **options: Unpack[MattingOptions],
    ) -> GenerationResult:
        """Cut out the content around clicked (x, y) points (ExtractContents, 3.12).

        Example:
            >>> # result = await client.extract_contents("room.png", [(72, 270)])
        """
        check_options(options, MattingOptions)
        request = ExtractContents(
            raw_image=await to_data_uri(image),
            include_point_list=as_coordinates(include_points),
            exclude_point_list=as_coordinates(exclude_points) or None,
            **options,
        )
        return await self.submit_and_wait(request, timeout)

    @needs_open
    async def remove_contents(
        self,
        image: ImageInput,
        mask: ImageInput,
        *,
        invert_mask: bool | None = None,
        mask_blur: int | None = None,
        timeout: float | None = None,
    ) -> GenerationResult:
        """Erase what the mask marks white (RemoveContents, 3.13).

        Example:
            >>> # result = await client.remove_contents("room.png", "mask.png", mask_blur=8)
        """
        raw, mask_uri = await to_data_uri(image), await to_data_uri(mask)
        request = RemoveContents(
            raw_image=raw, mask=mask_uri, invert_mask=invert_mask, mask_blur=mask_blur
        )
        return await self.submit_and_wait(request, timeout)

    @needs_open
    async def inpaint(
        self,
        image: ImageInput,
        mask: ImageInput,
        prompt: str | None = None,
        *,
        mask_fields: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **options: Unpack[GenerationOptions],
    ) -> GenerationResult:
        """Redraw the masked area of an image (ModifyMaskedPixels, 3.5).

        `ImageAndMaskList` is `[image, mask]`. The `Masked` type's fields are
        unpublished (section 4.6): pass them, by wire name, in `mask_fields`.

        Example:
            >>> # result = await client.inpaint("room.png", "mask.png", "a green sofa")
        """
        request = ModifyMaskedPixels(
            **generation_fields(prompt, options, default_model=DEFAULT_MODEL),
            masked=Mask(extra_fields=mask_fields or {}),
            image_and_mask_list=[await to_data_uri(image), await to_data_uri(mask)],
        )
        return await self.submit_and_wait(request, timeout, prompt=prompt)

    @needs_open
    async def apply_style(
        self,
        image: ImageInput,
        style_image: ImageInput,
        prompt: str | None = None,
        *,
        strength: float | None = None,
        timeout: float | None = None,
        **options: Unpack[GenerationOptions],
    ) -> GenerationResult:
        """Redraw an image in the style of another (ApplyReferenceStyle, 3.6).

        Example:
            >>> # result = await client.apply_style("room.png", "van-gogh.jpg", strength=0.6)
        """
        request = ApplyReferenceStyle(
            **generation_fields(prompt, options, default_model=DEFAULT_MODEL),
            image_list=[await to_data_uri(image), await to_data_uri(style_image)],
            raw_image_index=0,
            style_image_index=1,
            style_refer_strength=strength,
        )
        return await self.submit_and_wait(request, timeout, prompt=prompt)

    @needs_open
    async def restore_faces(
        self, image: ImageInput, *, strength: float | None = None, timeout: float | None = None
    ) -> GenerationResult:
        """Repair deformed faces, strength 0..1 (RestoreFaces, 3.15).

        Example:
            >>> # result = await client.restore_faces("portrait.png", strength=0.8)
        """
        request = RestoreFaces(raw_image=await to_data_uri(image), restore_strength=strength)
        return await self.submit_and_wait(request, timeout)

    @needs_open
    async def swap_face(
        self,
        image: ImageInput,
        new_face: ImageInput,
        *,
        face_index: int | None = None,
        timeout: float | None = None,
    ) -> GenerationResult:
        """Replace a face (1-based `face_index`, 1..100) with another (SwitchFace, 3.16).

        Example:
            >>> # result = await client.swap_face("group.png", "me.png", face_index=2)
        """
        raw, face = await to_data_uri(image), await to_data_uri(new_face)
        request = SwitchFace(raw_image=raw, new_face_image=face, raw_face_index=face_index)
        return await self.submit_and_wait(request, timeout)

    @needs_open
    async def describe(
        self, *images: ImageInput, language: str | None = None, timeout: float | None = None
    ) -> list[str]:
        """Describe images in words; returns the texts (DescribeImages, 3.17).

        `language` is an output language code of section 3.17: en zh ja ko fr es it de
        tr ru pt vi id th ms (the service default is `en`).

        Example:
            >>> # texts = await client.describe("cat.png", language="fr")
        """
        uris = [await to_data_uri(image) for image in images]
        request = DescribeImages(image_list=uris, translate_description=language)
        return list((await self.submit_and_wait(request, timeout)).texts)

    @needs_client
    async def list_control_nets(self) -> ListControlNetsResponse:
        """The ControlNet models and pre-processors, keyed by name (ListControlNets, 3.2).

        Example:
            >>> # catalogue = await client.list_control_nets()
        """
        return await self.call(ListControlNets())
