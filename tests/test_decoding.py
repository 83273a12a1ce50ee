"""The bounded Content-Encoding decoder of the pure core: no event loop, no sockets."""

from __future__ import annotations

import gzip
import itertools
import random
import tracemalloc
import zlib
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from picpik_async import ProtocolError, ResponseTooLargeError
from picpik_async._decoding import ACCEPT_ENCODING, BodyDecoder, codings

PAYLOAD = bytes(range(256)) * 8 + b"a red apple on a table " * 200  # 6,648 bytes


def zlib_of(data: bytes) -> bytes:
    """`deflate` as RFC 9110 means it: a zlib-wrapped stream."""
    return zlib.compress(data)


def raw_deflate_of(data: bytes) -> bytes:
    """`deflate` as some servers send it: a raw deflate stream, no zlib header."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def gzip_of(data: bytes) -> bytes:
    """One gzip member."""
    return gzip.compress(data)


def identity(data: bytes) -> bytes:
    """No coding at all."""
    return data


#: (Content-Encoding, how to encode), for every way of sending a body we decode.
CODINGS: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("", identity),
    ("identity", identity),
    ("gzip", gzip_of),
    ("x-gzip", gzip_of),
    ("GZip", gzip_of),
    ("deflate", zlib_of),
    ("deflate", raw_deflate_of),
    ("gzip, gzip", lambda data: gzip_of(gzip_of(data))),
    ("deflate, gzip", lambda data: gzip_of(zlib_of(data))),
    ("gzip, identity", gzip_of),
    ("gzip", lambda data: gzip_of(data[:1000]) + gzip_of(data[1000:])),
]
CASES = [
    pytest.param(name, encode, id=f"{name or 'none'}-{getattr(encode, '__name__', 'x')}-{i}")
    for i, (name, encode) in enumerate(CODINGS)
]


def decode(content_encoding: str, body: bytes, *, limit: int = 10**6, step: int = 0) -> bytes:
    """Decode `body` fed in pieces of `step` bytes (all at once for 0)."""
    decoder = BodyDecoder(content_encoding, limit=limit, what="test body")
    return _decode_pieces(decoder, _cut(body, step))


def _cut(body: bytes, step: int) -> list[bytes]:
    if not step:
        return [body]
    return [body[i : i + step] for i in range(0, len(body), step)]


def _decode_pieces(decoder: BodyDecoder, pieces: Iterable[bytes]) -> bytes:
    out = b"".join(b"".join(decoder.feed(piece)) for piece in pieces)
    decoder.finish()
    assert decoder.size == len(out)
    return out


@cache
def zeros_bomb(size: int) -> bytes:
    """One gzip member that inflates to `size` zero bytes (about 1/1000 of it)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(size // len(block))) + packer.flush()


class TestDecoding:
    """Every coding we ask for decodes to the bytes that were sent."""

    @pytest.mark.parametrize(("name", "encode"), CASES)
    def test_whole_body(self, name: str, encode: Callable[[bytes], bytes]) -> None:
        """Fed at once, the body comes back."""
        assert decode(name, encode(PAYLOAD)) == PAYLOAD

    @pytest.mark.parametrize(("name", "encode"), CASES)
    def test_every_chunk_size(self, name: str, encode: Callable[[bytes], bytes]) -> None:
        """Fed in pieces of every size from 1 byte to the whole body, the body comes back."""
        body = encode(PAYLOAD[:700])
        for step in range(1, len(body) + 1):
            assert decode(name, body, step=step) == PAYLOAD[:700], step

    @given(
        data=st.binary(max_size=3000),
        coding=st.sampled_from(CODINGS),
        cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
    )
    def test_any_bytes_and_any_boundaries(
        self, data: bytes, coding: tuple[str, Callable[[bytes], bytes]], cuts: list[int]
    ) -> None:
        """Any payload, cut anywhere (empty pieces too), decodes to itself."""
        name, encode = coding
        body = encode(data)
        bounds = [0, *sorted(min(cut, len(body)) for cut in cuts), len(body)]
        pieces = [body[a:b] for a, b in itertools.pairwise(bounds)]
        # Room for an inner gzip layer a few bytes longer than incompressible data.
        decoder = BodyDecoder(name, limit=len(data) + 100, what="test body")
        assert _decode_pieces(decoder, pieces) == data

    @pytest.mark.parametrize("name", ["gzip", "deflate", "gzip, gzip", ""])
    def test_an_empty_body_is_empty(self, name: str) -> None:
        """A 204-style empty body with a Content-Encoding is no error."""
        assert decode(name, b"") == b""

    def test_bytes_after_a_deflate_stream_are_ignored(self) -> None:
        """Trailing bytes after the end of a deflate stream are dropped, as zlib and httpx do."""
        assert decode("deflate", zlib_of(PAYLOAD) + b"junk") == PAYLOAD

    def test_codings_are_listed_in_the_order_applied(self) -> None:
        """The header value is normalised: x-gzip is gzip, identity and blanks vanish."""
        assert codings(" X-GZIP ,, identity, Deflate", "answer") == ["gzip", "deflate"]

    def test_the_client_asks_only_for_codings_it_bounds(self) -> None:
        """ACCEPT_ENCODING names gzip and deflate, nothing we cannot decode."""
        assert ACCEPT_ENCODING == "gzip, deflate"
        assert codings(ACCEPT_ENCODING, "answer") == ["gzip", "deflate"]


class TestLimit:
    """The limit holds on decoded bytes, exactly."""

    @pytest.mark.parametrize(("name", "encode"), CASES)
    @pytest.mark.parametrize("step", [0, 1, 4096], ids=["whole", "bytewise", "4k"])
    def test_exactly_at_the_limit_passes(
        self, name: str, encode: Callable[[bytes], bytes], step: int
    ) -> None:
        """A body of exactly `limit` decoded bytes is accepted."""
        assert decode(name, encode(PAYLOAD), limit=len(PAYLOAD), step=step) == PAYLOAD

    @pytest.mark.parametrize(("name", "encode"), CASES)
    @pytest.mark.parametrize("step", [0, 1, 4096], ids=["whole", "bytewise", "4k"])
    def test_one_past_the_limit_is_refused(
        self, name: str, encode: Callable[[bytes], bytes], step: int
    ) -> None:
        """One decoded byte more than `limit` raises ResponseTooLargeError, not retryable."""
        with pytest.raises(ResponseTooLargeError) as caught:
            decode(name, encode(PAYLOAD), limit=len(PAYLOAD) - 1, step=step)
        assert caught.value.limit == len(PAYLOAD) - 1
        assert not caught.value.retryable
        assert str(caught.value) == f"test body is larger than {len(PAYLOAD) - 1} bytes (decoded)"

    def test_an_intermediate_layer_is_capped_too(self) -> None:
        """Every layer is capped: in `gzip, gzip` the inner gzip stream may not pass the limit.

        So a body of incompressible bytes just under the limit, gzipped twice,
        is refused (its inner layer is a few bytes larger than the body).
        """
        noise = random.Random(7).randbytes(5000)
        body = gzip_of(gzip_of(noise))
        assert decode("gzip, gzip", body, limit=len(noise) + 100) == noise
        with pytest.raises(ResponseTooLargeError):
            decode("gzip, gzip", body, limit=len(noise))

    def test_a_bomb_stops_at_limit_plus_one(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A 64 MiB gzip bomb inflates limit + 1 bytes in all, in steps zlib bounds (never 0)."""
        bomb, limit = zeros_bomb(64 * 1024 * 1024), 1024 * 1024
        spy = DecompressSpy()
        monkeypatch.setattr(zlib, "decompressobj", spy)
        decoder = BodyDecoder("gzip", limit=limit, what="bomb")
        pieces = iter(_cut(bomb, 4096))
        out = 0
        with pytest.raises(ResponseTooLargeError):  # noqa: PT012 - the loop stops by raising
            for piece in pieces:
                out += sum(len(p) for p in decoder.feed(piece))
        assert out <= limit
        assert next(pieces, None) is not None  # it stopped early in the body
        assert sum(spy.outputs) == limit + 1
        assert all(0 < step <= 64 * 1024 for step in spy.max_lengths)

    def test_a_bomb_never_holds_its_output(self) -> None:
        """Inflating a 64 MiB bomb under a 1 MiB limit peaks at a few MiB, not at 64."""
        bomb = zeros_bomb(64 * 1024 * 1024)
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLargeError):
                decode("gzip, identity", bomb, limit=1024 * 1024)
            with pytest.raises(ResponseTooLargeError):
                decode("gzip, gzip", gzip_of(bomb), limit=1024 * 1024)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024


class DecompressSpy:
    """Stands in for zlib.decompressobj: records each call's max_length and output size."""

    real: Any = zlib.decompressobj

    def __init__(self) -> None:
        self.max_lengths: list[int] = []
        self.outputs: list[int] = []

    def __call__(self, *args: Any) -> _Recorded:
        return _Recorded(self, type(self).real(*args))


class _Recorded:
    """One spied-on decompressor."""

    def __init__(self, spy: DecompressSpy, inner: Any) -> None:
        self._spy = spy
        self._inner = inner

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        self._spy.max_lengths.append(max_length)
        out: bytes = self._inner.decompress(data, max_length)
        self._spy.outputs.append(len(out))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TestRefusals:
    """Codings we never asked for and broken data are ProtocolErrors."""

    @pytest.mark.parametrize(
        "name", ["br", "zstd", "compress", "x-compress", "gzip, br", "chunked"]
    )
    def test_unknown_codings_are_refused_before_any_data(self, name: str) -> None:
        """An unknown coding fails when the decoder is made, and is not retried."""
        with pytest.raises(ProtocolError, match="cannot be decoded") as caught:
            BodyDecoder(name, limit=100, what="ListModels answer")
        assert not caught.value.retryable
        assert not isinstance(caught.value, ResponseTooLargeError)
        assert "ListModels answer" in str(caught.value)

    @pytest.mark.parametrize(
        ("name", "body"),
        [
            pytest.param("gzip", b"this is not gzip at all", id="gzip-not-gzip"),
            pytest.param("gzip", gzip_of(PAYLOAD)[:10] + b"\xff" * 40, id="gzip-garbled"),
            pytest.param("gzip", gzip_of(PAYLOAD) + b"\x00\x00", id="gzip-trailing-junk"),
            pytest.param("deflate", b"\xff\xff\xff\xff", id="deflate-garbage"),
            pytest.param("gzip, gzip", gzip_of(b"plain text"), id="inner-layer-not-gzip"),
        ],
    )
    def test_corrupt_data_is_a_protocol_error(self, name: str, body: bytes) -> None:
        """Data that does not inflate raises ProtocolError naming the body and the coding."""
        with pytest.raises(ProtocolError, match="test body is not valid") as caught:
            decode(name, body)
        assert not isinstance(caught.value, ResponseTooLargeError)

    @pytest.mark.parametrize(
        ("name", "body"),
        [
            pytest.param("gzip", gzip_of(PAYLOAD)[:-4], id="gzip"),
            pytest.param("deflate", zlib_of(PAYLOAD)[:-10], id="deflate"),
            pytest.param("deflate", zlib_of(PAYLOAD)[:1], id="deflate-one-byte"),
            pytest.param("gzip, gzip", gzip_of(gzip_of(PAYLOAD))[:-8], id="outer-layer"),
        ],
    )
    def test_a_truncated_body_is_a_protocol_error(self, name: str, body: bytes) -> None:
        """A body that ends inside its compressed data fails at finish(), retryable."""
        with pytest.raises(ProtocolError, match="truncated") as caught:
            decode(name, body, step=1)
        assert caught.value.retryable
