"""Image inputs (path, bytes, data URI) and downloads (retries, streaming, expiry, limits)."""

from __future__ import annotations

import base64
import errno
import gzip
import os
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import picpik_async._images as images
from picpik_async import (
    APIError,
    ClientClosedError,
    ImageExpiredError,
    ImageSaveError,
    ResponseTooLargeError,
    RetryPolicy,
    TransportError,
    ValidationError,
)
from picpik_async._images import (
    Downloader,
    extension_for,
    sniff_mime,
    to_data_uri,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
BMP = b"BM" + b"\x00" * 32
FAST = RetryPolicy(max_attempts=3, backoff_initial=0.001, backoff_max=0.002)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        pytest.param(PNG, "image/png", id="png"),
        pytest.param(JPEG, "image/jpeg", id="jpeg"),
        pytest.param(WEBP, "image/webp", id="webp"),
        pytest.param(GIF, "image/gif", id="gif"),
        pytest.param(BMP, "image/bmp", id="bmp"),
        pytest.param(b"hello world", None, id="text"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_sniff_mime(data: bytes, mime: str | None) -> None:
    """The MIME type comes from the magic number."""
    assert sniff_mime(data) == mime


@pytest.mark.anyio
async def test_path_bytes_and_data_uri_inputs(tmp_path: Path) -> None:
    """A file named .txt that holds a PNG is sent as image/png; bytes and URIs too."""
    path = tmp_path / "misleading-name.txt"
    path.write_bytes(PNG)
    from_path = await to_data_uri(path)
    assert from_path == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert await to_data_uri(str(path)) == from_path
    assert (await to_data_uri(JPEG)).startswith("data:image/jpeg;base64,")
    # A data URI whose declared type is wrong is corrected from its bytes.
    declared_wrong = "data:image/png;base64," + base64.b64encode(JPEG).decode()
    assert (await to_data_uri(declared_wrong)).startswith("data:image/jpeg;base64,")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(b"just text", "not a PNG", id="bytes-not-image"),
        pytest.param("data:image/png;base64,!!!!", "valid base64", id="bad-base64"),
        pytest.param("data:image/png,abc", "data:image/png;base64", id="not-base64-uri"),
        pytest.param(
            "data:image/png;base64," + base64.b64encode(b"text!").decode(),
            "does not hold a PNG",
            id="uri-not-image",
        ),
        pytest.param("/no/such/file.png", "cannot be read", id="missing-file"),
    ],
)
async def test_bad_inputs_are_refused(value: str | bytes, message: str) -> None:
    """Non-images, broken URIs and unreadable files are ValidationErrors."""
    with pytest.raises(ValidationError, match=message):
        await to_data_uri(value)


@pytest.mark.anyio
async def test_oversized_inputs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs over the size limit are refused before they are read or sent."""
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 16)
    path = tmp_path / "big.png"
    path.write_bytes(PNG)
    for value in (PNG, path, "data:image/png;base64," + base64.b64encode(PNG).decode()):
        with pytest.raises(ValidationError, match="16 bytes"):
            await to_data_uri(value)


def test_extension_for() -> None:
    """The file extension follows the URL's path; unknown ones become .png."""
    assert extension_for("https://cdn.example/a/b.JPG?x=1") == ".jpg"
    assert extension_for("https://cdn.example/a/b.webp") == ".webp"
    assert extension_for("https://cdn.example/a/b") == ".png"
    assert extension_for("https://cdn.example/a/b.exe") == ".png"


def _downloader(handler: httpx.MockTransport) -> tuple[Downloader, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=handler)
    return Downloader(http, FAST, concurrency=2), http


@pytest.mark.anyio
async def test_download_retries_then_streams_to_disk(tmp_path: Path) -> None:
    """A 503 is retried; the image lands at its path with no partial file left."""
    statuses = [503, 200]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(statuses.pop(0), content=PNG)

    downloader, http = _downloader(httpx.MockTransport(handler))
    async with http:
        target = await downloader.save("https://cdn.example/x.png", tmp_path / "a" / "x.png")
    assert target.read_bytes() == PNG
    assert list(target.parent.iterdir()) == [target]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [403, 404, 410])
