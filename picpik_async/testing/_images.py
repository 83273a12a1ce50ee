"""Placeholder result images: PNGs of the exact requested size, the same for the same task.

It also measures input images (`image_size`), for the editing actions whose
results keep their input's size.

PURE in effect (no network, no files, no event loop), but it is the one module
of the package that imports Pillow, which lives in the ``emulator`` extra.

An image is a gradient between two colours taken from a hash of the prompt,
turned by the seed and index, with the prompt, seed, index and size written
on it in Pillow's default font: obviously a placeholder, and recognisable.
Everything is drawn with whole-image operations (gradients, resize,
composite), never per-pixel Python loops, so a 1024x1024 image takes
milliseconds. A few recent images are cached: a client typically downloads
each image once, right after the task finished.

Example:
    >>> import io
    >>> from PIL import Image
    >>> png = render_png(ImageSpec("a red apple", seed=42, index=0, width=96, height=64))
    >>> Image.open(io.BytesIO(png)).size
    (96, 64)
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import re
import textwrap
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from ._state import ImageSpec

__all__ = ["image_size", "render_png"]

_CACHED_IMAGES: Final = 8
# Fast zlib level: these PNGs are throw-away test data, not worth the CPU.
_PNG_COMPRESS_LEVEL: Final = 1
# Inputs are Base64, optionally as a data URI (docs/protocol.md, "Image inputs").
_DATA_URI_PREFIX: Final = re.compile(r"data:[\w./+-]*;base64,", re.ASCII)


def image_size(image: str) -> tuple[int, int] | None:
    """The (width, height) of a Base64 or data-URI image, or None if it is not one.

    Only the header is decoded, so even a big image is measured quickly.

    Example:
        >>> png = render_png(ImageSpec("x", seed=1, index=0, width=40, height=30))
        >>> image_size("data:image/png;base64," + base64.b64encode(png).decode())
        (40, 30)
        >>> image_size("data:image/png;base64,AAAA") is None
        True
    """
    prefix = _DATA_URI_PREFIX.match(image)
    try:
        data = base64.b64decode(image[prefix.end() :] if prefix else image, validate=True)
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError):
        return None  # UnidentifiedImageError is an OSError
    return width, height


def _colour(digest: bytes, offset: int) -> tuple[int, int, int]:
    """An RGB colour from three bytes of a digest, kept away from black and white."""
    r, g, b = digest[offset : offset + 3]
    return (40 + r * 176 // 255, 40 + g * 176 // 255, 40 + b * 176 // 255)


@functools.lru_cache(maxsize=_CACHED_IMAGES)
def render_png(spec: ImageSpec) -> bytes:
    """Draw the placeholder image for ``spec`` and encode it as PNG.

    Equal specs give byte-identical PNGs (for one Pillow version).
    """
    digest = hashlib.sha256(spec.prompt.encode("utf-8", "replace")).digest()
    size = (spec.width, spec.height)
    # The seed and index pick the direction, so the images of one batch differ.
    turn = (spec.seed + spec.index) % 4
    mask = Image.linear_gradient("L").rotate(90 * turn).resize(size)
    picture = Image.composite(
        Image.new("RGB", size, _colour(digest, 0)), Image.new("RGB", size, _colour(digest, 3)), mask
    )
    _caption(picture, spec)
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return out.getvalue()


def _caption(picture: Image.Image, spec: ImageSpec) -> None:
    """Write what the image stands for on it, scaled to the image."""
    font_size = max(8, min(spec.width, spec.height) // 20)
    font = ImageFont.load_default(size=font_size)
    columns = max(8, spec.width * 2 // font_size - 2)
    prompt = textwrap.shorten(spec.prompt or "(no prompt)", width=columns * 3, placeholder="...")
    lines = [
        "PICPIK emulator placeholder",
        *textwrap.wrap(prompt, width=columns),
        f"seed {spec.seed}  image {spec.index}  {spec.width}x{spec.height}",
    ]
    margin = max(2, font_size // 2)
    ImageDraw.Draw(picture).multiline_text(
        (margin, margin),
        "\n".join(lines),
        fill="white",
        font=font,
        stroke_width=max(1, font_size // 12),
        stroke_fill="black",
    )
