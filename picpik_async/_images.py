"""Image inputs (path, bytes or data URI -> data URI) and result downloads.

I/O: reads files with anyio and downloads through the client's httpx pool, with
retries, a concurrency limit and a size limit on the decoded bytes
(`_streams.py` decodes them). Inputs are checked before any network I/O:
the MIME type is sniffed from the bytes, never taken from a file name.
"""

from __future__ import annotations

import base64
import binascii
import errno
import math
import os
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Final

import anyio
import httpx

from ._decoding import ACCEPT_ENCODING
from ._errors import (
    ClientClosedError,
    ImageExpiredError,
    ImageSaveError,
    ProtocolError,
    TransportError,
    ValidationError,
    classify_api_error,
)
from ._retry import RetryPolicy
from ._streams import AttemptDeadline, TooLateToSend, collect_body, copy_body

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "MAX_DOWNLOAD_BYTES",
    "MAX_IMAGE_BYTES",
    "Downloader",
    "ImageExpiredError",  # defined in _errors; still importable from here
    "ImageInput",
    "extension_for",
    "sniff_mime",
    "to_data_uri",
]

ImageInput = str | bytes | os.PathLike[str]

# Inline base64 images make bodies large (docs/protocol.md, "Image inputs"); the size limit
# is undocumented, so refuse inputs past a generous bound before sending them.
MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
# Result images are a few MB; past this a download is refused, counted decoded
# (a small gzip body can inflate to gigabytes).
MAX_DOWNLOAD_BYTES: Final = 64 * 1024 * 1024
#: Seconds one download attempt may take, connecting and the whole image included.
DOWNLOAD_TIMEOUT: Final = 300.0
#: Redirects an image download follows (a CDN may send one or two).
MAX_REDIRECTS: Final = 5

_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
_Sink = Callable[[httpx.Response], Awaitable[None]]
_EXTENSIONS: Final = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
}


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type of some bytes, from their magic number, or None.

    Example:
        >>> sniff_mime(b"\\x89PNG\\r\\n\\x1a\\n...")
        'image/png'
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    return None


def _bytes_to_uri(data: bytes, what: str) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError(
            f"{what} is {len(data)} bytes; images must be at most {MAX_IMAGE_BYTES} bytes"
        )
    mime = sniff_mime(data)
    if mime is None:
        raise ValidationError(f"{what} is not a PNG, JPEG, WebP, GIF or BMP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _check_data_uri(uri: str) -> str:
    header, _, payload = uri.partition(",")
    if not header.endswith(";base64") or not payload:
        raise ValidationError("image data URI must look like data:image/png;base64,<data>")
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        raise ValidationError(f"image data URI holds more than {MAX_IMAGE_BYTES} bytes")
    try:
        head = base64.b64decode(payload[:64], validate=True)
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("image data URI does not hold valid base64") from None
    mime = sniff_mime(head)
    if mime is None:
        raise ValidationError("image data URI does not hold a PNG, JPEG, WebP, GIF or BMP image")
    return f"data:{mime};base64,{payload}"


async def to_data_uri(image: ImageInput) -> str:
    """Turn an image input into the data URI the API expects.

    Args:
        image: a file path, the image's bytes, or a `data:` URI.

    Raises:
        ValidationError: not an image, unreadable, or larger than MAX_IMAGE_BYTES.

    Example:
        >>> import anyio
        >>> png = bytes.fromhex("89504e470d0a1a0a")
        >>> anyio.run(to_data_uri, png)[:22]
        'data:image/png;base64,'
    """
    if isinstance(image, bytes | bytearray | memoryview):
        return _bytes_to_uri(bytes(image), "image")
    if isinstance(image, str) and image.startswith("data:"):
        return _check_data_uri(image)
    path = anyio.Path(os.fspath(image))
    try:
        size = (await path.stat()).st_size
        if size > MAX_IMAGE_BYTES:
            raise ValidationError(
                f"image file {path} is {size} bytes; images must be at most {MAX_IMAGE_BYTES} bytes"
            )
        data = await path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"image file {path} cannot be read: {exc.strerror}") from None
    return _bytes_to_uri(data, f"image file {path}")