async def test_expired_urls_say_24_hours(status: int) -> None:
    """A gone image raises ImageExpiredError (not retried) mentioning the retention."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(status)
        return httpx.Response(status)

    downloader, http = _downloader(httpx.MockTransport(handler))
    async with http:
        with pytest.raises(ImageExpiredError, match="24 hours"):
            await downloader.read("https://cdn.example/old.png")
    assert len(calls) == 1


@pytest.mark.anyio
async def test_failed_download_leaves_no_partial_file(tmp_path: Path) -> None:
    """When every attempt fails, nothing is left at the target or beside it."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    downloader, http = _downloader(httpx.MockTransport(handler))
    async with http:
        with pytest.raises(APIError, match="HTTP 500"):
            await downloader.save("https://cdn.example/x.png", tmp_path / "x.png")
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test's own temporary folder


@pytest.mark.anyio
async def test_a_network_failure_is_a_transport_error_of_the_download() -> None:
    """A download that never gets an answer raises TransportError with action "download"."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    downloader, http = _downloader(httpx.MockTransport(handler))
    async with http:
        with pytest.raises(TransportError, match="refused") as caught:
            await downloader.read("https://cdn.example/x.png")
    assert (caught.value.action, caught.value.request_uuid) == ("download", None)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_image_expired_error_is_in_the_error_tree() -> None:
    """ImageExpiredError is defined in `_errors` and still importable from `_images`."""
    assert images.ImageExpiredError is ImageExpiredError
    assert ImageExpiredError.__module__ == "picpik_async"
    assert issubclass(ImageExpiredError, APIError)


# --- size limit, decoding, closed clients, unusable paths (issue 11, items 6, 7, 12) ---


def streamed(body: bytes, *, status: int = 200, **headers: str) -> httpx.Response:
    """A response whose body is streamed, as from the network (not read in advance)."""
    names = {name.replace("_", "-"): value for name, value in headers.items()}
    return httpx.Response(status, headers=names, stream=httpx.ByteStream(body))


def _limited(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> tuple[Downloader, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Downloader(http, FAST, 2, **kwargs), http


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        pytest.param("gzip", gzip.compress, id="gzip"),
        pytest.param("deflate", zlib.compress, id="deflate"),
        pytest.param("gzip, gzip", lambda b: gzip.compress(gzip.compress(b)), id="gzip-gzip"),
    ],
)
async def test_encoded_images_are_decoded(
    tmp_path: Path, coding: str, encode: Callable[[bytes], bytes]
) -> None:
    """A Content-Encoding is undone for read() and save(), and only gzip and deflate are asked."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers["Accept-Encoding"])
        return streamed(encode(PNG), content_encoding=coding)

    downloader, http = _limited(handler)
    async with http:
        assert await downloader.read("https://cdn.example/x.png") == PNG
        saved = await downloader.save("https://cdn.example/x.png", tmp_path / "x.png")
    assert saved.read_bytes() == PNG
    assert asked == ["gzip, deflate"] * 2


@pytest.mark.anyio
@pytest.mark.parametrize("body", ["streamed", "read"])
async def test_images_past_max_bytes_are_refused_once(tmp_path: Path, body: str) -> None:
    """Past `max_bytes` (decoded) read() and save() raise ResponseTooLargeError, unretried."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        data = gzip.compress(PNG)
        if body == "read":  # a mock's response, read before it is handed over
            response = httpx.Response(200, content=PNG)
            del response.headers["Content-Length"]
            return response
        return streamed(data, content_encoding="gzip")

    downloader, http = _limited(handler, max_bytes=len(PNG) - 1)
    async with http:
        with pytest.raises(ResponseTooLargeError, match=f"larger than {len(PNG) - 1} bytes"):
            await downloader.read("https://cdn.example/x.png")
        with pytest.raises(ResponseTooLargeError) as caught:
            await downloader.save("https://cdn.example/x.png", tmp_path / "x.png")
    assert caught.value.limit == len(PNG) - 1
    assert calls == [1, 1]
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test's own temporary folder


@pytest.mark.anyio
async def test_a_declared_length_past_max_bytes_is_refused_unread() -> None:
    """A Content-Length past the limit is refused before the body is read."""
    stream = httpx.ByteStream(PNG)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10 * 1024**3)}, stream=stream)

    downloader, http = _limited(handler)
    async with http:
        with pytest.raises(ResponseTooLargeError, match=f"declares {10 * 1024**3} bytes"):
            await downloader.read("https://cdn.example/x.png")


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "64"])
def test_max_bytes_must_be_a_positive_int(value: Any) -> None:
    """A bad `max_bytes` is a ValidationError naming the client's option."""
    with pytest.raises(ValidationError, match="max_download_bytes"):
        Downloader(httpx.AsyncClient(), FAST, 1, max_bytes=value)


