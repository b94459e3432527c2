"""The parsed form of a registry document, cached beside the raw body (``CachedResponse.derived``).

A warm run that gets a 304 decodes this msgpack blob instead of parsing a 10 MB packument again.
The blob is only trusted when its parser version string matches the running parser's."""

from __future__ import annotations

import logging

import msgspec

from custody.model import PackageHistory

log = logging.getLogger(__name__)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(type=PackageHistory)


def encode_history(history: PackageHistory) -> bytes:
    return _encoder.encode(history)


def decode_history(
    blob: bytes | None, blob_version: str | None, expected_version: str
) -> PackageHistory | None:
    """The cached history, or None when absent, from another parser version, or undecodable."""
    if blob is None or blob_version != expected_version:
        return None
    try:
        return _decoder.decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        log.debug("ignoring undecodable cached history: %s", exc)
        return None
