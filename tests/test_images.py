"""Image inputs (path, bytes, data URI) and downloads (retries, streaming, expiry)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

import picpik_async._images as images
from picpik_async import APIError, ImageExpiredError, RetryPolicy, ValidationError
from picpik_async._images import Downloader, extension_for, sniff_mime, to_data_uri

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