def extension_for(url: str) -> str:
    """The file extension of an image URL's path (`.png` when it names none we know).

    Example:
        >>> extension_for("https://cdn.example/a/b.jpg?sig=1"), extension_for("https://x/y")
        ('.jpg', '.png')
    """
    try:
        suffix = Path(httpx.URL(url).path).suffix.lower()
    except httpx.InvalidURL:
        return ".png"  # the download itself will say what is wrong with the URL
    return suffix if suffix in _EXTENSIONS.values() or suffix == ".jpeg" else ".png"


class Downloader:
    """Downloads result images through the client's pool: retries, a concurrency and a size limit.

    Args:
        http: the client's httpx pool.
        policy: how failed downloads are retried.
        concurrency: downloads in flight at once.
        max_bytes: the largest image accepted, counted decoded.
        is_closed: says whether the owning client is closed (no download then).

    Example:
        >>> # downloader = Downloader(http, RetryPolicy(), 8, max_bytes=16 * 2**20)
        >>> # data = await downloader.read("https://cdn.example/a.png")
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        policy: RetryPolicy,
        concurrency: int,
        *,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
        is_closed: Callable[[], bool] = lambda: False,
        timeout: float = DOWNLOAD_TIMEOUT,
    ) -> None:
        self._http = http
        self._policy = policy
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._max_bytes = _check_max_bytes(max_bytes)
        self._is_closed = is_closed
        self._timeout = _check_timeout(timeout)

    async def read(self, url: str) -> bytes:
        """The bytes of an image.

        Raises:
            ClientClosedError: the client is closed (checked before any I/O).
            ResponseTooLargeError: the image is past `max_bytes`, declared or decoded.
            ImageExpiredError: the URL is gone (images last 24 hours).

        Example:
            >>> # png = await downloader.read(image.url)
        """
        self._check_open("read")
        parts: list[bytes] = []

        async def sink(response: httpx.Response) -> None:
            data = await collect_body(response, limit=self._max_bytes, what=_image(url))
            parts[:] = [_not_empty(data, url)]

        await self._fetch(url, sink)
        return b"".join(parts)

    async def save(self, url: str, path: str | os.PathLike[str]) -> Path:
        """Stream an image to `path` via `<path>.part`, renamed once complete.

        Parent folders are created. On any failure, cancellation included,
        neither the file nor the `.part` is left behind.

        Raises:
            ClientClosedError: the client is closed (checked before any I/O).
            ValidationError: the path cannot take the file (a directory or a
                file in the way, no permission); raised before downloading.
            ImageSaveError: writing failed midway (disk full, an I/O error).
            ResponseTooLargeError: the image is past `max_bytes`, declared or decoded.
            ImageExpiredError: the URL is gone (images last 24 hours).

        Example:
            >>> # path = await downloader.save(image.url, "out/apple.png")
        """
        self._check_open("save")
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            await _prepare(target, partial)
            await self._fetch(url, self._file_sink(url, target, partial))
            try:
                await anyio.Path(partial).replace(target)
            except OSError as exc:
                raise _save_error(target, exc) from exc
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled save still cleans up
                await _discard(partial)
        return target

    def _check_open(self, method: str) -> None:
        if self._is_closed():
            raise ClientClosedError(
                f"GeneratedImage.{method}() needs an open client: the AsyncClient that made "
                "this result is closed; read or save its images inside its `async with` block"
            )

    def _file_sink(self, url: str, target: Path, partial: Path) -> _Sink:
        """Write one attempt's body to `partial` (from its start: a retry starts over)."""

        async def sink(response: httpx.Response) -> None:
            try:
                async with await anyio.open_file(partial, "wb") as file:
                    size = await copy_body(
                        response, file.write, limit=self._max_bytes, what=_image(url)
                    )
                _not_empty(b"-" * min(size, 1), url)
            except OSError as exc:
                raise _save_error(target, exc) from exc

        return sink

    async def _fetch(self, url: str, sink: _Sink) -> None:
        retrying = self._policy.retrying(sleep=anyio.sleep, action="download", request_uuid="-")
        async with self._limiter:
            async for attempt in retrying:
                with attempt:
                    await self._fetch_once(url, sink)

    async def _fetch_once(self, url: str, sink: _Sink) -> None:
        # One deadline per attempt, as for API calls: a trickled image cannot
        # hold a download slot for ever (docs/protocol.md, "Deadlines").
        deadline = AttemptDeadline(self._timeout, traced=False)
        try:
            with deadline.scope:
                await self._follow(url, sink, deadline)
            late = deadline.scope.cancelled_caught
        except TooLateToSend:
            late = True
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ProtocolError(f"image URL {_short(url)!r} cannot be fetched: {exc}",
                                retryable=False) from exc  # fmt: skip
        except httpx.TransportError as exc:
            message = f"downloading {_short(url)} failed: {exc!r}"
            raise TransportError(message, action="download") from exc
        if late:
            raise TransportError(
                f"downloading {_short(url)} did not finish within {self._timeout:g} s",
                action="download",
            )

    async def _follow(self, url: str, sink: _Sink, deadline: AttemptDeadline) -> None:
        """GET `url`, following at most `MAX_REDIRECTS` redirects, never from https to http."""
        # Only codings `_decoding` inflates with a bound (no brotli or zstd).
        headers = {"Accept-Encoding": ACCEPT_ENCODING}
        extensions = {"trace": deadline.trace}
        for _ in range(MAX_REDIRECTS + 1):
            async with self._http.stream(
                "GET", url, headers=headers, follow_redirects=False, extensions=extensions
            ) as response:
                location = response.headers["Location"] if response.has_redirect_location else None
                if location is None:
                    _check_download(response, url)
                    await sink(response)
                    return
                url = _next_hop(response.url, location)
        raise ProtocolError(f"image {_short(url)} redirects more than {MAX_REDIRECTS} times",
                            retryable=False)  # fmt: skip