def test_the_default_limit_is_64_mib() -> None:
    """MAX_DOWNLOAD_BYTES is 64 MiB."""
    assert images.MAX_DOWNLOAD_BYTES == 64 * 1024 * 1024


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["read", "save"])
async def test_a_closed_client_downloads_nothing(tmp_path: Path, method: str) -> None:
    """With the client closed, read() and save() raise ClientClosedError before any I/O."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, content=PNG)

    downloader, http = _limited(handler, is_closed=lambda: True)
    target = tmp_path / "sub" / "x.png"
    async with http:
        url = "https://cdn.example/x.png"
        call = downloader.read(url) if method == "read" else downloader.save(url, target)
        with pytest.raises(ClientClosedError, match=rf"GeneratedImage\.{method}\(\) needs an open"):
            await call
    assert calls == []
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test's own temporary folder


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("layout", "cause"),
    [
        pytest.param("target-is-a-directory", IsADirectoryError, id="directory-at-target"),
        pytest.param("file-in-the-way", FileExistsError, id="file-for-a-folder"),
        pytest.param("file-above", NotADirectoryError, id="file-above-the-folder"),
    ],
)
async def test_an_unusable_path_is_refused_before_downloading(
    tmp_path: Path, layout: str, cause: type[OSError]
) -> None:
    """A path that cannot take the file is a ValidationError (OSError as cause), nothing sent."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, content=PNG)

    (tmp_path / "blocker").write_bytes(b"a file")
    (tmp_path / "folder").mkdir()
    target = {
        "target-is-a-directory": tmp_path / "folder",
        "file-in-the-way": tmp_path / "blocker" / "x.png",
        "file-above": tmp_path / "blocker" / "sub" / "x.png",
    }[layout]
    downloader, http = _limited(handler)
    async with http:
        with pytest.raises(ValidationError, match="cannot save an image to") as caught:
            await downloader.save("https://cdn.example/x.png", target)
    assert isinstance(caught.value.__cause__, cause)
    assert calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "folder"]  # noqa: ASYNC240


@pytest.mark.anyio
async def test_a_failed_write_is_an_image_save_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up midway raises ImageSaveError (also an OSError), leaving nothing."""

    async def full(self: anyio.AsyncFile[bytes], data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(anyio.AsyncFile, "write", full)
    downloader, http = _limited(lambda request: streamed(PNG))
    async with http:
        with pytest.raises(ImageSaveError, match="No space left on device") as caught:
            await downloader.save("https://cdn.example/x.png", tmp_path / "x.png")
    assert isinstance(caught.value, OSError)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test's own temporary folder


class _Broken(httpx.AsyncByteStream):
    """Half a body, then a dropped connection."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield PNG[:10]
        raise httpx.ReadError("connection reset")


@pytest.mark.anyio
async def test_a_retried_save_starts_the_file_over(tmp_path: Path) -> None:
    """A download cut midway is retried, and the file holds only the second attempt."""
    replies = [httpx.Response(200, stream=_Broken()), streamed(PNG)]
    downloader, http = _limited(lambda request: replies.pop(0))
    async with http:
        saved = await downloader.save("https://cdn.example/x.png", tmp_path / "x.png")
    assert saved.read_bytes() == PNG
    assert replies == []
