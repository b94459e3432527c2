"""The parsed form of a registry document, cached beside the raw body (``CachedResponse.derived``).

A warm run that gets a 304 decodes this msgpack blob instead of parsing a 10 MB packument again.
The blob is only trusted when its parser version string matches the running parser's."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import msgspec

from custody.model import PackageHistory

log = logging.getLogger(__name__)
T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(type=PackageHistory)


def encode_derived(value: Any) -> bytes:
    """A parsed form (a ``PackageHistory``, or a reader's struct holding one) as msgpack."""
    return _encoder.encode(value)


def encode_history(history: PackageHistory) -> bytes:
    return encode_derived(history)


def decode_derived(
    decoder: msgspec.msgpack.Decoder[T],
    blob: bytes | None,
    blob_version: str | None,
    expected_version: str,
) -> T | None:
    """The cached parsed form, or None when absent, from another parser version, or
    undecodable."""
    if blob is None or blob_version != expected_version:
        return None
    try:
        return decoder.decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        log.debug("ignoring undecodable cached history: %s", exc)
        return None


def decode_history(
    blob: bytes | None, blob_version: str | None, expected_version: str
) -> PackageHistory | None:
    """The cached history, or None when absent, from another parser version, or undecodable."""
    return decode_derived(_decoder, blob, blob_version, expected_version)
