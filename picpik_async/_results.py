"""What `generate()` and `wait()` return: a finished task and its images.

Thin: the data comes from a `TaskDetail`; reading and saving go through the
client's `Downloader`.
"""

from __future__ import annotations

import os
from pathlib import Path

from attrs import field, frozen

from ._images import Downloader
from ._models import TaskDetail

__all__ = ["GeneratedImage", "GenerationResult"]


@frozen
class GeneratedImage:
    """One result image. Its URL is valid for 24 hours: save it soon.

    Example:
        >>> # inside `async with AsyncClient(...) as client:`
        >>> # result = await client.generate("a red apple")
        >>> # await result.images[0].save("apple.png")
    """

    url: str
    index: int
    task_uid: str
    _downloader: Downloader = field(repr=False, eq=False, alias="downloader")

    async def read(self) -> bytes:
        """Download the image and return its bytes."""
        return await self._downloader.read(self.url)

    async def save(self, path: str | os.PathLike[str]) -> Path:
        """Stream the image to `path` (parent folders are created) and return the path."""
        return await self._downloader.save(self.url, path)


@frozen(kw_only=True)
class GenerationResult:
    """A finished task: its TaskUID, the seed the service used, credits and images.

    Attributes:
        task_uid: the task's TaskUID.
        request_uuid: the request_uuid of the submit, when known.
        seed: the seed as the service reports it (a random one when -1 was sent).
        credits: the credits the task consumed (`ConsumeApiPoint`), when reported.
        images: the result images, in the service's order.
        texts: text results (for actions that describe images).
        detail: the raw `TaskDetail`.
        prompt: the prompt, for results of `generate()` and `generate_many()`.
    """

    task_uid: str
    request_uuid: str | None
    seed: int | None
    credits: int | None
    images: tuple[GeneratedImage, ...]
    texts: tuple[str, ...] = ()
    detail: TaskDetail = field(repr=False)
    prompt: str | None = None

    @classmethod
    def from_detail(
        cls,
        detail: TaskDetail,
        downloader: Downloader,
        *,
        request_uuid: str | None = None,
        prompt: str | None = None,
    ) -> GenerationResult:
        """Build a result from a finished task's detail."""
        images = tuple(
            GeneratedImage(url, index, detail.task_uid, downloader=downloader)
            for index, url in enumerate(detail.img_list)
        )
        return cls(
            task_uid=detail.task_uid,
            request_uuid=request_uuid,
            seed=detail.seed,
            credits=detail.consume_api_point,
            images=images,
            texts=detail.txt_list,
            detail=detail,
            prompt=prompt,
        )