def _check_timeout(value: float) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValidationError(f"download_timeout must be a number of seconds > 0, got {value!r}")
    return float(number)


def _not_empty(data: bytes, url: str) -> bytes:
    if not data:
        raise ProtocolError(f"image {_short(url)} answered an empty body")
    return data


def _next_hop(current: httpx.URL, location: str) -> str:
    """Where a redirect of an image download leads: http(s) only, never https to http."""
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise ProtocolError(f"image redirect to {location[:80]!r} is not a URL",
                            retryable=False) from exc  # fmt: skip
    downgrade = current.scheme == "https" and target.scheme != "https"
    if target.scheme not in ("http", "https") or downgrade:
        raise ProtocolError(
            f"image {_short(str(current))} redirects to {target.scheme}: URL, not followed",
            retryable=False,
        )
    return str(target)


def _check_max_bytes(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(f"max_download_bytes must be an integer >= 1, got {value!r}")
    return value


async def _prepare(target: Path, partial: Path) -> None:
    """Create the folders and an empty `.part`: a path that cannot take them is refused."""
    try:
        await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
        if await anyio.Path(target).is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        await anyio.Path(partial).write_bytes(b"")
    except OSError as exc:
        raise ValidationError(f"cannot save an image to {target}: {_reason(exc)}") from exc


def _save_error(target: Path, exc: OSError) -> ImageSaveError:
    return ImageSaveError(f"saving an image to {target} failed: {_reason(exc)}")


def _reason(exc: OSError) -> str:
    """What went wrong, and with which file ("File exists: out/a")."""
    if exc.strerror is None:
        return str(exc)
    return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror


async def _discard(partial: Path) -> None:
    """Remove a `.part` file, if any: best effort, the error being raised matters more."""
    with suppress(OSError):
        await anyio.Path(partial).unlink(missing_ok=True)


def _check_download(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status in (403, 404, 410):
        raise ImageExpiredError(
            f"image {_short(url)} is gone (HTTP {status}); PICPIK keeps images for 24 hours, "
            "so download them soon after the task finishes",
            http_status=status,
            action="download",
        )
    if 300 <= status < 400:
        raise ProtocolError(f"image {_short(url)} answered HTTP {status} without a usable Location",
                            retryable=False, http_status=status)  # fmt: skip
    if not 200 <= status < 300:
        cls, retryable = classify_api_error(None, f"HTTP {status}", status)
        raise cls(f"downloading {_short(url)} failed", http_status=status, retryable=retryable,
                  action="download")  # fmt: skip


def _image(url: str) -> str:
    return f"image {_short(url)}"


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."
