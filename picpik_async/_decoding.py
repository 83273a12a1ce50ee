"""Incremental, bounded decoding of a Content-Encoding: identity, gzip, deflate, layered.

PURE: no I/O, no anyio, no httpx. `_streams.py` feeds it the raw bytes of a
response as they arrive.

httpx's own decoders inflate each chunk without a bound on the output, so a
few kilobytes of `Content-Encoding: gzip, gzip` can demand gigabytes at once.
Here every layer is inflated with `zlib`'s `max_length` in steps of at most
64 KiB, and no layer may put out more than `limit` bytes: a bomb stops after
`limit` + 1 decoded bytes, having held little more than that in memory.

Content codings are listed in the order they were applied (RFC 9110 section
8.4), so they are undone from the last to the first.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final

from ._errors import ProtocolError, ResponseTooLargeError

__all__ = ["ACCEPT_ENCODING", "BodyDecoder", "codings", "too_large"]

#: What the client asks for: only codings decoded here with a bound on the output.
ACCEPT_ENCODING: Final = "gzip, deflate"

_ALIASES: Final = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_STEP: Final = 64 * 1024  # the most one zlib call may put out (never 0: that means unlimited)


def too_large(what: str, limit: int) -> ResponseTooLargeError:
    """The error for a body past its limit, counted in decoded bytes.

    Example:
        >>> str(too_large("ListModels answer", 8388608))
        'ListModels answer is larger than 8388608 bytes (decoded)'
    """
    return ResponseTooLargeError(f"{what} is larger than {limit} bytes (decoded)", limit=limit)


def codings(content_encoding: str, what: str) -> list[str]:
    """The content codings of a Content-Encoding value, in the order they were applied.

    `identity` and empty items are dropped; `x-gzip` is `gzip`.

    Raises:
        ProtocolError: a coding this module cannot decode (not retryable).

    Example:
        >>> codings("gzip, X-Gzip, identity", "answer")
        ['gzip', 'gzip']
    """
    found = []
    for item in content_encoding.split(","):
        name = item.strip().lower()
        if name in ("", "identity"):
            continue
        if name not in _ALIASES:
            raise ProtocolError(
                f"{what} has Content-Encoding {content_encoding!r}, which cannot be decoded "
                f"(only {ACCEPT_ENCODING!r} was asked for)",
                retryable=False,
            )
        found.append(_ALIASES[name])
    return found


def _is_zlib_header(head: bytes) -> bool:
    """Whether two bytes open a zlib stream (RFC 1950 section 2.2: CM 8, CINFO <= 7, FCHECK)."""
    cmf, flg = head[0], head[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf * 256 + flg) % 31 == 0


class _Inflater:
    """One gzip or deflate layer, inflated in bounded steps, at most `limit` bytes in all.

    `deflate` is meant to be zlib-wrapped (RFC 9110 section 8.4.1.2), but some
    servers send raw deflate; like browsers, the first two bytes decide.
    Several gzip members in a row are one body (RFC 1952 section 2.2); bytes
    after the end of a deflate stream are ignored, as zlib and httpx do.
    """

    def __init__(self, coding: str, *, limit: int, what: str) -> None:
        self._coding = coding
        self._limit = limit
        self._what = what
        self._head = b""  # deflate: the first bytes, until two of them are in
        self._zlib = zlib.decompressobj(_GZIP_WBITS) if coding == "gzip" else None
        self._produced = 0
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate `data`, yielding pieces of at most 64 KiB."""
        self._fed = self._fed or bool(data)
        if self._zlib is None:
            data = self._choose(data)
        if self._zlib is not None:
            yield from self._inflate(self._zlib, data)

    def finish(self) -> None:
        """Check that the layer's stream ended: a body cut short is a ProtocolError."""
        complete = self._zlib.eof if self._zlib is not None else False
        if self._fed and not complete:
            raise ProtocolError(f"{self._what} ends inside its {self._coding} data (truncated)")

    def _choose(self, data: bytes) -> bytes:
        """deflate: hold the first bytes until two of them say zlib-wrapped or raw."""
        self._head += data
        if len(self._head) < 2:
            return b""
        wbits = zlib.MAX_WBITS if _is_zlib_header(self._head) else -zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits)
        data, self._head = self._head, b""
        return data

    def _inflate(self, inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        while True:
            if inflater.eof:
                if self._coding != "gzip" or not data:
                    return
                inflater = self._zlib = zlib.decompressobj(_GZIP_WBITS)  # a further member
            room = min(_STEP, self._limit + 1 - self._produced)  # >= 1: past the limit we raised
            piece = self._decompress(inflater, data, room)
            if piece:
                yield piece
            if inflater.eof:
                data = inflater.unused_data
            elif len(piece) < room:  # every input byte taken and nothing pending
                return
            else:  # the step was full: more may come, even from no more input
                data = inflater.unconsumed_tail

    def _decompress(self, inflater: zlib._Decompress, data: bytes, room: int) -> bytes:
        try:
            piece = inflater.decompress(data, room)
        except zlib.error as exc:
            raise ProtocolError(f"{self._what} is not valid {self._coding} data: {exc}") from exc
        self._produced += len(piece)
        if self._produced > self._limit:
            raise too_large(self._what, self._limit)
        return piece


class BodyDecoder:
    """Decodes a body for its Content-Encoding as it arrives, refusing it past `limit` bytes.

    Args:
        content_encoding: the header's value ("" when absent); several layers
            such as `gzip, gzip` are undone last to first.
        limit: the most decoded bytes accepted; no layer may put out more.
        what: names the body in error messages ("ListModels answer").

    Raises:
        ProtocolError: an unknown coding (here), corrupt or truncated data (later).
        ResponseTooLargeError: from `feed()`, once more than `limit` bytes come out.

    Example:
        >>> import gzip
        >>> decoder = BodyDecoder("gzip", limit=100, what="answer")
        >>> body = gzip.compress(b"hello")
        >>> pieces = decoder.feed(body[:3]) + decoder.feed(body[3:])
        >>> decoder.finish()
        >>> b"".join(pieces), decoder.size
        (b'hello', 5)
    """

    def __init__(self, content_encoding: str, *, limit: int, what: str) -> None:
        self._limit = limit
        self._what = what
        applied = codings(content_encoding, what)
        self._layers = [_Inflater(c, limit=limit, what=what) for c in reversed(applied)]
        self.size = 0  #: decoded bytes so far

    def feed(self, data: bytes) -> list[bytes]:
        """Decode the next raw bytes; returns the decoded pieces (possibly none)."""
        return list(self._through(0, data))

    def finish(self) -> None:
        """Call once the raw body has ended: raises ProtocolError if it was cut short."""
        for layer in self._layers:
            layer.finish()

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        """Pass `data` through the layers from `index` on, one bounded piece at a time."""
        if index == len(self._layers):
            self.size += len(data)
            if self.size > self._limit:
                raise too_large(self._what, self._limit)
            if data:
                yield data
            return
        for piece in self._layers[index].feed(data):
            yield from self._through(index + 1, piece)
